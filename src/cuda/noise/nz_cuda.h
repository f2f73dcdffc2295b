// HOC's and SimiFeat's per-round work on a CUDA device (noise/nz_kernels.cu),
// for features that live there (labelsift/_noise/device.py): the canonical
// rows of a round's sample, the canonical distances of its k-NN candidates
// (from the CUDA k-NN search, knn/knn_cuda.h), the in-sample neighbours in
// (canonical distance, index) order with a certificate, SimiFeat's votes and
// HOC's consensus counts. Plain types only, like cl/cuda_kernels.h.
//
// The math is noise/canon_math.h and noise/vote_math.h (__host__
// __device__, built with --fmad=false): the CPU tests exercise the same
// functions, and the results equal the CPU path's bit for bit. Indices given
// to these kernels come from labelsift's own search and are not re-checked.
#pragma once

#include <cstdint>

#include "cl/cuda_kernels.h"  // DevMat

namespace ls {
namespace cuda {

// out (m x d float64, C order, device) = the canonical rows of X's rows
// rows[0..m) (device int64; 0: rows 0..m).
void nz_normalize(const DevMat& X, uintptr_t rows, int64_t m, uintptr_t out, int device, uintptr_t stream);

// 64-bit hashes of X's rows' bytes (n uint64, device): equal rows have equal hashes.
void nz_row_hash(const DevMat& X, uintptr_t out, int device, uintptr_t stream);

// dist[r, t] = d(r, cand[r, t]) for the canonical rows x (m x d, C); cand is
// m x c int64 (C; -1: +inf).
void nz_cand_distances(uintptr_t x, int64_t m, int64_t d, uintptr_t cand, int64_t c, uintptr_t dist, int device,
                       uintptr_t stream);

// out[t, j] = d(rows[t], j) for every j < m (nr x m float64, C).
void nz_row_distances(uintptr_t x, int64_t m, int64_t d, uintptr_t rows, int64_t nr, uintptr_t out, int device,
                      uintptr_t stream);

// Per row r: the `want` smallest (dist[r, t], cand[r, t]) into out_idx /
// out_dist (m x want, C), ascending. unproven[r] = 1 unless every row outside
// the c candidates is certainly farther: all_in (the candidates are every
// other row), or out_dist[r, want - 1] < key[r, c - 1] - eps, where key is the
// k-NN search's float64 key of the candidates (ascending) and eps bounds
// |key - d| over both roundings.
void nz_select(uintptr_t dist, uintptr_t cand, uintptr_t key, int64_t m, int64_t c, int64_t want, double eps,
               bool all_in, uintptr_t out_idx, uintptr_t out_dist, uintptr_t unproven, int device,
               uintptr_t stream);

// SimiFeat's vote of m rows: row r's voters are itself (label ya[r]) and
// its neighbours nbr[r, 0..km1) (labels yb[nbr]; nbr m x km1, C), weighted
// from dist (m x km1, C) by self_weights_row. gv[r] = the normalised vote of
// ya[r], pred[r] its first argmax (m float64 / int64). Works in device
// memory of m * (2 km1 + 2 + K) * 8 bytes. (A round's sample: ya = yb = the
// sample's labels, nbr positions in it; full-set lists: yb = all labels.)
void nz_vote(uintptr_t ya, uintptr_t yb, uintptr_t nbr, uintptr_t dist, int64_t m, int64_t km1, int64_t K,
             uintptr_t gv, uintptr_t pred, int device, uintptr_t stream);

// HOC's patterns: codes[r] = (ya[r] K + yb[nbr[r, 0]]) K + yb[nbr[r, 1]] (nbr
// rows of stride ns elements), h1[a] and h2[a K + b] counted (int64, zeroed
// here; integer atomics, so the counts do not depend on the schedule).
void nz_consensus(uintptr_t ya, uintptr_t yb, uintptr_t nbr, int64_t ns, int64_t m, int64_t K, uintptr_t codes,
                  uintptr_t h1, uintptr_t h2, int device, uintptr_t stream);

}  // namespace cuda
}  // namespace ls
