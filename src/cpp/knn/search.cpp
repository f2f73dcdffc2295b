// The exact k-NN search's CPU kernels: the candidate selection over a float32
// GEMM tile (the epilogue of NumPy's matmul), the float64 re-rank of the
// candidates and the exhaustive fallback. Results never depend on the thread
// count: every output row is computed by one thread from its own inputs, and
// the top-k under the total order (key, index) is unique.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <limits>
#include <vector>

#include "common/parallel.h"
#include "knn/amx.h"
#include "knn/kernels.h"
#include "knn/math.h"

namespace ls {
namespace knn {

namespace {

// The ISA of the Gram micro-kernel and of the selections (chosen at run time).
enum GramIsa { GRAM_PORTABLE = 0, GRAM_AVX2 = 1, GRAM_AVX512 = 2 };

template <class S>
inline const S* row_ptr(const Mat& X, int64_t i) {
  return static_cast<const S*>(X.data) + i * X.s0;
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

// The transposed selection of a symmetric tile: database rows j0 + c for
// c in [c_begin, c_end) (a group of at most W columns of S) select among the
// tile's rows i0 + r (r = 0..nI-1, increasing: the candidates of each heap
// arrive in increasing index order, as in the direct selection), with the
// keys a[i0 + r] + b[i0 + r] * S[r, c] -- the same expression as
// select_row's, with the roles of row and column exchanged.
constexpr int64_t W = 16;
constexpr int MAXE = 8;
__attribute__((always_inline)) inline void select_cols(const float* S, int64_t nI, int64_t ls, int64_t i0,
                                                       int64_t j0, int64_t cb, int64_t nw, int ne,
                                                       const float* const* a, const float* const* b,
                                                       float* const* hk, int64_t* const* hi, int64_t m) {
  alignas(64) float thr[MAXE][W];
  alignas(64) float kv[W];
  for (int e = 0; e < ne; ++e)
    for (int64_t w = 0; w < W; ++w)
      thr[e][w] = w < nw ? hk[e][(j0 + cb + w) * m] : -std::numeric_limits<float>::infinity();
  alignas(64) float sv[W];
  for (int64_t r = 0; r < nI; ++r) {
    const float* s = S + r * ls + cb;
    if (nw == W) {
      for (int64_t w = 0; w < W; ++w) sv[w] = s[w];
    } else {
      for (int64_t w = 0; w < W; ++w) sv[w] = w < nw ? s[w] : 0.0f;
    }
    for (int e = 0; e < ne; ++e) {
      const float av = a[e][i0 + r], bv = b[e][i0 + r];
      const float* th = thr[e];
      int any = 0;
#pragma omp simd reduction(| : any) aligned(sv, th : 64)
      for (int64_t w = 0; w < W; ++w) any |= int(av + bv * sv[w] < th[w]);
      if (!any) continue;
      for (int64_t w = 0; w < nw; ++w) {
        const float v = av + bv * sv[w];
        if (v < thr[e][w]) {
          float* h = hk[e] + (j0 + cb + w) * m;
          int64_t* g = hi[e] + (j0 + cb + w) * m;
          h[0] = v;
          g[0] = i0 + r;
          sift_down(h, g, m);
          thr[e][w] = h[0];
        }
      }
    }
  }
  (void)kv;
}

template <int ISA>
__attribute__((flatten)) void sym_task(const float* S, int64_t nI, int64_t nJ, int64_t ls, int64_t i0, int64_t j0,
                                       int64_t tstart, int ne, const float* const* a, const float* const* b,
                                       float* const* hk, int64_t* const* hi, int64_t m, int64_t task, int64_t nrt) {
  constexpr int64_t R = 8;
  if (task < nrt) {
    const int64_t r0 = task * R, r1 = std::min(nI, r0 + R);
    for (int e = 0; e < ne; ++e)
      for (int64_t r = r0; r < r1; ++r)
        select_row(S + r * ls, nJ, a[e] + j0, b[e] + j0, j0, i0 + r, hk[e] + (i0 + r) * m, hi[e] + (i0 + r) * m, m);
  } else {
    const int64_t cb = tstart + (task - nrt) * W, nw = std::min(W, nJ - cb);
    select_cols(S, nI, ls, i0, j0, cb, nw, ne, a, b, hk, hi, m);
  }
}
// AVX2 versions of the two scans: the same keys (one multiply, one add, no
// contraction), compared eight at a time; a lane below its threshold sends
// the chunk to the scalar insertion, which recomputes the same values.
__attribute__((target("avx2"))) inline void insert_row(float v, int64_t idx, float* hk, int64_t* hi, int64_t m) {
  hk[0] = v;
  hi[0] = idx;
  sift_down(hk, hi, m);
}

__attribute__((target("avx2"))) void select_row_avx2(const float* s, int64_t nc, const float* a, const float* b,
                                                     int64_t c0, int64_t self, float* hk, int64_t* hi, int64_t m) {
  float thr = hk[0];
  __m256 tv = _mm256_set1_ps(thr);
  int64_t j = 0;
  for (; j + 32 <= nc; j += 32) {
    const __m256 k0 = _mm256_add_ps(_mm256_loadu_ps(a + j), _mm256_mul_ps(_mm256_loadu_ps(b + j), _mm256_loadu_ps(s + j)));
    const __m256 k1 = _mm256_add_ps(_mm256_loadu_ps(a + j + 8),
                                    _mm256_mul_ps(_mm256_loadu_ps(b + j + 8), _mm256_loadu_ps(s + j + 8)));
    const __m256 k2 = _mm256_add_ps(_mm256_loadu_ps(a + j + 16),
                                    _mm256_mul_ps(_mm256_loadu_ps(b + j + 16), _mm256_loadu_ps(s + j + 16)));
    const __m256 k3 = _mm256_add_ps(_mm256_loadu_ps(a + j + 24),
                                    _mm256_mul_ps(_mm256_loadu_ps(b + j + 24), _mm256_loadu_ps(s + j + 24)));
    const __m256 mn = _mm256_min_ps(_mm256_min_ps(k0, k1), _mm256_min_ps(k2, k3));
    if (!_mm256_movemask_ps(_mm256_cmp_ps(mn, tv, _CMP_LT_OQ))) continue;
    for (int64_t t = j; t < j + 32; ++t) {
      const float v = a[t] + b[t] * s[t];
      if (v < thr && c0 + t != self) {
        insert_row(v, c0 + t, hk, hi, m);
        thr = hk[0];
      }
    }
    tv = _mm256_set1_ps(thr);
  }
  for (; j < nc; ++j) {
    const float v = a[j] + b[j] * s[j];
    if (v < thr && c0 + j != self) {
      insert_row(v, c0 + j, hk, hi, m);
      thr = hk[0];
    }
  }
}

__attribute__((target("avx2"))) void select_cols_avx2(const float* S, int64_t nI, int64_t ls, int64_t i0, int64_t j0,
                                                      int64_t cb, int64_t nw, int ne, const float* const* a,
                                                      const float* const* b, float* const* hk, int64_t* const* hi,
                                                      int64_t m) {
  if (nw < W) {
    select_cols(S, nI, ls, i0, j0, cb, nw, ne, a, b, hk, hi, m);
    return;
  }
  alignas(32) float thr[MAXE][W];
  __m256 t0[MAXE], t1[MAXE];
  for (int e = 0; e < ne; ++e) {
    for (int64_t w = 0; w < W; ++w) thr[e][w] = hk[e][(j0 + cb + w) * m];
    t0[e] = _mm256_load_ps(thr[e]);
    t1[e] = _mm256_load_ps(thr[e] + 8);
  }
  for (int64_t r = 0; r < nI; ++r) {
    const float* s = S + r * ls + cb;
    _mm_prefetch(reinterpret_cast<const char*>(s + 16 * ls), _MM_HINT_T0);  // see select_cols_avx512
    const __m256 s0 = _mm256_loadu_ps(s), s1 = _mm256_loadu_ps(s + 8);
    for (int e = 0; e < ne; ++e) {
      const float av = a[e][i0 + r], bv = b[e][i0 + r];
      const __m256 A = _mm256_set1_ps(av), B = _mm256_set1_ps(bv);
      const __m256 k0 = _mm256_add_ps(A, _mm256_mul_ps(B, s0));
      const __m256 k1 = _mm256_add_ps(A, _mm256_mul_ps(B, s1));
      const int mask = _mm256_movemask_ps(_mm256_cmp_ps(k0, t0[e], _CMP_LT_OQ)) |
                       (_mm256_movemask_ps(_mm256_cmp_ps(k1, t1[e], _CMP_LT_OQ)) << 8);
      if (!mask) continue;
      for (int64_t w = 0; w < W; ++w) {
        if (!((mask >> w) & 1)) continue;
        const float v = av + bv * s[w];
        float* h = hk[e] + (j0 + cb + w) * m;
        int64_t* g = hi[e] + (j0 + cb + w) * m;
        insert_row(v, i0 + r, h, g, m);
        thr[e][w] = h[0];
      }
      t0[e] = _mm256_load_ps(thr[e]);
      t1[e] = _mm256_load_ps(thr[e] + 8);
    }
  }
}

__attribute__((target("avx2"))) void sym_task_avx2(const float* S, int64_t nI, int64_t nJ, int64_t ls, int64_t i0,
                                                   int64_t j0, int64_t tstart, int ne, const float* const* a,
                                                   const float* const* b, float* const* hk, int64_t* const* hi,
                                                   int64_t m, int64_t task, int64_t nrt) {
  constexpr int64_t R = 8;
  if (task < nrt) {
    const int64_t r0 = task * R, r1 = std::min(nI, r0 + R);
    for (int e = 0; e < ne; ++e)
      for (int64_t r = r0; r < r1; ++r)
        select_row_avx2(S + r * ls, nJ, a[e] + j0, b[e] + j0, j0, i0 + r, hk[e] + (i0 + r) * m,
                        hi[e] + (i0 + r) * m, m);
  } else {
    const int64_t cb = tstart + (task - nrt) * W, nw = std::min(W, nJ - cb);
    select_cols_avx2(S, nI, ls, i0, j0, cb, nw, ne, a, b, hk, hi, m);
  }
}

// AVX-512 versions: the same keys and insertions, sixteen lanes at a time
// (select_cols' group of W = 16 columns is one register).
__attribute__((target("avx512f"))) void select_row_avx512(const float* s, int64_t nc, const float* a,
                                                         const float* b, int64_t c0, int64_t self, float* hk,
                                                         int64_t* hi, int64_t m) {
  float thr = hk[0];
  __m512 tv = _mm512_set1_ps(thr);
  int64_t j = 0;
  for (; j + 32 <= nc; j += 32) {
    const __m512 k0 = _mm512_add_ps(_mm512_loadu_ps(a + j), _mm512_mul_ps(_mm512_loadu_ps(b + j), _mm512_loadu_ps(s + j)));
    const __m512 k1 = _mm512_add_ps(_mm512_loadu_ps(a + j + 16),
                                    _mm512_mul_ps(_mm512_loadu_ps(b + j + 16), _mm512_loadu_ps(s + j + 16)));
    if (!_mm512_cmp_ps_mask(_mm512_min_ps(k0, k1), tv, _CMP_LT_OQ)) continue;
    for (int64_t t = j; t < j + 32; ++t) {
      const float v = a[t] + b[t] * s[t];
      if (v < thr && c0 + t != self) {
        insert_row(v, c0 + t, hk, hi, m);
        thr = hk[0];
      }
    }
    tv = _mm512_set1_ps(thr);
  }
  for (; j < nc; ++j) {
    const float v = a[j] + b[j] * s[j];
    if (v < thr && c0 + j != self) {
      insert_row(v, c0 + j, hk, hi, m);
      thr = hk[0];
    }
  }
}

__attribute__((target("avx512f"), flatten)) void select_rows_avx512(const float* S, int64_t r0, int64_t r1,
                                                                    int64_t nc, int64_t ls, const float* a,
                                                                    const float* b, int64_t c0, int64_t self0,
                                                                    float* hk, int64_t* hi, int64_t m) {
  for (int64_t r = r0; r < r1; ++r)
    select_row_avx512(S + r * ls, nc, a, b, c0, self0 < 0 ? -1 : self0 + r, hk + r * m, hi + r * m, m);
}

// Groups of W5 = 64 columns (four registers): each row of S a strip visits is
// in another 4 KB page, so a wider strip pays that latency for 4 cache lines;
// partial groups are masked (their lanes' thresholds -inf: never below).
constexpr int64_t W5 = 64;
__attribute__((target("avx512f"))) void select_cols_avx512(const float* S, int64_t nI, int64_t ls, int64_t i0,
                                                          int64_t j0, int64_t cb, int64_t nw, int ne,
                                                          const float* const* a, const float* const* b,
                                                          float* const* hk, int64_t* const* hi, int64_t m) {
  alignas(64) float thr[MAXE][W5];
  __m512 tz[MAXE][4];
  __mmask16 lm[4];
  for (int q = 0; q < 4; ++q) {
    const int64_t left = std::max<int64_t>(0, std::min<int64_t>(16, nw - 16 * q));
    lm[q] = __mmask16(left >= 16 ? 0xFFFF : (1u << left) - 1);
  }
  for (int e = 0; e < ne; ++e) {
    for (int64_t w = 0; w < W5; ++w)
      thr[e][w] = w < nw ? hk[e][(j0 + cb + w) * m] : -std::numeric_limits<float>::infinity();
    for (int q = 0; q < 4; ++q) tz[e][q] = _mm512_load_ps(thr[e] + 16 * q);
  }
  for (int64_t r = 0; r < nI; ++r) {
    const float* s = S + r * ls + cb;
    __m512 sv[4];
    for (int q = 0; q < 4; ++q) sv[q] = _mm512_maskz_loadu_ps(lm[q], s + 16 * q);
    for (int e = 0; e < ne; ++e) {
      const float av = a[e][i0 + r], bv = b[e][i0 + r];
      const __m512 A = _mm512_set1_ps(av), B = _mm512_set1_ps(bv);
      uint64_t mask = 0;
      for (int q = 0; q < 4; ++q)
        mask |= uint64_t(_mm512_cmp_ps_mask(_mm512_add_ps(A, _mm512_mul_ps(B, sv[q])), tz[e][q], _CMP_LT_OQ))
                << (16 * q);
      if (!mask) continue;
      for (; mask; mask &= mask - 1) {
        const int w = __builtin_ctzll(mask);
        const float v = av + bv * s[w];
        float* h = hk[e] + (j0 + cb + w) * m;
        int64_t* g = hi[e] + (j0 + cb + w) * m;
        insert_row(v, i0 + r, h, g, m);
        thr[e][w] = h[0];
      }
      for (int q = 0; q < 4; ++q) tz[e][q] = _mm512_load_ps(thr[e] + 16 * q);
    }
  }
}

__attribute__((target("avx512f"))) void sym_task_avx512(const float* S, int64_t nI, int64_t nJ, int64_t ls,
                                                       int64_t i0, int64_t j0, int64_t tstart, int ne,
                                                       const float* const* a, const float* const* b,
                                                       float* const* hk, int64_t* const* hi, int64_t m, int64_t task,
                                                       int64_t nrt) {
  constexpr int64_t R = 8;
  if (task < nrt) {
    const int64_t r0 = task * R, r1 = std::min(nI, r0 + R);
    for (int e = 0; e < ne; ++e)
      for (int64_t r = r0; r < r1; ++r)
        select_row_avx512(S + r * ls, nJ, a[e] + j0, b[e] + j0, j0, i0 + r, hk[e] + (i0 + r) * m,
                          hi[e] + (i0 + r) * m, m);
  } else {
    const int64_t cb = tstart + (task - nrt) * W5, nw = std::min(W5, nJ - cb);
    select_cols_avx512(S, nI, ls, i0, j0, cb, nw, ne, a, b, hk, hi, m);
  }
}

// The selections in the ISA chosen at run time (pick_sel_isa below): the
// rows r0 .. r1 - 1 of a tile, one task of a symmetric tile, and the columns
// a transposed task takes.
void select_rows_isa(int isa, const float* S, int64_t r0, int64_t r1, int64_t nc, int64_t ls, const float* a,
                     const float* b, int64_t c0, int64_t self0, float* hk, int64_t* hi, int64_t m) {
  if (isa == GRAM_AVX512)
    select_rows_avx512(S, r0, r1, nc, ls, a, b, c0, self0, hk, hi, m);
  else if (isa == GRAM_AVX2)
    select_rows_avx2(S, r0, r1, nc, ls, a, b, c0, self0, hk, hi, m);
  else
    select_rows<0>(S, r0, r1, nc, ls, a, b, c0, self0, hk, hi, m);
}

void sym_task_isa(int isa, const float* S, int64_t nI, int64_t nJ, int64_t ls, int64_t i0, int64_t j0, int64_t tstart,
                  int ne, const float* const* a, const float* const* b, float* const* hk, int64_t* const* hi,
                  int64_t m, int64_t task, int64_t nrt) {
  if (isa == GRAM_AVX512)
    sym_task_avx512(S, nI, nJ, ls, i0, j0, tstart, ne, a, b, hk, hi, m, task, nrt);
  else if (isa == GRAM_AVX2)
    sym_task_avx2(S, nI, nJ, ls, i0, j0, tstart, ne, a, b, hk, hi, m, task, nrt);
  else
    sym_task<0>(S, nI, nJ, ls, i0, j0, tstart, ne, a, b, hk, hi, m, task, nrt);
}

inline int64_t col_group(int isa) { return isa == GRAM_AVX512 ? W5 : W; }

// The first 64-byte aligned float of buf (allocated 16 floats longer than it
// needs): tile rows whose stride is a multiple of 64 bytes never split a line.
inline float* aligned64(std::vector<float>& buf) {
  return buf.data() + (16 - (reinterpret_cast<uintptr_t>(buf.data()) / 4) % 16) % 16;
}

// ---- the fused symmetric search: a float32 Gram tile per block pair, in L2 ----
//
// S = G_I G_J^T over kc-chunks of the d coordinates: B_J is packed in panels
// of PW columns (k-major; 16 for the portable and AVX2 micro-kernels, 32 for
// the AVX-512 one), the micro-kernel keeps ROWS x PW sums in registers and
// writes them to the task's S buffer (row stride ldS = 32 n + 16;
// padded columns are zero and never selected). Any summation order gives a
// float32 dot product within the certificate's bound gamma_d |G_i| |G_j|, so
// the ISA changes the candidates' float32 keys, never the neighbours.
constexpr int64_t PW = 16;    // panel width (portable, AVX2)
constexpr int64_t PW5 = 32;   // panel width (AVX-512)
constexpr int64_t AMX_STRIPE = 128;  // rows of an AMX Gram stripe (a multiple of 32)
constexpr int64_t FP_STRIPE = 120;   // rows of a float32 Gram stripe (multiple of 6 and 8)
constexpr int64_t PACK_ALL_FLOATS = int64_t(1) << 20;  // panels of every chunk up to 4 MB a thread
constexpr int64_t KC = 256;   // coordinates per chunk (128 measured slower for AVX-512 too)

template <int64_t PWT = PW>
void pack_panels(const float* G, int64_t ldg, int64_t j0, int64_t nJ, int64_t k0, int64_t kc, float* P) {
  const int64_t np = (nJ + PWT - 1) / PWT;
  for (int64_t p = 0; p < np; ++p) {
    float* out = P + p * kc * PWT;
    for (int64_t w = 0; w < PWT; ++w) {
      const int64_t j = p * PWT + w;
      if (j < nJ) {
        const float* g = G + (j0 + j) * ldg + k0;
        for (int64_t k = 0; k < kc; ++k) out[k * PWT + w] = g[k];
      } else {
        for (int64_t k = 0; k < kc; ++k) out[k * PWT + w] = 0.0f;
      }
    }
  }
}

template <int ROWS>
inline void micro_generic(const float* const* A, const float* Pp, int64_t kc, float* Sr, int64_t ldS, bool add) {
  float acc[ROWS][PW];
  for (int r = 0; r < ROWS; ++r)
    for (int64_t w = 0; w < PW; ++w) acc[r][w] = add ? Sr[r * ldS + w] : 0.0f;
  for (int64_t k = 0; k < kc; ++k)
    for (int r = 0; r < ROWS; ++r) {
      const float av = A[r][k];
      for (int64_t w = 0; w < PW; ++w) acc[r][w] += av * Pp[k * PW + w];
    }
  for (int r = 0; r < ROWS; ++r)
    for (int64_t w = 0; w < PW; ++w) Sr[r * ldS + w] = acc[r][w];
}

__attribute__((target("avx2"))) inline void put_row(float* o, __m256 lo, __m256 hi, bool add) {
  if (add) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(o));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(o + 8));
  }
  _mm256_storeu_ps(o, lo);
  _mm256_storeu_ps(o + 8, hi);
}

// Named accumulators (an array of vectors is kept in memory by GCC, with a
// store per iteration); unused rows are compiled out.
template <int ROWS>
__attribute__((target("avx2,fma"))) inline void micro_avx2(const float* const* A, const float* Pp, int64_t kc,
                                                            float* Sr, int64_t ldS, bool add) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const float* a0 = A[0];
  const float* a1 = ROWS > 1 ? A[1] : A[0];
  const float* a2 = ROWS > 2 ? A[2] : A[0];
  const float* a3 = ROWS > 3 ? A[3] : A[0];
  const float* a4 = ROWS > 4 ? A[4] : A[0];
  const float* a5 = ROWS > 5 ? A[5] : A[0];
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(Pp + k * PW), b1 = _mm256_loadu_ps(Pp + k * PW + 8);
    __m256 av;
#define LS_FMA_ROW(r)                                  \
  if constexpr (ROWS > r) {                            \
    av = _mm256_broadcast_ss(a##r + k);                \
    c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);        \
    c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);        \
  }
    LS_FMA_ROW(0)
    LS_FMA_ROW(1)
    LS_FMA_ROW(2)
    LS_FMA_ROW(3)
    LS_FMA_ROW(4)
    LS_FMA_ROW(5)
