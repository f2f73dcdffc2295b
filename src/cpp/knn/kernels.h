// CPU kernels of the exact k-NN search (labelsift._core, prefix knn_).
#pragma once

#include <cstdint>

#include "common/dtype.h"

namespace ls {
namespace knn {

// float64 squared norms sum_t x_t^2 (sequential over t), one per row.
void norms2(const Mat& X, double* out, int nthreads);

// Candidate selection over one float32 GEMM tile S (nq x nc, row stride ls):
// key_ij = a[j] + b[j] * S_ij in float32; each query row keeps its m
// smallest keys in a max-heap (hk, hi: nq x m, row-major). Column c0 + j is
// skipped for query row r when c0 + j == self0 + r (self0 < 0: no skipping).
void tile_select(const float* S, int64_t nq, int64_t nc, int64_t ls, const float* a, const float* b, int64_t c0,
                 int64_t self0, float* hk, int64_t* hi, int64_t m, int nthreads);

// Exact float64 re-rank of the candidates: for query row r (Q row r, global
// DB indices hi[r, :m], -1 = empty), the k best by (key, index); writes
// out_idx (nq x k) and out_key (nq x k).
void rerank(const Mat& Q, const Mat& D, const double* qn, const double* dn, const int64_t* hi, int64_t m, int metric,
            int64_t k, int64_t* out_idx, double* out_key, int nthreads);

// Exhaustive exact search for the query rows `rows` (positions in Q): the k
// best by (key, index) over all of D, skipping DB row self[t] (< 0: none).
void exhaustive(const Mat& Q, const int64_t* rows, int64_t nr, const int64_t* self, const Mat& D, const double* qn,
                const double* dn, int metric, int64_t k, int64_t* out_idx, double* out_key, int nthreads);

}  // namespace knn
}  // namespace ls
