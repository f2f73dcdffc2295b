// CUDA side of labelsift. This issue ships the device query; the row kernel
// below is the GPU twin of the CPU row pass, compiled from the same header
// (cl_math.h) so the formulas cannot drift. It is built in every build but not
// yet exposed to Python: its GPU tests belong to the CUDA issue.
#include <cuda_runtime.h>

#include <string>

#include "cl_math.h"
#include "cl_cuda.h"

namespace ls {

template <class S>
__global__ void row_pass_kernel(const S* P, int64_t n, int64_t K, int64_t s0, int64_t s1, const int64_t* labels,
                                const double* cut, Bounds bd, int32_t* guess, uint8_t* keep) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const RowResult r = RowOps<S>::template row<double>(P + i * s0, s1, K, labels[i], cut, bd);
    guess[i] = r.err ? -2 : r.guess;
    keep[i] = r.keep;
  }
}

// Instantiate for every storage type so nvcc checks the shared math.
template __global__ void row_pass_kernel<float>(const float*, int64_t, int64_t, int64_t, int64_t, const int64_t*,
                                                const double*, Bounds, int32_t*, uint8_t*);
template __global__ void row_pass_kernel<double>(const double*, int64_t, int64_t, int64_t, int64_t,
                                                 const int64_t*, const double*, Bounds, int32_t*, uint8_t*);
template __global__ void row_pass_kernel<half_t>(const half_t*, int64_t, int64_t, int64_t, int64_t,
                                                 const int64_t*, const double*, Bounds, int32_t*, uint8_t*);

DeviceQuery query_devices() {
  DeviceQuery q;
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
  q.runtime_version = rt;
  int drv = 0;
  const cudaError_t de = cudaDriverGetVersion(&drv);
  q.driver_version = (de == cudaSuccess) ? drv : 0;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    q.count = 0;
    q.reason = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky error
    return q;
  }
  q.count = count;
  if (count == 0) {
    q.reason = "no CUDA device is visible";
    return q;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, d) == cudaSuccess) {
      q.names.push_back(p.name);
      q.cc.push_back(p.major * 10 + p.minor);
      q.memory.push_back(static_cast<long long>(p.totalGlobalMem));
    }
  }
  return q;
}

}  // namespace ls
