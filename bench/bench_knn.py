"""k-NN benchmark: exact search + agreement vs faiss-cpu (IndexFlatL2) and a
NumPy tiled float32 GEMM + argpartition; find_issues vs cleanlab Datalab.

    python bench/bench_knn.py [--n 200000] [--d 128] [--n-datalab 10000]

(A standalone script for now: not yet on bench/harness.py's fresh-process runner.)
"""
import argparse
import json
import time
import warnings

import numpy as np


def numpy_knn(X, k, tile=2048):
    n2 = np.einsum("ij,ij->i", X, X)
    out = np.empty((len(X), k), np.int64)
    for a in range(0, len(X), tile):
        S = n2[None, :] - 2 * (X[a:a + tile] @ X.T)
        S[np.arange(len(S)), np.arange(a, a + len(S))] = np.inf
        part = np.argpartition(S, k, axis=1)[:, :k]
        order = np.take_along_axis(S, part, 1).argsort(axis=1)
        out[a:a + tile] = np.take_along_axis(part, order, 1)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--n-datalab", type=int, default=10000)
    a = ap.parse_args()
    from labelsift import knn
    rng = np.random.default_rng(0)
    C = rng.normal(size=(100, a.d)).astype(np.float32) * 2
    y = rng.integers(0, 100, a.n)
    X = (C[y] + rng.normal(size=(a.n, a.d))).astype(np.float32)
    res = {"n": a.n, "d": a.d}
    t = time.perf_counter()
    idx, dist, info = knn.search(X, k=10, metric="l2", return_info=True)
    agr = knn.agreement(y, idx)
    res["labelsift_search_agreement_s"] = time.perf_counter() - t
    res["fallback_rows"] = info.fallback_rows
    try:
        import faiss
        t = time.perf_counter()
        index = faiss.IndexFlatL2(a.d)
        index.add(X)
        _, I = index.search(X, 11)
        res["faiss_s"] = time.perf_counter() - t
        res["faiss_rows_differing"] = int(sum(set(r) - {i} != set(o) for i, (r, o) in enumerate(zip(I, idx))))
    except ImportError:
        res["faiss_s"] = None
    t = time.perf_counter()
    numpy_knn(X, 10)
    res["numpy_s"] = time.perf_counter() - t
    n = a.n_datalab
    Xs, ys = X[:n], y[:n] % 10
    t = time.perf_counter()
    knn.find_issues(Xs, ys)
    res["labelsift_find_issues_s"] = time.perf_counter() - t
    try:
        from cleanlab import Datalab
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            lab = Datalab(data={"y": ys}, label_name="y", verbosity=0)
            lab.find_issues(features=Xs, issue_types={"label": {}, "outlier": {}, "near_duplicate": {}, "non_iid": {}})
            res["datalab_find_issues_s"] = time.perf_counter() - t
    except ImportError:
        res["datalab_find_issues_s"] = None
    res["n_datalab"] = n
    print(json.dumps(res))


if __name__ == "__main__":
    main()
