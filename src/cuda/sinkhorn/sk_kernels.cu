// (sinkhorn/sk_kernels.cu) The fused Sinkhorn pass (sinkhorn/passes.cpp) on a CUDA device, with the
// per-row math of the CPU kernels (sinkhorn/row_math.h, __host__ __device__).
// Built with --fmad=false: no contraction, as on the CPU (-ffp-contract=off).
//
// Three kernels per pass, on the caller's stream, never a float atomic:
//
//  1. sk_rows_k -- the row statistics. Eight lanes a row (four rows a warp):
//     lane j sweeps the classes k = j, j + 8, j + 16, ... in increasing k.
//     * max and its first index: each lane keeps its own (strict >, so its
//       first maximum), the eight are merged by "larger value, else lower
//       index" -- exact in any order, so equal to row_stats' sequential scan;
//     * the row sum: row_stats adds e_k into accumulator a[k % 8] in
//       increasing k, starting from 0. Lane j sees exactly the k with
//       k % 8 == j, in increasing k, and adds them into its own double from
//       0 -- the same additions in the same order, so lane j's value IS a[j]
//       bit for bit. The eight are then combined with row_math.h's combine8
//       (same parenthesisation);
//     * e_k = sk_exp_row<S>(t_k - m), t_k = lam * x_k + f_k: the same
//       expressions as row_stats (no FMA on either side);
//     * non-finite rows are treated as row_stats treats them (m = 0, s = 1,
//       label 0, T = E = 0) and the first one is found by an integer
//       atomicMin over row indices (order-independent).
//     It writes labels, g and the row's (m, w = b/s, lw, pw, finite) for 2.
//
//  2. sk_cols_k -- the per-chunk column partials, one thread a (chunk,
//     column). The chunks are the CPU's: chunk_rows(N) rows each
//     (sinkhorn/kernels.h), chunk c = rows [c * rpc, min(N, (c + 1) * rpc)).
//     The thread of (c, k) walks the rows of chunk c in increasing i and does
//     acc += e_ik * w_i and cmax = u > cmax ? u : cmax with u = d_ik + lw_i,
//     starting from 0 and -inf: exactly row_accumulate's operations on
//     acc[c * K + k] / cmax[c * K + k] as the CPU thread owning chunk c does
//     them, row after row, in the same order (e_ik and d_ik are recomputed
//     from the scores with the same expressions, so they are the same bits
//     as the CPU's E[k] and T[k]). The plan entry P(e_ik * pw_i) is written
//     here too (coalesced across threads for C-order scores).
//
//  3. sk_reduce_k -- colsum[k] = ((0 + acc[0,k]) + acc[1,k]) + ... and
//     colmax[k] = max over chunks, chunk 0, 1, 2, ... as sk::pass reduces.
//
// So colsum, colmax, labels and the plan equal the CPU's bit for bit. The
// one difference: log. The CPU takes std::log (glibc), the device CUDA's
// log (at most 1 ulp from the correctly rounded value, CUDA programming
// guide): lw_i = log(b_i) - log(s_i), hence g_i and colmax, may differ by a
// few ulp of |log b_i| + |log s_i| (see tests/gpu/test_cuda_sinkhorn.py for
// the bound the tests check). colmax only enters the column step for
// columns whose mass is below 1e-200 (potentials.TINY_MASS); everywhere
// else the potentials f, the labels and the plan are the CPU's exactly.
//
// The column log-sum-exp (first column step of SeLa/SwAV) is the same walk
// as 2: one thread a (chunk, column), lse_push over the chunk's rows in
// order, exactly lse_rows of passes.cpp; the host merges with lse_finish.
#include "common/checked.h"
#include "sinkhorn/sk_cuda.h"

#include <cuda_runtime.h>

#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/dtype.h"
#include "sinkhorn/kernels.h"
#include "sinkhorn/row_math.h"

