"""Multi-label label quality scores, as ``cleanlab.multilabel_classification.rank``.

A row's score aggregates its K per-class binary scores: by default the
exponential moving average of the scores sorted in descending order with
alpha = 0.8 (the public default; cleanlab's helper alone would use
2 / (K + 1)), or ``{"method": "softmin", "temperature": 0.1}``.
"""
from __future__ import annotations

from .._common import params
from .._multilabel.passes import prepare, thresholds_and_cuts
from .._multilabel.scores import check_aggregator, row_scores


def _scores(labels, pred_probs, method, adjust_pred_probs, aggregator, per_class, n_jobs):
    adjust = params.flag(adjust_pred_probs, "adjust_pred_probs")
    if adjust and method == "confidence_weighted_entropy":
        raise ValueError("adjust_pred_probs is not currently supported for confidence_weighted_entropy")
    pb = prepare(labels, pred_probs, n_jobs)
    t = thresholds_and_cuts(pb)[1] if adjust else None
    return row_scores(pb, None, method, t, aggregator, per_class=per_class)


def get_label_quality_scores(labels, pred_probs, *, method="self_confidence", adjust_pred_probs=False,
                             aggregator_kwargs={"method": "exponential_moving_average", "alpha": 0.8},  # noqa: B006
                             n_jobs=None):
    """(N,) float64 label quality score per example (lower: more likely an issue)."""
    return _scores(labels, pred_probs, method, adjust_pred_probs, check_aggregator(aggregator_kwargs), False, n_jobs)


def get_label_quality_scores_per_class(labels, pred_probs, *, method="self_confidence", adjust_pred_probs=False,
                                       n_jobs=None):
    """N x K float64: each class's binary score (an ndarray, as cleanlab returns,
    although its docstring says a list)."""
    return _scores(labels, pred_probs, method, adjust_pred_probs, None, True, n_jobs)
