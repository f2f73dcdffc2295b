// Run-time ISA choice of the host kernels that have an AVX2 twin.
#pragma once

#include <cstdlib>

namespace ls {

#if defined(__x86_64__) && defined(__GNUC__)
// Kernels compiled twice (baseline and target("avx2,f16c"), no FMA so that
// the results are bit-identical) take the twin when this is true.
#define LS_HAVE_AVX2_F16C_TWINS 1
// The CPU has AVX2 and F16C and LABELSIFT_NO_AVX2 is not set (read once per
// process).
inline bool cpu_has_avx2_f16c() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
                          std::getenv("LABELSIFT_NO_AVX2") == nullptr;
  return yes;
}
#endif

}  // namespace ls
