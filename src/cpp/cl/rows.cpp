#include "cl/kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <type_traits>

#include "cl/row_math.h"
#include "cl/row_simd.h"
#include "common/cpu.h"
#include "common/parallel.h"

namespace ls {

#ifdef LS_HAVE_SIMD_SWEEP
using HostSweep = simd::SimdSweep;  // explicit SIMD for contiguous rows
#else
using HostSweep = ScalarSweep;
#endif

// Rows of at most this many classes are swept W at a time, one per lane
// (simd::sweep_rows_lanes); longer ones one at a time across the lanes.
// Measured (AMD EPYC, AVX2 clone, single thread, validate): at K = 10 the
// lanes take 8.0 / 6.9 / 10.5 ns a row (float64 / float32 / float16) against
// 27 / 37 / 46 ns; they stop paying beyond about K = 80 for float64 and
// K = 160 for the 4- and 2-byte types.
template <class S>
constexpr int64_t lane_sweep_max_k() {
  return sizeof(S) == 8 ? 80 : 160;
}

// The rows [i0, i1) of one thread; stops at the first invalid row (its index
// goes to first_bad). Compiled twice: for the baseline ISA and, chosen at run
// time, for AVX2/F16C (flatten inlines the shared row math so it vectorises
// with the wider registers; no FMA, and -ffp-contract=off, so results are
// bit-identical).
template <class S, class C, int VB>
static void rows_range(const Mat& P, const int64_t* labels, const C* cut, RowPassOut out, Bounds bd,
                       bool validate_only, int64_t i0, int64_t i1, int64_t* first_bad) {
  const S* base = static_cast<const S*>(P.data);
  // false when row i is invalid (then *first_bad = i)
  auto put = [&](int64_t i, const RowResult& r) {
    if (r.err != ROW_OK) {
      *first_bad = i;
      return false;
    }
    if (validate_only) return true;
    if (out.guess) out.guess[i] = r.guess;
    if (out.argmax) out.argmax[i] = r.argmax;
    if (out.keep) out.keep[i] = r.keep;
    if (out.max_other) out.max_other[i] = r.max_other;
    return true;
  };
  int64_t i = i0;
#ifdef LS_HAVE_SIMD_SWEEP
  using V = typename Num<S>::V;
  if constexpr (std::is_same<C, V>::value) {
    // Short rows: W rows at once, one per lane (same results as the scalar
    // definition, bit for bit).
    using Ops = RowOps<S>;
    constexpr int W = simd::Lanes<S, VB>::W;
    if (P.k <= lane_sweep_max_k<S>()) {
      typename Ops::Seg sg[W];
      for (; i + W <= i1; i += W) {
        simd::sweep_rows_lanes<VB, S, V>(base + i * P.s0, P.s0, P.s1, int32_t(P.k), labels + i, cut, sg);
        for (int j = 0; j < W; ++j) {
          const S* row = base + (i + j) * P.s0;
          if (!put(i + j, Ops::finish(row, P.s1, P.k, labels[i + j], cut, bd, sg[j]))) return;
        }
      }
    }
  }
#endif
  for (; i < i1; ++i) {
    if (!put(i, RowOps<S>::template row<C, VB, HostSweep>(base + i * P.s0, P.s1, P.k, labels[i], cut, bd))) return;
  }
}

#ifdef LS_HAVE_AVX2_F16C_TWINS
template <class S, class C>
__attribute__((target("avx2,f16c"), flatten)) static void rows_range_avx2(const Mat& P, const int64_t* labels,
                                                                          const C* cut, RowPassOut out, Bounds bd,
                                                                          bool validate_only, int64_t i0, int64_t i1,
                                                                          int64_t* first_bad) {
  rows_range<S, C, 32>(P, labels, cut, out, bd, validate_only, i0, i1, first_bad);
}
#endif

template <class S, class C>
static RowPassError row_pass_t(const Mat& P, const int64_t* labels, const C* cut, RowPassOut out,
                               const Bounds& bd, int nthreads, bool validate_only) {
  auto fn = &rows_range<S, C, 16>;
#ifdef LS_HAVE_AVX2_F16C_TWINS
  if (cpu_has_avx2_f16c()) fn = &rows_range_avx2<S, C>;
#endif
  int64_t first_bad = std::numeric_limits<int64_t>::max();
  // Chunks of ~64k values handed out dynamically: a thread that is
  // descheduled (a busy machine) holds up one chunk, not half the rows.
  // Each chunk stops at its first invalid row; the smallest over all chunks
  // is the first invalid row overall.
  const int64_t rows_per_chunk = std::max<int64_t>(16, (int64_t(1) << 16) / std::max<int64_t>(1, P.k));
  const int64_t nchunks = (P.n + rows_per_chunk - 1) / rows_per_chunk;
  const int T = threads_for(nthreads, double(P.n) * double(P.k));
#pragma omp parallel for schedule(dynamic, 1) num_threads(T) if (T > 1) reduction(min : first_bad)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t i0 = c * rows_per_chunk, i1 = std::min(P.n, i0 + rows_per_chunk);
    int64_t bad = std::numeric_limits<int64_t>::max();
    fn(P, labels, cut, out, bd, validate_only, i0, i1, &bad);
    first_bad = std::min(first_bad, bad);
  }
  RowPassError e{-1, ROW_OK, -1};
  if (first_bad != std::numeric_limits<int64_t>::max()) {
    const S* base = static_cast<const S*>(P.data);
    const RowResult r = RowOps<S>::row(base + first_bad * P.s0, P.s1, P.k, labels[first_bad], cut, bd);
    e.row = first_bad;
    // The scalar re-sweep finds the same NaN, inf or out-of-range value (those
    // checks are exact); only the row-sum test depends on the summation order,
    // so a row the SIMD sweep rejected and the scalar one accepts is a sum error.
    e.code = r.err == ROW_OK ? ROW_SUM : r.err;
    e.col = r.err == ROW_OK ? -1 : r.err_col;
  }
  return e;
}

