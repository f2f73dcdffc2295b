// Per-pair distance math of the exact k-NN search (__host__ __device__ under
// nvcc). These define labelsift's distances; labelsift/reference/knn.py
// computes the same numbers in NumPy, operation for operation:
//  * every product and sum in float64, summed sequentially over the d
//    coordinates (t = 0, 1, ..., d-1), no fused multiply-add;
//  * L2: the key is the squared distance sum_t (x_t - y_t)^2; the distance
//    returned is sqrt(key);
//  * cosine: key = clip(1 - dot(x, y) / (|x| * |y|), 0, 2) with
//    |x| = sqrt(sum_t x_t^2); a zero vector is at distance 1 from everything;
//  * order: (key, index) lexicographic -- ties go to the lower index.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/dtype.h"

namespace ls {
namespace knn {

enum Metric : int { L2 = 0, COSINE = 1 };

template <class S>
LS_HD double ld(const S& x) {
  return double(Num<S>::load(x));
}

LS_HD double cosine_key(double dot, double ni, double nj) {
  if (ni == 0.0 || nj == 0.0) return 1.0;
  const double den = ni * nj;
  double v = 1.0 - dot / den;
  if (v < 0.0) v = 0.0;
  if (v > 2.0) v = 2.0;
  return v;
}

// (key, index) strict lexicographic order: a comes before b.
LS_HD bool before(double ka, int64_t ia, double kb, int64_t ib) { return ka < kb || (ka == kb && ia < ib); }

// Max-heap on (key, index) of size m, root = the worst kept (empty slots are
// (+inf, -1)). Shared by the CPU selection and the CUDA kernels.
template <class K>
LS_HD bool worse(K ka, int64_t ia, K kb, int64_t ib) {
  return ka > kb || (ka == kb && ia > ib);
}
template <class K>
LS_HD void sift_down(K* hk, int64_t* hi, int64_t m) {
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

// The float64 key of (query row q, database row x): strides qs, xs in
// elements, sequential over t = 0..d-1 (qn, xn: the rows' float64 norms,
// used by cosine). The definition every path computes, bit for bit.
template <class S>
LS_HD double pair_key(const S* q, int64_t qs, const S* x, int64_t xs, int64_t d, int metric, double qn, double xn) {
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

// NumPy's pairwise summation (pairwise_sum in numpy/_core/src/umath/
// loops_utils.h.src, blocks of 128, 8 accumulators): the float64 sum of
// f(0), ..., f(n - 1) with NumPy's additions in NumPy's order, so that it
// equals ndarray.sum(axis=-1) over a contiguous row bit for bit (the CUDA
// vote kernels' row sums; tests/knn/test_search.py checks it against NumPy).
template <class F>
LS_HD double pairwise_sum(const F& f, int64_t lo, int64_t n) {
  if (n < 8) {
    double res = 0.0;
    for (int64_t i = 0; i < n; ++i) res += f(lo + i);
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = f(lo + j);
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += f(lo + i + j);
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += f(lo + i);
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(f, lo, n2) + pairwise_sum(f, lo + n2, n - n2);
}

}  // namespace knn
}  // namespace ls
