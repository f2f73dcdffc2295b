"""The oracles themselves: the tie-aware checker rejects wrong masks and
rankings, the generated cases cover the shapes the comparisons promise, and
labelsift.reference refuses what it does not implement."""
from __future__ import annotations

import numpy as np
import pytest

import labelsift.reference as reference
from support.cases import CASES, case_data
from support.compare import (assert_masks_equal_up_to_ties, assert_rankings_equal_up_to_ties,
                             assert_ties_to_lower_index, case_structure, selection_structure)
from support.data import hand_tie_data, make_data
from support.oracle import cached_cleanlab, cleanlab_prune_counts

pytestmark = pytest.mark.filterwarnings("ignore")
assert_equal = np.testing.assert_array_equal


def test_tie_aware_checker_rejects_wrong_masks():
    case = "cifar10-f64"
    labels, probs = case_data(case)
    theirs = cached_cleanlab(case, "filter", "find_label_issues", n_jobs=1)
    structure = case_structure(case, "prune_by_noise_rate")
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
    labels, probs = hand_tie_data()
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


def test_reference_multi_label_not_implemented():
    labels, probs = case_data("k3-f32-u8-tiny")
    for call in (lambda: reference.find_label_issues(labels, probs, multi_label=True),
                 lambda: reference.get_confident_thresholds(labels, probs, multi_label=True),
                 lambda: reference.compute_confident_joint(labels, probs, multi_label=True)):
        with pytest.raises(NotImplementedError, match="multi_label=True is not supported"):
            call()
