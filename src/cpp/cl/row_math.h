// Per-row math of confident learning, shared by the C++ (OpenMP) kernels and
// the CUDA code: every function here is __host__ __device__ under nvcc, so
// the CPU tests exercise the formulas the GPU runs.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "common/dtype.h"
#include "common/summation.h"
#include "common/validation.h"

namespace ls {

// The adaptive sketch (one read of the dump): a class j != y of a row is
// "wanted" when it may still matter once the pass is over -- it may pass its
// class's threshold (v >= floor_j, a proven lower bound of the final cut), or
// its margin v - P[y] may still win a prune selection (v - g >= tau, a
// budget-driven level). Entries that are not wanted are only bounded (by the
// row's largest left-out value), never needed exactly.
LS_HD bool sketch_wanted(double v, double floor_j, double g, double tau) {
  return v >= floor_j || v - g >= tau;
}

// ---------------------------------------------------------------------------
// Per-row quantities. A row is read as value(k) = Num<S>::load(row[k*stride]).
// ---------------------------------------------------------------------------

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

// The sweep policy of RowOps::row: the scalar definition (the GPU's code).
struct ScalarSweep {
  template <class Ops, class C, int VB, class S>
  LS_HD static typename Ops::Seg run(const S* row, std::ptrdiff_t stride, int32_t K, int32_t y, const C* cut) {
    return Ops::sweep_row_scalar(row, stride, K, y, cut);
  }
};

template <class S>
struct RowOps {
  using N_ = Num<S>;
  using V = typename N_::V;

  // Everything one row contributes, in one sweep (the definition, and the
  // GPU's code; the host passes an explicit-SIMD twin of it for contiguous
  // rows as the sweep policy of row(), cl/row_simd.h):
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
    return sweep_row_part<C>(row, stride, 0, 1, K, y, cut);  // every class, in order
  }

  // The part of the sweep over the classes k = k0, k0 + step, ... (< K): the
  // same comparisons as sweep_row_scalar, for a row swept by `step` threads
  // at once (the GPU's warp-per-row kernel); combine() merges the parts.
  template <class C>
  LS_HD static Seg sweep_row_part(const S* row, std::ptrdiff_t stride, int32_t k0, int32_t step, int32_t K,
                                  int32_t y, const C* cut) {
    Seg g;
    g.vmax = -INFINITY;
    g.imax = INT32_MAX;
    g.vmin = INFINITY;
    g.sum = V(0);
    g.n_above = 0;
    g.ipass = -1;
    for (int32_t k = k0; k < K; k += step) {
      const V v = N_::load(row[std::ptrdiff_t(k) * stride]);
      if (k != y && v > g.vmax) {
        g.vmax = v;
        g.imax = k;
      }
      g.vmin = v < g.vmin ? v : g.vmin;
      if (cut && C(v) >= cut[k]) {
        g.n_above += 1;
        g.ipass = k > g.ipass ? k : g.ipass;
      }
      g.sum += v;
    }
    return g;
  }

  // Two parts of one row's sweep (disjoint class sets) as one: the larger
  // max (its first index on equal values), the smaller min, counts added,
  // the largest passing index. Order-independent except for `sum`, which
  // only feeds the tolerance test of validation (see Seg).
  LS_HD static Seg combine(const Seg& a, const Seg& b) {
    Seg g;
    const bool take_b = b.vmax > a.vmax || (b.vmax == a.vmax && b.imax < a.imax);
    g.vmax = take_b ? b.vmax : a.vmax;
    g.imax = take_b ? b.imax : a.imax;
    g.vmin = b.vmin < a.vmin ? b.vmin : a.vmin;
    g.sum = a.sum + b.sum;
    g.n_above = a.n_above + b.n_above;
    g.ipass = b.ipass > a.ipass ? b.ipass : a.ipass;
    return g;
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
  // sweep. Sweep: how the row is swept (ScalarSweep, the definition; the host
  // passes simd::SimdSweep), VB its vector bytes (16 baseline x86-64, 32 in
  // the AVX2 clone of the row kernel).
  template <class C, int VB = 16, class Sweep = ScalarSweep>
  LS_HD static RowResult row(const S* row, std::ptrdiff_t stride, int64_t K, int64_t y, const C* cut,
                             const Bounds& bd) {
    const Seg sg = Sweep::template run<RowOps, C, VB>(row, stride, int32_t(K), int32_t(y), cut);
    return finish(row, stride, K, y, cut, bd, sg);
  }

  // Everything row() derives from the row's sweep `sg` (however it was swept:
  // by the scalar definition, the SIMD twin, or W rows at once in lanes).
  template <class C>
  LS_HD static RowResult finish(const S* row, std::ptrdiff_t stride, int64_t K, int64_t y, const C* cut,
                                const Bounds& bd, const Seg& sg) {
    RowResult r;
    r.guess = -1;
    r.argmax = -1;
    r.keep = 0;
    r.err = ROW_OK;
    r.err_col = -1;
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

// P[j] - P[k] in the input dtype, exact as double.
template <class S>
LS_HD double margin(const S* row, std::ptrdiff_t stride, int64_t j, int64_t k) {
  using N_ = Num<S>;
  return double(N_::rnd(N_::load(row[j * stride]) - N_::load(row[k * stride])));
}

}  // namespace ls
