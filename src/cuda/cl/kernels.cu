// The confident-learning passes on a CUDA device, with the per-row math of
// the CPU kernels (cl/row_math.h, compiled __host__ __device__):
//  * gather_given: P[i, y_i], one thread a row;
//  * row_pass: validation, confident guess, argmax, the unflagging test and
//    max over the other classes -- for K <= kThreadRowMaxK one thread a row
//    running RowOps<S>::row (the scalar definition itself), above it one
//    warp a row (each lane sweeps every 32nd class with the same
//    comparisons, RowOps::combine merges the lanes, RowOps::finish derives
//    the results); confident counts by integer atomics (order-independent,
//    so deterministic); the first invalid row by atomicMin over row indices,
//    then re-swept by one thread for its error code and column;
//  * pair_margins: the margins the prune-by-noise-rate selections rank.
// Built with --fmad=false: no contraction anywhere, as on the CPU.
#include "common/checked.h"
#include "cl/cuda_kernels.h"

#include <cuda_runtime.h>

#include <climits>
#include <stdexcept>
#include <string>

#include "cl/row_math.h"

namespace ls {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kThreadRowMaxK = 16;
constexpr unsigned long long kNoRow = ULLONG_MAX;

int64_t blocks_for(int64_t work_items, int64_t per_block) {
  const int64_t b = (work_items + per_block - 1) / per_block;
  return b < 1 ? 1 : (b > (int64_t(1) << 30) ? (int64_t(1) << 30) : b);
}



// ---------------------------------------------------------------------------
template <class S>
__global__ void gather_k(const S* P, int64_t n, int64_t s0, int64_t s1, const int64_t* y, S* out) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    out[i] = P[i * s0 + y[i] * s1];
}

struct RowOut {
  int32_t* guess;
  int32_t* argmax;
  uint8_t* keep;
  double* max_other;
  unsigned long long* cj;
  unsigned long long* first_bad;
};

__device__ __forceinline__ void put_row(int64_t i, const RowResult& r, int64_t y, int64_t K, const RowOut& o) {
  if (r.err != ROW_OK) {
    atomicMin(o.first_bad, static_cast<unsigned long long>(i));
    return;
  }
  if (o.guess) o.guess[i] = r.guess;
  if (o.argmax) o.argmax[i] = r.argmax;
  if (o.keep) o.keep[i] = r.keep;
  if (o.max_other) o.max_other[i] = r.max_other;
  if (o.cj && r.guess >= 0) atomicAdd(&o.cj[int64_t(r.guess) * K + y], 1ULL);
}

// One thread a row: the scalar definition (RowOps::row with ScalarSweep).
template <class S, class C>
__global__ void rows_thread_k(const S* P, int64_t n, int64_t K, int64_t s0, int64_t s1, const int64_t* y,
                              const C* cut, Bounds bd, RowOut o) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const int64_t yi = y[i];
    const RowResult r = RowOps<S>::template row<C>(P + i * s0, s1, K, yi, cut, bd);
    put_row(i, r, yi, K, o);
  }
}

template <class Seg>
__device__ __forceinline__ Seg shfl_seg(const Seg& g, int lane_mask) {
  Seg o;
  o.vmax = __shfl_xor_sync(0xffffffffu, g.vmax, lane_mask);
  o.vmin = __shfl_xor_sync(0xffffffffu, g.vmin, lane_mask);
  o.sum = __shfl_xor_sync(0xffffffffu, g.sum, lane_mask);
  o.imax = __shfl_xor_sync(0xffffffffu, g.imax, lane_mask);
  o.n_above = __shfl_xor_sync(0xffffffffu, g.n_above, lane_mask);
  o.ipass = __shfl_xor_sync(0xffffffffu, g.ipass, lane_mask);
  return o;
}

// One warp a row: lane l sweeps classes l, l + 32, ... (coalesced loads for
// contiguous rows); the parts are merged and lane 0 finishes the row.
template <class S, class C>
__global__ void rows_warp_k(const S* P, int64_t n, int64_t K, int64_t s0, int64_t s1, const int64_t* y,
                            const C* cut, Bounds bd, RowOut o) {
  using Ops = RowOps<S>;
  const int lane = threadIdx.x & 31;
  const int64_t nwarps = (int64_t(gridDim.x) * blockDim.x) >> 5;
  for (int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; i < n; i += nwarps) {
    const S* row = P + i * s0;
    const int64_t yi = y[i];
    typename Ops::Seg g = Ops::template sweep_row_part<C>(row, s1, lane, 32, int32_t(K), int32_t(yi), cut);
    for (int m = 16; m > 0; m >>= 1) g = Ops::combine(g, shfl_seg(g, m));
    if (lane == 0) put_row(i, Ops::template finish<C>(row, s1, K, yi, cut, bd, g), yi, K, o);
  }
}

