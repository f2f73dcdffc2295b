// NumPy's pairwise summation and np.mean, __host__ __device__.
#pragma once

#include <cstddef>

#include "common/dtype.h"

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

}  // namespace ls
