#include "cl/kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

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
  std::vector<uint8_t> mark(size_t(K), 0);
  std::vector<double> fl(static_cast<size_t>(K), double(INFINITY));  // no floors: none is ever reached
  if (floor) std::copy(floor, floor + K, fl.begin());
  std::vector<V> v(static_cast<size_t>(K));
  const double* flp = fl.data();
  uint8_t* mk = mark.data();
  V* vp = v.data();
  for (int64_t i = i0; i < i1; ++i) {
    const S* row = base + i * P.s0;
    const int64_t y = labels[i];
    gout[i] = row[y * s1];
    const double g = double(Num<S>::load(gout[i]));
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

  // (m, id) into column j when it beats the worst slot's key
  void offer(int64_t j, V m, int64_t id) const {
    int64_t s = slots - 1;
    const V wv = cv[s * K + j];
    const I wid = ci[s * K + j];
    if (!(m > wv || (m == wv && (wid < 0 || id < int64_t(wid))))) return;
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

// The rows of classes k with k % nt == t (one thread's share) into the table.
template <class S, class V, class I>
void pair_rows(const Mat& P, const int64_t* labels, int64_t row0, int64_t slots, V* vp, I* idp, V* lowp, const S* rs,
               const int64_t* ptr, const int32_t* cls, int t, int nt) {
  const S* base = static_cast<const S*>(P.data);
  const int64_t K = P.k;
  const bool skip = lowp != nullptr && rs != nullptr && ptr != nullptr && cls != nullptr;
  for (int64_t i = 0; i < P.n; ++i) {
    const int64_t k = labels[i];
    if (k % nt != t) continue;
    const ClassSlots<V, I> cs{vp + k * slots * K, idp + k * slots * K, K, slots};
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
    cs.scan(row, P.s1, k, g, row0 + i);
    if (lowp != nullptr) lowp[k] = cs.lowest(k);
  }
}

#ifdef LS_HAVE_AVX2_F16C_TWINS
template <class S, class V, class I>
__attribute__((target("avx2,f16c"), flatten)) void pair_rows_avx2(const Mat& P, const int64_t* labels, int64_t row0,
                                                                  int64_t slots, V* vp, I* idp, V* lowp, const S* rs,
                                                                  const int64_t* ptr, const int32_t* cls, int t,
                                                                  int nt) {
  pair_rows<S, V, I>(P, labels, row0, slots, vp, idp, lowp, rs, ptr, cls, t, nt);
}
#endif
}  // namespace

void pair_top_update(const Mat& P, const int64_t* labels, int64_t row0, int64_t slots, void* vals, void* ids,
                     bool wide_ids, void* low, const void* rest, const int64_t* ptr, const int32_t* cls,
                     int nthreads) {
  require_host(P);
  if (slots < 1) return;
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    using V = typename Num<S>::V;
    const S* rs = static_cast<const S*>(rest);
    V* lowp = static_cast<V*>(low);
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
      fn(P, labels, row0, slots, vp, idp, lowp, rs, ptr, cls, omp_get_thread_num(), omp_get_num_threads());
    };
    if (wide_ids) {
      run(static_cast<int64_t*>(ids));
    } else {
      run(static_cast<int32_t*>(ids));
    }
  });
}

}  // namespace ls
