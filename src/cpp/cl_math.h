// Per-element and per-row math of confident learning, shared by the C++
// (OpenMP) kernels and the CUDA kernels: every function here is
// __host__ __device__ under nvcc, so the CPU tests exercise the formulas the
// GPU runs.
//
// Exactness rules (they reproduce NumPy, the reference, bit for bit):
//  * arithmetic happens "in the input dtype": float32 in float, float64 in
//    double, float16 as NumPy does it (convert to float, operate, round back
//    to half after every operation);
//  * sums use NumPy's pairwise summation (blocks of 128, eight partial sums,
//    halves split on multiples of 8);
//  * argmax returns the first maximum; ties elsewhere go to the lower index.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
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

}  // namespace ls

#include "cl_simd.h"

namespace ls {

// ---------------------------------------------------------------------------
// NumPy's pairwise summation of n values read through `get(i)`, accumulated
// in type A. Identical to numpy's <TYPE>_pairwise_sum (which numpy uses for
// add.reduce over a contiguous or strided axis).
// ---------------------------------------------------------------------------
template <class A, class Get>
LS_HD A pairwise_sum(Get get, std::ptrdiff_t lo, std::ptrdiff_t n) {
  if (n < 8) {
    A res = A(-0.0);
    for (std::ptrdiff_t i = 0; i < n; ++i) res += get(lo + i);
    return res;
  }
  if (n <= 128) {
    A r[8];
    for (int j = 0; j < 8; ++j) r[j] = get(lo + j);
    std::ptrdiff_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int j = 0; j < 8; ++j) r[j] += get(lo + i + j);
    }
    A res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += get(lo + i);
    return res;
  }
  std::ptrdiff_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum<A>(get, lo, n2) + pairwise_sum<A>(get, lo + n2, n - n2);
}

// np.mean of n values of storage type S, in index order (the semantics of
// np.mean(pred_probs[labels == k, k])).
//  float32/float64: pairwise sum in the dtype, then sum / n in the dtype.
//  float16: NumPy accumulates in float32 through 8192-element cast buffers
//  (pairwise inside each buffer, buffers added in order), divides in float32
//  and rounds the mean to half.
template <class S>
struct Mean {
  template <class Get>
  LS_HD static double run(Get get, std::ptrdiff_t n) {
    using V = typename Num<S>::V;
    const V s = pairwise_sum<V>(get, 0, n);
    return double(V(s / V(n)));
  }
};
template <>
struct Mean<half_t> {
  template <class Get>
  LS_HD static double run(Get get, std::ptrdiff_t n) {
    const std::ptrdiff_t buf = 8192;
    float acc = 0.0f;
    for (std::ptrdiff_t lo = 0; lo < n; lo += buf) {
      const std::ptrdiff_t m = (n - lo) < buf ? (n - lo) : buf;
      acc = acc + pairwise_sum<float>(get, lo, m);
    }
    const float mean = acc / float(n);
    return double(half_to_float(float_to_half(mean)));
  }
};

// ---------------------------------------------------------------------------
// Per-row quantities. A row is read as value(k) = Num<S>::load(row[k*stride]).
// ---------------------------------------------------------------------------

// Validation bounds (see labelsift._arrays for the documented policy).
struct Bounds {
  double lo;       // smallest accepted probability
  double hi;       // largest accepted probability
  double sum_tol;  // |row sum - 1| accepted
};

// Result codes for a row that fails validation.
enum RowError : int32_t {
  ROW_OK = 0,
  ROW_NAN = 1,
  ROW_INF = 2,
  ROW_RANGE = 3,
  ROW_SUM = 4,
};

// Everything confident learning needs from one row, computed in a few
// vectorisable sweeps over the row:
//  guess        confident guess of the true label (-1: no class above its
//               threshold); needs `cut` = thresholds - 1e-6 (exact, as double)
//  argmax       first index of the row maximum
//  keep         1 when the given label is the argmax after adding 1e-6 to
//               P[y] in the input dtype (cleanlab's final unflagging test)
//  max_other    max over k != y of P[k] (exact, as double)
//  err/err_col  validation result
struct RowResult {
  int32_t guess;
  int32_t argmax;
  uint8_t keep;
  double max_other;
  int32_t err;
  int64_t err_col;
};

template <class S>
struct RowOps {
  using N_ = Num<S>;
  using V = typename N_::V;

