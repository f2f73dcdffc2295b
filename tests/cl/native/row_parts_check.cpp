// The GPU's warp-per-row sweep, emulated on the host: 32 "lanes" each run
// RowOps<S>::sweep_row_part over every 32nd class, the parts are merged in
// the order of the kernel's xor butterfly (cl/kernels.cu, rows_warp_k) with
// RowOps::combine, and RowOps::finish derives the row's results. They must
// equal RowOps<S>::row (the scalar definition) on every row: guess, argmax,
// keep, max_other, and the validation code and column. Prints the number of
// rows checked and mismatches; exits 1 on any mismatch.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cl/row_math.h"

using namespace ls;

template <class S>
S to_s(double v);
template <>
float to_s<float>(double v) { return float(v); }
template <>
double to_s<double>(double v) { return v; }
template <>
half_t to_s<half_t>(double v) { return half_t{float_to_half(float(v))}; }

template <class S, class C>
static long check(std::mt19937_64& rng, int64_t K, int64_t stride, int rows, const char* name, long& mism) {
  using Ops = RowOps<S>;
  std::vector<S> buf(static_cast<size_t>(K * stride));
  std::vector<C> cut(static_cast<size_t>(K));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::uniform_int_distribution<int> pick(0, 9);
  long n = 0;
  for (int r = 0; r < rows; ++r) {
    const int mode = pick(rng);
    std::vector<double> v(static_cast<size_t>(K));
    double s = 0;
    for (int64_t k = 0; k < K; ++k) {
      // mode 0-2: sixteenths (ties everywhere); else smooth
      v[k] = mode < 3 ? double(std::uniform_int_distribution<int>(0, 3)(rng)) : u(rng) * u(rng);
      s += v[k];
    }
    if (s == 0) { v[0] = 1; s = 1; }
    for (int64_t k = 0; k < K; ++k) v[k] /= s;
    if (mode == 3) v[std::uniform_int_distribution<int64_t>(0, K - 1)(rng)] = NAN;
    if (mode == 4) v[std::uniform_int_distribution<int64_t>(0, K - 1)(rng)] = -0.25;
    if (mode == 5 && K > 1) v[std::uniform_int_distribution<int64_t>(0, K - 1)(rng)] = INFINITY;
    for (int64_t k = 0; k < K; ++k) buf[size_t(k * stride)] = to_s<S>(v[k]);
    for (int64_t k = 0; k < K; ++k) {
      // thresholds near the values: several classes pass, or one, or none
      const double t = mode == 6 ? 2.0 : (mode == 7 ? 1.0 / double(K) : u(rng) * 1.5 / double(K));
      cut[k] = C(t);
    }
    const int64_t y = std::uniform_int_distribution<int64_t>(0, K - 1)(rng);
    const Bounds bd{-1e-6, 1.0 + 1e-4, sizeof(S) == 2 ? 1e-2 : 1e-3};
    const bool with_cut = (r % 4) != 0;
    const C* cp = with_cut ? cut.data() : nullptr;
    const RowResult want = Ops::template row<C>(buf.data(), stride, K, y, cp, bd);
    typename Ops::Seg lane[32];
    for (int l = 0; l < 32; ++l)
      lane[l] = Ops::template sweep_row_part<C>(buf.data(), stride, l, 32, int32_t(K), int32_t(y), cp);
    for (int m = 16; m > 0; m >>= 1) {
      typename Ops::Seg next[32];
      for (int l = 0; l < 32; ++l) next[l] = Ops::combine(lane[l], lane[l ^ m]);
      for (int l = 0; l < 32; ++l) lane[l] = next[l];
    }
    RowResult got = Ops::template finish<C>(buf.data(), stride, K, y, cp, bd, lane[0]);
    if (got.err == ROW_OK && want.err != ROW_OK) got.err = -1;  // (reported below)
    bool ok = got.err == want.err && got.err_col == want.err_col;
    if (ok && want.err == ROW_OK)
      ok = got.guess == want.guess && got.argmax == want.argmax && got.keep == want.keep &&
           got.max_other == want.max_other;
    ++n;
    if (!ok) {
      if (mism < 10)
        std::printf("MISMATCH %s K=%lld y=%lld mode=%d: guess %d/%d argmax %d/%d keep %d/%d err %d/%d col %lld/%lld\n",
                    name, (long long)K, (long long)y, mode, got.guess, want.guess, got.argmax, want.argmax,
                    got.keep, want.keep, got.err, want.err, (long long)got.err_col, (long long)want.err_col);
      ++mism;
    }
  }
  return n;
}

int main() {
  std::mt19937_64 rng(12345);
  long mism = 0, n = 0;
  const int64_t Ks[] = {1, 2, 3, 17, 31, 32, 33, 64, 100, 1000, 1025};
  for (int64_t K : Ks) {
    for (int64_t stride : {1, 3}) {
      n += check<float, float>(rng, K, stride, 400, "float32", mism);
      n += check<double, double>(rng, K, stride, 400, "float64", mism);
      n += check<half_t, float>(rng, K, stride, 400, "float16", mism);
    }
  }
  std::printf("rows %ld mismatches %ld\n", n, mism);
  return mism == 0 ? 0 : 1;
}
