// The Gram tiles of the fused symmetric k-NN search on Intel AMX (bfloat16
// tiles, float32 accumulation), with each float32 value split in two
// bfloat16 parts x = h + l + t (h = bf16(x), l = bf16(x - h), |t| <= 2^-16 |x|)
// and S = Ah Bh^T + Ah Bl^T + Al Bh^T: about 2^-15 relative error per dot
// product, which the search's certificate takes into account (g_prod and
// g_abs in labelsift/_knn/search.py), so the neighbours stay exact.
#pragma once

#include <cstdint>

namespace ls {
namespace knn {

// The split copy of G (N x d): np = N rounded up to 32 rows, dp = d rounded
// up to 32 columns, zero padded. a_hi, a_lo: row-major bf16 (np x dp, the A
// operands); b_hi, b_lo: the VNNI layout of the B operands, per group of 16
// rows g and column pair p the 16 rows' pairs: b[(g * dp/2 + p) * 16 + n] =
// (row 16 g + n, columns 2p and 2p + 1).
struct Bf16Split {
  const uint16_t* a_hi = nullptr;
  const uint16_t* a_lo = nullptr;
  const uint32_t* b_hi = nullptr;
  const uint32_t* b_lo = nullptr;
  int64_t np = 0, dp = 0;
  bool has_a() const { return a_hi && a_lo; }
  bool has_b() const { return b_hi && b_lo; }
};

// The CPU has AMX-TILE and AMX-BF16, the OS granted the tile state
// (arch_prctl), and none of LABELSIFT_NO_AMX, LABELSIFT_NO_AVX512,
// LABELSIFT_NO_AVX2 is set (decided once per process).
bool amx_usable();

// Fills the four arrays of a Bf16Split from float32 G (row stride ldg); a
// layout whose arrays are null is skipped (a query split needs only A, a
// database split only B).
void bf16_split(const float* G, int64_t N, int64_t d, int64_t ldg, int64_t np, int64_t dp, uint16_t* a_hi,
                uint16_t* a_lo, uint32_t* b_hi, uint32_t* b_lo, int nthreads);

// Per thread, around the tiles it computes: load / release the tile config.
void amx_thread_begin();
void amx_thread_end();

// S[r, c] (r < nI rounded up to 32, c < nJ rounded up to 32; row stride ldS
// floats) = the split dot product of rows i0 + r and j0 + c of G; i0 and j0
// multiples of 32.
void gram_tile_amx(const Bf16Split& sp, int64_t i0, int64_t nI, int64_t j0, int64_t nJ, float* S, int64_t ldS);

}  // namespace knn
}  // namespace ls