  // Max, min, count of entries passing their cut and the plain sum over
  // [a, b), in one vectorisable loop. Validation is derived from them: a
  // value out of range shows in min/max, a NaN or inf poisons the sum (which
  // is only compared with a tolerance, so reassociation is fine; max, min and
  // counts are exact). C is the type the cut is compared in: the input's
  // arithmetic type when the thresholds have the input dtype (exact), double
  // when they were promoted to float64. STRIDE1: contiguous row.
  // Everything one row contributes, in one sweep (the definition; the host
  // uses an explicit-SIMD twin of it for contiguous rows, cl_simd.h):
  //   vmax / imax   max over k != y and the FIRST index holding it
  //   vmin          min over all k (validation)
  //   n_above       entries with value >= cut (when cut != null)
  //   ipass         the largest index passing its cut (the passing class
  //                 when exactly one passes)
  //   sum           plain sum (validation only: a NaN/inf poisons it;
  //                 reassociation is harmless, it is compared with a tolerance)
  // C is the type the cut is compared in (the input's arithmetic type when the
  // thresholds have the input dtype, which is exact; double after the
  // reference's float64 promotion).
  struct Seg {
    V vmax, vmin, sum;
    int32_t imax, n_above, ipass;
  };

  template <class C>
  LS_HD static Seg sweep_row_scalar(const S* row, std::ptrdiff_t stride, int32_t K, int32_t y, const C* cut) {
    Seg g;
    g.vmax = -INFINITY;
    g.imax = INT32_MAX;
    g.vmin = INFINITY;
    g.sum = V(0);
    g.n_above = 0;
    g.ipass = -1;
    for (int32_t k = 0; k < K; ++k) {
      const V v = N_::load(row[std::ptrdiff_t(k) * stride]);
      if (k != y && v > g.vmax) {
        g.vmax = v;
        g.imax = k;
      }
      g.vmin = v < g.vmin ? v : g.vmin;
      if (cut && C(v) >= cut[k]) {
        g.n_above += 1;
        g.ipass = k;
      }
      g.sum += v;
    }
    return g;
  }

  // VB: vector bytes of the host SIMD path (16 baseline x86-64, 32 in the
  // AVX2 clone of the row kernel).
  template <class C, int VB = 16>
  LS_HD static Seg sweep_row(const S* row, std::ptrdiff_t stride, int32_t K, int32_t y, const C* cut) {
#if defined(LS_HAVE_SIMD_SWEEP) && !defined(__CUDA_ARCH__)
    if constexpr (std::is_same<C, V>::value) {
      if (stride == 1) return simd::sweep_row_contig<VB, S, V, Seg>(row, K, y, cut);
    }
#endif
    return sweep_row_scalar(row, stride, K, y, cut);
  }

  LS_HD static void locate_error(const S* row, std::ptrdiff_t stride, int64_t K, const Bounds& bd, RowResult& r) {
    const V lo = V(bd.lo), hi = V(bd.hi);
    for (int64_t k = 0; k < K; ++k) {
      const V v = N_::load(row[k * stride]);
      if (v != v) { r.err = ROW_NAN; r.err_col = k; return; }
      if (v == V(INFINITY) || v == V(-INFINITY)) { r.err = ROW_INF; r.err_col = k; return; }
      if (!(v >= lo && v <= hi)) { r.err = ROW_RANGE; r.err_col = k; return; }
    }
    r.err = ROW_SUM;
    r.err_col = -1;
  }

  // Guess, argmax, keep flag, max_other and validation for one row with given
  // label y. `cut` may be null (no guess wanted); the argmax comes free with the
  // sweep.
  template <class C, int VB = 16>
  LS_HD static RowResult row(const S* row, std::ptrdiff_t stride, int64_t K, int64_t y, const C* cut,
                             const Bounds& bd) {
    RowResult r;
    r.guess = -1;
    r.argmax = -1;
    r.keep = 0;
    r.err = ROW_OK;
    r.err_col = -1;
    const Seg sg = sweep_row<C, VB>(row, stride, int32_t(K), int32_t(y), cut);
    const V py = N_::load(row[y * stride]);
    const V s = sg.sum;
    const bool py_pass = cut && C(py) >= cut[y];
    const int32_t n_above = sg.n_above;
    const V m_other = sg.vmax;
    const V mx = m_other > py ? m_other : py;
    const V lo = V(bd.lo), hi = V(bd.hi);
    const bool in_range = sg.vmin >= lo && mx <= hi;
    if (!in_range || !(double(s) - 1.0 <= bd.sum_tol && 1.0 - double(s) <= bd.sum_tol)) {
      locate_error(row, stride, K, bd, r);
      return r;
    }
    r.max_other = double(m_other);
    // keep: argmax of the row with P[y] += 1e-6 (in the dtype) is y, i.e. it
    // beats every earlier class strictly and every later one or ties. The
    // first index of the max over the others tells which side it lies on
    // (all earlier classes are strictly below it when it lies after y).
    const V py_adj = N_::rnd(py + N_::from_double(1e-6));
    r.keep = (K == 1 || (sg.imax < y ? py_adj > m_other : py_adj >= m_other)) ? 1 : 0;
    // first index of the row maximum
    const int64_t amax = (K == 1 || py > m_other || (py == m_other && y < sg.imax)) ? y : sg.imax;
    r.argmax = int32_t(amax);
    if (cut) {
      if (n_above == 1)
        r.guess = py_pass ? int32_t(y) : sg.ipass;
      else if (n_above >= 2)
        r.guess = int32_t(amax);
    }
    return r;
  }

