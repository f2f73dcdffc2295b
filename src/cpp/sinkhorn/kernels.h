// CPU kernels of Sinkhorn self-labelling (labelsift.sinkhorn). They take
// plain descriptors (Mat: pointer, sizes, strides in elements, dtype code);
// the Python side (labelsift/_sinkhorn/) converts and checks the inputs and
// does the O(K) potential updates between passes.
//
// Determinism: the rows are cut into chunks whose size depends on N only
// (kChunks of them at most, never on the thread count); each chunk adds its
// rows in order into its own float64 column partials, and the partials are
// added chunk 0, 1, 2, ... So column sums, and everything after them, are the
// same on any thread count and (row_simd.h) on any ISA.
#pragma once

#include <cstdint>

#include "common/cpu.h"
#include "common/dtype.h"

namespace ls {
namespace sk {

// At most this many row chunks (their partials take kChunks x K doubles, twice).
constexpr int64_t kChunks = 256;
constexpr int64_t kMinChunkRows = 64;
inline int64_t chunk_rows(int64_t n) {
  const int64_t r = (n + kChunks - 1) / kChunks;
  return r < kMinChunkRows ? kMinChunkRows : r;
}

// The ISA of the row loop (PassArgs::isa, exp_values) is a VecIsa (common/cpu.h).

struct PassArgs {
  Mat X;              // scores (N x K), float16/32/64, host
  double lam;         // t = lam * x + f
  const double* f;    // K column potentials
  const double* b;    // N row weights (the row marginal), or null: every row weighs b0
  double b0;
  // outputs (any may be null except colsum and colmax)
  double* colsum;     // K: sum_i pi_ik, pi the row-normalised plan (rows sum to b_i)
  double* colmax;     // K: max_i log pi_ik (-inf when no row)
  int64_t* labels;    // N: argmax_k t_ik, the first on ties
  double* g;          // N: row potentials log(b_i) - log(s_i) - m_i
  void* plan;         // N x K, C order, float32 or float64 (plan_dtype)
  int plan_dtype;
  bool plan_unit_rows;  // plan rows sum to 1 (pi / b_i) instead of b_i
  bool check;         // look for non-finite t (first bad row -> bad_row)
  int isa;
  int nthreads;
};

// One fused pass over the scores: returns the first row whose t has a NaN or
// inf (-1 when none, or when !check).
int64_t pass(const PassArgs& a);

// Column log-sum-exp of lam * x_ik + lb_i (lb_i = lb0 when lb is null; lb
// are log row weights): the initial column step of SeLa and SwAV. out: K values.
void col_lse(const Mat& X, double lam, const double* lb, double lb0, double* out, int nthreads);

// The same pass over given pieces of the rows (rows [starts[p], starts[p+1])
// of X, p < npieces), each accumulated, row by row, into its own caller-
// initialised partials acc/cmx [p * K, (p + 1) * K) -- no reduction. A chunk
// whose rows are split between workers is continued exactly where another
// worker left it (labelsift.sinkhorn with group=). colsum/colmax unused.
int64_t pass_pieces(const PassArgs& a, const int64_t* starts, int64_t npieces, double* acc, double* cmx);

// col_lse's pieces (running (max, scaled sum) per column, caller-initialised
// M/S of npieces x K) and its fixed-order merge of nch chunk partials.
void col_lse_pieces(const Mat& X, double lam, const double* lb, double lb0, const int64_t* starts, int64_t npieces,
                    double* M, double* S, int nthreads);
void lse_finish(const double* M, const double* S, int64_t nch, int64_t K, double* out);

// exp of n values (sk_exp, or sk_exp_f when `single`: the float32-precision
// exp of float32/float16 scores; tests and the benchmark's exp floor).
void exp_values(const double* x, double* out, int64_t n, int isa, int nthreads, bool single = false);

}  // namespace sk
}  // namespace ls
