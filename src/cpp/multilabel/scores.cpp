// The multi-label label quality score of cleanlab's defaults
// (self_confidence, exponential moving average): one read of each row, its
// K binary self-confidences sorted by the sorting network of
// common/small_sort.inc (std::sort in the scalar build), folded in
// descending order. See kernels.h for the definition.
//
// The row kernel (multilabel/ema_rows.inc) is compiled once per ISA: in
// isa_base (the scalar definition and SSE2, baseline x86-64) and, on x86-64
// GCC, in isa_avx2 and isa_avx512 under `#pragma GCC target`.
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/cpu.h"
#include "common/parallel.h"
#include "multilabel/kernels.h"
#include "multilabel/row_math.h"

namespace ls {
namespace ml {

#if defined(__GNUC__) && !defined(__clang__)
#define LS_ML_SORT_NET 1
#endif
#if defined(LS_ML_SORT_NET) && defined(__x86_64__)
#define LS_ML_X86 1
#endif

namespace {

// The sort's row length for keys of key_bytes in vb-byte registers: K
// rounded up to a power of two of at least one register (vb = 0, std::sort: K).
inline int64_t padded_len(int vb, size_t key_bytes, int64_t K) {
  if (vb == 0) return K;
  int64_t n = vb / int64_t(key_bytes);
  while (n < K) n *= 2;
  return n;
}

// Rows sorted and folded together (their folds are independent chains, so
// the multiply-adds of G rows overlap).
inline int64_t group_rows(int64_t n) { return std::max<int64_t>(1, std::min<int64_t>(8, 8192 / n)); }

// A thread buffer's layout: n keys a row (the sort's padded length; K with
// per_class, which writes the scores unsorted), g rows at a time.
struct Layout {
  int64_t n, g;
};
inline Layout layout(int vb, size_t key_bytes, int64_t K, bool per_class) {
  if (per_class) return {K, 1};
  const int64_t n = padded_len(vb, key_bytes, K);
  return {n, group_rows(n)};
}

namespace isa_base {
#ifdef LS_ML_SORT_NET
#include "common/small_sort.inc"
#endif
#include "multilabel/ema_rows.inc"
}  // namespace isa_base

#ifdef LS_ML_X86
#pragma GCC push_options
#pragma GCC target("avx2")
namespace isa_avx2 {
#include "common/small_sort.inc"
#include "multilabel/ema_rows.inc"
}  // namespace isa_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
namespace isa_avx512 {
#include "common/small_sort.inc"
#include "multilabel/ema_rows.inc"
}  // namespace isa_avx512
#pragma GCC pop_options
#endif

using EmaFn = int64_t (*)(const Mat&, const Csr&, int, double, double, double*, double*, int64_t, int64_t, void*);

struct Chosen {
  EmaFn fn;
  int vb;  // register bytes (0: std::sort)
};

Chosen choose(int isa) {
  switch (resolve_vec_isa(isa)) {
#ifdef LS_ML_SORT_NET
    case ISA_SSE2: return {&isa_base::ema_rows<16>, 16};
#endif
#ifdef LS_ML_X86
    case ISA_AVX2: return {&isa_avx2::ema_rows<32>, 32};
    case ISA_AVX512: return {&isa_avx512::ema_rows<64>, 64};
#endif
    default: return {&isa_base::ema_rows<0>, 0};
  }
}

}  // namespace

int64_t ema_scores(const Mat& P, const Csr& y, int method, double alpha, double beta, double* out,
                   double* per_class, int isa, int nthreads) {
  require_host(P);
  if (P.n == 0) return -1;
  if (P.k < 1) throw std::invalid_argument("ema_scores: no classes");
  if (method != SCORE_SELF_CONFIDENCE && method != SCORE_NORMALIZED_MARGIN)
    throw std::invalid_argument("ema_scores: unknown score method");
  const Chosen ch = choose(isa);
  const size_t key_bytes = P.dtype == F64 ? sizeof(double) : sizeof(float);
  const Layout lay = layout(ch.vb, key_bytes, P.k, per_class != nullptr);
  const size_t buf_bytes = (size_t(lay.g * lay.n) * key_bytes + 63) / 64 * 64;
  const int T = int(std::min<int64_t>(threads_for(nthreads, 4.0 * double(P.n) * double(P.k)), P.n));
  std::vector<int64_t> bad(size_t(T), -1);
#pragma omp parallel num_threads(T) if (T > 1)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t r0 = P.n * t / nt, r1 = P.n * (t + 1) / nt;
    std::unique_ptr<void, void (*)(void*)> buf(std::aligned_alloc(64, buf_bytes), std::free);
    if (!buf) {
      bad[size_t(t)] = -2;
    } else if (r1 > r0) {
      bad[size_t(t)] = ch.fn(P, y, method, alpha, beta, out, per_class, r0, r1, buf.get());
    }
  }
  int64_t first = -1;
  for (const int64_t b : bad) {
    if (b == -2) throw std::bad_alloc();
    if (b >= 0 && (first < 0 || b < first)) first = b;
  }
  return first;
}

}  // namespace ml
}  // namespace ls
