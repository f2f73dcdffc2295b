#include <omp.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "common/parallel.h"
#include "common/summation.h"
#include "multilabel/kernels.h"
#include "multilabel/row_math.h"

namespace ls {
namespace ml {

namespace {

// Thread t of T owns classes [K t / T, K (t + 1) / T).
inline int class_threads(int nthreads, const Mat& P) {
  const int T = threads_for(nthreads, double(P.n) * double(P.k));
  return int(std::max<int64_t>(1, std::min<int64_t>(T, P.k)));
}

// Rows per tile of the sweeps (their labels and values stay in L1/L2 while the class chunks go over them).
constexpr int64_t kTileRows = 256;

// lab[i * (c1 - c0) + (c - c0)] = 1 where class c in [c0, c1) is a label of row r0 + i (i < m), else 0.
inline void tile_labels(const Csr& y, int64_t r0, int64_t m, int64_t c0, int64_t c1, uint8_t* lab) {
  const int64_t kc = c1 - c0;
  std::fill(lab, lab + m * kc, uint8_t(0));
  for (int64_t i = 0; i < m; ++i) {
    const int32_t* lo = y.indices + y.indptr[r0 + i];
    const int32_t* hi = y.indices + y.indptr[r0 + i + 1];
    for (const int32_t* j = std::lower_bound(lo, hi, int32_t(c0)); j < hi && *j < c1; ++j)
      lab[size_t(i * kc + (*j - c0))] = 1;
  }
}

inline void store_flag(uint8_t* m, int64_t i) { __atomic_store_n(m + i, uint8_t(1), __ATOMIC_RELAXED); }

void leaf_sizes(int64_t n, std::vector<uint8_t>& out) {
  if (n <= 128) {
    out.push_back(uint8_t(n));
    return;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  leaf_sizes(n2, out);
  leaf_sizes(n - n2, out);
}

template <class V>
V combine(int64_t n, const std::vector<double>& sums, size_t& idx) {
  if (n <= 128) return V(sums[idx++]);
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  const V a = combine<V>(n2, sums, idx);
  const V b = combine<V>(n - n2, sums, idx);
  return a + b;
}

// NumPy's np.mean of a stream of n values whose length is known: the
// pairwise tree's leaves (<= 128 values) are summed as they fill, the tree is
// combined at the end of each cast buffer (float16: 8192 values, buffers
// added in order; else one buffer of n).
struct Stream {
  int64_t n = 0, seg_len = 0, left = 0, seg_n = 0;
  std::vector<uint8_t> leaves;
  size_t leaf = 0;
  int nbuf = 0;
  double buf[128];
  std::vector<double> sums;
  double acc = 0.0;  // float16: float accumulator; else the total

  void start_segment() {
    seg_n = std::min(seg_len, left);
    leaves.clear();
    sums.clear();
    leaf = 0;
    if (seg_n > 0) leaf_sizes(seg_n, leaves);
  }
};

template <class S>
struct StreamOps {
  using V = typename Num<S>::V;
  static constexpr bool kHalf = std::is_same<S, half_t>::value;
  // one leaf full: its pairwise sum kept; the segment combined when all are
  static void leaf_done(Stream& st) {
    auto get = [&](std::ptrdiff_t i) { return V(st.buf[i]); };
    if (st.nbuf > 128) __builtin_unreachable();  // (a leaf; tells -Warray-bounds too)
    st.sums.push_back(double(pairwise_sum<V>(get, 0, st.nbuf)));
    st.nbuf = 0;
    if (++st.leaf < st.leaves.size()) return;
    size_t idx = 0;
    const V seg = combine<V>(st.seg_n, st.sums, idx);
    st.acc = kHalf ? double(float(st.acc) + float(seg)) : double(seg);
    st.left -= st.seg_n;
    st.start_segment();
  }
  static void push(Stream& st, V v) {
    st.buf[st.nbuf++] = double(v);
    if (st.nbuf == int(st.leaves[st.leaf])) leaf_done(st);
  }
  // the same as n calls of push, a leaf's worth at a time
  static void push_many(Stream& st, const V* v, int64_t n) {
    while (n > 0) {
      const int take = int(std::min<int64_t>(int64_t(st.leaves[st.leaf]) - st.nbuf, n));
      if (take <= 0 || take > 128 - st.nbuf) __builtin_unreachable();  // (a leaf holds <= 128 values)
      double* b = st.buf + st.nbuf;
      for (int j = 0; j < take; ++j) b[j] = double(v[j]);
      st.nbuf += take;
      v += take;
      n -= take;
      if (st.nbuf == int(st.leaves[st.leaf])) leaf_done(st);
    }
  }
  static double mean(const Stream& st) {
    if (st.n == 0) return std::numeric_limits<double>::quiet_NaN();
    if (kHalf) {
      const float m = float(st.acc) / float(st.n);
      return double(half_to_float(float_to_half(m)));
    }
    return double(V(V(st.acc) / V(st.n)));
  }
};

}  // namespace

struct ClassSideMeans::Impl {
  int64_t K;
  int dtype;
  std::vector<Stream> st;  // c * 2 + side
};

ClassSideMeans::ClassSideMeans(int64_t K, std::vector<int64_t> n1, int64_t n_total, int dtype)
    : impl_(new Impl{K, dtype, std::vector<Stream>(size_t(2 * K))}) {
  for (int64_t c = 0; c < K; ++c)
    for (int s = 0; s < 2; ++s) {
      Stream& x = impl_->st[size_t(2 * c + s)];
      x.n = x.left = s ? n1[size_t(c)] : n_total - n1[size_t(c)];
      x.seg_len = dtype == F16 ? 8192 : std::max<int64_t>(x.n, 1);
      x.start_segment();
    }
}
ClassSideMeans::~ClassSideMeans() { delete impl_; }

// Row tiles of kTileRows rows, classes in chunks of kStageClasses: the tile's
// 1 - p of every (row, class) is staged per class in row order (a transpose,
// no branch, no counter); then each class's side-0 stream gets the staged
// values between its labelled rows, a leaf at a time, and its side-1 stream
// the labelled rows' p, in row order.
constexpr int64_t kStageClasses = 64;
// a staged class's length in values, padded by a cache line so that the
// kStageClasses buffers written in turn do not share L1 sets
constexpr int64_t kStageStride = kTileRows + 16;

void ClassSideMeans::feed(const Mat& P, const Csr& y, int nthreads) {
  require_host(P);
  if (P.k != impl_->K) throw std::invalid_argument("ClassSideMeans: wrong number of columns");
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    using V = typename Num<S>::V;
    const S* base = static_cast<const S*>(P.data);
    const int T = class_threads(nthreads, P);
    Stream* st = impl_->st.data();
#pragma omp parallel for schedule(static, 1) num_threads(T) if (T > 1)
    for (int t = 0; t < T; ++t) {
      const int64_t c0 = P.k * t / T, c1 = P.k * (t + 1) / T, kc = c1 - c0;
      std::vector<V> stage(size_t(kStageClasses * kStageStride));  // [class][row]
      std::vector<int64_t> lstart(static_cast<size_t>(kc + 1)), lfill(static_cast<size_t>(kc));
      std::vector<int32_t> lrow;  // the tile's labelled rows of each class, ascending
      for (int64_t r0 = 0; r0 < P.n; r0 += kTileRows) {
        const int64_t m = std::min(kTileRows, P.n - r0);
        // counting sort of the tile's (row, class) labels by class (rows stay ascending)
        std::fill(lstart.begin(), lstart.end(), int64_t(0));
        for (int64_t i = 0; i < m; ++i)
          for (int64_t q = y.indptr[r0 + i]; q < y.indptr[r0 + i + 1]; ++q)
            if (y.indices[q] >= c0 && y.indices[q] < c1) ++lstart[size_t(y.indices[q] - c0 + 1)];
        for (int64_t c = 0; c < kc; ++c) lstart[size_t(c + 1)] += lstart[size_t(c)];
        lrow.resize(size_t(lstart[size_t(kc)]));
        std::copy(lstart.begin(), lstart.end() - 1, lfill.begin());
        for (int64_t i = 0; i < m; ++i)
          for (int64_t q = y.indptr[r0 + i]; q < y.indptr[r0 + i + 1]; ++q)
            if (y.indices[q] >= c0 && y.indices[q] < c1) lrow[size_t(lfill[size_t(y.indices[q] - c0)]++)] = int32_t(i);
        for (int64_t a = c0; a < c1; a += kStageClasses) {
          const int64_t w = std::min(c1, a + kStageClasses) - a;
          for (int64_t i = 0; i < m; ++i) {
            const S* row = base + (r0 + i) * P.s0 + a * P.s1;
            for (int64_t c = 0; c < w; ++c) stage[size_t(c * kStageStride + i)] = Bin<S>(row[c * P.s1]).q;
          }
          for (int64_t c = 0; c < w; ++c) {
            const V* s0 = stage.data() + c * kStageStride;
            const int64_t g = a - c0 + c;
            int64_t prev = 0;
            for (int64_t e = lstart[size_t(g)]; e < lstart[size_t(g + 1)]; ++e) {
              const int64_t r = lrow[size_t(e)];
              StreamOps<S>::push_many(st[2 * (a + c)], s0 + prev, r - prev);
              StreamOps<S>::push(st[2 * (a + c) + 1], Bin<S>(base[(r0 + r) * P.s0 + (a + c) * P.s1]).p);
              prev = r + 1;
            }
            StreamOps<S>::push_many(st[2 * (a + c)], s0 + prev, m - prev);
          }
        }
      }
    }
  });
}

std::vector<double> ClassSideMeans::finish() {
  std::vector<double> out(impl_->st.size());
  dispatch(impl_->dtype, [&](auto tag) {
    using S = decltype(tag);
    for (size_t g = 0; g < out.size(); ++g) {
      const Stream& x = impl_->st[g];
      if (x.left != 0) throw std::runtime_error("ClassSideMeans: fewer values fed than counted");
      out[g] = StreamOps<S>::mean(x);
    }
  });
  return out;
}

// The smallest value of V (float) whose double is >= c: double(x) >= c <=> x >= ceil_v(c) for
// every x of type V (c finite or infinite; NaN: nothing passes).
template <class V>
inline V ceil_v(double c) {
  if (c != c) return std::numeric_limits<V>::quiet_NaN();
  V f = V(c);
  if (double(f) < c) f = std::nextafter(f, std::numeric_limits<V>::infinity());
  return f;
}

// Row tiles of kTileRows rows; inside a tile, classes in chunks of
// kChunkClasses (each chunk's counters and histogram rows stay in cache while
// the tile's rows are read again from L2). Per row and chunk, one loop over
// the classes computes each element's code (binary label, confident guess or
// none) and prune-key bucket with selects only, so it vectorises; the flags
// are or-ed per row; counts are added per code with vector compares; only the
// histogram increments are scalar. Code counters are uint32 per tile, the
// histograms uint16 per thread (half the cache lines of uint32: 11% faster),
// added into the int64 outputs every 255 tiles and at the end.
constexpr int64_t kChunkClasses = 64;

void joint_sweep(const Mat& P, const Csr& y, const double* cut0, const double* cut1, int64_t* cj,
                 uint8_t* cl_mask, uint8_t* neq_mask, int key_method, int64_t* hist, int nthreads) {
  require_host(P);
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    using V = typename Num<S>::V;
    const S* base = static_cast<const S*>(P.data);
    const int T = class_threads(nthreads, P);
    const bool do_cl = cl_mask && cut0;
    const bool do_nq = neq_mask != nullptr;
    const bool do_cut = cut0 != nullptr;
#pragma omp parallel for schedule(static, 1) num_threads(T) if (T > 1)
    for (int t = 0; t < T; ++t) {
      const int64_t c0 = P.k * t / T, c1 = P.k * (t + 1) / T, kc = c1 - c0;
      std::vector<V> ct0(size_t(kc), V(0)), ct1(size_t(kc), V(0));
      if (do_cut)
        for (int64_t c = 0; c < kc; ++c) {
          ct0[size_t(c)] = ceil_v<V>(cut0[c0 + c]);
          ct1[size_t(c)] = ceil_v<V>(cut1[c0 + c]);
        }
      std::vector<int64_t> cnt(size_t(kc) * 4, 0);    // class-major: cnt[c * 4 + code]
      std::vector<uint32_t> cnt32(size_t(kc) * 4, 0);  // code-major per tile: cnt32[code * kc + c]
      std::vector<uint16_t> h32(hist ? size_t(kc) * 2 * kBuckets : 0, 0);
      std::vector<uint8_t> lab(size_t(kTileRows * kc));
      std::vector<uint8_t> code(static_cast<size_t>(kChunkClasses));
      std::vector<int32_t> bk(static_cast<size_t>(kChunkClasses));
      uint8_t fcl[kTileRows], fnq[kTileRows];
      auto flush_hist = [&] {
        for (size_t q = 0; q < h32.size(); ++q) hist[c0 * 2 * kBuckets + int64_t(q)] += h32[q];
        std::fill(h32.begin(), h32.end(), uint16_t(0));
      };
      for (int64_t r0 = 0; r0 < P.n; r0 += kTileRows) {
        const int64_t m = std::min(kTileRows, P.n - r0);
        if (hist && r0 > 0 && r0 % (255 * kTileRows) == 0) flush_hist();  // (uint16 counters)
        tile_labels(y, r0, m, c0, c1, lab.data());
        std::fill(fcl, fcl + m, uint8_t(0));
        std::fill(fnq, fnq + m, uint8_t(0));
        for (int64_t a = c0; a < c1; a += kChunkClasses) {
          const int64_t e = std::min(c1, a + kChunkClasses), w = e - a;
          const V* t0 = ct0.data() + (a - c0);
          const V* t1 = ct1.data() + (a - c0);
          for (int64_t i = 0; i < m; ++i) {
            const S* row = base + (r0 + i) * P.s0 + a * P.s1;
            const uint8_t* li = lab.data() + i * kc + (a - c0);
            uint8_t* cd = code.data();
            int32_t* bb = bk.data();
            int f_cl = 0, f_nq = 0;
            // every operation is done on every lane and the results selected (Bin::keep and
            // Bin::key select, not branch), so both loops if-convert and vectorise
            auto elems = [&](auto stride) {
              for (int64_t c = 0; c < w; ++c) {
                const Bin<S> v(row[c * stride]);
                const int l = li[c];
                const int kp = int(v.keep(l));
                const int gt = int(v.p > v.q);
                const int a0 = int(v.q >= t0[c]), a1 = int(v.p >= t1[c]);  // Bin::guess, cuts as V (ceil_v)
                const int g = a1 & ((a0 ^ 1) | gt);
                const int valid = a0 | a1;
                cd[c] = uint8_t((l * 2 + g) | ((valid ^ 1) << 2));
                f_cl |= valid & int(g != l) & (kp ^ 1);
                f_nq |= int(gt != l) & (kp ^ 1);
              }
              // the prune keys' buckets; a loop of its own: GCC vectorises neither loop when they are one
              if (!hist) return;
              for (int64_t c = 0; c < w; ++c) bb[c] = int32_t(bucket(Bin<S>(row[c * stride]).key_v(key_method, li[c])));
            };
            if (P.s1 == 1)
              elems(std::integral_constant<int64_t, 1>{});
            else
              elems(P.s1);
            if (do_cut) {
              uint32_t* cc = cnt32.data() + (a - c0);
              for (int j = 0; j < 4; ++j) {
                uint32_t* cj4 = cc + j * kc;
                for (int64_t c = 0; c < w; ++c) cj4[c] += uint32_t(cd[c] == j);
              }
            }
            if (hist) {
              uint16_t* hh = h32.data() + (a - c0) * 2 * kBuckets;
              for (int64_t c = 0; c < w; ++c) ++hh[(c * 2 + li[c]) * kBuckets + bb[c]];
            }
            fcl[i] |= uint8_t(do_cut ? f_cl : 0);
            fnq[i] |= uint8_t(f_nq);
          }
        }
        for (int64_t i = 0; i < m; ++i) {
          if (do_cl && fcl[i]) store_flag(cl_mask, r0 + i);
          if (do_nq && fnq[i]) store_flag(neq_mask, r0 + i);
        }
        if (do_cut) {
          for (int64_t c = 0; c < kc; ++c)
            for (int j = 0; j < 4; ++j) cnt[size_t(c * 4 + j)] += cnt32[size_t(j * kc + c)];
          std::fill(cnt32.begin(), cnt32.end(), 0u);
        }
      }
      if (do_cut)
        for (int64_t c = c0; c < c1; ++c)
          for (int j = 0; j < 4; ++j) cj[c * 4 + j] += cnt[size_t((c - c0) * 4 + j)];
      if (hist) flush_hist();
    }
  });
}

