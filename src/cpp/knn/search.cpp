// The exact k-NN search's CPU kernels: the candidate selection over a float32
// GEMM tile (the epilogue of NumPy's matmul), the float64 re-rank of the
// candidates and the exhaustive fallback. Results never depend on the thread
// count: every output row is computed by one thread from its own inputs, and
// the top-k under the total order (key, index) is unique.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <limits>
#include <vector>

#include "common/parallel.h"
#include "knn/kernels.h"
#include "knn/math.h"

namespace ls {
namespace knn {

namespace {

template <class S>
inline const S* row_ptr(const Mat& X, int64_t i) {
  return static_cast<const S*>(X.data) + i * X.s0;
}

// Max-heap on (key, index) of size m (root = the worst kept).
template <class K>
inline bool worse(K ka, int64_t ia, K kb, int64_t ib) {
  return ka > kb || (ka == kb && ia > ib);
}
template <class K>
inline void sift_down(K* hk, int64_t* hi, int64_t m) {
  int64_t p = 0;
  const K k0 = hk[0];
  const int64_t i0 = hi[0];
  for (;;) {
    int64_t c = 2 * p + 1;
    if (c >= m) break;
    if (c + 1 < m && worse(hk[c + 1], hi[c + 1], hk[c], hi[c])) ++c;
    if (!worse(hk[c], hi[c], k0, i0)) break;
    hk[p] = hk[c];
    hi[p] = hi[c];
    p = c;
  }
  hk[p] = k0;
  hi[p] = i0;
}

// key of (query row q, DB row x) in float64, sequential over t.
template <class S>
inline double pair_key(const S* q, int64_t qs, const S* x, int64_t xs, int64_t d, int metric, double qn, double xn) {
  double acc = 0.0;
  if (metric == L2) {
    for (int64_t t = 0; t < d; ++t) {
      const double u = ld(q[t * qs]) - ld(x[t * xs]);
      acc += u * u;
    }
    return acc;
  }
  for (int64_t t = 0; t < d; ++t) acc += ld(q[t * qs]) * ld(x[t * xs]);
  return cosine_key(acc, qn, xn);
}

// Four keys at once (independent accumulators; each is the same sequential
// sum as pair_key, so the values are identical).
template <class S>
inline void pair_key4(const S* q, int64_t qs, const S* const* x, int64_t xs, int64_t d, int metric, double qn,
                      const double* xn, double* out) {
  double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
  if (metric == L2) {
    for (int64_t t = 0; t < d; ++t) {
      const double v = ld(q[t * qs]);
      const double u0 = v - ld(x[0][t * xs]), u1 = v - ld(x[1][t * xs]);
      const double u2 = v - ld(x[2][t * xs]), u3 = v - ld(x[3][t * xs]);
      a0 += u0 * u0;
      a1 += u1 * u1;
      a2 += u2 * u2;
      a3 += u3 * u3;
    }
    out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;
    return;
  }
  for (int64_t t = 0; t < d; ++t) {
    const double v = ld(q[t * qs]);
    a0 += v * ld(x[0][t * xs]);
    a1 += v * ld(x[1][t * xs]);
    a2 += v * ld(x[2][t * xs]);
    a3 += v * ld(x[3][t * xs]);
  }
  out[0] = cosine_key(a0, qn, xn[0]);
  out[1] = cosine_key(a1, qn, xn[1]);
  out[2] = cosine_key(a2, qn, xn[2]);
  out[3] = cosine_key(a3, qn, xn[3]);
}

// Keys of DB rows idx[0..n) for one query row.
template <class S>
void keys_of(const Mat& Q, int64_t r, const Mat& D, const int64_t* idx, int64_t n, const double* qn, const double* dn,
             int metric, double* out) {
  const S* q = row_ptr<S>(Q, r);
  const double qr = metric == COSINE ? std::sqrt(qn[r]) : 0.0;
  int64_t c = 0;
  for (; c + 4 <= n; c += 4) {
    const S* x[4];
    double xn[4];
    for (int u = 0; u < 4; ++u) {
      x[u] = row_ptr<S>(D, idx[c + u]);
      xn[u] = metric == COSINE ? std::sqrt(dn[idx[c + u]]) : 0.0;
    }
    pair_key4<S>(q, Q.s1, x, D.s1, D.k, metric, qr, xn, out + c);
  }
  for (; c < n; ++c) {
    const double xn = metric == COSINE ? std::sqrt(dn[idx[c]]) : 0.0;
    out[c] = pair_key<S>(q, Q.s1, row_ptr<S>(D, idx[c]), D.s1, D.k, metric, qr, xn);
  }
}

// The selection over one tile row (float32 keys, max-heap of m).
__attribute__((always_inline)) inline void select_row(const float* s, int64_t nc, const float* a, const float* b,
                                                      int64_t c0, int64_t self, float* hk, int64_t* hi, int64_t m) {
  // Small chunks: once the threshold is tight most chunks hold no candidate
  // (one vector min), but early on most hold one, and a hit costs a scalar
  // pass over its chunk (with 256: about 70% of a 20k-column row re-scanned).
  // The kept set is the exact top m by (key, index) whatever C is.
  constexpr int64_t C = 32;
  float buf[C];
  float thr = hk[0];
  for (int64_t j0 = 0; j0 < nc; j0 += C) {
    const int64_t n = std::min(C, nc - j0);
    float mn = std::numeric_limits<float>::infinity();
#pragma omp simd reduction(min : mn)
    for (int64_t j = 0; j < n; ++j) {
      const float v = a[j0 + j] + b[j0 + j] * s[j0 + j];
      buf[j] = v;
      mn = std::min(mn, v);
    }
    if (!(mn < thr)) continue;
    for (int64_t j = 0; j < n; ++j) {
      if (buf[j] < thr && c0 + j0 + j != self) {
        hk[0] = buf[j];
        hi[0] = c0 + j0 + j;
        sift_down(hk, hi, m);
        thr = hk[0];
      }
    }
  }
}

template <int ISA>
__attribute__((flatten)) void select_rows(const float* S, int64_t r0, int64_t r1, int64_t nc, int64_t ls,
                                          const float* a, const float* b, int64_t c0, int64_t self0, float* hk,
                                          int64_t* hi, int64_t m) {
  for (int64_t r = r0; r < r1; ++r)
    select_row(S + r * ls, nc, a, b, c0, self0 < 0 ? -1 : self0 + r, hk + r * m, hi + r * m, m);
}
__attribute__((target("avx2"), flatten)) void select_rows_avx2(const float* S, int64_t r0, int64_t r1, int64_t nc,
                                                               int64_t ls, const float* a, const float* b, int64_t c0,
                                                               int64_t self0, float* hk, int64_t* hi, int64_t m) {
  for (int64_t r = r0; r < r1; ++r)
    select_row(S + r * ls, nc, a, b, c0, self0 < 0 ? -1 : self0 + r, hk + r * m, hi + r * m, m);
}

bool use_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && !std::getenv("LABELSIFT_NO_AVX2");
  return yes;
}

template <class S>
void sorted_topk(const Mat& Q, int64_t r, const Mat& D, const int64_t* cand, int64_t m, const double* qn,
                 const double* dn, int metric, int64_t k, int64_t* oi, double* ok, std::vector<double>& kb,
                 std::vector<int64_t>& ib, std::vector<int64_t>& order) {
  int64_t n = 0;
  for (int64_t c = 0; c < m; ++c)
    if (cand[c] >= 0) ib[n++] = cand[c];
  keys_of<S>(Q, r, D, ib.data(), n, qn, dn, metric, kb.data());
  order.resize(n);
  for (int64_t c = 0; c < n; ++c) order[c] = c;
  const int64_t kk = std::min(k, n);
  std::partial_sort(order.begin(), order.begin() + kk, order.end(),
                    [&](int64_t x, int64_t y) { return before(kb[x], ib[x], kb[y], ib[y]); });
  for (int64_t c = 0; c < k; ++c) {
    oi[c] = c < kk ? ib[order[c]] : -1;
    ok[c] = c < kk ? kb[order[c]] : std::numeric_limits<double>::infinity();
  }
}

// Top-k of query row r over DB rows [j0, j1) (skipping `self`), unsorted heap.
template <class S>
void scan_range(const Mat& Q, int64_t r, const Mat& D, int64_t j0, int64_t j1, int64_t self, const double* qn,
                const double* dn, int metric, int64_t k, double* hk, int64_t* hi) {
  constexpr int64_t B = 64;
  int64_t idx[B];
  double key[B];
  for (int64_t c = 0; c < k; ++c) hk[c] = std::numeric_limits<double>::infinity(), hi[c] = -1;
  for (int64_t j = j0; j < j1; j += B) {
    int64_t n = 0;
    for (int64_t t = j; t < std::min(j1, j + B); ++t)
      if (t != self) idx[n++] = t;
    keys_of<S>(Q, r, D, idx, n, qn, dn, metric, key);
    for (int64_t c = 0; c < n; ++c) {
      // the root is the worst kept; empty slots (inf, -1) are worse than any finite key
      if (before(key[c], idx[c], hk[0], hi[0])) {
        hk[0] = key[c];
        hi[0] = idx[c];
        sift_down(hk, hi, k);
      }
    }
  }
}

}  // namespace

void norms2(const Mat& X, double* out, int nthreads) {
  require_host(X);
  const int nt = threads_for(nthreads, double(X.n) * double(X.k));
  dispatch(X.dtype, [&](auto tag) {
    using S = decltype(tag);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < X.n; ++i) {
      const S* x = row_ptr<S>(X, i);
      double acc = 0.0;
      for (int64_t t = 0; t < X.k; ++t) {
        const double v = ld(x[t * X.s1]);
        acc += v * v;
      }
      out[i] = acc;
    }
  });
}

