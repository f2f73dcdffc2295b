"""HOC and SimiFeat on features that live on a CUDA device (PyTorch or CuPy
arrays, or anything with ``__cuda_array_interface__`` / DLPack): every
round's search, canonical distances, votes and consensus counts run there
(``labelsift._cuda``: ``nz_*``, kernels in ``src/cuda/noise/nz_kernels.cu``);
the round's sample (the host generator's, as on the CPU), its labels and
O(m) results cross, never the features.

The answer is the CPU path's definition (:mod:`.neighbours`): the in-sample
neighbours of each sampled row are its nearest sampled rows by the
*canonical* distance 1 - x_i.x_j (x = f / max(|f|, 1e-12), float64, NumPy's
pairwise sums), ties by the lower index. How the device gets it exactly:

1. the CUDA k-NN search (:mod:`labelsift._knn.device`) of the sample
   against itself gives, per row, the c = want + EXTRA nearest by the
   cosine key (exact float64 keys, proven there);
2. ``nz_cand_distances``: the canonical distances of those c candidates
   (``noise/canon_math.h``, the CPU's additions); ``nz_select``: the want
   smallest by (distance, index);
3. certificate: the cosine key and the canonical distance are two float64
   roundings of the same real number, each within (3 d + 11) 2^-53 of it,
   so with eps = 8 (d + 8) 2^-53 every row outside the candidates has a
   canonical distance >= (its key) - eps >= (the c-th key) - eps. A row
   whose want-th distance is below that is proven; the others (near-ties
   over more than EXTRA rows: heavy duplication) are recomputed exhaustively
   (``nz_row_distances`` against the whole sample, the selection by a
   stable sort on the host). Rows of norm below 1e-12 (whose canonical row
   is not a unit vector) make every row of their sample exhaustive.

``neighbours="full"`` is the same with the whole set as the sample (the
CPU path re-sorts the k-NN search's own lists instead; the two agree except
where that re-sort meets a near-tie at the end of a list, where this one is
the definition's answer).
"""
from __future__ import annotations

import numpy as np

from .._common import cuda_arrays

#: candidates beyond the wanted neighbours (the certificate's room)
EXTRA = 8
#: host bytes per chunk of exhaustive rows (their distances to the whole sample)
EXHAUSTIVE_CHUNK_BYTES = 64 << 20
U64 = 2.0 ** -53


def host_copy(x, what: str) -> np.ndarray:
    """A NumPy copy of a (small) CUDA array: neighbour lists, labels, distances; other inputs as they are."""
    from .._cl.device import require_cuda

    if not cuda_arrays.is_cuda_array(x):
        return x
    return cuda_arrays.host_copy(cuda_arrays.parse(x, what), require_cuda(what))