void select_sweep(const Mat& P, const Csr& y, int64_t row0, int key_method, const int32_t* cutb, uint8_t* mask,
                  int64_t* flagged, Candidates& out, int nthreads) {
  require_host(P);
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    const S* base = static_cast<const S*>(P.data);
    const int T = class_threads(nthreads, P);
    std::vector<Candidates> local(static_cast<size_t>(T));
#pragma omp parallel for schedule(static, 1) num_threads(T) if (T > 1)
    for (int t = 0; t < T; ++t) {
      const int64_t c0 = P.k * t / T, c1 = P.k * (t + 1) / T;
      bool any = false;
      for (int64_t g = 2 * c0; g < 2 * c1; ++g) any = any || cutb[g] >= 0;
      if (!any) continue;
      Candidates& mine = local[size_t(t)];
      const int64_t kc = c1 - c0;
      // per class and side the cut bucket, INT32_MAX where nothing is selected (no bucket reaches it)
      std::vector<int32_t> cb0(static_cast<size_t>(kc)), cb1(static_cast<size_t>(kc));
      for (int64_t c = 0; c < kc; ++c) {
        cb0[size_t(c)] = cutb[2 * (c0 + c)] < 0 ? INT32_MAX : cutb[2 * (c0 + c)];
        cb1[size_t(c)] = cutb[2 * (c0 + c) + 1] < 0 ? INT32_MAX : cutb[2 * (c0 + c) + 1];
      }
      std::vector<uint8_t> lab(size_t(kTileRows * kc));
      std::vector<int32_t> bk(static_cast<size_t>(kChunkClasses));
      for (int64_t r0 = 0; r0 < P.n; r0 += kTileRows) {
        const int64_t m = std::min(kTileRows, P.n - r0);
        tile_labels(y, r0, m, c0, c1, lab.data());
        for (int64_t a = c0; a < c1; a += kChunkClasses) {
          const int64_t w = std::min(c1, a + kChunkClasses) - a;
          const int32_t* z0 = cb0.data() + (a - c0);
          const int32_t* z1 = cb1.data() + (a - c0);
          for (int64_t i = 0; i < m; ++i) {
            const S* row = base + (r0 + i) * P.s0 + a * P.s1;
            const uint8_t* li = lab.data() + i * kc + (a - c0);
            int32_t* bb = bk.data();
            // the buckets, and whether any reaches its cut, in a loop that vectorises (as the joint sweep's)
            int hit = 0;
            auto elems = [&](auto stride) {
              for (int64_t c = 0; c < w; ++c) {
                const int l = li[c];
                const int32_t b = int32_t(bucket(Bin<S>(row[c * stride]).key_v(key_method, l)));
                bb[c] = b;
                const int32_t u0 = z0[c], u1 = z1[c];  // both loaded: a conditional load would not vectorise
                hit |= int(b >= (l ? u1 : u0));
              }
            };
            if (P.s1 == 1)
              elems(std::integral_constant<int64_t, 1>{});
            else
              elems(P.s1);
            if (!hit) continue;
            for (int64_t c = 0; c < w; ++c) {
              const int l = li[c];
              const int32_t cut = l ? z1[c] : z0[c];
              if (bb[c] < cut) continue;
              const int64_t g = (a + c) * 2 + l;
              const Bin<S> v(row[c * P.s1]);
              if (bb[c] > cut) {
                if (!v.keep(l)) {
                  store_flag(mask, r0 + i);
                  ++flagged[g];
                }
              } else {
                mine.group.push_back(int32_t(g));
                mine.row.push_back(row0 + r0 + i);
                mine.key.push_back(v.key(key_method, l));
                mine.keep.push_back(uint8_t(v.keep(l)));
              }
            }
          }
        }
      }
    }
    for (auto& m : local) {
      out.group.insert(out.group.end(), m.group.begin(), m.group.end());
      out.row.insert(out.row.end(), m.row.begin(), m.row.end());
      out.key.insert(out.key.end(), m.key.begin(), m.key.end());
      out.keep.insert(out.keep.end(), m.keep.begin(), m.keep.end());
    }
  });
}

}  // namespace ml
}  // namespace ls
