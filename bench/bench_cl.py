#!/usr/bin/env python
"""labelsift vs cleanlab 2.9.0 at ImageNet-train size (N=1,281,167 x K=1000 float32).

Usage (from the repository root; ``PYTHONPATH=src/python`` runs an in-place
build, leave it out to run the installed labelsift)::

    PYTHONPATH=src/python python bench/bench_cl.py                 # full size (5.12 GB input)
    PYTHONPATH=src/python python bench/bench_cl.py --n 200000      # quick try
    PYTHONPATH=src/python python bench/bench_cl.py --skip-cleanlab --out bench/results.json

This is the confident-learning case file: the data, the cases, their
comparisons and tables. How everything is measured (a fresh process per
call, extra memory, the read-bandwidth floor, contention and
``--wait-quiet``, the labelsift snapshot and ``--no-snapshot``, the JSON) is
described in ``harness.py``.

1. **Data.** Generates (or reuses) ``bench/data/probs_n{N}_k{K}_s{seed}_{dtype}.npy``
   and the matching labels, written chunk by chunk through a memmap (the
   whole array is never in RAM here). Each row: softmax of logits
   1.5*N(0,1), the true class boosted by N(7, 3) (about 75% top-1
   accuracy), in 30% of rows a "neighbour" class boosted by N(4, 2);
   labels = true class with 10% flipped uniformly to another class. Seeded,
   independent of the chunking.
2. **Cases** (``--funcs``). ``compute_confident_joint``, ``find_label_issues``
   (default and ``filter_by="both"``) and ``get_label_quality_scores``
   (``self_confidence``, ``normalized_margin``): labelsift with the input in
   RAM and as the ``.npy`` path (labelsift memmaps it), cleanlab in RAM
   (``n_jobs=1`` where it has the argument) -- labelsift in its default tie
   rule ``ties="cleanlab"``, which must give cleanlab's results exactly --
   and for the first three also labelsift with ``ties="lower_index"``
   against cleanlab with ``round_preserving_sum``'s ties sent to the lower index
   (``labelsift.reference.round_preserving_sum``, labelsift's documented tie
   rule), to show that every other difference is zero.
   ``find_label_issues_batched``: labelsift on the ``.npy`` path (exact,
   multi-pass) against cleanlab's one-pass ``find_label_issues_batched`` over
   a memmap of the same file, whose results differ by design (running-mean
   thresholds, an argmax-based issue count).
3. **Floor passes.** 2 for ``find_label_issues``, 1 for the others (each
   must read every value to validate it).
4. **Comparisons.** Differing mask rows, confident-joint entries or scores
   between labelsift and each peer, and between labelsift's RAM and memmap
   runs; and labelsift's ``find_label_issues`` given cleanlab's own
   calibrated confident joint, against cleanlab.

cleanlab is run once per call; labelsift is best of ``--repeat`` (default 3)
with its default thread count (all cores).

``--breakdown`` calls labelsift's public functions inside
``labelsift._common.trace.recording()`` (in RAM and memmapped) and reports
each call's whole time and whatever stages its engines record.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import harness
from harness import (Bench, Case, Impl, col_compare, col_desc, col_floor, col_mem, col_over_floor, col_speedup,
                     col_time)

IMAGENET_N = 1_281_167
IMAGENET_K = 1000
PEER = "cleanlab"


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
GEN_CHUNK = 16384  # rows per generation chunk (fixed: the data depends on it only through seeding)


def data_paths(data_dir: Path, n: int, k: int, dtype: str, seed: int):
    stem = f"n{n}_k{k}_s{seed}"
    return (
        data_dir / f"probs_{stem}_{dtype}.npy",
        data_dir / f"labels_{stem}.npy",
        data_dir / f"true_{stem}.npy",
    )


def _gen_chunk(seed: int, ci: int, m: int, k: int, dtype):
    rng = np.random.default_rng([seed, ci])
    true = rng.integers(0, k, m)
    z = rng.standard_normal((m, k), dtype=np.float32)
    z *= np.float32(1.5)
    rows = np.arange(m)
    z[rows, true] += rng.normal(7.0, 3.0, m).astype(np.float32)
    conf = rng.random(m) < 0.3
    neigh = (true + rng.integers(1, 6, m)) % k
    z[rows[conf], neigh[conf]] += rng.normal(4.0, 2.0, int(conf.sum())).astype(np.float32)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    labels = true.copy()
    flip = rng.random(m) < 0.10
    labels[flip] = (true[flip] + rng.integers(1, k, int(flip.sum()))) % k
    return z.astype(dtype, copy=False), labels, true


def ensure_data(data_dir: Path, n: int, k: int, dtype: str, seed: int) -> dict:
    probs_p, labels_p, true_p = data_paths(data_dir, n, k, dtype, seed)
    if probs_p.exists() and labels_p.exists() and true_p.exists():
        a = np.load(probs_p, mmap_mode="r")
        if a.shape == (n, k) and a.dtype == np.dtype(dtype):
            print(f"[data] reusing {probs_p} ({a.nbytes / 1e9:.2f} GB)", flush=True)
            return {"probs": str(probs_p), "labels": str(labels_p), "true": str(true_p), "generated": False}
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = probs_p.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(dtype), shape=(n, k))
    labels = np.empty(n, np.int64)
    true = np.empty(n, np.int64)
    t0 = time.perf_counter()
    nchunks = (n + GEN_CHUNK - 1) // GEN_CHUNK
    for ci in range(nchunks):
        a = ci * GEN_CHUNK
        b = min(n, a + GEN_CHUNK)
        p, y, t = _gen_chunk(seed, ci, b - a, k, dtype)
        out[a:b] = p
        labels[a:b] = y
        true[a:b] = t
        if ci % 10 == 0 or ci == nchunks - 1:
            out.flush()
            print(f"[data] {b}/{n} rows ({time.perf_counter() - t0:.0f} s)", flush=True)
    out.flush()
    del out
    os.replace(tmp, probs_p)
    np.save(labels_p, labels)
    np.save(true_p, true)
    print(f"[data] wrote {probs_p} in {time.perf_counter() - t0:.0f} s", flush=True)
    return {"probs": str(probs_p), "labels": str(labels_p), "true": str(true_p), "generated": True}


def data_stats(paths: dict) -> dict:
    y = np.load(paths["labels"])
    t = np.load(paths["true"])
    p = np.load(paths["probs"], mmap_mode="r")
    # argmax accuracy on a sample (cheap), noise rate on all
    idx = np.arange(0, len(y), max(1, len(y) // 50000))
    pred = np.asarray(p[idx]).argmax(axis=1)
    return {
        "n": int(p.shape[0]),
        "k": int(p.shape[1]),
        "dtype": str(p.dtype),
        "bytes": int(p.nbytes),
        "noise_rate": float(np.mean(y != t)),
        "top1_acc_vs_true_sample": float(np.mean(pred == t[idx])),
        "mean_given_prob_sample": float(np.mean(np.asarray(p[idx])[np.arange(len(idx)), y[idx]])),
    }


# ---------------------------------------------------------------------------
# What the workers run (module-level: they look these up by name)
# ---------------------------------------------------------------------------
def load_inputs(inputs: dict, mode: str) -> tuple:
    """(labels, probs): probs loaded fully into RAM, or for "mmap" the .npy path itself."""
    labels = np.load(inputs["labels"])
    return labels, (np.load(inputs["probs"]) if mode == "ram" else inputs["probs"])


def import_labelsift() -> None:
    import labelsift  # noqa: F401  (import cost counts in the baseline, not in the call)


def import_cleanlab() -> None:
    import cleanlab.count  # noqa: F401
    import cleanlab.experimental.label_issues_batched  # noqa: F401
    import cleanlab.filter  # noqa: F401
    import cleanlab.rank  # noqa: F401


def cleanlab_lower_ties() -> None:
    """cleanlab with one change: equal rounding residuals go to the lower
    index (labelsift's documented tie rule)."""
    import_cleanlab()
    import cleanlab.internal.util as cl_util
    from labelsift.reference import round_preserving_sum

    cl_util.round_preserving_sum = round_preserving_sum


def ls_confident_joint(labels, probs, **kw):
    import labelsift

    return labelsift.compute_confident_joint(labels, probs, **kw)


def ls_find_label_issues(labels, probs, **kw):
    import labelsift

    return labelsift.find_label_issues(labels, probs, **kw)


def ls_quality(labels, probs, method):
    import labelsift

    return labelsift.get_label_quality_scores(labels, probs, method=method)


def ls_given_cj(labels, probs, filter_by, cj_path):
    """find_label_issues with a given (cleanlab's calibrated) confident joint."""
    import labelsift

    return labelsift.find_label_issues(labels, probs, filter_by=filter_by, confident_joint=np.load(cj_path))


def cl_confident_joint(labels, probs):
    from cleanlab import count

    return count.compute_confident_joint(labels, probs)


def cl_find_label_issues(labels, probs, **kw):
    from cleanlab import filter

    return filter.find_label_issues(labels, probs, n_jobs=1, **kw)


def cl_quality(labels, probs, method):
    from cleanlab import rank

    return rank.get_label_quality_scores(labels, probs, method=method)


def cl_batched(labels, probs_path):
    from cleanlab.experimental.label_issues_batched import find_label_issues_batched

    return find_label_issues_batched(labels=labels, pred_probs=np.load(probs_path, mmap_mode="r"),
                                     n_jobs=1, verbose=False, return_mask=True)


# ---------------------------------------------------------------------------
# Comparisons (of two saved results, in the parent)
# ---------------------------------------------------------------------------
def _load_pair(a_path: str, b_path: str):
    a, b = np.load(a_path), np.load(b_path)
    return a, b, (None if a.shape == b.shape else {"equal": False, "detail": f"shapes {a.shape} vs {b.shape}"})


def compare_joint(a_path: str, b_path: str) -> dict:
    """Two confident joints: how many entries differ, by how much in all."""
    a, b, bad = _load_pair(a_path, b_path)
    if bad:
        return bad
    d = a.astype(np.int64) - b.astype(np.int64)
    return {"equal": bool((d == 0).all()), "diff_entries": int(np.count_nonzero(d)),
            "sum_abs_diff": int(np.abs(d).sum()), "total": int(b.sum()), "entries": int(d.size)}


def compare_rows(a_path: str, b_path: str) -> dict:
    """Two masks (differing rows, flagged counts) or two score vectors (differing rows, max |difference|)."""
    a, b, bad = _load_pair(a_path, b_path)
    if bad:
        return bad
    if a.dtype == bool:
        return {"equal": bool((a == b).all()), "diff_rows": int(np.count_nonzero(a != b)),
                "flagged_labelsift": int(a.sum()), "flagged_cleanlab": int(b.sum())}
    neq = a != b
    return {"equal": bool(not neq.any()), "diff_rows": int(np.count_nonzero(neq)),
            "max_abs_diff": float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))),
            "dtype_labelsift": str(a.dtype), "dtype_cleanlab": str(b.dtype)}


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------
TIE_PEER = "cleanlab_lower_ties_ram"
LOWER = "labelsift_lower_index_ram"  # the same call with ties="lower_index"
COMPARISONS = [("compare_ram_vs_mmap", "labelsift_ram", "labelsift_mmap"),
               ("compare", "labelsift_ram", "cleanlab_ram"),
               ("compare_lower_ties", LOWER, TIE_PEER)]