RowPassError row_pass(const Mat& P, const int64_t* labels, const double* cut64, const float* cut32, RowPassOut out,
                      const Bounds& bd, int nthreads) {
  require_host(P);
  RowPassError e{};
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    if constexpr (std::is_same_v<typename Num<S>::V, float>) {
      if (cut32 || !cut64) {
        e = row_pass_t<S, float>(P, labels, cut32, out, bd, nthreads, false);
        return;
      }
    } else if (cut32) {
      throw std::invalid_argument("a float32 cut needs a float16/float32 input");
    }
    e = row_pass_t<S, double>(P, labels, cut64, out, bd, nthreads, false);
  });
  return e;
}

RowPassError validate(const Mat& P, const int64_t* labels, const Bounds& bd, int nthreads) {
  require_host(P);
  RowPassError e{};
  RowPassOut none{nullptr, nullptr, nullptr, nullptr};
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    e = row_pass_t<S, typename Num<S>::V>(P, labels, nullptr, none, bd, nthreads, true);
  });
  return e;
}

void xlogx_rows(const Mat& P, const int64_t* rows, int64_t nrows, double* out, int nthreads) {
  require_host(P);
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    const S* base = static_cast<const S*>(P.data);
    const int64_t m = rows ? nrows : P.n;
    const int T = threads_for(nthreads, 10.0 * double(m) * double(P.k));  // a log per value
#pragma omp parallel for schedule(dynamic, 256) num_threads(T) if (T > 1)
    for (int64_t t = 0; t < m; ++t) {
      const int64_t i = rows ? rows[t] : t;
      out[t] = RowOps<S>::xlogx_row_sum(base + i * P.s0, P.s1, P.k);
    }
  });
}

void adjusted_rows(const Mat& P, const int64_t* labels, const double* t, bool t_is_f64, const int64_t* rows,
                   int64_t nrows, double* sc, double* mo, int nthreads) {
  require_host(P);
  double tmax = -INFINITY;
  for (int64_t k = 0; k < P.k; ++k) tmax = std::max(tmax, t[k]);
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    using V = typename Num<S>::V;
    const S* base = static_cast<const S*>(P.data);
    const int64_t m = rows ? nrows : P.n;
    const int T = threads_for(nthreads, 4.0 * double(m) * double(P.k));
#pragma omp parallel for schedule(dynamic, 256) num_threads(T) if (T > 1)
    for (int64_t r = 0; r < m; ++r) {
      const int64_t i = rows ? rows[r] : r;
      const S* row = base + i * P.s0;
      if (t_is_f64)
        RowOps<S>::template adjusted<double>(row, P.s1, P.k, labels[i], t, tmax, sc[r], mo[r]);
      else
        RowOps<S>::template adjusted<V>(row, P.s1, P.k, labels[i], t, tmax, sc[r], mo[r]);
    }
  });
}

}  // namespace ls
