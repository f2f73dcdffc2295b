"""Checks and conversion of HOC's and SimiFeat's inputs.

The first argument is one of

* features: a 2-D float array (float16/32/64), memmap or ``.npy`` path (N x d);
* neighbour lists: a 2-D integer array of indices (N x k), or a tuple
  ``(indices, distances)`` (distances N x k floats, ascending per row), or a
  SciPy sparse kNN graph (CSR, as Datalab keeps it: the same number of stored
  neighbours per row, the data being distances).

Lists must exclude the row itself and be sorted nearest first.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._common import params
from .._common.arrays import host_array, is_pathlike, load_npy
from .._common.cuda_arrays import is_cuda_array


@dataclass
class Data:
    kind: str                       # "features", "lists" or "device" (features: a DeviceFeatures)
    n: int
    features: np.ndarray | None = None
    indices: np.ndarray | None = None     # (N, k) int64
    distances: np.ndarray | None = None   # (N, k) float64 or None


def _from_csr(g, what: str) -> Data:
    g = g.tocsr()
    n = g.shape[0]
    if g.shape[0] != g.shape[1]:
        raise ValueError(f"{what}: a kNN graph must be square (N x N), got shape {g.shape}")
    nnz = np.diff(g.indptr)
    if n == 0 or nnz.min() != nnz.max() or nnz[0] == 0:
        raise ValueError(f"{what}: every row of the kNN graph must store the same number (>= 1) of neighbours")
    k = int(nnz[0])
    idx = np.asarray(g.indices, np.int64).reshape(n, k)
    d = np.asarray(g.data, np.float64).reshape(n, k)
    # nearest first, ties by the lower index (two stable sorts)
    o = np.argsort(idx, axis=1, kind="stable")
    idx = np.take_along_axis(idx, o, 1)
    d = np.take_along_axis(d, o, 1)
    o = np.argsort(d, axis=1, kind="stable")
    return Data("lists", n, indices=np.take_along_axis(idx, o, 1), distances=np.take_along_axis(d, o, 1))


def _check_lists(idx, dist, what: str) -> Data:
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{what}: neighbour indices must be integers, got dtype {idx.dtype}")
    if idx.ndim != 2:
        raise ValueError(f"{what}: neighbour indices must be 2-D (N x k), got shape {idx.shape}")
    n, k = idx.shape
    if n < 2 or k < 1:
        raise ValueError(f"{what}: neighbour indices must have N >= 2 rows and k >= 1 columns, got shape {idx.shape}")
    if idx.dtype == np.uint64 and idx.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{what}: neighbour index {int(idx.max())} is out of range 0..{n - 1}")
    i64 = np.ascontiguousarray(idx, np.int64)
    bad = np.flatnonzero(((i64 < 0) | (i64 >= n)).any(axis=1))
    if len(bad):
        r = int(bad[0])
        raise ValueError(f"{what}: neighbour indices of row {r} ({i64[r].tolist()[:8]}) are outside 0..{n - 1}")
    selfy = np.flatnonzero((i64 == np.arange(n)[:, None]).any(axis=1))
    if len(selfy):
        r = int(selfy[0])
        raise ValueError(f"{what}: row {r} lists itself as a neighbour; neighbour lists must exclude the row itself")
    d = None
    if dist is not None:
        host_array(dist, f"{what} distances")
        d = np.asarray(dist)
        if d.dtype.kind not in "fiu":
            raise TypeError(f"{what}: distances must be real numbers, got dtype {d.dtype}")
        if d.shape != (n, k):
            raise ValueError(f"{what}: distances must have the shape of the indices {(n, k)}, got {d.shape}")
        d = np.ascontiguousarray(d, np.float64)
        if not np.isfinite(d).all():
            r = int(np.flatnonzero(~np.isfinite(d).all(axis=1))[0])
            raise ValueError(f"{what}: distances of row {r} are not all finite")
        if k > 1 and (np.diff(d, axis=1) < 0).any():
            r = int(np.flatnonzero((np.diff(d, axis=1) < 0).any(axis=1))[0])
            raise ValueError(f"{what}: distances of row {r} are not sorted nearest first")
    return Data("lists", n, indices=i64, distances=d)


def as_data(data, what: str = "features") -> Data:
    """Features or neighbour lists, checked (see the module docstring)."""
    if data is None:
        raise TypeError(f"{what} must be features (N x d floats) or neighbour lists, got None")
    if hasattr(data, "tocsr") and hasattr(data, "shape") and not isinstance(data, np.ndarray):
        return _from_csr(data, what)
    if isinstance(data, tuple):
        if len(data) != 2:
            raise TypeError(f"{what}: a tuple must be (indices, distances), got {len(data)} items")
        from .device import host_copy  # CUDA lists are O(N k): checked and used on the host
        return _check_lists(host_copy(data[0], f"{what} indices"), host_copy(data[1], f"{what} distances"), what)
    if is_pathlike(data):
        data = load_npy(data, what)
    if is_cuda_array(data):
        from .device import DeviceFeatures, host_copy
        from .._common.cuda_arrays import parse

        if parse(data, what).dtype.kind in "iu":
            return _check_lists(host_copy(data, f"{what} indices"), None, what)
        f = DeviceFeatures(data, what)
        return Data("device", f.n, features=f)
    host_array(data, what)
    if not isinstance(data, np.ndarray):
        if isinstance(data, (list, str, bytes, dict, set)) or not hasattr(data, "__array__"):
            raise TypeError(f"{what} must be a 2-D array, a .npy path, (indices, distances) or a kNN graph, "
                            f"got {type(data).__name__}")
        data = np.asarray(data)
    if data.dtype.kind in "iu":
        return _check_lists(data, None, what)
    if data.dtype.kind != "f":
        raise TypeError(f"{what} must hold floats (features) or integers (neighbour indices), got dtype {data.dtype}")
    if data.ndim != 2:
        raise ValueError(f"{what} must be 2-D (num_examples x num_features), got shape {data.shape}")
    n, d = data.shape
    if n < 4 or d < 1:
        raise ValueError(f"{what} must have at least 4 rows and 1 column, got shape {data.shape}")
    step = max(1, (16 << 20) // max(1, data.itemsize * d))
    for lo in range(0, n, step):
        blk = np.asarray(data[lo:lo + step])
        ok = np.isfinite(blk).all(axis=1)
        if not ok.all():
            r = lo + int(np.flatnonzero(~ok)[0])
            raise ValueError(f"{what}: row {r} has a non-finite value (NaN or inf)")
    return Data("features", n, features=data)


def as_labels(labels, n: int, num_classes, what_rows: str = "features"):
    """(labels int64, K) checked against N rows; K = max + 1 when num_classes is None."""
    if is_pathlike(labels):
        labels = load_npy(labels, "labels")
    if is_cuda_array(labels):
        from .device import host_copy

        labels = host_copy(labels, "labels")
    host_array(labels, "labels")
    if isinstance(labels, (str, bytes, dict, set)) or labels is None:
        raise TypeError(f"labels must be an integer array, got {type(labels).__name__}")
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must have an integer dtype, got {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"labels has {len(y)} entries but {what_rows} has {n} rows")
    if y.dtype == np.uint64 and y.max() > np.iinfo(np.int64).max:
        raise ValueError(f"labels has a value {int(y.max())} that is not a class index")
    y64 = np.ascontiguousarray(y, np.int64)
    if num_classes is None:
        k = int(y64.max()) + 1 if n else 0
        if (y64 < 0).any():
            i = int(np.flatnonzero(y64 < 0)[0])
            raise ValueError(f"labels[{i}] = {y64[i]} is not a class index (must be >= 0)")
    else:
        k = params.integer(num_classes, "num_classes", lo=2, hi=1 << 21)
    if k < 2:
        raise ValueError(f"num_classes must be >= 2, got {k} (labels hold a single class)")
    bad = np.flatnonzero((y64 < 0) | (y64 >= k))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"labels[{i}] = {y64[i]} is not a class index in 0..{k - 1} (num_classes = {k})")
    return y64, k


def seed_streams(seed, count: int):
    """``count`` independent generators from SeedSequence(seed) (NumPy's global RNG is never touched)."""
    s = params.integer(seed, "seed", lo=0)
    return [np.random.default_rng(c) for c in np.random.SeedSequence(s).spawn(count)]


def sample_size_for(n: int, sample_size) -> int:
    """Docta's per-round sample: min(sample_size, int(0.9 N))."""
    m = params.integer(sample_size, "sample_size", lo=1)
    return min(m, int(0.9 * n))


def exact_duplicate_rate(features: np.ndarray) -> float:
    """Fraction of rows whose values equal (bytewise) those of another row."""
    f = np.ascontiguousarray(features)
    n, d = f.shape
    v = f.view(np.dtype((np.void, f.dtype.itemsize * d))).ravel()
    _, inv, cnt = np.unique(v, return_inverse=True, return_counts=True)
    return float((cnt[inv.ravel()] > 1).sum()) / n
