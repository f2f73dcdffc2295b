"""Scores, marginals and row weights for the Sinkhorn kernels: checked and
converted here (on top of the shared conversion point
:mod:`labelsift._common.arrays`), nowhere else.

* ``scores``: an N x K NumPy array (any strides, memmaps included), a
  ``.npy`` path, or a torch CPU tensor (DLPack, no copy). float16, float32
  and float64 are read as they are; other real dtypes are converted to
  float64 (one copy).
* ``kind``: ``"logits"`` and ``"log_probs"`` are used as they are (rows are
  shift-invariant, so both mean the same thing); ``"probs"`` are turned into
  log-probabilities once, ``log(max(p, tiny))`` in the input dtype
  (``tiny`` = the dtype's smallest normal number, so a zero probability is a
  very low but finite score): that is one N x K array of the input dtype.
  Pass log-probabilities to avoid it.
* NaN or infinite scores, negative probabilities and ``lam * score``
  overflowing float64 raise ValueError naming the row and column (found by
  the first pass, which checks every value).
"""
from __future__ import annotations

import numbers

import numpy as np

from .._common.arrays import as_2d, host_array, is_pathlike, load_npy

KINDS = ("logits", "log_probs", "probs")
KERNEL_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
MARGINAL_SUM_TOL = 1e-6


def as_scores(scores, kind: str, what: str = "scores", allow_empty: bool = False) -> np.ndarray:
    """The N x K array the kernels read (no copy unless a conversion is needed;
    ``allow_empty``: 0 rows are fine -- one worker's share of a sharded run)."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {', '.join(KINDS)}")
    if is_pathlike(scores):
        scores = load_npy(scores, what)
    host_array(scores, what)
    a = as_2d(scores, what)
    if a.dtype.kind not in "fiu" or a.dtype.kind == "c":
        raise TypeError(f"{what} must hold real numbers, got dtype {a.dtype}")
    n, k = a.shape
    if n == 0 and not allow_empty:
        raise ValueError(f"{what} is empty (0 rows)")
    if k == 0:
        raise ValueError(f"{what} has 0 columns")
    native = a.dtype.newbyteorder("=") if a.dtype.kind == "f" else None
    # (`native is not None` first: np.dtype("float64") == None is True)
    readable = (native is not None and native in KERNEL_DTYPES and a.dtype.isnative and a.strides[0] % a.itemsize == 0
                and a.strides[1] % a.itemsize == 0)
    if not readable:
        a = np.asarray(a, dtype=np.float64)
    if kind == "probs":
        a = _log_probs(a, what)
    return a


def _log_probs(p: np.ndarray, what: str) -> np.ndarray:
    out = np.empty(p.shape, dtype=p.dtype)
    tiny = np.finfo(p.dtype).tiny
    step = max(1, (16 << 20) // max(1, p.shape[1] * p.itemsize))
    for r0 in range(0, len(p), step):
        blk = np.asarray(p[r0:r0 + step])
        bad = ~(np.isfinite(blk) & (blk >= 0))
        if bad.any():
            i, j = np.argwhere(bad)[0]
            v = blk[i, j]
            why = "is NaN" if np.isnan(v) else ("is infinite" if np.isinf(v) else "is negative")
            raise ValueError(f"{what}[{r0 + i}, {j}] = {float(v)!r} {why} (kind='probs' needs probabilities >= 0)")
        np.log(np.maximum(blk, tiny), out=out[r0:r0 + step])
    return out


def describe_bad_row(a: np.ndarray, row: int, lam: float, what: str = "scores", row_offset: int = 0) -> str:
    """The message for a row the kernel found non-finite (named as row_offset + row)."""
    r = np.asarray(a[row], dtype=np.float64)
    nonfin = np.flatnonzero(~np.isfinite(r))
    row = row_offset + row
    if len(nonfin):
        j = int(nonfin[0])
        return f"{what}[{row}, {j}] = {float(r[j])!r} is {'NaN' if np.isnan(r[j]) else 'infinite'}"
    with np.errstate(over="ignore", invalid="ignore"):
        j = int(np.flatnonzero(~np.isfinite(lam * r))[0]) if (~np.isfinite(lam * r)).any() else int(np.argmax(np.abs(r)))
    return f"{what}[{row}, {j}] = {float(r[j])!r} times lam = {lam!r} overflows float64"


def as_lam(lam, what: str = "lam") -> float:
    if isinstance(lam, (bool, np.bool_)) or not isinstance(lam, numbers.Real):
        raise TypeError(f"{what} must be a number, got {lam!r} ({type(lam).__name__})")
    v = float(lam)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{what} must be a finite positive number, got {lam!r}")
    return v


def as_distribution(v, n: int, what: str, allow_zero: bool = False) -> np.ndarray:
    """A length-n probability vector (float64, renormalised to sum exactly 1 after the check)."""
    host_array(v, what)
    if is_pathlike(v):
        v = load_npy(v, what)
    a = np.asarray(v)
    if a.dtype == object or a.dtype.kind not in "iuf":
        raise TypeError(f"{what} must be numeric, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {a.shape}")
    if len(a) != n:
        raise ValueError(f"{what} has {len(a)} entries, expected {n}")
    if not np.isfinite(a).all():
        i = int(np.flatnonzero(~np.isfinite(a))[0])
        raise ValueError(f"{what}[{i}] = {a[i]!r} is not finite")
    bad = a < 0 if allow_zero else a <= 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        need = "non-negative" if allow_zero else "positive (drop a class that should get no samples)"
        raise ValueError(f"{what}[{i}] = {a[i]!r}: every entry must be {need}")
    s = float(np.sum(a))
    if abs(s - 1.0) > MARGINAL_SUM_TOL:
        raise ValueError(f"{what} sums to {s:.9g}, not 1 (tolerance {MARGINAL_SUM_TOL:g})")
    return a / s


def as_potentials(init, k: int, what: str = "init") -> np.ndarray:
    """Column potentials for a warm start: K finite float64 values (a copy)."""
    f = getattr(init, "col_potentials", init)
    host_array(f, what)
    a = np.asarray(f)
    if a.dtype == object or a.dtype.kind not in "iuf":
        raise TypeError(f"{what} must be numeric column potentials, got dtype {a.dtype}")
    if a.shape != (k,):
        raise ValueError(f"{what} must have shape ({k},) (one potential per class), got {a.shape}")
    a = np.array(a, dtype=np.float64)
    if not np.isfinite(a).all():
        i = int(np.flatnonzero(~np.isfinite(a))[0])
        raise ValueError(f"{what}[{i}] = {a[i]!r} is not finite")
    return a
