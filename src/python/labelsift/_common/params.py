"""The checks of scalar, vector and keyword arguments, defined once.

Every public function checks its arguments here before any work: a
``TypeError`` for a value of the wrong type, a ``ValueError`` for one out of
range, each naming the parameter and what is allowed.  (Arrays of
probabilities, labels, ids and K x K matrices are checked in ``arrays``.)
NumPy scalars are accepted where Python ones are; ``bool`` is not taken for
a number (``True`` is not a thread count or a fraction).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

INT64_MAX = int(np.iinfo(np.int64).max)


def _is_bool(x) -> bool:
    return isinstance(x, (bool, np.bool_))


def integer(value, what: str, *, lo: int | None = None, hi: int | None = INT64_MAX) -> int:
    """An integer in [lo, hi]; a float is taken when it is a whole number
    (``5.0``, as cleanlab takes it), refused otherwise."""
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be an integer, got {value!r} ({type(value).__name__})")
    if not isinstance(value, numbers.Integral):
        f = float(value)
        if not (math.isfinite(f) and f == math.floor(f)):
            raise ValueError(f"{what} must be a whole number, got {value!r}")
        value = int(f)
    v = int(value)
    if lo is not None and v < lo:
        raise ValueError(f"{what} must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{what} must be <= {hi}, got {v}")
    return v


def real(value, what: str, *, lo: float, hi: float) -> float:
    """A finite real number in [lo, hi]."""
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number in [{lo:g}, {hi:g}], got {value!r} ({type(value).__name__})")
    v = float(value)
    if not math.isfinite(v) or not (lo <= v <= hi):
        raise ValueError(f"{what} must be a number in [{lo:g}, {hi:g}], got {v!r}")
    return v


def flag(value, what: str) -> bool:
    """A boolean (Python or NumPy; 0 and 1 as integers too, as cleanlab's
    truthiness allows them)."""
    if _is_bool(value):
        return bool(value)
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    raise TypeError(f"{what} must be True or False, got {value!r} ({type(value).__name__})")


def keywords(value, what: str, allowed: dict) -> dict:
    """A dict whose keys are among ``allowed`` (name -> checker), checked."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict (or None), got {type(value).__name__}")
    out = {}
    for key, v in value.items():
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise ValueError(f"{what} has an unknown key {key!r}; allowed: {names}")
        out[key] = allowed[key](v, f"{what}[{key!r}]")
    return out


def _numeric_array(value, what: str) -> np.ndarray:
    if isinstance(value, (str, bytes, dict, set)) or value is None:
        raise TypeError(f"{what} must be an array of numbers, got {type(value).__name__}")
    try:
        a = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{what} must be an array of numbers ({exc})") from None
    if a.dtype == object or a.dtype.kind not in "iuf":
        raise TypeError(f"{what} must hold real numbers, got dtype {a.dtype}")
    return a


def real_vector(value, k: int, what: str, *, lo: float = -math.inf, hi: float = math.inf) -> np.ndarray:
    """A length-k vector of finite reals in [lo, hi] (as given: no copy for an array)."""
    a = _numeric_array(value, what)
    if a.shape != (k,):
        raise ValueError(f"{what} must have shape ({k},) (one value per class), got {a.shape}")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{what}[{i}] = {a[i]!r} is not finite")
    out = (a < lo) | (a > hi)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(f"{what}[{i}] = {a[i]!r} is outside [{lo:g}, {hi:g}]")
    return a


def count_vector(value, k: int, what: str) -> np.ndarray:
    """A length-k vector of non-negative integer counts (integral floats accepted), as int64."""
    a = real_vector(value, k, what, lo=0, hi=INT64_MAX)
    if a.dtype.kind == "f":
        frac = a != np.floor(a)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise ValueError(f"{what}[{i}] = {a[i]!r} is not a whole number")
        if (a >= 2.0 ** 63).any():
            i = int(np.flatnonzero(a >= 2.0 ** 63)[0])
            raise ValueError(f"{what}[{i}] = {a[i]!r} does not fit in int64")
    return a.astype(np.int64)
