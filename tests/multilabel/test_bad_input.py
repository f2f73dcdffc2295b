"""Bad multi-label input: clear errors naming the argument."""
import numpy as np
import pytest

import labelsift
import labelsift.multilabel_classification as L

P = np.full((3, 3), 0.5)


@pytest.mark.parametrize("labels,exc,pat", [
    ([[0], [3], []], ValueError, r"labels\[1\] contains class 3, outside 0\.\.2"),
    ([[0], [-1], []], ValueError, r"labels\[1\] contains class -1"),
    ([[0], [[1]], []], TypeError, r"labels\[1\].*nested"),
    ([[0], 1, []], TypeError, r"labels\[1\] = 1 is not a list"),
    ([[0], [1.5], []], TypeError, r"labels\[1\].*non-integer"),
    ([[0], [1]], ValueError, r"labels has 2 examples but pred_probs has 3 rows"),
    (np.zeros((3, 2)), ValueError, r"labels is an array of shape \(3, 2\)"),
    ("abc", TypeError, r"labels must be a list"),
])
def test_bad_labels(labels, exc, pat):
    with pytest.raises(exc, match=pat):
        L.filter.find_label_issues(labels, P)


@pytest.mark.parametrize("probs,exc,pat", [
    (np.full(3, 0.5), ValueError, r"pred_probs"),
    (np.array([[0.5, 1.2, 0.1]] * 3), ValueError, r"pred_probs\[0, 1\] = .*not a probability in \[0, 1\]"),
    (np.array([[0.5, np.nan, 0.1]] * 3), ValueError, r"pred_probs\[0, 1\]"),
    (np.array([[0.5, -0.1, 0.1]] * 3), ValueError, r"pred_probs\[0, 1\]"),
])
def test_bad_probs(probs, exc, pat):
    labels = [[0], [1], []]
    for call in (lambda: L.filter.find_label_issues(labels, probs),
                 lambda: L.rank.get_label_quality_scores(labels, probs),
                 lambda: labelsift.get_confident_thresholds(labels, probs, multi_label=True)):
        with pytest.raises(exc, match=pat):
            call()


def test_bad_arguments():
    labels = [[0], [1], []]
    with pytest.raises(ValueError, match="confident_joint should be of shape"):
        L.filter.find_label_issues(labels, P, confident_joint=np.ones((3, 2)))
    with pytest.raises(ValueError, match="filter_by"):
        L.filter.find_label_issues(labels, P, filter_by="bogus")
    with pytest.raises(ValueError, match="adjust_pred_probs"):
        L.rank.get_label_quality_scores(labels, P, method="confidence_weighted_entropy", adjust_pred_probs=True)
    with pytest.raises(ValueError, match="aggregator_kwargs"):
        L.rank.get_label_quality_scores(labels, P, aggregator_kwargs={"method": "bogus"})
