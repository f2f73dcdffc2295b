#include "cl/kernels.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "cl/row_math.h"
#include "common/cpu.h"
#include "common/parallel.h"

namespace ls {

namespace {
// -inf in a storage dtype (the "nothing left out" value of both sketches)
template <class S>
S neg_inf() {
  if constexpr (std::is_same_v<S, half_t>) {
    return half_t{0xfc00};
  } else {
    return S(-INFINITY);
  }
}
}  // namespace

void top_m_rows(const Mat& P, int64_t m, int32_t* cls, void* vals, void* rest, int nthreads) {
  require_host(P);
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    using V = typename Num<S>::V;
    const S* base = static_cast<const S*>(P.data);
    S* vout = static_cast<S*>(vals);
    S* rout = static_cast<S*>(rest);
    const int64_t K = P.k, mm = std::min(m, K);
    const int T = threads_for(nthreads, 2.0 * double(P.n) * double(K));
#pragma omp parallel num_threads(T) if (T > 1)
    {
      std::vector<V> bv(mm + 1);
      std::vector<int32_t> bc(mm + 1);
      std::vector<S> bs(mm + 1);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < P.n; ++i) {
        const S* row = base + i * P.s0;
        int64_t size = 0;
        V left = V(-INFINITY);
        S left_s{};
        bool have_left = false;
        for (int64_t k = 0; k < K; ++k) {
          const S raw = row[k * P.s1];
          const V v = Num<S>::load(raw);
          // a later class ranks after every equal value already kept
          if (size == mm && !(v > bv[size - 1])) {
            if (!have_left || v > left) {
              left = v;
              left_s = raw;
              have_left = true;
            }
            continue;
          }
          int64_t pos = size < mm ? size : mm - 1;
          if (size == mm) {  // evict the last kept entry
            if (!have_left || bv[mm - 1] > left) {
              left = bv[mm - 1];
              left_s = bs[mm - 1];
              have_left = true;
            }
          } else {
            ++size;
          }
          while (pos > 0 && v > bv[pos - 1]) {  // strictly greater moves up
            bv[pos] = bv[pos - 1];
            bc[pos] = bc[pos - 1];
            bs[pos] = bs[pos - 1];
            --pos;
          }
          bv[pos] = v;
          bc[pos] = int32_t(k);
          bs[pos] = raw;
        }
        for (int64_t t = 0; t < mm; ++t) {
          cls[i * m + t] = bc[t];
          vout[i * m + t] = bs[t];
        }
        rout[i] = have_left ? left_s : neg_inf<S>();
      }
    }
  });
}


