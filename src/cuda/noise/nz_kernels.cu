// (noise/nz_kernels.cu) HOC's and SimiFeat's per-round kernels (noise/nz_cuda.h).
// One thread a row (or a pair): each result is the one function of
// noise/canon_math.h or noise/vote_math.h that the CPU runs, with the same
// additions in the same order (--fmad=false), so it equals the CPU's bit for
// bit whatever the launch shape.
#include "common/checked.h"
#include "noise/nz_cuda.h"

#include <cuda_runtime.h>
#include <math_constants.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/dtype.h"
#include "knn/math.h"
#include "noise/canon_math.h"
#include "noise/vote_math.h"

namespace ls {
namespace cuda {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t items) {
  int64_t b = (items + kThreads - 1) / kThreads;
  if (b < 1) b = 1;
  if (b > (int64_t(1) << 31) - 1) throw std::invalid_argument("labelsift CUDA: noise kernel launch too large");
  return unsigned(b);
}

void check_dims(int64_t m, int64_t d, const char* what) {
  if (m < 0 || d < 1) throw std::invalid_argument(std::string("labelsift CUDA: bad shape of ") + what);
}

template <class S>
__global__ void normalize_k(const S* X, int64_t d, int64_t s0, int64_t s1, const int64_t* rows, int64_t m,
                            double* out) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  const S* f = X + (rows ? rows[r] : r) * s0;
  auto get = [&](int64_t t) { return knn::ld(f[t * s1]); };
  const double nrm = nz::canon_norm(get, d);
  double* o = out + r * d;
  for (int64_t t = 0; t < d; ++t) o[t] = get(t) / nrm;
}

template <class U>
__global__ void row_hash_k(const U* X, int64_t n, int64_t d, int64_t s0, int64_t s1, unsigned long long* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const U* f = X + i * s0;
  unsigned long long h = 0x9e3779b97f4a7c15ull ^ static_cast<unsigned long long>(d);
  for (int64_t t = 0; t < d; ++t) {
    h ^= static_cast<unsigned long long>(f[t * s1]);
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  out[i] = h;
}

__global__ void cand_distances_k(const double* x, int64_t m, int64_t d, const int64_t* cand, int64_t c,
                                 double* dist) {
  const int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= m * c) return;
  const int64_t r = p / c, j = cand[p];
  dist[p] = (j < 0 || j >= m) ? CUDART_INF : nz::canon_distance(x + r * d, x + j * d, d);
}

__global__ void row_distances_k(const double* x, int64_t m, int64_t d, const int64_t* rows, int64_t nr,
                                double* out) {
  const int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= nr * m) return;
  const int64_t t = p / m, j = p % m;
  out[p] = nz::canon_distance(x + rows[t] * d, x + j * d, d);
}

__global__ void select_k(const double* dist, const int64_t* cand, const double* key, int64_t m, int64_t c,
                         int64_t want, double eps, bool all_in, int64_t* oi, double* od, unsigned char* unproven) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  const double* dr = dist + r * c;
  const int64_t* cr = cand + r * c;
  // the want smallest (d, j) in order: each round the smallest pair after the previous one
  double pd = -CUDART_INF;
  int64_t pj = -1;
  for (int64_t w = 0; w < want; ++w) {
    double bd = CUDART_INF;
    int64_t bj = INT64_MAX;
    for (int64_t t = 0; t < c; ++t) {
      const double v = dr[t];
      const int64_t j = cr[t];
      if (j < 0) continue;
      if (knn::before(pd, pj, v, j) && knn::before(v, j, bd, bj)) {
        bd = v;
        bj = j;
      }
    }
    oi[r * want + w] = bj == INT64_MAX ? -1 : bj;
    od[r * want + w] = bd;
    pd = bd;
    pj = bj;
  }
  bool ok = all_in;
  if (!ok) {
    const double last = od[r * want + want - 1];
    const double bound = key[r * c + c - 1] - eps;
    ok = oi[r * want + want - 1] >= 0 && last < bound;
  }
  unproven[r] = ok ? 0 : 1;
}

