// Not a kernel and never called: makes nvcc compile the shared Sinkhorn row
// math (sinkhorn/row_math.h) for the device in every build, as
// cl/math_check.cu does for confident learning.
#include "sinkhorn/row_math.h"

namespace ls {
namespace device_check {

template <class S>
__device__ void sinkhorn_math(const S* row, int64_t K, double lam, const double* f, double* T, double* E,
                              double* acc, double* cmax, float* plan, double* out) {
  const sk::RowOut o = sk::row_stats(row, 1, K, lam, f, T, E);
  sk::row_accumulate(T, E, K, 1.0 / o.s, -o.m, acc, cmax, plan, 1.0);
  double M = -INFINITY, s = 0.0;
  sk::lse_push(T[0], M, s);
  sk::lse_merge(o.m, o.s, M, s);
  out[0] = sk::sk_exp(-o.m) + sk::sk_exp_f(-o.m) + M + s;
}

template __device__ void sinkhorn_math<float>(const float*, int64_t, double, const double*, double*, double*,
                                              double*, double*, float*, double*);
template __device__ void sinkhorn_math<double>(const double*, int64_t, double, const double*, double*, double*,
                                               double*, double*, float*, double*);
template __device__ void sinkhorn_math<half_t>(const half_t*, int64_t, double, const double*, double*, double*,
                                               double*, double*, float*, double*);

}  // namespace device_check
}  // namespace ls
