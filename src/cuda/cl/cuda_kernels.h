// Confident-learning kernels on CUDA devices (cl/kernels.cu; named apart from the CPU's cl/kernels.h). Plain types
// only (device pointers and stream handles as integers), so the pybind11
// bindings compile with the host compiler and never see torch or CuPy.
//
// Every CUDA call is checked; a failure throws std::runtime_error naming the
// call and cudaGetErrorString (pybind11 turns it into a RuntimeError).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ls {
namespace cuda {

// A (n, k) matrix on a device: element (i, j) at data + i*s0 + j*s1 elements.
struct DevMat {
  uintptr_t data;
  int64_t n, k, s0, s1;
  int dtype;  // ls::DType code
};

// The device a pointer belongs to (throws for host memory).
int pointer_device(uintptr_t ptr);

// Device memory owned by a Python object (freed with cudaFree on destruction).
class DeviceBuffer {
 public:
  DeviceBuffer(size_t nbytes, int device);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  uintptr_t ptr() const { return reinterpret_cast<uintptr_t>(ptr_); }
  size_t nbytes() const { return nbytes_; }
  int device() const { return device_; }

 private:
  void* ptr_ = nullptr;
  size_t nbytes_ = 0;
  int device_ = 0;
};

// Copies on `stream` (0: the legacy default stream), then waits for the stream.
void copy_htod(uintptr_t dst, const void* src, size_t nbytes, int device, uintptr_t stream);
void copy_dtoh(void* dst, uintptr_t src, size_t nbytes, int device, uintptr_t stream);
void memset_d(uintptr_t dst, int value, size_t nbytes, int device, uintptr_t stream);
void synchronize(int device, uintptr_t stream);

// out[i] = P[i, labels[i]] (out: n values of P's dtype, device memory).
void gather_given(const DevMat& P, uintptr_t labels, uintptr_t out, int device, uintptr_t stream);

// The row pass of cl/rows.cpp on the device: per-row outputs (each 0 = not
// wanted), the confident counts cj[guess * K + given] (uint64, K*K, added to;
// 0 = not wanted), validation. cut: K values (float32 when cut_f32 else
// float64), 0 = no guesses. Returns the first invalid row (-1 when none),
// its error code and column, as the CPU kernel reports them.
struct DevRowError {
  int64_t row;
  int32_t code;
  int64_t col;
};
DevRowError row_pass(const DevMat& P, uintptr_t labels, uintptr_t cut, bool cut_f32, uintptr_t guess,
                     uintptr_t argmax, uintptr_t keep, uintptr_t max_other, uintptr_t cj, double lo, double hi,
                     double sum_tol, int device, uintptr_t stream);

// Margins of prune_by_noise_rate: for each listed row t (rows[t] of class
// k = labels[rows[t]], at position local[t] among its class's listed rows)
// and each pair q in [pair_off[k], pair_off[k+1]):
//   out[pair_base[q] + local[t]] = P[rows[t], cols[q]] - P[rows[t], k]
// in the input dtype, exact as float64.
void pair_margins(const DevMat& P, uintptr_t labels, uintptr_t rows, uintptr_t local, int64_t m,
                  uintptr_t pair_off, uintptr_t cols, uintptr_t pair_base, uintptr_t out, int device,
                  uintptr_t stream);

}  // namespace cuda
}  // namespace ls