__global__ void vote_k(const int64_t* ya, const int64_t* yb, const int64_t* nbr, const double* dist, int64_t m,
                       int64_t km1, int64_t K, double* gv, int64_t* pred, int64_t* vl, double* vw, double* cnt) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  const int64_t k = km1 + 1;
  int64_t* lab = vl + r * k;  // the voters' labels: the row's own, then its neighbours'
  double* w = vw + r * k;
  lab[0] = ya[r];
  for (int64_t j = 0; j < km1; ++j) lab[j + 1] = yb[nbr[r * km1 + j]];
  nz::self_weights_row(dist + r * km1, km1, w);
  pred[r] = nz::vote_row([](int64_t c) { return c; }, lab, w, k, ya[r], K, cnt + r * K, gv + r);
}

__global__ void consensus_k(const int64_t* ya, const int64_t* yb, const int64_t* nbr, int64_t ns, int64_t m,
                            int64_t K, int64_t* codes, unsigned long long* h1, unsigned long long* h2) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  const int64_t a = ya[r], b = yb[nbr[r * ns]], c = yb[nbr[r * ns + 1]];
  codes[r] = nz::triplet_code(a, b, c, K);
  atomicAdd(h1 + a, 1ull);
  atomicAdd(h2 + a * K + b, 1ull);
}

}  // namespace

void nz_normalize(const DevMat& X, uintptr_t rows, int64_t m, uintptr_t out, int device, uintptr_t stream) {
  check_dims(m, X.k, "features");
  if (X.dtype < F16 || X.dtype > F64) throw std::invalid_argument("labelsift CUDA: unsupported dtype code");
  if (m == 0) return;
  DeviceScope ds(device);
  dispatch(X.dtype, [&](auto tag) {
    using S = decltype(tag);
    normalize_k<S><<<grid_for(m), kThreads, 0, as_stream(stream)>>>(reinterpret_cast<const S*>(X.data), X.k, X.s0,
                                                                     X.s1, reinterpret_cast<const int64_t*>(rows),
                                                                     m, reinterpret_cast<double*>(out));
  });
  check_launch("nz_normalize kernel launch");
}

void nz_row_hash(const DevMat& X, uintptr_t out, int device, uintptr_t stream) {
  check_dims(X.n, X.k, "features");
  if (X.n == 0) return;
  DeviceScope ds(device);
  const cudaStream_t st = as_stream(stream);
  auto* o = reinterpret_cast<unsigned long long*>(out);
  switch (X.dtype) {
    case F16:
      row_hash_k<uint16_t><<<grid_for(X.n), kThreads, 0, st>>>(reinterpret_cast<const uint16_t*>(X.data), X.n, X.k,
                                                                X.s0, X.s1, o);
      break;
    case F32:
      row_hash_k<uint32_t><<<grid_for(X.n), kThreads, 0, st>>>(reinterpret_cast<const uint32_t*>(X.data), X.n, X.k,
                                                                X.s0, X.s1, o);
      break;
    case F64:
      row_hash_k<unsigned long long><<<grid_for(X.n), kThreads, 0, st>>>(
          reinterpret_cast<const unsigned long long*>(X.data), X.n, X.k, X.s0, X.s1, o);
      break;
    default:
      throw std::invalid_argument("labelsift CUDA: unsupported dtype code");
  }
  check_launch("nz_row_hash kernel launch");
}

void nz_cand_distances(uintptr_t x, int64_t m, int64_t d, uintptr_t cand, int64_t c, uintptr_t dist, int device,
                       uintptr_t stream) {
  check_dims(m, d, "canonical rows");
  if (c < 1) throw std::invalid_argument("labelsift CUDA: no candidates");
  if (m == 0) return;
  DeviceScope ds(device);
  cand_distances_k<<<grid_for(m * c), kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<const double*>(x), m, d, reinterpret_cast<const int64_t*>(cand), c,
      reinterpret_cast<double*>(dist));
  check_launch("nz_cand_distances kernel launch");
}