void tile_select(const float* S, int64_t nq, int64_t nc, int64_t ls, const float* a, const float* b, int64_t c0,
                 int64_t self0, float* hk, int64_t* hi, int64_t m, int nthreads) {
  const int nt = threads_for(nthreads, double(nq) * double(nc));
  const bool avx2 = use_avx2();
  constexpr int64_t R = 8;  // rows per task
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t r0 = 0; r0 < nq; r0 += R) {
    const int64_t r1 = std::min(nq, r0 + R);
    if (avx2)
      select_rows_avx2(S, r0, r1, nc, ls, a, b, c0, self0, hk, hi, m);
    else
      select_rows<0>(S, r0, r1, nc, ls, a, b, c0, self0, hk, hi, m);
  }
}

void rerank(const Mat& Q, const Mat& D, const double* qn, const double* dn, const int64_t* hi, int64_t m, int metric,
            int64_t k, int64_t* out_idx, double* out_key, int nthreads) {
  require_host(Q);
  require_host(D);
  if (Q.dtype != D.dtype) throw std::invalid_argument("queries and database must have one dtype");
  const int nt = threads_for(nthreads, double(Q.n) * double(m) * double(Q.k));
  dispatch(Q.dtype, [&](auto tag) {
    using S = decltype(tag);
#pragma omp parallel num_threads(nt)
    {
      std::vector<double> kb(m);
      std::vector<int64_t> ib(m), order(m);
#pragma omp for schedule(dynamic, 16)
      for (int64_t r = 0; r < Q.n; ++r)
        sorted_topk<S>(Q, r, D, hi + r * m, m, qn, dn, metric, k, out_idx + r * k, out_key + r * k, kb, ib, order);
    }
  });
}

