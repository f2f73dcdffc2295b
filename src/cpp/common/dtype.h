// Storage dtypes shared by the C++ (OpenMP) and CUDA code: the LS_HD
// qualifier, float16 storage and its exact conversions, "arithmetic in the
// input dtype" (Num<S>), the dtype codes, the kernel descriptor Mat and the
// dtype dispatch. Everything marked LS_HD is __host__ __device__ under nvcc.
//
// Exactness rules (they reproduce NumPy, the reference, bit for bit):
//  * arithmetic happens "in the input dtype": float32 in float, float64 in
//    double, float16 as NumPy does it (convert to float, operate, round back
//    to half after every operation);
//  * sums use NumPy's pairwise summation (common/summation.h);
//  * argmax returns the first maximum; ties elsewhere go to the lower index.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#if defined(__CUDACC__)
#define LS_HD __host__ __device__ __forceinline__
#else
#define LS_HD inline
#endif

namespace ls {

// ---------------------------------------------------------------------------
// IEEE binary16 <-> binary32, exact (RNE on the way down), branch-light.
// ---------------------------------------------------------------------------
LS_HD float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
LS_HD uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Branch-free so that loops over half rows vectorise: normal numbers are
// re-biased in the integer domain, subnormals converted exactly as
// int * 2^-24 (no float denormal arithmetic, which is slow), inf/nan get the
// float exponent.
LS_HD float half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t(h) & 0x8000u) << 16;
  const uint32_t em = uint32_t(h) & 0x7fffu;
  const uint32_t o_norm = (em << 13) + (112u << 23);
  const uint32_t o_inf = o_norm + (112u << 23);
  const uint32_t o_sub = float_to_bits(float(int32_t(em)) * 5.9604644775390625e-08f);  // em * 2^-24
  const uint32_t o = em >= 0x7c00u ? o_inf : (em >= 0x0400u ? o_norm : o_sub);
  return bits_to_float(o | sign);
}

LS_HD uint16_t float_to_half(float f) {
  uint32_t x = float_to_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {  // inf or nan
    return uint16_t(sign | 0x7c00u | (x > 0x7f800000u ? 0x200u : 0u));
  }
  if (x >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to inf
  if (x < 0x38800000u) {  // result is subnormal or zero in half
    // Adding 0.5f shifts the mantissa so the FPU does the RNE rounding.
    const float r = bits_to_float(x) + 0.5f;
    return uint16_t(sign | (float_to_bits(r) - 0x3f000000u));
  }
  const uint32_t mant_odd = (x >> 13) & 1u;
  x += ((15u - 127u) << 23) + 0xfffu + mant_odd;  // rebias and round to even
  return uint16_t(sign | (x >> 13));
}

// ---------------------------------------------------------------------------
// Storage types and "arithmetic in the input dtype".
//   Num<S>::V       value type used for arithmetic (float for half)
//   Num<S>::load    storage -> value (exact)
//   Num<S>::rnd     round a freshly computed value to the storage precision
// ---------------------------------------------------------------------------
struct half_t {
  uint16_t bits;
};

template <class S>
struct Num;

template <>
struct Num<float> {
  using V = float;
  LS_HD static float load(float x) { return x; }
  LS_HD static float rnd(float x) { return x; }
  LS_HD static float from_double(double x) { return float(x); }
};
template <>
struct Num<double> {
  using V = double;
  LS_HD static double load(double x) { return x; }
  LS_HD static double rnd(double x) { return x; }
  LS_HD static double from_double(double x) { return x; }
};
template <>
struct Num<half_t> {
  using V = float;
  LS_HD static float load(half_t x) { return half_to_float(x.bits); }
  LS_HD static float rnd(float x) { return half_to_float(float_to_half(x)); }
  // a Python float constant cast to float16, as NumPy does (double -> half
  // directly; going through float first can double-round only in cases the
  // constants used here never hit, but do it properly anyway).
  LS_HD static float from_double(double x) {
    const float f = float(x);
    return half_to_float(float_to_half(f));
  }
};

enum DType : int { F16 = 0, F32 = 1, F64 = 2 };

// A row-major view of an (n, k) probability block: element (i, j) lives at
// data + i*s0 + j*s1 elements of the dtype.
// Where a Mat's data lives: host memory, or (for the GPU kernels) the
// memory of a CUDA device.
enum Device : int { DEVICE_HOST = 0, DEVICE_CUDA = 1 };

struct Mat {
  const void* data;
  int64_t n, k;
  int64_t s0, s1;
  int dtype;
  int device;  // a Device
};

// Host kernels take host memory only.
inline void require_host(const Mat& P) {
  if (P.device != DEVICE_HOST) throw std::invalid_argument("a host kernel was given device memory");
}

// Calls f(S{}) with S the storage type of the dtype code.
template <class F>
void dispatch(int dtype, F&& f) {
  switch (dtype) {
    case F16: f(half_t{}); break;
    case F32: f(float{}); break;
    case F64: f(double{}); break;
    default: throw std::invalid_argument("unsupported dtype code");
  }
}

}  // namespace ls
