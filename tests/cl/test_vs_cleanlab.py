"""Confident learning: labelsift gives cleanlab 2.9.0's results.

Every comparison test takes the ``impl`` fixture (tests/conftest.py: the
reference, the compiled public API, CUDA) and calls ``impl.<function>`` only,
so the same tests check every implementation.  cleanlab runs as the oracle
through ``support.oracle``:

* K x K results (thresholds, confident joints, joint, noise matrices, py,
  issue counts, scores) must be identical (``assert_array_equal``; no
  tolerances anywhere).  cleanlab runs with its ``round_preserving_sum``
  tie order pinned to the lower index, labelsift's documented rule; without
  that pin about 40% of the generated cases differ by +-1 in a calibrated
  count (cleanlab's unstable argsort picks among equal residuals).
* Masks and rankings from selections (prune methods, ``low_*``, rankings)
  must be identical up to exact ties at a selection boundary; in the cases
  marked tie-free (continuous float64/float32 data) the check requires that
  no such tie exists, so it is exact there.

Labels go to both implementations in their own dtype (uint8, uint16, int32,
int64): cleanlab 2.9.0 handles the small unsigned dtypes correctly for the
class counts used here (K <= 1000), so no conversion is needed.
"""
from __future__ import annotations

import numpy as np
import pytest

import labelsift._cl.latent as latent
from support.cases import CASE_IDS, OPTION_CASES, case_data, tie_free
from support.compare import (
    assert_masks_equal_up_to_ties,
    assert_parts_equal,
    assert_rankings_equal_up_to_ties,
    assert_ties_to_lower_index,
    case_structure,
)
from support.constants import FILTER_BY, PRUNE_METHODS, SCORE_METHODS
from support.oracle import cached_cleanlab, cleanlab_call, memo, raised

pytestmark = pytest.mark.filterwarnings("ignore")
assert_equal = np.testing.assert_array_equal


def _oracle_or_skip(result):
    if raised(result):
        pytest.skip(f"cleanlab raises here: {result[1]!r}")
    return result


# --------------------------------------------------------------------------
# Mask comparison against cleanlab
# --------------------------------------------------------------------------
def _compare_masks(case, filter_by, ours, theirs, **structure_kwargs):
    assert ours.dtype == bool and ours.shape == theirs.shape
    if filter_by in ("confident_learning", "predicted_neq_given"):
        assert_equal(ours, theirs)
        return
    structure = case_structure(case, filter_by, **structure_kwargs)
    assert_masks_equal_up_to_ties(ours, theirs, structure, exact=tie_free(case))
    if filter_by.startswith("low_"):
        assert_ties_to_lower_index(ours, structure)


# --------------------------------------------------------------------------
# Thresholds, confident joint, calibration, joint, latent estimates
# --------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASE_IDS)
def test_thresholds(impl, case):
    labels, probs = case_data(case)
    theirs = cached_cleanlab(case, "count", "get_confident_thresholds")
    ours = impl.get_confident_thresholds(labels, probs)
    assert ours.dtype == theirs.dtype  # float64 as soon as a class is absent
    assert_equal(ours, theirs)


@pytest.mark.parametrize("case", CASE_IDS)
def test_confident_joint(impl, case):
    labels, probs = case_data(case)
    for calibrate in (False, True):
        their_cj, their_idx = cached_cleanlab(case, "count", "compute_confident_joint",
                                              calibrate=calibrate,
                                              return_indices_of_off_diagonals=True)
        our_cj, our_idx = impl.compute_confident_joint(labels, probs, calibrate=calibrate,
                                                       return_indices_of_off_diagonals=True)
        assert_equal(our_cj, their_cj)
        assert_equal(np.asarray(our_idx), their_idx)
    assert_equal(impl.compute_confident_joint(labels, probs), their_cj)
    # Explicit thresholds (here: slightly raised ones, as a list of floats).
    thresholds = [float(t) + 0.01 for t in cached_cleanlab(case, "count", "get_confident_thresholds")]
    theirs = cached_cleanlab(case, "count", "compute_confident_joint", thresholds=thresholds,
                             calibrate=False)
    assert_equal(impl.compute_confident_joint(labels, probs, thresholds=thresholds, calibrate=False),
                 theirs)


