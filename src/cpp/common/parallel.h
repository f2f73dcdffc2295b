// OpenMP helpers of the host kernels.
#pragma once

#include <omp.h>

namespace ls {

inline int threads_or_default(int nthreads) { return nthreads > 0 ? nthreads : omp_get_max_threads(); }

}  // namespace ls
