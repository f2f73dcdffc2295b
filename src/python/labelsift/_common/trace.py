"""Stage timings of the engines, for benchmarks and profiling.

The engines wrap each stage of a call in ``with stage("name"):``. Nothing is
recorded (and the cost is one attribute lookup) unless a caller is inside
``recording()``::

    from labelsift._common import trace
    with trace.recording() as stages:
        labelsift.find_label_issues(labels, pred_probs)
    print(stages)   # {"given_probs": 0.021, "row_pass": 0.18, ...} in seconds

Times of a stage entered several times are added up. Recording is per
thread.
"""
from __future__ import annotations

import contextlib
import threading
import time

_local = threading.local()


@contextlib.contextmanager
def recording():
    """Collect {stage name: seconds} for the calls made inside the block."""
    outer = getattr(_local, "stages", None)
    stages: dict[str, float] = {}
    _local.stages = stages
    try:
        yield stages
    finally:
        _local.stages = outer


@contextlib.contextmanager
def stage(name: str):
    stages = getattr(_local, "stages", None)
    if stages is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - t0