#undef LS_FMA_ROW
  }
  put_row(Sr, c00, c01, add);
  if constexpr (ROWS > 1) put_row(Sr + ldS, c10, c11, add);
  if constexpr (ROWS > 2) put_row(Sr + 2 * ldS, c20, c21, add);
  if constexpr (ROWS > 3) put_row(Sr + 3 * ldS, c30, c31, add);
  if constexpr (ROWS > 4) put_row(Sr + 4 * ldS, c40, c41, add);
  if constexpr (ROWS > 5) put_row(Sr + 5 * ldS, c50, c51, add);
}

__attribute__((target("avx512f"))) inline void put_row512(float* o, __m512 lo, __m512 hi, bool add) {
  if (add) {
    lo = _mm512_add_ps(lo, _mm512_loadu_ps(o));
    hi = _mm512_add_ps(hi, _mm512_loadu_ps(o + 16));
  }
  _mm512_storeu_ps(o, lo);
  _mm512_storeu_ps(o + 16, hi);
}

// ROWS x 32 sums in 2 ROWS zmm registers (8 x 32: 16 accumulators, 10 loads
// for 16 FMAs per coordinate, so the FMA ports bound it, not the loads).
template <int ROWS>
__attribute__((target("avx512f"))) inline void micro_avx512(const float* const* A, const float* Pp, int64_t kc,
                                                             float* Sr, int64_t ldS, bool add) {
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  const float* a0 = A[0];
  const float* a1 = ROWS > 1 ? A[1] : A[0];
  const float* a2 = ROWS > 2 ? A[2] : A[0];
  const float* a3 = ROWS > 3 ? A[3] : A[0];
  const float* a4 = ROWS > 4 ? A[4] : A[0];
  const float* a5 = ROWS > 5 ? A[5] : A[0];
  const float* a6 = ROWS > 6 ? A[6] : A[0];
  const float* a7 = ROWS > 7 ? A[7] : A[0];
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(Pp + k * PW5), b1 = _mm512_loadu_ps(Pp + k * PW5 + 16);
    __m512 av;
#define LS_FMA_ROW(r)                                  \
  if constexpr (ROWS > r) {                            \
    av = _mm512_set1_ps(a##r[k]);                      \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);        \
    c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);        \
  }
    LS_FMA_ROW(0)
    LS_FMA_ROW(1)
    LS_FMA_ROW(2)
    LS_FMA_ROW(3)
    LS_FMA_ROW(4)
    LS_FMA_ROW(5)
    LS_FMA_ROW(6)
    LS_FMA_ROW(7)
#undef LS_FMA_ROW
  }
  put_row512(Sr, c00, c01, add);
  if constexpr (ROWS > 1) put_row512(Sr + ldS, c10, c11, add);
  if constexpr (ROWS > 2) put_row512(Sr + 2 * ldS, c20, c21, add);
  if constexpr (ROWS > 3) put_row512(Sr + 3 * ldS, c30, c31, add);
  if constexpr (ROWS > 4) put_row512(Sr + 4 * ldS, c40, c41, add);
  if constexpr (ROWS > 5) put_row512(Sr + 5 * ldS, c50, c51, add);
  if constexpr (ROWS > 6) put_row512(Sr + 6 * ldS, c60, c61, add);
  if constexpr (ROWS > 7) put_row512(Sr + 7 * ldS, c70, c71, add);
}

