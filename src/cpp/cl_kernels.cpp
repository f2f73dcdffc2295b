#include "cl_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <type_traits>

namespace ls {

namespace {

template <class F>
void dispatch(int dtype, F&& f) {
  switch (dtype) {
    case F16: f(half_t{}); break;
    case F32: f(float{}); break;
    case F64: f(double{}); break;
    default: throw std::invalid_argument("unsupported dtype code");
  }
}

int threads_or_default(int nthreads) { return nthreads > 0 ? nthreads : omp_get_max_threads(); }

// Thread policy of every kernel: `work` estimates its cost in element
// visits of the row sweep (~0.3 ns each); below kMinParallelWork the kernel
// runs on the calling thread (the regions' if-clause is false, so no other
// thread is woken or waited for). There a second thread saves less than
// waking it costs, and on a busy machine a parallel region can wait
// milliseconds for a descheduled thread (bench/bench_small_calls.py).
// Results never depend on the thread count, so this is a speed choice only.
constexpr double kMinParallelWork = double(1 << 18);
int threads_for(int nthreads, double work) { return work < kMinParallelWork ? 1 : threads_or_default(nthreads); }

// Stable bucketing of row indices by label: order[off[k] .. off[k+1]) are the
// rows of class k in increasing index order.
void bucket_by_class(const int64_t* labels, int64_t n, int64_t K, std::vector<int64_t>& off,
                     std::vector<int64_t>& order) {
  off.assign(K + 1, 0);
  for (int64_t i = 0; i < n; ++i) off[labels[i] + 1] += 1;
  for (int64_t k = 0; k < K; ++k) off[k + 1] += off[k];
  std::vector<int64_t> pos(off.begin(), off.end() - 1);
  order.resize(n);
  for (int64_t i = 0; i < n; ++i) order[pos[labels[i]]++] = i;
}

}  // namespace

void gather_given(const Mat& P, const int64_t* labels, void* out, int nthreads) {
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

// The rows [i0, i1) of one thread; stops at the first invalid row (its index
// goes to first_bad). Compiled twice: for the baseline ISA and, chosen at run
// time, for AVX2/F16C (flatten inlines the shared row math so it vectorises
// with the wider registers; no FMA, and -ffp-contract=off, so results are
// bit-identical).
template <class S, class C, int VB>
static void rows_range(const Mat& P, const int64_t* labels, const C* cut, RowPassOut out, Bounds bd,
                       bool validate_only, int64_t i0, int64_t i1, int64_t* first_bad) {
  const S* base = static_cast<const S*>(P.data);
  for (int64_t i = i0; i < i1; ++i) {
    const RowResult r = RowOps<S>::template row<C, VB>(base + i * P.s0, P.s1, P.k, labels[i], cut, bd);
    if (r.err != ROW_OK) {
      *first_bad = i;
      return;
    }
    if (validate_only) continue;
    if (out.guess) out.guess[i] = r.guess;
    if (out.argmax) out.argmax[i] = r.argmax;
    if (out.keep) out.keep[i] = r.keep;
    if (out.max_other) out.max_other[i] = r.max_other;
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define LS_HAVE_AVX2_PATH 1
template <class S, class C>
__attribute__((target("avx2,f16c"), flatten)) static void rows_range_avx2(const Mat& P, const int64_t* labels,
                                                                          const C* cut, RowPassOut out, Bounds bd,
                                                                          bool validate_only, int64_t i0, int64_t i1,
                                                                          int64_t* first_bad) {
  rows_range<S, C, 32>(P, labels, cut, out, bd, validate_only, i0, i1, first_bad);
}
static bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
                          std::getenv("LABELSIFT_NO_AVX2") == nullptr;
  return yes;
}
#endif

template <class S, class C>
static RowPassError row_pass_t(const Mat& P, const int64_t* labels, const C* cut, RowPassOut out,
                               const Bounds& bd, int nthreads, bool validate_only) {
  auto fn = &rows_range<S, C, 16>;
#ifdef LS_HAVE_AVX2_PATH
  if (cpu_has_avx2()) fn = &rows_range_avx2<S, C>;
#endif
  int64_t first_bad = std::numeric_limits<int64_t>::max();
  // Chunks of ~64k values handed out dynamically: a thread that is
  // descheduled (a busy machine) holds up one chunk, not half the rows.
  // Each chunk stops at its first invalid row; the smallest over all chunks
  // is the first invalid row overall.
  const int64_t rows_per_chunk = std::max<int64_t>(16, (int64_t(1) << 16) / std::max<int64_t>(1, P.k));
  const int64_t nchunks = (P.n + rows_per_chunk - 1) / rows_per_chunk;
  const int T = threads_for(nthreads, double(P.n) * double(P.k));
#pragma omp parallel for schedule(dynamic, 1) num_threads(T) if (T > 1) reduction(min : first_bad)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t i0 = c * rows_per_chunk, i1 = std::min(P.n, i0 + rows_per_chunk);
    int64_t bad = std::numeric_limits<int64_t>::max();
    fn(P, labels, cut, out, bd, validate_only, i0, i1, &bad);
    first_bad = std::min(first_bad, bad);
  }
  RowPassError e{-1, ROW_OK, -1};
  if (first_bad != std::numeric_limits<int64_t>::max()) {
    const S* base = static_cast<const S*>(P.data);
    const RowResult r = RowOps<S>::row(base + first_bad * P.s0, P.s1, P.k, labels[first_bad], cut, bd);
    e.row = first_bad;
    e.code = r.err;
    e.col = r.err_col;
  }
  return e;
}

RowPassError row_pass(const Mat& P, const int64_t* labels, const double* cut64, const float* cut32, RowPassOut out,
                      const Bounds& bd, int nthreads) {
  RowPassError e{};
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    if constexpr (std::is_same_v<typename Num<S>::V, float>) {
      if (cut32 || !cut64) {
        e = row_pass_t<S, float>(P, labels, cut32, out, bd, nthreads, false);
        return;
      }
    } else if (cut32) {
      throw std::invalid_argument("a float32 cut needs a float16/float32 input");
    }
    e = row_pass_t<S, double>(P, labels, cut64, out, bd, nthreads, false);
  });
  return e;
}

