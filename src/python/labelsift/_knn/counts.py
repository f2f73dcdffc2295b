"""Neighbour label counts, agreement and kNN pred_probs (NumPy: a bincount
over N x k entries runs at memory speed; see bench/RESULTS.md)."""
from __future__ import annotations

import numpy as np

from .._common.arrays import as_labels
from .._common.params import integer
from .graph import as_neighbors


def _weights(weights, shape):
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != shape:
        raise ValueError(f"weights must have the shape of indices {shape}, got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and >= 0")
    return w


def _prep(labels, indices, num_classes):
    nb = as_neighbors(indices)
    N = len(nb.indices)
    K = integer(num_classes, "num_classes", lo=1)
    y = as_labels(labels, N, K)
    return nb.indices, y, K


def label_counts(labels, indices, num_classes, *, weights=None) -> np.ndarray:
    """counts[i, c] = number (or total weight) of i's neighbours labelled c;
    int64 without weights, float64 with. Entries -1 are skipped. CUDA
    indices: computed on their device, returned in their kind (see
    ``labelsift._knn.device_counts``)."""
    from .device_counts import is_device, votes
    if is_device(indices):
        return votes(labels, indices, num_classes, weights, "counts")
    ind, y, K = _prep(labels, indices, num_classes)
    N, k = ind.shape
    w = _weights(weights, ind.shape)
    valid = ind >= 0
    cls = y[np.where(valid, ind, 0)]
    flat = (np.arange(N)[:, None] * K + cls)[valid]
    if w is None:
        return np.bincount(flat, minlength=N * K).reshape(N, K).astype(np.int64)
    return np.bincount(flat, weights=w[valid], minlength=N * K).reshape(N, K)


def agreement(labels, indices, *, weights=None) -> np.ndarray:
    """Fraction (or weight fraction) of each row's neighbours sharing its
    label; NaN for a row without neighbours (or zero total weight)."""
    from .device_counts import is_device, votes
    if is_device(indices):
        return votes(labels, indices, None, weights, "agreement")
    nb = as_neighbors(indices)
    ind = nb.indices
    N = len(ind)
    yy = np.asarray(labels)
    y = as_labels(labels, N, int(yy.max()) + 1 if len(yy) and yy.dtype.kind in "iu" else 1)
    w = _weights(weights, ind.shape)
    valid = ind >= 0
    same = (y[np.where(valid, ind, 0)] == y[:, None]) & valid
    if w is None:
        num, den = same.sum(axis=1).astype(np.float64), valid.sum(axis=1).astype(np.float64)
    else:
        num, den = (w * same).sum(axis=1), (w * valid).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def knn_pred_probs(labels, indices, num_classes, *, weights=None) -> np.ndarray:
    """Neighbour label frequencies (N, K) float64, rows summing to 1: with
    neighbours from ``search(..., metric="l2", exclude_self=True)`` this is
    Datalab's label-check formula (k + 1 Euclidean neighbours, self vote
    removed). A row without neighbours gets the uniform distribution."""
    from .device_counts import is_device, votes
    if is_device(indices):
        return votes(labels, indices, num_classes, weights, "pred_probs")
    c = label_counts(labels, indices, num_classes, weights=weights).astype(np.float64)
    s = c.sum(axis=1, keepdims=True)
    K = c.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(s > 0, c / np.where(s > 0, s, 1), 1.0 / K)
    return p