@pytest.mark.parametrize("case", CASE_IDS)
def test_calibrate_confident_joint(impl, case):
    labels, probs = case_data(case)
    cj = cached_cleanlab(case, "count", "compute_confident_joint", calibrate=False)
    # cleanlab's own (F-ordered) matrix and a C-ordered copy: the memory
    # layout decides the summation order, and both must match.
    for layout, matrix in (("F", cj), ("C", np.ascontiguousarray(cj))):
        theirs = memo(("calibrate", case, layout),
                      lambda: cleanlab_call("count", "calibrate_confident_joint", matrix, labels))
        assert_equal(impl.calibrate_confident_joint(matrix, labels), theirs)


@pytest.mark.parametrize("case", CASE_IDS)
def test_estimate_joint(impl, case):
    labels, probs = case_data(case)
    assert_equal(impl.estimate_joint(labels, probs), cached_cleanlab(case, "count", "estimate_joint"))
    cj = cached_cleanlab(case, "count", "compute_confident_joint", calibrate=False)
    theirs = memo(("estimate_joint/cj", case),
                  lambda: cleanlab_call("count", "estimate_joint", labels, probs, confident_joint=cj))
    assert_equal(impl.estimate_joint(labels, probs, confident_joint=cj), theirs)
    calibrated = cached_cleanlab(case, "count", "compute_confident_joint")
    theirs = memo(("estimate_joint/None", case),
                  lambda: cleanlab_call("count", "estimate_joint", None, probs,
                                        confident_joint=calibrated))
    assert_equal(impl.estimate_joint(None, probs, confident_joint=calibrated), theirs)


@pytest.mark.parametrize("case", CASE_IDS)
def test_estimate_latent(impl, case):
    labels, probs = case_data(case)
    compared = 0
    big = probs.shape[1] >= 1000  # K x K work: a lighter sweep keeps the file fast
    for calibrate in (True,) if big else (True, False):
        cj = cached_cleanlab(case, "count", "compute_confident_joint", calibrate=calibrate)
        for py_method in ("cnt", "marginal_ps") if big else latent.PY_METHODS:
            for converge in (False, True):
                theirs = memo(("estimate_latent", case, calibrate, py_method, converge),
                              lambda: cleanlab_call("count", "estimate_latent", cj, labels,
                                                    py_method=py_method,
                                                    converge_latent_estimates=converge))
                if raised(theirs):  # e.g. "eqn" with a singular noise matrix
                    continue
                ours = impl.estimate_latent(cj, labels, py_method=py_method,
                                            converge_latent_estimates=converge)
                assert_parts_equal(ours, theirs)
                compared += 1
    assert compared >= (4 if big else 12)


@pytest.mark.parametrize("case", CASE_IDS)
def test_estimate_py_and_noise_matrices(impl, case):
    labels, probs = case_data(case)
    sweep = ({}, {"calibrate": False, "converge_latent_estimates": False},
             {"py_method": "marginal"}, {"py_method": "marginal_ps", "calibrate": False})
    for kwargs in sweep[:2] if probs.shape[1] >= 1000 else sweep:
        theirs = cached_cleanlab(case, "count", "estimate_py_and_noise_matrices_from_probabilities",
                                 **kwargs)
        ours = impl.estimate_py_and_noise_matrices_from_probabilities(labels, probs, **kwargs)
        assert_parts_equal(ours, theirs)


@pytest.mark.parametrize("case", CASE_IDS)
def test_num_label_issues(impl, case):
    labels, probs = case_data(case)
    for method in ("off_diagonal", "off_diagonal_calibrated"):
        theirs = cached_cleanlab(case, "count", "num_label_issues", estimation_method=method)
        assert int(impl.num_label_issues(labels, probs, estimation_method=method)) == int(theirs)
    cj = cached_cleanlab(case, "count", "compute_confident_joint", calibrate=False)
    theirs = memo(("num_label_issues/custom", case),
                  lambda: cleanlab_call("count", "num_label_issues", labels, probs,
                                        confident_joint=cj, estimation_method="off_diagonal_custom"))
    ours = impl.num_label_issues(labels, probs, confident_joint=cj,
                                 estimation_method="off_diagonal_custom")
    assert int(ours) == int(theirs)


