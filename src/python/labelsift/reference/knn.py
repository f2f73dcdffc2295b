"""The k-NN oracles in plain NumPy (no compiled code): brute-force float64
search with labelsift's definition of the keys (``src/cpp/knn/math.h``:
sequential float64 sums over the coordinates, ties to the lower index,
self excluded by identity), and neighbour label counts.

O(N^2) time, O(block x N) memory: for tests on small inputs.
"""
from __future__ import annotations

import numpy as np


def norms2(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    acc = np.zeros(len(X))
    for t in range(X.shape[1]):
        acc += X[:, t] * X[:, t]
    return acc


def pair_keys(Q, D, metric: str) -> np.ndarray:
    """(len(Q), len(D)) float64 keys, summed over t in order."""
    Q = np.asarray(Q, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    acc = np.zeros((len(Q), len(D)))
    if metric in ("l2", "euclidean"):
        for t in range(Q.shape[1]):
            u = Q[:, t, None] - D[None, :, t]
            acc += u * u
        return acc
    for t in range(Q.shape[1]):
        acc += Q[:, t, None] * D[None, :, t]
    qn = np.sqrt(norms2(Q))[:, None]
    dn = np.sqrt(norms2(D))[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        v = 1.0 - acc / (qn * dn)
    v = np.clip(v, 0.0, 2.0)
    v[(qn == 0) | (dn == 0)] = 1.0
    return v


def search(queries, database=None, *, k=10, metric="cosine", exclude_self=True, block=256):
    """(indices int64, distances float32): the k smallest keys by (key, index)."""
    Q = np.asarray(queries)
    same = database is None
    D = Q if same else np.asarray(database)
    idx = np.empty((len(Q), k), np.int64)
    key = np.empty((len(Q), k))
    cols = np.arange(len(D))
    for a in range(0, len(Q), block):
        K = pair_keys(Q[a:a + block], D, metric)
        if same and exclude_self:
            rows = np.arange(a, min(len(Q), a + block))
            K[rows - a, rows] = np.inf
        for r in range(len(K)):
            order = np.lexsort((cols, K[r]))[:k]   # by key, then index
            idx[a + r] = order
            key[a + r] = K[r, order]
    dist = np.sqrt(key) if metric in ("l2", "euclidean") else key
    return idx, dist.astype(np.float32)


def label_counts(labels, indices, num_classes, weights=None) -> np.ndarray:
    """counts[i, c] = sum of weights of i's neighbours (entries >= 0) with label c."""
    y = np.asarray(labels)
    ind = np.asarray(indices)
    w = np.ones(ind.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.zeros((len(ind), num_classes))
    for i in range(len(ind)):
        for j, wt in zip(ind[i], w[i]):
            if j >= 0:
                out[i, y[j]] += wt
    return out