void exhaustive(const Mat& Q, const int64_t* rows, int64_t nr, const int64_t* self, const Mat& D, const double* qn,
                const double* dn, int metric, int64_t k, int64_t* out_idx, double* out_key, int nthreads) {
  require_host(Q);
  require_host(D);
  if (Q.dtype != D.dtype) throw std::invalid_argument("queries and database must have one dtype");
  const int nt = threads_or_default(nthreads);
  // Tasks: (row, chunk of D); each yields a local top-k, merged per row in
  // chunk order (the merged top-k under a total order does not depend on it).
  const int64_t chunk = std::max<int64_t>(4096, (D.n + 63) / 64);
  const int64_t nch = (D.n + chunk - 1) / chunk;
  std::vector<double> lk(size_t(nr * nch * k));
  std::vector<int64_t> li(size_t(nr * nch * k));
  dispatch(Q.dtype, [&](auto tag) {
    using S = decltype(tag);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t task = 0; task < nr * nch; ++task) {
      const int64_t t = task / nch, c = task % nch;
      scan_range<S>(Q, rows[t], D, c * chunk, std::min(D.n, (c + 1) * chunk), self ? self[t] : -1, qn, dn, metric,
                    k, lk.data() + task * k, li.data() + task * k);
    }
  });
  for (int64_t t = 0; t < nr; ++t) {
    std::vector<int64_t> order;
    const double* K = lk.data() + t * nch * k;
    const int64_t* I = li.data() + t * nch * k;
    for (int64_t c = 0; c < nch * k; ++c)
      if (I[c] >= 0) order.push_back(c);
    const int64_t kk = std::min<int64_t>(k, int64_t(order.size()));
    std::partial_sort(order.begin(), order.begin() + kk, order.end(),
                      [&](int64_t x, int64_t y) { return before(K[x], I[x], K[y], I[y]); });
    for (int64_t c = 0; c < k; ++c) {
      out_idx[t * k + c] = c < kk ? I[order[c]] : -1;
      out_key[t * k + c] = c < kk ? K[order[c]] : std::numeric_limits<double>::infinity();
    }
  }
}

}  // namespace knn
}  // namespace ls