// ---------------------------------------------------------------------------
// The fused row sketch (float values: float32 rows, float16 rows widened;
// K >= kFastMinK; mmin == 2): the same kept set, order, left-out value and
// certificate as the row-by-row code below, in fewer and vectorised sweeps.
//
// * wanted: double(x) >= floor[k] or double(x) - g >= tau, both in float64.
//   Both tests are monotone in the float x, so each is x >= a float
//   threshold: ff[k] = the smallest float >= floor[k], and per row tf = the
//   smallest float t with fl64(double(t) - g) >= tau (found by stepping from
//   float(g + tau)). Wanted <=> x >= min(ff[k], tf): one float compare.
//   That sweep also takes the row maximum.
// * the stable top 2: the first index of the maximum, then the maximum of
//   the others and its first index -- vectorised sweeps with early exit.
// * without truncation at `cap` the kept set holds every wanted class, so
//   each left-out class is below min(ff[k], tf) <= ff[k], i.e. below its
//   floor: the certificate holds whenever floors are given (or nothing is
//   left out). Past `cap`, the first cap in order are kept (nth_element, as
//   below) and the certificate also needs each dropped class below its
//   floor (x < ff[k]). The left-out maximum is one masked sweep.
// ---------------------------------------------------------------------------
namespace {
constexpr int64_t kFastMinK = 64;

inline float float_at_least(double x) {
  float f = float(x);
  if (double(f) < x) f = std::nextafter(f, float(INFINITY));
  return f;
}

inline float margin_threshold(double g, double tau) {
  if (tau == -INFINITY) return -INFINITY;
  if (!(tau < INFINITY)) return INFINITY;
  auto ok = [&](float t) { return double(t) - g >= tau; };
  float t = float(g + tau);
  if (t > FLT_MAX) t = FLT_MAX;
  if (t < -FLT_MAX) t = -FLT_MAX;
  while (!ok(t)) {
    if (t == FLT_MAX) return INFINITY;
    t = std::nextafter(t, float(INFINITY));
  }
  for (;;) {
    const float lo = std::nextafter(t, -float(INFINITY));
    if (lo == -INFINITY || !ok(lo)) break;
    t = lo;
  }
  return t;
}

// 8 bits -> 8 bytes of 0/1
inline const uint64_t* byte_lut() {
  static const std::array<uint64_t, 256> lut = [] {
    std::array<uint64_t, 256> t{};
    for (int b = 0; b < 256; ++b)
      for (int j = 0; j < 8; ++j)
        if (b >> j & 1) t[size_t(b)] |= uint64_t(1) << (8 * j);
    return t;
  }();
  return lut.data();
}

// mk[k] = x[k] >= min(ff[k], tf) for k < K; returns the count, vmax = max x.
inline int64_t wanted_scalar(const float* x, const float* ff, float tf, int64_t K, uint8_t* mk, float& vmax) {
  int64_t n = 0;
  float m = -INFINITY;
  for (int64_t k = 0; k < K; ++k) {
    const float t = ff[k] < tf ? ff[k] : tf;
    const uint8_t w = uint8_t(x[k] >= t);
    mk[k] = w;
    n += w;
    m = x[k] > m ? x[k] : m;
  }
  vmax = m;
  return n;
}
inline int64_t first_equal_scalar(const float* x, int64_t a, int64_t b, float v) {
  for (int64_t k = a; k < b; ++k)
    if (x[k] == v) return k;
  return -1;
}
inline float max_range_scalar(const float* x, int64_t a, int64_t b) {
  float m = -INFINITY;
  for (int64_t k = a; k < b; ++k) m = x[k] > m ? x[k] : m;
  return m;
}
inline float max_unmarked_scalar(const float* x, const uint8_t* mk, int64_t a, int64_t b) {
  float m = -INFINITY;
  for (int64_t k = a; k < b; ++k) {
    const float v = mk[k] ? -INFINITY : x[k];
    m = v > m ? v : m;
  }
  return m;
}

// the marked k in [0, K) with x[k] >= th, in order, into out; returns their count
inline int64_t collect_marked_ge_scalar(const float* x, const uint8_t* mk, float th, int64_t a, int64_t K,
                                        int32_t* out) {
  int64_t n = 0;
  for (int64_t k = a; k < K; ++k)
    if (mk[k] && x[k] >= th) out[n++] = int32_t(k);
  return n;
}
// how many unmarked k in [a, b) have x[k] >= ff[k]
inline int64_t count_unmarked_ge_scalar(const float* x, const uint8_t* mk, const float* ff, int64_t a, int64_t b) {
  int64_t n = 0;
  for (int64_t k = a; k < b; ++k) n += int64_t(!mk[k] && x[k] >= ff[k]);
  return n;
}

#ifdef LS_HAVE_AVX2_F16C_TWINS
__attribute__((target("avx2"))) inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
__attribute__((target("avx2"))) int64_t wanted_avx2(const float* x, const float* ff, float tf, int64_t K,
                                                     uint8_t* mk, float& vmax) {
  const __m256 vt = _mm256_set1_ps(tf);
  __m256 mx = _mm256_set1_ps(-INFINITY);
  const uint64_t* lut = byte_lut();
  int64_t n = 0, k = 0;
  for (; k + 8 <= K; k += 8) {
    const __m256 v = _mm256_loadu_ps(x + k);
    const __m256 t = _mm256_min_ps(_mm256_loadu_ps(ff + k), vt);
    const int bits = _mm256_movemask_ps(_mm256_cmp_ps(v, t, _CMP_GE_OQ));
    std::memcpy(mk + k, &lut[bits], 8);
    n += __builtin_popcount(unsigned(bits));
    mx = _mm256_max_ps(mx, v);
  }
  float m = hmax8(mx), tail = -INFINITY;
  n += wanted_scalar(x + k, ff + k, tf, K - k, mk + k, tail);
  vmax = tail > m ? tail : m;
  return n;
}
__attribute__((target("avx2"))) int64_t first_equal_avx2(const float* x, int64_t a, int64_t b, float v) {
  const __m256 vv = _mm256_set1_ps(v);
  int64_t k = a;
  for (; k + 8 <= b; k += 8) {
    const int bits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + k), vv, _CMP_EQ_OQ));
    if (bits) return k + __builtin_ctz(unsigned(bits));
  }
  return first_equal_scalar(x, k, b, v);
}
__attribute__((target("avx2"))) float max_range_avx2(const float* x, int64_t a, int64_t b) {
  __m256 mx = _mm256_set1_ps(-INFINITY);
  int64_t k = a;
  for (; k + 8 <= b; k += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + k));
  const float m = hmax8(mx), t = max_range_scalar(x, k, b);
  return t > m ? t : m;
}
__attribute__((target("avx2"))) float max_unmarked_avx2(const float* x, const uint8_t* mk, int64_t a, int64_t b) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  const __m256i zero = _mm256_setzero_si256();
  __m256 mx = ninf;
  int64_t k = a;
  for (; k + 8 <= b; k += 8) {
    const __m256i m32 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mk + k)));
    const __m256 keep = _mm256_castsi256_ps(_mm256_cmpeq_epi32(m32, zero));
    mx = _mm256_max_ps(mx, _mm256_blendv_ps(ninf, _mm256_loadu_ps(x + k), keep));
  }
  const float m = hmax8(mx), t = max_unmarked_scalar(x, mk, k, b);
  return t > m ? t : m;
}
__attribute__((target("avx2"))) int64_t collect_marked_ge_avx2(const float* x, const uint8_t* mk, float th,
                                                                int64_t K, int32_t* out) {
  const __m256 vt = _mm256_set1_ps(th);
  const __m256i zero = _mm256_setzero_si256();
  int64_t n = 0, k = 0;
  for (; k + 8 <= K; k += 8) {
    const __m256i m32 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mk + k)));
    const __m256 marked = _mm256_castsi256_ps(_mm256_cmpgt_epi32(m32, zero));
    unsigned bits = unsigned(_mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + k), vt, _CMP_GE_OQ),
                                                              marked)));
    while (bits) {
      out[n++] = int32_t(k + __builtin_ctz(bits));
      bits &= bits - 1;
    }
  }
  return n + collect_marked_ge_scalar(x, mk, th, k, K, out + n);
}
__attribute__((target("avx2"))) int64_t count_unmarked_ge_avx2(const float* x, const uint8_t* mk, const float* ff,
                                                                int64_t a, int64_t b) {
  const __m256i zero = _mm256_setzero_si256();
  int64_t n = 0, k = a;
  for (; k + 8 <= b; k += 8) {
    const __m256i m32 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mk + k)));
    const __m256 unmarked = _mm256_castsi256_ps(_mm256_cmpeq_epi32(m32, zero));
    const __m256 ge = _mm256_cmp_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(ff + k), _CMP_GE_OQ);
    n += __builtin_popcount(unsigned(_mm256_movemask_ps(_mm256_and_ps(ge, unmarked))));
  }
  return n + count_unmarked_ge_scalar(x, mk, ff, k, b);
}
#endif

