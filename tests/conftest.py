"""Fixtures shared by every room of the suite.

``impl`` runs a test once per implementation of the confident-learning API:

* ``reference`` -- labelsift.reference, plain NumPy (the oracle of the kernels);
* ``cpu`` -- the public labelsift API (the compiled C++/OpenMP kernels);
* ``cuda`` -- the CUDA path, marked ``gpu``.  It always skips: the CUDA
  path covers find_label_issues, compute_confident_joint and
  get_confident_thresholds on CUDA arrays (tests/gpu/test_cuda_cl.py
  compares them with the CPU path), not every name ``impl`` answers, and
  ``device="cuda"`` for host inputs is not implemented; without a usable
  GPU the reason says why.

Every implementation answers the same module-level names
(``impl.find_label_issues`` ...), so one test body checks them all.
"""
import importlib
import os

import pytest

# Thread counts above the CPUs are clamped (with a warning) for users; the
# suite still runs odd thread counts (3, 7) on a 2-core machine.
os.environ.setdefault("LABELSIFT_MAX_THREADS", "16")

import labelsift


def _compiled_reason():
    try:
        importlib.import_module("labelsift._core")
    except ImportError as exc:  # pragma: no cover - only without a build
        return f"labelsift._core is not built: {exc}"
    return None


_CUDA_SCOPE = ("the CUDA path covers only find_label_issues, compute_confident_joint and "
               "get_confident_thresholds on CUDA arrays (tested in tests/gpu/test_cuda_cl.py); "
               "device='cuda' for host inputs raises ValueError")


def _cuda_reason():
    info = labelsift.backend_info()
    if not info["cuda_available"]:
        why = info["cuda_reason"] or "the CUDA module is not built"
        return f"no usable CUDA device ({why}); besides, {_CUDA_SCOPE}"
    return _CUDA_SCOPE


@pytest.fixture(params=["reference", "cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def impl(request):
    if request.param == "reference":
        return importlib.import_module("labelsift.reference")
    if request.param == "cpu":
        reason = _compiled_reason()
        if reason:
            pytest.skip(reason)
        return labelsift
    pytest.skip(_cuda_reason())


@pytest.fixture(autouse=True)
def _lower_index_ties():
    """Pins the suite to ``ties="lower_index"``: its cleanlab comparisons run
    cleanlab with the K x K rounding ties pinned to the lower index
    (support.oracle).  Tests of the default rule override this fixture."""
    with labelsift.options(ties="lower_index"):
        yield
