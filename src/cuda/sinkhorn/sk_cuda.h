// Sinkhorn self-labelling on a CUDA device (sinkhorn/sk_kernels.cu): the
// fused pass of sinkhorn/passes.cpp and the column log-sum-exp of its first
// step, on the caller's device memory and stream. Plain types only (device
// pointers and stream handles as integers), like cl/cuda_kernels.h.
//
// Every CUDA call is checked; a failure throws std::runtime_error naming the
// call and cudaGetErrorString (pybind11 turns it into a RuntimeError).
#pragma once

#include <cstddef>
#include <cstdint>

#include "cl/cuda_kernels.h"  // DevMat

namespace ls {
namespace cuda {

// Bytes of the work buffer a pass / col_lse on an (n, k) matrix needs
// (per-row statistics, per-chunk column partials, the K-vectors).
size_t sk_work_bytes(int64_t n, int64_t k);

struct SkPassArgs {
  DevMat X;              // scores, float16/32/64, any strides (elements)
  double lam;
  const double* f;       // K column potentials (HOST memory: uploaded into the work buffer)
  uintptr_t b;           // N row weights on the device, or 0: every row weighs b0
  double b0;
  double* colsum;        // K (HOST): sum_i pi_ik, as sk::pass
  double* colmax;        // K (HOST): max_i log pi_ik
  uintptr_t labels;      // N int64 on the device, or 0
  uintptr_t g;           // N float64 on the device, or 0
  uintptr_t plan;        // N x K C-order on the device (plan_dtype float32/64), or 0
  int plan_dtype;
  bool plan_unit_rows;
  bool check;
  uintptr_t work;        // sk_work_bytes(n, k) bytes of device memory
  size_t work_bytes;
};

// The pass; waits for the stream; returns the first non-finite row (-1 when
// none or !check), as sk::pass does.
int64_t sk_pass(const SkPassArgs& a, int device, uintptr_t stream);

// sk::col_lse_pieces over the CPU's chunks (chunk_rows(n) rows each): the
// per-chunk running (max, scaled sum) of every column, copied to the HOST
// arrays M, S (nch x K each); the host finishes with sk::lse_finish.
// lb: N log row weights on the device, or 0 (every row lb0).
void sk_col_lse(const DevMat& X, double lam, uintptr_t lb, double lb0, double* M, double* S, uintptr_t work,
                size_t work_bytes, int device, uintptr_t stream);

}  // namespace cuda
}  // namespace ls
