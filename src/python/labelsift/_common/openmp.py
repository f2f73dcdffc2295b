"""The wait policy of labelsift's OpenMP runtime, set once as _core loads.

By default libgomp's idle threads spin for a while after every parallel
region. Next to another thread pool -- NumPy's OpenBLAS in the k-NN
search's GEMM tiles, scikit-learn's OpenMP copy, a user's own threads --
those spinning threads take the cores the other pool needs: on 2 cores the
exact k-NN search ran 2x slower (its GEMMs and the selection regions
alternate), and the other pool's spinning slowed labelsift's regions too.

libgomp reads its policy from the environment when it is loaded, so, unless
the user has chosen one (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` set),
``OMP_WAIT_POLICY=PASSIVE`` is put in the environment just while
``labelsift._core`` (and with it libgomp) is loaded, and taken out again:
other libraries loaded later see the environment the user had. Where
libgomp was already loaded by someone else, this changes nothing.
``OMP_WAIT_POLICY=ACTIVE`` restores libgomp's spinning.
"""
from __future__ import annotations

import importlib
import os

_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def load_core_passive() -> bool:
    """Import labelsift._core with the passive wait policy (see above);
    True when the policy was applied here."""
    if any(v in os.environ for v in _VARS):
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        importlib.import_module("labelsift._core")
    except ImportError:  # a broken install: backend.core() says so when it is needed
        return False
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)
    return True


PASSIVE = load_core_passive()