void nz_row_distances(uintptr_t x, int64_t m, int64_t d, uintptr_t rows, int64_t nr, uintptr_t out, int device,
                      uintptr_t stream) {
  check_dims(m, d, "canonical rows");
  if (nr < 0) throw std::invalid_argument("labelsift CUDA: bad row count");
  if (m == 0 || nr == 0) return;
  DeviceScope ds(device);
  row_distances_k<<<grid_for(nr * m), kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<const double*>(x), m, d, reinterpret_cast<const int64_t*>(rows), nr,
      reinterpret_cast<double*>(out));
  check_launch("nz_row_distances kernel launch");
}

void nz_select(uintptr_t dist, uintptr_t cand, uintptr_t key, int64_t m, int64_t c, int64_t want, double eps,
               bool all_in, uintptr_t out_idx, uintptr_t out_dist, uintptr_t unproven, int device,
               uintptr_t stream) {
  if (m < 0 || c < 1 || want < 1 || want > c) throw std::invalid_argument("labelsift CUDA: bad selection shape");
  if (m == 0) return;
  DeviceScope ds(device);
  select_k<<<grid_for(m), kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<const double*>(dist), reinterpret_cast<const int64_t*>(cand),
      reinterpret_cast<const double*>(key), m, c, want, eps, all_in, reinterpret_cast<int64_t*>(out_idx),
      reinterpret_cast<double*>(out_dist), reinterpret_cast<unsigned char*>(unproven));
  check_launch("nz_select kernel launch");
}

void nz_vote(uintptr_t ya, uintptr_t yb, uintptr_t nbr, uintptr_t dist, int64_t m, int64_t km1, int64_t K,
             uintptr_t gv, uintptr_t pred, int device, uintptr_t stream) {
  if (m < 0 || km1 < 2 || K < 1) throw std::invalid_argument("labelsift CUDA: bad vote shape");
  if (m == 0) return;
  DeviceScope ds(device);
  const cudaStream_t st = as_stream(stream);
  const size_t k = size_t(km1) + 1;
  const size_t bytes = size_t(m) * (2 * k + size_t(K)) * 8;
  char* work = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&work), bytes, st), "cudaMallocAsync (vote)");
  int64_t* vl = reinterpret_cast<int64_t*>(work);
  double* vw = reinterpret_cast<double*>(work + size_t(m) * k * 8);
  double* cnt = reinterpret_cast<double*>(work + size_t(m) * 2 * k * 8);
  vote_k<<<grid_for(m), kThreads, 0, st>>>(reinterpret_cast<const int64_t*>(ya), reinterpret_cast<const int64_t*>(yb),
                                           reinterpret_cast<const int64_t*>(nbr),
                                           reinterpret_cast<const double*>(dist), m, km1, K,
                                           reinterpret_cast<double*>(gv), reinterpret_cast<int64_t*>(pred), vl, vw,
                                           cnt);
  check_launch("nz_vote kernel launch");
  check(cudaFreeAsync(work, st), "cudaFreeAsync (vote)");
}

void nz_consensus(uintptr_t ya, uintptr_t yb, uintptr_t nbr, int64_t ns, int64_t m, int64_t K, uintptr_t codes, uintptr_t h1,
                  uintptr_t h2, int device, uintptr_t stream) {
  if (m < 0 || K < 1 || ns < 2) throw std::invalid_argument("labelsift CUDA: bad consensus shape");
  DeviceScope ds(device);
  const cudaStream_t st = as_stream(stream);
  check(cudaMemsetAsync(reinterpret_cast<void*>(h1), 0, size_t(K) * 8, st), "cudaMemsetAsync (h1)");
  check(cudaMemsetAsync(reinterpret_cast<void*>(h2), 0, size_t(K) * size_t(K) * 8, st), "cudaMemsetAsync (h2)");
  if (m == 0) return;
  consensus_k<<<grid_for(m), kThreads, 0, st>>>(reinterpret_cast<const int64_t*>(ya),
                                                reinterpret_cast<const int64_t*>(yb),
                                                reinterpret_cast<const int64_t*>(nbr), ns, m, K,
                                                reinterpret_cast<int64_t*>(codes),
                                                reinterpret_cast<unsigned long long*>(h1),
                                                reinterpret_cast<unsigned long long*>(h2));
  check_launch("nz_consensus kernel launch");
}

}  // namespace cuda
}  // namespace ls
