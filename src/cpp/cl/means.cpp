#include "cl/kernels.h"

#include <omp.h>

#include <limits>
#include <vector>

#include "cl/buckets.h"
#include "common/parallel.h"
#include "common/summation.h"

namespace ls {

void gather_given(const Mat& P, const int64_t* labels, void* out, int nthreads) {
  require_host(P);
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    const S* base = static_cast<const S*>(P.data);
    S* o = static_cast<S*>(out);
    const int T = threads_for(nthreads, 16.0 * double(P.n));  // one scattered read a row
#pragma omp parallel for schedule(static) num_threads(T) if (T > 1)
    for (int64_t i = 0; i < P.n; ++i) o[i] = base[i * P.s0 + labels[i] * P.s1];
  });
}

void class_means(int dtype, const void* g, const int64_t* labels, int64_t n, int64_t K, double* means,
                 int64_t* counts, int nthreads) {
  std::vector<int64_t> off, order;
  bucket_by_class(labels, n, K, off, order);
  dispatch(dtype, [&](auto tag) {
    using S = decltype(tag);
    using N_ = Num<S>;
    const S* v = static_cast<const S*>(g);
    const int T = threads_for(nthreads, 4.0 * double(n));
#pragma omp parallel for schedule(dynamic, 1) num_threads(T) if (T > 1)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t a = off[k], m = off[k + 1] - off[k];
      counts[k] = m;
      if (m == 0) {
        means[k] = std::numeric_limits<double>::quiet_NaN();
        continue;
      }
      auto get = [&](std::ptrdiff_t i) { return N_::load(v[order[a + i]]); };
      means[k] = Mean<S>::run(get, m);
    }
  });
}

}  // namespace ls
