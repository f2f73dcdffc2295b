"""Plain-NumPy reference for multi-label confident learning (the test oracle).

cleanlab 2.9.0's one-vs-rest reduction, written the obvious way: for every
class c a binary problem with labels ``y[:, c]`` and probabilities
``[1 - P[:, c], P[:, c]]`` (``stack_complement``, in the input dtype), run
through :mod:`labelsift.reference.confident_learning`, and the per-class
results combined as cleanlab combines them (an example is flagged when any
class flags it; rankings by the exponential moving average of the per-class
scores). Slow (K copies of an N x 2 array) and obviously right; the one-sweep
kernels of :mod:`labelsift._multilabel` must return exactly what these return.

Labels: a list of per-example label lists (empty lists allowed) or an N x K
0/1 array. ``ties`` as everywhere (``"cleanlab"``: NumPy's default sort at
every sort cleanlab makes; ``"lower_index"``: stable sorts).
"""
from __future__ import annotations

from functools import reduce

import numpy as np

from .._common.options import resolve_ties as _resolve_ties
from . import confident_learning as _cl


def onehot(labels, num_classes: int) -> np.ndarray:
    """N x K int64 0/1 matrix (cleanlab's ``int2onehot``)."""
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        return (np.asarray(labels) != 0).astype(np.int64)
    y = np.zeros((len(labels), num_classes), dtype=np.int64)
    for i, row in enumerate(labels):
        for c in row:
            y[i, int(c)] = 1
    return y


def stack_complement(p: np.ndarray) -> np.ndarray:
    return np.vstack((1 - p, p)).T


def _binary(labels, pred_probs):
    probs = np.asarray(pred_probs)
    y = onehot(labels, probs.shape[1])
    return y, probs


def get_confident_thresholds(labels, pred_probs) -> np.ndarray:
    """(K, 2) float64: the binary problem's thresholds per class."""
    y, probs = _binary(labels, pred_probs)
    return np.array([_cl.get_confident_thresholds(y[:, c], stack_complement(probs[:, c]))
                     for c in range(probs.shape[1])], dtype=np.float64).reshape(-1, 2)


def compute_confident_joint(labels, pred_probs, *, thresholds=None, calibrate=True,
                            return_indices_of_off_diagonals=False, ties=None):
    """(K, 2, 2) int64 stack of the binary confident joints (and the K lists
    of off-diagonal rows). ``thresholds``: (2,) for every class, or (K, 2)."""
    y, probs = _binary(labels, pred_probs)
    k = probs.shape[1]
    t = None if thresholds is None else np.asarray(thresholds)
    cjs, offs = np.zeros((k, 2, 2), np.int64), []
    for c in range(k):
        tc = None if t is None else (t[c] if t.ndim == 2 else t)
        cj, off = _cl.compute_confident_joint(y[:, c], stack_complement(probs[:, c]), thresholds=tc,
                                              calibrate=calibrate, return_indices_of_off_diagonals=True,
                                              ties=ties)
        cjs[c] = cj
        offs.append(off)
    return (cjs, offs) if return_indices_of_off_diagonals else cjs


def estimate_joint(labels, pred_probs, *, confident_joint=None, ties=None) -> np.ndarray:
    """(K, 2, 2) float64: cleanlab's per-class ``estimate_joint`` of the
    calibrated joint (calibrated again per class, as cleanlab does)."""
    y, probs = _binary(labels, pred_probs)
    cj = compute_confident_joint(labels, probs, ties=ties) if confident_joint is None else np.asarray(confident_joint)
    out = np.zeros((probs.shape[1], 2, 2))
    for c in range(probs.shape[1]):
        out[c] = _cl.estimate_joint(y[:, c], stack_complement(probs[:, c]), confident_joint=cj[c], ties=ties)
    return out


def per_class_issues(labels, pred_probs, *, filter_by="prune_by_noise_rate", frac_noise=1.0,
                     num_to_remove_per_class=None, min_examples_per_class=1, confident_joint=None, ties=None):
    """N x K bool: the binary problem's mask for each class."""
    y, probs = _binary(labels, pred_probs)
    out = np.zeros(y.shape, dtype=bool)
    for c in range(probs.shape[1]):
        out[:, c] = _cl.find_label_issues(
            y[:, c], stack_complement(probs[:, c]), filter_by=filter_by, frac_noise=frac_noise,
            num_to_remove_per_class=None if num_to_remove_per_class is None else [num_to_remove_per_class[c], 0],
            min_examples_per_class=min_examples_per_class,
            confident_joint=None if confident_joint is None else np.asarray(confident_joint)[c], ties=ties)
    return out