// One coordinate chunk [k0, k0 + kc) of the Gram rows i0 .. i0 + nI against
// the packed panels Pc of that chunk (np panels), into S rows 0 .. nI - 1
// (added to them when add). Per element, chunk after chunk, the same sums
// whatever the rows are grouped into.
template <int ISA>
void gram_rows(const float* G, int64_t ldg, int64_t i0, int64_t nI, int64_t k0, int64_t kc, int64_t np,
               const float* Pc, float* S, int64_t ldS, bool add) {
  constexpr int64_t PWT = ISA == GRAM_AVX512 ? PW5 : PW;
  constexpr int R = ISA == GRAM_AVX512 ? 8 : 6;
  for (int64_t p = 0; p < np; ++p) {
    const float* Pp = Pc + p * kc * PWT;
    int64_t r = 0;
    const float* A[8];
    for (; r + R <= nI; r += R) {
      for (int t = 0; t < R; ++t) A[t] = G + (i0 + r + t) * ldg + k0;
      float* Sr = S + r * ldS + p * PWT;
      if constexpr (ISA == GRAM_AVX512) micro_avx512<8>(A, Pp, kc, Sr, ldS, add);
      else if constexpr (ISA == GRAM_AVX2) micro_avx2<6>(A, Pp, kc, Sr, ldS, add);
      else micro_generic<6>(A, Pp, kc, Sr, ldS, add);
    }
    const int64_t rest = nI - r;
    for (int t = 0; t < rest; ++t) A[t] = G + (i0 + r + t) * ldg + k0;
    float* Sr = S + r * ldS + p * PWT;
#define LS_MICRO(n)                                                        \
  case n:                                                                  \
    if constexpr (ISA == GRAM_AVX512) micro_avx512<n>(A, Pp, kc, Sr, ldS, add); \
    else if constexpr (ISA == GRAM_AVX2) micro_avx2<(n < 6 ? n : 1)>(A, Pp, kc, Sr, ldS, add); \
    else micro_generic<(n < 6 ? n : 1)>(A, Pp, kc, Sr, ldS, add); \
    break;
    switch (rest) {
      LS_MICRO(1)
      LS_MICRO(2)
      LS_MICRO(3)
      LS_MICRO(4)
      LS_MICRO(5)
      LS_MICRO(6)
      LS_MICRO(7)
      default:
        break;
    }
#undef LS_MICRO
  }
}