  // sum_k xlogy(P[k], P[k]) as scipy computes it for this dtype, summed over
  // the row with NumPy's pairwise scheme in the dtype scipy returns:
  //   float32 -> float32 (x * logf(x)), float64 and float16 -> float64.
  // Values are clipped to [0, 1] inside the log: an accepted value in
  // [-1e-6, 0) counts as 0 (0 log 0 = 0) and one in (1, 1 + 1e-4] as 1, so
  // the entropy is never negative or NaN (values in [0, 1] are unchanged).
  LS_HD static double xlogx_row_sum(const S* row, std::ptrdiff_t stride, int64_t K);

  // Self-confidence and max-other of the threshold-adjusted row
  //   P' = (P - t) + max(t), P' /= sum(P')    (cleanlab's adjust_pred_probs)
  // computed in dtype A = result_type(P, t) (A = V for a threshold vector of
  // the input dtype; double when t was promoted to float64).
  template <class A>
  LS_HD static void adjusted(const S* row, std::ptrdiff_t stride, int64_t K, int64_t y, const double* t, double tmax,
                             double& sc, double& mo);
};

template <>
LS_HD double RowOps<float>::xlogx_row_sum(const float* row, std::ptrdiff_t stride, int64_t K) {
  auto get = [&](std::ptrdiff_t k) -> float {
    const float x = row[k * stride];
    return (x <= 0.0f || x >= 1.0f) ? 0.0f : x * logf(x);
  };
  return double(pairwise_sum<float>(get, 0, K));
}
template <>
LS_HD double RowOps<double>::xlogx_row_sum(const double* row, std::ptrdiff_t stride, int64_t K) {
  auto get = [&](std::ptrdiff_t k) -> double {
    const double x = row[k * stride];
    return (x <= 0.0 || x >= 1.0) ? 0.0 : x * log(x);
  };
  return pairwise_sum<double>(get, 0, K);
}
template <>
LS_HD double RowOps<half_t>::xlogx_row_sum(const half_t* row, std::ptrdiff_t stride, int64_t K) {
  auto get = [&](std::ptrdiff_t k) -> double {
    const double x = double(half_to_float(row[k * stride].bits));
    return (x <= 0.0 || x >= 1.0) ? 0.0 : x * log(x);
  };
  return pairwise_sum<double>(get, 0, K);
}

// Rounding of an A-typed value computed from S-typed inputs: when A is the
// storage's arithmetic type, round as the storage dtype does (half!).
template <class S, class A>
struct ARound {
  LS_HD static A rnd(A x) { return x; }
};
template <>
struct ARound<half_t, float> {
  LS_HD static float rnd(float x) { return Num<half_t>::rnd(x); }
};

template <class S>
template <class A>
LS_HD void RowOps<S>::adjusted(const S* row, std::ptrdiff_t stride, int64_t K, int64_t y, const double* t,
                               double tmax, double& sc, double& mo) {
  using R = ARound<S, A>;
  const A tm = A(tmax);
  auto adj = [&](std::ptrdiff_t k) -> A {
    const A v = A(N_::load(row[k * stride]));
    return R::rnd(R::rnd(v - A(t[k])) + tm);
  };
  // the row sum of P' in A (half rows are summed in float and rounded once)
  const A s = R::rnd(pairwise_sum<A>(adj, 0, K));
  A m = -INFINITY;
  for (int64_t k = 0; k < K; ++k) {
    if (k == y) continue;
    const A v = adj(k);
    m = v > m ? v : m;
  }
  sc = double(R::rnd(adj(y) / s));
  mo = double(R::rnd(m / s));
}

// Key of the top-c selections of the prune methods: larger margin first,
// then lower index. A total order, so the selected set is unique.
struct Cand {
  double key;
  int64_t idx;
};
LS_HD bool cand_better(const Cand& a, const Cand& b) {
  return a.key > b.key || (a.key == b.key && a.idx < b.idx);
}

// P[j] - P[k] in the input dtype, exact as double.
template <class S>
LS_HD double margin(const S* row, std::ptrdiff_t stride, int64_t j, int64_t k) {
  using N_ = Num<S>;
  return double(N_::rnd(N_::load(row[j * stride]) - N_::load(row[k * stride])));
}

}  // namespace ls
