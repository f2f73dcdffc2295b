"""Fixtures shared by every room of the suite.

``impl`` runs a test once per implementation of the confident-learning API:

* ``reference`` -- labelsift.reference, plain NumPy (the oracle of the kernels);
* ``cpu`` -- the public labelsift API (the compiled C++/OpenMP kernels);
* ``cuda`` -- the CUDA kernels, marked ``gpu``.  labelsift has no CUDA path
  of confident learning yet (``device="cuda"`` raises), so this one skips,
  with the device query's reason when there is no usable GPU.

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


def _cuda_reason():
    info = labelsift.backend_info()
    if not info["cuda_available"]:
        why = info["cuda_reason"] or "the CUDA module is not built"
        return f"no usable CUDA device ({why}); labelsift has no CUDA path of confident learning yet"
    return "labelsift has no CUDA path of confident learning yet (device='cuda' raises ValueError)"


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
