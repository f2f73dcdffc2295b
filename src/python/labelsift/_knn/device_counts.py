"""Neighbour label statistics of CUDA neighbour lists (``labelsift._cuda``:
``knn_votes``, kernels in ``src/cuda/knn/vote_kernels.cu``): label_counts,
agreement and knn_pred_probs of :mod:`.counts` on the device, with NumPy's
additions in NumPy's order (equal to the host functions bit for bit).

The neighbour indices stay where they are (int32/int64, any strides); the
labels are validated on the host (O(N)) and copied to the device once, the
weights too (validated on the host, uploaded as float64). Results come back
as arrays of the indices' kind (torch, CuPy; NumPy for other producers).
"""
from __future__ import annotations

import sys

import numpy as np

from .._common.cuda_arrays import CudaArray, DeviceMatrix, is_cuda_array, parse

MODES = {"counts": 0, "counts_w": 1, "pred_probs": 2, "agreement": 3}


def is_device(indices) -> bool:
    return is_cuda_array(indices) or (isinstance(indices, tuple) and len(indices) == 2
                                      and is_cuda_array(indices[0]))


class _Idx(DeviceMatrix):
    def __init__(self, arr: CudaArray, cuda):
        super().__init__(arr, cuda)
        self.n, self.k = arr.shape


def _host(dm: _Idx, x, what: str) -> np.ndarray:
    """A host copy of a CUDA array (labels, weights), or the host array itself."""
    if not is_cuda_array(x):
        return x
    a = parse(x, what)
    return dm.fetch(a.ptr, a.shape, a.strides, a.dtype)


def _out(dm: _Idx, shape, dtype):
    """(pointer, finish) for an output of the indices' kind on their device."""
    fw = dm.arr.framework
    if fw == "torch" and "torch" in sys.modules:
        torch = sys.modules["torch"]
        t = torch.empty(shape, dtype={np.dtype(np.int64): torch.int64, np.dtype(np.float64): torch.float64}[
            np.dtype(dtype)], device=dm.arr.owner.device)
        return int(t.data_ptr()), lambda: t
    if fw == "cupy" and "cupy" in sys.modules:
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(dm.dev):
            c = cupy.empty(shape, dtype)
        return int(c.data.ptr), lambda: c
    buf = dm.alloc(int(np.prod(shape)) * np.dtype(dtype).itemsize)

    def finish():
        h = np.empty(shape, dtype)
        dm.cuda.copy_dtoh(h, buf.ptr, dm.dev, dm.stream)
        return h
    return buf.ptr, finish


def votes(labels, indices, num_classes, weights, what: str):
    """``what`` in "counts" / "pred_probs" / "agreement" (num_classes None: from the labels)."""
    from .._cl.device import require_cuda
    from .._common.arrays import as_labels
    from .._common.params import integer
    from .counts import _weights

    if isinstance(indices, tuple):
        indices = indices[0]
    cuda = require_cuda("indices")
    a = parse(indices, "indices")
    if a.dtype.kind not in "iu" or a.dtype.itemsize not in (4, 8) or a.dtype == np.uint64:
        raise TypeError(f"indices: CUDA arrays of dtype {a.dtype} are not supported (int32 or int64 row indices)")
    if a.ndim != 2:
        raise ValueError(f"indices must be 2-D (N x k), got shape {a.shape}")
    if a.shape[1] == 0:
        raise ValueError("indices: k = 0 neighbours")
    dm = _Idx(a, cuda)
    n, k = dm.n, dm.k
    yh = np.asarray(_host(dm, labels, "labels"))
    if num_classes is None:
        K = int(yh.max()) + 1 if len(yh) and yh.dtype.kind in "iu" else 1
    else:
        K = integer(num_classes, "num_classes", lo=1)
    y = np.ascontiguousarray(as_labels(yh, n, K), dtype=np.int64)
    w = None if weights is None else np.ascontiguousarray(_weights(_host(dm, weights, "weights"), (n, k)))
    yd = dm.upload(y)
    wd = None if w is None else dm.upload(w)
    mode = MODES[what] if what != "counts" or w is None else MODES["counts_w"]
    shape = (n,) if what == "agreement" else (n, K)
    dtype = np.int64 if mode == MODES["counts"] else np.float64
    ptr, finish = _out(dm, shape, dtype)
    row, col = cuda.knn_votes(a.ptr, n, k, a.strides[0], a.strides[1], a.dtype.itemsize == 4, yd.ptr,
                              0 if wd is None else wd.ptr, K, mode, ptr, dm.dev, dm.stream)
    if row >= 0:
        v = dm.fetch(a.ptr + (row * a.strides[0] + col * a.strides[1]) * a.dtype.itemsize, (1,), (1,), a.dtype)[0]
        raise ValueError(f"indices[{row}, {col}] = {v} is not a row index in 0..{n - 1} (or -1 for none)")
    return finish()
