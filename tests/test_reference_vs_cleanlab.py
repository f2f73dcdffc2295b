"""Confident learning: labelsift gives cleanlab 2.9.0's results.

Every comparison test takes the ``cl`` fixture (``labelsift.reference`` or
the compiled public module) and calls ``cl.<function>`` only, so the same
tests check both.  cleanlab runs as the oracle through ``_oracle``:

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

import warnings

import numpy as np
import pytest

import labelsift._cl.latent as latent
import labelsift.reference as reference
from _oracle import (
    CASES,
    FILTER_BY,
    ORIGINAL_ROUND_PRESERVING_SUM,
    PRUNE_METHODS,
    SCORE_METHODS,
    assert_masks_equal_up_to_ties,
    assert_rankings_equal_up_to_ties,
    assert_ties_to_lower_index,
    cached_cleanlab,
    case_data,
    cleanlab_call,
    cleanlab_given_label_wins,
    cleanlab_prune_counts,
    make_data,
    memo,
    pinned_cleanlab_rounding,
    raised,
    round_preserving_sum_lower_index,
    selection_structure,
    tie_free,
)

import cleanlab.count
import cleanlab.filter
import cleanlab.internal.util

CASE_IDS = list(CASES)
# Cases for the option sweeps (keep the file fast): real and generated,
# float64 and float16, absent/singleton/tiny classes.
OPTION_CASES = [
    "cifar10-f64",
    "cifar10-f16",
    "k10-f64-u16-absent-single-tiny",
    "k10-f16-i32-absent-single-tiny",
    "k100-f32-u16-absent-single-tiny",
]
assert_equal = np.testing.assert_array_equal


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _oracle_or_skip(result):
    if raised(result):
        pytest.skip(f"cleanlab raises here: {result[1]!r}")
    return result


# --------------------------------------------------------------------------
# Mask / ranking comparison against cleanlab
# --------------------------------------------------------------------------
def _structure(case, filter_by, *, min_examples_per_class=1, frac_noise=1.0,
               confident_joint=None):
    key = ("structure", case, filter_by, min_examples_per_class, frac_noise,
           confident_joint is not None)
    return memo(key, lambda: _compute_structure(case, filter_by, min_examples_per_class,
                                                frac_noise, confident_joint))


def _compute_structure(case, filter_by, min_examples_per_class, frac_noise, confident_joint):
    labels, probs = case_data(case)
    if filter_by in PRUNE_METHODS:
        pcm = cleanlab_prune_counts(labels, probs, min_examples_per_class=min_examples_per_class,
                                    frac_noise=frac_noise, confident_joint=confident_joint)
        return selection_structure(labels, probs, filter_by, prune_counts=pcm,
                                   min_examples_per_class=min_examples_per_class)
    scores = cached_cleanlab(case, "rank", "get_label_quality_scores",
                             method=filter_by[len("low_"):])
    num_issues = cached_cleanlab(case, "count", "num_label_issues")
    return selection_structure(labels, probs, filter_by, scores=scores, num_issues=num_issues)


def _compare_masks(case, filter_by, ours, theirs, **structure_kwargs):
    assert ours.dtype == bool and ours.shape == theirs.shape
    if filter_by in ("confident_learning", "predicted_neq_given"):
        assert_equal(ours, theirs)
        return
    structure = _structure(case, filter_by, **structure_kwargs)
    assert_masks_equal_up_to_ties(ours, theirs, structure, exact=tie_free(case))
    if filter_by.startswith("low_"):
        assert_ties_to_lower_index(ours, structure)


# --------------------------------------------------------------------------
# Thresholds, confident joint, calibration, joint, latent estimates
# --------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASE_IDS)
def test_thresholds(cl, case):
    labels, probs = case_data(case)
    theirs = cached_cleanlab(case, "count", "get_confident_thresholds")
    ours = cl.get_confident_thresholds(labels, probs)
    assert ours.dtype == theirs.dtype  # float64 as soon as a class is absent
    assert_equal(ours, theirs)


@pytest.mark.parametrize("case", CASE_IDS)
def test_confident_joint(cl, case):
    labels, probs = case_data(case)
    for calibrate in (False, True):
        their_cj, their_idx = cached_cleanlab(case, "count", "compute_confident_joint",
                                              calibrate=calibrate,
                                              return_indices_of_off_diagonals=True)
        our_cj, our_idx = cl.compute_confident_joint(labels, probs, calibrate=calibrate,
                                                     return_indices_of_off_diagonals=True)
        assert_equal(our_cj, their_cj)
        assert_equal(np.asarray(our_idx), their_idx)
    assert_equal(cl.compute_confident_joint(labels, probs), their_cj)
    # Explicit thresholds (here: slightly raised ones, as a list of floats).
    thresholds = [float(t) + 0.01 for t in cached_cleanlab(case, "count", "get_confident_thresholds")]
    theirs = cached_cleanlab(case, "count", "compute_confident_joint", thresholds=thresholds,
                             calibrate=False)
    assert_equal(cl.compute_confident_joint(labels, probs, thresholds=thresholds, calibrate=False),
                 theirs)


@pytest.mark.parametrize("case", CASE_IDS)
def test_calibrate_confident_joint(cl, case):
    labels, probs = case_data(case)
    cj = cached_cleanlab(case, "count", "compute_confident_joint", calibrate=False)
    # cleanlab's own (F-ordered) matrix and a C-ordered copy: the memory
    # layout decides the summation order, and both must match.
    for layout, matrix in (("F", cj), ("C", np.ascontiguousarray(cj))):
        theirs = memo(("calibrate", case, layout),
                      lambda: cleanlab_call("count", "calibrate_confident_joint", matrix, labels))
        assert_equal(cl.calibrate_confident_joint(matrix, labels), theirs)


@pytest.mark.parametrize("case", CASE_IDS)
def test_estimate_joint(cl, case):
    labels, probs = case_data(case)
    assert_equal(cl.estimate_joint(labels, probs), cached_cleanlab(case, "count", "estimate_joint"))
    cj = cached_cleanlab(case, "count", "compute_confident_joint", calibrate=False)
    theirs = memo(("estimate_joint/cj", case),
                  lambda: cleanlab_call("count", "estimate_joint", labels, probs, confident_joint=cj))
    assert_equal(cl.estimate_joint(labels, probs, confident_joint=cj), theirs)
    calibrated = cached_cleanlab(case, "count", "compute_confident_joint")
    theirs = memo(("estimate_joint/None", case),
                  lambda: cleanlab_call("count", "estimate_joint", None, probs,
                                        confident_joint=calibrated))
    assert_equal(cl.estimate_joint(None, probs, confident_joint=calibrated), theirs)


@pytest.mark.parametrize("case", CASE_IDS)
def test_estimate_latent(cl, case):
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
                ours = cl.estimate_latent(cj, labels, py_method=py_method,
                                          converge_latent_estimates=converge)
                for our_part, their_part in zip(ours, theirs, strict=True):
                    assert_equal(our_part, their_part)
                compared += 1
    assert compared >= (4 if big else 12)


@pytest.mark.parametrize("case", CASE_IDS)
def test_estimate_py_and_noise_matrices(cl, case):
    labels, probs = case_data(case)
    sweep = ({}, {"calibrate": False, "converge_latent_estimates": False},
             {"py_method": "marginal"}, {"py_method": "marginal_ps", "calibrate": False})
    for kwargs in sweep[:2] if probs.shape[1] >= 1000 else sweep:
        theirs = cached_cleanlab(case, "count", "estimate_py_and_noise_matrices_from_probabilities",
                                 **kwargs)
        ours = cl.estimate_py_and_noise_matrices_from_probabilities(labels, probs, **kwargs)
        for our_part, their_part in zip(ours, theirs, strict=True):
            assert_equal(our_part, their_part)


@pytest.mark.parametrize("case", CASE_IDS)
def test_num_label_issues(cl, case):
    labels, probs = case_data(case)
    for method in ("off_diagonal", "off_diagonal_calibrated"):
        theirs = cached_cleanlab(case, "count", "num_label_issues", estimation_method=method)
        assert int(cl.num_label_issues(labels, probs, estimation_method=method)) == int(theirs)
    cj = cached_cleanlab(case, "count", "compute_confident_joint", calibrate=False)
    theirs = memo(("num_label_issues/custom", case),
                  lambda: cleanlab_call("count", "num_label_issues", labels, probs,
                                        confident_joint=cj, estimation_method="off_diagonal_custom"))
    ours = cl.num_label_issues(labels, probs, confident_joint=cj,
                               estimation_method="off_diagonal_custom")
    assert int(ours) == int(theirs)


# --------------------------------------------------------------------------
# find_label_issues
# --------------------------------------------------------------------------
@pytest.mark.parametrize("filter_by", FILTER_BY)
@pytest.mark.parametrize("case", CASE_IDS)
def test_find_label_issues(cl, case, filter_by):
    labels, probs = case_data(case)
    theirs = cached_cleanlab(case, "filter", "find_label_issues", filter_by=filter_by, n_jobs=1)
    ours = cl.find_label_issues(labels, probs, filter_by=filter_by)
    _compare_masks(case, filter_by, ours, theirs)


@pytest.mark.parametrize("filter_by", PRUNE_METHODS)
@pytest.mark.parametrize("case", OPTION_CASES)
def test_find_label_issues_frac_noise_and_min_examples(cl, case, filter_by):
    labels, probs = case_data(case)
    for kwargs in ({"frac_noise": 0.5}, {"min_examples_per_class": 0},
                   {"min_examples_per_class": 5}, {"frac_noise": 0.5, "min_examples_per_class": 5}):
        theirs = cached_cleanlab(case, "filter", "find_label_issues", filter_by=filter_by,
                                 n_jobs=1, **kwargs)
        ours = cl.find_label_issues(labels, probs, filter_by=filter_by, **kwargs)
        _compare_masks(case, filter_by, ours, theirs, **kwargs)


@pytest.mark.parametrize("filter_by", PRUNE_METHODS + ("confident_learning",))
@pytest.mark.parametrize("case", OPTION_CASES)
def test_find_label_issues_given_confident_joint(cl, case, filter_by):
    labels, probs = case_data(case)
    # The uncalibrated joint: find_label_issues uses a given one as it is
    # (and ignores it for confident_learning), so it must show.
    cj = cached_cleanlab(case, "count", "compute_confident_joint", calibrate=False)
    theirs = memo(("find_label_issues/cj", case, filter_by),
                  lambda: cleanlab_call("filter", "find_label_issues", labels, probs,
                                        filter_by=filter_by, confident_joint=cj, n_jobs=1))
    ours = cl.find_label_issues(labels, probs, filter_by=filter_by, confident_joint=cj)
    extra = {"confident_joint": cj} if filter_by in PRUNE_METHODS else {}
    _compare_masks(case, filter_by, ours, theirs, **extra)


@pytest.mark.parametrize("rank_by", SCORE_METHODS)
@pytest.mark.parametrize("case", OPTION_CASES + ["mnist-f32", "k1000-f16-i32"])
def test_find_label_issues_ranked(cl, case, rank_by):
    labels, probs = case_data(case)
    theirs = _oracle_or_skip(cached_cleanlab(case, "filter", "find_label_issues",
                                             return_indices_ranked_by=rank_by, n_jobs=1))
    ours = cl.find_label_issues(labels, probs, return_indices_ranked_by=rank_by)
    scores = cached_cleanlab(case, "rank", "get_label_quality_scores", method=rank_by)
    assert_rankings_equal_up_to_ties(ours, theirs, scores,
                                     _structure(case, "prune_by_noise_rate"),
                                     exact=tie_free(case))


@pytest.mark.parametrize("case", ["cifar10-f32", "k10-f16-i32-absent-single-tiny"])
def test_find_label_issues_ranked_with_kwargs(cl, case):
    labels, probs = case_data(case)
    kwargs = {"return_indices_ranked_by": "normalized_margin", "filter_by": "both",
              "rank_by_kwargs": {"adjust_pred_probs": True}}
    theirs = cached_cleanlab(case, "filter", "find_label_issues", n_jobs=1, **kwargs)
    ours = cl.find_label_issues(labels, probs, **kwargs)
    scores = cached_cleanlab(case, "rank", "get_label_quality_scores", method="normalized_margin",
                             adjust_pred_probs=True)
    assert_rankings_equal_up_to_ties(ours, theirs, scores, _structure(case, "both"),
                                     exact=tie_free(case))


# --------------------------------------------------------------------------
# Label quality scores and ordering
# --------------------------------------------------------------------------
@pytest.mark.parametrize("adjust", [False, True])
@pytest.mark.parametrize("method", SCORE_METHODS)
@pytest.mark.parametrize("case", CASE_IDS)
def test_label_quality_scores(cl, case, method, adjust):
    labels, probs = case_data(case)
    if adjust and method == "confidence_weighted_entropy":
        with pytest.raises(ValueError):
            cl.get_label_quality_scores(labels, probs, method=method, adjust_pred_probs=True)
        return
    theirs = _oracle_or_skip(cached_cleanlab(case, "rank", "get_label_quality_scores",
                                             method=method, adjust_pred_probs=adjust))
    ours = cl.get_label_quality_scores(labels, probs, method=method, adjust_pred_probs=adjust)
    assert ours.dtype == theirs.dtype
    assert_equal(ours, theirs)


@pytest.mark.parametrize("case", CASE_IDS)
def test_order_label_issues(cl, case):
    labels, probs = case_data(case)
    mask = cached_cleanlab(case, "filter", "find_label_issues", n_jobs=1)
    for rank_by, kwargs in [(m, None) for m in SCORE_METHODS] + [
            ("self_confidence", {"adjust_pred_probs": True}),
            ("normalized_margin", {"adjust_pred_probs": True})]:
        theirs = memo(("order_label_issues", case, rank_by, repr(kwargs)),
                      lambda: cleanlab_call("rank", "order_label_issues", mask, labels, probs,
                                            rank_by=rank_by, rank_by_kwargs=kwargs or {}))
        if raised(theirs):
            continue
        ours = cl.order_label_issues(mask, labels, probs, rank_by=rank_by, rank_by_kwargs=kwargs)
        scores = cached_cleanlab(case, "rank", "get_label_quality_scores", method=rank_by,
                                 **(kwargs or {}))
        assert_rankings_equal_up_to_ties(ours, theirs, scores)


# --------------------------------------------------------------------------
# labelsift's documented semantics (not compared with cleanlab)
# --------------------------------------------------------------------------
def _tie_data():
    """Class 0 alternates confident rows and identical rows that look like
    class 1; with frac_noise=0.5 three of the six identical rows are flagged."""
    confident0, looks_like_1 = [0.8, 0.1, 0.1], [0.1, 0.85, 0.05]
    rows = [looks_like_1 if i % 2 else confident0 for i in range(12)]
    rows += [[0.1, 0.8, 0.1]] * 6 + [[0.1, 0.1, 0.8]] * 6
    labels = np.array([0] * 12 + [1] * 6 + [2] * 6, dtype=np.uint8)
    return labels, np.array(rows)


@pytest.mark.parametrize("filter_by", PRUNE_METHODS)
def test_ties_go_to_the_lower_index(cl, filter_by):
    labels, probs = _tie_data()
    ours = cl.find_label_issues(labels, probs, filter_by=filter_by, frac_noise=0.5)
    assert_equal(np.flatnonzero(ours), [1, 3, 5])
    ranked = cl.find_label_issues(labels, probs, filter_by=filter_by,
                                  return_indices_ranked_by="self_confidence")
    assert_equal(ranked, [1, 3, 5, 7, 9, 11])  # all tied at score 0.1
    # The oracle check accepts cleanlab's (arbitrary) choice among the ties.
    theirs = cleanlab_call("filter", "find_label_issues", labels, probs, filter_by=filter_by,
                           frac_noise=0.5, n_jobs=1)
    pcm = cleanlab_prune_counts(labels, probs, frac_noise=0.5)
    structure = selection_structure(labels, probs, filter_by, prune_counts=pcm)
    assert_masks_equal_up_to_ties(ours, theirs, structure)


def test_tie_aware_checker_rejects_wrong_masks():
    case = "cifar10-f64"
    labels, probs = case_data(case)
    theirs = cached_cleanlab(case, "filter", "find_label_issues", n_jobs=1)
    structure = _structure(case, "prune_by_noise_rate")
    assert_masks_equal_up_to_ties(theirs.copy(), theirs, structure, exact=True)
    forced, possible = structure
    missing_one = theirs.copy()
    missing_one[np.flatnonzero(forced)[0]] = False
    with pytest.raises(AssertionError, match="misses rows"):
        assert_masks_equal_up_to_ties(missing_one, theirs, structure)
    extra_one = theirs.copy()
    extra_one[np.flatnonzero(~possible)[0]] = True
    with pytest.raises(AssertionError, match="no tie order"):
        assert_masks_equal_up_to_ties(extra_one, theirs, structure)
    # A real tie: the checker accepts either choice, but not in "exact" mode.
    labels, probs = _tie_data()
    pcm = cleanlab_prune_counts(labels, probs, frac_noise=0.5)
    structure = selection_structure(labels, probs, "prune_by_class", prune_counts=pcm)
    a = np.zeros(len(labels), bool)
    a[[1, 3, 5]] = True
    b = np.zeros(len(labels), bool)
    b[[5, 7, 11]] = True
    assert_masks_equal_up_to_ties(a, b, structure)
    with pytest.raises(AssertionError):
        assert_masks_equal_up_to_ties(a, b, structure, exact=True)
    with pytest.raises(AssertionError):
        assert_ties_to_lower_index(b, structure)
    # Rankings: the wrong order among distinct scores fails.
    scores = probs[np.arange(len(labels)), labels]
    with pytest.raises(AssertionError):
        assert_rankings_equal_up_to_ties(np.array([12, 1]), np.array([1, 12]), scores)


def _removal_case():
    labels, probs = case_data("k10-f64-u16-absent-single-tiny")
    counts = np.bincount(labels.astype(np.int64), minlength=probs.shape[1])
    return labels, probs, counts


def _lowest_in_class(labels, probs, k, r):
    rows = np.flatnonzero(labels == k)
    return rows[np.argsort(probs[rows, k], kind="stable")[:r]]


def test_num_to_remove_per_class_prune_by_class_removes_exactly_r(cl):
    labels, probs, counts = _removal_case()
    remove = np.array([3, 0, 1, 7, 2, 5, 4, 6, 3, 2], dtype=np.int64)
    ours = cl.find_label_issues(labels, probs, filter_by="prune_by_class",
                                num_to_remove_per_class=remove)
    wins = cleanlab_given_label_wins(labels, probs)
    expected = np.zeros(len(labels), bool)
    for k in range(len(counts)):
        if counts[k] > 1:  # n_k <= min_examples_per_class=1: never flagged
            expected[_lowest_in_class(labels, probs, k, min(remove[k], counts[k]))] = True
    expected &= ~wins  # the final unflagging step still applies
    assert_equal(ours, expected)
    assert (counts == 0).any() and (counts == 1).any()  # the case covers both


def test_num_to_remove_per_class_noise_rate_removes_at_most_r(cl):
    labels, probs, counts = _removal_case()
    remove = np.array([3, 0, 1, 7, 2, 5, 4, 6, 3, 2], dtype=np.int64)
    for filter_by in ("prune_by_noise_rate", "both"):
        ours = cl.find_label_issues(labels, probs, filter_by=filter_by,
                                    num_to_remove_per_class=remove)
        flagged = np.bincount(labels[ours].astype(np.int64), minlength=len(counts))
        assert (flagged <= remove).all(), (filter_by, flagged, remove)
    ours = cl.find_label_issues(labels, probs, num_to_remove_per_class=remove)
    assert ours.sum() > 0


@pytest.mark.parametrize("filter_by", PRUNE_METHODS)
def test_num_to_remove_zero_removes_nothing(cl, filter_by):
    labels, probs = case_data("cifar10-f64")
    zeros = np.zeros(probs.shape[1], dtype=np.int64)
    ours = cl.find_label_issues(labels, probs, filter_by=filter_by, num_to_remove_per_class=zeros)
    assert not ours.any()


def test_num_to_remove_per_class_validation(cl):
    labels, probs = case_data("k3-f32-u8-tiny")
    for bad in ([1, 2], [1, -1, 0], [0.5, 1.0, 1.0], [[1, 1, 1]]):
        with pytest.raises(ValueError):
            cl.find_label_issues(labels, probs, num_to_remove_per_class=bad)
    with pytest.raises(ValueError):
        cl.find_label_issues(labels, probs, filter_by="confident_learning",
                             num_to_remove_per_class=[1, 1, 1])


def test_num_to_remove_per_class_prune_by_class_matches_cleanlab(cl):
    """For prune_by_class cleanlab's num_to_remove_per_class does what it
    documents (its diagonal is n_k - r_k), so there the results agree."""
    case = "cifar10-f16"
    labels, probs = case_data(case)
    remove = np.arange(probs.shape[1], dtype=np.int64) * 7
    theirs = cached_cleanlab(case, "filter", "find_label_issues", filter_by="prune_by_class",
                             num_to_remove_per_class=remove, n_jobs=1)
    ours = cl.find_label_issues(labels, probs, filter_by="prune_by_class",
                                num_to_remove_per_class=remove)
    pcm = cleanlab_prune_counts(labels, probs).copy()
    np.fill_diagonal(pcm, np.bincount(labels.astype(np.int64), minlength=probs.shape[1]) - remove)
    structure = selection_structure(labels, probs, "prune_by_class", prune_counts=pcm)
    assert_masks_equal_up_to_ties(ours, theirs, structure)


def test_cleanlab_num_to_remove_differs_from_its_docs():
    """Documents why labelsift does not follow cleanlab for prune_by_noise_rate:
    cleanlab 2.9.0 rescales rows of the prune count matrix where it means
    columns, so a class asked to lose 0 examples loses some, and others lose
    more than asked; labelsift removes at most r_k from class k."""
    labels, probs = case_data("cifar10-f64")
    y = labels.astype(np.int64)
    remove = np.arange(probs.shape[1], dtype=np.int64)
    theirs = cached_cleanlab("cifar10-f64", "filter", "find_label_issues",
                             num_to_remove_per_class=remove, n_jobs=1)
    flagged = np.bincount(y[theirs], minlength=probs.shape[1])
    assert flagged[0] > 0 and (flagged > remove).any()
    ours = reference.find_label_issues(labels, probs, num_to_remove_per_class=remove)
    assert (np.bincount(y[ours], minlength=probs.shape[1]) <= remove).all()


def test_reference_multi_label_not_implemented():
    labels, probs = case_data("k3-f32-u8-tiny")
    for call in (lambda: reference.find_label_issues(labels, probs, multi_label=True),
                 lambda: reference.get_confident_thresholds(labels, probs, multi_label=True),
                 lambda: reference.compute_confident_joint(labels, probs, multi_label=True)):
        with pytest.raises(NotImplementedError, match="multi_label=True is not supported"):
            call()


# --------------------------------------------------------------------------
# labelsift._latent (shared K x K algebra) against cleanlab's helpers
# --------------------------------------------------------------------------
def test_latent_round_preserving_sum_matches_cleanlab_without_ties():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        x = rng.random(n) * rng.choice([1, 10, 1000]) * (rng.random(n) < 0.8)
        x[rng.integers(0, n)] += 0.49  # totals off by a few after rounding
        if len(np.unique(x - x.round())) < n:
            continue  # a tie: cleanlab's order is arbitrary there
        ours = latent.round_preserving_sum(x)
        assert ours.dtype == np.int64
        assert_equal(ours, ORIGINAL_ROUND_PRESERVING_SUM(x))
        assert_equal(ours, round_preserving_sum_lower_index(x))
        assert ours.sum() == np.round(np.sum(x))


def test_latent_round_preserving_sum_ties_go_to_lower_index():
    for x, expected in (([0.3, 0.3, 0.3, 0.1], [1, 0, 0, 0]),
                        ([0.7, 0.7, 0.7, 0.9], [0, 1, 1, 1]),
                        ([0.25] * 8, [1, 1, 0, 0, 0, 0, 0, 0]),
                        ([2.5, 0.5, 1.5, 0.5], [3, 0, 2, 0])):
        assert_equal(latent.round_preserving_sum(x), expected)
        assert_equal(round_preserving_sum_lower_index(x), expected)
        # cleanlab's arbitrary choice: same total, moves among the same tie group.
        theirs = ORIGINAL_ROUND_PRESERVING_SUM(x)
        x = np.asarray(x)
        assert theirs.sum() == np.sum(expected)
        assert sorted((theirs - x.round()).tolist()) == sorted((np.array(expected) - x.round()).tolist())


def _random_joint(rng, k, zero_rows=0):
    cj = rng.integers(0, 60, (k, k)) * (rng.random((k, k)) < 0.5)
    cj[np.diag_indices(k)] += rng.integers(1, 300, k)
    cj[rng.choice(k, zero_rows, replace=False)] = 0
    return cj.astype(np.int64)


def test_latent_calibration_and_estimates_match_cleanlab():
    rng = np.random.default_rng(1)
    for trial in range(40):
        k = int(rng.choice([2, 3, 7, 30]))
        cj = _random_joint(rng, k, zero_rows=int(trial % 3 == 0))
        counts = rng.integers(0, 500, k) * (rng.random(k) < 0.9)
        if counts.sum() == 0:
            counts[0] = 5
        labels = np.repeat(np.arange(k), counts)
        for matrix in (cj, np.asfortranarray(cj)):
            with pinned_cleanlab_rounding():
                theirs = cleanlab.count.calibrate_confident_joint(matrix, labels)
            calibrated = latent.calibrate_confident_joint(matrix, counts)
            assert_equal(calibrated, theirs)
            for py_method in latent.PY_METHODS:
                for converge in (False, True):
                    try:
                        theirs = cleanlab.count.estimate_latent(
                            matrix, labels, py_method=py_method, converge_latent_estimates=converge)
                    except np.linalg.LinAlgError:
                        continue
                    ours = latent.estimate_latent(matrix, counts, py_method=py_method,
                                                  converge_latent_estimates=converge)
                    for a, b in zip(ours, theirs, strict=True):
                        assert_equal(a, b)


def test_latent_prune_counts_match_cleanlab():
    rng = np.random.default_rng(2)
    for _ in range(60):
        k = int(rng.choice([2, 3, 10, 40]))
        cj = _random_joint(rng, k)
        for pcm in (cj.T, np.ascontiguousarray(cj.T)):
            for n in (0, 1, 5, 50):
                for frac in (1.0, 0.5, 0.3):
                    with pinned_cleanlab_rounding():
                        theirs = cleanlab.filter._keep_at_least_n_per_class(pcm, n, frac_noise=frac)
                    assert_equal(latent.keep_at_least_n_per_class(pcm, n, frac), theirs)


def test_latent_clip_helpers_match_cleanlab():
    rng = np.random.default_rng(3)
    util = cleanlab.internal.util
    for _ in range(50):
        m = rng.random((5, 5)) * rng.choice([1.0, 3.0])
        for matrix in (m, m.T):
            assert_equal(latent.clip_noise_rates(matrix), util.clip_noise_rates(matrix))
        v = rng.normal(0.3, 0.5, 7)
        assert_equal(latent.clip_values(v, 1e-6, 1.0, 1.0), util.clip_values(v, 1e-6, 1.0, 1.0))
        assert_equal(latent.clip_values(v, 0.0, 0.5), util.clip_values(v, 0.0, 0.5))


def test_latent_prune_counts_for_num_to_remove():
    # pcm[j, k]: true j, given k.  Column 0 has estimated noise 6:2 between
    # classes 1 and 2; column 1 none; column 2 is a class with 1 example.
    pcm = np.array([[20, 0, 0], [6, 10, 0], [2, 0, 1]])
    counts = np.array([28, 10, 1])
    out = latent.prune_counts_for_num_to_remove(pcm, counts, [4, 3, 5])
    assert_equal(out[:, 0], [24, 3, 1])  # 4 split 3:1, total 28
    assert_equal(out[:, 1], [2, 7, 1])  # no estimate: 3 split evenly, remainder to lower index
    assert_equal(out[:, 2], [1, 0, 0])  # r clipped to n_k = 1
    assert_equal(out.sum(axis=0), counts)
    assert_equal(latent.prune_counts_for_num_to_remove(pcm, counts, [0, 0, 0]), np.diag(counts))
    for bad in ([1, 2], [1, -1, 0], [0.5, 1.0, 1.0]):
        with pytest.raises(ValueError):
            latent.prune_counts_for_num_to_remove(pcm, counts, bad)


def test_generated_cases_cover_the_advertised_shapes():
    """Absent, singleton and tiny classes, all label and probability dtypes."""
    seen = {"absent": False, "singleton": False, "tiny": False}
    dtypes, label_dtypes, ks = set(), set(), set()
    for case in CASES:
        labels, probs = case_data(case)
        counts = np.bincount(labels.astype(np.int64), minlength=probs.shape[1])
        seen["absent"] |= bool((counts == 0).any())
        seen["singleton"] |= bool((counts == 1).any())
        seen["tiny"] |= bool(((counts >= 2) & (counts <= 4)).any())
        dtypes.add(probs.dtype)
        label_dtypes.add(labels.dtype)
        ks.add(probs.shape[1])
    assert all(seen.values()), seen
    assert dtypes == {np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)}
    assert label_dtypes >= {np.dtype(t) for t in (np.uint8, np.uint16, np.int32, np.int64)}
    assert ks >= {2, 3, 10, 100, 1000}
    # make_data is deterministic (the oracle cache relies on it)
    a, b = make_data(5, 50, 4), make_data(5, 50, 4)
    assert_equal(a[0], b[0])
    assert_equal(a[1], b[1])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_unflagging_and_argmax_ties_match_cleanlab(cl, dtype):
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
        assert_equal(cl.find_label_issues(labels, probs, filter_by=filter_by), theirs)
    theirs = cleanlab_call("count", "num_label_issues", labels, probs)
    assert int(cl.num_label_issues(labels, probs)) == int(theirs)


def test_row_totals_vectorised_equals_per_row_rounding():
    """The C++ round_rows kernel == latent.round_preserving_row_totals (the NumPy definition)."""
    from labelsift._common.backend import core

    rng = np.random.default_rng(7)
    for trial in range(60):
        k = int(rng.integers(1, 40))
        m = rng.random((k, k)) * rng.choice([1, 10, 1000])
        if trial % 3 == 0:  # exact ties in the residuals
            m = np.round(m * 4) / 4
        if trial % 4 == 0:
            m = np.asfortranarray(m)
        if trial % 5 == 0:  # a row whose gap exceeds its length (several rounds)
            m[0] = 0.49
        want = latent.round_preserving_row_totals(m)
        got = core().round_rows(np.ascontiguousarray(m))  # the C++ kernel
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got.sum(axis=1), np.array([np.sum(r).round() for r in m]))
