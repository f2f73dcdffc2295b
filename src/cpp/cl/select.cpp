#include "cl/kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "cl/buckets.h"
#include "cl/row_math.h"
#include "common/parallel.h"
#include "common/summation.h"

namespace ls {

void lowest_per_class(const double* values, const int64_t* labels, int64_t n, int64_t K, const int64_t* num,
                      uint8_t* mask, int nthreads, uint8_t* tied) {
  std::vector<int64_t> off, order;
  bucket_by_class(labels, n, K, off, order);
  const int T = threads_for(nthreads, 8.0 * double(n));
#pragma omp parallel num_threads(T) if (T > 1)
  {
    std::vector<Cand> buf;
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t a = off[k], m = off[k + 1] - off[k];
      const int64_t c = std::min<int64_t>(std::max<int64_t>(num[k], 0), m);
      if (c == 0) continue;
      buf.resize(m);
      for (int64_t t = 0; t < m; ++t) buf[t] = Cand{-values[order[a + t]], order[a + t]};
      if (c < m) std::nth_element(buf.begin(), buf.begin() + (c - 1), buf.end(), cand_better);
      // after nth_element the first c entries are the c best (in some order)
      for (int64_t t = 0; t < c; ++t) mask[buf[t].idx] = 1;
      if (tied) {
        tied[k] = 0;
        for (int64_t t = c; t < m; ++t)
          if (buf[t].key == buf[c - 1].key) tied[k] = 1;
      }
    }
  }
}

void round_rows(const double* values, int64_t rows, int64_t n, int64_t* out, int nthreads) {
  const int T = threads_for(nthreads, 8.0 * double(rows) * double(n));
#pragma omp parallel num_threads(T) if (T > 1)
  {
    std::vector<double> r(n);
    std::vector<Cand> cand(n);
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < rows; ++i) {
      const double* v = values + i * n;
      for (int64_t j = 0; j < n; ++j) r[j] = std::nearbyint(v[j]);  // half to even
      const double target = std::nearbyint(pairwise_sum<double>([&](std::ptrdiff_t j) { return v[j]; }, 0, n));
      double current = std::nearbyint(pairwise_sum<double>([&](std::ptrdiff_t j) { return r[j]; }, 0, n));
      while (std::fabs(current - target) > 1e-6) {
        const double gap = std::nearbyint(target - current);
        const double step = gap < 0.0 ? -1.0 : 1.0;
        const int64_t changes = std::min<int64_t>(int64_t(std::fabs(gap)), n);
        // best first: larger key, then lower index (key = residual for +1,
        // -residual for -1)
        for (int64_t j = 0; j < n; ++j) cand[j] = Cand{(v[j] - r[j]) * step, j};
        if (changes < n) std::nth_element(cand.begin(), cand.begin() + (changes - 1), cand.end(), cand_better);
        for (int64_t t = 0; t < changes; ++t) r[cand[t].idx] += step;
        current = std::nearbyint(pairwise_sum<double>([&](std::ptrdiff_t j) { return r[j]; }, 0, n));
      }
      for (int64_t j = 0; j < n; ++j) out[i * n + j] = int64_t(r[j]);
    }
  }
}

// ---------------------------------------------------------------------------
TopCSelector::TopCSelector(int64_t n_total, int64_t K, std::vector<int64_t> offsets, std::vector<int64_t> cols,
                           std::vector<int64_t> caps, const std::vector<int64_t>& class_counts)
    : n_total_(n_total), K_(K), off_(std::move(offsets)), cols_(std::move(cols)), caps_(std::move(caps)) {
  if (int64_t(off_.size()) != K + 1 || cols_.size() != caps_.size() || off_.back() != int64_t(cols_.size()) ||
      int64_t(class_counts.size()) != K)
    throw std::invalid_argument("TopCSelector: inconsistent active lists");
  const int64_t M = int64_t(cols_.size());
  start_.assign(M + 1, 0);
  size_.assign(M, 0);
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t h = off_[k]; h < off_[k + 1]; ++h) {
      if (cols_[h] < 0 || cols_[h] >= K) throw std::invalid_argument("TopCSelector: column out of range");
      caps_[h] = std::max<int64_t>(0, std::min(caps_[h], class_counts[k]));
    }
  }
  for (int64_t h = 0; h < M; ++h) start_[h + 1] = start_[h] + caps_[h];
  pool_.resize(start_[M]);
  thr_.resize(M);
  tie_.assign(M, -INFINITY);
  for (int64_t h = 0; h < M; ++h) thr_[h] = caps_[h] > 0 ? -INFINITY : INFINITY;
  work_.assign(K, 0.0);
  for (int64_t k = 0; k < K; ++k) work_[k] = double(class_counts[k]) * double(1 + off_[k + 1] - off_[k]);
}

// Min-heap on "better": the root is the worst candidate kept so far.
void TopCSelector::push(int64_t h, const Cand& c) {
  const int64_t cap = caps_[h];
  if (cap == 0) return;
  Cand* heap = pool_.data() + start_[h];
  int64_t& sz = size_[h];
  auto worse = [](const Cand& a, const Cand& b) { return cand_better(b, a); };
  if (sz < cap) {
    int64_t i = sz++;
    heap[i] = c;
    while (i > 0) {  // sift up while the parent is better than the child
      const int64_t p = (i - 1) / 2;
      if (!worse(heap[i], heap[p])) break;
      std::swap(heap[i], heap[p]);
      i = p;
    }
    if (sz == cap) thr_[h] = heap[0].key;
    return;
  }
  if (!cand_better(c, heap[0])) return;
  tie_[h] = std::max(tie_[h], heap[0].key);  // evicted: a tie if it equals the final threshold
  heap[0] = c;
  int64_t i = 0;
  for (;;) {  // sift down: bring the worst to the root
    const int64_t l = 2 * i + 1, r = l + 1;
    int64_t w = i;
    if (l < sz && worse(heap[l], heap[w])) w = l;
    if (r < sz && worse(heap[r], heap[w])) w = r;
    if (w == i) break;
    std::swap(heap[i], heap[w]);
    i = w;
  }
  thr_[h] = heap[0].key;
}