struct FastKit {
  bool avx;
  int64_t wanted(const float* x, const float* ff, float tf, int64_t K, uint8_t* mk, float& vmax) const {
#ifdef LS_HAVE_AVX2_F16C_TWINS
    if (avx) return wanted_avx2(x, ff, tf, K, mk, vmax);
#endif
    return wanted_scalar(x, ff, tf, K, mk, vmax);
  }
  int64_t first_equal(const float* x, int64_t a, int64_t b, float v) const {
#ifdef LS_HAVE_AVX2_F16C_TWINS
    if (avx) return first_equal_avx2(x, a, b, v);
#endif
    return first_equal_scalar(x, a, b, v);
  }
  float max_range(const float* x, int64_t a, int64_t b) const {
#ifdef LS_HAVE_AVX2_F16C_TWINS
    if (avx) return max_range_avx2(x, a, b);
#endif
    return max_range_scalar(x, a, b);
  }
  float max_unmarked(const float* x, const uint8_t* mk, int64_t a, int64_t b) const {
#ifdef LS_HAVE_AVX2_F16C_TWINS
    if (avx) return max_unmarked_avx2(x, mk, a, b);
#endif
    return max_unmarked_scalar(x, mk, a, b);
  }
  int64_t collect_marked_ge(const float* x, const uint8_t* mk, float th, int64_t K, int32_t* out) const {
#ifdef LS_HAVE_AVX2_F16C_TWINS
    if (avx) return collect_marked_ge_avx2(x, mk, th, K, out);
#endif
    return collect_marked_ge_scalar(x, mk, th, 0, K, out);
  }
  int64_t count_unmarked_ge(const float* x, const uint8_t* mk, const float* ff, int64_t a, int64_t b) const {
#ifdef LS_HAVE_AVX2_F16C_TWINS
    if (avx) return count_unmarked_ge_avx2(x, mk, ff, a, b);
#endif
    return count_unmarked_ge_scalar(x, mk, ff, a, b);
  }
};

// When many more classes are wanted than can be kept, the candidates are
// first narrowed to those at or above theta = the cp-th largest value among
// the first kSampleFactor * cp wanted classes: every one of the cp kept is
// at or above the cp-th largest value of all wanted >= theta, so the kept
// set, found by nth_element on the narrowed list, is the same.
constexpr int64_t kSampleFactor = 8;

