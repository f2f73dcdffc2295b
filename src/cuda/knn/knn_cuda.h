// Exact k-NN on a CUDA device (knn/knn_kernels.cu): the pieces of
// labelsift/_knn/search.py's plan that are not a matrix product. The Gram
// tiles themselves come from the caller's PyTorch or CuPy (cuBLAS at run
// time; labelsift/_knn/device.py); these kernels select candidates from a
// tile, re-rank them in float64 and recompute, exhaustively, the rows the
// certificate cannot prove. Plain types only, like cl/cuda_kernels.h.
//
// Every key is knn/math.h's (pair_key: float64, sequential over the d
// coordinates; built with --fmad=false as the CPU with -ffp-contract=off),
// so the float64 keys, the re-rank and the exhaustive rows equal the CPU's
// bit for bit. Heaps keep the m smallest by (key, index): a set that does
// not depend on the order candidates arrive in.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cl/cuda_kernels.h"  // DevMat

namespace ls {
namespace cuda {

// Largest candidate list (k + r) and k the kernels take.
constexpr int64_t kKnnMaxCandidates = 1024;

// out[i] = sum_t X[i, t]^2 in float64, sequential over t (n doubles, device).
void knn_norms2(const DevMat& X, uintptr_t out, int device, uintptr_t stream);

// Candidate selection over one float32 tile S (nq x nc, row stride ls
// elements, device): key_ij = a[j] + b[j] * S_ij in float32 (a, b: nc
// floats on the device, this tile's columns); query row r keeps its m
// smallest (key, c0 + j) in the max-heap hk/hi (nq x m, row-major, device,
// read and written back). Column j is skipped for row r when
// c0 + j == self0 + r (self0 < 0: never), or, when self_rows is given (nq
// int64 on the device), when c0 + j == self_rows[r].
void knn_tile_select(uintptr_t S, int64_t nq, int64_t nc, int64_t ls, uintptr_t a, uintptr_t b, int64_t c0,
                     int64_t self0, uintptr_t self_rows, uintptr_t hk, uintptr_t hi, int64_t m, int device,
                     uintptr_t stream);

// Exact float64 re-rank: for query row r of Q (database indices hi[r, :m],
// -1 = empty), the k best by (key, index) into out_idx / out_key (nq x k,
// device; -1 / +inf past the candidates). qn: Q's norms (nq), dn: D's (D.n).
void knn_rerank(const DevMat& Q, const DevMat& D, uintptr_t qn, uintptr_t dn, uintptr_t hi, int64_t m, int metric,
                int64_t k, uintptr_t out_idx, uintptr_t out_key, int device, uintptr_t stream);

// The exhaustive float64 search of the query rows rows[0..nr) (positions in
// Q, device int64) over all of D, skipping database row self[t] (0: none);
// row t's k best go to out_idx / out_key at row dest[t] (0: row t).
void knn_exhaustive(const DevMat& Q, uintptr_t rows, int64_t nr, uintptr_t self, uintptr_t dest, const DevMat& D,
                    uintptr_t qn, uintptr_t dn, int metric, int64_t k, uintptr_t out_idx, uintptr_t out_key,
                    int device, uintptr_t stream);

// Neighbour label statistics (knn/vote_kernels.cu), labelsift/_knn/counts.py
// on the device: idx (n x k, strides s0, s1 in elements, int32 when idx32
// else int64; -1 = no neighbour), labels (n int64, validated), weights (n x k
// float64 C-order, or 0). out (device, zeroed here): mode kVoteCountsInt ->
// n x K int64; kVoteCountsW -> n x K float64 (weights required);
// kVotePredProbs -> n x K float64 rows summing to 1; kVoteAgreement -> n
// float64. Waits for the stream; returns the first index outside [-1, n)
// (row, column), or (-1, -1).
enum : int { kVoteCountsInt = 0, kVoteCountsW = 1, kVotePredProbs = 2, kVoteAgreement = 3 };
struct VoteError {
  int64_t row, col;
};
VoteError knn_votes(uintptr_t idx, int64_t n, int64_t k, int64_t s0, int64_t s1, bool idx32, uintptr_t labels,
                    uintptr_t weights, int64_t K, int mode, uintptr_t out, int device, uintptr_t stream);

}  // namespace cuda
}  // namespace ls
