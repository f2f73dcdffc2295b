"""Shared fixtures.

``cl`` runs a test once per implementation of the confident-learning API:
``reference`` (labelsift.reference, plain NumPy) and ``labelsift`` (the
compiled kernels behind the public names).  The second is skipped, with the
reason, only when the compiled module cannot be imported.
"""
import importlib
import os
import pathlib

import numpy as np
import pytest

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
LABEL_ERRORS = pathlib.Path(os.environ.get("LABELSIFT_LABEL_ERRORS", SHARED / "data" / "label-errors"))


def _compiled_reason():
    try:
        importlib.import_module("labelsift._core")
    except ImportError as exc:  # pragma: no cover - only without a build
        return f"labelsift._core is not built: {exc}"
    return None


@pytest.fixture(params=["reference", "labelsift"])
def cl(request):
    if request.param == "reference":
        return importlib.import_module("labelsift.reference")
    reason = _compiled_reason()
    if reason:
        pytest.skip(reason)
    return importlib.import_module("labelsift")


def load_dump(name):
    """(labels, pred_probs) of a shared real dump, or skip when absent."""
    p = LABEL_ERRORS / f"{name}_pred_probs.npy"
    if not p.exists():
        pytest.skip(f"shared dump {p} not present")
    return np.load(LABEL_ERRORS / f"{name}_labels.npy"), np.load(p)


@pytest.fixture(autouse=True)
def _lower_index_ties():
    """These tests compare with cleanlab pinned to lower-index ties (see _oracle.py)."""
    import labelsift

    with labelsift.options(ties="lower_index"):
        yield
