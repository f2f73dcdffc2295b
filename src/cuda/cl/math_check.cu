// Not a kernel and never called: this translation unit exists so that nvcc
// compiles the shared row math (cl/row_math.h and, through it, common/) for
// the device in every build, and a host-only construct creeping into those
// headers breaks the build here instead of in the GPU work that uses them.
#include "cl/row_math.h"

namespace ls {
namespace device_check {

template <class S>
__device__ void row_math(const S* row, int64_t K, int64_t y, const double* cut, const double* t, Bounds bd,
                         double* out) {
  using V = typename Num<S>::V;
  const RowResult r = RowOps<S>::template row<double>(row, 1, K, y, cut, bd);
  double sc = 0.0, mo = 0.0;
  RowOps<S>::template adjusted<double>(row, 1, K, y, t, 1.0, sc, mo);
  RowOps<S>::template adjusted<V>(row, 1, K, y, t, 1.0, sc, mo);
  auto get = [&](std::ptrdiff_t k) { return Num<S>::load(row[k]); };
  out[0] = r.max_other + RowOps<S>::xlogx_row_sum(row, 1, K) + sc + mo + margin<S>(row, 1, 0, y) +
           Mean<S>::run(get, K);
}

template __device__ void row_math<float>(const float*, int64_t, int64_t, const double*, const double*, Bounds,
                                         double*);
template __device__ void row_math<double>(const double*, int64_t, int64_t, const double*, const double*, Bounds,
                                          double*);
template __device__ void row_math<half_t>(const half_t*, int64_t, int64_t, const double*, const double*, Bounds,
                                          double*);

}  // namespace device_check
}  // namespace ls