// The first invalid row, re-swept by the scalar definition for its error.
template <class S, class C>
__global__ void row_error_k(const S* P, int64_t K, int64_t s0, int64_t s1, const int64_t* y, const C* cut,
                            Bounds bd, const unsigned long long* first_bad, int64_t* err) {
  const int64_t i = int64_t(*first_bad);
  const RowResult r = RowOps<S>::template row<C>(P + i * s0, s1, K, y[i], cut, bd);
  // the lanes' sum order differs from the scalar one: only the row-sum test
  // can disagree, and then it is a sum error (as on the CPU, cl/rows.cpp)
  err[0] = r.err == ROW_OK ? ROW_SUM : r.err;
  err[1] = r.err == ROW_OK ? -1 : r.err_col;
}

template <class S>
__global__ void pair_margins_k(const S* P, int64_t s0, int64_t s1, const int64_t* labels, const int64_t* rows,
                               const int64_t* local, int64_t m, const int64_t* pair_off, const int64_t* cols,
                               const int64_t* pair_base, double* out) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < m; t += step) {
    const int64_t i = rows[t];
    const int64_t k = labels[i];
    const S* row = P + i * s0;
    for (int64_t q = pair_off[k]; q < pair_off[k + 1]; ++q)
      out[pair_base[q] + local[t]] = margin<S>(row, s1, cols[q], k);
  }
}

