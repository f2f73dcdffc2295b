"""Neighbour lists from users, and Datalab's exact-duplicate correction.

A neighbour list is accepted as
* an (N, k) integer array of indices (``-1`` = no neighbour),
* a pair ``(indices, distances)`` (distances may be None),
* a SciPy sparse kNN graph (CSR, as Datalab's ``knn_graph``): row i's stored
  entries are its neighbours in stored order, ``data`` their distances;
  rows with fewer entries than the longest are padded with -1 / inf.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .._common.arrays import host_array


@dataclass
class Neighbors:
    indices: np.ndarray               # (N, k) int64, -1 = none
    distances: Optional[np.ndarray]   # (N, k) float or None


def is_sparse(x) -> bool:
    return hasattr(x, "indptr") and hasattr(x, "indices") and hasattr(x, "tocsr")


def as_neighbors(obj, n: Optional[int] = None, what: str = "indices") -> Neighbors:
    if isinstance(obj, Neighbors):
        nb = obj
    elif is_sparse(obj):
        g = obj.tocsr()
        if g.shape[0] != g.shape[1]:
            raise ValueError(f"{what}: a kNN graph must be square (N x N), got shape {g.shape}")
        N = g.shape[0]
        counts = np.diff(g.indptr)
        k = int(counts.max()) if N else 0
        if k == 0:
            raise ValueError(f"{what}: the kNN graph has no entries")
        if (counts == k).all():
            ind = np.asarray(g.indices, np.int64).reshape(N, k)
            dist = np.asarray(g.data).reshape(N, k)
        else:
            ind = np.full((N, k), -1, np.int64)
            dist = np.full((N, k), np.inf)
            rows = np.repeat(np.arange(N), counts)
            cols = np.arange(len(g.indices)) - np.repeat(g.indptr[:-1], counts)
            ind[rows, cols] = g.indices
            dist[rows, cols] = g.data
        nb = Neighbors(ind, dist)
    elif isinstance(obj, tuple) and len(obj) == 2:
        nb = Neighbors(_indices(obj[0], what), None if obj[1] is None else _distances(obj[1], what))
    else:
        nb = Neighbors(_indices(obj, what), None)
    ind = nb.indices
    N = len(ind)
    if n is not None and N != n:
        raise ValueError(f"{what} has {N} rows but there are {n} examples")
    if nb.distances is not None and nb.distances.shape != ind.shape:
        raise ValueError(f"{what}: distances have shape {nb.distances.shape}, indices {ind.shape}")
    bad = (ind < -1) | (ind >= N)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{what}[{i}, {j}] = {ind[i, j]} is not a row index in 0..{N - 1} (or -1 for none)")
    return nb


def _indices(a, what):
    host_array(a, what)
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integer row indices, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{what} must be 2-D (N x k), got shape {a.shape}")
    return a.astype(np.int64, copy=False)


def _distances(a, what):
    host_array(a, "distances")
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise TypeError(f"distances must be floats, got dtype {a.dtype}")
    return a


def to_csr(indices, distances):
    """Datalab's CSR packing: data = distances, indices, indptr = 0, k, 2k, ..."""
    from .._common.optional import optional
    csr_matrix = optional("scipy.sparse", "a CSR k-NN graph").csr_matrix

    N, k = indices.shape
    return csr_matrix((distances.reshape(-1), indices.reshape(-1), np.arange(0, N * k + 1, k)), shape=(N, N))


def exact_duplicate_sets(X: np.ndarray) -> list:
    """Sets (ascending index arrays, size >= 2) of rows with equal values
    (as floats: -0.0 == 0.0), in O(N log N) (cleanlab: O(N x #sets))."""
    X = np.asarray(X)
    C = np.ascontiguousarray(X + X.dtype.type(0))  # -0.0 -> +0.0
    v = C.view(np.dtype((np.void, C.dtype.itemsize * C.shape[1]))).ravel()
    order = np.argsort(v, kind="stable")
    sv = v[order]
    start = np.ones(len(sv), bool)
    start[1:] = sv[1:] != sv[:-1]
    gid = np.cumsum(start) - 1
    sizes = np.bincount(gid)
    big = np.flatnonzero(sizes > 1)
    if not len(big):
        return []
    firsts = np.flatnonzero(start)
    return [np.sort(order[firsts[g]:firsts[g] + sizes[g]]) for g in big]


def correct_exact_duplicates(X, indices, distances, sets=None):
    """Datalab's ``correct_knn_distances_and_indices`` (cleanlab 2.9.0),
    result for result: members of a duplicate set list the other members
    first (distance 0), then their original non-duplicate neighbours in order;
    a set larger than k points at members only. Returns new arrays."""
    ind = np.array(indices, dtype=np.int64, copy=True)
    dist = np.array(distances, copy=True)
    k = ind.shape[1]
    for dup in (exact_duplicate_sets(X) if sets is None else sets):
        m = len(dup)
        nsi = min(m - 1, k)
        base = dup[: nsi + 1]
        # row t of the circulant neighbourhood: base without base[t] (sorted)
        nbh = np.array([np.delete(base, t) for t in range(len(base))], dtype=np.int64)
        if m >= k + 1:
            ind[dup[: k + 1]] = nbh
            ind[dup[k + 1:]] = dup[:k]
            dist[dup] = 0
        else:
            rows_i = ind[dup]
            rows_d = dist[dup]
            keep = ~np.isin(rows_i, dup)
            pos = np.argsort(~keep, axis=1, kind="stable")[:, : k - nsi]
            r = np.arange(m)[:, None]
            ind[dup, k - (k - nsi):] = rows_i[r, pos]
            dist[dup, k - (k - nsi):] = rows_d[r, pos]
            ind[dup, :nsi] = nbh
            dist[dup, :nsi] = 0
    return ind, dist