class DeviceFeatures:
    """Features on a CUDA device, checked (finite, at least 4 rows), with
    the per-round operations of HOC and SimiFeat."""

    def __init__(self, x, what: str = "features"):
        from .._cl.device import require_cuda
        from .._knn.device import _check_finite, _Mat, _norms, device_features, ops_for

        self.cuda = cuda = require_cuda(what)
        a = device_features(x, what)
        if a.shape[0] < 4:
            raise ValueError(f"{what} must have at least 4 rows and 1 column, got shape {a.shape}")
        self.dev = a.device if a.device is not None else int(cuda.pointer_device(a.ptr))
        self.ops = ops = ops_for(a, self.dev)
        self.X = ops.wrap(a)
        self.M = _Mat(ops, self.X)
        self.stream = ops.stream()
        n2 = ops.host(_norms(cuda, ops, self.M, self.dev, self.stream))
        _check_finite(ops, self.X, n2, what)
        self.n, self.d = self.M.n, self.M.d
        # rows whose canonical divisor is 1e-12, not their norm (with room for the two sums' roundings)
        self.tiny = (n2 > 0) & (n2 < 1.01e-24)
        self.eps = 8.0 * (self.d + 8) * U64
        self.recomputed = 0
        self._labels = None

    # -- helpers ----------------------------------------------------------------------------------
    def _p(self, x) -> int:
        return self.ops.ptr(x)

    def _own(self, r):
        """A search result as an array of this module's operations (on the device)."""
        return self.ops.upload(r) if isinstance(r, np.ndarray) else r

    def labels(self, y: np.ndarray):
        """All N labels on the device (uploaded once)."""
        if self._labels is None:
            self._labels = self.ops.upload(np.ascontiguousarray(y, np.int64))
        return self._labels

    # -- the pieces -------------------------------------------------------------------------------
    def canonical(self, rows: np.ndarray | None):
        """(the rows' features, their canonical rows (m x d float64)) on the device."""
        from .._knn.device import _Mat

        ops = self.ops
        Xs = self.X if rows is None else self.X[ops.upload(np.asarray(rows, np.int64))]
        Ms = _Mat(ops, Xs)
        x64 = ops.empty((Ms.n, self.d), np.float64)
        self.cuda.nz_normalize(Ms.ptr, Ms.n, Ms.d, Ms.s0, Ms.s1, Ms.code, 0, Ms.n, self._p(x64), self.dev,
                               self.stream)
        return Xs, x64

    def neighbours(self, rows: np.ndarray | None, want: int):
        """The ``want`` nearest rows of ``rows`` (sorted global ids; None = all) within them:
        (positions (m x want int64), canonical distances (m x want float64)), on the device."""
        from .._knn.device import search_metrics_device

        ops, cuda = self.ops, self.cuda
        m = self.n if rows is None else len(rows)
        if want > m - 1:
            raise ValueError(f"{want} neighbours per row asked for among {m} rows")
        Xs, x64 = self.canonical(rows)
        c = min(m - 1, want + EXTRA)
        ((ci, ck, _info),) = search_metrics_device(ops.export(Xs), k=c, metrics=("cosine",), exclude_self=True,
                                                   float64_keys=True)
        ci, ck = self._own(ci), self._own(ck)
        dist = ops.empty((m, c), np.float64)
        cuda.nz_cand_distances(self._p(x64), m, self.d, self._p(ci), c, self._p(dist), self.dev, self.stream)
        oi = ops.empty((m, want), np.int64)
        od = ops.empty((m, want), np.float64)
        un = ops.empty((m,), np.uint8)
        cuda.nz_select(self._p(dist), self._p(ci), self._p(ck), m, c, want, self.eps, c >= m - 1, self._p(oi),
                       self._p(od), self._p(un), self.dev, self.stream)
        tiny = self.tiny.any() if rows is None else self.tiny[rows].any()
        bad = np.arange(m, dtype=np.int64) if tiny else np.flatnonzero(ops.host(un)).astype(np.int64)
        if len(bad):
            self._exhaustive(x64, m, bad, want, oi, od)
            self.recomputed += len(bad)
        return oi, od

    def _exhaustive(self, x64, m, bad, want, oi, od) -> None:
        ops = self.ops
        step = max(1, EXHAUSTIVE_CHUNK_BYTES // (8 * m))
        for a in range(0, len(bad), step):
            rows = bad[a:a + step]
            rd = ops.upload(rows)
            D = ops.empty((len(rows), m), np.float64)
            self.cuda.nz_row_distances(self._p(x64), m, self.d, self._p(rd), len(rows), self._p(D), self.dev,
                                       self.stream)
            Dh = ops.host(D)
            Dh[np.arange(len(rows)), rows] = np.inf  # self excluded by identity
            order = np.argsort(Dh, axis=1, kind="stable")[:, :want]  # (distance, index)
            oi[rd] = ops.upload(order.astype(np.int64))
            od[rd] = ops.upload(np.take_along_axis(Dh, order, 1))

    def vote(self, ya, yb, nbr, dist, K: int):
        """SimiFeat's votes (nz_vote): (vote of the given label, first argmax) as host arrays."""
        ops = self.ops
        m, km1 = int(nbr.shape[0]), int(nbr.shape[1])
        gv = ops.empty((m,), np.float64)
        pred = ops.empty((m,), np.int64)
        self.cuda.nz_vote(self._p(ya), self._p(yb), self._p(nbr), self._p(dist), m, km1, K, self._p(gv),
                          self._p(pred), self.dev, self.stream)
        return ops.host(gv), ops.host(pred)

    def consensus(self, ya, yb, nbr, K: int):
        """HOC's patterns (nz_consensus): (codes, c1, c2 flat) as host int64 arrays."""
        ops = self.ops
        m = int(nbr.shape[0])
        codes = ops.empty((max(m, 1),), np.int64)
        h1 = ops.empty((K,), np.int64)
        h2 = ops.empty((K * K,), np.int64)
        self.cuda.nz_consensus(self._p(ya), self._p(yb), self._p(nbr), ops.strides(nbr)[0], m, K, self._p(codes),
                               self._p(h1), self._p(h2), self.dev, self.stream)
        return ops.host(codes)[:m], ops.host(h1), ops.host(h2)

    def duplicate_rate(self) -> float:
        """:func:`.inputs.exact_duplicate_rate` of the device rows: row hashes on the device, then
        only the rows that share a hash are compared, bytewise, on the host."""
        ops, M = self.ops, self.M
        h = ops.empty((self.n,), np.int64)
        self.cuda.nz_row_hash(M.ptr, M.n, M.d, M.s0, M.s1, M.code, self._p(h), self.dev, self.stream)
        hh = ops.host(h)
        _, inv, cnt = np.unique(hh, return_inverse=True, return_counts=True)
        cand = np.flatnonzero(cnt[inv.ravel()] > 1)
        if not len(cand):
            return 0.0
        rows = np.ascontiguousarray(ops.host(self.X[ops.upload(cand)]))
        v = rows.view(np.dtype((np.void, rows.dtype.itemsize * self.d))).ravel()
        _, inv2, cnt2 = np.unique(v, return_inverse=True, return_counts=True)
        return float((cnt2[inv2.ravel()] > 1).sum()) / self.n


class RoundNeighbours:
    """Each round's neighbours on the device: within the sample
    (``"sample"``), or the full-set lists' rows (``"full"``, searched once)."""

    def __init__(self, dfeat: DeviceFeatures, want: int, mode: str, y: np.ndarray):
        self.f, self.want, self.mode, self.y = dfeat, want, mode, y
        self.full_i = self.full_d = None
        if mode == "full":
            self.full_i, self.full_d = dfeat.neighbours(None, want)

    @property
    def recomputed(self) -> int:
        """Rows searched exhaustively so far (HOCResult.recomputed_rows)."""
        return self.f.recomputed

    def __call__(self, sample: np.ndarray):
        """(ya, yb, nbr, dist) for nz_vote / nz_consensus."""
        ops = self.f.ops
        ya = ops.upload(np.ascontiguousarray(self.y[sample], np.int64))
        if self.mode == "full":
            sd = ops.upload(np.asarray(sample, np.int64))
            return ya, self.f.labels(self.y), self.full_i[sd], self.full_d[sd]
        oi, od = self.f.neighbours(sample, self.want)
        return ya, ya, oi, od
