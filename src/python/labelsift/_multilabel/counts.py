"""Bodies of the ``multi_label=True`` counting calls (cleanlab's
``_get_confident_thresholds_multilabel``, ``_compute_confident_joint_multi_label``,
``_calibrate_confident_joint_multilabel``, ``_estimate_joint_multilabel``,
``_num_label_issues_multilabel``). The K 2 x 2 algebra is
:mod:`labelsift._cl`'s, applied per class."""
from __future__ import annotations

import numpy as np

from .._cl import latent
from .._cl.passes import calibrate, cut_from_thresholds
from .._common.options import resolve_ties
from .labels import as_multilabels
from .passes import joint_sweep, prepare, thresholds_and_cuts


def get_confident_thresholds(labels, pred_probs, n_jobs=None) -> np.ndarray:
    """(K, 2) float64: per class, the thresholds of its binary problem."""
    return thresholds_and_cuts(prepare(labels, pred_probs, n_jobs))[0]


def _user_cuts(thresholds, k: int) -> np.ndarray:
    t = np.asarray(thresholds)
    if t.shape == (2,):  # cleanlab applies the same pair to every class
        return np.tile(cut_from_thresholds(t, 2, np.float64), (k, 1))
    if t.shape == (k, 2):
        return np.stack([cut_from_thresholds(t[c], 2, np.float64) for c in range(k)])
    raise ValueError(f"thresholds must have shape (2,) or ({k}, 2) with multi_label=True, got {t.shape}")


def calibrate_stack(cj: np.ndarray, counts: np.ndarray, ties: str) -> np.ndarray:
    """Each class's 2 x 2 joint calibrated to its binary label counts (each
    matrix Fortran-ordered as cleanlab's transposed confusion matrix is: the
    float sums of the calibration follow the memory layout)."""
    return np.stack([calibrate(np.asfortranarray(cj[c]), counts[c], ties) for c in range(len(cj))]).astype(np.int64).reshape(-1, 2, 2)


def confident_joints(pb, thresholds=None, calibrate_=True, ties="cleanlab", **sweep):
    cut = thresholds_and_cuts(pb)[2] if thresholds is None else _user_cuts(thresholds, pb.k)
    cj, cl, neq, hist = joint_sweep(pb, cut, **sweep)
    return (calibrate_stack(cj, pb.counts(), ties) if calibrate_ else cj), cl, neq, hist


def compute_confident_joint(labels, pred_probs, *, thresholds=None, calibrate_=True,
                            return_indices_of_off_diagonals=False, n_jobs=None, ties=None):
    ties = resolve_ties(ties)
    pb = prepare(labels, pred_probs, n_jobs)
    cj = confident_joints(pb, thresholds, calibrate_, ties)[0]
    if not return_indices_of_off_diagonals:
        return cj
    # cleanlab's list of K per-class off-diagonal index arrays: from the per-class columns
    from ..reference.confident_learning import compute_confident_joint as _binary_cj
    cuts = None if thresholds is None else np.asarray(thresholds)
    offs = []
    for c in range(pb.k):
        p = pb.column(c)
        tc = None if cuts is None else (cuts if cuts.ndim == 1 else cuts[c])
        offs.append(_binary_cj(pb.y.column(c), np.stack([1 - p, p], axis=1), thresholds=tc, calibrate=False,
                               return_indices_of_off_diagonals=True)[1])
    return cj, offs


def calibrate_confident_joint(confident_joint, labels, ties=None) -> np.ndarray:
    cj = np.asarray(confident_joint)
    if cj.ndim != 3 or cj.shape[1:] != (2, 2):
        raise ValueError(f"confident_joint must have shape (K, 2, 2) with multi_label=True, got {cj.shape}")
    y = as_multilabels(labels, len(labels) if not hasattr(labels, "shape") else labels.shape[0], cj.shape[0])
    n1 = y.counts()
    return calibrate_stack(cj, np.stack([y.n - n1, n1], axis=1), resolve_ties(ties))


def estimate_joint(labels, pred_probs, *, confident_joint=None, n_jobs=None, ties=None) -> np.ndarray:
    """(K, 2, 2) float64: per class the calibrated joint / its total.

    As cleanlab: without ``confident_joint`` the calibrated joint is
    calibrated once more per class (a no-op in practice), with one the given
    stack is calibrated per class."""
    ties = resolve_ties(ties)
    pb = prepare(labels, pred_probs, n_jobs)
    if confident_joint is None:
        cj = confident_joints(pb, None, True, ties)[0]
    else:
        cj = np.asarray(confident_joint)
        if cj.shape != (pb.k, 2, 2):
            raise ValueError(f"confident_joint must have shape ({pb.k}, 2, 2), got {cj.shape}")
    cal = calibrate_stack(cj, pb.counts(), ties)
    return np.stack([latent.estimate_joint_from_calibrated(cal[c]) for c in range(pb.k)])


def num_label_issues(labels, pred_probs, *, confident_joint=None, n_jobs=None, ties=None) -> int:
    """Rows the ``confident_learning`` rule flags in some class (cleanlab's
    multi-label count; ``confident_joint`` is ignored, as by cleanlab)."""
    pb = prepare(labels, pred_probs, n_jobs)
    return int(confident_joints(pb, None, False, resolve_ties(ties), cl=True)[1].sum())