template <class S, class C>
DevRowError row_pass_t(const DevMat& P, const int64_t* y, const C* cut, RowOut o, Bounds bd, int device,
                       cudaStream_t st) {
  DeviceBuffer scratch(sizeof(unsigned long long) + 2 * sizeof(int64_t), device);
  auto* first_bad = reinterpret_cast<unsigned long long*>(scratch.ptr());
  int64_t* err = reinterpret_cast<int64_t*>(scratch.ptr() + sizeof(unsigned long long));
  check(cudaMemsetAsync(first_bad, 0xff, sizeof(unsigned long long), st), "cudaMemsetAsync");
  o.first_bad = first_bad;
  const S* base = reinterpret_cast<const S*>(P.data);
  if (P.n > 0) {
    if (P.k <= kThreadRowMaxK) {
      rows_thread_k<S, C><<<unsigned(blocks_for(P.n, kThreads)), kThreads, 0, st>>>(base, P.n, P.k, P.s0, P.s1, y,
                                                                                   cut, bd, o);
    } else {
      rows_warp_k<S, C><<<unsigned(blocks_for(P.n, kThreads / 32)), kThreads, 0, st>>>(base, P.n, P.k, P.s0, P.s1,
                                                                                     y, cut, bd, o);
    }
    check_launch("row_pass kernel launch");
  }
  unsigned long long bad = kNoRow;
  check(cudaMemcpyAsync(&bad, first_bad, sizeof bad, cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync");
  check(cudaStreamSynchronize(st), "row_pass (cudaStreamSynchronize)");
  DevRowError e{-1, ROW_OK, -1};
  if (bad != kNoRow) {
    row_error_k<S, C><<<1, 1, 0, st>>>(base, P.k, P.s0, P.s1, y, cut, bd, first_bad, err);
    check_launch("row_error kernel launch");
    int64_t h[2];
    check(cudaMemcpyAsync(h, err, sizeof h, cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync");
    check(cudaStreamSynchronize(st), "row_error (cudaStreamSynchronize)");
    e.row = int64_t(bad);
    e.code = int32_t(h[0]);
    e.col = h[1];
  }
  return e;
}

}  // namespace

// ---------------------------------------------------------------------------
int pointer_device(uintptr_t ptr) {
  cudaPointerAttributes a;
  check(cudaPointerGetAttributes(&a, reinterpret_cast<const void*>(ptr)), "cudaPointerGetAttributes");
  if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged)
    throw std::invalid_argument("labelsift CUDA: the pointer is not device (or managed) memory");
  return a.device;
}

DeviceBuffer::DeviceBuffer(size_t nbytes, int device) : nbytes_(nbytes), device_(device) {
  DeviceScope ds(device);
  check(cudaMalloc(&ptr_, nbytes ? nbytes : 1), "cudaMalloc");
}

DeviceBuffer::~DeviceBuffer() {
  if (!ptr_) return;
  int prev = -1;
  cudaGetDevice(&prev);
  if (prev != device_) cudaSetDevice(device_);
  cudaFree(ptr_);  // a destructor cannot throw; an error here leaves the memory to the context
  if (prev >= 0 && prev != device_) cudaSetDevice(prev);
  cudaGetLastError();
}

void copy_htod(uintptr_t dst, const void* src, size_t nbytes, int device, uintptr_t stream) {
  DeviceScope ds(device);
  if (nbytes)
    check(cudaMemcpyAsync(reinterpret_cast<void*>(dst), src, nbytes, cudaMemcpyHostToDevice, as_stream(stream)),
          "cudaMemcpyAsync (host to device)");
  check(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
}

void copy_dtoh(void* dst, uintptr_t src, size_t nbytes, int device, uintptr_t stream) {
  DeviceScope ds(device);
  if (nbytes)
    check(cudaMemcpyAsync(dst, reinterpret_cast<const void*>(src), nbytes, cudaMemcpyDeviceToHost, as_stream(stream)),
          "cudaMemcpyAsync (device to host)");
  check(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
}

void memset_d(uintptr_t dst, int value, size_t nbytes, int device, uintptr_t stream) {
  DeviceScope ds(device);
  if (nbytes)
    check(cudaMemsetAsync(reinterpret_cast<void*>(dst), value, nbytes, as_stream(stream)), "cudaMemsetAsync");
}

void synchronize(int device, uintptr_t stream) {
  DeviceScope ds(device);
  check(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
}

void gather_given(const DevMat& P, uintptr_t labels, uintptr_t out, int device, uintptr_t stream) {
  DeviceScope ds(device);
  if (P.n == 0) return;
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    gather_k<S><<<unsigned(blocks_for(P.n, kThreads)), kThreads, 0, as_stream(stream)>>>(
        reinterpret_cast<const S*>(P.data), P.n, P.s0, P.s1, reinterpret_cast<const int64_t*>(labels),
        reinterpret_cast<S*>(out));
  });
  check_launch("gather_given kernel launch");
}

DevRowError row_pass(const DevMat& P, uintptr_t labels, uintptr_t cut, bool cut_f32, uintptr_t guess,
                     uintptr_t argmax, uintptr_t keep, uintptr_t max_other, uintptr_t cj, double lo, double hi,
                     double sum_tol, int device, uintptr_t stream) {
  DeviceScope ds(device);
  if (P.k < 1 || P.k > INT32_MAX) throw std::invalid_argument("labelsift CUDA: bad number of classes");
  RowOut o{reinterpret_cast<int32_t*>(guess), reinterpret_cast<int32_t*>(argmax), reinterpret_cast<uint8_t*>(keep),
           reinterpret_cast<double*>(max_other), reinterpret_cast<unsigned long long*>(cj), nullptr};
  const int64_t* y = reinterpret_cast<const int64_t*>(labels);
  const Bounds bd{lo, hi, sum_tol};
  DevRowError e{-1, ROW_OK, -1};
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    using V = typename Num<S>::V;
    if constexpr (std::is_same<V, float>::value) {
      if (cut == 0 || cut_f32) {
        e = row_pass_t<S, float>(P, y, reinterpret_cast<const float*>(cut), o, bd, device, as_stream(stream));
        return;
      }
    } else if (cut && cut_f32) {
      throw std::invalid_argument("labelsift CUDA: a float32 cut needs a float16/float32 input");
    }
    e = row_pass_t<S, double>(P, y, reinterpret_cast<const double*>(cut), o, bd, device, as_stream(stream));
  });
  return e;
}

void pair_margins(const DevMat& P, uintptr_t labels, uintptr_t rows, uintptr_t local, int64_t m,
                  uintptr_t pair_off, uintptr_t cols, uintptr_t pair_base, uintptr_t out, int device,
                  uintptr_t stream) {
  DeviceScope ds(device);
  if (m == 0) return;
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    pair_margins_k<S><<<unsigned(blocks_for(m, kThreads)), kThreads, 0, as_stream(stream)>>>(
        reinterpret_cast<const S*>(P.data), P.s0, P.s1, reinterpret_cast<const int64_t*>(labels),
        reinterpret_cast<const int64_t*>(rows), reinterpret_cast<const int64_t*>(local), m,
        reinterpret_cast<const int64_t*>(pair_off), reinterpret_cast<const int64_t*>(cols),
        reinterpret_cast<const int64_t*>(pair_base), reinterpret_cast<double*>(out));
  });
  check_launch("pair_margins kernel launch");
}

}  // namespace cuda
}  // namespace ls
