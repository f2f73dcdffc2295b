// Per-row math of Sinkhorn self-labelling, shared by the C++ (OpenMP)
// kernels and the CUDA code: every function here is __host__ __device__
// under nvcc. This scalar code is the DEFINITION; the host's explicit-SIMD
// twin (sinkhorn/row_simd.h) performs the same operations in the same order
// on every value, so results do not depend on the ISA:
//
//  * exp is labelsift's own polynomial exp (sk_exp below; sk_exp_f, at
//    float32 precision, for float32 and float16 scores), not libm's: the
//    scalar and the vector forms are the same sequence of IEEE operations
//    (no FMA: -ffp-contract=off, --fmad=false), so they agree bit for bit;
//  * the row sum of exp values uses 8 interleaved accumulators (value k goes
//    to accumulator k % 8, in increasing k), combined as
//    ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)) -- the order an 8-lane register
//    (or two 4-lane, or four 2-lane ones) produces naturally;
//  * max and the first index of the max are exact in any order.
//
// One row i of the fused pass (scores x, scale lam, column potentials f,
// row weight b_i):
//   t_k = lam * x_k + f_k                 (double)
//   m   = max_k t_k, label = first k with t_k == m
//   e_k = sk_exp_row<S>(t_k - m)          (all arguments <= 0, e_label = 1)
//   s   = sum_k e_k                       (8-accumulator order)
//   pi_k = e_k * (b_i / s)                the row-normalised plan (rows exact)
//   row potential g_i = log(b_i) - log(s) - m   (log pi_k = t_k + g_i)
// and contributes pi_k to the column sums and t_k - m + log(b_i / s) (the
// log plan entry) to the column maxima, which stand in for a column's log
// mass when its linear mass underflows (see sinkhorn/kernels.h).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/dtype.h"

