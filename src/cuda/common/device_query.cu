// Device query of the CUDA module: what the runtime and driver report. Never
// needs a GPU: without one (or without a driver) it says why.
#include "common/device_query.h"

#include <cuda_runtime.h>

#include <string>

namespace ls {

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
