// (knn/vote_kernels.cu) Neighbour label statistics on a CUDA device (knn/knn_cuda.h:
// knn_votes): labelsift/_knn/counts.py's label_counts, agreement and
// knn_pred_probs, one thread a row, with the host's additions in the host's
// order, so the results equal NumPy's bit for bit:
//  * weighted counts: np.bincount adds each row's weights into its bins in
//    neighbour order from 0.0 -- the thread does the same additions;
//  * agreement: (w * same).sum(axis=1) and (w * valid).sum(axis=1) are
//    NumPy pairwise sums over the k terms (knn/math.h's pairwise_sum);
//  * pred_probs: the row total of the float64 counts by the same pairwise
//    sum over K, then c / s (1 / K for a row without neighbours).
// Neighbour indices out of [-1, N) are reported (first in row-major order,
// an integer atomicMin), and skipped.
#include "common/checked.h"
#include "knn/knn_cuda.h"

#include <cuda_runtime.h>

#include <climits>
#include <stdexcept>

#include "knn/math.h"

namespace ls {
namespace cuda {

namespace {

template <class I>
__global__ void votes_k(const I* idx, int64_t n, int64_t k, int64_t s0, int64_t s1, const int64_t* labels,
                        const double* w, int64_t K, int mode, void* out, unsigned long long* first_bad) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const I* row = idx + i * s0;
  auto nb = [&](int64_t t) -> int64_t {
    const int64_t j = int64_t(row[t * s1]);
    if (j < -1 || j >= n) {
      atomicMin(first_bad, static_cast<unsigned long long>(i * k + t));
      return -1;
    }
    return j;
  };
  if (mode == kVoteCountsInt) {
    int64_t* o = static_cast<int64_t*>(out) + i * K;
    for (int64_t t = 0; t < k; ++t) {
      const int64_t j = nb(t);
      if (j >= 0) o[labels[j]] += 1;
    }
    return;
  }
  if (mode == kVoteCountsW || mode == kVotePredProbs) {
    double* o = static_cast<double*>(out) + i * K;
    for (int64_t t = 0; t < k; ++t) {
      const int64_t j = nb(t);
      if (j >= 0) o[labels[j]] += w ? w[i * k + t] : 1.0;
    }
    if (mode == kVotePredProbs) {
      const double s = knn::pairwise_sum([&](int64_t c) { return o[c]; }, 0, K);
      const double u = 1.0 / double(K);
      for (int64_t c = 0; c < K; ++c) o[c] = s > 0 ? o[c] / s : u;
    }
    return;
  }
  // agreement
  const int64_t yi = labels[i];
  double num, den;
  if (w) {
    const double* wr = w + i * k;
    num = knn::pairwise_sum(
        [&](int64_t t) {
          const int64_t j = nb(t);
          return wr[t] * ((j >= 0 && labels[j] == yi) ? 1.0 : 0.0);
        },
        0, k);
    den = knn::pairwise_sum([&](int64_t t) { return wr[t] * (nb(t) >= 0 ? 1.0 : 0.0); }, 0, k);
  } else {
    int64_t a = 0, v = 0;
    for (int64_t t = 0; t < k; ++t) {
      const int64_t j = nb(t);
      v += j >= 0;
      a += (j >= 0 && labels[j] == yi);
    }
    num = double(a);
    den = double(v);
  }
  static_cast<double*>(out)[i] = num / den;
}

}  // namespace

VoteError knn_votes(uintptr_t idx, int64_t n, int64_t k, int64_t s0, int64_t s1, bool idx32, uintptr_t labels,
                    uintptr_t weights, int64_t K, int mode, uintptr_t out, int device, uintptr_t stream) {
  if (n < 0 || k < 1 || K < 1) throw std::invalid_argument("labelsift CUDA: bad vote shapes");
  if (mode < kVoteCountsInt || mode > kVoteAgreement) throw std::invalid_argument("labelsift CUDA: bad vote mode");
  VoteError e{-1, -1};
  if (n == 0) return e;
  DeviceScope ds(device);
  const cudaStream_t st = as_stream(stream);
  unsigned long long* bad = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&bad), sizeof(unsigned long long), st), "cudaMallocAsync");
  check(cudaMemsetAsync(bad, 0xff, sizeof(unsigned long long), st), "cudaMemsetAsync");
  const size_t outb = mode == kVoteAgreement ? size_t(n) * 8 : size_t(n) * size_t(K) * 8;
  check(cudaMemsetAsync(reinterpret_cast<void*>(out), 0, outb, st), "cudaMemsetAsync (votes)");
  const unsigned blocks = unsigned((n + 255) / 256);
  if (idx32)
    votes_k<int32_t><<<blocks, 256, 0, st>>>(reinterpret_cast<const int32_t*>(idx), n, k, s0, s1,
                                             reinterpret_cast<const int64_t*>(labels),
                                             reinterpret_cast<const double*>(weights), K, mode,
                                             reinterpret_cast<void*>(out), bad);
  else
    votes_k<int64_t><<<blocks, 256, 0, st>>>(reinterpret_cast<const int64_t*>(idx), n, k, s0, s1,
                                             reinterpret_cast<const int64_t*>(labels),
                                             reinterpret_cast<const double*>(weights), K, mode,
                                             reinterpret_cast<void*>(out), bad);
  check_launch("knn_votes kernel launch");
  unsigned long long hb = 0;
  check(cudaMemcpyAsync(&hb, bad, sizeof(hb), cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync (votes)");
  check(cudaFreeAsync(bad, st), "cudaFreeAsync");
  check(cudaStreamSynchronize(st), "knn_votes (cudaStreamSynchronize)");
  if (hb != ULLONG_MAX) e = VoteError{int64_t(hb / uint64_t(k)), int64_t(hb % uint64_t(k))};
  return e;
}

}  // namespace cuda
}  // namespace ls
