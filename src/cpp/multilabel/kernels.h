// The multi-label kernels: every per-class reduction of the one-vs-rest
// problems computed for all K classes in one sweep over P. Each thread owns a
// contiguous range of classes and reads its columns of every row in order
// (so per-class sums keep NumPy's order and no reduction crosses threads).
// Labels come as CSR: row i's classes are indices[indptr[i] .. indptr[i+1]),
// ascending and unique.
#pragma once

#include <cstdint>
#include <vector>

#include "common/dtype.h"

namespace ls {
namespace ml {

struct Csr {
  const int64_t* indptr;   // n + 1 entries for this block (absolute offsets)
  const int32_t* indices;  // the whole index array
};

// np.mean of each class's binary self-confidences (P[:, c] over the rows
// with c, 1 - P[:, c] over the rows without), streamed over row blocks in
// NumPy's pairwise order. Counts are known up front (from the labels).
class ClassSideMeans {
 public:
  ClassSideMeans(int64_t K, std::vector<int64_t> n1, int64_t n_total, int dtype);
  ~ClassSideMeans();
  void feed(const Mat& P, const Csr& y, int nthreads);
  // means[c * 2 + s] (the mean in the dtype, as double; NaN for an empty side)
  std::vector<double> finish();

 private:
  struct Impl;
  Impl* impl_;
};

// The confident-joint sweep: raw K x 2 x 2 counts (cut0/cut1 given), the
// rows flagged by the 'confident_learning' rule in some class (off-diagonal
// and not kept), those flagged by 'predicted_neq_given', and histograms of
// the prune keys per (class, side).
void joint_sweep(const Mat& P, const Csr& y, const double* cut0, const double* cut1, int64_t* cj,
                 uint8_t* cl_mask, uint8_t* neq_mask, int key_method, int64_t* hist, int nthreads);

struct Candidates {
  std::vector<int32_t> group;  // c * 2 + side
  std::vector<int64_t> row;
  std::vector<double> key;
  std::vector<uint8_t> keep;
};

// The prune sweep: rows whose key lies above their (class, side) cut bucket
// are selected (flagged in `mask` unless kept); rows in the cut bucket are
// returned as candidates. cutb[c * 2 + s] < 0: nothing selected there.
// flagged[c * 2 + s] counts the rows flagged there (selected, not kept).
void select_sweep(const Mat& P, const Csr& y, int64_t row0, int key_method, const int32_t* cutb, uint8_t* mask,
                  int64_t* flagged, Candidates& out, int nthreads);

// cleanlab's multi-label quality score of each row i with the exponential
// moving average aggregator: the K binary scores s_c of the row (method: 0
// self_confidence, P[i, c] where c is one of the row's labels, else
// 1 - P[i, c] rounded in the dtype; 1 normalized_margin, (P_y - P_other + 1)
// / 2 of the binary row in the dtype -- Bin::self_conf / Bin::norm_margin),
// sorted descending; ema = s_(1), then ema = alpha * s_(t) + beta * ema for
// t = 2..K in float64 (beta = 1 - alpha as the caller computed it). out[i] =
// ema. With per_class non-null, the K scores of row i go to per_class[i * K
// + c] (float64) instead, and out is not used. Every value is checked to lie
// in [0, 1] on the way: returns the flat index i * K + c of the first one that
// does not (NaN included), else -1. isa: a VecIsa (common/cpu.h); results are
// the same on every ISA and thread count.
int64_t ema_scores(const Mat& P, const Csr& y, int method, double alpha, double beta, double* out,
                   double* per_class, int isa, int nthreads);

}  // namespace ml
}  // namespace ls