// The float32 Gram tile G[i0:i0+nI] G[j0:j0+nJ]^T with its selections (the
// callback select(r0, nr) for S rows r0 .. r0 + nr - 1). When every chunk's
// panels fit P (packed: P holds ldS x d floats), stripes of FP_STRIPE rows are
// computed and selected in turn (S read back from L2); otherwise chunk by
// chunk over the whole tile, then one selection.
template <int ISA, class Select>
void gram_tile(const float* G, int64_t ldg, int64_t d, int64_t i0, int64_t nI, int64_t j0, int64_t nJ, float* P,
               bool packed, float* S, int64_t ldS, Select&& select) {
  constexpr int64_t PWT = ISA == GRAM_AVX512 ? PW5 : PW;
  const int64_t np = (nJ + PWT - 1) / PWT;
  if (packed) {
    for (int64_t k0 = 0; k0 < d; k0 += KC)
      pack_panels<PWT>(G, ldg, j0, nJ, k0, std::min(KC, d - k0), P + k0 * np * PWT);
    for (int64_t r0 = 0; r0 < nI; r0 += FP_STRIPE) {
      const int64_t nr = std::min(FP_STRIPE, nI - r0);
      for (int64_t k0 = 0; k0 < d; k0 += KC)
        gram_rows<ISA>(G, ldg, i0 + r0, nr, k0, std::min(KC, d - k0), np, P + k0 * np * PWT, S + r0 * ldS, ldS,
                       k0 > 0);
      select(r0, nr);
    }
    return;
  }
  for (int64_t k0 = 0; k0 < d; k0 += KC) {
    const int64_t kc = std::min(KC, d - k0);
    pack_panels<PWT>(G, ldg, j0, nJ, k0, kc, P);
    gram_rows<ISA>(G, ldg, i0, nI, k0, kc, np, P, S, ldS, k0 > 0);
  }
  select(0, nI);
}

