"""num_to_remove_per_class: labelsift's documented semantics, and where it
agrees with cleanlab 2.9.0.

prune_by_class removes exactly r_k of class k (the r_k lowest self-confidences,
ties to the lower index), prune_by_noise_rate and both at most r_k; classes
with n_k <= min_examples_per_class are never flagged and the final
unflagging step (the given label wins the argmax after +1e-6) still applies.
"""
from __future__ import annotations

import numpy as np
import pytest

import labelsift.reference as reference
from support.cases import case_data
from support.compare import assert_masks_equal_up_to_ties, selection_structure
from support.constants import PRUNE_METHODS
from support.oracle import cached_cleanlab, cleanlab_given_label_wins, cleanlab_prune_counts

pytestmark = pytest.mark.filterwarnings("ignore")
assert_equal = np.testing.assert_array_equal


def _removal_case():
    labels, probs = case_data("k10-f64-u16-absent-single-tiny")
    counts = np.bincount(labels.astype(np.int64), minlength=probs.shape[1])
    return labels, probs, counts


def _lowest_in_class(labels, probs, k, r):
    rows = np.flatnonzero(labels == k)
    return rows[np.argsort(probs[rows, k], kind="stable")[:r]]


def test_num_to_remove_per_class_prune_by_class_removes_exactly_r(impl):
    labels, probs, counts = _removal_case()
    remove = np.array([3, 0, 1, 7, 2, 5, 4, 6, 3, 2], dtype=np.int64)
    ours = impl.find_label_issues(labels, probs, filter_by="prune_by_class",
                                  num_to_remove_per_class=remove)
    wins = cleanlab_given_label_wins(labels, probs)
    expected = np.zeros(len(labels), bool)
    for k in range(len(counts)):
        if counts[k] > 1:  # n_k <= min_examples_per_class=1: never flagged
            expected[_lowest_in_class(labels, probs, k, min(remove[k], counts[k]))] = True
    expected &= ~wins  # the final unflagging step still applies
    assert_equal(ours, expected)
    assert (counts == 0).any() and (counts == 1).any()  # the case covers both


def test_num_to_remove_per_class_noise_rate_removes_at_most_r(impl):
    labels, probs, counts = _removal_case()
    remove = np.array([3, 0, 1, 7, 2, 5, 4, 6, 3, 2], dtype=np.int64)
    for filter_by in ("prune_by_noise_rate", "both"):
        ours = impl.find_label_issues(labels, probs, filter_by=filter_by,
                                      num_to_remove_per_class=remove)
        flagged = np.bincount(labels[ours].astype(np.int64), minlength=len(counts))
        assert (flagged <= remove).all(), (filter_by, flagged, remove)
    ours = impl.find_label_issues(labels, probs, num_to_remove_per_class=remove)
    assert ours.sum() > 0


@pytest.mark.parametrize("filter_by", PRUNE_METHODS)
def test_num_to_remove_zero_removes_nothing(impl, filter_by):
    labels, probs = case_data("cifar10-f64")
    zeros = np.zeros(probs.shape[1], dtype=np.int64)
    ours = impl.find_label_issues(labels, probs, filter_by=filter_by, num_to_remove_per_class=zeros)
    assert not ours.any()


def test_num_to_remove_per_class_validation(impl):
    labels, probs = case_data("k3-f32-u8-tiny")
    for bad in ([1, 2], [1, -1, 0], [0.5, 1.0, 1.0], [[1, 1, 1]]):
        with pytest.raises(ValueError):
            impl.find_label_issues(labels, probs, num_to_remove_per_class=bad)
    with pytest.raises(ValueError):
        impl.find_label_issues(labels, probs, filter_by="confident_learning",
                               num_to_remove_per_class=[1, 1, 1])


def test_num_to_remove_per_class_prune_by_class_matches_cleanlab(impl):
    """For prune_by_class cleanlab's num_to_remove_per_class does what it
    documents (its diagonal is n_k - r_k), so there the results agree."""
    case = "cifar10-f16"
    labels, probs = case_data(case)
    remove = np.arange(probs.shape[1], dtype=np.int64) * 7
    theirs = cached_cleanlab(case, "filter", "find_label_issues", filter_by="prune_by_class",
                             num_to_remove_per_class=remove, n_jobs=1)
    ours = impl.find_label_issues(labels, probs, filter_by="prune_by_class",
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
