// Per-element math of the multi-label (one-vs-rest) reduction, shared by the
// sweeps: for class c of row i the binary problem's row is [q, p] with
// p = P[i, c] and q = 1 - p rounded in the input dtype (cleanlab's
// stack_complement), and the given binary label is y = (c in labels[i]).
#pragma once

#include <cstdint>

#include "common/dtype.h"

namespace ls {
namespace ml {

// The selection keys (larger = selected first) of the prune methods.
enum KeyMethod : int { KEY_NOISE_RATE = 0, KEY_BY_CLASS = 1 };
// The per-class score methods of the score sweep (multilabel/scores.cpp).
enum ScoreMethod : int { SCORE_SELF_CONFIDENCE = 0, SCORE_NORMALIZED_MARGIN = 1 };

template <class S>
struct Bin {
  using N_ = Num<S>;
  using V = typename N_::V;
  V p, q;
  LS_HD explicit Bin(S raw) : p(N_::load(raw)), q(N_::rnd(V(1) - N_::load(raw))) {}

  // confident guess: -1 none, 0/1 the single class above its cut, else the
  // argmax of [q, p] (first index wins ties)
  LS_HD int guess(double cut0, double cut1) const {
    const bool a0 = double(q) >= cut0, a1 = double(p) >= cut1;
    if (a0 && a1) return p > q ? 1 : 0;
    return a1 ? 1 : (a0 ? 0 : -1);
  }
  // the final unflagging test: the given label stays the argmax after
  // adding 1e-6 to it (in the dtype). Both sides computed and selected, so a
  // loop over classes if-converts and vectorises.
  LS_HD bool keep(int y) const {
    const V eps = N_::from_double(1e-6);
    const int k1 = int(N_::rnd(p + eps) > q), k0 = int(N_::rnd(q + eps) >= p);
    return ((k1 & y) | (k0 & (y ^ 1))) != 0;
  }
  LS_HD int argmax() const { return p > q ? 1 : 0; }
  // the binary problem's label quality score of side y in the dtype: the
  // self-confidence P[:, y], or the normalized margin
  // (P[:, y] - P[:, other] + 1) / 2 (cleanlab's, each operation rounded)
  LS_HD V self_conf(int y) const { return y ? p : q; }
  LS_HD V norm_margin(int y) const {
    const V d = y ? N_::rnd(p - q) : N_::rnd(q - p);
    return N_::rnd(N_::rnd(d + V(1)) / V(2));
  }
  // prune key of the row's side y: margin P[:, other] - P[:, y] (noise rate)
  // or -P[:, y] (by class), exact in the value type V (and so in double);
  // selects, not branches
  LS_HD V key_v(int method, int y) const {
    // (rounding is sign-symmetric: rnd(p - q) == -rnd(q - p))
    const V d = N_::rnd(q - p);
    const V kn = y ? d : -d, kc = y ? -p : -q;
    return method == KEY_NOISE_RATE ? kn : kc;
  }
  LS_HD double key(int method, int y) const { return double(key_v(method, y)); }
};

constexpr int kBuckets = 4096;
// Bucket of a key in [-1, 1]: (key + 1) * kBuckets / 2 computed in the key's
// own type V (float for float32/float16 rows, so the sweeps keep float lanes),
// clamped to [0, kBuckets - 1] (NaN -> 0) and truncated. Rounding is monotone,
// so the bucket never decreases as the key grows -- all the selection needs
// (keys in the cut bucket are compared exactly); both sweeps use this one
// function.
template <class V>
LS_HD int bucket(V key) {
  V b = key * V(kBuckets / 2) + V(kBuckets / 2);
  b = b > V(0) ? b : V(0);  // NaN -> 0
  b = b < V(kBuckets - 1) ? b : V(kBuckets - 1);
  return int(b);
}

}  // namespace ml
}  // namespace ls
