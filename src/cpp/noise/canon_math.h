// The canonical rows and distances of HOC and SimiFeat (labelsift/_noise/
// neighbours.py, class Features), __host__ __device__ through LS_HD: the CPU
// binding nz_canon (tests compare it with the NumPy definition) and the CUDA
// kernels (cuda/noise/nz_kernels.cu) use these functions, so a GPU run does
// the additions the tests check here.
//
//   x_i = f_i / max(sqrt(sum_t f_it^2), 1e-12)   (float64; the sum NumPy's pairwise one)
//   d(i, j) = 1 - sum_t x_it x_jt                 (NumPy's pairwise sum of the products)
//
// Every product is rounded before it is added (NumPy forms a * b first):
// the CUDA build has --fmad=false, the CPU build -ffp-contract=off.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/dtype.h"
#include "common/summation.h"

namespace ls {
namespace nz {

// The divisor of row f (d values read through get(t), as float64).
template <class Get>
LS_HD double canon_norm(Get get, int64_t d) {
  const double ss = pairwise_sum<double>(
      [&](std::ptrdiff_t t) {
        const double v = get(int64_t(t));
        return v * v;
      },
      0, d);
  const double nrm = std::sqrt(ss);
  return nrm < 1e-12 ? 1e-12 : nrm;  // np.maximum(nrm, 1e-12) for the finite rows HOC accepts
}

// d(i, j) of two canonical rows (contiguous, d values each).
LS_HD double canon_distance(const double* xi, const double* xj, int64_t d) {
  return 1.0 - pairwise_sum<double>([&](std::ptrdiff_t t) { return xi[t] * xj[t]; }, 0, d);
}

// SimiFeat's weights of [self, n_1, ..., n_{k-1}] from the k - 1 neighbour
// distances (labelsift/_noise/simifeat.py self_weights): self's distance is
// taken as 2 d_1 - d_2, every weight is 1 - distance.
LS_HD void self_weights_row(const double* dist, int64_t km1, double* w) {
  w[0] = 1.0 - (2.0 * dist[0] - dist[1]);
  for (int64_t j = 0; j < km1; ++j) w[j + 1] = 1.0 - dist[j];
}

}  // namespace nz
}  // namespace ls