// One row on the fast path (cp >= 2).
// x: the row's values as floats; mk: K + 8 bytes (the 8 past K zero); cand: room for K + 2, then
// kSampleFactor * cp + 8 floats.
template <class S>
void fast_row(const FastKit& kit, const float* x, const S* row, int64_t s1, int64_t K, int64_t y, double g,
              double tau, bool floors, const float* ff, int64_t cp, uint8_t* mk, int32_t* cand, int32_t* cls_out,
              S* val_out, int32_t* count, uint8_t* certified, S* rest) {
  const float tf = margin_threshold(g, tau);
  float vmax;
  int64_t nw = kit.wanted(x, ff, tf, K, mk, vmax);
  nw -= mk[y];
  mk[y] = 0;
  const int64_t i1 = kit.first_equal(x, 0, K, vmax);
  const float a2 = kit.max_range(x, 0, i1), b2 = kit.max_range(x, i1 + 1, K);
  const float m2 = b2 > a2 ? b2 : a2;
  int64_t i2 = kit.first_equal(x, 0, i1, m2);
  if (i2 < 0) i2 = kit.first_equal(x, i1 + 1, K, m2);
  int64_t n = 0;
  const bool narrow = nw > kSampleFactor * cp;
  for (int64_t k0 = 0; k0 < K; k0 += 8) {
    uint64_t w;
    std::memcpy(&w, mk + k0, 8);
    while (w) {
      const int b = __builtin_ctzll(w);
      cand[n++] = int32_t(k0 + (b >> 3));
      w &= w - 1;
    }
    if (narrow && n >= kSampleFactor * cp) break;
  }
  if (narrow) {  // theta from the first kSampleFactor * cp wanted, then the wanted at or above it
    float* sv = reinterpret_cast<float*>(cand + K + 2);
    for (int64_t t = 0; t < n; ++t) sv[t] = x[cand[t]];
    std::nth_element(sv, sv + (cp - 1), sv + n, [](float a, float b) { return a > b; });
    n = kit.collect_marked_ge(x, mk, sv[cp - 1], K, cand);
  }
  if (!mk[i1]) cand[n++] = int32_t(i1);
  if (!mk[i2]) cand[n++] = int32_t(i2);
  auto before = [&](int32_t p, int32_t q) { return x[p] > x[q] || (x[p] == x[q] && p < q); };
  // over cap: keep the first cp in order (i1 and i2 among them); every other class is left out, and those at
  // or above their floor void the certificate
  int64_t above = 0;
  if (n > cp || narrow) {
    if (n > cp) std::nth_element(cand, cand + cp, cand + n, before);
    n = std::min(n, cp);
    std::memset(mk, 0, size_t(K));
    for (int64_t t = 0; t < n; ++t) mk[cand[t]] = 1;
    above = kit.count_unmarked_ge(x, mk, ff, 0, K) - int64_t(!mk[y] && x[y] >= ff[y]);
  }
  // left out: every class but the kept ones and y (the kept ones not marked are i1, i2)
  int64_t e[3] = {y, i1, i2};
  std::sort(e, e + 3);
  float left = -INFINITY;
  int64_t a = 0;
  for (int t = 0; t < 3; ++t) {
    if (e[t] >= a) {
      const float v = kit.max_unmarked(x, mk, a, e[t]);
      left = v > left ? v : left;
      a = e[t] + 1;
    }
  }
  {
    const float v = kit.max_unmarked(x, mk, a, K);
    left = v > left ? v : left;
  }
  const int64_t nout = K - n - ((y == i1 || y == i2) ? 0 : 1);
  std::sort(cand, cand + n, before);
  for (int64_t t = 0; t < n; ++t) {
    cls_out[t] = cand[t];
    val_out[t] = row[int64_t(cand[t]) * s1];
  }
  *count = int32_t(n);
  *certified = uint8_t(nout == 0 || (floors && above == 0));
  S left_s = neg_inf<S>();
  if (nout > 0) {  // the stored value of the first left-out class holding the largest value
    for (int64_t k = kit.first_equal(x, 0, K, left); k >= 0; k = kit.first_equal(x, k + 1, K, left)) {
      if (k != y && k != i1 && k != i2 && !mk[k]) {
        left_s = row[k * s1];
        break;
      }
    }
  }
  *rest = left_s;
}
}  // namespace