bool use_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && !std::getenv("LABELSIFT_NO_AVX2");
  return yes;
}

// The selections' ISA, chosen at run time: AVX-512 where the CPU has it
// (LABELSIFT_NO_AVX512 or LABELSIFT_NO_AVX2 turn it off), else AVX2, else
// the portable code.
int pick_sel_isa() {
  static const int isa = [] {
    if (!use_avx2()) return int(GRAM_PORTABLE);
    if (__builtin_cpu_supports("avx512f") && !std::getenv("LABELSIFT_NO_AVX512")) return int(GRAM_AVX512);
    return int(GRAM_AVX2);
  }();
  return isa;
}

// The Gram micro-kernel's: the same, when the CPU also has FMA.
int pick_gram_isa() {
  static const int isa = __builtin_cpu_supports("fma") ? pick_sel_isa() : int(GRAM_PORTABLE);
  return isa;
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

int gram_isa() { return pick_gram_isa(); }
int sel_isa() { return pick_sel_isa(); }

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

void amx_tile_select(const Bf16Split& q, const Bf16Split& db, int64_t q0, int64_t n, int64_t c0, int64_t nc, int ne,
                     const float* const* a, const float* const* b, int64_t self0, float* const* hk,
                     int64_t* const* hi, int64_t m, int nthreads) {
  if (q.dp != db.dp || q0 % 32 || c0 % 32 || q0 + (n + 31) / 32 * 32 > q.np || c0 + (nc + 31) / 32 * 32 > db.np)
    throw std::invalid_argument("amx_tile_select: splits or tile do not fit");
  if (n <= 0 || nc <= 0) return;
  // A operands from the queries' split, B operands from the database's
  const Bf16Split mix{q.a_hi, q.a_lo, db.b_hi, db.b_lo, std::max(q.np, db.np), q.dp};
  const int64_t ldS = (nc + 31) / 32 * 32 + 16;
  const int64_t ns = (n + AMX_STRIPE - 1) / AMX_STRIPE;
  const int isa = pick_sel_isa();
  const int nt = threads_for(nthreads, double(n) * double(nc) * double(q.dp));
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> buf(size_t(AMX_STRIPE * ldS) + 16);
    float* const S = aligned64(buf);
    amx_thread_begin();
    // each stripe's rows own their heaps; each heap sees its columns in increasing order
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < ns; ++t) {
      const int64_t r0 = t * AMX_STRIPE, nr = std::min(AMX_STRIPE, n - r0);
      gram_tile_amx(mix, q0 + r0, nr, c0, nc, S, ldS);
      for (int e = 0; e < ne; ++e)
        select_rows_isa(isa, S, 0, nr, nc, ldS, a[e] + c0, b[e] + c0, c0, self0 < 0 ? -1 : self0 + r0,
                        hk[e] + r0 * m, hi[e] + r0 * m, m);
    }
    amx_thread_end();
  }
}