void TopCSelector::feed(const Mat& P, const int64_t* labels, int64_t row0, int nthreads, const double* ub) {
  require_host(P);
  if (P.k != K_) throw std::invalid_argument("TopCSelector: wrong number of columns");
  if (row0 < next_row_ || row0 + P.n > n_total_)
    throw std::invalid_argument("TopCSelector: blocks must come in increasing row order, within range");
  next_row_ = row0 + P.n;
  const int T = threads_for(nthreads, 8.0 * double(P.n));
  // Each class belongs to one thread (greedy, heaviest first), so every heap
  // is filled by one thread in index order: no merging, no races.
  std::vector<int> owner(K_, 0);
  {
    std::vector<int64_t> ks(K_);
    std::iota(ks.begin(), ks.end(), 0);
    std::stable_sort(ks.begin(), ks.end(), [&](int64_t a, int64_t b) { return work_[a] > work_[b]; });
    std::vector<double> load(T, 0.0);
    for (int64_t k : ks) {
      const int t = int(std::min_element(load.begin(), load.end()) - load.begin());
      owner[k] = t;
      load[t] += work_[k];
    }
  }
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    const S* base = static_cast<const S*>(P.data);
#pragma omp parallel num_threads(T) if (T > 1)
    {
      // OpenMP may grant fewer threads than asked: the team then shares the
      // owners' classes (owner % team), so no class is left unvisited.
      const int tid = omp_get_thread_num(), team = omp_get_num_threads();
      // This thread's rows (those of its classes with something to prune), in
      // index order; then visit them with the columns of a row a few steps
      // ahead prefetched: the reads are scattered, so the hardware prefetcher
      // cannot guess them.
      std::vector<int64_t> mine;
      for (int64_t i = 0; i < P.n; ++i) {
        const int64_t k = labels[i];
        if (owner[k] % team == tid && off_[k + 1] > off_[k]) mine.push_back(i);
      }
      const int64_t* cols = cols_.data();
      const double* thr = thr_.data();
      // Can row i still enter one of its class's heaps? Its margins are all
      // <= ub[i], and a heap only takes a key strictly above its threshold.
      auto may_enter = [&](int64_t i) {
        if (!ub) return true;
        const int64_t k = labels[i];
        const double u = ub[i];
        for (int64_t h = off_[k]; h < off_[k + 1]; ++h)
          if (u >= thr[h]) return true;  // >=: a margin equal to the threshold is a tie to record
        return false;
      };
      constexpr size_t AHEAD = 6;
      auto prefetch_row = [&](int64_t i) {
        if (!may_enter(i)) return;  // a hint: thresholds only rise, so it stays skipped
        const int64_t k = labels[i];
        const S* row = base + i * P.s0;
        __builtin_prefetch(row + k * P.s1);
        const int64_t a = off_[k], b = std::min(off_[k + 1], a + 16);  // the first few; the rest stream
        for (int64_t h = a; h < b; ++h) __builtin_prefetch(row + cols[h] * P.s1);
      };
      for (size_t t = 0; t < mine.size() && t < AHEAD; ++t) prefetch_row(mine[t]);
      for (size_t t = 0; t < mine.size(); ++t) {
        if (t + AHEAD < mine.size()) prefetch_row(mine[t + AHEAD]);
        const int64_t i = mine[t];
        if (!may_enter(i)) continue;
        const int64_t k = labels[i];
        const S* row = base + i * P.s0;
        for (int64_t h = off_[k]; h < off_[k + 1]; ++h) {
          const double key = margin<S>(row, P.s1, cols[h], k);
          if (key > thr[h])
            push(h, Cand{key, row0 + i});
          else if (key == thr[h])
            tie_[h] = key;  // loses the tie to the earlier row (keys only rise)
        }
      }
    }
  });
}

void TopCSelector::finish(uint8_t* mask, uint8_t* tied) const {
  for (size_t h = 0; h < size_.size(); ++h) {
    if (tied) {
      tied[h] = (caps_[h] > 0 && size_[h] == caps_[h] && tie_[h] == thr_[h]) ? 1 : 0;
      if (tied[h]) continue;
    }
    const Cand* heap = pool_.data() + start_[h];
    for (int64_t t = 0; t < size_[h]; ++t) mask[heap[t].idx] = 1;
  }
}

int64_t TopCSelector::num_kept() const {
  int64_t t = 0;
  for (int64_t s : size_) t += s;
  return t;
}

void TopCSelector::kept(int64_t* sizes, double* keys, int64_t* rows) const {
  int64_t o = 0;
  for (size_t h = 0; h < size_.size(); ++h) {
    sizes[h] = size_[h];
    const Cand* heap = pool_.data() + start_[h];
    for (int64_t t = 0; t < size_[h]; ++t, ++o) {
      keys[o] = heap[t].key;
      rows[o] = heap[t].idx;
    }
  }
}

}  // namespace ls
