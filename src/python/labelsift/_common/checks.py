"""Checks shared by every method: argument choices, the multi-label guard,
and the errors the kernels report for invalid rows."""
from __future__ import annotations

import numpy as np

from .backend import core

MULTI_LABEL_MESSAGE = "multi_label=True is not supported yet in labelsift"

# What the kernels' row-error codes mean (the codes come from the C++ enum).
_ROW_ERROR_TEXT = {"nan": "is NaN", "inf": "is infinite", "range": "is outside [-1e-06, 1.0001]"}


def no_multi_label(multi_label) -> None:
    if multi_label:
        raise NotImplementedError(MULTI_LABEL_MESSAGE)


def check_choice(value, choices, what: str) -> None:
    """ValueError unless ``value`` is one of ``choices`` (named in the message)."""
    if value not in choices:
        raise ValueError(f"{what}={value!r} is not one of {', '.join(choices)}")


def raise_row_error(block: np.ndarray, err, row_name, cell_name, sum_tolerance: float) -> None:
    """Raise the ValueError for a kernel's (row, code, col) report, if any.

    ``row_name(r)`` / ``cell_name(r, c)`` say how the caller names a block
    row and cell (global row index, example id, ...).
    """
    row, code, col = err
    if row < 0:
        return
    names = {v: k for k, v in core().ROW_ERROR_CODES.items()}
    if names[code] == "sum":
        s = float(np.sum(np.asarray(block[row], dtype=np.float64)))
        raise ValueError(
            f"{row_name(row)} sums to {s:.6g}, not 1 (tolerance {sum_tolerance:g}); "
            "pass probabilities (e.g. softmax outputs), not logits or scores"
        )
    raise ValueError(f"{cell_name(row, col)} = {block[row, col]!r} {_ROW_ERROR_TEXT[names[code]]}")
