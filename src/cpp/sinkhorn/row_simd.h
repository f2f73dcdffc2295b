// Host-only explicit-SIMD twin of the per-row Sinkhorn math
// (sinkhorn/row_math.h, the definition), for contiguous float32/float64
// rows, written with GCC/Clang vector extensions of VB bytes of doubles:
// VB = 16 (baseline x86-64, SSE2), 32 (the AVX2 clone) or 64 (the AVX-512
// clone of the pass kernel, chosen at run time).
//
// Same results as the scalar definition, bit for bit, on every VB:
//  * sk_exp_v is sk_exp lane by lane (the same IEEE operations in the same
//    order; no FMA);
//  * the exp sum keeps 8 accumulators whatever the lane count (8 / W
//    registers of W lanes), lane l of register j accumulating the values
//    with k % 8 == j * W + l, as the scalar a[k & 7] does; the tail goes to
//    the same accumulators in the same order; they are combined as in
//    combine8;
//  * max is exact in any order, the label is the first k with t_k == max,
//    and the column updates are element-wise.
#pragma once

#if !defined(__CUDACC__) && (defined(__GNUC__) || defined(__clang__))
#define LS_HAVE_SK_SIMD 1

#include <cmath>
#include <cstdint>
#include <cstring>

#include "sinkhorn/row_math.h"

