"""Multi-label labels -> one CSR form (``MultiLabels``), with clear errors.

Accepted: a list (or tuple) of per-example label lists, empty lists allowed
(cleanlab's format); an N x K 0/1 array; a SciPy sparse matrix (CSR or any
other format, N x K, 0/1). Duplicates inside a row count once, as
``MultiLabelBinarizer`` does.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .._common.backend import core


@dataclass
class MultiLabels:
    indptr: np.ndarray  # int64 (N + 1,)
    indices: np.ndarray  # int32, ascending and unique inside each row
    n: int
    k: int

    def counts(self) -> np.ndarray:
        """Number of examples with class c, per c (int64; bincount in chunks: it
        would copy all the int32 indices to intp at once)."""
        out = np.zeros(self.k, np.int64)
        step = 1 << 20
        for a in range(0, len(self.indices), step):
            out += np.bincount(self.indices[a:a + step], minlength=self.k)
        return out

    def column(self, c: int) -> np.ndarray:
        """The binary labels of class c (int64 0/1, length N)."""
        out = np.zeros(self.n, np.int64)
        rows = np.repeat(np.arange(self.n), np.diff(self.indptr))
        out[rows[self.indices == c]] = 1
        return out

    def sub(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """(indptr int64, indices int32) of the CSR rows ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lens, out=indptr[1:])
        pos = np.arange(int(indptr[-1]), dtype=np.int64) + np.repeat(starts - indptr[:-1], lens)
        return indptr, self.indices[pos]

    def dense(self, rows=None) -> np.ndarray:
        """N x K (or len(rows) x K) int64 one-hot matrix (cleanlab's ``int2onehot``)."""
        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), self.k), np.int64)
        indptr, indices = self.sub(rows)
        out[np.repeat(np.arange(len(rows)), np.diff(indptr)), indices] = 1
        return out


def _from_flat(lengths: np.ndarray, flat: np.ndarray, n: int, k: int, what: str) -> MultiLabels:
    if flat.size and (flat.min() < 0 or flat.max() >= k):
        bad = np.flatnonzero((flat < 0) | (flat >= k))
        if bad.size:
            row = int(np.searchsorted(np.cumsum(lengths), bad[0], side="right"))
            raise ValueError(f"{what}[{row}] contains class {int(flat[bad[0]])}, outside 0..{k - 1} "
                             f"(pred_probs has {k} columns)")
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, dtype=np.int64, out=indptr[1:])
    if flat.size < 2:
        return MultiLabels(indptr, flat.astype(np.int32), n, k)
    # already ascending and unique inside every row (the usual case): no sort, no int64 copy
    up = flat[1:] > flat[:-1]
    inner = indptr[1:-1]
    for a in range(0, len(inner), 1 << 16):  # row boundaries, in chunks (no N-long temporaries)
        b = inner[a:a + (1 << 16)]
        up[b[(b > 0) & (b < flat.size)] - 1] = True
    if up.all():
        return MultiLabels(indptr, flat.astype(np.int32, copy=False), n, k)
    del up
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    key = rows * k + flat.astype(np.int64)
    key = np.unique(key)  # sorts by (row, class) and drops duplicates
    rows, cols = np.divmod(key, k)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return MultiLabels(indptr, cols.astype(np.int32), n, k)


def _fast_lists(labels, n: int):
    """(lengths, flat int32) of a list of flat lists / tuples / 1-D integer
    arrays of integers, without a Python loop per row nor a list of all the
    labels; None for anything else (the checked loop then names the
    offending row)."""
    kinds = set(map(type, labels))
    if not kinds <= {list, tuple, range, np.ndarray}:
        return None
    if np.ndarray in kinds and any(isinstance(r, np.ndarray) and r.ndim != 1 for r in labels):
        return None
    if not set(map(type, itertools.chain.from_iterable(labels))) <= {int, bool, np.int64, np.int32, np.intp}:
        return None
    lengths = np.fromiter(map(len, labels), np.int32, count=n)
    try:
        flat = np.fromiter(itertools.chain.from_iterable(labels), np.int32, count=int(lengths.sum(dtype=np.int64)))
    except (ValueError, OverflowError):  # a class index beyond int32: the checked loop reports it
        return None
    return lengths, flat


