#!/usr/bin/env python
"""Large calls with either OpenMP runtime loaded first.

scikit-learn's wheels carry their own libgomp; importing cleanlab (which
imports scikit-learn) before labelsift puts that copy in the process beside
the system libgomp labelsift links.  This benchmark times one large call
(find_label_issues and compute_confident_joint on N x K float32) in fresh
processes in three orders:

* ``labelsift-only``: labelsift imported, nothing else;
* ``cleanlab-first``: cleanlab (and so scikit-learn's OpenMP runtime)
  imported first, then labelsift;
* ``sklearn-pool-warm``: as cleanlab-first, and scikit-learn's OpenMP pool
  used just before each call (its threads may still be spinning), the worst
  case of sharing the cores with the other runtime.

Usage: ``python bench/bench_omp_runtimes.py [--n 200000] [--k 1000] [--repeat 5]``.
Reported: the median time per call in each order and its ratio to
labelsift-only (target: within 10%), with the CPU named.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

CHILD = r"""
import sys, time, json
order, n, k, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if order != "labelsift-only":
    import cleanlab.filter  # noqa: F401  (scikit-learn's libgomp loaded first)
import numpy as np
import labelsift
warm = None
if order == "sklearn-pool-warm":
    from sklearn.metrics import pairwise_distances_argmin_min
    xa = np.random.default_rng(1).random((4000, 32))
    warm = lambda: pairwise_distances_argmin_min(xa, xa[:500])
rng = np.random.default_rng(0)
p = rng.random((n, k), dtype=np.float32) ** 8
p /= p.sum(1, keepdims=True)
y = np.where(rng.random(n) < 0.8, p.argmax(1), rng.integers(0, k, n)).astype(np.int64)
out = {}
for name, f in (("find_label_issues", lambda: labelsift.find_label_issues(y, p)),
                ("compute_confident_joint", lambda: labelsift.compute_confident_joint(y, p))):
    f()
    ts = []
    for _ in range(repeat):
        if warm:
            warm()
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    out[name] = sorted(ts)[len(ts) // 2]
libs = [l.split()[-1] for l in open("/proc/self/maps") if "gomp" in l or "libomp" in l]
out["openmp_libraries"] = sorted(set(libs))
print(json.dumps(out))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of the three orders")
    ap.add_argument("--out", help="JSON file for the results")
    a = ap.parse_args(argv)
    orders = ["labelsift-only", "cleanlab-first", "sklearn-pool-warm"]
    res = {o: [] for o in orders}
    libs = {}
    for _ in range(a.rounds):
        for o in orders:
            r = subprocess.run([sys.executable, "-c", CHILD, o, str(a.n), str(a.k), str(a.repeat)],
                               check=True, capture_output=True, text=True)
            d = json.loads(r.stdout.strip().splitlines()[-1])
            libs[o] = d.pop("openmp_libraries")
            res[o].append(d)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor())
    print(f"CPU: {cpu}; N={a.n} K={a.k} float32; median of {a.repeat} calls, best of {a.rounds} rounds")
    print("| order | OpenMP runtimes in the process | find_label_issues (s) | compute_confident_joint (s) |")
    print("|---|---|---|---|")
    summary = {}
    for o in orders:
        best = {f: min(r[f] for r in res[o]) for f in res[o][0]}
        summary[o] = best
        base = summary["labelsift-only"]
        cells = [f"{best[f]:.3f} ({best[f] / base[f]:.2f}x)" for f in best]
        print(f"| {o} | {', '.join(x.rsplit('/', 1)[-1] for x in libs[o])} | " + " | ".join(cells) + " |")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump({"cpu": cpu, "n": a.n, "k": a.k, "results": summary, "libraries": libs}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