namespace ls {
namespace sk {

// ---------------------------------------------------------------------------
// exp(x) for x <= 0, the same on every device and ISA.
//   x < kExpMin (-708): 0 (the result would be below 2^-1021; such a value is
//   at most 1e-307 of the row's largest entry, which is 1);
//   else: n = round-to-even(x / ln 2) via the 1.5 * 2^52 trick, r = x - n ln2
//   (Cody-Waite, fdlibm's two-part ln 2), the degree-12 Taylor polynomial of
//   exp on |r| <= ln2 / 2 (truncation error < 2e-16 relative), Horner form,
//   times 2^n built in the exponent bits. exp(0) = 1 exactly.
// Accuracy: within a few ulp of the correctly rounded exp (the tests compare
// with np.exp). Valid for x <= 709; the callers pass x <= 0 only.
// ---------------------------------------------------------------------------
constexpr double kExpMin = -708.0;
constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52
constexpr double kLog2e = 1.4426950408889634074;
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
// The Taylor coefficients 1 / i! as double and as float (constexpr functions,
// not arrays: namespace-scope arrays are not visible in CUDA device code).
LS_HD constexpr double exp_c(int i) {
  double f = 1.0;
  for (int j = 2; j <= i; ++j) f *= double(j);
  return 1.0 / f;
}
LS_HD constexpr float exp_cf(int i) {
  float f = 1.0f;
  for (int j = 2; j <= i; ++j) f *= float(j);
  return 1.0f / f;
}

LS_HD int64_t dbits(double x) {
  int64_t u;
  std::memcpy(&u, &x, 8);
  return u;
}
LS_HD double bitsd(int64_t u) {
  double x;
  std::memcpy(&x, &u, 8);
  return x;
}

// The range reduction shared by sk_exp and sk_exp_f: x clamped at kExpMin
// (tiny: the result is 0), kd = x / ln 2 + 1.5 * 2^52 (its low bits hold
// n = round-to-even(x / ln 2)), r = x - n ln 2 (Cody-Waite, two-part ln 2).
struct ExpArg {
  double kd, r;
  bool tiny;
};
LS_HD ExpArg exp_reduce(double x) {
  ExpArg a;
  a.tiny = x < kExpMin;
  const double xc = a.tiny ? kExpMin : x;
  a.kd = xc * kLog2e + kMagic;
  const double nd = a.kd - kMagic;
  a.r = (xc - nd * kLn2Hi) - nd * kLn2Lo;
  return a;
}
// 2^n for the kd of exp_reduce, built in the exponent bits.
LS_HD double exp_scale(double kd) {
  const int64_t n = dbits(kd) - dbits(kMagic);  // round(x / ln 2), as an integer
  return bitsd((n + 1023) << 52);
}

// The degree-12 polynomial in Horner form, on a double or on double lanes
// (V; p enters as exp_c(12) in V): the same operations either way.
template <class V>
LS_HD V exp_poly_d(V r, V p) {
  p = p * r + exp_c(11);
  p = p * r + exp_c(10);
  p = p * r + exp_c(9);
  p = p * r + exp_c(8);
  p = p * r + exp_c(7);
  p = p * r + exp_c(6);
  p = p * r + exp_c(5);
  p = p * r + exp_c(4);
  p = p * r + exp_c(3);
  p = p * r + exp_c(2);
  p = p * r + exp_c(1);
  p = p * r + exp_c(0);
  return p;
}

LS_HD double sk_exp(double x) {
  const ExpArg a = exp_reduce(x);
  const double y = exp_poly_d(a.r, exp_c(12)) * exp_scale(a.kd);
  return a.tiny ? 0.0 : y;
}

// ---------------------------------------------------------------------------
// exp(x) for x <= 0 at float32 precision, for float32 and float16 scores
// (whose values carry no more than that): the same range reduction as
// sk_exp in double (n = round(x / ln 2), r = x - n ln 2, exact to ~1e-16),
// then r rounded to float and the degree-7 Taylor polynomial of exp on
// |r| <= ln 2 / 2 (truncation error < 6e-9) in float32 Horner form, widened
// and times 2^n. Relative error below 3e-7 over the whole range (n carries
// the magnitude, so no loss for large |x|); half the work of sk_exp in a
// vector, since the polynomial runs on float lanes. x < kExpMin: 0.
// ---------------------------------------------------------------------------

// The degree-7 float polynomial, on a float or on float lanes (p enters as
// exp_cf(7) in V).
template <class V>
LS_HD V exp_poly_f(V rf, V p) {
  p = p * rf + exp_cf(6);
  p = p * rf + exp_cf(5);
  p = p * rf + exp_cf(4);
  p = p * rf + exp_cf(3);
  p = p * rf + exp_cf(2);
  p = p * rf + exp_cf(1);
  p = p * rf + exp_cf(0);
  return p;
}

LS_HD double sk_exp_f(double x) {
  const ExpArg a = exp_reduce(x);
  const double y = double(exp_poly_f(float(a.r), exp_cf(7))) * exp_scale(a.kd);
  return a.tiny ? 0.0 : y;
}

// The exp of a row's values: float32 precision for float32/float16 scores,
// float64 for float64 ones.
template <class S>
LS_HD double sk_exp_row(double x) {
  if constexpr (sizeof(S) <= 4) {
    return sk_exp_f(x);
  } else {
    return sk_exp(x);
  }
}

// 8-accumulator sum: the combination step (see the header comment).
LS_HD double combine8(const double* a) {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// What one row gives the pass.
struct RowOut {
  double m;      // max_k t_k
  double s;      // sum_k exp(t_k - m)
  int32_t label; // first index of the max
  bool finite;   // every t_k finite (a NaN/inf score or an overflowing lam * x is not)
};

// Sweeps 1 and 2 of a row (scalar definition): T[k] = t_k - m and E[k] = e_k
// are left in the caller's K-long buffers for sweep 3.
template <class S>
LS_HD RowOut row_stats(const S* x, std::ptrdiff_t stride, int64_t K, double lam, const double* f, double* T,
                       double* E) {
  RowOut o;
  double m = -INFINITY;
  int32_t am = 0;
  double chk = 0.0;  // stays 0 unless some t is inf or NaN (t - t is then NaN)
  for (int64_t k = 0; k < K; ++k) {
    const double t = lam * double(Num<S>::load(x[k * stride])) + f[k];
    T[k] = t;
    chk = chk + (t - t);
    if (t > m) {
      m = t;
      am = int32_t(k);
    }
  }
  o.finite = (chk == 0.0);
  if (!o.finite) {  // the caller reports the row; make the rest harmless
    o.m = 0.0;
    o.s = 1.0;
    o.label = 0;
    for (int64_t k = 0; k < K; ++k) {
      T[k] = 0.0;
      E[k] = 0.0;
    }
    return o;
  }
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t k = 0; k < K; ++k) {
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

// Sweep 3 (scalar definition): add the row's plan to the column sums and its
// log plan entries to the column maxima; write the plan row if asked (in P's
// dtype: float or double).
template <class P>
LS_HD void row_accumulate(const double* T, const double* E, int64_t K, double w, double lw, double* acc, double* cmax,
                          P* plan, double pw) {
  for (int64_t k = 0; k < K; ++k) {
    acc[k] += E[k] * w;
    const double u = T[k] + lw;
    cmax[k] = u > cmax[k] ? u : cmax[k];
    if (plan) plan[k] = P(E[k] * pw);
  }
}

// One step of a per-column online log-sum-exp (the initial column pass of
// SeLa / SwAV): (M, s) hold max and sum of exp(v - M) so far.
LS_HD void lse_push(double v, double& M, double& s) {
  if (v > M) {
    s = s * sk_exp(M - v) + 1.0;
    M = v;
  } else {
    s = s + sk_exp(v - M);
  }
}
// Merge (M2, s2) into (M, s).
LS_HD void lse_merge(double M2, double s2, double& M, double& s) {
  if (s2 == 0.0) return;
  if (s == 0.0) {
    M = M2;
    s = s2;
    return;
  }
  if (M2 > M) {
    s = s * sk_exp(M - M2) + s2;
    M = M2;
  } else {
    s = s + s2 * sk_exp(M2 - M);
  }
}

}  // namespace sk
}  // namespace ls
