// Intel AMX Gram tiles for the fused symmetric k-NN search (see amx.h).
#include "knn/amx.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/parallel.h"

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__) && (__GNUC__ >= 11)
#define LS_AMX 1
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace ls {
namespace knn {

namespace {

// bfloat16 of a finite float32 by round to nearest, ties to even.
inline uint16_t bf16_rne(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float bf16_value(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

}  // namespace

void bf16_split(const float* G, int64_t N, int64_t d, int64_t ldg, int64_t np, int64_t dp, uint16_t* a_hi,
                uint16_t* a_lo, uint32_t* b_hi, uint32_t* b_lo, int nthreads) {
  const int nt = threads_for(nthreads, double(np) * double(dp));
  const int64_t half = dp / 2;
#pragma omp parallel num_threads(nt)
  {
    // without the A layout (a_hi null), each row's parts go through a buffer
    std::vector<uint16_t> row(a_hi ? 0 : size_t(2 * dp));
#pragma omp for schedule(static)
    for (int64_t g = 0; g < np / 16; ++g) {
      for (int64_t n = 0; n < 16; ++n) {
        const int64_t i = g * 16 + n;
        uint16_t* ah = a_hi ? a_hi + i * dp : row.data();
        uint16_t* al = a_hi ? a_lo + i * dp : row.data() + dp;
        for (int64_t t = 0; t < dp; ++t) {
          const float x = (i < N && t < d) ? G[i * ldg + t] : 0.0f;
          const uint16_t h = bf16_rne(x);
          const float r = x - bf16_value(h);  // exact: the bits of x below h's
          ah[t] = h;
          al[t] = bf16_rne(r);
        }
        if (!b_hi) continue;
        for (int64_t p = 0; p < half; ++p) {
          const size_t o = size_t((g * half + p) * 16 + n);
          b_hi[o] = uint32_t(ah[2 * p]) | (uint32_t(ah[2 * p + 1]) << 16);
          b_lo[o] = uint32_t(al[2 * p]) | (uint32_t(al[2 * p + 1]) << 16);
        }
      }
    }
  }
}

#ifdef LS_AMX

namespace {

// The tile configuration (palette 1; tiles 0..7: 16 rows of 64 bytes), a
// constant in memory: GCC does not see _tile_loadconfig read its argument and
// drops stores into a local one.
alignas(64) const uint8_t kTileConfig[64] = {
    1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                    // palette, start row, reserved
    64, 0, 64, 0, 64, 0, 64, 0, 64, 0, 64, 0, 64, 0, 64, 0,            // bytes per row, tiles 0..7
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                    // tiles 8..15 (none)
    16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0};           // rows, tiles 0..7

constexpr long kArchReqXcompPerm = 0x1023;
constexpr long kXfeatureXtiledata = 18;

}  // namespace

bool amx_usable() {
  static const bool yes = [] {
    // LABELSIFT_NO_AVX512 and LABELSIFT_NO_AVX2 step below it too
    if (std::getenv("LABELSIFT_NO_AMX") || std::getenv("LABELSIFT_NO_AVX512") || std::getenv("LABELSIFT_NO_AVX2"))
      return false;
    if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16")) return false;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return yes;
}

__attribute__((target("amx-tile"))) void amx_thread_begin() { _tile_loadconfig(kTileConfig); }

__attribute__((target("amx-tile"))) void amx_thread_end() { _tile_release(); }

// Tiles: 0..3 the 2 x 2 blocks of C (32 x 32 floats), 4, 5 the A rows
// (16 each), 6, 7 the B columns (16 each); 32 bf16 of the dot product per
// step, in three passes (hi hi, hi lo, lo hi).
__attribute__((target("amx-tile,amx-bf16"))) void gram_tile_amx(const Bf16Split& sp, int64_t i0, int64_t nI,
                                                                 int64_t j0, int64_t nJ, float* S, int64_t ldS) {
  const int64_t dp = sp.dp, half = dp / 2;
  const long sa = long(dp * 2), sc = long(ldS * 4);
  for (int64_t r = 0; r < nI; r += 32) {
    const uint16_t* ah = sp.a_hi + (i0 + r) * dp;
    const uint16_t* al = sp.a_lo + (i0 + r) * dp;
    for (int64_t c = 0; c < nJ; c += 32) {
      const int64_t g = (j0 + c) / 16;
      const uint32_t* bh = sp.b_hi + g * half * 16;
      const uint32_t* bl = sp.b_lo + g * half * 16;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      // the 2 x 2 products of the operand tiles 4, 5 (A) and 6, 7 (B) into C
#define LS_TDP4()              \
  _tile_dpbf16ps(0, 4, 6);     \
  _tile_dpbf16ps(1, 4, 7);     \
  _tile_dpbf16ps(2, 5, 6);     \
  _tile_dpbf16ps(3, 5, 7)
      for (int64_t k = 0; k < dp; k += 32) {
        const int64_t p = k / 2;
        _tile_loadd(4, ah + k, sa);  // hi x hi
        _tile_loadd(5, ah + 16 * dp + k, sa);
        _tile_loadd(6, bh + p * 16, 64);
        _tile_loadd(7, bh + (half + p) * 16, 64);
        LS_TDP4();
        _tile_loadd(6, bl + p * 16, 64);  // hi x lo
        _tile_loadd(7, bl + (half + p) * 16, 64);
        LS_TDP4();
        _tile_loadd(4, al + k, sa);  // lo x hi
        _tile_loadd(5, al + 16 * dp + k, sa);
        _tile_loadd(6, bh + p * 16, 64);
        _tile_loadd(7, bh + (half + p) * 16, 64);
        LS_TDP4();
      }
#undef LS_TDP4
      float* o = S + r * ldS + c;
      _tile_stored(0, o, sc);
      _tile_stored(1, o + 16, sc);
      _tile_stored(2, o + 16 * ldS, sc);
      _tile_stored(3, o + 16 * ldS + 16, sc);
    }
  }
}

#else

bool amx_usable() { return false; }
void amx_thread_begin() {}
void amx_thread_end() {}
void gram_tile_amx(const Bf16Split&, int64_t, int64_t, int64_t, int64_t, float*, int64_t) {
  std::abort();  // never called: amx_usable() is false
}

#endif

}  // namespace knn
}  // namespace ls