def _case(name, desc, passes, ours, peer, compare, tie_check=False, **kw) -> Case:
    """labelsift (default ties="cleanlab") in RAM and memmapped against
    cleanlab in RAM; with `tie_check` also labelsift with ties="lower_index"
    against cleanlab with lower-index rounding ties. `kw` go to both."""
    impls = [Impl("labelsift_ram", ours, "ram", kw, import_labelsift, labelsift=True),
             Impl("labelsift_mmap", ours, "mmap", kw, import_labelsift, labelsift=True),
             Impl("cleanlab_ram", peer, "ram", kw, import_cleanlab)]
    if tie_check:
        impls.append(Impl(LOWER, ours, "ram", {**kw, "ties": "lower_index"}, import_labelsift, labelsift=True))
        impls.append(Impl(TIE_PEER, peer, "ram", kw, cleanlab_lower_ties))
    return Case(name, desc, passes, impls, compare, COMPARISONS)


def all_cases() -> dict[str, Case]:
    cases = [
        _case("compute_confident_joint", "count.compute_confident_joint", 1,
              ls_confident_joint, cl_confident_joint, compare_joint, tie_check=True),
        _case("find_label_issues", "filter.find_label_issues (prune_by_noise_rate)", 2,
              ls_find_label_issues, cl_find_label_issues, compare_rows, tie_check=True),
        _case("find_label_issues_both", 'filter.find_label_issues(filter_by="both")', 2,
              ls_find_label_issues, cl_find_label_issues, compare_rows, tie_check=True, filter_by="both"),
        _case("quality_self_confidence", 'rank.get_label_quality_scores("self_confidence")', 1,
              ls_quality, cl_quality, compare_rows, method="self_confidence"),
        _case("quality_normalized_margin", 'rank.get_label_quality_scores("normalized_margin")', 1,
              ls_quality, cl_quality, compare_rows, method="normalized_margin"),
        # A dump on disk: labelsift reads the .npy path (exact, multi-pass);
        # cleanlab's one-pass batched variant reads a memmap of the same file.
        Case("find_label_issues_batched", "cleanlab find_label_issues_batched vs labelsift on the .npy path", 2,
             [Impl("labelsift_mmap", ls_find_label_issues, "mmap", setup=import_labelsift, labelsift=True),
              Impl("cleanlab_batched_mmap", cl_batched, "mmap", setup=import_cleanlab)],
             compare_rows, [("compare_batched", "labelsift_mmap", "cleanlab_batched_mmap")]),
    ]
    return {c.name: c for c in cases}


