"""No accepted input gives a NaN or inf: every score and count on rows at both
edges of the validation tolerance ([-1e-6, 1 + 1e-4], row sums off by up to
the tolerance)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import labelsift
import labelsift.reference

SCORES = [("self_confidence", False), ("self_confidence", True), ("normalized_margin", False),
          ("normalized_margin", True), ("confidence_weighted_entropy", False)]


def _edge_rows(dtype, k=5, n=400, seed=0):
    """Rows holding -1e-6 and 1 + 1e-4 (values at the two ends of the accepted
    range) next to ordinary rows."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k), n)
    y = rng.integers(0, k, n)
    low = np.float64(np.asarray(-1e-6, dtype))  # representable in the dtype, still accepted
    if low < -1e-6:
        low = np.float64(np.nextafter(np.asarray(low, dtype), np.asarray(0, dtype)))
    high = np.float64(np.asarray(1 + 1e-4, dtype))
    if high > 1 + 1e-4:
        high = np.float64(np.nextafter(np.asarray(high, dtype), np.asarray(0, dtype)))
    for i in range(0, n, 4):
        p[i] = 0.0
        p[i, y[i]] = high  # the given label holds the top value ...
        p[i, (y[i] + 1) % k] = low  # ... and another class the lowest
    for i in range(2, n, 8):  # a row whose given label holds the negative value
        p[i] = 0.0
        p[i, (y[i] + 1) % k] = high
        p[i, y[i]] = low
    return y, p.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("method,adjust", SCORES)
def test_scores_finite_at_tolerance_edges(impl, dtype, method, adjust):
    y, p = _edge_rows(dtype)
    lib = impl
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a NaN on the way would warn
        s = lib.get_label_quality_scores(y, p, method=method, adjust_pred_probs=adjust)
    assert np.isfinite(s).all(), f"{int((~np.isfinite(s)).sum())} non-finite scores"
    assert len(s) == len(y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_and_kernels_agree_at_edges(dtype):
    y, p = _edge_rows(dtype, seed=1)
    for method, adjust in SCORES:
        want = labelsift.reference.get_label_quality_scores(y, p, method=method, adjust_pred_probs=adjust)
        got = labelsift.get_label_quality_scores(y, p, method=method, adjust_pred_probs=adjust)
        np.testing.assert_array_equal(got, want, err_msg=f"{method} adjust={adjust}")


def test_entropy_clips_values_to_0_1_inside_the_log():
    """-1e-6 inside the log counts as 0 and 1 + 1e-4 as 1 (the given-label
    clip at 1e-6 is cleanlab's and stays): the entropy of the clipped row."""
    y, p = _edge_rows(np.float64, seed=2)
    q = np.clip(p, 0, 1)
    q[np.arange(len(y)), y] = p[np.arange(len(y)), y]  # self-confidence unchanged
    a = labelsift.get_label_quality_scores(y, p, method="confidence_weighted_entropy")
    b = labelsift.get_label_quality_scores(y, q, method="confidence_weighted_entropy")
    np.testing.assert_array_equal(a, b)
    assert (p < 0).any() and (p > 1).any()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_counts_and_matrices_finite_at_edges(dtype):
    y, p = _edge_rows(dtype, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)
        py, nm, inv, cj = labelsift.estimate_py_and_noise_matrices_from_probabilities(y, p)
        for arr in (py, nm, inv, cj, labelsift.get_confident_thresholds(y, p)):
            assert np.isfinite(arr).all()
        for rb in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
            labelsift.find_label_issues(y, p, return_indices_ranked_by=rb)