def as_multilabels(labels, n: int, k: int, what: str = "labels") -> MultiLabels:
    """Check and convert ``labels`` for N examples and K classes."""
    if isinstance(labels, MultiLabels):
        if (labels.n, labels.k) != (n, k):
            raise ValueError(f"{what} are for {labels.n} examples and {labels.k} classes, not {n} and {k}")
        return labels
    if hasattr(labels, "tocsr") and hasattr(labels, "shape"):  # scipy.sparse
        m = labels.tocsr()
        if m.shape != (n, k):
            raise ValueError(f"{what} is a sparse matrix of shape {m.shape}; expected ({n}, {k}) "
                             "(N rows of pred_probs, K classes)")
        m.sum_duplicates()
        data = np.asarray(m.data)
        if data.size and not np.isin(data, (0, 1)).all():
            raise ValueError(f"{what}: a sparse label matrix must hold 0/1 entries")
        coo = m.tocoo()
        keep = coo.data != 0
        lengths = np.bincount(coo.row[keep], minlength=n)
        order = np.lexsort((coo.col[keep], coo.row[keep]))
        return _from_flat(lengths, coo.col[keep][order].astype(np.int64), n, k, what)
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        if labels.shape != (n, k):
            raise ValueError(f"{what} is an array of shape {labels.shape}; expected ({n}, {k}) as a 0/1 matrix")
        if labels.dtype.kind not in "biuf" or not np.isin(labels, (0, 1)).all():
            raise ValueError(f"{what}: an N x K label matrix must hold 0/1 entries")
        rows, cols = np.nonzero(labels)
        return _from_flat(np.bincount(rows, minlength=n), cols.astype(np.int64), n, k, what)
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise TypeError(f"{what} must be a list of per-example label lists (multi_label=True), got "
                        f"{type(labels).__name__}")
    if len(labels) != n:
        raise ValueError(f"{what} has {len(labels)} examples but pred_probs has {n} rows")
    fast = core().ml_flatten_lists(labels)  # lists / tuples of Python ints, in C++
    if fast is None:
        fast = _fast_lists(labels, n)
    if fast is not None:
        return _from_flat(fast[0], fast[1], n, k, what)
    lengths = np.empty(n, np.int64)
    for i, row in enumerate(labels):
        if isinstance(row, (str, bytes, dict)) or not hasattr(row, "__len__") or np.ndim(row) > 1:
            raise TypeError(f"{what}[{i}] = {row!r} is not a list of class indices; multi-label labels are a list "
                            "of per-example lists such as [[0, 2], [1], []] (nested one level deep)")
        lengths[i] = len(row)
    flat_list = list(itertools.chain.from_iterable(labels))
    try:
        flat = np.asarray(flat_list) if flat_list else np.zeros(0, np.int64)
    except ValueError:
        flat = np.asarray(flat_list, dtype=object)
    if flat.ndim != 1 or (flat.size and flat.dtype.kind not in "iub"):
        if flat.dtype.kind == "O" or flat.ndim != 1:
            row = next(i for i, r in enumerate(labels) if any(np.ndim(v) > 0 for v in r))
            raise TypeError(f"{what}[{row}] = {labels[row]!r} is nested more than one level deep; each example's "
                            "labels must be a flat list of class indices")
        row = next(i for i, r in enumerate(labels) if any(not isinstance(v, (int, np.integer)) for v in r))
        raise TypeError(f"{what}[{row}] = {labels[row]!r} holds non-integer class indices")
    return _from_flat(lengths, flat.astype(np.int64), n, k, what)
