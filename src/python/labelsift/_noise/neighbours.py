"""Exact cosine k-NN for HOC and SimiFeat, and the neighbours within a sample.

Until ``labelsift.knn`` lands, this module is the search: a brute-force,
tiled, exact NumPy search. ``search`` calls ``labelsift.knn.search`` instead
when that module exists.

Definition of the answer (the same as ``labelsift.knn.search``):

* the distance of rows i and j is ``1 - sum(x_i * x_j)`` in float64, where
  ``x = f / max(||f||_2, 1e-12)`` (``torch.nn.functional.normalize``) and the
  sum is NumPy's pairwise ``(a * b).sum(axis=1)`` -- the *canonical* distance,
  computed the same way for a pair wherever it is needed;
* the k nearest are the k smallest (distance, index) pairs, self excluded by
  identity (an exact duplicate of row i is a neighbour of i, row i is not).

How it is exact and fast: a float32 GEMM over tiles of query rows gives
approximate distances g with |g - d| <= gamma (a rounding bound: the float32
rounding of the normalised rows plus the float32 dot product, d + 3 float32
units, plus the canonical sum's float64 error); every j with
g_j <= g_(k) + 2.5 * (gamma_gemm + gamma_canonical) is a candidate (g_(k) is
the k-th smallest g of the row), and the candidates are re-ranked by their
canonical distances. Any j outside that set has a canonical distance strictly
above those of the k rows with the smallest g, so it cannot be among the k
nearest: the answer is exact without a separate check. Memory: one tile of
``block_bytes`` plus O(N k); N x N is never formed.
"""
from __future__ import annotations

import math

import numpy as np

_U32 = 2.0 ** -24
_U64 = 2.0 ** -53
BLOCK_BYTES = 64 << 20