void tile_select(const float* S, int64_t nq, int64_t nc, int64_t ls, const float* a, const float* b, int64_t c0,
                 int64_t self0, float* hk, int64_t* hi, int64_t m, int nthreads) {
  const int nt = threads_for(nthreads, double(nq) * double(nc));
  const int isa = pick_sel_isa();
  constexpr int64_t R = 8;  // rows per task
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t r0 = 0; r0 < nq; r0 += R) {
    const int64_t r1 = std::min(nq, r0 + R);
    select_rows_isa(isa, S, r0, r1, nc, ls, a, b, c0, self0, hk, hi, m);
  }
}

void tile_select_sym(const float* S, int64_t nI, int64_t nJ, int64_t ls, int64_t i0, int64_t j0, int64_t tstart,
                     int ne, const float* const* a, const float* const* b, float* const* hk, int64_t* const* hi,
                     int64_t m, int nthreads) {
  const int nt = threads_for(nthreads, double(nI) * double(nJ) * double(ne) * (tstart < nJ ? 2.0 : 1.0));
  const int isa = pick_sel_isa();
  constexpr int64_t R = 8;
  const int64_t nrt = (nI + R - 1) / R;
  const int64_t cw = col_group(isa);  // columns per transposed task
  const int64_t nct = tstart < nJ ? (nJ - tstart + cw - 1) / cw : 0;
  // Direct tasks touch the heaps of rows i0..i0+nI, transposed ones those of
  // rows j0+tstart.. (disjoint: tstart is past the tile's own rows).
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t task = 0; task < nrt + nct; ++task)
    sym_task_isa(isa, S, nI, nJ, ls, i0, j0, tstart, ne, a, b, hk, hi, m, task, nrt);
}

