#include "cl/kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "common/parallel.h"

namespace ls {

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
        if (have_left) {
          rout[i] = left_s;
        } else if constexpr (std::is_same_v<S, half_t>) {
          rout[i] = half_t{0xfc00};  // -inf
        } else {
          rout[i] = S(-INFINITY);
        }
      }
    }
  });
}

}  // namespace ls
