"""Label quality scores and ranking, as ``cleanlab.rank``.

Scores: ``self_confidence`` (P[i, y_i]), ``normalized_margin``
((P[i, y_i] - max_{k != y_i} P[i, k] + 1) / 2, in the input dtype) and
``confidence_weighted_entropy`` (cleanlab's formula, float64).
``adjust_pred_probs=True`` subtracts the per-class thresholds first.
Rankings are stable: equal scores keep the lower index first.
"""
from __future__ import annotations

import numpy as np

from . import _cl


def get_label_quality_scores(labels, pred_probs, *, method="self_confidence", adjust_pred_probs=False,
                             n_jobs=None) -> np.ndarray:
    """Score in [0, 1] per example; lower means more likely mislabelled."""
    pb = _cl.prepare(labels, pred_probs, n_jobs)
    return _cl.quality_scores(pb, method, adjust_pred_probs=adjust_pred_probs)


def order_label_issues(label_issues_mask, labels, pred_probs, *, rank_by="self_confidence", rank_by_kwargs=None,
                       n_jobs=None) -> np.ndarray:
    """Indices of the flagged examples, ordered by ascending label quality score."""
    pb = _cl.prepare(labels, pred_probs, n_jobs)
    mask = np.asarray(label_issues_mask)
    if mask.dtype != bool or mask.shape != (pb.n,):
        raise ValueError(f"label_issues_mask must be a boolean array of shape ({pb.n},), got {mask.dtype} {mask.shape}")
    idx = np.flatnonzero(mask)
    scores = _cl.quality_scores(pb, rank_by, rows=idx, **dict(rank_by_kwargs or {}))
    return _cl.order_by_scores(idx, scores)