// The rows are validated before they come here (finite values): the sweeps
// below are written without branches on the values, so that the compiler
// vectorises them (the kept set, the largest left-out value and the
// certificate are those of the row-by-row definition, sketch_rows_numpy).
namespace {
// Rows [i0, i1) of sketch_rows (one thread's share). Compiled for the
// baseline ISA and, chosen at run time, for AVX2/F16C (flatten: the loops
// vectorise with the wider registers; no FMA and -ffp-contract=off, so the
// results are bit-identical).
template <class S>
void sketch_range(const Mat& P, const int64_t* labels, int64_t mmin, int64_t cap, const double* floor, double tau,
                  int32_t* cls, void* vals, int32_t* count, void* rest, uint8_t* certified, void* given, int64_t i0,
                  int64_t i1) {
  using V = typename Num<S>::V;
  const S* base = static_cast<const S*>(P.data);
  S* vout = static_cast<S*>(vals);
  S* rout = static_cast<S*>(rest);
  S* gout = static_cast<S*>(given);
  const int64_t K = P.k, mm = std::min(mmin, K), cp = std::min(cap, K), s1 = P.s1;
  std::vector<V> bv(mm + 1);
  std::vector<int32_t> bc(mm + 1);
  std::vector<int32_t> cand;  // kept classes (the wanted ones, then the rest of the top-mmin)
  cand.reserve(size_t(K));
  std::vector<uint8_t> mark(size_t(K) + 8, 0);  // 8 zero bytes past K (the fast path reads mark in words)
  std::vector<double> fl(static_cast<size_t>(K), double(INFINITY));  // no floors: none is ever reached
  if (floor) std::copy(floor, floor + K, fl.begin());
  std::vector<V> v(static_cast<size_t>(K));
  const double* flp = fl.data();
  uint8_t* mk = mark.data();
  V* vp = v.data();
  constexpr bool kFloatValues = std::is_same_v<V, float>;
  const bool fast = kFloatValues && K >= kFastMinK && mm == 2 && cp >= 2;
  std::vector<float> ffv(fast ? size_t(K) : 0);
  std::vector<int32_t> cbuf(fast ? size_t(K) + 2 + size_t(kSampleFactor * cp) + 8 : 0);
  for (size_t k = 0; k < ffv.size(); ++k) ffv[k] = float_at_least(fl[k]);
  const FastKit kit{
#ifdef LS_HAVE_AVX2_F16C_TWINS
      cpu_has_avx2_f16c()
#else
      false
#endif
  };
  for (int64_t i = i0; i < i1; ++i) {
    const S* row = base + i * P.s0;
    const int64_t y = labels[i];
    gout[i] = row[y * s1];
    const double g = double(Num<S>::load(gout[i]));
    if constexpr (kFloatValues) {
      if (fast) {
        const float* x = vp;
        if (std::is_same_v<S, float> && s1 == 1) {
          x = reinterpret_cast<const float*>(row);
        } else {
          for (int64_t k = 0; k < K; ++k) vp[k] = Num<S>::load(row[k * s1]);
        }
        fast_row<S>(kit, x, row, s1, K, y, g, tau, floor != nullptr, ffv.data(), cp, mk, cbuf.data(), cls + i * cp,
                    vout + i * cp, count + i, certified + i, rout + i);
        continue;
      }
    }
    // 1. the values, and the wanted classes as a mask (y excluded below)
    if (s1 == 1) {
      for (int64_t k = 0; k < K; ++k) vp[k] = Num<S>::load(row[k]);
    } else {
      for (int64_t k = 0; k < K; ++k) vp[k] = Num<S>::load(row[k * s1]);
    }
    int64_t nw = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double dv = double(vp[k]);
      const uint8_t w = uint8_t((dv >= flp[k]) | (dv - g >= tau));
      mk[k] = w;
      nw += w;
    }
    nw -= mk[y];
    mk[y] = 0;
    // 2. the stable top-mmin (ties: lower class first)
    int64_t size = 0;
    for (int64_t k = 0; k < K; ++k) {
      const V x = vp[k];
      if (size == mm && !(x > bv[size - 1])) continue;
      int64_t pos = size < mm ? size++ : mm - 1;
      while (pos > 0 && x > bv[pos - 1]) {
        bv[pos] = bv[pos - 1];
        bc[pos] = bc[pos - 1];
        --pos;
      }
      bv[pos] = x;
      bc[pos] = int32_t(k);
    }
    cand.clear();
    if (nw > 0) {
      for (int64_t k = 0; k < K; ++k)
        if (mk[k]) cand.push_back(int32_t(k));
    }
    for (int64_t t = 0; t < size; ++t) {
      if (!mk[bc[t]]) {
        mk[bc[t]] = 1;
        cand.push_back(bc[t]);
      }
    }
    // 3. in (value desc, class asc) order, at most cap of them
    auto before = [&](int32_t a, int32_t b) { return vp[a] > vp[b] || (vp[a] == vp[b] && a < b); };
    int64_t nk = int64_t(cand.size());
    if (nk > cp) {
      std::nth_element(cand.begin(), cand.begin() + cp, cand.end(), before);
      for (int64_t t = cp; t < nk; ++t) mk[cand[size_t(t)]] = 0;
      nk = cp;
      cand.resize(size_t(cp));
    }
    std::sort(cand.begin(), cand.end(), before);
    // 4. the largest value left out (the given label aside), and whether
    //    every left-out class is proven below its floor
    const uint8_t my = mk[y];
    mk[y] = 1;
    V left = V(-INFINITY);
    int64_t nout = 0, above = 0;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t out = 1 - int64_t(mk[k]);
      const V x = out ? vp[k] : V(-INFINITY);
      left = x > left ? x : left;
      nout += out;
      above += out & int64_t(!(double(vp[k]) < flp[k]));
    }
    mk[y] = my;
    const bool cert = nout == 0 || (floor != nullptr && above == 0);
    S left_s = neg_inf<S>();
    if (nout > 0) {  // the stored value of the largest left-out entry (its first class)
      for (int64_t k = 0; k < K; ++k) {
        if (k != y && !mk[k] && vp[k] == left) {
          left_s = row[k * s1];
          break;
        }
      }
    }
    for (int64_t t = 0; t < nk; ++t) {
      const int32_t c = cand[size_t(t)];
      mk[c] = 0;
      cls[i * cp + t] = c;
      vout[i * cp + t] = row[int64_t(c) * s1];
    }
    count[i] = int32_t(nk);
    certified[i] = cert ? 1 : 0;
    rout[i] = left_s;
  }
}

#ifdef LS_HAVE_AVX2_F16C_TWINS
template <class S>
__attribute__((target("avx2,f16c"), flatten)) void sketch_range_avx2(const Mat& P, const int64_t* labels,
                                                                     int64_t mmin, int64_t cap, const double* floor,
                                                                     double tau, int32_t* cls, void* vals,
                                                                     int32_t* count, void* rest, uint8_t* certified,
                                                                     void* given, int64_t i0, int64_t i1) {
  sketch_range<S>(P, labels, mmin, cap, floor, tau, cls, vals, count, rest, certified, given, i0, i1);
}
#endif
}  // namespace

