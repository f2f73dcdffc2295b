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

}  // namespace knn
}  // namespace ls
