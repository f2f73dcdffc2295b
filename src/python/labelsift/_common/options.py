"""Global options: ``labelsift.options(ties=...)``.

``ties`` says how exactly equal values are ordered wherever a result depends
on their order (the K x K rounding of the calibration, the prune selections,
the ``low_*`` filters, rankings):

* ``"cleanlab"`` (default): as cleanlab 2.9.0 orders them on this machine --
  its unstable ``np.argsort`` of the very array it sorts, so results are
  ``np.array_equal`` to cleanlab's, ties included. That order depends on the
  NumPy build and the CPU (NumPy picks a SIMD sort at run time);
* ``"lower_index"``: the lower row (or class) index first, the same on every
  machine, thread count, block size, shard layout and device.

Outside exact ties both give the same result.
"""
from __future__ import annotations

import contextvars

TIES = ("cleanlab", "lower_index")
#: how find_label_issues reads a dump: "one" (one read plus targeted re-reads),
#: "two" (the two-pass plan), "auto" (one read for a file-backed dump larger
#: than half the available memory, else two passes: _cl.oneread.prefer_one_read)
READS = ("auto", "one", "two")

_global = {"ties": "cleanlab", "reads": "auto"}  # set by options(...) without a with-block: process-wide
_scoped: contextvars.ContextVar = contextvars.ContextVar("labelsift_options", default=None)  # with-blocks


def _current() -> dict:
    scoped = _scoped.get()
    return _global if scoped is None else scoped


def _check(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def current_reads() -> str:
    """The ``reads`` option now in force."""
    return _current()["reads"]


def resolve_ties(ties=None) -> str:
    """The tie rule of a call: its ``ties=`` argument, else the current option."""
    return _current()["ties"] if ties is None else _check("ties", ties, TIES)


class options:
    """labelsift's options, as a setter and as a context manager.

    * ``labelsift.options(ties="lower_index")`` sets the rule for every later
      call in the process;
    * ``with labelsift.options(ties="lower_index"): ...`` sets it for the
      block only (per thread / asyncio task; the setting before the block
      comes back after it);
    * ``labelsift.options()["ties"]`` reads the current value;
    * ``reads="auto"|"one"|"two"``: how ``find_label_issues`` reads a dump
      (see ``READS``); results are identical whichever is used.
    """

    def __init__(self, *, ties=None, reads=None):
        given = {"ties": (ties, TIES), "reads": (reads, READS)}
        self._changes = {k: _check(k, v, choices) for k, (v, choices) in given.items() if v is not None}
        self._before = dict(_current())
        self._prior = _scoped.get()
        self._token = None
        if self._changes and self._prior is None:
            _global.update(self._changes)
        elif self._changes:  # inside a with-block: the setter changes that block's values
            _scoped.set({**self._prior, **self._changes})

    def __getitem__(self, key):
        return _current()[key]

    def __repr__(self) -> str:
        return "labelsift.options(" + ", ".join(f"{k}={v!r}" for k, v in _current().items()) + ")"

    def __enter__(self):
        # the constructor applied the change as a setter: undo that, scope it instead
        if self._prior is None:
            _global.update(self._before)
        else:
            _scoped.set(self._prior)
        self._token = _scoped.set({**self._before, **self._changes})
        return self

    def __exit__(self, *exc):
        _scoped.reset(self._token)
        return False
