"""Feature matrices in: arrays, memmaps and ``.npy`` paths (never copied when
the kernels can read them), validated finite block by block."""
from __future__ import annotations

import numpy as np

from .._common.arrays import host_array, is_pathlike, load_npy

KERNEL_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_CHECK_BYTES = 64 << 20


def as_features(features, what: str = "features") -> np.ndarray:
    """A 2-D float array the kernels read (float16/32/64, native order), as
    given when possible; integers, bfloat16 and other floats become float64
    (float32 for bfloat16). Raises on NaN/inf, empty or non-2-D input."""
    if is_pathlike(features):
        features = load_npy(features, what)
    host_array(features, what)
    if not isinstance(features, np.ndarray):
        if isinstance(features, (str, bytes, dict, set)) or features is None:
            raise TypeError(f"{what} must be a 2-D array of numbers, got {type(features).__name__}")
        try:
            features = np.asarray(features)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{what} must be a 2-D array of numbers ({exc})") from None
    X = features
    if X.dtype == object or X.dtype.kind not in "fiub" and X.dtype.name != "bfloat16":
        raise TypeError(f"{what} must hold real numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{what} must be 2-D (num_examples x num_features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {X.shape})")
    if X.dtype.name == "bfloat16":  # ml_dtypes: every bfloat16 is a float32
        X = X.astype(np.float32)
    elif X.dtype not in KERNEL_DTYPES or not X.dtype.isnative:
        X = np.asarray(X, dtype=np.float64)
    if X.strides[0] % X.itemsize or X.strides[1] % X.itemsize:
        X = np.ascontiguousarray(X)
    step = max(1, _CHECK_BYTES // max(1, X.shape[1] * X.itemsize))
    for a in range(0, X.shape[0], step):
        blk = X[a:a + step]
        ok = np.isfinite(blk)
        if not ok.all():
            i, j = np.argwhere(~ok)[0]
            raise ValueError(f"{what}[{a + i}, {j}] = {blk[i, j]!r} is not finite")
    return X