class Features:
    """Row-normalised features: ``x64`` (N x d float64, the canonical rows)
    and ``x32`` (its float32 rounding, for the candidate GEMM)."""

    def __init__(self, features: np.ndarray):
        f = np.asarray(features)
        n, d = f.shape
        x64 = np.empty((n, d), np.float64)
        step = max(1, (16 << 20) // max(1, 8 * d))
        for lo in range(0, n, step):
            blk = np.asarray(f[lo:lo + step], dtype=np.float64)
            nrm = np.sqrt((blk * blk).sum(axis=1))
            x64[lo:lo + step] = blk / np.maximum(nrm, 1e-12)[:, None]
        self.x64 = x64
        self.x32 = x64.astype(np.float32)
        self.n, self.d = n, d
        # |g - d_canonical| bounds (normalised rows have norms <= 1 + d u64)
        self.gamma_gemm = 1.05 * (d + 4) * _U32
        self.gamma_canon = 1.05 * (d + 4) * _U64

    def distances(self, qi: np.ndarray, dj: np.ndarray) -> np.ndarray:
        """Canonical distances of the pairs (qi[t], dj[t]), float64."""
        out = np.empty(len(qi), np.float64)
        step = max(1, (8 << 20) // max(1, 8 * self.d))
        for lo in range(0, len(qi), step):
            a = self.x64[qi[lo:lo + step]]
            a *= self.x64[dj[lo:lo + step]]
            out[lo:lo + step] = 1.0 - a.sum(axis=1)
        return out


def exact_knn(feats: Features, k: int, queries: np.ndarray | None = None, database: np.ndarray | None = None,
              exclude_self: bool = True, block_bytes: int = BLOCK_BYTES):
    """The k nearest rows of ``database`` (sorted global ids; None = all) to
    each of ``queries`` (global ids; None = all), by canonical cosine distance,
    ties by the lower index, self excluded by identity when ``exclude_self``.

    Returns (indices (q, k) int64 global ids, distances (q, k) float64)."""
    n = feats.n
    q_ids = np.arange(n, dtype=np.int64) if queries is None else np.asarray(queries, np.int64)
    db_ids = np.arange(n, dtype=np.int64) if database is None else np.asarray(database, np.int64)
    ndb = len(db_ids)
    nq = len(q_ids)
    avail = ndb - (1 if exclude_self else 0)
    if k > avail:
        raise ValueError(f"k = {k} neighbours asked for but only {avail} rows are available")
    out_i = np.empty((nq, k), np.int64)
    out_d = np.empty((nq, k), np.float64)
    if nq == 0 or k == 0:
        return out_i, out_d
    db32 = feats.x32 if database is None else feats.x32[db_ids]
    margin = 2.5 * (feats.gamma_gemm + 2 * _U32 + feats.gamma_canon)
    tile = int(max(1, min(nq, block_bytes // max(1, 12 * ndb))))
    for lo in range(0, nq, tile):
        qs = q_ids[lo:lo + tile]
        t = len(qs)
        g = feats.x32[qs] @ db32.T
        np.subtract(np.float32(1.0), g, out=g)
        if exclude_self:
            if database is None:
                g[np.arange(t), qs] = np.inf
            else:
                pos = np.searchsorted(db_ids, qs)
                pos_c = np.minimum(pos, ndb - 1)
                hit = db_ids[pos_c] == qs
                g[np.flatnonzero(hit), pos_c[hit]] = np.inf
        kth = np.partition(g, k - 1, axis=1)[:, k - 1].astype(np.float64)
        rows, cols = np.nonzero(g <= (kth + margin)[:, None])
        del g
        gi = qs[rows]
        gj = db_ids[cols]
        d = feats.distances(gi, gj)
        order = np.lexsort((gj, d, rows))
        rows, gj, d = rows[order], gj[order], d[order]
        counts = np.bincount(rows, minlength=t)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        take = (starts[:, None] + np.arange(k)[None, :]).ravel()
        out_i[lo:lo + t] = gj[take].reshape(t, k)
        out_d[lo:lo + t] = d[take].reshape(t, k)
    return out_i, out_d


def _knn_module():
    try:
        from .. import knn  # noqa: PLC0415 - optional until labelsift.knn is merged
    except ImportError:
        return None
    return knn if hasattr(knn, "search") else None


def search(feats: Features, k: int, raw=None):
    """All-rows k-NN (self excluded): ``labelsift.knn.search`` when it exists,
    else :func:`exact_knn`. Distances are float64 canonical distances."""
    knn = _knn_module()
    if knn is not None and raw is not None:
        idx, _ = knn.search(raw, k=k, metric="cosine", exclude_self=True)
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        d = feats.distances(np.repeat(np.arange(feats.n, dtype=np.int64), k), idx.ravel()).reshape(idx.shape)
        # the in-sample filter needs every list in this module's (canonical distance, index) order
        rows = np.repeat(np.arange(feats.n), k)
        order = np.lexsort((idx.ravel(), d.ravel(), rows)).reshape(feats.n, k) % k
        return np.take_along_axis(idx, order, 1), np.take_along_axis(d, order, 1)
    return exact_knn(feats, k)


def candidates_needed(want: int, frac: float, miss: float = 1e-4, cap: int = 512) -> int | None:
    """The shortest full-set list length c such that a row in a uniform sample
    of fraction ``frac`` finds ``want`` sampled rows among its c nearest with
    probability >= 1 - miss (binomial tail); None if c would exceed ``cap``."""
    if frac >= 1.0:
        return want
    for c in range(want, cap + 1):
        tail = 0.0
        for j in range(want):
            tail += math.comb(c, j) * frac ** j * (1.0 - frac) ** (c - j)
        if tail <= miss:
            return c
    return None


class SampleNeighbours:
    """Neighbours within each round's sample, exactly as a search of the
    sample alone would give them (``neighbours="sample"``, Docta's way).

    When the sample is a large fraction of the set, one full-set search with
    c candidates per row is filtered to the sampled rows (the order is kept,
    and any sampled row missing from a list ranks after the whole list, so the
    first ``want`` sampled entries are exactly the sample's nearest); the rare
    rows left short are searched against the sample directly. Otherwise each
    round searches its sample directly."""

    def __init__(self, feats: Features, want: int, frac: float, rounds: int, raw=None, nthreads: int = 0):
        self.feats, self.want, self.nthreads = feats, want, nthreads
        self.cand_i = self.cand_d = None
        self.recomputed = 0
        n = feats.n
        c = candidates_needed(want, frac)
        # cost in pair distances: one full search + little, against rounds direct sample searches
        if c is not None and c <= n - 1 and n * n < rounds * (frac * n) ** 2:
            self.cand_i, self.cand_d = search(feats, c, raw)
        elif c is not None and c > n - 1:
            self.cand_i, self.cand_d = search(feats, n - 1, raw)

    def __call__(self, sample: np.ndarray):
        """(indices (m, want), distances (m, want)) of the sorted sample rows."""
        from .._common.backend import core

        if self.cand_i is None:
            return exact_knn(self.feats, self.want, sample, sample)
        mask = np.zeros(self.feats.n, np.uint8)
        mask[sample] = 1
        idx, d, short, nshort = core().nz_filter_in_sample(self.cand_i, self.cand_d, sample, mask, self.want,
                                                            self.nthreads)
        if nshort:
            rows = np.flatnonzero(short)
            ri, rd = exact_knn(self.feats, self.want, sample[rows], sample)
            idx[rows], d[rows] = ri, rd
            self.recomputed += len(rows)
        return idx, d
