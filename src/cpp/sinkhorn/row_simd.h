// Host-only explicit-SIMD twin of the per-row Sinkhorn math
// (sinkhorn/row_math.h, the definition), for contiguous float32/float64
// rows, written with GCC/Clang vector extensions of VB bytes of doubles:
// VB = 16 (baseline x86-64, SSE2), 32 (the AVX2 clone) or 64 (the AVX-512
// clone of the pass kernel, chosen at run time).
//
// Same results as the scalar definition, bit for bit, on every VB:
//  * sk_exp_v / sk_exp_fv are sk_exp / sk_exp_f lane by lane (the same IEEE
//    operations in the same order; no FMA);
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
#include <utility>

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
  typedef float f32w __attribute__((vector_size(VB)));     // 2W floats: a full register
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

// exp_reduce and exp_scale (row_math.h), lane by lane.
template <int VB>
LS_SK_INLINE void exp_reduce_v(typename VT<VB>::f64 x, typename VT<VB>::i64& tiny, typename VT<VB>::f64& kd,
                               typename VT<VB>::f64& r) {
  using D = typename VT<VB>::f64;
  using I = typename VT<VB>::i64;
  const D lo = splat<VB>(kExpMin);
  tiny = (I)(x < lo);
  const D xc = tiny ? lo : x;
  kd = xc * kLog2e + kMagic;
  const D nd = kd - kMagic;
  r = (xc - nd * kLn2Hi) - nd * kLn2Lo;
}
template <int VB>
LS_SK_INLINE typename VT<VB>::f64 exp_scale_v(typename VT<VB>::f64 kd) {
  using I = typename VT<VB>::i64;
  I n;
  std::memcpy(&n, &kd, sizeof n);
  const I sb = (n - dbits(kMagic) + int64_t(1023)) << 52;
  typename VT<VB>::f64 scale;
  std::memcpy(&scale, &sb, sizeof scale);
  return scale;
}

// sk_exp, lane by lane (see row_math.h).
template <int VB>
LS_SK_INLINE typename VT<VB>::f64 sk_exp_v(typename VT<VB>::f64 x) {
  using D = typename VT<VB>::f64;
  typename VT<VB>::i64 tiny;
  D kd, r;
  exp_reduce_v<VB>(x, tiny, kd, r);
  const D y = exp_poly_d<D>(r, splat<VB>(exp_c(12))) * exp_scale_v<VB>(kd);
  return tiny ? splat<VB>(0.0) : y;
}

// sk_exp_f, lane by lane: the reduction on double lanes, the polynomial on
// as many float lanes.
template <int VB>
LS_SK_INLINE typename VT<VB>::f64 sk_exp_fv(typename VT<VB>::f64 x) {
  using D = typename VT<VB>::f64;
  using F = typename VT<VB>::f32;
  typename VT<VB>::i64 tiny;
  D kd, r;
  exp_reduce_v<VB>(x, tiny, kd, r);
  const F p = exp_poly_f<F>(__builtin_convertvector(r, F), F{} + exp_cf(7));
  const D y = __builtin_convertvector(p, D) * exp_scale_v<VB>(kd);
  return tiny ? splat<VB>(0.0) : y;
}

// sk_exp_f of two registers at once: their reductions on double lanes, one
// polynomial on a register of 2W float lanes (as many bytes as a double
// register: half the polynomial's instructions), lane by lane the same
// operations as sk_exp_f.
template <class F, class F2, std::size_t... I>
LS_SK_INLINE F2 concat_f(F a, F b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, I...);
}
template <int VB>
LS_SK_INLINE void sk_exp_fv2(typename VT<VB>::f64 x0, typename VT<VB>::f64 x1, typename VT<VB>::f64& e0,
                             typename VT<VB>::f64& e1) {
  using D = typename VT<VB>::f64;
  using F = typename VT<VB>::f32;
  using F2 = typename VT<VB>::f32w;
  constexpr int W = VT<VB>::W;
  typename VT<VB>::i64 tiny0, tiny1;
  D kd0, kd1, r0, r1;
  exp_reduce_v<VB>(x0, tiny0, kd0, r0);
  exp_reduce_v<VB>(x1, tiny1, kd1, r1);
  const F2 rf = concat_f<F, F2>(__builtin_convertvector(r0, F), __builtin_convertvector(r1, F),
                                std::make_index_sequence<2 * W>{});
  const F2 p = exp_poly_f<F2>(rf, F2{} + exp_cf(7));
  F p0, p1;
  std::memcpy(&p0, &p, sizeof p0);
  std::memcpy(&p1, reinterpret_cast<const char*>(&p) + sizeof p0, sizeof p1);
  const D y0 = __builtin_convertvector(p0, D) * exp_scale_v<VB>(kd0);
  const D y1 = __builtin_convertvector(p1, D) * exp_scale_v<VB>(kd1);
  e0 = tiny0 ? splat<VB>(0.0) : y0;
  e1 = tiny1 ? splat<VB>(0.0) : y1;
}

// The row's exp (see sk_exp_row in row_math.h).
template <int VB, class S>
LS_SK_INLINE typename VT<VB>::f64 sk_exp_row_v(typename VT<VB>::f64 x) {
  if constexpr (sizeof(S) <= 4) {
    return sk_exp_fv<VB>(x);
  } else {
    return sk_exp_v<VB>(x);
  }
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
  // Registers in pairs (the float32-precision exp evaluates the polynomial
  // of a pair on one register of float lanes); value k + q W + l goes to
  // accumulator lane l of register q % A, i.e. to accumulator k % 8, in
  // increasing k.
  constexpr int STEP = 2 * W > 8 ? 2 * W : 8;
  constexpr int R = STEP / W;
  k = 0;
  for (; k + STEP <= K; k += STEP) {
    for (int q = 0; q < R; q += 2) {
      const D d0 = load_d<VB>(T + k + q * W) - mm, d1 = load_d<VB>(T + k + (q + 1) * W) - mm;
      D e0, e1;
      if constexpr (sizeof(S) <= 4) {
        sk_exp_fv2<VB>(d0, d1, e0, e1);
      } else {
        e0 = sk_exp_v<VB>(d0);
        e1 = sk_exp_v<VB>(d1);
      }
      store_d<VB>(T + k + q * W, d0);
      store_d<VB>(E + k + q * W, e0);
      store_d<VB>(T + k + (q + 1) * W, d1);
      store_d<VB>(E + k + (q + 1) * W, e1);
      acc[q % A] = acc[q % A] + e0;
      acc[(q + 1) % A] = acc[(q + 1) % A] + e1;
    }
  }
  double a[8];
  for (int j = 0; j < A; ++j)
    for (int l = 0; l < W; ++l) a[j * W + l] = acc[j][l];
  for (; k < K; ++k) {
    const double d = T[k] - m;
    const double e = sk_exp_row<S>(d);
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
