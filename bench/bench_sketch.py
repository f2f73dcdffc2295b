"""The adaptive row sketch (issue 15 groundwork) against today's top-m on a
generated flat dump: time, entries kept per row, certified guesses, and the
rows whose margin bound can still compete for a tail cut.

    python bench/bench_sketch.py [--n 128000] [--k 1000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from labelsift._cl.sketch import sketch_rows, top_m


def flat_dump(n, k, seed=0, bump=4.45, spread=0.5, noise=0.2):
    """Softmax of bump * onehot(true) + spread * N(0, 1); labels flipped uniformly with prob. noise."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    P = np.empty((n, k), np.float32)
    for a in range(0, n, 8192):
        z = rng.standard_normal((min(8192, n - a), k), dtype=np.float32) * spread
        z[np.arange(len(z)), true[a:a + len(z)]] += bump
        z = np.exp(z - z.max(1, keepdims=True))
        P[a:a + len(z)] = z / z.sum(1, keepdims=True)
    y = true.copy()
    flip = rng.random(n) < noise
    y[flip] = (true[flip] + rng.integers(1, k, int(flip.sum()))) % k
    return y, P


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--cut", type=float, default=0.0015, help="margin level counted as competing")
    a = ap.parse_args()
    y, P = flat_dump(a.n, a.k)
    g = P[np.arange(a.n), y]
    t_final = np.bincount(y, weights=g.astype(np.float64), minlength=a.k) / np.bincount(y, minlength=a.k)
    cases = [("top-8 (today)", None, None), ("floors, no margin rule", t_final - 1e-6, np.inf),
             ("floors + tau=0.0007", t_final - 1e-6, 0.0007)]
    for name, floor, tau in cases:
        t = time.perf_counter()
        if tau is None:
            _, _, rest = top_m(P, 8, np.uint16)
            cnt, cert = np.full(a.n, 8), None
        else:
            ptr, _, _, rest, cert, _ = sketch_rows(P, y, 2, 64, floor, tau)
            cnt = np.diff(ptr)
        dt = time.perf_counter() - t
        comp = np.mean((rest - g).astype(np.float64) >= a.cut) * 100
        print(f"{name}: {dt:.2f} s ({P.nbytes / dt / 1e9:.2f} GB/s), entries/row {cnt.mean():.1f} (max {cnt.max()}), "
              f"competing rows {comp:.2f}%" + ("" if cert is None else f", certified {cert.mean() * 100:.1f}%"))


if __name__ == "__main__":
    main()
