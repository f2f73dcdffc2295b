#!/usr/bin/env python
"""k-NN: exact search + agreement against faiss-cpu, and Datalab's feature checks against cleanlab.

Usage (from the repository root; labelsift installed)::

    python bench/bench_knn.py                              # search on 200,000 x 128, find_issues on 50,000 x 128
    python bench/bench_knn.py --n 50000 --n-datalab 20000 --numpy

The measuring (a fresh process per call, extra memory, contention, JSON and
Markdown) is ``harness.py``'s.

1. **Data.** ``bench/data/knn_clusters_n{N}_d{d}_s{seed}_*.npy``: float32
   Gaussian clusters (100 centres of norm ~2 sqrt(d), unit noise), labels =
   the cluster id; ``find_issues`` gets the first ``--n-datalab`` rows with
   labels ``id % 10`` (so most clusters share a label with others).
2. **Cases** (``--funcs``):
   * ``search``: ``knn.search(X, k=10, metric="l2")`` + ``knn.agreement``
     against faiss-cpu ``IndexFlatL2`` (k + 1 neighbours, self removed by
     identity) + the same agreement; ``--numpy`` adds a tiled float32 GEMM +
     argpartition in NumPy (not exact; slow at 200k). Compared: rows whose
     neighbour set differs from labelsift's exact one, max |agreement diff|.
   * ``search_db``: the first N/5 rows as queries against the other 4N/5
     (``knn.search(Q, D)``, no self to exclude) against faiss-cpu
     ``IndexFlatL2`` on the same split.
   * ``find_issues``: ``knn.find_issues(X, y)`` (label, outlier, near
     duplicate and non-IID checks) against cleanlab 2.9.0
     ``Datalab(...).find_issues(features=X)`` with the same four checks.
     Compared column for column (flags differing, max |score diff|, near
     duplicate sets differing).
   * ``gemm_floor``: the compute floor of an exact search by float32 GEMM:
     NumPy's matmul over the tiles on and above the diagonal of X X^T (the
     N^2 d / 2 multiply-adds a symmetric search needs), no selection.
3. **Floor passes.** 1 read of the features (both are compute bound; the
   bandwidth floor is reported for the record; ``gemm_floor`` is the one
   that matters).
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import Bench, Case, Impl  # noqa: E402

PEER = "peers"
K_NN = 10
CFG: dict = {}  # the parent's options (tables); workers get theirs through Impl kwargs


def ensure_data(data_dir: Path, n: int, d: int, seed: int) -> dict:
    data_dir.mkdir(parents=True, exist_ok=True)
    stem = data_dir / f"knn_clusters_n{n}_d{d}_s{seed}"
    paths = {"features": f"{stem}_x.npy", "labels": f"{stem}_y.npy"}
    if not all(Path(p).exists() for p in paths.values()):
        rng = np.random.default_rng(seed)
        C = rng.normal(size=(100, d)).astype(np.float32) * 2
        y = rng.integers(0, 100, n)
        X = (C[y] + rng.normal(size=(n, d))).astype(np.float32)
        np.save(paths["features"], X)
        np.save(paths["labels"], y.astype(np.int64))
    return paths


# ---------------------------------------------------------------------------
# What the workers run (module-level: they look these up by name)
# ---------------------------------------------------------------------------
def load_inputs(inputs: dict, mode: str) -> tuple:
    return np.load(inputs["features"]), np.load(inputs["labels"])


def import_labelsift() -> None:
    import labelsift.knn  # noqa: F401
    import scipy.stats  # noqa: F401  (both sides' non-IID check uses it; not timed)
    import pandas  # noqa: F401


def import_faiss() -> None:
    import faiss  # noqa: F401


def import_cleanlab() -> None:
    import cleanlab.datalab.datalab  # noqa: F401
    import scipy.stats  # noqa: F401


def ls_search(X, y):
    from labelsift import knn

    idx, _ = knn.search(X, k=K_NN, metric="l2")
    return idx, knn.agreement(y, idx)


def _agreement(y, idx):
    return (y[idx] == y[:, None]).mean(axis=1)


def faiss_search(X, y):
    import faiss

    index = faiss.IndexFlatL2(X.shape[1])
    index.add(X)
    _, I = index.search(X, K_NN + 1)
    own = I == np.arange(len(X))[:, None]
    keep = ~own
    keep[~own.any(axis=1), K_NN] = False  # self not found among the k + 1: drop the last
    idx = I[keep].reshape(len(X), K_NN)
    return idx, _agreement(y, idx)


def _db_split(X, y):
    # the first fifth of the rows query the other four fifths
    q = len(X) // 5
    return X[:q], X[q:], y[:q], y[q:]


def ls_search_db(X, y):
    from labelsift import knn

    Q, D, yq, yd = _db_split(X, y)
    idx, _ = knn.search(Q, D, k=K_NN, metric="l2")
    return idx, (yd[idx] == yq[:, None]).mean(axis=1)


def faiss_search_db(X, y):
    import faiss

    Q, D, yq, yd = _db_split(X, y)
    index = faiss.IndexFlatL2(X.shape[1])
    index.add(np.ascontiguousarray(D))
    _, idx = index.search(np.ascontiguousarray(Q), K_NN)
    return idx, (yd[idx] == yq[:, None]).mean(axis=1)


def numpy_search(X, y, tile=2048):
    n2 = np.einsum("ij,ij->i", X, X)
    out = np.empty((len(X), K_NN), np.int64)
    for a in range(0, len(X), tile):
        S = n2[None, :] - 2 * (X[a:a + tile] @ X.T)
        S[np.arange(len(S)), np.arange(a, a + len(S))] = np.inf
        part = np.argpartition(S, K_NN, axis=1)[:, :K_NN]
        order = np.take_along_axis(S, part, 1).argsort(axis=1)
        out[a:a + tile] = np.take_along_axis(part, order, 1)
    return out, _agreement(y, out)


def gemm_half(X, y, tile=1024):
    buf = np.empty((tile, tile), np.float32)
    acc = 0.0
    for a in range(0, len(X), tile):
        A = X[a:a + tile]
        for b in range(a, len(X), tile):
            S = buf[:len(A), :len(X[b:b + tile])]
            np.matmul(A, X[b:b + tile].T, out=S)
            acc += float(S[0, 0])
    return np.array([acc])


def _subset(X, y, n):
    return X[:n], y[:n] % 10


FI_COLUMNS = ("is_label_issue", "label_score", "is_outlier_issue", "outlier_score", "is_near_duplicate_issue",
              "near_duplicate_score", "distance_to_nearest_neighbor", "is_non_iid_issue", "non_iid_score")


def _sets_array(sets):
    lens = np.array([len(s) for s in sets], np.int64)
    flat = np.concatenate([np.sort(np.asarray(s, np.int64)) for s in sets]) if len(sets) else np.zeros(0, np.int64)
    return lens, flat


def ls_find_issues(X, y, n):
    from labelsift import knn

    Xs, ys = _subset(X, y, n)
    r = knn.find_issues(Xs, ys, as_frame=False)
    return tuple(np.asarray(r[c]) for c in FI_COLUMNS) + _sets_array(r["near_duplicate_sets"])


def datalab_find_issues(X, y, n):
    from cleanlab import Datalab

    Xs, ys = _subset(X, y, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab = Datalab(data={"y": ys}, label_name="y", verbosity=0)
        lab.find_issues(features=Xs, issue_types={"label": {}, "outlier": {}, "near_duplicate": {}, "non_iid": {}})
    df = lab.get_issues()
    nd = lab.get_issues("near_duplicate")  # the sets and distances are in the check's own table
    cols = tuple((nd if c not in df else df)[c].to_numpy() for c in FI_COLUMNS)
    return cols + _sets_array(list(nd["near_duplicate_sets"]))


def compare_search(a_path: str, b_path: str) -> dict:
    a, b = np.load(a_path), np.load(b_path)
    ia, ib = np.sort(a["arr_0"], axis=1), np.sort(b["arr_0"], axis=1)
    return {"rows_with_other_neighbours": int((ia != ib).any(axis=1).sum()),
            "max_abs_agreement_diff": float(np.abs(a["arr_1"] - b["arr_1"]).max())}


def compare_find_issues(a_path: str, b_path: str) -> dict:
    a, b = np.load(a_path), np.load(b_path)
    out = {}
    for i, c in enumerate(FI_COLUMNS):
        x, z = a[f"arr_{i}"], b[f"arr_{i}"]
        if c.startswith("is_"):
            out[c + "_differ"] = int((x.astype(bool) != z.astype(bool)).sum())
        else:
            out[c + "_max_abs_diff"] = float(np.abs(x.astype(np.float64) - z.astype(np.float64)).max())
    n = len(FI_COLUMNS)
    la, fa, lb, fb = a[f"arr_{n}"], a[f"arr_{n + 1}"], b[f"arr_{n}"], b[f"arr_{n + 1}"]
    if np.array_equal(la, lb):
        sa, sb = np.split(fa, np.cumsum(la)[:-1]), np.split(fb, np.cumsum(lb)[:-1])
        out["near_duplicate_sets_differ"] = int(sum(not np.array_equal(p, q) for p, q in zip(sa, sb)))
    else:
        out["near_duplicate_sets_differ"] = int((la != lb).sum())
    return out


def all_cases(with_numpy: bool, n_datalab: int = 0) -> dict:
    search_impls = [Impl("labelsift", ls_search, "ram", {}, import_labelsift, labelsift=True),
                    Impl("faiss", faiss_search, "ram", {}, import_faiss)]
    comps = [("vs_faiss", "labelsift", "faiss")]
    if with_numpy:
        search_impls.append(Impl("numpy", numpy_search, "ram", {}, None))
        comps.append(("vs_numpy", "labelsift", "numpy"))
    return {
        "search": Case("search", f"exact k-NN search (L2, k={K_NN}) + agreement", 1, search_impls,
                       compare_search, comps),
        "search_db": Case("search_db", f"exact k-NN, first N/5 rows against the other 4N/5 (L2, k={K_NN})", 1,
                          [Impl("labelsift", ls_search_db, "ram", {}, import_labelsift, labelsift=True),
                           Impl("faiss", faiss_search_db, "ram", {}, import_faiss)],
                          compare_search, [("vs_faiss", "labelsift", "faiss")]),
        "find_issues": Case("find_issues", "Datalab's label, outlier, near-duplicate and non-IID checks", 1,
                            [Impl("labelsift", ls_find_issues, "ram", {"n": n_datalab}, import_labelsift, labelsift=True),
                             Impl("datalab", datalab_find_issues, "ram", {"n": n_datalab}, import_cleanlab)],
                            compare_find_issues, [("vs_datalab", "labelsift", "datalab")]),
        "gemm_floor": Case("gemm_floor", "floor: NumPy float32 matmul over the upper-triangle tiles of X X^T", 1,
                           [Impl("labelsift", gemm_half, "ram", {}, None, labelsift=True)]),
    }


def tables(bench: Bench) -> list[str]:
    cols = [harness.col_desc(), harness.col_time("labelsift", "labelsift (s)"),
            harness.col_time("faiss", "faiss-cpu (s)"), harness.col_speedup("labelsift", "faiss", "faiss / labelsift"),
            harness.col_time("datalab", "Datalab (s)"), harness.col_speedup("labelsift", "datalab", "vs Datalab"),
            harness.col_mem("labelsift", "extra_hwm", "labelsift extra mem"),
            harness.col_mem("faiss", "extra_hwm", "faiss extra mem"),
            harness.col_mem("datalab", "extra_hwm", "Datalab extra mem")]
    if CFG.get("numpy"):
        cols.insert(3, harness.col_time("numpy", "NumPy tiles (s)"))
    out = [bench.case_table(cols)]
    rows = []
    for name, runs in bench.results["runs"].items():
        for key in ("vs_faiss", "vs_numpy", "vs_datalab"):
            if runs.get(key):
                rows.append([name, key, json.dumps(runs[key])])
    if rows:
        out.append(harness.md_table(["case", "comparison", "result"], rows))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # --n-datalab: the rows given to find_issues (the first ones)
    ap = harness.case_parser(__doc__, list(all_cases(True)), PEER, {"n": 200_000, "d": 128, "n_datalab": 50_000})
    ap.add_argument("--numpy", action="store_true", help="also time the NumPy tiled search (slow at 200k)")
    args = ap.parse_args(argv)
    CFG.update(n_datalab=min(args.n_datalab, args.n), numpy=args.numpy)
    settings = harness.settings_from_args(args, PEER)
    paths = ensure_data(settings.data_dir, args.n, args.d, args.seed)
    data = {**paths, "n": args.n, "d": args.d, "k": K_NN, "dtype": "float32", "bytes": args.n * args.d * 4,
            "n_datalab": CFG["n_datalab"], "clusters": 100}
    print(f"[data] {json.dumps(data)}", flush=True)
    bench = Bench(settings, __file__, load_inputs, {"features": paths["features"], "labels": paths["labels"]},
                  floor_input=paths["features"], tag=f"knn_n{args.n}_d{args.d}", peers=("faiss", "cleanlab"))
    if not bench.start(argv, vars(args), data):
        return 1
    harness.run_selected(bench, ap, all_cases(args.numpy, CFG["n_datalab"]), args.funcs)
    bench.finish()
    bench.report(tables(bench), f"search N={args.n:,} x d={args.d} float32, k={K_NN}; "
                                f"find_issues on the first {CFG['n_datalab']:,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