namespace ls {
namespace sk {
namespace simd {

#define LS_SK_INLINE inline __attribute__((always_inline))

template <int VB>
struct VT {
  static constexpr int W = VB / 8;  // doubles per register
  typedef double f64 __attribute__((vector_size(VB)));
  typedef int64_t i64 __attribute__((vector_size(VB)));
  typedef float f32 __attribute__((vector_size(VB / 2)));  // W floats
};

template <int VB>
LS_SK_INLINE typename VT<VB>::f64 splat(double x) {
  return typename VT<VB>::f64{} + x;
}

template <int VB>
LS_SK_INLINE typename VT<VB>::f64 load_d(const double* p) {
  typename VT<VB>::f64 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <int VB>
LS_SK_INLINE typename VT<VB>::f64 load_d(const float* p) {
  typename VT<VB>::f32 v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, typename VT<VB>::f64);
}
template <int VB>
LS_SK_INLINE void store_d(double* p, typename VT<VB>::f64 v) {
  std::memcpy(p, &v, sizeof v);
}
template <int VB>
LS_SK_INLINE void store_as(double* p, typename VT<VB>::f64 v) {
  std::memcpy(p, &v, sizeof v);
}
template <int VB>
LS_SK_INLINE void store_as(float* p, typename VT<VB>::f64 v) {
  const typename VT<VB>::f32 f = __builtin_convertvector(v, typename VT<VB>::f32);
  std::memcpy(p, &f, sizeof f);
}

// sk_exp, lane by lane (see row_math.h).
template <int VB>
LS_SK_INLINE typename VT<VB>::f64 sk_exp_v(typename VT<VB>::f64 x) {
  using D = typename VT<VB>::f64;
  using I = typename VT<VB>::i64;
  const D lo = splat<VB>(kExpMin);
  const I tiny = (I)(x < lo);
  const D xc = tiny ? lo : x;
  const D kd = xc * kLog2e + kMagic;
  const D nd = kd - kMagic;
  const D r = (xc - nd * kLn2Hi) - nd * kLn2Lo;
  D p = splat<VB>(kC[12]);
  p = p * r + kC[11];
  p = p * r + kC[10];
  p = p * r + kC[9];
  p = p * r + kC[8];
  p = p * r + kC[7];
  p = p * r + kC[6];
  p = p * r + kC[5];
  p = p * r + kC[4];
  p = p * r + kC[3];
  p = p * r + kC[2];
  p = p * r + kC[1];
  p = p * r + kC[0];
  I n;
  std::memcpy(&n, &kd, sizeof n);
  n = n - dbits(kMagic);
  const I sb = (n + int64_t(1023)) << 52;
  D scale;
  std::memcpy(&scale, &sb, sizeof scale);
  const D y = p * scale;
  return tiny ? splat<VB>(0.0) : y;
}

// Sweeps 1 and 2 of a contiguous row (see row_stats in row_math.h).
template <int VB, class S>
LS_SK_INLINE RowOut row_stats_v(const S* x, int64_t K, double lam, const double* f, double* T, double* E) {
  using D = typename VT<VB>::f64;
  using I = typename VT<VB>::i64;
  constexpr int W = VT<VB>::W;
  constexpr int A = 8 / W;  // registers of accumulators
  RowOut o;
  D mv = splat<VB>(-INFINITY), chk = splat<VB>(0.0);
  int64_t k = 0;
  for (; k + W <= K; k += W) {
    const D t = load_d<VB>(x + k) * lam + load_d<VB>(f + k);
    store_d<VB>(T + k, t);
    chk = chk + (t - t);
    mv = (I)(t > mv) ? t : mv;
  }
  double m = mv[0], c = chk[0];
  for (int j = 1; j < W; ++j) {
    m = mv[j] > m ? mv[j] : m;
    c = c + chk[j];
  }
  for (; k < K; ++k) {
    const double t = lam * double(x[k]) + f[k];
    T[k] = t;
    c = c + (t - t);
    m = t > m ? t : m;
  }
  o.finite = (c == 0.0);
  if (!o.finite) {
    o.m = 0.0;
    o.s = 1.0;
    o.label = 0;
    for (int64_t q = 0; q < K; ++q) {
      T[q] = 0.0;
      E[q] = 0.0;
    }
    return o;
  }
  int32_t am = 0;
  while (T[am] != m) ++am;  // the first index of the max (it exists)
  const D mm = splat<VB>(m);
  D acc[A];
  for (int j = 0; j < A; ++j) acc[j] = splat<VB>(0.0);
  k = 0;
  for (; k + 8 <= K; k += 8) {
    for (int j = 0; j < A; ++j) {
      const D d = load_d<VB>(T + k + j * W) - mm;
      const D e = sk_exp_v<VB>(d);
      store_d<VB>(T + k + j * W, d);
      store_d<VB>(E + k + j * W, e);
      acc[j] = acc[j] + e;
    }
  }
  double a[8];
  for (int j = 0; j < A; ++j)
    for (int l = 0; l < W; ++l) a[j * W + l] = acc[j][l];
  for (; k < K; ++k) {
    const double d = T[k] - m;
    const double e = sk_exp(d);
    T[k] = d;
    E[k] = e;
    a[k & 7] += e;
  }
  o.m = m;
  o.s = combine8(a);
  o.label = am;
  return o;
}

// Sweep 3 (see row_accumulate in row_math.h).
template <int VB, class P>
LS_SK_INLINE void row_accumulate_v(const double* T, const double* E, int64_t K, double w, double lw, double* acc,
                                   double* cmax, P* plan, double pw) {
  using D = typename VT<VB>::f64;
  using I = typename VT<VB>::i64;
  constexpr int W = VT<VB>::W;
  int64_t k = 0;
  for (; k + W <= K; k += W) {
    const D e = load_d<VB>(E + k);
    store_d<VB>(acc + k, load_d<VB>(acc + k) + e * w);
    const D u = load_d<VB>(T + k) + lw;
    const D cm = load_d<VB>(cmax + k);
    store_d<VB>(cmax + k, (I)(u > cm) ? u : cm);
    if (plan) store_as<VB>(plan + k, e * pw);
  }
  for (; k < K; ++k) {
    acc[k] += E[k] * w;
    const double u = T[k] + lw;
    cmax[k] = u > cmax[k] ? u : cmax[k];
    if (plan) plan[k] = P(E[k] * pw);
  }
}

#undef LS_SK_INLINE

}  // namespace simd
}  // namespace sk
}  // namespace ls
#endif