# --------------------------------------------------------------------------
# find_label_issues
# --------------------------------------------------------------------------
@pytest.mark.parametrize("filter_by", FILTER_BY)
@pytest.mark.parametrize("case", CASE_IDS)
def test_find_label_issues(impl, case, filter_by):
    labels, probs = case_data(case)
    theirs = cached_cleanlab(case, "filter", "find_label_issues", filter_by=filter_by, n_jobs=1)
    ours = impl.find_label_issues(labels, probs, filter_by=filter_by)
    _compare_masks(case, filter_by, ours, theirs)


@pytest.mark.parametrize("filter_by", PRUNE_METHODS)
@pytest.mark.parametrize("case", OPTION_CASES)
def test_find_label_issues_frac_noise_and_min_examples(impl, case, filter_by):
    labels, probs = case_data(case)
    for kwargs in ({"frac_noise": 0.5}, {"min_examples_per_class": 0},
                   {"min_examples_per_class": 5}, {"frac_noise": 0.5, "min_examples_per_class": 5}):
        theirs = cached_cleanlab(case, "filter", "find_label_issues", filter_by=filter_by,
                                 n_jobs=1, **kwargs)
        ours = impl.find_label_issues(labels, probs, filter_by=filter_by, **kwargs)
        _compare_masks(case, filter_by, ours, theirs, **kwargs)


@pytest.mark.parametrize("filter_by", PRUNE_METHODS + ("confident_learning",))
@pytest.mark.parametrize("case", OPTION_CASES)
def test_find_label_issues_given_confident_joint(impl, case, filter_by):
    labels, probs = case_data(case)
    # The uncalibrated joint: find_label_issues uses a given one as it is
    # (and ignores it for confident_learning), so it must show.
    cj = cached_cleanlab(case, "count", "compute_confident_joint", calibrate=False)
    theirs = memo(("find_label_issues/cj", case, filter_by),
                  lambda: cleanlab_call("filter", "find_label_issues", labels, probs,
                                        filter_by=filter_by, confident_joint=cj, n_jobs=1))
    ours = impl.find_label_issues(labels, probs, filter_by=filter_by, confident_joint=cj)
    extra = {"confident_joint": cj} if filter_by in PRUNE_METHODS else {}
    _compare_masks(case, filter_by, ours, theirs, **extra)


@pytest.mark.parametrize("rank_by", SCORE_METHODS)
@pytest.mark.parametrize("case", OPTION_CASES + ["mnist-f32", "k1000-f16-i32"])
def test_find_label_issues_ranked(impl, case, rank_by):
    labels, probs = case_data(case)
    theirs = _oracle_or_skip(cached_cleanlab(case, "filter", "find_label_issues",
                                             return_indices_ranked_by=rank_by, n_jobs=1))
    ours = impl.find_label_issues(labels, probs, return_indices_ranked_by=rank_by)
    scores = cached_cleanlab(case, "rank", "get_label_quality_scores", method=rank_by)
    assert_rankings_equal_up_to_ties(ours, theirs, scores,
                                     case_structure(case, "prune_by_noise_rate"),
                                     exact=tie_free(case))


