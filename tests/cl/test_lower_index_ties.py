"""The ``ties="lower_index"`` rule on a hand-built tie: every selection
among equal keys takes the lower index first, and cleanlab's (arbitrary)
choice is accepted by the tie-aware comparison.  The default rule,
``ties="cleanlab"``, is tested in test_ties.py."""
from __future__ import annotations

import numpy as np
import pytest

from support.compare import assert_masks_equal_up_to_ties, selection_structure
from support.constants import PRUNE_METHODS
from support.data import hand_tie_data
from support.oracle import cleanlab_call, cleanlab_prune_counts

pytestmark = pytest.mark.filterwarnings("ignore")
assert_equal = np.testing.assert_array_equal


@pytest.mark.parametrize("filter_by", PRUNE_METHODS)
def test_ties_go_to_the_lower_index(impl, filter_by):
    labels, probs = hand_tie_data()
    ours = impl.find_label_issues(labels, probs, filter_by=filter_by, frac_noise=0.5)
    assert_equal(np.flatnonzero(ours), [1, 3, 5])
    ranked = impl.find_label_issues(labels, probs, filter_by=filter_by,
                                    return_indices_ranked_by="self_confidence")
    assert_equal(ranked, [1, 3, 5, 7, 9, 11])  # all tied at score 0.1
    # The oracle check accepts cleanlab's (arbitrary) choice among the ties.
    theirs = cleanlab_call("filter", "find_label_issues", labels, probs, filter_by=filter_by,
                           frac_noise=0.5, n_jobs=1)
    pcm = cleanlab_prune_counts(labels, probs, frac_noise=0.5)
    structure = selection_structure(labels, probs, filter_by, prune_counts=pcm)
    assert_masks_equal_up_to_ties(ours, theirs, structure)