def run_given_cleanlab_cj(bench: Bench) -> None:
    """Isolate the effect of the confident joint's calibration: labelsift's
    find_label_issues given cleanlab's own calibrated confident joint."""
    runs = bench.results["runs"]
    cl_cj = runs.get("compute_confident_joint", {}).get("cleanlab_ram", {})
    if not cl_cj.get("ok"):
        return
    for name, fb in (("find_label_issues", "prune_by_noise_rate"), ("find_label_issues_both", "both")):
        cl = runs.get(name, {}).get("cleanlab_ram", {})
        if not cl.get("ok"):
            continue
        impl = Impl("labelsift_given_cleanlab_cj", ls_given_cj, "ram", {"filter_by": fb, "cj_path": cl_cj["save"]},
                    import_labelsift, labelsift=True)
        print(f"[{name}] labelsift given cleanlab's confident_joint ...", flush=True)
        r = bench.measure(name, impl, repeat=1)
        if r.get("ok"):
            r["compare"] = compare_rows(r["save"], cl["save"])
            print(f"[{name}] labelsift(confident_joint=cleanlab's) vs cleanlab: {r['compare']}", flush=True)
        bench.record(name, impl.key, r)


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------
def _diff_cell(cmp_: dict, case: Case) -> str:
    if not cmp_:
        return "—"
    if "diff_rows" in cmp_:
        return str(cmp_["diff_rows"])
    if "diff_entries" in cmp_:
        return f"{cmp_['diff_entries']} of {cmp_['entries']} entries"
    return cmp_.get("detail", "?")


