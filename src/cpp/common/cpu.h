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

// The register width of the kernels written once with GCC vector extensions
// and compiled per ISA (the Sinkhorn pass, the multi-label scores): 0 = the
// best the CPU has (AVX-512F, else AVX2, else SSE2; LABELSIFT_NO_AVX512 /
// LABELSIFT_NO_AVX2 in the environment step down); 1 = the scalar
// definition; 2 = SSE2 (16-byte registers); 3 = AVX2; 4 = AVX-512F. Every
// choice gives the same results (tests check it); an ISA the CPU lacks
// falls back to the best one it has.
enum VecIsa : int { ISA_AUTO = 0, ISA_SCALAR = 1, ISA_SSE2 = 2, ISA_AVX2 = 3, ISA_AVX512 = 4 };

// The best VecIsa of this CPU and environment (read once per process).
inline int best_vec_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const int isa = [] {
    if (__builtin_cpu_supports("avx512f") && !std::getenv("LABELSIFT_NO_AVX512") && !std::getenv("LABELSIFT_NO_AVX2"))
      return int(ISA_AVX512);
    if (__builtin_cpu_supports("avx2") && !std::getenv("LABELSIFT_NO_AVX2")) return int(ISA_AVX2);
    return int(ISA_SSE2);
  }();
  return isa;
#else
  return int(ISA_SCALAR);
#endif
}

// The ISA a kernel runs for a requested one (ISA_AUTO or one above the best: the best).
inline int resolve_vec_isa(int isa) {
  const int best = best_vec_isa();
  return (isa == ISA_AUTO || isa > best) ? best : isa;
}

}  // namespace ls
