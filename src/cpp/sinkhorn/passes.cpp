#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "common/parallel.h"
#include "sinkhorn/kernels.h"
#include "sinkhorn/row_math.h"
#include "sinkhorn/row_simd.h"

namespace ls {
namespace sk {

// ---------------------------------------------------------------------------
// The rows [i0, i1) of one chunk, compiled once per ISA (VB = 0: the scalar
// definition; 16/32/64: the SIMD twin with registers of that many bytes).
// ---------------------------------------------------------------------------
template <int VB, class S, class P>
static inline __attribute__((always_inline)) int64_t chunk_rows_t(const PassArgs& a, int64_t i0, int64_t i1,
                                                                  double* acc, double* cmax, double* T, double* E) {
  const S* base = static_cast<const S*>(a.X.data);
  const int64_t K = a.X.k;
  P* plan = static_cast<P*>(a.plan);
  int64_t bad = -1;
  for (int64_t i = i0; i < i1; ++i) {
    const S* row = base + i * a.X.s0;
    RowOut o;
#ifdef LS_HAVE_SK_SIMD
    if constexpr (VB > 0 && !std::is_same<S, half_t>::value) {
      if (a.X.s1 == 1)
        o = simd::row_stats_v<VB>(row, K, a.lam, a.f, T, E);
      else
        o = row_stats(row, a.X.s1, K, a.lam, a.f, T, E);
    } else
#endif
    {
      o = row_stats(row, a.X.s1, K, a.lam, a.f, T, E);
    }
    if (!o.finite && bad < 0) bad = i;
    const double bi = a.b ? a.b[i] : a.b0;
    const double w = bi / o.s;
    const double lw = std::log(bi) - std::log(o.s);
    if (a.labels) a.labels[i] = o.label;
    if (a.g) a.g[i] = lw - o.m;
    P* prow = plan ? plan + i * K : nullptr;
    const double pw = a.plan_unit_rows ? 1.0 / o.s : w;
#ifdef LS_HAVE_SK_SIMD
    if constexpr (VB > 0) {
      simd::row_accumulate_v<VB>(T, E, K, w, lw, acc, cmax, prow, pw);
    } else
#endif
    {
      row_accumulate(T, E, K, w, lw, acc, cmax, prow, pw);
    }
  }
  return bad;
}

template <int VB>
static int64_t chunk_dispatch(const PassArgs& a, int64_t i0, int64_t i1, double* acc, double* cmax, double* T,
                              double* E) {
  int64_t bad = -1;
  dispatch(a.X.dtype, [&](auto tag) {
    using S = decltype(tag);
    if (a.plan_dtype == F64)
      bad = chunk_rows_t<VB, S, double>(a, i0, i1, acc, cmax, T, E);
    else
      bad = chunk_rows_t<VB, S, float>(a, i0, i1, acc, cmax, T, E);
  });
  return bad;
}

using ChunkFn = int64_t (*)(const PassArgs&, int64_t, int64_t, double*, double*, double*, double*);

#if defined(__x86_64__) && defined(__GNUC__)
#define LS_SK_X86 1
__attribute__((target("avx2"), flatten)) static int64_t chunk_avx2(const PassArgs& a, int64_t i0, int64_t i1,
                                                                    double* acc, double* cmax, double* T, double* E) {
  return chunk_dispatch<32>(a, i0, i1, acc, cmax, T, E);
}
__attribute__((target("avx512f"), flatten)) static int64_t chunk_avx512(const PassArgs& a, int64_t i0, int64_t i1,
                                                                        double* acc, double* cmax, double* T,
                                                                        double* E) {
  return chunk_dispatch<64>(a, i0, i1, acc, cmax, T, E);
}
#endif

static ChunkFn chunk_fn(int isa) {
  switch (resolve_vec_isa(isa)) {
    case ISA_SCALAR: return &chunk_dispatch<0>;
#ifdef LS_HAVE_SK_SIMD
    case ISA_SSE2: return &chunk_dispatch<16>;
#endif
#ifdef LS_SK_X86
    case ISA_AVX2: return &chunk_avx2;
    case ISA_AVX512: return &chunk_avx512;
#endif
    default: return &chunk_dispatch<0>;
  }
}

int64_t pass(const PassArgs& a) {
  require_host(a.X);
  if (a.plan && a.plan_dtype != F32 && a.plan_dtype != F64) throw std::invalid_argument("plan must be float32/64");
  const int64_t N = a.X.n, K = a.X.k;
  const int64_t rpc = chunk_rows(N);
  const int64_t nch = (N + rpc - 1) / rpc;
  std::vector<double> acc(size_t(nch * K), 0.0), cmx(size_t(nch * K), -INFINITY);
  const ChunkFn fn = chunk_fn(a.isa);
  int64_t bad = std::numeric_limits<int64_t>::max();
  const int T = threads_for(a.nthreads, 20.0 * double(N) * double(K));  // an exp costs ~20 row-sweep visits
#pragma omp parallel num_threads(T) if (T > 1) reduction(min : bad)
  {
    std::vector<double> tb(size_t(K) + 8), eb(size_t(K) + 8);
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < nch; ++c) {
      const int64_t i0 = c * rpc, i1 = std::min(N, i0 + rpc);
      const int64_t b = fn(a, i0, i1, &acc[size_t(c * K)], &cmx[size_t(c * K)], tb.data(), eb.data());
      if (b >= 0) bad = std::min(bad, b);
    }
  }
  // the fixed-order reduction: chunk 0, 1, 2, ... for every column
  const int T2 = threads_for(a.nthreads, double(nch) * double(K));
#pragma omp parallel for schedule(static) num_threads(T2) if (T2 > 1)
  for (int64_t k = 0; k < K; ++k) {
    double s = 0.0, m = -INFINITY;
    for (int64_t c = 0; c < nch; ++c) {
      s += acc[size_t(c * K + k)];
      const double v = cmx[size_t(c * K + k)];
      m = v > m ? v : m;
    }
    a.colsum[k] = s;
    a.colmax[k] = m;
  }
  return (a.check && bad != std::numeric_limits<int64_t>::max()) ? bad : -1;
}

// The rows [i0, i1) of X pushed, in order, into one chunk's running
// log-sum-exp (Mc, Sc): K columns.
template <class St>
static void lse_rows(const Mat& X, double lam, const double* lb, double lb0, int64_t i0, int64_t i1, double* Mc,
                     double* Sc) {
  const St* base = static_cast<const St*>(X.data);
  const int64_t K = X.k;
  for (int64_t i = i0; i < i1; ++i) {
    const double lbi = lb ? lb[i] : lb0;
    const St* row = base + i * X.s0;
    for (int64_t k = 0; k < K; ++k) lse_push(lam * double(Num<St>::load(row[k * X.s1])) + lbi, Mc[k], Sc[k]);
  }
}

int64_t pass_pieces(const PassArgs& a, const int64_t* starts, int64_t npieces, double* acc, double* cmx) {
  require_host(a.X);
  if (a.plan && a.plan_dtype != F32 && a.plan_dtype != F64) throw std::invalid_argument("plan must be float32/64");
  const int64_t K = a.X.k;
  const ChunkFn fn = chunk_fn(a.isa);
  int64_t bad = std::numeric_limits<int64_t>::max();
  const int T = threads_for(a.nthreads, 20.0 * double(a.X.n) * double(K));
#pragma omp parallel num_threads(T) if (T > 1) reduction(min : bad)
  {
    std::vector<double> tb(size_t(K) + 8), eb(size_t(K) + 8);
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < npieces; ++c) {
      const int64_t b = fn(a, starts[c], starts[c + 1], &acc[size_t(c * K)], &cmx[size_t(c * K)], tb.data(),
                           eb.data());
      if (b >= 0) bad = std::min(bad, b);
    }
  }
  return (a.check && bad != std::numeric_limits<int64_t>::max()) ? bad : -1;
}

