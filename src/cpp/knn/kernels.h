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

// The selection over one tile of a symmetric (self) search, for ne key
// specs at once (e.g. cosine and L2 keys from the same Gram tile): S (nI x nJ,
// row stride ls) = G[i0:i0+nI] G[j0:j0+nJ]^T with j0 >= i0. Direct: row i0+r
// keeps, per spec e, its m smallest a[e][j0+c] + b[e][j0+c] * S[r,c] (heaps
// hk[e], hi[e]: N x m, indexed by global row; self skipped). Transposed, for
// columns c >= tstart (rows j0+c not in [i0, i0+nI)): row j0+c keeps its m
// smallest a[e][i0+r] + b[e][i0+r] * S[r,c].
void tile_select_sym(const float* S, int64_t nI, int64_t nJ, int64_t ls, int64_t i0, int64_t j0, int64_t tstart,
                     int ne, const float* const* a, const float* const* b, float* const* hk, int64_t* const* hi,
                     int64_t m, int nthreads);

// The fused symmetric self-search over a float32 matrix G (N x d, row stride
// ldg, unit column stride): blocks of `block` rows; every block pair (I < J)
// once, as a round-robin tournament (sym_rounds(nblocks) rounds: the pairs,
// then the diagonal blocks), so that the tasks of one round touch disjoint
// heaps and each heap sees its candidates in an order fixed by the schedule,
// whatever the thread count. Runs rounds [round0, round1). Per task: the Gram
// tile in a per-thread buffer (own micro-kernel: AVX-512 or AVX2+FMA when
// available), then the direct and transposed selections of tile_select_sym.
int64_t sym_rounds(int64_t nblocks);
// The ISAs chosen at run time (0 portable, 1 AVX2, 2 AVX-512) of the Gram
// micro-kernel and of the candidate selections.
int gram_isa();
int sel_isa();
// amx: the bf16 split of G (knn/amx.h; block a multiple of 32): the Gram tiles
// on AMX instead of the float32 micro-kernel (G itself is then unused).
struct Bf16Split;
// The query-against-database search's tile [q0, q0 + n) x [c0, c0 + nc) on
// AMX (q0, c0 multiples of 32): A operands from q's split, B from db's, in
// stripes computed and selected by one thread each, with tile_select's keys
// and heaps (hk[e], hi[e]: n x m for the tile's rows; a[e], b[e] indexed by
// database row; self0 as in tile_select).
void amx_tile_select(const Bf16Split& q, const Bf16Split& db, int64_t q0, int64_t n, int64_t c0, int64_t nc, int ne,
                     const float* const* a, const float* const* b, int64_t self0, float* const* hk,
                     int64_t* const* hi, int64_t m, int nthreads);
void sym_search(const float* G, int64_t N, int64_t d, int64_t ldg, int64_t block, int64_t round0, int64_t round1,
                int ne, const float* const* a, const float* const* b, float* const* hk, int64_t* const* hi,
                int64_t m, int nthreads, const Bf16Split* amx = nullptr);

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
