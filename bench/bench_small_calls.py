#!/usr/bin/env python
"""Latency of small calls (the real 10k-row dumps) on an idle and on a busy machine.

Usage (from the repository root, labelsift installed)::

    python bench/bench_small_calls.py --out bench/results_small_calls.json

For each dump (the embedded CIFAR-10 test set; MNIST when
``tests/data/mnist_*.npy`` is there) and each call (find_label_issues,
compute_confident_joint, get_label_quality_scores), it times labelsift and
cleanlab 2.9.0 call by call in this process -- cleanlab imported first, so
scikit-learn's own OpenMP runtime is loaded before labelsift's -- in two
conditions:

* idle: nothing else running;
* busy: a separate process spinning on one core for the whole measurement
  (the situation where a parallel region waits for a descheduled thread).

Reported: median and 95th percentile per call, and labelsift's speed-up over
cleanlab at both (target: >= 5x). The CPU is named in the output.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import cleanlab.count  # noqa: F401  (first: its OpenMP runtime is loaded before labelsift's)
import cleanlab.filter
import cleanlab.rank

import labelsift
from labelsift.datasets import cifar10_test

ROOT = Path(__file__).resolve().parents[1]


def _spin(stop):
    x = 0
    while not stop.is_set():
        for _ in range(10000):
            x += 1


def _dumps():
    d = cifar10_test()
    yield "cifar10", d.labels, d.pred_probs
    m = ROOT / "tests" / "data"
    if (m / "mnist_pred_probs.npy").exists():
        yield "mnist", np.load(m / "mnist_labels.npy"), np.load(m / "mnist_pred_probs.npy")


def _calls(y, p):
    return {
        "find_label_issues": (lambda: labelsift.find_label_issues(y, p),
                              lambda: cleanlab.filter.find_label_issues(y, p, n_jobs=1)),
        "compute_confident_joint": (lambda: labelsift.compute_confident_joint(y, p),
                                    lambda: cleanlab.count.compute_confident_joint(y, p)),
        "get_label_quality_scores": (lambda: labelsift.get_label_quality_scores(y, p),
                                     lambda: cleanlab.rank.get_label_quality_scores(y, p)),
    }


def _times(fn, repeat):
    fn()  # warm up
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return np.array(out)


def _stats(t):
    return {"median_ms": 1e3 * float(np.median(t)), "p95_ms": 1e3 * float(np.percentile(t, 95))}


def measure(repeat: int, peer_repeat: int, busy: bool) -> dict:
    stop = mp.Event()
    spinner = mp.Process(target=_spin, args=(stop,), daemon=True) if busy else None
    if spinner:
        spinner.start()
        time.sleep(0.5)
    res = {}
    try:
        for name, y, p in _dumps():
            for call, (ours, peer) in _calls(y, p).items():
                a, b = _stats(_times(ours, repeat)), _stats(_times(peer, peer_repeat))
                res[f"{name}/{call}"] = {
                    "labelsift": a, "cleanlab": b,
                    "speedup_median": b["median_ms"] / a["median_ms"], "speedup_p95": b["p95_ms"] / a["p95_ms"],
                }
    finally:
        if spinner:
            stop.set()
            spinner.join(5)
    return res


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=300, help="labelsift calls per case")
    ap.add_argument("--peer-repeat", type=int, default=30, help="cleanlab calls per case")
    ap.add_argument("--out", default=None, help="JSON file for the results")
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    out = {"cpu": _cpu(), "cores": mp.cpu_count(), "numpy": np.__version__, "labelsift": labelsift.__version__,
           "idle": measure(a.repeat, a.peer_repeat, False), "busy": measure(a.repeat, a.peer_repeat, True)}
    print(f"CPU: {out['cpu']} ({out['cores']} cores)")
    print("| condition | dump/call | labelsift median / p95 (ms) | cleanlab median / p95 (ms) | speed-up median / p95 |")
    print("|---|---|---|---|---|")
    for cond in ("idle", "busy"):
        for key, r in out[cond].items():
            a_, b_ = r["labelsift"], r["cleanlab"]
            print(f"| {cond} | {key} | {a_['median_ms']:.2f} / {a_['p95_ms']:.2f} | {b_['median_ms']:.1f} / "
                  f"{b_['p95_ms']:.1f} | {r['speedup_median']:.1f}x / {r['speedup_p95']:.1f}x |")
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