namespace ls {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;
constexpr unsigned long long kNoRow = ULLONG_MAX;


// The work buffer: [colsum K | colmax K | first_bad 1 | f K] doubles,
// [m | w | lw | pw] N doubles each, [ok] N bytes (padded to 8), then the
// chunk partials acc and cmx, nch x K doubles each.
struct Work {
  double* colsum;
  double* colmax;
  unsigned long long* first_bad;
  double* f;
  double* m;
  double* w;
  double* lw;
  double* pw;
  uint8_t* ok;
  double* acc;
  double* cmx;
  int64_t nch, rpc;
  size_t bytes;
};

Work layout(uintptr_t base, int64_t n, int64_t k) {
  Work w{};
  w.rpc = sk::chunk_rows(n);
  w.nch = (n + w.rpc - 1) / w.rpc;
  char* p = reinterpret_cast<char*>(base);
  size_t off = 0;
  auto take = [&](size_t nbytes) {
    char* q = p + off;
    off += (nbytes + 7) / 8 * 8;
    return q;
  };
  w.colsum = reinterpret_cast<double*>(take(8 * size_t(k)));
  w.colmax = reinterpret_cast<double*>(take(8 * size_t(k)));
  w.first_bad = reinterpret_cast<unsigned long long*>(take(8));
  w.f = reinterpret_cast<double*>(take(8 * size_t(k)));
  w.m = reinterpret_cast<double*>(take(8 * size_t(n)));
  w.w = reinterpret_cast<double*>(take(8 * size_t(n)));
  w.lw = reinterpret_cast<double*>(take(8 * size_t(n)));
  w.pw = reinterpret_cast<double*>(take(8 * size_t(n)));
  w.ok = reinterpret_cast<uint8_t*>(take(size_t(n)));
  w.acc = reinterpret_cast<double*>(take(8 * size_t(w.nch * k)));
  w.cmx = reinterpret_cast<double*>(take(8 * size_t(w.nch * k)));
  w.bytes = off;
  return w;
}

struct RowStats {
  double* m;
  double* w;
  double* lw;
  double* pw;
  uint8_t* ok;
};

// ---------------------------------------------------------------------------
// 1. row statistics: eight lanes a row
// ---------------------------------------------------------------------------
template <class S>
__global__ void sk_rows_k(const S* X, int64_t n, int64_t K, int64_t s0, int64_t s1, double lam, const double* f,
                          const double* b, double b0, bool unit_rows, RowStats rs, int64_t* labels, double* g,
                          unsigned long long* first_bad) {
  const int lane = int(threadIdx.x & 31);
  const int sub = lane & 7;  // this lane's accumulator: classes k with k % 8 == sub
  const int64_t gwarp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t step = ((int64_t(gridDim.x) * blockDim.x) >> 5) * 4;  // rows per grid sweep
  // the loop bound is warp-uniform (base), so every lane reaches every shuffle
  for (int64_t base = gwarp * 4; base < n; base += step) {
    const int64_t i = base + (lane >> 3);
    const bool active = i < n;
    const S* row = X + (active ? i : 0) * s0;
    // sweep 1: max, its first index, finiteness
    double m = -INFINITY;
    int32_t am = 0;
    int fin = 1;
    if (active) {
      for (int64_t k = sub; k < K; k += 8) {
        const double t = lam * double(Num<S>::load(row[k * s1])) + f[k];
        fin &= (t - t == 0.0) ? 1 : 0;  // row_stats: chk += t - t stays 0 iff every t is finite
        if (t > m) {
          m = t;
          am = int32_t(k);
        }
      }
    }
    for (int o = 4; o > 0; o >>= 1) {
      const double m2 = __shfl_xor_sync(kFull, m, o, 8);
      const int32_t a2 = __shfl_xor_sync(kFull, am, o, 8);
      fin &= __shfl_xor_sync(kFull, fin, o, 8);
      if (m2 > m || (m2 == m && a2 < am)) {
        m = m2;
        am = a2;
      }
    }
    // sweep 2: lane sub's accumulator a[sub] of row_stats, same additions, same order
    double acc = 0.0;
    if (active && fin) {
      for (int64_t k = sub; k < K; k += 8) {
        const double t = lam * double(Num<S>::load(row[k * s1])) + f[k];
        acc += sk::sk_exp_row<S>(t - m);
      }
    }
    double a8[8];
#pragma unroll
    for (int q = 0; q < 8; ++q) a8[q] = __shfl_sync(kFull, acc, q, 8);
    if (!active || sub != 0) continue;
    double s = sk::combine8(a8);
    int32_t label = am;
    if (!fin) {
      m = 0.0;
      s = 1.0;
      label = 0;
      atomicMin(first_bad, static_cast<unsigned long long>(i));
    }
    const double bi = b ? b[i] : b0;
    const double w = bi / s;
    const double lw = log(bi) - log(s);
    if (labels) labels[i] = label;
    if (g) g[i] = lw - m;
    rs.m[i] = m;
    rs.w[i] = w;
    rs.lw[i] = lw;
    rs.pw[i] = unit_rows ? 1.0 / s : w;
    rs.ok[i] = uint8_t(fin);
  }
}

// ---------------------------------------------------------------------------
// 2. per-chunk column partials (and the plan): one thread a (chunk, column)
// ---------------------------------------------------------------------------
template <class S, class P>
__global__ void sk_cols_k(const S* X, int64_t n, int64_t K, int64_t s0, int64_t s1, double lam, const double* f,
                          RowStats rs, int64_t rpc, double* acc, double* cmx, P* plan) {
  const int64_t c = blockIdx.y;
  const int64_t i0 = c * rpc;
  const int64_t i1 = i0 + rpc < n ? i0 + rpc : n;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < K; k += int64_t(gridDim.x) * blockDim.x) {
    const double fk = f[k];
    double a = 0.0, mx = -INFINITY;  // passes.cpp: acc starts 0.0, cmx -INFINITY
    for (int64_t i = i0; i < i1; ++i) {
      double d = 0.0, e = 0.0;  // a non-finite row: T = E = 0, as row_stats leaves them
      if (rs.ok[i]) {
        const double t = lam * double(Num<S>::load(X[i * s0 + k * s1])) + fk;
        d = t - rs.m[i];
        e = sk::sk_exp_row<S>(d);
      }
      a += e * rs.w[i];                // row_accumulate: acc[k] += E[k] * w
      const double u = d + rs.lw[i];   //                 u = T[k] + lw
      mx = u > mx ? u : mx;            //                 cmax[k] = u > cmax[k] ? u : cmax[k]
      if (plan) plan[i * K + k] = P(e * rs.pw[i]);  //   plan[k] = P(E[k] * pw)
    }
    acc[c * K + k] = a;
    cmx[c * K + k] = mx;
  }
}

