// Small host-side helpers shared by the CUDA kernel files: every runtime call
// checked (an error becomes a std::runtime_error that pybind11 turns into a
// Python RuntimeError naming the call), the caller's stream from its integer
// handle, and a scope that makes a device current and restores the previous.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ls {
namespace cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so later calls can proceed
    throw std::runtime_error(std::string("labelsift CUDA: ") + what + " failed: " + cudaGetErrorName(e) + ": " +
                             cudaGetErrorString(e));
  }
}

inline cudaStream_t as_stream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Makes `device` current for the scope (restores the previous one).
struct DeviceScope {
  int prev = -1;
  explicit DeviceScope(int device) {
    check(cudaGetDevice(&prev), "cudaGetDevice");
    if (prev != device) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceScope() {
    int cur = -1;
    if (cudaGetDevice(&cur) == cudaSuccess && cur != prev && prev >= 0) cudaSetDevice(prev);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
};

// After a kernel launch: its configuration error, if any.
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

}  // namespace cuda
}  // namespace ls
