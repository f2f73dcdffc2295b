"""Loading of the compiled modules and backend_info().

``_core`` (C++/OpenMP) is required by the public API; ``_cuda`` is optional
and loaded lazily: importing labelsift never needs a GPU, a driver or even
the CUDA module.
"""
from __future__ import annotations

import functools
import importlib
import os


@functools.lru_cache(maxsize=None)
def core():
    try:
        return importlib.import_module("labelsift._core")
    except ImportError as exc:  # pragma: no cover - broken install
        raise ImportError(
            "labelsift's compiled module _core is missing; reinstall with `pip install .` "
            f"(a C++17 compiler with OpenMP is needed): {exc}"
        ) from exc


@functools.lru_cache(maxsize=None)
def _cuda_state():
    try:
        mod = importlib.import_module("labelsift._cuda")
    except ImportError as exc:
        return None, {"count": 0, "reason": f"labelsift was built without CUDA ({exc})"}
    q = mod.device_query()
    return mod, q


def threads(n_jobs=None) -> int:
    """OpenMP threads for a call: n_jobs if given (>= 1), else all."""
    if n_jobs is None:
        env = os.environ.get("LABELSIFT_NUM_THREADS")
        return int(env) if env else 0  # 0: the OpenMP default
    n = int(n_jobs)
    if n < 1:
        raise ValueError(f"n_jobs must be >= 1 or None, got {n_jobs}")
    return n


def backend_info() -> dict:
    """What this build can run on.

    Keys: ``cpu_threads`` (OpenMP threads used by default), ``cuda_built``
    (whether the CUDA module was compiled), ``cuda_available`` (a usable GPU
    was found), ``cuda_reason`` (why not, empty when available), and
    ``cuda_devices`` (names, when available).
    """
    mod, q = _cuda_state()
    available = mod is not None and q.get("count", 0) > 0
    return {
        "cpu_threads": int(core().max_threads()),
        "cuda_built": mod is not None,
        "cuda_available": available,
        "cuda_reason": "" if available else q.get("reason", ""),
        "cuda_devices": list(q.get("names", [])),
        "cuda_runtime_version": q.get("runtime_version", 0),
    }
