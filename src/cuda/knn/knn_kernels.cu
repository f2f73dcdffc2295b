// (knn/knn_kernels.cu) The exact k-NN search's selection, re-rank and
// exhaustive kernels (knn/knn_cuda.h), with the CPU's per-pair math
// (knn/math.h, __host__ __device__). Built with --fmad=false.
//
// One warp per query row throughout. Insertion into a row's heap: the 32
// lanes each hold one candidate; a ballot marks those before the heap's
// root (its worst); lane 0 inserts them in lane order (replace the root,
// sift down, knn/math.h's sift_down) and the root is re-read after each.
// Under the strict (key, index) order the heap ends holding the m smallest
// candidates it was offered, whatever their order, so the kept set is
// independent of lanes, blocks and launch sizes.
//
// The exhaustive search: kExRows query rows per block, every warp scanning
// a strided share of the database with its own heaps, merged at the end.
//
// Sorted output (re-rank, exhaustive merge): k rounds of a warp arg-min over
// the list under (key, index), each winner marked taken -- exactly the
// k smallest in order, as std::partial_sort gives on the CPU.
#include "common/checked.h"
#include "knn/knn_cuda.h"

#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "common/dtype.h"
#include "knn/math.h"

namespace ls {
namespace cuda {

namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kSelectWarps = 4;  // rows per block of the tile selection
constexpr int kScanWarps = 8;    // warps per row of the exhaustive search (before the shared-memory cap)
constexpr size_t kSharedCap = 48 * 1024;

unsigned grid_1d(int64_t items, int64_t per_block) {
  int64_t b = (items + per_block - 1) / per_block;
  if (b < 1) b = 1;
  if (b > (int64_t(1) << 30)) throw std::invalid_argument("labelsift CUDA: k-NN launch too large");
  return unsigned(b);
}

void check_mat(const DevMat& X, const char* what) {
  if (X.n < 0 || X.k < 1) throw std::invalid_argument(std::string("labelsift CUDA: bad shape of ") + what);
  if (X.dtype < F16 || X.dtype > F64) throw std::invalid_argument("labelsift CUDA: unsupported dtype code");
}

__device__ __forceinline__ bool before_d(double ka, int64_t ia, double kb, int64_t ib) {
  return knn::before(ka, ia, kb, ib);
}

// Offer each lane's candidate (v, j) (ok: it has one) to the warp's heap
// (hk, hi: m entries in shared memory). wk, wi: the root, kept in step.
template <class K>
__device__ __forceinline__ void warp_offer(bool ok, K v, int64_t j, K* hk, int64_t* hi, int64_t m, K& wk,
                                           int64_t& wi, int lane) {
  unsigned mask = __ballot_sync(kFull, ok && before_d(double(v), j, double(wk), wi));
  while (mask) {
    const int src = __ffs(mask) - 1;
    mask &= mask - 1;
    const K cv = __shfl_sync(kFull, v, src);
    const int64_t cj = __shfl_sync(kFull, j, src);
    if (lane == 0 && before_d(double(cv), cj, double(hk[0]), hi[0])) {
      hk[0] = cv;
      hi[0] = cj;
      knn::sift_down(hk, hi, m);
    }
    __syncwarp();
    wk = hk[0];
    wi = hi[0];
    __syncwarp();
    // drop the lanes the new root already beats (a new ballot: the root only gets better)
    mask &= __ballot_sync(kFull, ok && before_d(double(v), j, double(wk), wi));
  }
}

// The k smallest (key, index) of the n entries (ks, is: shared; index < 0 =
// absent; taken entries are set absent) into out_k / out_i in order.
__device__ void warp_sorted(double* ks, int64_t* is, int64_t n, int64_t k, double* out_k, int64_t* out_i,
                            int lane) {
  for (int64_t r = 0; r < k; ++r) {
    double bk = INFINITY;
    int64_t bi = -1, bpos = -1;
    for (int64_t t = lane; t < n; t += 32) {
      const int64_t it = is[t];
      if (it >= 0 && (bi < 0 || before_d(ks[t], it, bk, bi))) {
        bk = ks[t];
        bi = it;
        bpos = t;
      }
    }
    for (int o = 16; o > 0; o >>= 1) {
      const double k2 = __shfl_xor_sync(kFull, bk, o);
      const int64_t i2 = __shfl_xor_sync(kFull, bi, o);
      const int64_t p2 = __shfl_xor_sync(kFull, bpos, o);
      if (i2 >= 0 && (bi < 0 || before_d(k2, i2, bk, bi))) {
        bk = k2;
        bi = i2;
        bpos = p2;
      }
    }
    if (lane == 0) {
      out_k[r] = bi >= 0 ? bk : INFINITY;
      out_i[r] = bi;
      if (bpos >= 0) is[bpos] = -1;
    }
    __syncwarp();
  }
}

template <class S>
__global__ void norms2_k(const S* X, int64_t n, int64_t d, int64_t s0, int64_t s1, double* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const S* x = X + i * s0;
  double acc = 0.0;
  for (int64_t t = 0; t < d; ++t) {
    const double v = knn::ld(x[t * s1]);
    acc += v * v;
  }
  out[i] = acc;
}

__global__ void tile_select_k(const float* S, int64_t nq, int64_t nc, int64_t ls, const float* a, const float* b,
                              int64_t c0, int64_t self0, const int64_t* self_rows, float* hk, int64_t* hi,
                              int64_t m) {
  extern __shared__ int64_t smem_sel[];
  const int w = int(threadIdx.x >> 5), lane = int(threadIdx.x & 31);
  const int64_t r = int64_t(blockIdx.x) * kSelectWarps + w;
  if (r >= nq) return;  // warp-uniform
  int64_t* si = smem_sel + int64_t(w) * m;
  float* sk = reinterpret_cast<float*>(smem_sel + int64_t(kSelectWarps) * m) + int64_t(w) * m;
  float* gk = hk + r * m;
  int64_t* gi = hi + r * m;
  for (int64_t t = lane; t < m; t += 32) {
    sk[t] = gk[t];
    si[t] = gi[t];
  }
  __syncwarp();
  float wk = sk[0];
  int64_t wi = si[0];
  const float* row = S + r * ls;
  const int64_t self = self_rows ? self_rows[r] - c0 : (self0 >= 0 ? self0 + r - c0 : -1);
  for (int64_t base = 0; base < nc; base += 32) {
    const int64_t c = base + lane;
    const bool ok = c < nc && c != self;
    float v = 0.0f;
    if (ok) v = __fadd_rn(a[c], __fmul_rn(b[c], row[c]));
    warp_offer<float>(ok, v, c0 + c, sk, si, m, wk, wi, lane);
  }
  __syncwarp();
  for (int64_t t = lane; t < m; t += 32) {
    gk[t] = sk[t];
    gi[t] = si[t];
  }
}

template <class S>
__global__ void rerank_k(const S* Q, int64_t nq, int64_t qs0, int64_t qs1, const S* D, int64_t ds0, int64_t ds1,
                         int64_t d, const double* qn, const double* dn, const int64_t* hi, int64_t m, int metric,
                         int64_t k, int64_t* out_idx, double* out_key, int wpb) {
  extern __shared__ int64_t smem_rr[];
  const int w = int(threadIdx.x >> 5), lane = int(threadIdx.x & 31);
  const int64_t r = int64_t(blockIdx.x) * wpb + w;
  if (r >= nq) return;
  int64_t* is = smem_rr + int64_t(w) * m;
  double* ks = reinterpret_cast<double*>(smem_rr + int64_t(wpb) * m) + int64_t(w) * m;
  const S* q = Q + r * qs0;
  const double qr = metric == knn::COSINE ? sqrt(qn[r]) : 0.0;
  for (int64_t t = lane; t < m; t += 32) {
    const int64_t j = hi[r * m + t];
    is[t] = j;
    ks[t] = j >= 0 ? knn::pair_key<S>(q, qs1, D + j * ds0, ds1, d, metric, qr,
                                      metric == knn::COSINE ? sqrt(dn[j]) : 0.0)
                   : INFINITY;
  }
  __syncwarp();
  warp_sorted(ks, is, m, k, out_key + r * k, out_idx + r * k, lane);
}

// kExRows query rows per block share every read of a database row: lane j
// computes their kExRows keys with independent accumulators, each the same
// sequential sum as pair_key (so the same bits).
constexpr int kExRows = 4;

template <class S>
__global__ void exhaustive_k(const S* Q, int64_t qs0, int64_t qs1, const int64_t* rows, int64_t nr,
                             const int64_t* self, const int64_t* dest, const S* D, int64_t nd, int64_t ds0,
                             int64_t ds1, int64_t d, const double* qn, const double* dn, int metric, int64_t k,
                             int64_t* out_idx, double* out_key, int wpb) {
  extern __shared__ int64_t smem_ex[];
  const int w = int(threadIdx.x >> 5), lane = int(threadIdx.x & 31);
  const int64_t t0 = int64_t(blockIdx.x) * kExRows;
  const int nq = int(nr - t0 < kExRows ? nr - t0 : kExRows);
  // heap of (query q, warp w) at entries [(q * wpb + w) * k, +k): a query's heaps are adjacent
  int64_t* is_all = smem_ex;
  double* ks_all = reinterpret_cast<double*>(smem_ex + int64_t(kExRows) * wpb * k);
  for (int64_t c = threadIdx.x; c < int64_t(kExRows) * wpb * k; c += blockDim.x) {
    is_all[c] = -1;
    ks_all[c] = INFINITY;
  }
  __syncthreads();
  const S* q[kExRows];
  double qr[kExRows], wk[kExRows];
  int64_t skip[kExRows], wi[kExRows];
#pragma unroll
  for (int u = 0; u < kExRows; ++u) {
    const int64_t row = rows[t0 + (u < nq ? u : 0)];
    q[u] = Q + row * qs0;
    qr[u] = metric == knn::COSINE ? sqrt(qn[row]) : 0.0;
    skip[u] = (self && u < nq) ? self[t0 + u] : -1;
    wk[u] = INFINITY;
    wi[u] = -1;
  }
  const int64_t stride = int64_t(wpb) * 32;
  for (int64_t base = int64_t(w) * 32; base < nd; base += stride) {
    const int64_t j = base + lane;
    const bool in = j < nd;
    double acc[kExRows];
#pragma unroll
    for (int u = 0; u < kExRows; ++u) acc[u] = 0.0;
    if (in) {
      const S* x = D + j * ds0;
      if (metric == knn::L2) {
        for (int64_t t = 0; t < d; ++t) {
          const double v = knn::ld(x[t * ds1]);
#pragma unroll
          for (int u = 0; u < kExRows; ++u) {
            const double e = knn::ld(q[u][t * qs1]) - v;
            acc[u] += e * e;
          }
        }
      } else {
        const double xn = sqrt(dn[j]);
        for (int64_t t = 0; t < d; ++t) {
          const double v = knn::ld(x[t * ds1]);
#pragma unroll
          for (int u = 0; u < kExRows; ++u) acc[u] += knn::ld(q[u][t * qs1]) * v;
        }
#pragma unroll
        for (int u = 0; u < kExRows; ++u) acc[u] = knn::cosine_key(acc[u], qr[u], xn);
      }
    }
#pragma unroll
    for (int u = 0; u < kExRows; ++u) {
      if (u >= nq) break;  // block-uniform
      const int64_t h = (int64_t(u) * wpb + w) * k;
      warp_offer<double>(in && j != skip[u], acc[u], j, ks_all + h, is_all + h, k, wk[u], wi[u], lane);
    }
  }
  __syncthreads();
  for (int u = w; u < nq; u += wpb) {
    const int64_t h = int64_t(u) * wpb * k;
    const int64_t o = (dest ? dest[t0 + u] : t0 + u) * k;
    warp_sorted(ks_all + h, is_all + h, int64_t(wpb) * k, k, out_key + o, out_idx + o, lane);
  }
}

int warps_for(int64_t entries, int cap) {
  const int64_t fit = int64_t(kSharedCap) / (16 * entries);
  int w = int(fit < cap ? fit : cap);
  return w < 1 ? 1 : w;
}

}  // namespace

void knn_norms2(const DevMat& X, uintptr_t out, int device, uintptr_t stream) {
  DeviceScope ds(device);
  check_mat(X, "features");
  if (X.n == 0) return;
  const cudaStream_t st = as_stream(stream);
  dispatch(X.dtype, [&](auto tag) {
    using S = decltype(tag);
    norms2_k<S><<<grid_1d(X.n, 256), 256, 0, st>>>(reinterpret_cast<const S*>(X.data), X.n, X.k, X.s0, X.s1,
                                                  reinterpret_cast<double*>(out));
  });
  check_launch("knn_norms2 kernel launch");
}

void knn_tile_select(uintptr_t S, int64_t nq, int64_t nc, int64_t ls, uintptr_t a, uintptr_t b, int64_t c0,
                     int64_t self0, uintptr_t self_rows, uintptr_t hk, uintptr_t hi, int64_t m, int device,
                     uintptr_t stream) {
  if (m < 1 || m > kKnnMaxCandidates) throw std::invalid_argument("labelsift CUDA: candidates per row out of range");
  if (nq < 0 || nc < 0 || ls < nc) throw std::invalid_argument("labelsift CUDA: bad tile shape");
  if (nq == 0 || nc == 0) return;
  DeviceScope ds(device);
  const size_t sh = size_t(kSelectWarps) * size_t(m) * 12;
  tile_select_k<<<grid_1d(nq, kSelectWarps), 32 * kSelectWarps, sh, as_stream(stream)>>>(
      reinterpret_cast<const float*>(S), nq, nc, ls, reinterpret_cast<const float*>(a),
      reinterpret_cast<const float*>(b), c0, self0, reinterpret_cast<const int64_t*>(self_rows),
      reinterpret_cast<float*>(hk), reinterpret_cast<int64_t*>(hi), m);
  check_launch("knn_tile_select kernel launch");
}

void knn_rerank(const DevMat& Q, const DevMat& D, uintptr_t qn, uintptr_t dn, uintptr_t hi, int64_t m, int metric,
                int64_t k, uintptr_t out_idx, uintptr_t out_key, int device, uintptr_t stream) {
  check_mat(Q, "queries");
  check_mat(D, "database");
  if (Q.dtype != D.dtype || Q.k != D.k) throw std::invalid_argument("labelsift CUDA: queries and database differ");
  if (m < 1 || m > kKnnMaxCandidates || k < 1 || k > m)
    throw std::invalid_argument("labelsift CUDA: k / candidates out of range");
  if (Q.n == 0) return;
  DeviceScope ds(device);
  const int wpb = warps_for(m, 4);
  const size_t sh = size_t(wpb) * size_t(m) * 16;
  const cudaStream_t st = as_stream(stream);
  dispatch(Q.dtype, [&](auto tag) {
    using S = decltype(tag);
    rerank_k<S><<<grid_1d(Q.n, wpb), 32 * wpb, sh, st>>>(
        reinterpret_cast<const S*>(Q.data), Q.n, Q.s0, Q.s1, reinterpret_cast<const S*>(D.data), D.s0, D.s1, Q.k,
        reinterpret_cast<const double*>(qn), reinterpret_cast<const double*>(dn),
        reinterpret_cast<const int64_t*>(hi), m, metric, k, reinterpret_cast<int64_t*>(out_idx),
        reinterpret_cast<double*>(out_key), wpb);
  });
  check_launch("knn_rerank kernel launch");
}

void knn_exhaustive(const DevMat& Q, uintptr_t rows, int64_t nr, uintptr_t self, uintptr_t dest, const DevMat& D,
                    uintptr_t qn, uintptr_t dn, int metric, int64_t k, uintptr_t out_idx, uintptr_t out_key,
                    int device, uintptr_t stream) {
  check_mat(Q, "queries");
  check_mat(D, "database");
  if (Q.dtype != D.dtype || Q.k != D.k) throw std::invalid_argument("labelsift CUDA: queries and database differ");
  if (k < 1 || k > kKnnMaxCandidates) throw std::invalid_argument("labelsift CUDA: k out of range");
  if (nr <= 0) return;
  DeviceScope ds(device);
  const int wpb = warps_for(int64_t(kExRows) * k, kScanWarps);
  const size_t sh = size_t(kExRows) * size_t(wpb) * size_t(k) * 16;
  const cudaStream_t st = as_stream(stream);
  dispatch(Q.dtype, [&](auto tag) {
    using S = decltype(tag);
    if (sh > kSharedCap)  // k > 768: one warp's heaps of kExRows rows pass 48 KiB (up to 64 KiB at k = 1024)
      check(cudaFuncSetAttribute(exhaustive_k<S>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(sh)),
            "cudaFuncSetAttribute (knn_exhaustive shared memory)");
    exhaustive_k<S><<<grid_1d(nr, kExRows), 32 * wpb, sh, st>>>(
        reinterpret_cast<const S*>(Q.data), Q.s0, Q.s1, reinterpret_cast<const int64_t*>(rows), nr,
        reinterpret_cast<const int64_t*>(self), reinterpret_cast<const int64_t*>(dest),
        reinterpret_cast<const S*>(D.data), D.n, D.s0, D.s1, Q.k, reinterpret_cast<const double*>(qn),
        reinterpret_cast<const double*>(dn), metric, k, reinterpret_cast<int64_t*>(out_idx),
        reinterpret_cast<double*>(out_key), wpb);
  });
  check_launch("knn_exhaustive kernel launch");
}

}  // namespace cuda
}  // namespace ls