int64_t sym_rounds(int64_t nblocks) { return (nblocks % 2 ? nblocks + 1 : nblocks) - 1 + 1; }

void sym_search(const float* G, int64_t N, int64_t d, int64_t ldg, int64_t block, int64_t round0, int64_t round1,
                int ne, const float* const* a, const float* const* b, float* const* hk, int64_t* const* hi,
                int64_t m, int nthreads, const Bf16Split* amx) {
  const int64_t nb = (N + block - 1) / block;
  const int64_t ne_ = nb % 2 ? nb + 1 : nb;  // players of the round-robin (one dummy when nb is odd)
  const int64_t nr = sym_rounds(nb);         // ne_ - 1 rounds of pairs, then the diagonal round
  if (round0 < 0 || round1 > nr || round0 > round1) throw std::invalid_argument("sym_search: bad round range");
  const int sisa = pick_sel_isa(), gisa = pick_gram_isa();
  // one cache line past a multiple of 32 floats: rows 4 KB apart would share
  // the L1 sets (the micro-kernels' and the tiles' stores, the column strips)
  const int64_t ldS = (block + PW5 - 1) / PW5 * PW5 + 16;
  if (amx && (block % 32 || amx->np < (N + 31) / 32 * 32 || amx->dp < d || amx->dp % 32))
    throw std::invalid_argument("sym_search: the AMX split needs a block that is a multiple of 32");
  const int nt = threads_or_default(nthreads);
  std::vector<std::pair<int64_t, int64_t>> tasks;
#pragma omp parallel num_threads(nt)
  {
    // AMX tiles write whole 32 x 32 blocks: rows up to nI rounded up to 32
    // 64-byte aligned rows (ldS * 4 is a multiple of 64): no store splits a cache line
    std::vector<float> Sbuf(size_t((std::min(block, N) + 31) / 32 * 32 * ldS) + 16);
    float* const S = aligned64(Sbuf);
    const bool packed = ldS * d <= PACK_ALL_FLOATS;
    std::vector<float> Pbuf(amx ? 0 : size_t(ldS * (packed ? d : std::min(KC, d))));
    if (amx) amx_thread_begin();
    for (int64_t rd = round0; rd < round1; ++rd) {
#pragma omp single
      {
        tasks.clear();
        if (rd == nr - 1) {
          for (int64_t I = 0; I < nb; ++I) tasks.emplace_back(I, I);
        } else {
          // circle method: player ne_-1 is fixed, the others rotate
          const int64_t q = ne_ - 1;
          auto add = [&](int64_t x, int64_t y) {
            if (x < nb && y < nb) tasks.emplace_back(std::min(x, y), std::max(x, y));
          };
          add(rd % q, q);
          for (int64_t t = 1; t < ne_ / 2; ++t) add((rd + t) % q, (rd - t + q) % q);
        }
      }
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < int64_t(tasks.size()); ++t) {
        const int64_t I = tasks[t].first, J = tasks[t].second;
        const int64_t i0 = I * block, nI = std::min(block, N - i0);
        const int64_t j0 = J * block, nJ = std::min(block, N - j0);
        const bool diag = I == J;
        const int64_t tstart = diag ? nJ : 0;
        const int64_t cw = col_group(sisa);
        auto select = [&](int64_t r0, int64_t nr) {
          // the direct and transposed selections of S rows [r0, r0 + nr) (global i0 + r0 ..): each
          // heap still sees its candidates in increasing index order
          const int64_t nrt = (nr + 7) / 8, nct = diag ? 0 : (nJ + cw - 1) / cw;
          for (int64_t u = 0; u < nrt + nct; ++u)
            sym_task_isa(sisa, S + r0 * ldS, nr, nJ, ldS, i0 + r0, j0, tstart, ne, a, b, hk, hi, m, u, nrt);
        };
        if (amx) {
          // stripes of AMX_STRIPE rows, each selected while it is in L2 (the whole tile is not)
          for (int64_t r0 = 0; r0 < nI; r0 += AMX_STRIPE) {
            const int64_t nr = std::min(AMX_STRIPE, nI - r0);
            gram_tile_amx(*amx, i0 + r0, nr, j0, nJ, S + r0 * ldS, ldS);
            select(r0, nr);
          }
          continue;
        }
        if (gisa == GRAM_AVX512)
          gram_tile<GRAM_AVX512>(G, ldg, d, i0, nI, j0, nJ, Pbuf.data(), packed, S, ldS, select);
        else if (gisa == GRAM_AVX2)
          gram_tile<GRAM_AVX2>(G, ldg, d, i0, nI, j0, nJ, Pbuf.data(), packed, S, ldS, select);
        else
          gram_tile<GRAM_PORTABLE>(G, ldg, d, i0, nI, j0, nJ, Pbuf.data(), packed, S, ldS, select);
      }
    }
    if (amx) amx_thread_end();
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
