#include "cl/kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "cl/row_math.h"
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

void sketch_rows(const Mat& P, const int64_t* labels, int64_t mmin, int64_t cap, const double* floor, double tau,
                 int32_t* cls, void* vals, int32_t* count, void* rest, uint8_t* certified, void* given, int nthreads) {
  require_host(P);
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    using V = typename Num<S>::V;
    const S* base = static_cast<const S*>(P.data);
    S* vout = static_cast<S*>(vals);
    S* rout = static_cast<S*>(rest);
    S* gout = static_cast<S*>(given);
    const int64_t K = P.k, mm = std::min(mmin, K), cp = std::min(cap, K);
    const int T = threads_for(nthreads, 3.0 * double(P.n) * double(K));
#pragma omp parallel num_threads(T) if (T > 1)
    {
      std::vector<V> bv(mm + 1);
      std::vector<int32_t> bc(mm + 1);
      std::vector<int32_t> cand;  // kept classes (top-mmin, then the wanted ones)
      cand.reserve(size_t(K));
      std::vector<uint8_t> mark(size_t(K), 0);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < P.n; ++i) {
        const S* row = base + i * P.s0;
        const int64_t y = labels[i];
        gout[i] = row[y * P.s1];
        const double g = double(Num<S>::load(gout[i]));
        // 1. the stable top-mmin (ties: lower class first) and the wanted classes
        int64_t size = 0;
        cand.clear();
        for (int64_t k = 0; k < K; ++k) {
          const V v = Num<S>::load(row[k * P.s1]);
          if (k != y && sketch_wanted(double(v), floor ? floor[k] : double(INFINITY), g, tau)) {
            cand.push_back(int32_t(k));
            mark[size_t(k)] = 1;
          }
          if (size == mm && !(v > bv[size - 1])) continue;
          int64_t pos = size < mm ? size++ : mm - 1;
          while (pos > 0 && v > bv[pos - 1]) {
            bv[pos] = bv[pos - 1];
            bc[pos] = bc[pos - 1];
            --pos;
          }
          bv[pos] = v;
          bc[pos] = int32_t(k);
        }
        for (int64_t t = 0; t < size; ++t) {
          if (!mark[size_t(bc[t])]) {
            mark[size_t(bc[t])] = 1;
            cand.push_back(bc[t]);
          }
        }
        // 2. in (value desc, class asc) order, at most cap of them
        auto before = [&](int32_t a, int32_t b) {
          const V va = Num<S>::load(row[int64_t(a) * P.s1]), vb = Num<S>::load(row[int64_t(b) * P.s1]);
          return va > vb || (va == vb && a < b);
        };
        int64_t nk = int64_t(cand.size());
        if (nk > cp) {
          std::nth_element(cand.begin(), cand.begin() + cp, cand.end(), before);
          for (int64_t t = cp; t < nk; ++t) mark[size_t(cand[size_t(t)])] = 0;
          nk = cp;
          cand.resize(size_t(cp));
        }
        std::sort(cand.begin(), cand.end(), before);
        // 3. the largest value left out (the given label aside), and whether
        //    every left-out class is proven below its floor
        bool have = false, cert = true;
        V left = V(-INFINITY);
        S left_s{};
        for (int64_t k = 0; k < K; ++k) {
          if (k == y || mark[size_t(k)]) continue;
          const S raw = row[k * P.s1];
          const V v = Num<S>::load(raw);
          if (!(floor && double(v) < floor[k])) cert = false;
          if (!have || v > left) {
            left = v;
            left_s = raw;
            have = true;
          }
        }
        for (int64_t t = 0; t < nk; ++t) {
          const int32_t c = cand[size_t(t)];
          mark[size_t(c)] = 0;
          cls[i * cp + t] = c;
          vout[i * cp + t] = row[int64_t(c) * P.s1];
        }
        count[i] = int32_t(nk);
        certified[i] = cert ? 1 : 0;
        rout[i] = have ? left_s : neg_inf<S>();
      }
    }
  });
}

}  // namespace ls