void col_lse_pieces(const Mat& X, double lam, const double* lb, double lb0, const int64_t* starts, int64_t npieces,
                    double* M, double* S, int nthreads) {
  require_host(X);
  const int64_t K = X.k;
  const int T = threads_for(nthreads, 20.0 * double(X.n) * double(K));
  dispatch(X.dtype, [&](auto tag) {
    using St = decltype(tag);
#pragma omp parallel for schedule(dynamic, 1) num_threads(T) if (T > 1)
    for (int64_t c = 0; c < npieces; ++c)
      lse_rows<St>(X, lam, lb, lb0, starts[c], starts[c + 1], &M[size_t(c * K)], &S[size_t(c * K)]);
  });
}

void lse_finish(const double* M, const double* S, int64_t nch, int64_t K, double* out) {
  for (int64_t k = 0; k < K; ++k) {
    double m = -INFINITY, s = 0.0;
    for (int64_t c = 0; c < nch; ++c) lse_merge(M[size_t(c * K + k)], S[size_t(c * K + k)], m, s);
    out[k] = m + std::log(s);
  }
}

void col_lse(const Mat& X, double lam, const double* lb, double lb0, double* out, int nthreads) {
  require_host(X);
  const int64_t N = X.n, K = X.k;
  const int64_t rpc = chunk_rows(N);
  const int64_t nch = (N + rpc - 1) / rpc;
  std::vector<double> M(size_t(nch * K), -INFINITY), S(size_t(nch * K), 0.0);
  std::vector<int64_t> starts(size_t(nch + 1));
  for (int64_t c = 0; c <= nch; ++c) starts[size_t(c)] = std::min(N, c * rpc);
  col_lse_pieces(X, lam, lb, lb0, starts.data(), nch, M.data(), S.data(), nthreads);
  lse_finish(M.data(), S.data(), nch, K, out);
}