void sketch_rows(const Mat& P, const int64_t* labels, int64_t mmin, int64_t cap, const double* floor, double tau,
                 int32_t* cls, void* vals, int32_t* count, void* rest, uint8_t* certified, void* given, int nthreads) {
  require_host(P);
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    auto fn = &sketch_range<S>;
#ifdef LS_HAVE_AVX2_F16C_TWINS
    if (cpu_has_avx2_f16c()) fn = &sketch_range_avx2<S>;
#endif
    const int T = threads_for(nthreads, 3.0 * double(P.n) * double(P.k));
    // chunks of rows handed out dynamically (a descheduled thread holds up one chunk only)
    const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, P.k));
    const int64_t nchunks = (P.n + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(T) if (T > 1)
    for (int64_t c = 0; c < nchunks; ++c)
      fn(P, labels, mmin, cap, floor, tau, cls, vals, count, rest, certified, given, c * chunk,
         std::min(P.n, (c + 1) * chunk));
  });
}

namespace {
// The table rows of one class (slot-major: slot s is vals[s * K .. s * K + K),
// so the worst slot is one contiguous row).
template <class V, class I>
struct ClassSlots {
  V* cv;
  I* ci;
  int64_t K, slots;
  V* cr;  // the class's runner-up row (K margins), or null: the best margin offered and not held

  // (m, id) into column j when it beats the worst slot's key; what is turned away or pushed out raises cr[j]
  void offer(int64_t j, V m, int64_t id) const {
    int64_t s = slots - 1;
    const V wv = cv[s * K + j];
    const I wid = ci[s * K + j];
    if (!(m > wv || (m == wv && (wid < 0 || id < int64_t(wid))))) {
      if (cr != nullptr && m > cr[j]) cr[j] = m;
      return;
    }
    if (cr != nullptr && wid >= 0 && wv > cr[j]) cr[j] = wv;
    while (s > 0) {
      const V pv = cv[(s - 1) * K + j];
      const I pid = ci[(s - 1) * K + j];
      if (pid >= 0 && (pv > m || (pv == m && int64_t(pid) < id))) break;
      cv[s * K + j] = pv;
      ci[s * K + j] = pid;
      --s;
    }
    cv[s * K + j] = m;
    ci[s * K + j] = I(id);
  }

  // every column of a row: a branch-free test of each chunk against the worst slot, the rare hits offered
  template <class S>
  void scan(const S* row, int64_t s1, int64_t k, V g, int64_t id) const {
    const V* worst = cv + (slots - 1) * K;
    constexpr int64_t W = 64;
    V m[W];
    for (int64_t j0 = 0; j0 < K; j0 += W) {
      const int64_t w = std::min(W, K - j0);
      bool any = false;
      for (int64_t t = 0; t < w; ++t) {
        m[t] = Num<S>::rnd(Num<S>::load(row[(j0 + t) * s1]) - g);
        any |= m[t] >= worst[j0 + t];
      }
      if (!any) continue;
      for (int64_t t = 0; t < w; ++t)
        if (j0 + t != k && m[t] >= worst[j0 + t]) offer(j0 + t, m[t], id);
    }
  }

