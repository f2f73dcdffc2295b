"""The streaming accumulator on flat rows (issue 15): today's top-8 sketch
against the adaptive one, fed batch by batch from a generator that never
holds the whole dump.

Per sketch: update() throughput, entries and bytes held per row, undecided
rows after one pass (``num_uncertain``, ``to_refine``) in both tie modes,
result() time. With ``--check`` (n small enough to hold the rows) the rows
named by ``refine_ids`` are given back until the result is exact, and that
result is compared with the in-memory ``find_label_issues`` /
``compute_confident_joint``.

    python bench/bench_accumulator.py [--n 128000] [--k 1000] [--batch 4096] [--check]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import labelsift
from labelsift.stream import ConfidentJointAccumulator


def flat_blocks(n, k, block=8192, seed=0, bump=4.45, spread=0.5, noise=0.2):
    """(row0, labels, probs) blocks of flat rows: softmax of bump * onehot(true)
    + spread * N(0, 1) (true-class probability ~7% at K = 1000), labels flipped
    uniformly with probability ``noise`` (the distribution of bench_sketch.flat_dump)."""
    for a in range(0, n, block):
        rng = np.random.default_rng([seed, a])
        b = min(block, n - a)
        true = rng.integers(0, k, b)
        z = rng.standard_normal((b, k), dtype=np.float32) * spread
        z[np.arange(b), true] += bump
        z = np.exp(z - z.max(1, keepdims=True))
        P = z / z.sum(1, keepdims=True)
        y = true.copy()
        flip = rng.random(b) < noise
        y[flip] = (true[flip] + rng.integers(1, k, int(flip.sum()))) % k
        yield a, y, P


def run(name, make, args, keep=None):
    acc = make()
    t_upd = 0.0
    for a, y, P in flat_blocks(args.n, args.k):
        if keep is not None:
            keep[0][a:a + len(y)] = y
            keep[1][a:a + len(y)] = P
        for s in range(0, len(y), args.batch):
            ids = np.arange(a + s, a + min(len(y), s + args.batch))
            t = time.perf_counter()
            acc.update(ids, y[s:s + args.batch], P[s:s + args.batch])
            t_upd += time.perf_counter() - t
    st = acc.stats()
    nbytes = args.n * args.k * 4
    print(f"{name}: update {t_upd:.1f} s ({nbytes / t_upd / 1e9:.2f} GB/s, {args.n / t_upd:,.0f} rows/s), "
          f"entries/row {st['entries_per_row']:.1f} (max {st['max_row_entries']}), "
          f"memory {st['memory_bytes'] / 1e6:.1f} MB = {st['bytes_per_row']:.0f} B/row, level {st['level']:.3g}",
          flush=True)
    out = {}
    for ties in ("lower_index", "cleanlab"):
        t = time.perf_counter()
        r = acc.result(ties=ties)
        dt = time.perf_counter() - t
        out[ties] = r
        print(f"  ties={ties}: undecided {r.num_uncertain} ({r.num_uncertain / args.n * 100:.3f}%), "
              f"to_refine {int(r.to_refine.sum())} ({r.to_refine.mean() * 100:.3f}%), counts_exact "
              f"{r.counts_exact}, result() {dt:.1f} s", flush=True)
    return acc, out


def check(acc, out, y, P):
    """Refine until exact; compare with the in-memory calls."""
    for ties, r in out.items():
        a = ConfidentJointAccumulator.from_state_dict(acc.state_dict())
        rounds = 0
        while not r.exact and rounds < 3:
            ids = r.refine_ids
            a.refine(ids, P[ids])
            r = a.result(ties=ties)
            rounds += 1
        mask = labelsift.find_label_issues(y, P, ties=ties)
        cj = labelsift.compute_confident_joint(y, P, ties=ties)
        ok = r.exact and np.array_equal(r.label_issues, mask) and np.array_equal(r.confident_joint, cj)
        print(f"  check ties={ties}: exact after {rounds} refine round(s), refined {a.stats()['refined_rows']} rows, "
              f"equal to the in-memory result: {ok} ({int(mask.sum())} issues)", flush=True)
        assert ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--check", action="store_true", help="hold the rows, refine to exact, compare with in-memory")
    ap.add_argument("--skip-top-m", action="store_true")
    args = ap.parse_args()
    keep = (np.empty(args.n, np.int64), np.empty((args.n, args.k), np.float32)) if args.check else None
    if not args.skip_top_m:
        acc, out = run("top_m=8 (sketch='top_m', before)", lambda: ConfidentJointAccumulator(args.k, sketch="top_m"),
                       args, keep)
        if args.check:
            check(acc, out, *keep)
        del acc, out
    acc, out = run("adaptive (default: top_m=8, avg_entries=64, max_entries=1024)",
                   lambda: ConfidentJointAccumulator(args.k), args, keep)
    if args.check:
        check(acc, out, *keep)


if __name__ == "__main__":
    main()