// S selects the exp as the pass does: double -> sk_exp, float -> sk_exp_f.
template <int VB, class S>
static inline __attribute__((always_inline)) void exp_block(const double* x, double* out, int64_t lo, int64_t hi) {
  int64_t i = lo;
#ifdef LS_HAVE_SK_SIMD
  if constexpr (VB > 0) {
    constexpr int W = VB / 8;
    if constexpr (sizeof(S) <= 4) {
      for (; i + 2 * W <= hi; i += 2 * W) {
        typename simd::VT<VB>::f64 e0, e1;
        simd::sk_exp_fv2<VB>(simd::load_d<VB>(x + i), simd::load_d<VB>(x + i + W), e0, e1);
        simd::store_d<VB>(out + i, e0);
        simd::store_d<VB>(out + i + W, e1);
      }
    }
    for (; i + W <= hi; i += W) simd::store_d<VB>(out + i, simd::sk_exp_row_v<VB, S>(simd::load_d<VB>(x + i)));
  }
#endif
  for (; i < hi; ++i) out[i] = sk_exp_row<S>(x[i]);
}
using ExpFn = void (*)(const double*, double*, int64_t, int64_t);
template <class S>
static void exp_scalar(const double* x, double* out, int64_t lo, int64_t hi) { exp_block<0, S>(x, out, lo, hi); }
template <class S>
static void exp_sse2(const double* x, double* out, int64_t lo, int64_t hi) { exp_block<16, S>(x, out, lo, hi); }
#ifdef LS_SK_X86
template <class S>
__attribute__((target("avx2"), flatten)) static void exp_avx2(const double* x, double* out, int64_t lo, int64_t hi) {
  exp_block<32, S>(x, out, lo, hi);
}
template <class S>
__attribute__((target("avx512f"), flatten)) static void exp_avx512(const double* x, double* out, int64_t lo,
                                                                    int64_t hi) {
  exp_block<64, S>(x, out, lo, hi);
}
#endif

template <class S>
static ExpFn exp_fn(int isa) {
  ExpFn fn = &exp_scalar<S>;
  if (isa == ISA_SSE2) fn = &exp_sse2<S>;
#ifdef LS_SK_X86
  if (isa == ISA_AVX2) fn = &exp_avx2<S>;
  if (isa == ISA_AVX512) fn = &exp_avx512<S>;
#endif
  return fn;
}

void exp_values(const double* x, double* out, int64_t n, int isa, int nthreads, bool single) {
  isa = resolve_vec_isa(isa);
  const ExpFn fn = single ? exp_fn<float>(isa) : exp_fn<double>(isa);
  const int T = threads_for(nthreads, 20.0 * double(n));
  const int64_t step = 1 << 14;
  const int64_t nb = (n + step - 1) / step;
#pragma omp parallel for schedule(static) num_threads(T) if (T > 1)
  for (int64_t c = 0; c < nb; ++c) fn(x, out, c * step, std::min(n, c * step + step));
}

}  // namespace sk
}  // namespace ls