RowPassError validate(const Mat& P, const int64_t* labels, const Bounds& bd, int nthreads) {
  RowPassError e{};
  RowPassOut none{nullptr, nullptr, nullptr, nullptr};
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    e = row_pass_t<S, typename Num<S>::V>(P, labels, nullptr, none, bd, nthreads, true);
  });
  return e;
}

void xlogx_rows(const Mat& P, const int64_t* rows, int64_t nrows, double* out, int nthreads) {
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    const S* base = static_cast<const S*>(P.data);
    const int64_t m = rows ? nrows : P.n;
    const int T = threads_for(nthreads, 10.0 * double(m) * double(P.k));  // a log per value
#pragma omp parallel for schedule(dynamic, 256) num_threads(T) if (T > 1)
    for (int64_t t = 0; t < m; ++t) {
      const int64_t i = rows ? rows[t] : t;
      out[t] = RowOps<S>::xlogx_row_sum(base + i * P.s0, P.s1, P.k);
    }
  });
}

void adjusted_rows(const Mat& P, const int64_t* labels, const double* t, bool t_is_f64, const int64_t* rows,
                   int64_t nrows, double* sc, double* mo, int nthreads) {
  double tmax = -INFINITY;
  for (int64_t k = 0; k < P.k; ++k) tmax = std::max(tmax, t[k]);
  dispatch(P.dtype, [&](auto tag) {
    using S = decltype(tag);
    using V = typename Num<S>::V;
    const S* base = static_cast<const S*>(P.data);
    const int64_t m = rows ? nrows : P.n;
    const int T = threads_for(nthreads, 4.0 * double(m) * double(P.k));
#pragma omp parallel for schedule(dynamic, 256) num_threads(T) if (T > 1)
    for (int64_t r = 0; r < m; ++r) {
      const int64_t i = rows ? rows[r] : r;
      const S* row = base + i * P.s0;
      if (t_is_f64)
        RowOps<S>::template adjusted<double>(row, P.s1, P.k, labels[i], t, tmax, sc[r], mo[r]);
      else
        RowOps<S>::template adjusted<V>(row, P.s1, P.k, labels[i], t, tmax, sc[r], mo[r]);
    }
  });
}

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

void top_m_rows(const Mat& P, int64_t m, int32_t* cls, void* vals, void* rest, int nthreads) {
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
      const int tid = omp_get_thread_num();
      // This thread's rows (those of its classes with something to prune), in
      // index order; then visit them with the columns of a row a few steps
      // ahead prefetched: the reads are scattered, so the hardware prefetcher
      // cannot guess them.
      std::vector<int64_t> mine;
      for (int64_t i = 0; i < P.n; ++i) {
        const int64_t k = labels[i];
        if (owner[k] == tid && off_[k + 1] > off_[k]) mine.push_back(i);
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

}  // namespace ls