MAIN_COLUMNS = [
    col_desc(),
    col_time("labelsift_ram", "labelsift RAM (s)"),
    col_time("labelsift_mmap", "labelsift .npy memmap (s)"),
    col_time(LOWER, "labelsift RAM, ties=lower_index (s)"),
    col_time("cleanlab_ram", "cleanlab (s)"),
    col_speedup("labelsift_ram", "cleanlab_ram", "speedup (RAM)"),
    col_mem("labelsift_ram", "extra_hwm", "labelsift extra mem, RAM"),
    col_mem("labelsift_mmap", "extra_anon", "labelsift extra anon mem, memmap"),
    col_mem("cleanlab_ram", "extra_hwm", "cleanlab extra mem"),
    col_floor(),
    col_over_floor("labelsift_ram", "labelsift RAM / floor"),
    col_compare("compare", "rows differing vs cleanlab", _diff_cell),
]

# labelsift against the two other peers
PEER_PAIRS = [
    (LOWER, TIE_PEER, "compare_lower_ties",
     'labelsift ties="lower_index" vs cleanlab 2.9.0 with rounding ties to the lower index (RAM)'),
    ("labelsift_mmap", "cleanlab_batched_mmap", "compare_batched",
     "cleanlab `find_label_issues_batched` (memmap; approximate by design)"),
]


def tables(bench: Bench) -> list[str]:
    main_cases = [c for c in bench.cases if c.name != "find_label_issues_batched"]
    return [bench.case_table(MAIN_COLUMNS, main_cases),
            bench.pair_table(PEER_PAIRS, lambda c: str(c.get("diff_rows", c.get("diff_entries", "?"))))]


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    names = list(all_cases())
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=IMAGENET_N, help="rows (default: ImageNet train, 1,281,167)")
    ap.add_argument("--k", type=int, default=IMAGENET_K, help="classes (default 1000)")
    ap.add_argument("--dtype", default="float32", choices=["float16", "float32", "float64"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--funcs", default=",".join(names), help="comma-separated subset of: " + ",".join(names))
    harness.add_args(ap, PEER)
    args = ap.parse_args(argv)
    funcs = [f for f in args.funcs.split(",") if f]
    for f in funcs:
        if f not in names:
            ap.error(f"unknown function {f!r}")
    return args, funcs


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args, funcs = parse_args(argv)
    settings = harness.settings_from_args(args, PEER)
    paths = ensure_data(settings.data_dir, args.n, args.k, args.dtype, args.seed)
    stats = data_stats(paths)
    print(f"[data] {json.dumps(stats)}", flush=True)
    bench = Bench(settings, __file__, load_inputs, {"labels": paths["labels"], "probs": paths["probs"]},
                  floor_input=paths["probs"], tag=f"n{args.n}_k{args.k}_{args.dtype}", peers=(PEER,))
    if not bench.start(argv, vars(args), {**stats, **paths}):
        return 1
    cases = all_cases()
    for f in funcs:
        bench.run_case(cases[f])
    run_given_cleanlab_cj(bench)
    if settings.breakdown:
        bench.stages([(c.name, i) for c in bench.cases for i in c.impls if i.key == "labelsift_ram"])
    bench.finish()
    bench.report(tables(bench), f"N={stats['n']:,} K={stats['k']} {stats['dtype']} ({stats['bytes'] / 1e9:.2f} GB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
