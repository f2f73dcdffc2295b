"""The row pass sweeps short rows several at a time, one row per SIMD lane
(K <= 80 for float64, K <= 160 for float32/float16), longer ones one at a
time, and the rows left over after the last full group of lanes one at a
time too.  These tests sit on those boundaries: class counts on either side
of the cut-offs, row counts that leave 0..7 rows over, strided layouts, and
an invalid row at every position inside a group of lanes; the compiled
results must equal the NumPy reference's exactly.
"""
from __future__ import annotations

import numpy as np
import pytest

import labelsift
import labelsift.reference as ref
from support.data import make_data

pytestmark = pytest.mark.filterwarnings("ignore:May not flag all label issues")

def _layouts(p):
    yield "C", p
    wide = np.zeros((p.shape[0], 2 * p.shape[1]), p.dtype)
    wide[:, ::2] = p
    yield "column-strided", wide[:, ::2]
    tall = np.zeros((2 * p.shape[0], p.shape[1]), p.dtype)
    tall[::2] = p
    yield "row-strided", tall[::2]


def _tied(p):
    """Exact ties at every row's top: its two largest values (in the first
    third of the rows) or its largest and its smallest (in the second third)
    replaced by their mean, so the first index of a maximum matters."""
    q = p.astype(np.float64)
    order = np.argsort(q, axis=1, kind="stable")
    rows = np.arange(len(q))
    for part, other in ((slice(0, len(q) // 3), order[:, -2]), (slice(len(q) // 3, 2 * len(q) // 3), order[:, 0])):
        r, top, oth = rows[part], order[part, -1], other[part]
        mean = (q[r, top] + q[r, oth]) / 2
        q[r, top] = mean
        q[r, oth] = mean
    return q.astype(p.dtype)


def _same(a, b):
    assert type(a) is type(b)
    if isinstance(a, tuple):
        for x, z in zip(a, b):
            _same(x, z)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("k", [2, 3, 7, 10, 79, 80, 81, 159, 160, 161])
def test_row_pass_at_lane_boundaries(dtype, k):
    for n in (k + 40, k + 43, k + 47):  # 0..7 rows left over for 4- and 8-lane groups
        y, p = make_data(1000 + k + n, n, k, dtype=dtype)
        if n % 2:
            p = _tied(p)
        for name, q in _layouts(p):
            for call in (
                lambda m: m.compute_confident_joint(y, q),
                lambda m: m.find_label_issues(y, q, filter_by="both"),
                lambda m: m.find_label_issues(y, q, filter_by="predicted_neq_given"),
                lambda m: m.get_label_quality_scores(y, q),
            ):
                _same(call(labelsift), call(ref))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("k", [3, 10, 80, 160])
@pytest.mark.parametrize("kind", ["nan", "range", "sum"])
def test_first_invalid_row_at_every_lane(dtype, k, kind):
    n = 37
    y, p = make_data(7, n, k, dtype=dtype)
    for bad in range(0, 18):
        q = p.copy()
        later = min(n - 1, bad + 3)
        q[later, 0] = np.nan  # a second bad row after it: the first one is named
        if kind == "nan":
            q[bad, k - 1] = np.nan
            pattern = rf"pred_probs\[{bad}, {k - 1}\]"
        elif kind == "range":
            q[bad, k // 2] = 2.0
            pattern = rf"pred_probs\[{bad}, {k // 2}\]"
        else:
            q[bad] = q[bad] * np.asarray(0.5, dtype)
            pattern = rf"row {bad} sums to"
        with pytest.raises(ValueError, match=pattern):
            labelsift.compute_confident_joint(y, q)
        with pytest.raises(ValueError, match=pattern):
            labelsift.get_label_quality_scores(y, q)
