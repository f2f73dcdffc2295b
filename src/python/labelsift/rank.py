"""Label quality scores and ranking, as ``cleanlab.rank``.

Scores: ``self_confidence`` (P[i, y_i]), ``normalized_margin``
((P[i, y_i] - max_{k != y_i} P[i, k] + 1) / 2, in the input dtype) and
``confidence_weighted_entropy`` (cleanlab's formula, float64).
``adjust_pred_probs=True`` subtracts the per-class thresholds first.
Equal scores are ordered by the tie rule (``ties=``; ``"cleanlab"`` by
default, ``"lower_index"`` keeps the lower index first). The work
happens in :mod:`labelsift._cl` (``scores.py``).
"""
from __future__ import annotations

import numpy as np

from ._cl import counts as _counts


def get_label_quality_scores(labels, pred_probs, *, method="self_confidence", adjust_pred_probs=False,
                             n_jobs=None) -> np.ndarray:
    """Score in [0, 1] per example; lower means more likely mislabelled."""
    return _counts.get_label_quality_scores(labels, pred_probs, method=method, adjust_pred_probs=adjust_pred_probs,
                                            n_jobs=n_jobs)


def order_label_issues(label_issues_mask, labels, pred_probs, *, rank_by="self_confidence", rank_by_kwargs=None,
                       n_jobs=None, ties=None) -> np.ndarray:
    """Indices of the flagged examples, ordered by ascending label quality
    score (equal scores ordered by ``ties``, see ``labelsift.options``)."""
    return _counts.order_label_issues(label_issues_mask, labels, pred_probs, rank_by=rank_by,
                                      rank_by_kwargs=rank_by_kwargs, n_jobs=n_jobs, ties=ties)