  // the smallest worst-slot margin over the columns j != k (a row whose every margin is below it cannot enter)
  V lowest(int64_t k) const {
    const V* worst = cv + (slots - 1) * K;
    V lo = V(INFINITY);
    for (int64_t j = 0; j < K; ++j) lo = (j != k && worst[j] < lo) ? worst[j] : lo;
    return lo;
  }
};

#ifdef LS_HAVE_AVX2_F16C_TWINS
// ClassSlots::scan for contiguous float32 rows, 8 columns a compare: the same float subtraction and the
// same offers (in column order), the columns at or above their worst slot taken from the compare's bit mask.
template <class I>
__attribute__((target("avx2"))) void scan_f32_avx2(const ClassSlots<float, I>& cs, const float* row, int64_t k,
                                                   float g, int64_t id) {
  const float* worst = cs.cv + (cs.slots - 1) * cs.K;
  const int64_t K = cs.K, K8 = K - K % 8;
  const __m256 gv = _mm256_set1_ps(g);
  for (int64_t j0 = 0; j0 < K8; j0 += 8) {
    const __m256 m = _mm256_sub_ps(_mm256_loadu_ps(row + j0), gv);
    unsigned bits = unsigned(_mm256_movemask_ps(_mm256_cmp_ps(m, _mm256_loadu_ps(worst + j0), _CMP_GE_OQ)));
    while (bits) {
      const int64_t j = j0 + __builtin_ctz(bits);
      bits &= bits - 1;
      if (j != k) cs.offer(j, row[j] - g, id);
    }
  }
  for (int64_t j = K8; j < K; ++j) {
    const float m = row[j] - g;
    if (j != k && m >= worst[j]) cs.offer(j, m, id);
  }
}

// ClassSlots::lowest for float margins.
template <class I>
__attribute__((target("avx2"))) float lowest_f32_avx2(const ClassSlots<float, I>& cs, int64_t k) {
  const float* worst = cs.cv + (cs.slots - 1) * cs.K;
  const int64_t K = cs.K, K8 = K - K % 8;
  __m256 lo = _mm256_set1_ps(INFINITY);
  const int64_t k8 = k - k % 8;
  for (int64_t j0 = 0; j0 < K8; j0 += 8)
    if (j0 != k8) lo = _mm256_min_ps(lo, _mm256_loadu_ps(worst + j0));
  alignas(32) float v[8];
  _mm256_store_ps(v, lo);
  float r = INFINITY;
  for (int t = 0; t < 8; ++t) r = v[t] < r ? v[t] : r;
  for (int64_t j = (k8 < K8 ? k8 : K8); j < (k8 < K8 ? k8 + 8 : K8); ++j)
    if (j != k && worst[j] < r) r = worst[j];
  for (int64_t j = K8; j < K; ++j)
    if (j != k && worst[j] < r) r = worst[j];
  return r;
}
#endif

// The rows of classes k with k % nt == t (one thread's share) into the table. Avx: the AVX2 twin's
// build, which scans contiguous float32 rows 8 columns at a time.
template <class S, class V, class I, bool Avx = false>
void pair_rows(const Mat& P, const int64_t* labels, int64_t row0, int64_t slots, V* vp, I* idp, V* lowp, V* rp,
               const S* rs, const int64_t* ptr, const int32_t* cls, int t, int nt) {
  const S* base = static_cast<const S*>(P.data);
  const int64_t K = P.k;
  const bool skip = lowp != nullptr && rs != nullptr && ptr != nullptr && cls != nullptr;
  for (int64_t i = 0; i < P.n; ++i) {
    const int64_t k = labels[i];
    if (k % nt != t) continue;
    const ClassSlots<V, I> cs{vp + k * slots * K, idp + k * slots * K, K, slots, rp == nullptr ? nullptr : rp + k * K};
    const S* row = base + i * P.s0;
    const V g = Num<S>::load(row[k * P.s1]);
    if (skip) {
      // every class the row's sketch left out is at most rest: below the lowest worst slot, only the kept
      // classes can enter (a stale `low` is only lower, so still a bound)
      const V ub = Num<S>::rnd(Num<S>::load(rs[i]) - g);
      if (ub < lowp[k]) {
        for (int64_t e = ptr[i]; e < ptr[i + 1]; ++e) {
          const int64_t j = cls[e];
          if (j != k) cs.offer(j, Num<S>::rnd(Num<S>::load(row[j * P.s1]) - g), row0 + i);
        }
        continue;
      }
    }
#ifdef LS_HAVE_AVX2_F16C_TWINS
    if constexpr (Avx && std::is_same_v<S, float> && std::is_same_v<V, float>) {
      if (P.s1 == 1) {
        scan_f32_avx2(cs, row, k, g, row0 + i);
        if (lowp != nullptr) lowp[k] = lowest_f32_avx2(cs, k);
        continue;
      }
    }
#endif
    cs.scan(row, P.s1, k, g, row0 + i);
    if (lowp != nullptr) lowp[k] = cs.lowest(k);
  }
}

#ifdef LS_HAVE_AVX2_F16C_TWINS
template <class S, class V, class I>
__attribute__((target("avx2,f16c"), flatten)) void pair_rows_avx2(const Mat& P, const int64_t* labels, int64_t row0,
                                                                  int64_t slots, V* vp, I* idp, V* lowp, V* rp,
                                                                  const S* rs, const int64_t* ptr, const int32_t* cls,
                                                                  int t, int nt) {
  pair_rows<S, V, I, true>(P, labels, row0, slots, vp, idp, lowp, rp, rs, ptr, cls, t, nt);
}
#endif
}  // namespace

void pair_top_update(const Mat& P, const int64_t* labels, int64_t row0, int64_t slots, void* vals, void* ids,
                     bool wide_ids, void* low, const void* rest, const int64_t* ptr, const int32_t* cls,
                     int nthreads, void* runner) {
  require_host(P);
  if (slots < 1) return;
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    using V = typename Num<S>::V;
    const S* rs = static_cast<const S*>(rest);
    V* lowp = static_cast<V*>(low);
    V* rp = static_cast<V*>(runner);
    auto run = [&](auto* idp) {
      using I = std::remove_pointer_t<decltype(idp)>;
      V* vp = static_cast<V*>(vals);
      auto fn = &pair_rows<S, V, I>;
#ifdef LS_HAVE_AVX2_F16C_TWINS
      if (cpu_has_avx2_f16c()) fn = &pair_rows_avx2<S, V, I>;
#endif
      // a thread owns the classes k with k % T == t: no two threads write one table row
      const int T = threads_for(nthreads, 2.0 * double(P.n) * double(P.k));
#pragma omp parallel num_threads(T) if (T > 1)
      fn(P, labels, row0, slots, vp, idp, lowp, rp, rs, ptr, cls, omp_get_thread_num(), omp_get_num_threads());
    };
    if (wide_ids) {
      run(static_cast<int64_t*>(ids));
    } else {
      run(static_cast<int32_t*>(ids));
    }
  });
}