// 3. the fixed-order reduction of sk::pass: chunk 0, 1, 2, ... for every column
__global__ void sk_reduce_k(const double* acc, const double* cmx, int64_t nch, int64_t K, double* colsum,
                            double* colmax) {
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < K; k += int64_t(gridDim.x) * blockDim.x) {
    double s = 0.0, m = -INFINITY;
    for (int64_t c = 0; c < nch; ++c) {
      s += acc[c * K + k];
      const double v = cmx[c * K + k];
      m = v > m ? v : m;
    }
    colsum[k] = s;
    colmax[k] = m;
  }
}

// The column log-sum-exp pieces: lse_rows of passes.cpp, one thread a (chunk, column).
template <class S>
__global__ void sk_lse_k(const S* X, int64_t n, int64_t K, int64_t s0, int64_t s1, double lam, const double* lb,
                         double lb0, int64_t rpc, double* M, double* Sm) {
  const int64_t c = blockIdx.y;
  const int64_t i0 = c * rpc;
  const int64_t i1 = i0 + rpc < n ? i0 + rpc : n;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < K; k += int64_t(gridDim.x) * blockDim.x) {
    double Mc = -INFINITY, Sc = 0.0;
    for (int64_t i = i0; i < i1; ++i) {
      const double lbi = lb ? lb[i] : lb0;
      sk::lse_push(lam * double(Num<S>::load(X[i * s0 + k * s1])) + lbi, Mc, Sc);
    }
    M[c * K + k] = Mc;
    Sm[c * K + k] = Sc;
  }
}

unsigned grid_1d(int64_t items, int64_t per_block) {
  int64_t b = (items + per_block - 1) / per_block;
  if (b < 1) b = 1;
  if (b > (int64_t(1) << 30)) b = int64_t(1) << 30;
  return unsigned(b);
}

void check_shape(const DevMat& X) {
  if (X.n < 0 || X.k < 1 || X.k > INT32_MAX) throw std::invalid_argument("labelsift CUDA: bad score shape");
  if (X.dtype < F16 || X.dtype > F64) throw std::invalid_argument("labelsift CUDA: unsupported dtype code");
}

Work checked_layout(const DevMat& X, uintptr_t work, size_t work_bytes) {
  const Work w = layout(work, X.n, X.k);
  if (work == 0 || work_bytes < w.bytes) throw std::invalid_argument("labelsift CUDA: work buffer too small");
  if (w.nch > 65535) throw std::invalid_argument("labelsift CUDA: too many row chunks");
  return w;
}

}  // namespace

size_t sk_work_bytes(int64_t n, int64_t k) { return layout(0, n, k).bytes; }

