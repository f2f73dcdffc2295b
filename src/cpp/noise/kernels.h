// CPU kernels of the k-NN consensus methods (labelsift.noise: HOC, SimiFeat).
// The Python side (labelsift/_noise/) checks and converts every array; the
// kernels only re-check indices (a bad one is reported, never read).
//
// Determinism: every output row depends on its input row only, and the
// histograms are integer sums, so results never depend on the thread count.
#pragma once

#include <cstdint>

namespace ls {
namespace nz {

// HOC's consensus patterns of m sampled rows: codes[r] = triplet_code(
// labels[rows[r]], labels[nbr[r,0]], labels[nbr[r,1]]), and the first- and
// second-order histograms c1 (K) and c2 (K*K, C order) added to. nbr is
// m x 2, C order, global row indices. Returns -1, or the first r whose row or
// neighbour index is outside [0, N).
int64_t consensus(const int64_t* labels, int64_t N, const int64_t* rows, const int64_t* nbr, int64_t m, int64_t K,
                  int64_t* codes, int64_t* c1, int64_t* c2, int nthreads);

// SimiFeat's vote of m rows over k neighbours each (nbr, w: m x k, C order;
// nbr holds global indices into labels). given_vote[r] = the normalised vote of
// given[r]; pred[r] = the first argmax. Returns -1 or the first bad row.
int64_t vote(const int64_t* labels, int64_t N, const int64_t* nbr, const double* w, int64_t m, int64_t k,
             const int64_t* given, int64_t K, double* given_vote, int64_t* pred, int nthreads);

// Neighbours within a sample from longer lists over the whole set: for each
// sampled row r (global id rows[r]), the first `want` entries j of
// cand[rows[r], :] with in_sample[j] != 0, in list order, into out_idx/out_d
// (m x want). Rows with fewer are filled with -1 / NaN and counted in the
// return value; short[r] = 1 marks them. cand is N x c (C order), -1 = none.
int64_t filter_in_sample(const int64_t* cand, const double* cand_d, int64_t N, int64_t c, const int64_t* rows,
                         int64_t m, const uint8_t* in_sample, int64_t want, int64_t* out_idx, double* out_d,
                         uint8_t* short_rows, int nthreads);

}  // namespace nz
}  // namespace ls