void sketch_guesses(const int64_t* ptr, int64_t n, const int64_t* ec, const void* ev, const void* g, const void* rm,
                    int dtype, const uint8_t* cert, const int64_t* y, const double* cut, const int64_t* order,
                    int64_t K, int64_t* guess, uint8_t* decided, int nthreads) {
  dispatch(dtype, [&](auto tag) {
    using S = decltype(tag);
    const S* evp = static_cast<const S*>(ev);
    const S* gp = static_cast<const S*>(g);
    const S* rmp = static_cast<const S*>(rm);
    const int T = threads_for(nthreads, 8.0 * double(ptr[n]));
#pragma omp parallel for schedule(static, 4096) num_threads(T) if (T > 1)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t e0 = ptr[i], e1 = ptr[i + 1], yi = y[i];
      int64_t count = 0, single = yi;
      bool y_in = false;
      for (int64_t e = e0; e < e1; ++e) {
        const int64_t c = ec[e];
        y_in |= c == yi;
        if (double(Num<S>::load(evp[e])) >= cut[c]) {
          if (count == 0) single = c;  // the first passing entry (entries in descending order)
          ++count;
        }
      }
      if (!y_in && double(Num<S>::load(gp[i])) >= cut[yi]) ++count;
      const int64_t amax = ec[e0];
      guess[i] = count == 0 ? -1 : (count == 1 ? single : amax);
      bool dec = cert[i] != 0 || count >= 2 || (count == 1 && single == amax);
      if (!dec) {  // the smallest cut among the classes the row does not know
        double mu = INFINITY;
        for (int64_t t = 0; t < K; ++t) {
          const int64_t c = order[t];
          if (c == yi) continue;
          bool known = false;
          for (int64_t e = e0; e < e1 && !known; ++e) known = ec[e] == c;
          if (!known) {
            mu = cut[c];
            break;
          }
        }
        dec = double(Num<S>::load(rmp[i])) < mu;
      }
      decided[i] = uint8_t(dec);
    }
  });
}

void sketch_keeps(const int64_t* ptr, int64_t n, const int64_t* ec, const void* ev, const void* rm, int dtype,
                  const int64_t* y, const double* nudged, uint8_t* keep, uint8_t* decided, int nthreads) {
  dispatch(dtype, [&](auto tag) {
    using S = decltype(tag);
    const S* evp = static_cast<const S*>(ev);
    const S* rmp = static_cast<const S*>(rm);
    const int T = threads_for(nthreads, 4.0 * double(ptr[n]));
#pragma omp parallel for schedule(static, 4096) num_threads(T) if (T > 1)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t yi = y[i];
      const double pa = nudged[i];
      bool fail = false;
      for (int64_t e = ptr[i]; e < ptr[i + 1]; ++e) {
        const int64_t c = ec[e];
        const double v = double(Num<S>::load(evp[e]));
        fail |= (c < yi && v >= pa) || (c > yi && v > pa);
      }
      const double r = double(Num<S>::load(rmp[i]));
      keep[i] = uint8_t(!fail && r <= pa);
      decided[i] = uint8_t(fail || r != pa);
    }
  });
}

void full_rows_tests(const Mat& P, const int64_t* labels, const double* nudged, const double* cut, uint8_t* keep,
                     int64_t* npass, int64_t* first, int nthreads) {
  require_host(P);
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    const S* base = static_cast<const S*>(P.data);
    const int T = threads_for(nthreads, 2.0 * double(P.n) * double(P.k));
#pragma omp parallel for schedule(static, 64) num_threads(T) if (T > 1)
    for (int64_t i = 0; i < P.n; ++i) {
      const S* row = base + i * P.s0;
      const int64_t y = labels[i];
      const double pa = nudged[i];
      bool beaten = false;
      int64_t cnt = 0, f = -1;
      for (int64_t j = 0; j < P.k; ++j) {
        const double v = double(Num<S>::load(row[j * P.s1]));
        beaten |= (j < y && v >= pa) || (j > y && v > pa);
        const bool ok = v >= cut[j];
        cnt += ok;
        if (ok && f < 0) f = j;
      }
      keep[i] = uint8_t(!beaten);
      npass[i] = cnt;
      first[i] = f < 0 ? 0 : f;
    }
  });
}

void group_sort_desc(const int64_t* group, const double* key, const int64_t* id, int64_t m, int64_t ngroups,
                     int64_t* order, int64_t* start, int nthreads) {
  std::fill(start, start + ngroups + 1, int64_t(0));
  for (int64_t e = 0; e < m; ++e) ++start[group[e] + 1];
  for (int64_t g = 0; g < ngroups; ++g) start[g + 1] += start[g];
  std::vector<int64_t> fill(start, start + ngroups);
  for (int64_t e = 0; e < m; ++e) order[fill[size_t(group[e])]++] = e;
  const int T = threads_for(nthreads, 20.0 * double(m));
#pragma omp parallel for schedule(dynamic, 64) num_threads(T) if (T > 1)
  for (int64_t g = 0; g < ngroups; ++g) {
    std::sort(order + start[g], order + start[g + 1], [&](int64_t a, int64_t b) {
      return key[a] > key[b] || (!(key[b] > key[a]) && id[a] < id[b]);
    });
  }
}

}  // namespace ls
