#!/usr/bin/env python
"""HOC and SimiFeat: labelsift.noise against the NumPy port of Docta's algorithms.

Usage (from the repository root; labelsift installed)::

    python bench/bench_noise.py                               # N=20,000 x d=128, K=10, with the Docta port
    python bench/bench_noise.py --n 50000 --d 512 --skip-docta

The measuring (a fresh process per call, extra memory, the floor, contention)
is ``harness.py``'s.

1. **Data.** ``bench/data/nz_clusters_n{N}_d{d}_k{K}_s{seed}.npz``-like files:
   Gaussian clusters (``tests/support/noise.py``'s generator: class centres at
   distance ``sep`` = 6, unit noise), float32 features, 30% symmetric label
   noise; the realised T[true, noisy] and the true labels are kept to score
   the estimates.
2. **Cases** (``--funcs``), both at Docta's defaults and seed 0:
   * ``hoc``: ``labelsift.noise.hoc(X, y, K)`` (50 rounds of min(35000, 0.9 N)
     rows, neighbours within each sample, 1501 steps) against
     ``labelsift.reference.noise.estimator_hoc`` (Docta's loop in NumPy:
     per round the sample x sample distance matrix in row tiles, float64,
     then the dense K^3 solver written with einsums), both keep_best=True.
   * ``simifeat_vote``: ``simifeat(X, y, K, method="vote")`` (21 rounds,
     k = 10) against ``reference.noise.simifeat``.
   Compared: the consensus counts (must be equal), max |T - T_peer|, the T
   error against the truth (sum |T_hat - T| / K x 100) of each; for SimiFeat
   the rows whose flag differs and each F1.
3. **Floor passes.** 1 read of the features (the floor is not meaningful
   here: both are compute bound; it is reported for the record).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import harness  # noqa: E402
from harness import Bench, Case, Impl  # noqa: E402

PEER = "docta"
K = 10
TRUTH: dict = {}


def ensure_data(data_dir: Path, n: int, d: int, seed: int) -> dict:
    from support.noise import clusters

    data_dir.mkdir(parents=True, exist_ok=True)
    stem = data_dir / f"nz_clusters_n{n}_d{d}_k{K}_s{seed}"
    paths = {"features": f"{stem}_x.npy", "labels": f"{stem}_y.npy", "true": f"{stem}_true.npy",
             "T": f"{stem}_T.npy"}
    if not all(Path(p).exists() for p in paths.values()):
        x, y, yt, T = clusters(seed, n, K, d, sep=6.0, noise=0.3)
        for key, arr in (("features", x), ("labels", y), ("true", yt), ("T", T)):
            np.save(paths[key], arr)
    return paths


# ---------------------------------------------------------------------------
# What the workers run (module-level: they look these up by name)
# ---------------------------------------------------------------------------
def load_inputs(inputs: dict, mode: str) -> tuple:
    return np.load(inputs["features"]), np.load(inputs["labels"])


def import_labelsift() -> None:
    import labelsift.noise  # noqa: F401
    import labelsift.reference.noise  # noqa: F401


def ls_hoc(x, y):
    import labelsift.noise

    r = labelsift.noise.hoc(x, y, K)
    return r.transition_matrix, r.py, r.consensus.c2


def docta_hoc(x, y):
    from labelsift.reference.noise import estimator_hoc

    e = estimator_hoc(x, y, K, keep_best=True)
    return e["T"], e["p"], e["c_est"][1]


def ls_simifeat_vote(x, y):
    import labelsift.noise

    r = labelsift.noise.simifeat(x, y, K, method="vote")
    return r.is_noisy, r.score, r.suggested_label


def docta_simifeat_vote(x, y):
    from labelsift.reference.noise import simifeat

    e = simifeat(x, y, K, method="vote")
    return e["is_noisy"], e["score"], e["suggested_label"]


def _t_error(T_hat):
    return float(np.abs(T_hat - TRUTH["T"]).sum() / K * 100)


def compare_hoc(a_path: str, b_path: str) -> dict:
    a, b = np.load(a_path), np.load(b_path)
    return {"consensus_equal": bool(np.array_equal(a["arr_2"], b["arr_2"])),
            "max_abs_T_diff": float(np.abs(a["arr_0"] - b["arr_0"]).max()),
            "max_abs_p_diff": float(np.abs(a["arr_1"] - b["arr_1"]).max()),
            "t_error_labelsift": _t_error(a["arr_0"]), "t_error_docta_port": _t_error(b["arr_0"])}


def _f1(pred):
    truth = TRUTH["noisy"]
    tp = float((pred & truth).sum())
    return 0.0 if tp == 0 else 2 * tp / (pred.sum() + truth.sum())


def compare_simifeat(a_path: str, b_path: str) -> dict:
    a, b = np.load(a_path), np.load(b_path)
    return {"flags_differ": int((a["arr_0"] != b["arr_0"]).sum()),
            "max_abs_score_diff": float(np.abs(a["arr_1"] - b["arr_1"]).max()),
            "suggested_differ": int((a["arr_2"] != b["arr_2"]).sum()),
            "f1_labelsift": _f1(a["arr_0"]), "f1_docta_port": _f1(b["arr_0"])}


def all_cases() -> dict:
    return {
        "hoc": Case("hoc", "HOC, Docta's defaults (50 rounds, 1501 steps)", 1,
                    [Impl("labelsift", ls_hoc, "ram", {}, import_labelsift, labelsift=True),
                     Impl("docta_numpy", docta_hoc, "ram", {}, import_labelsift)],
                    compare_hoc, [("vs_docta_port", "labelsift", "docta_numpy")]),
        "simifeat_vote": Case("simifeat_vote", "SimiFeat-vote, Docta's defaults (21 rounds, k=10)", 1,
                              [Impl("labelsift", ls_simifeat_vote, "ram", {}, import_labelsift, labelsift=True),
                               Impl("docta_numpy", docta_simifeat_vote, "ram", {}, import_labelsift)],
                              compare_simifeat, [("vs_docta_port", "labelsift", "docta_numpy")]),
    }


def tables(bench: Bench) -> list[str]:
    cols = [harness.col_desc(), harness.col_time("labelsift", "labelsift (s)"),
            harness.col_time("docta_numpy", "Docta port, NumPy (s)"),
            harness.col_speedup("labelsift", "docta_numpy", "vs Docta port"),
            harness.col_mem("labelsift", "extra_hwm", "labelsift extra mem"),
            harness.col_mem("docta_numpy", "extra_hwm", "Docta port extra mem")]
    out = [bench.case_table(cols)]
    rows = []
    for name, runs in bench.results["runs"].items():
        cmp = runs.get("vs_docta_port")
        if cmp:
            rows.append([name, json.dumps(cmp)])
    if rows:
        out.append(harness.md_table(["case", "labelsift vs the Docta port, same seed"], rows))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = harness.case_parser(__doc__, list(all_cases()), PEER, {"n": 20_000, "d": 128})
    args = ap.parse_args(argv)
    settings = harness.settings_from_args(args, PEER)
    paths = ensure_data(settings.data_dir, args.n, args.d, args.seed)
    TRUTH["T"] = np.load(paths["T"])
    TRUTH["noisy"] = np.load(paths["labels"]) != np.load(paths["true"])
    data = {**paths, "n": args.n, "d": args.d, "k": K, "dtype": "float32", "bytes": args.n * args.d * 4,
            "noise": "30% symmetric", "sep": 6.0}
    print(f"[data] {json.dumps(data)}", flush=True)
    bench = Bench(settings, __file__, load_inputs, {"features": paths["features"], "labels": paths["labels"]},
                  floor_input=paths["features"], tag=f"nz_n{args.n}_d{args.d}", peers=(PEER,))
    if not bench.start(argv, vars(args), data):
        return 1
    harness.run_selected(bench, ap, all_cases(), args.funcs)
    bench.finish()
    bench.report(tables(bench), f"N={args.n:,} d={args.d} K={K} float32, 30% symmetric noise")
    return 0


if __name__ == "__main__":
    sys.exit(main())
