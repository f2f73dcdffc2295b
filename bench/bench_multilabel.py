#!/usr/bin/env python
"""labelsift vs cleanlab 2.9.0, multi-label confident learning (default N=1,000,000 x K=100 float32).

Usage (from the repository root; ``PYTHONPATH=src/python`` runs an in-place
build, leave it out to run the installed labelsift)::

    python bench/bench_multilabel.py                      # 1M x 100 (0.4 GB input)
    python bench/bench_multilabel.py --n 200000 --repeat 3
    python bench/bench_multilabel.py --skip-cleanlab --breakdown

How everything is measured (a fresh process per call, extra memory, the
read-bandwidth floor, contention, the labelsift snapshot, the JSON) is
described in ``harness.py``.

1. **Data.** ``bench/data/ml_probs_n{N}_k{K}_s{seed}.npy`` and the given
   labels as a CSR ``.npz`` (indptr, indices), generated in chunks. True
   labels: class c present with probability ~ 1/(c+1)^0.7 (about 2.5 labels
   a row, a long tail); P[i, c] ~ Beta(6, 1.8) where c is truly present,
   Beta(0.6, 12) where not. Given labels: in 10% of the rows one label is
   dropped or one added/removed at random (so about 10% of the rows are
   wrong, not nearly all rows flagged). Both sides get the labels as a list
   of per-example lists (cleanlab's format), built by the loader, untimed.
2. **Cases.** ``find_label_issues`` (default: prune_by_noise_rate) from
   ``multilabel_classification.filter`` and ``get_label_quality_scores``
   (self_confidence, EMA alpha 0.8) from ``multilabel_classification.rank``;
   cleanlab with ``n_jobs=1`` where it takes the argument (its default
   would spawn processes); labelsift with its default threads.
3. **Floor passes.** 3 for ``find_label_issues`` (thresholds, joints,
   selection), 1 for the scores.
4. **Comparisons.** Differing mask rows; for the scores the number of
   differing values and the largest absolute difference.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import Bench, Case, Impl  # noqa: E402

PEER = "cleanlab"
GEN_CHUNK = 16384


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def gen_chunk(seed: int, ci: int, m: int, k: int):
    """(P chunk float32 m x k, given labels m x k bool, true labels m x k bool)."""
    rng = np.random.default_rng([seed, ci])
    freq = 1.0 / np.arange(1, k + 1) ** 0.7
    freq *= min(2.5, 0.5 * k) / freq.sum()
    true = rng.random((m, k)) < freq
    p = rng.beta(0.6, 12.0, (m, k)).astype(np.float32)
    pos = rng.beta(6.0, 1.8, (m, k)).astype(np.float32)
    p[true] = pos[true]
    given = true.copy()
    for i in np.flatnonzero(rng.random(m) < 0.10):
        if given[i].any() and rng.random() < 0.5:
            given[i, rng.choice(np.flatnonzero(given[i]))] = False
        else:
            given[i, rng.integers(k)] ^= True
    return p, given, true


def ensure_data(data_dir: Path, n: int, k: int, seed: int) -> dict:
    data_dir.mkdir(parents=True, exist_ok=True)
    stem = f"n{n}_k{k}_s{seed}"
    probs_p, labels_p = data_dir / f"ml_probs_{stem}.npy", data_dir / f"ml_labels_{stem}.npz"
    if probs_p.exists() and labels_p.exists():
        print(f"[data] reusing {probs_p}", flush=True)
        return {"probs": str(probs_p), "labels": str(labels_p), "generated": False}
    tmp = probs_p.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, k))
    lens, idx, noisy_rows = [], [], 0
    for ci, a in enumerate(range(0, n, GEN_CHUNK)):
        b = min(n, a + GEN_CHUNK)
        p, given, true = gen_chunk(seed, ci, b - a, k)
        out[a:b] = p
        r, c = np.nonzero(given)
        lens.append(np.bincount(r, minlength=b - a))
        idx.append(c.astype(np.int32))
        noisy_rows += int((given != true).any(axis=1).sum())
    out.flush()
    del out
    tmp.rename(probs_p)
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(lens))]).astype(np.int64)
    np.savez(labels_p, indptr=indptr, indices=np.concatenate(idx), noisy_rows=noisy_rows)
    return {"probs": str(probs_p), "labels": str(labels_p), "generated": True}


def data_stats(paths: dict) -> dict:
    z = np.load(paths["labels"])
    p = np.load(paths["probs"], mmap_mode="r")
    n = p.shape[0]
    return {"n": int(n), "k": int(p.shape[1]), "dtype": str(p.dtype), "bytes": int(p.nbytes),
            "labels_per_row": float(len(z["indices"]) / n), "noisy_rows_frac": float(z["noisy_rows"]) / n}


# ---------------------------------------------------------------------------
# What the workers run (module-level: they look these up by name)
# ---------------------------------------------------------------------------
def load_inputs(inputs: dict, mode: str) -> tuple:
    z = np.load(inputs["labels"])
    ip, ix = z["indptr"], z["indices"].tolist()
    labels = [ix[a:b] for a, b in zip(ip[:-1].tolist(), ip[1:].tolist())]
    return labels, np.load(inputs["probs"])


def import_labelsift() -> None:
    import labelsift.multilabel_classification  # noqa: F401


def import_cleanlab() -> None:
    import cleanlab.multilabel_classification.filter  # noqa: F401
    import cleanlab.multilabel_classification.rank  # noqa: F401


def ls_find(labels, pred_probs):
    from labelsift.multilabel_classification import filter as f
    return f.find_label_issues(labels, pred_probs)


def cl_find(labels, pred_probs):
    from cleanlab.multilabel_classification import filter as f
    return f.find_label_issues(labels, pred_probs, n_jobs=1)


def ls_scores(labels, pred_probs):
    from labelsift.multilabel_classification import rank
    return rank.get_label_quality_scores(labels, pred_probs)


def cl_scores(labels, pred_probs):
    from cleanlab.multilabel_classification import rank
    return rank.get_label_quality_scores(labels, pred_probs)


def compare(a_path: str, b_path: str) -> dict:
    a, b = np.load(a_path), np.load(b_path)
    if a.dtype == bool:
        return {"differ": int(np.sum(a != b)), "flagged_a": int(a.sum()), "flagged_b": int(b.sum())}
    return {"differ": int(np.sum(a != b)), "max_abs_diff": float(np.max(np.abs(a - b))) if len(a) else 0.0}


def all_cases() -> dict:
    def case(name, desc, passes, ls, cl):
        return Case(name, desc, passes,
                    [Impl("labelsift", ls, "ram", {}, import_labelsift, labelsift=True),
                     Impl("cleanlab", cl, "ram", {}, import_cleanlab)],
                    compare, [("vs_cleanlab", "labelsift", "cleanlab")])
    return {"find_label_issues": case("find_label_issues", "filter.find_label_issues (prune_by_noise_rate)", 3,
                                      ls_find, cl_find),
            "get_label_quality_scores": case("get_label_quality_scores",
                                             "rank.get_label_quality_scores (self_confidence, EMA)", 1,
                                             ls_scores, cl_scores)}


def _fmt_cmp(r: dict, c: Case) -> str:
    if "differ" not in r:
        return "—"
    if "flagged_a" in r:
        return f"{r['differ']} rows (flagged {r['flagged_a']} / {r['flagged_b']})"
    return f"{r['differ']} values (max |diff| {r['max_abs_diff']:.2g})"


def tables(bench: Bench) -> list[str]:
    cols = [harness.col_desc(), harness.col_time("labelsift", "labelsift (s)"),
            harness.col_time("cleanlab", "cleanlab n_jobs=1 (s)"),
            harness.col_speedup("labelsift", "cleanlab", "speedup"),
            harness.col_mem("labelsift", "extra_anon", "labelsift extra anon"),
            harness.col_mem("labelsift", "extra_hwm", "labelsift extra VmHWM"),
            harness.col_mem("cleanlab", "extra_anon", "cleanlab extra anon"),
            harness.col_compare("vs_cleanlab", "differing vs cleanlab", _fmt_cmp),
            harness.col_floor(), harness.col_over_floor("labelsift", "labelsift / floor")]
    return [bench.case_table(cols)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = harness.case_parser(__doc__, list(all_cases()), PEER, {"n": 1_000_000, "k": 100})
    args = ap.parse_args(argv)
    settings = harness.settings_from_args(args, PEER)
    paths = ensure_data(settings.data_dir, args.n, args.k, args.seed)
    data = {**paths, **data_stats(paths)}
    print(f"[data] {json.dumps(data)}", flush=True)
    bench = Bench(settings, __file__, load_inputs, {"probs": paths["probs"], "labels": paths["labels"]},
                  floor_input=paths["probs"], tag=f"ml_n{args.n}_k{args.k}", peers=(PEER,))
    if not bench.start(argv, vars(args), data):
        return 1
    cases = all_cases()
    harness.run_selected(bench, ap, cases, args.funcs)
    if settings.breakdown:
        bench.stages([("find_label_issues", cases["find_label_issues"].impls[0]),
                      ("get_label_quality_scores", cases["get_label_quality_scores"].impls[0])], modes=("ram",))
    bench.finish()
    bench.report(tables(bench), f"N={args.n:,} K={args.k} float32 ({data['bytes'] / 1e9:.2f} GB), "
                                f"{data['labels_per_row']:.2f} labels a row, {data['noisy_rows_frac']:.1%} rows noisy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
