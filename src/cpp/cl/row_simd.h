// Host-only explicit-SIMD version of RowOps<S>::sweep_row_scalar for
// contiguous rows, written with GCC/Clang vector extensions (lowered to SSE2
// on baseline x86-64, to AVX2 inside the target("avx2") clone of the row
// kernel), passed to RowOps::row as its sweep policy (SimdSweep). It
// computes exactly what the scalar sweep in cl/row_math.h computes (max with its
// first index, min, count passing the cut, largest passing index, sum): the
// scalar one stays the definition (and the GPU's code); the property tests
// compare both through the public API on every dtype.
#pragma once

#if !defined(__CUDACC__) && (defined(__GNUC__) || defined(__clang__))
#define LS_HAVE_SIMD_SWEEP 1

#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#endif
#include <type_traits>

#include "cl/row_math.h"
#include "common/dtype.h"

namespace ls {
namespace simd {

template <int VB>
struct VT {  // vector types of VB bytes (VB = 16 or 32)
  typedef float f32 __attribute__((vector_size(VB)));
  typedef int32_t i32 __attribute__((vector_size(VB)));
  typedef uint32_t u32 __attribute__((vector_size(VB)));
  typedef uint16_t u16 __attribute__((vector_size(VB / 2)));  // as many halves as floats
  typedef double f64 __attribute__((vector_size(VB)));
  typedef int64_t i64 __attribute__((vector_size(VB)));
};

// W lanes of the arithmetic type V from float, half or double storage.
template <int VB>
inline __attribute__((always_inline)) typename VT<VB>::f32 loadf(const float* p) {
  typename VT<VB>::f32 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// float lanes from as many float16 bit patterns (exact; the scalar
// half_to_float of common/dtype.h, lane-wise)
template <int VB>
inline __attribute__((always_inline)) typename VT<VB>::f32 cvt_half(typename VT<VB>::u16 h16) {
  using T = VT<VB>;
  const typename T::u32 h = __builtin_convertvector(h16, typename T::u32);
  const typename T::u32 sign = (h & 0x8000u) << 16;
  const typename T::u32 em = h & 0x7fffu;
  const typename T::u32 o_norm = (em << 13) + (112u << 23);
  const typename T::u32 o_inf = o_norm + (112u << 23);
  const typename T::f32 f_sub = __builtin_convertvector((typename T::i32)em, typename T::f32) * 5.9604644775390625e-08f;
  typename T::u32 o_sub;
  std::memcpy(&o_sub, &f_sub, sizeof o_sub);
  const typename T::u32 o = (em >= 0x7c00u) ? o_inf : ((em >= 0x0400u) ? o_norm : o_sub);
  const typename T::u32 bits = o | sign;
  typename T::f32 v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
template <int VB>
inline __attribute__((always_inline)) typename VT<VB>::f32 loadf(const half_t* p) {
  typename VT<VB>::u16 h16;
  std::memcpy(&h16, p, sizeof h16);
  return cvt_half<VB>(h16);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// 32-byte lanes exist only inside the AVX2/F16C clone of the row kernel
// (rows_range_avx2, flattened), where this F16C conversion gets inlined. Not
// always_inline: generic code may not inline an AVX function, only the clone.
template <>
inline __attribute__((target("avx2,f16c"))) VT<32>::f32 cvt_half<32>(VT<32>::u16 h16) {
  __m128i h;
  std::memcpy(&h, &h16, sizeof h);
  const __m256 f = _mm256_cvtph_ps(h);
  VT<32>::f32 v;
  std::memcpy(&v, &f, sizeof v);
  return v;
}
template <>
inline __attribute__((target("avx2,f16c"))) VT<32>::f32 loadf<32>(const half_t* p) {
  VT<32>::u16 h16;
  std::memcpy(&h16, p, sizeof h16);
  return cvt_half<32>(h16);
}
#endif

template <class S, int VB>
struct Lanes {  // float and half storage: V = float
  static constexpr int W = VB / 4;
  using VV = typename VT<VB>::f32;
  using IV = typename VT<VB>::i32;
  static VV load(const S* p) { return loadf<VB>(p); }
  static VV loadc(const float* p) { return loadf<VB>(p); }
  static VV splat(float x) { return VV{} + x; }
  static IV iota() {
    IV v{};
    for (int j = 0; j < W; ++j) v[j] = j;
    return v;
  }
};
template <int VB>
struct Lanes<double, VB> {
  static constexpr int W = VB / 8;
  using VV = typename VT<VB>::f64;
  using IV = typename VT<VB>::i64;
  static VV load(const double* p) {
    VV v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static VV loadc(const double* p) { return load(p); }
  static VV splat(double x) { return VV{} + x; }
  static IV iota() {
    IV v{};
    for (int j = 0; j < W; ++j) v[j] = j;
    return v;
  }
};

// Prefetch distance of the one-row sweep: 1 KB ahead (measured on a
// Sapphire Rapids VM, 400k x 1000 float32, 2 threads, AVX2 twin:
// compute_confident_joint 0.25 -> 0.155 s; 512 B was slower). A hint only:
// the values are the same. (An AVX-512 twin of this sweep was tried: with
// the prefetch it was slower than AVX2 -- the pass waits on memory.)
constexpr int PF_BYTES = 1024;

// One sweep over a contiguous row of K values with given label y (see
// RowOps::sweep_row_scalar for the definition). Cut compared in V. Two interleaved
// accumulator sets hide the latency of the loop-carried chains.
template <bool HAS_CUT, int VB, class S, class V, class Seg>
inline __attribute__((always_inline)) Seg sweep_row_contig_t(const S* row, int32_t K, int32_t y, const V* cut) {
  using Ln = Lanes<S, VB>;
  using VV = typename Ln::VV;
  using IV = typename Ln::IV;
  using IE = typename std::remove_reference<decltype(IV{}[0])>::type;
  constexpr int W = Ln::W;
  const VV ninf = Ln::splat(-INFINITY), pinf = Ln::splat(INFINITY), zero = Ln::splat(V(0));
  const IV yv = IV{} + IE(y);
  VV m0 = ninf, m1 = ninf, n0 = pinf, n1 = pinf, s0 = zero, s1 = zero;
  IV im0 = IV{} + IE(INT32_MAX), im1 = im0, c0 = IV{}, c1 = IV{}, ip0 = IV{} - IE(1), ip1 = ip0;
  IV idx0 = Ln::iota(), idx1 = idx0 + IE(W);
  int32_t k = 0;
  for (; k + 2 * W <= K; k += 2 * W) {
    __builtin_prefetch(reinterpret_cast<const char*>(row + k) + PF_BYTES);
    const VV v0 = Ln::load(row + k), v1 = Ln::load(row + k + W);
    // the given label takes no part in the max over the other classes
    const VV w0 = ((IV)(idx0 == yv) ? ninf : v0), w1 = ((IV)(idx1 == yv) ? ninf : v1);
    const IV u0 = (IV)(w0 > m0), u1 = (IV)(w1 > m1);
    m0 = (u0 ? w0 : m0);
    m1 = (u1 ? w1 : m1);
    im0 = (u0 ? idx0 : im0);
    im1 = (u1 ? idx1 : im1);
    n0 = ((IV)(v0 < n0) ? v0 : n0);
    n1 = ((IV)(v1 < n1) ? v1 : n1);
    if constexpr (HAS_CUT) {
      const VV t0 = Ln::loadc(cut + k), t1 = Ln::loadc(cut + k + W);
      const IV p0 = (IV)(v0 >= t0), p1 = (IV)(v1 >= t1);
      c0 -= p0;  // masks are -1 where true
      c1 -= p1;
      ip0 = (p0 ? idx0 : ip0);
      ip1 = (p1 ? idx1 : ip1);
    }
    s0 += v0;
    s1 += v1;
    idx0 += IE(2 * W);
    idx1 += IE(2 * W);
  }
  // Merge the two sets lane-wise (set 0 holds the lower index of each pair
  // of lanes, so ties keep it), then the W lanes: each holds the first index
  // of its own maximum, so the first index overall is the smallest among ties.
  const IV take1 = (IV)(m1 > m0) | ((IV)(m1 == m0) & (im1 < im0));
  m0 = (take1 ? m1 : m0);
  im0 = (take1 ? im1 : im0);
  n0 = ((IV)(n1 < n0) ? n1 : n0);
  s0 += s1;
  c0 += c1;
  ip0 = ((IV)(ip1 > ip0) ? ip1 : ip0);
  Seg g;
  g.vmax = m0[0];
  g.imax = int32_t(im0[0]);
  g.vmin = n0[0];
  g.sum = s0[0];
  g.n_above = int32_t(c0[0]);
  g.ipass = int32_t(ip0[0]);
  for (int j = 1; j < W; ++j) {
    const V mv = m0[j];
    const int32_t iv = int32_t(im0[j]);
    if (mv > g.vmax || (mv == g.vmax && iv < g.imax)) {
      g.vmax = mv;
      g.imax = iv;
    }
    g.vmin = n0[j] < g.vmin ? n0[j] : g.vmin;
    g.sum += s0[j];
    g.n_above += int32_t(c0[j]);
    g.ipass = int32_t(ip0[j]) > g.ipass ? int32_t(ip0[j]) : g.ipass;
  }
  // Tail: indices beyond every lane's, so strict > keeps the first maximum.
  for (; k < K; ++k) {
    const V v = Num<S>::load(row[k]);
    if (k != y && v > g.vmax) {
      g.vmax = v;
      g.imax = k;
    }
    g.vmin = v < g.vmin ? v : g.vmin;
    if (HAS_CUT && v >= cut[k]) {
      g.n_above += 1;
      g.ipass = k;
    }
    g.sum += v;
  }
  return g;
}

template <int VB, class S, class V, class Seg>
inline __attribute__((always_inline)) Seg sweep_row_contig(const S* row, int32_t K, int32_t y, const V* cut) {
  if (cut) return sweep_row_contig_t<true, VB, S, V, Seg>(row, K, y, cut);
  return sweep_row_contig_t<false, VB, S, V, Seg>(row, K, y, cut);
}

// W rows swept at once, one row per lane (for rows too short to fill the
// registers of the one-row sweep: K = 10 leaves most lanes of that sweep in
// its scalar tail and horizontal merge). Lane j reads row j, column by column
// in index order, so each lane computes exactly what the scalar definition
// (RowOps::sweep_row_scalar) computes for its row, its sum included.
template <int VB, class S>
inline __attribute__((always_inline)) typename Lanes<S, VB>::VV gather_col(const S* base, std::ptrdiff_t s0) {
  using Ln = Lanes<S, VB>;
  typename Ln::VV v;
  for (int j = 0; j < Ln::W; ++j) v[j] = base[std::ptrdiff_t(j) * s0];
  return v;
}
template <int VB>
inline __attribute__((always_inline)) typename Lanes<half_t, VB>::VV gather_col(const half_t* base, std::ptrdiff_t s0) {
  constexpr int W = Lanes<half_t, VB>::W;
  typename VT<VB>::u16 h;
  for (int j = 0; j < W; ++j) h[j] = base[std::ptrdiff_t(j) * s0].bits;
  return cvt_half<VB>(h);
}

template <bool HAS_CUT, int VB, class S, class V, class Seg>
inline __attribute__((always_inline)) void sweep_rows_lanes_t(const S* base, std::ptrdiff_t s0, std::ptrdiff_t s1,
                                                               int32_t K, const int64_t* y, const V* cut, Seg* out) {
  using Ln = Lanes<S, VB>;
  using VV = typename Ln::VV;
  using IV = typename Ln::IV;
  using IE = typename std::remove_reference<decltype(IV{}[0])>::type;
  constexpr int W = Ln::W;
  const VV ninf = Ln::splat(-INFINITY);
  VV m = ninf, n = Ln::splat(INFINITY), s = Ln::splat(V(0));
  IV im = IV{} + IE(INT32_MAX), c = IV{}, ip = IV{} - IE(1), yv;
  for (int j = 0; j < W; ++j) yv[j] = IE(y[j]);
  IV kv = IV{};
  for (int32_t k = 0; k < K; ++k) {
    const VV v = gather_col<VB>(base + std::ptrdiff_t(k) * s1, s0);
    // the given label takes no part in the max over the other classes
    const VV w = ((IV)(kv == yv) ? ninf : v);
    const IV u = (IV)(w > m);
    m = (u ? w : m);
    im = (u ? kv : im);
    n = ((IV)(v < n) ? v : n);
    if constexpr (HAS_CUT) {
      const IV p = (IV)(v >= Ln::splat(cut[k]));
      c -= p;  // masks are -1 where true
      ip = (p ? kv : ip);
    }
    s += v;
    kv += IE(1);
  }
  for (int j = 0; j < W; ++j) {
    out[j].vmax = m[j];
    out[j].vmin = n[j];
    out[j].sum = s[j];
    out[j].imax = int32_t(im[j]);
    out[j].n_above = int32_t(c[j]);
    out[j].ipass = int32_t(ip[j]);
  }
}

// The rows [i, i + W) of a block swept in lanes; cut compared in V.
template <int VB, class S, class V, class Seg>
inline __attribute__((always_inline)) void sweep_rows_lanes(const S* base, std::ptrdiff_t s0, std::ptrdiff_t s1,
                                                             int32_t K, const int64_t* y, const V* cut, Seg* out) {
  if (cut)
    sweep_rows_lanes_t<true, VB, S, V, Seg>(base, s0, s1, K, y, cut, out);
  else
    sweep_rows_lanes_t<false, VB, S, V, Seg>(base, s0, s1, K, y, cut, out);
}

// The host's sweep policy of RowOps::row: the SIMD sweep for contiguous rows
// compared in the input's arithmetic type, the scalar definition otherwise.
struct SimdSweep {
  template <class Ops, class C, int VB, class S>
  static typename Ops::Seg run(const S* row, std::ptrdiff_t stride, int32_t K, int32_t y, const C* cut) {
    using V = typename Num<S>::V;
    if constexpr (std::is_same<C, V>::value) {
      if (stride == 1) return sweep_row_contig<VB, S, V, typename Ops::Seg>(row, K, y, cut);
    }
    return Ops::sweep_row_scalar(row, stride, K, y, cut);
  }
};

}  // namespace simd
}  // namespace ls
#endif
