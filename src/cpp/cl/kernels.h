// CPU kernels of confident learning. They take plain descriptors (pointer,
// sizes, strides in elements, dtype code); all conversion of Python objects
// happens in labelsift/_arrays.py and bindings.cpp. Every kernel's result is
// independent of the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "common/dtype.h"
#include "common/select.h"
#include "common/validation.h"

namespace ls {

// out[i] = P[i, labels[i]] (out has P's dtype).
void gather_given(const Mat& P, const int64_t* labels, void* out, int nthreads);

// Per-class np.mean of the given-label probabilities in index order, in the
// dtype of g (see Mean<> in common/summation.h). means[k] is NaN for an absent class.
void class_means(int dtype, const void* g, const int64_t* labels, int64_t n, int64_t K, double* means,
                 int64_t* counts, int nthreads);

struct RowPassOut {
  int32_t* guess;      // may be null
  int32_t* argmax;     // may be null
  uint8_t* keep;       // may be null
  double* max_other;   // may be null
};

struct RowPassError {
  int64_t row;  // -1 when every row is valid
  int32_t code;
  int64_t col;
};

// One sweep over the rows: confident guesses (when cut != null), argmax, the
// unflagging test, max over other classes, and validation of every value.
// The cut (thresholds - 1e-6) comes as float32 (cut32: compared in float, for
// float16/float32 inputs whose thresholds are float32-exact) or as float64
// (cut64); at most one is non-null.
RowPassError row_pass(const Mat& P, const int64_t* labels, const double* cut64, const float* cut32, RowPassOut out,
                      const Bounds& bd, int nthreads);

// Validation only (for callers that would otherwise not sweep the data).
RowPassError validate(const Mat& P, const int64_t* labels, const Bounds& bd, int nthreads);

// sum_k xlogy(P[i,k], P[i,k]) per row (see RowOps::xlogx_row_sum), for the
// rows listed in `rows` (indices into the block) or all rows when null.
void xlogx_rows(const Mat& P, const int64_t* rows, int64_t nrows, double* out, int nthreads);

// Threshold-adjusted self-confidence and max-other (cleanlab's
// adjust_pred_probs), in float64 when t_is_f64 else in the input dtype.
void adjusted_rows(const Mat& P, const int64_t* labels, const double* t, bool t_is_f64, const int64_t* rows,
                   int64_t nrows, double* sc, double* mo, int nthreads);

// Round each row of a rows x n float64 matrix (C order) to integers whose
// total is the rounded row total: round half to even, then move the entries
// with the largest (for +1) or smallest (for -1) residual by one, ties to the
// lower index, until the totals match (labelsift._latent.round_preserving_sum
// is the definition). Sums are NumPy's pairwise sums.
void round_rows(const double* values, int64_t rows, int64_t n, int64_t* out, int nthreads);

// Per row: the first m entries of a stable descending sort (ties: lower class
// first) as (class, value), and the largest value outside them (-inf when
// m >= K). Values are written in the input dtype. Rows must be valid (no NaN).
void top_m_rows(const Mat& P, int64_t m, int32_t* cls, void* vals, void* rest, int nthreads);

// The adaptive sketch of each row (see sketch_wanted in cl/row_math.h): the
// classes kept are the stable top-mmin plus every wanted class, at most `cap`
// of them (the largest), written in (value desc, class asc) order as
// cls/vals[i * min(cap, K) + t] for t < count[i]; rest[i] is the largest value
// of a class left out other than the given label (-inf when none);
// certified[i] = 1 when every class left out (the given label aside) is
// below its floor (floor may be null: then only when nothing is left out);
// given[i] = P[i, labels[i]] (input dtype), read in the same sweep.
void sketch_rows(const Mat& P, const int64_t* labels, int64_t mmin, int64_t cap, const double* floor, double tau,
                 int32_t* cls, void* vals, int32_t* count, void* rest, uint8_t* certified, void* given,
                 int nthreads);

// The confident guesses of a CSR sketch (labelsift/_cl/sketch.py: _guesses,
// whose definition this is): row i's entries ec/ev[ptr[i]..ptr[i+1]) in
// descending order (the first is the row's argmax), its given-label value
// g[i], largest left-out value rm[i] and certificate cert[i] (ev, g, rm in
// the storage dtype `dtype`); cut: K float64 cuts, order: their stable
// argsort. Writes guess[i] (-1: none) and decided[i] (1: proven) for every
// row, for each row in one sweep of its entries.
void sketch_guesses(const int64_t* ptr, int64_t n, const int64_t* ec, const void* ev, const void* g, const void* rm,
                    int dtype, const uint8_t* cert, const int64_t* y, const double* cut, const int64_t* order,
                    int64_t K, int64_t* guess, uint8_t* decided, int nthreads);

// The unflagging test of a CSR sketch (labelsift/_cl/sketch.py: _keeps, its
// definition): with nudged[i] = P[i, y_i] + 1e-6 rounded in the dtype
// (float64), a known class fails the row when it is before y and reaches
// nudged or after y and exceeds it; keep = no known failure and rm <= nudged,
// decided = a known failure or rm != nudged.
void sketch_keeps(const int64_t* ptr, int64_t n, const int64_t* ec, const void* ev, const void* rm, int dtype,
                  const int64_t* y, const double* nudged, uint8_t* keep, uint8_t* decided, int nthreads);

// The unflagging test and the confident-guess counts of whole rows (the
// re-read rows of the one-read plan), one sweep of each row: keep[i] = no
// class j < y_i with P[i, j] >= nudged[i] and none j > y_i with P[i, j] >
// nudged[i]; npass[i] = #{j : P[i, j] >= cut[j]}, first[i] = the first such
// j (0 when none). All comparisons in float64 (exact promotion).
void full_rows_tests(const Mat& P, const int64_t* labels, const double* nudged, const double* cut, uint8_t* keep,
                     int64_t* npass, int64_t* first, int nthreads);

// The order of entries by (group ascending, key descending, id ascending) -- np.lexsort((id, -key,
// group)) when (group, id) pairs are unique -- by a counting sort on the groups (0 <= group < ngroups)
// and a sort within each group; start (ngroups + 1) receives the groups' first positions.
void group_sort_desc(const int64_t* group, const double* key, const int64_t* id, int64_t m, int64_t ngroups,
                     int64_t* order, int64_t* start, int nthreads);

// The pair table of the one-read path: for every given class k and column j
// the `slots` best rows of class k by prune margin P[j] - P[k] (computed in
// the input dtype; better = larger margin, then lower row id), kept as
// vals[(k * slots + s) * K + j] (margins, the dtype's arithmetic type V: float
// for float16/float32, double for float64) and ids[...] (row ids, int32 or
// int64 as `wide_ids`; -1 = empty slot, its value -inf), best first. Feeding
// blocks in any order, on any thread count, gives the same table (the order
// is total). Column k of class k is never filled. Rows must be valid.
// low (optional, K entries of V, kept by the caller between calls, -inf at
// first): a lower bound of each class's smallest worst-slot margin, updated.
// With low, rest (the sketch's largest left-out value of each row, input
// dtype) and the sketch's CSR classes (ptr, cls) of these rows, a row whose
// bound rest - P[k] is below low[k] offers only its kept classes: the rest of
// its margins could not enter (most rows of flat dumps: a scalar test).
// runner (optional, K x K of V, -inf at first): runner[k, j] is raised to
// every margin offered to column j of class k and not held (turned away or
// pushed out of the slots). A row never offered has a margin below the worst
// slot of its time, so runner[k, j] == vals[k, slots - 1, j] exactly when a
// row outside the slots ties the worst one, and is below it otherwise
// (whatever the block order): the strict cut a tie-order-dependent
// selection of `slots` rows needs.
void pair_top_update(const Mat& P, const int64_t* labels, int64_t row0, int64_t slots, void* vals, void* ids,
                     bool wide_ids, void* low, const void* rest, const int64_t* ptr, const int32_t* cls,
                     int nthreads, void* runner = nullptr);

// For every given class k: the `num[k]` rows of that class with the lowest
// value (ties: lower index) get mask = 1. `tied` (optional, K entries): 1
// where a row left out has the same value as the last one chosen (equal
// values straddle the cut, so another tie rule could choose differently).
void lowest_per_class(const double* values, const int64_t* labels, int64_t n, int64_t K, const int64_t* num,
                      uint8_t* mask, int nthreads, uint8_t* tied = nullptr);

// prune_by_noise_rate: for each given class k and each (j, c) in its active
// list, keep the c rows of class k with the largest margin P[j] - P[k]
// (ties: lower index). Rows arrive in blocks in any order of blocks; state is
// O(sum of c), independent of N*K.
class TopCSelector {
 public:
  TopCSelector(int64_t n_total, int64_t K, std::vector<int64_t> offsets, std::vector<int64_t> cols,
               std::vector<int64_t> caps, const std::vector<int64_t>& class_counts);
  // ub (optional, one per row of the block): an upper bound of every margin
  // of the row, max_{j != k} P[j] - P[k] rounded in the dtype. A row whose
  // bound cannot beat any threshold of its class is skipped without reading it.
  void feed(const Mat& P, const int64_t* labels, int64_t row0, int nthreads, const double* ub = nullptr);
  // Marks the chosen rows. With `tied` (one entry per selection): 1 where a
  // row left out had the same margin as the last one kept (equal margins
  // straddle the cut); those selections are then not marked, for the caller
  // to redo under its own tie rule.
  void finish(uint8_t* mask, uint8_t* tied = nullptr) const;
  int64_t n_total() const { return n_total_; }
  int64_t num_selections() const { return int64_t(caps_.size()); }
  // What the selections hold (each in heap order, not sorted): sizes[h], and
  // the (key, row) of every kept candidate, selection after selection
  // (num_kept() of them) -- the local candidates of a sharded selection.
  int64_t num_kept() const;
  void kept(int64_t* sizes, double* keys, int64_t* rows) const;

 private:
  void push(int64_t h, const Cand& c);
  int64_t n_total_, K_;
  std::vector<int64_t> off_, cols_, caps_, start_, size_;
  // thr_[h]: key a candidate must strictly exceed to enter heap h (-inf while
  // the heap is not full, +inf for an empty cap). Rows of a class arrive in
  // increasing index order, so a candidate equal to the worst kept one loses
  // the tie and can be rejected without touching the heap.
  std::vector<double> thr_;
  // tie_[h]: the largest key rejected or evicted while equal to heap h's
  // threshold; a tie straddles the cut when it equals the final threshold.
  std::vector<double> tie_;
  int64_t next_row_ = 0;
  std::vector<double> work_;  // per-class work estimate for thread assignment
  std::vector<Cand> pool_;
};

}  // namespace ls
