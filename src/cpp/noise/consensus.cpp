// CPU kernels of HOC's consensus counting, SimiFeat's vote and the in-sample
// neighbour filter (kernels.h).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/parallel.h"
#include "noise/kernels.h"
#include "noise/vote_math.h"

namespace ls {
namespace nz {

namespace {
// Per-thread K*K histograms only while they stay small; above this the
// second-order histogram is added on one thread.
constexpr int64_t kMaxThreadHist = int64_t(1) << 22;

template <class F>
int64_t first_bad(int64_t m, F bad) {
  for (int64_t r = 0; r < m; ++r)
    if (bad(r)) return r;
  return -1;
}
}  // namespace

int64_t consensus(const int64_t* labels, int64_t N, const int64_t* rows, const int64_t* nbr, int64_t m, int64_t K,
                  int64_t* codes, int64_t* c1, int64_t* c2, int nthreads) {
  const int64_t bad = first_bad(m, [&](int64_t r) {
    return rows[r] < 0 || rows[r] >= N || nbr[2 * r] < 0 || nbr[2 * r] >= N || nbr[2 * r + 1] < 0 ||
           nbr[2 * r + 1] >= N;
  });
  if (bad >= 0) return bad;
  const int64_t KK = K * K;
  int nt = threads_for(nthreads, 4.0 * double(m));
  if (KK * nt > kMaxThreadHist) nt = 1;
  std::vector<int64_t> h1(size_t(nt) * size_t(K), 0), h2(size_t(nt) * size_t(KK), 0);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num();
    int64_t* p1 = h1.data() + size_t(t) * size_t(K);
    int64_t* p2 = h2.data() + size_t(t) * size_t(KK);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < m; ++r) {
      const int64_t a = labels[rows[r]], b = labels[nbr[2 * r]], c = labels[nbr[2 * r + 1]];
      codes[r] = triplet_code(a, b, c, K);
      p1[a] += 1;
      p2[a * K + b] += 1;
    }
  }
  for (int t = 0; t < nt; ++t) {
    for (int64_t i = 0; i < K; ++i) c1[i] += h1[size_t(t) * size_t(K) + size_t(i)];
    for (int64_t i = 0; i < KK; ++i) c2[i] += h2[size_t(t) * size_t(KK) + size_t(i)];
  }
  return -1;
}

int64_t vote(const int64_t* labels, int64_t N, const int64_t* nbr, const double* w, int64_t m, int64_t k,
             const int64_t* given, int64_t K, double* given_vote, int64_t* pred, int nthreads) {
  const int64_t bad = first_bad(m, [&](int64_t r) {
    if (given[r] < 0 || given[r] >= K) return true;
    for (int64_t j = 0; j < k; ++j)
      if (nbr[r * k + j] < 0 || nbr[r * k + j] >= N) return true;
    return false;
  });
  if (bad >= 0) return bad;
  const int nt = threads_for(nthreads, double(m) * double(k + K));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<double> cnt(static_cast<size_t>(K), 0.0);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < m; ++r) {
      pred[r] = vote_row([&](int64_t i) { return labels[i]; }, nbr + r * k, w + r * k, k, given[r], K, cnt.data(),
                         given_vote + r);
    }
  }
  return -1;
}

int64_t filter_in_sample(const int64_t* cand, const double* cand_d, int64_t N, int64_t c, const int64_t* rows,
                         int64_t m, const uint8_t* in_sample, int64_t want, int64_t* out_idx, double* out_d,
                         uint8_t* short_rows, int nthreads) {
  const int nt = threads_for(nthreads, double(m) * double(c));
  int64_t nshort = 0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static) reduction(+ : nshort)
  for (int64_t r = 0; r < m; ++r) {
    const int64_t i = rows[r];
    int64_t got = 0;
    if (i >= 0 && i < N) {
      const int64_t* ci = cand + i * c;
      const double* di = cand_d + i * c;
      for (int64_t j = 0; j < c && got < want; ++j) {
        const int64_t q = ci[j];
        if (q >= 0 && q < N && in_sample[q]) {
          out_idx[r * want + got] = q;
          out_d[r * want + got] = di[j];
          ++got;
        }
      }
    }
    short_rows[r] = got < want;
    if (got < want) {
      ++nshort;
      for (int64_t j = got; j < want; ++j) {
        out_idx[r * want + j] = -1;
        out_d[r * want + j] = nan;
      }
    }
  }
  return nshort;
}

}  // namespace nz
}  // namespace ls