def exponential_moving_average(s: np.ndarray, alpha=None) -> np.ndarray:
    s_sorted = np.fliplr(np.sort(s, axis=1))
    alpha = float(2 / (s.shape[1] + 1)) if alpha is None else alpha
    ema = s_sorted[:, 0]
    for t in range(1, s.shape[1]):
        ema = alpha * s_sorted[:, t] + (1 - alpha) * ema
    return ema


def softmin(s: np.ndarray, temperature=0.1) -> np.ndarray:
    x = (1 - s) / max(temperature, 1e-6)
    x = x - np.max(x, axis=1, keepdims=True)
    e = np.exp(x)
    return np.einsum("ij,ij->i", s, e / np.sum(e, axis=1, keepdims=True))


def get_label_quality_scores_per_class(labels, pred_probs, *, method="self_confidence", adjust_pred_probs=False):
    """N x K float64: the binary problem's score for each class."""
    y, probs = _binary(labels, pred_probs)
    out = np.zeros(y.shape)
    for c in range(probs.shape[1]):
        out[:, c] = _cl.get_label_quality_scores(y[:, c], stack_complement(probs[:, c]), method=method,
                                                 adjust_pred_probs=adjust_pred_probs)
    return out


def get_label_quality_scores(labels, pred_probs, *, method="self_confidence", adjust_pred_probs=False,
                             aggregator_kwargs=None):
    kw = dict({"method": "exponential_moving_average", "alpha": 0.8} if aggregator_kwargs is None
              else aggregator_kwargs)
    agg = kw.pop("method")
    s = get_label_quality_scores_per_class(labels, pred_probs, method=method, adjust_pred_probs=adjust_pred_probs)
    return exponential_moving_average(s, **kw) if agg == "exponential_moving_average" else softmin(s, **kw)


def find_label_issues(labels, pred_probs, *, return_indices_ranked_by=None, rank_by_kwargs=None,
                      filter_by="prune_by_noise_rate", frac_noise=1.0, num_to_remove_per_class=None,
                      min_examples_per_class=1, confident_joint=None, ties=None):
    """cleanlab's ``multilabel_classification.filter.find_label_issues``."""
    ties = _resolve_ties(ties)
    y, probs = _binary(labels, pred_probs)
    rank_by_kwargs = dict(rank_by_kwargs or {})
    sort = (lambda v: np.argsort(v)) if ties == "cleanlab" else (lambda v: np.argsort(v, kind="stable"))
    if filter_by in ("low_normalized_margin", "low_self_confidence"):
        num_errors = int(per_class_issues(y, probs, filter_by="confident_learning", ties=ties).any(axis=1).sum())
        idx = sort(get_label_quality_scores(y, probs))[:num_errors]
        mask = np.zeros(len(y), dtype=bool)
        mask[idx] = True
        if return_indices_ranked_by is None:
            return mask
        # cleanlab's quirk: scores of the flagged rows in ascending row order index
        # the flagged rows in score order
        s = get_label_quality_scores(y[mask], probs[mask], method=return_indices_ranked_by, **rank_by_kwargs)
        return idx[sort(s)]
    issues = per_class_issues(y, probs, filter_by=filter_by, frac_noise=frac_noise,
                              num_to_remove_per_class=num_to_remove_per_class,
                              min_examples_per_class=min_examples_per_class,
                              confident_joint=confident_joint, ties=ties)
    if return_indices_ranked_by is None:
        return issues.sum(axis=1) >= 1
    idx = reduce(np.union1d, [np.flatnonzero(issues[:, c]) for c in range(issues.shape[1])])
    s = get_label_quality_scores(y, probs, method=return_indices_ranked_by, **rank_by_kwargs)
    return idx[sort(s[idx])]


def num_label_issues(labels, pred_probs, *, ties=None) -> int:
    return int(find_label_issues(labels, pred_probs, filter_by="confident_learning", ties=ties).sum())


__all__ = ["compute_confident_joint", "estimate_joint", "exponential_moving_average", "find_label_issues",
           "get_confident_thresholds", "get_label_quality_scores", "get_label_quality_scores_per_class",
           "num_label_issues", "onehot", "per_class_issues", "softmin", "stack_complement"]
