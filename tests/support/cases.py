"""The named ``(labels, pred_probs)`` cases compared with cleanlab.

``CASES``: name -> (maker, tie_free).  Tie-free cases (continuous float64 /
float32 data) must have no tie at any selection boundary, so their masks
are compared exactly.
"""
from __future__ import annotations

import functools

import numpy as np

from support.data import make_data, real_dump


def _real(name, dtype):
    def load():
        labels, probs = real_dump(name)
        return labels, probs.astype(dtype)
    return load


def _gen(*args, **kwargs):
    return lambda: make_data(*args, **kwargs)


CASES = {
    "cifar10-f64": (_real("cifar10", np.float64), True),
    "cifar10-f32": (_real("cifar10", np.float32), True),
    "cifar10-f16": (_real("cifar10", np.float16), False),
    "mnist-f64": (_real("mnist", np.float64), True),
    "mnist-f32": (_real("mnist", np.float32), True),
    "mnist-f16": (_real("mnist", np.float16), False),
    "k2-f64-i64": (_gen(1, 500, 2), True),
    "k3-f32-u8-tiny": (_gen(2, 600, 3, dtype=np.float32, label_dtype=np.uint8, tiny=1), True),
    "k3-f16-u8-small": (_gen(3, 60, 3, dtype=np.float16, label_dtype=np.uint8), False),
    "k10-f64-u16-absent-single-tiny": (
        _gen(4, 3000, 10, label_dtype=np.uint16, absent=1, singletons=1, tiny=1), True),
    "k10-f32-i32-absent2": (_gen(5, 2000, 10, dtype=np.float32, label_dtype=np.int32, absent=2),
                            True),
    "k10-f16-i32-absent-single-tiny": (
        _gen(6, 3000, 10, dtype=np.float16, label_dtype=np.int32, absent=1, singletons=1,
             tiny=1), False),
    "k100-f32-u16-absent-single-tiny": (
        _gen(7, 4000, 100, dtype=np.float32, label_dtype=np.uint16, absent=3, singletons=3,
             tiny=3), True),
    "k100-f16-i64-absent-single-tiny": (
        _gen(8, 3000, 100, dtype=np.float16, absent=2, singletons=2, tiny=2), False),
    "k1000-f64-u16": (_gen(9, 2500, 1000, label_dtype=np.uint16), True),
    "k1000-f16-i32": (_gen(10, 1500, 1000, dtype=np.float16, label_dtype=np.int32), False),
}
CASE_IDS = list(CASES)
# Cases for the option sweeps (keep the run fast): real and generated,
# float64 and float16, absent/singleton/tiny classes.
OPTION_CASES = [
    "cifar10-f64",
    "cifar10-f16",
    "k10-f64-u16-absent-single-tiny",
    "k10-f16-i32-absent-single-tiny",
    "k100-f32-u16-absent-single-tiny",
]


@functools.lru_cache(maxsize=None)
def case_data(name):
    """The (read-only) arrays of case ``name``, built once per session."""
    labels, probs = CASES[name][0]()
    labels.setflags(write=False)
    probs.setflags(write=False)
    return labels, probs


def tie_free(name):
    return CASES[name][1]
