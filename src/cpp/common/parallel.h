// OpenMP helpers of the host kernels.
#pragma once

#include <omp.h>

namespace ls {

inline int threads_or_default(int nthreads) { return nthreads > 0 ? nthreads : omp_get_max_threads(); }

// The thread policy of every kernel: `work` estimates its cost in element
// visits of the row sweep (~0.3 ns each); below kMinParallelWork the kernel
// runs on the calling thread (the regions' if-clause is false, so no other
// thread is woken or waited for). There a second thread saves less than
// waking it costs, and on a busy machine a parallel region can wait
// milliseconds for a descheduled thread (bench/bench_small_calls.py).
// Results never depend on the thread count: this is a speed choice only.
constexpr double kMinParallelWork = double(1 << 18);
inline int threads_for(int nthreads, double work) {
  return work < kMinParallelWork ? 1 : threads_or_default(nthreads);
}

}  // namespace ls
