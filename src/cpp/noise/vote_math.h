// Per-row math of the k-NN consensus kernels (labelsift.noise: HOC and
// SimiFeat), __host__ __device__ through LS_HD so a CUDA port can include it.
//
// Exactness: the reference (labelsift/reference/noise.py) adds a row's votes
// in neighbour order j = 0..k-1 and takes the L2 norm with NumPy's pairwise
// summation over the K classes; these functions do the same operations in the
// same order, so results are equal bit for bit.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/dtype.h"
#include "common/summation.h"

namespace ls {
namespace nz {

// The code of a consensus pattern (given label a, 1st neighbour's b, 2nd
// neighbour's c): a*K*K + b*K + c, the C-order flat index into K x K x K.
LS_HD int64_t triplet_code(int64_t a, int64_t b, int64_t c, int64_t K) { return (a * K + b) * K + c; }

// One row of SimiFeat's weighted vote. cnt (K scratch) receives
// cnt[c] = sum_j w[j] [label(nbr[j]) = c], added in order j = 0..k-1, then
// divided by max(||cnt||_2, 1e-12) (torch.nn.functional.normalize). Returns the
// first argmax of the normalised votes; *given_vote is cnt[given].
template <class Lab>
LS_HD int64_t vote_row(Lab label_of, const int64_t* nbr, const double* w, int64_t k, int64_t given, int64_t K,
                       double* cnt, double* given_vote) {
  for (int64_t c = 0; c < K; ++c) cnt[c] = 0.0;
  for (int64_t j = 0; j < k; ++j) cnt[label_of(nbr[j])] += w[j];
  const double ss = pairwise_sum<double>([&](std::ptrdiff_t c) { return cnt[c] * cnt[c]; }, 0, K);
  double norm = std::sqrt(ss);
  if (!(norm > 1e-12)) norm = 1e-12;
  int64_t best = 0;
  for (int64_t c = 0; c < K; ++c) {
    cnt[c] = cnt[c] / norm;
    if (cnt[c] > cnt[best]) best = c;
  }
  *given_vote = cnt[given];
  return best;
}

}  // namespace nz
}  // namespace ls
