"""Loading of the compiled modules and backend_info().

``_core`` (C++/OpenMP) is required by the public API; ``_cuda`` is optional
and loaded lazily: importing labelsift never needs a GPU, a driver or even
the CUDA module.
"""
from __future__ import annotations

import functools
import importlib
import numbers
import os
import warnings

import numpy as np


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


def cuda_module():
    """The CUDA module (ImportError, with the reason, when it was not built)."""
    mod, q = _cuda_state()
    if mod is None:
        raise ImportError(q["reason"])
    return mod


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# No setting may ask for more threads than this, whatever the machine: tens
# of thousands exhaust the OpenMP runtime (it aborts the process).
HARD_MAX_THREADS = 1024


def max_threads() -> int:
    """The thread-count bound: ``$LABELSIFT_MAX_THREADS`` when set (at most
    HARD_MAX_THREADS; for containers whose CPU count is wrong, and for tests of
    odd thread counts), else the CPUs available to this process."""
    env = os.environ.get("LABELSIFT_MAX_THREADS", "").strip()
    if not env:
        return available_cpus()
    n = _positive(env, "LABELSIFT_MAX_THREADS")
    return min(n, HARD_MAX_THREADS)


def _positive(env: str, name: str) -> int:
    try:
        n = int(env, 10)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name}={env!r} is not a positive integer (unset it for the default)")
    return n


def _bounded(n: int, what: str) -> int:
    """``n`` threads, clamped to max_threads() with a warning (as joblib and
    scikit-learn do): more threads than CPUs only wait for each other."""
    bound = max_threads()
    if n > bound:
        cpus = available_cpus()
        where = (f"the {cpus} CPU(s) available to this process" if bound == cpus
                 else f"the bound of {bound} (LABELSIFT_MAX_THREADS; {cpus} CPU(s) available)")
        warnings.warn(f"{what}={n} is more than {where}; using {bound}", RuntimeWarning, stacklevel=4)
        return bound
    return n


def threads(n_jobs=None) -> int:
    """OpenMP threads for a call: ``n_jobs`` if given (an integer >= 1, at
    most max_threads()), else ``$LABELSIFT_NUM_THREADS``, else the OpenMP
    default (all CPUs, or ``$OMP_NUM_THREADS``), each bounded by max_threads()."""
    if n_jobs is None:
        env = os.environ.get("LABELSIFT_NUM_THREADS", "").strip()
        if not env:  # the OpenMP default (all CPUs, or $OMP_NUM_THREADS), bounded too
            return _bounded(int(core().max_threads()), "the OpenMP default thread count")
        n = _positive(env, "LABELSIFT_NUM_THREADS")
        return _bounded(n, "LABELSIFT_NUM_THREADS")
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, numbers.Integral):
        raise TypeError(f"n_jobs must be a positive integer or None (all CPUs), got {n_jobs!r}")
    n = int(n_jobs)
    if n < 1:
        raise ValueError(f"n_jobs must be a positive integer or None (all CPUs), got {n}")
    return _bounded(n, "n_jobs")


def backend_info() -> dict:
    """What this build can run on.

    Keys: ``cpu_threads`` (OpenMP threads used by default), ``cuda_built``
    (whether the CUDA module was compiled), ``cuda_available`` (a usable GPU
    was found), ``cuda_reason`` (why not, empty when available), and
    ``cuda_devices`` (names, when available), ``cuda_compute_capability``
    and ``cuda_memory_bytes`` (one entry per device); ``cpu_isa``: the
    instruction set each family of CPU kernels chose at run time
    (``"amx-bf16x3"``, ``"avx512"``, ``"avx2"``, ``"sse2"`` or ``"portable"``;
    ``LABELSIFT_NO_AMX``, ``LABELSIFT_NO_AVX512`` and ``LABELSIFT_NO_AVX2`` lower
    it). Results never depend on it.
    """
    mod, q = _cuda_state()
    c = core()
    names = ("portable", "avx2", "avx512")
    gram, select = c.knn_isa()
    vec_names = {1: "portable", 2: "sse2", 3: "avx2", 4: "avx512"}
    cpu_isa = {
        "confident_learning": names[c.cl_isa()],
        "knn_gram": "amx-bf16x3" if c.knn_amx_usable() else names[gram],
        "knn_select": names[select],
        "sinkhorn": vec_names.get(int(c.vec_isa()), "portable"),
        "multilabel_scores": vec_names.get(int(c.vec_isa()), "portable"),
    }
    available = mod is not None and q.get("count", 0) > 0
    return {
        "cpu_threads": int(c.max_threads()),
        "cpu_isa": cpu_isa,
        "cuda_built": mod is not None,
        "cuda_available": available,
        "cuda_reason": "" if available else q.get("reason", ""),
        "cuda_devices": list(q.get("names", [])),
        "cuda_compute_capability": list(q.get("compute_capability", [])),
        "cuda_memory_bytes": list(q.get("memory_bytes", [])),
        "cuda_runtime_version": q.get("runtime_version", 0),
        "cuda_driver_version": q.get("driver_version", 0),
    }