int64_t sk_pass(const SkPassArgs& a, int device, uintptr_t stream) {
  DeviceScope ds(device);
  check_shape(a.X);
  if (a.plan && a.plan_dtype != F32 && a.plan_dtype != F64)
    throw std::invalid_argument("labelsift CUDA: plan must be float32/64");
  const Work w = checked_layout(a.X, a.work, a.work_bytes);
  const cudaStream_t st = as_stream(stream);
  const int64_t N = a.X.n, K = a.X.k;
  check(cudaMemcpyAsync(w.f, a.f, 8 * size_t(K), cudaMemcpyHostToDevice, st), "cudaMemcpyAsync (f)");
  check(cudaMemsetAsync(w.first_bad, 0xff, 8, st), "cudaMemsetAsync");
  const RowStats rs{w.m, w.w, w.lw, w.pw, w.ok};
  dispatch(a.X.dtype, [&](auto tag) {
    using S = decltype(tag);
    const S* X = reinterpret_cast<const S*>(a.X.data);
    if (N > 0) {
      sk_rows_k<S><<<grid_1d(N, kThreads / 8), kThreads, 0, st>>>(
          X, N, K, a.X.s0, a.X.s1, a.lam, w.f, reinterpret_cast<const double*>(a.b), a.b0, a.plan_unit_rows, rs,
          reinterpret_cast<int64_t*>(a.labels), reinterpret_cast<double*>(a.g), w.first_bad);
      check(cudaGetLastError(), "sk_rows kernel launch");
      const dim3 grid(grid_1d(K, kThreads), unsigned(w.nch));
      if (a.plan_dtype == F64 || !a.plan)
        sk_cols_k<S, double><<<grid, kThreads, 0, st>>>(X, N, K, a.X.s0, a.X.s1, a.lam, w.f, rs, w.rpc, w.acc, w.cmx,
                                                        reinterpret_cast<double*>(a.plan));
      else
        sk_cols_k<S, float><<<grid, kThreads, 0, st>>>(X, N, K, a.X.s0, a.X.s1, a.lam, w.f, rs, w.rpc, w.acc, w.cmx,
                                                       reinterpret_cast<float*>(a.plan));
      check(cudaGetLastError(), "sk_cols kernel launch");
    }
  });
  sk_reduce_k<<<grid_1d(K, kThreads), kThreads, 0, st>>>(w.acc, w.cmx, w.nch, K, w.colsum, w.colmax);
  check(cudaGetLastError(), "sk_reduce kernel launch");
  // colsum, colmax and first_bad are adjacent: one copy back
  const size_t back = size_t(reinterpret_cast<char*>(w.first_bad) - reinterpret_cast<char*>(w.colsum)) + 8;
  std::string tmp(back, '\0');
  check(cudaMemcpyAsync(&tmp[0], w.colsum, back, cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync (colsum)");
  check(cudaStreamSynchronize(st), "sk_pass (cudaStreamSynchronize)");
  const double* hs = reinterpret_cast<const double*>(tmp.data());
  for (int64_t k = 0; k < K; ++k) {
    a.colsum[k] = hs[k];
    a.colmax[k] = hs[K + k];
  }
  unsigned long long bad;
  std::memcpy(&bad, tmp.data() + (back - 8), 8);
  return (a.check && bad != kNoRow) ? int64_t(bad) : -1;
}

void sk_col_lse(const DevMat& X, double lam, uintptr_t lb, double lb0, double* M, double* S, uintptr_t work,
                size_t work_bytes, int device, uintptr_t stream) {
  DeviceScope ds(device);
  check_shape(X);
  const Work w = checked_layout(X, work, work_bytes);
  const cudaStream_t st = as_stream(stream);
  if (X.n == 0) return;
  dispatch(X.dtype, [&](auto tag) {
    using St = decltype(tag);
    const dim3 grid(grid_1d(X.k, kThreads), unsigned(w.nch));
    sk_lse_k<St><<<grid, kThreads, 0, st>>>(reinterpret_cast<const St*>(X.data), X.n, X.k, X.s0, X.s1, lam,
                                            reinterpret_cast<const double*>(lb), lb0, w.rpc, w.acc, w.cmx);
    check(cudaGetLastError(), "sk_col_lse kernel launch");
  });
  const size_t nb = 8 * size_t(w.nch * X.k);
  check(cudaMemcpyAsync(M, w.acc, nb, cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync (M)");
  check(cudaMemcpyAsync(S, w.cmx, nb, cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync (S)");
  check(cudaStreamSynchronize(st), "sk_col_lse (cudaStreamSynchronize)");
}

}  // namespace cuda
}  // namespace ls
