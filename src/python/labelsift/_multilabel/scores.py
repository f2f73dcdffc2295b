"""Multi-label label quality scores: per-class binary scores aggregated per row.

cleanlab's ``MultilabelScorer``: class c's score of a row is the binary
problem's score (``self_confidence``, ``normalized_margin`` or
``confidence_weighted_entropy``, optionally on threshold-adjusted
probabilities), stored as float64; a row's score is the exponential moving
average (alpha = 0.8 by default; sorted descending) or the softmin of its K
class scores. Computed in row blocks (never an N x K copy beyond one block).
"""
from __future__ import annotations

import numpy as np

from .._common.checks import check_choice
from .._common.names import SCORE_METHODS
from ..reference import confident_learning as _binary
from ..reference.multilabel import exponential_moving_average, softmin

AGGREGATORS = ("exponential_moving_average", "softmin")
DEFAULT_AGGREGATOR = {"method": "exponential_moving_average", "alpha": 0.8}
_BLOCK_VALUES = 1 << 19


def check_aggregator(aggregator_kwargs):
    kw = dict(DEFAULT_AGGREGATOR if not aggregator_kwargs else aggregator_kwargs)
    method = kw.pop("method", None)
    if method is None:
        # cleanlab's Aggregator(**kwargs) needs a method
        raise TypeError("aggregator_kwargs needs a 'method' (exponential_moving_average or softmin)")
    check_choice(method, AGGREGATORS, "aggregator_kwargs['method']")
    allowed = {"alpha"} if method == "exponential_moving_average" else {"temperature"}
    extra = set(kw) - allowed
    if extra:
        raise TypeError(f"aggregator_kwargs: unexpected {sorted(extra)} for {method}")
    if method == "exponential_moving_average" and kw.get("alpha") is not None and not 0 <= kw["alpha"] <= 1:
        raise ValueError(f"alpha must be in the interval [0, 1], got {kw['alpha']}")
    return method, kw


def class_scores(yb: np.ndarray, p: np.ndarray, method: str, thresholds=None) -> np.ndarray:
    """m x K float64 per-class scores of rows with binary labels ``yb`` (m x K)
    and probabilities ``p`` (m x K, input dtype). ``thresholds``: the per-class
    threshold arrays (for ``adjust_pred_probs``)."""
    if method == "self_confidence" and thresholds is None:
        # the binary self-confidence is P[:, c] (label 1) or 1 - P[:, c] in the dtype (label 0): all classes at once
        return np.where(yb != 0, p, 1 - p).astype(np.float64)
    out = np.zeros(p.shape)
    for c in range(p.shape[1]):
        two = np.stack([1 - p[:, c], p[:, c]], axis=1)
        if thresholds is not None:
            t = thresholds[c]
            two = two - t
            two += t.max()
            two /= two.sum(axis=1, keepdims=True)
        out[:, c] = _binary.get_label_quality_scores(yb[:, c], two, method=method)
    return out


def aggregate(s: np.ndarray, method: str, kw: dict) -> np.ndarray:
    return exponential_moving_average(s, **kw) if method == "exponential_moving_average" else softmin(s, **kw)


def row_scores(pb, rows, method="self_confidence", thresholds=None, aggregator=("exponential_moving_average",
                                                                                  {"alpha": 0.8}), per_class=False):
    """Scores of ``rows`` (None = all), in row blocks."""
    check_choice(method, SCORE_METHODS, "method")
    rows = np.arange(pb.n) if rows is None else np.asarray(rows, np.int64)
    step = max(1, _BLOCK_VALUES // max(pb.k, 1))
    parts = []
    for a in range(0, len(rows), step):
        r = rows[a:a + step]
        p = np.empty((len(r), pb.k), pb.dtype)
        for pos, block, local in pb.probs.rows(r):
            p[pos] = block[local]
        s = class_scores(pb.y.dense(r), p, method, thresholds)
        parts.append(s if per_class else aggregate(s, *aggregator))
    if not parts:
        return np.zeros((0, pb.k)) if per_class else np.zeros(0)
    return np.concatenate(parts)