@pytest.mark.parametrize("case", ["cifar10-f32", "k10-f16-i32-absent-single-tiny"])
def test_find_label_issues_ranked_with_kwargs(impl, case):
    labels, probs = case_data(case)
    kwargs = {"return_indices_ranked_by": "normalized_margin", "filter_by": "both",
              "rank_by_kwargs": {"adjust_pred_probs": True}}
    theirs = cached_cleanlab(case, "filter", "find_label_issues", n_jobs=1, **kwargs)
    ours = impl.find_label_issues(labels, probs, **kwargs)
    scores = cached_cleanlab(case, "rank", "get_label_quality_scores", method="normalized_margin",
                             adjust_pred_probs=True)
    assert_rankings_equal_up_to_ties(ours, theirs, scores, case_structure(case, "both"),
                                     exact=tie_free(case))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_unflagging_and_argmax_ties_match_cleanlab(impl, dtype):
    """Coarse probabilities (multiples of 1/8, many exact ties, values within
    1e-6 of each other): the argmax-after-+1e-6 unflagging step and the
    argmax of predicted_neq_given / confident_learning are exact, not
    selections, so they must match cleanlab bit for bit."""
    rng = np.random.default_rng(11)
    n, k = 4000, 4
    # Rows of eighths (each >= 1/8) summing to 1: many exact ties.
    cuts = np.sort(np.array([rng.choice(np.arange(1, 8), k - 1, replace=False)
                             for _ in range(n)]), axis=1)
    probs = np.diff(np.concatenate([np.zeros((n, 1)), cuts, np.full((n, 1), 8)], axis=1)) / 8.0
    labels = rng.integers(0, k, n).astype(np.uint8)
    # In a fifth of the rows a rival sits within a few 1e-6 of the given
    # label's value (a third class pays for it, so rows still sum to 1).
    near = np.flatnonzero(rng.random(n) < 0.2)
    given = labels[near].astype(np.int64)
    rival = (given + 1 + rng.integers(0, k - 1, len(near))) % k
    payer = (np.maximum(given, rival) + 1) % k
    payer = np.where(payer == np.minimum(given, rival), (payer + 1) % k, payer)
    delta = probs[near, given] - probs[near, rival] + rng.choice([-2e-6, -5e-7, 5e-7, 2e-6],
                                                                  len(near))
    probs[near, rival] += delta
    probs[near, payer] -= delta
    keep = (probs >= 0).all(axis=1) & (probs <= 1).all(axis=1)
    probs, labels = probs[keep], labels[keep]
    assert keep.sum() > n // 2
    probs = probs.astype(dtype)
    for filter_by in ("predicted_neq_given", "confident_learning"):
        theirs = cleanlab_call("filter", "find_label_issues", labels, probs, filter_by=filter_by,
                               n_jobs=1)
        assert_equal(impl.find_label_issues(labels, probs, filter_by=filter_by), theirs)
    theirs = cleanlab_call("count", "num_label_issues", labels, probs)
    assert int(impl.num_label_issues(labels, probs)) == int(theirs)


# --------------------------------------------------------------------------
# Label quality scores and ordering
# --------------------------------------------------------------------------
@pytest.mark.parametrize("adjust", [False, True])
@pytest.mark.parametrize("method", SCORE_METHODS)
@pytest.mark.parametrize("case", CASE_IDS)
def test_label_quality_scores(impl, case, method, adjust):
    labels, probs = case_data(case)
    if adjust and method == "confidence_weighted_entropy":
        with pytest.raises(ValueError):
            impl.get_label_quality_scores(labels, probs, method=method, adjust_pred_probs=True)
        return
    theirs = _oracle_or_skip(cached_cleanlab(case, "rank", "get_label_quality_scores",
                                             method=method, adjust_pred_probs=adjust))
    ours = impl.get_label_quality_scores(labels, probs, method=method, adjust_pred_probs=adjust)
    assert ours.dtype == theirs.dtype
    assert_equal(ours, theirs)


@pytest.mark.parametrize("case", CASE_IDS)
def test_order_label_issues(impl, case):
    labels, probs = case_data(case)
    mask = cached_cleanlab(case, "filter", "find_label_issues", n_jobs=1)
    for rank_by, kwargs in [(m, None) for m in SCORE_METHODS] + [
            ("self_confidence", {"adjust_pred_probs": True}),
            ("normalized_margin", {"adjust_pred_probs": True})]:
        theirs = memo(("order_label_issues", case, rank_by, repr(kwargs)),
                      lambda: cleanlab_call("rank", "order_label_issues", mask, labels, probs,
                                            rank_by=rank_by, rank_by_kwargs=kwargs or {}))
        assert not raised(theirs), theirs  # cleanlab orders every case here
        ours = impl.order_label_issues(mask, labels, probs, rank_by=rank_by, rank_by_kwargs=kwargs)
        scores = cached_cleanlab(case, "rank", "get_label_quality_scores", method=rank_by,
                                 **(kwargs or {}))
        assert_rankings_equal_up_to_ties(ours, theirs, scores)
