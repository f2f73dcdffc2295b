"""Confident-learning counts: thresholds, confident joint, noise matrices.

Same names, arguments, defaults and results as ``cleanlab.count``. Inputs
may be NumPy arrays of any float dtype (float16/32/64), memmaps, ``.npy``
paths or lists of ``.npy`` shard paths; labels any integer dtype.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import _cl, _latent
from ._arrays import _is_pathlike, as_labels, load_npy
from ._names import ESTIMATION_METHODS


def _no_multi_label(multi_label):
    if multi_label:
        raise NotImplementedError("multi_label=True is not supported yet in labelsift")


def _label_counts_of(labels, k) -> np.ndarray:
    if _is_pathlike(labels):
        labels = load_npy(labels, "labels")
    y = as_labels(labels, len(labels), k)
    return np.bincount(y, minlength=k).astype(np.int64)


def get_confident_thresholds(labels, pred_probs, *, multi_label=False, n_jobs=None) -> np.ndarray:
    """Per-class threshold: mean predicted probability of class k over the
    examples labelled k, in the input dtype (2 for an absent class, which
    promotes the vector to float64), clipped below at 2e-6."""
    _no_multi_label(multi_label)
    pb = _cl.prepare(labels, pred_probs, n_jobs)
    _cl.validate(pb)
    return _cl.thresholds_from_given(pb, _cl.given_probs(pb))


def compute_confident_joint(labels, pred_probs, *, thresholds=None, calibrate=True, multi_label=False,
                            return_indices_of_off_diagonals=False, n_jobs=None):
    """K x K counts C[given, guessed true] of confidently counted examples.

    A row is counted when at least one class k has P[i, k] >= t[k] - 1e-6;
    its guess is that class, or the argmax over all classes when several
    pass. Diagonal raised to >= 1; calibrated by default. With
    ``return_indices_of_off_diagonals`` also returns the ascending indices of
    counted rows whose guess differs from the given label.
    """
    _no_multi_label(multi_label)
    pb = _cl.prepare(labels, pred_probs, n_jobs)
    _, _, _, cj, off = _cl.confident_pass(pb, thresholds)
    if calibrate:
        cj = _latent.calibrate_confident_joint(cj, pb.label_counts())
    if return_indices_of_off_diagonals:
        return cj, off
    return cj


def calibrate_confident_joint(confident_joint, labels, *, multi_label=False) -> np.ndarray:
    """Rescale rows to the label counts, the total to N, round preserving row totals."""
    _no_multi_label(multi_label)
    cj = np.asarray(confident_joint)
    k = cj.shape[0] if cj.ndim == 2 else -1
    cj = _cl.check_square(cj, k, "confident_joint")
    return _latent.calibrate_confident_joint(cj, _label_counts_of(labels, k))


def estimate_joint(labels, pred_probs, *, confident_joint=None, multi_label=False, n_jobs=None) -> np.ndarray:
    """Joint distribution of (given, true) labels: the calibrated confident joint / its total."""
    _no_multi_label(multi_label)
    if confident_joint is None:
        cal = compute_confident_joint(labels, pred_probs, calibrate=True, n_jobs=n_jobs)
    else:
        cj = np.asarray(confident_joint)
        k = cj.shape[0] if cj.ndim == 2 else -1
        cj = _cl.check_square(cj, k, "confident_joint")
        cal = cj if labels is None else _latent.calibrate_confident_joint(cj, _label_counts_of(labels, k))
    return _latent.estimate_joint_from_calibrated(cal)


def estimate_latent(confident_joint, labels, *, py_method="cnt", converge_latent_estimates=False):
    """(py, noise_matrix, inverse_noise_matrix) from a confident joint and the labels."""
    if py_method not in _latent.PY_METHODS:
        raise ValueError(f"py_method {py_method!r} should be in {list(_latent.PY_METHODS)}")
    cj = np.asarray(confident_joint)
    k = cj.shape[0] if cj.ndim == 2 else -1
    cj = _cl.check_square(cj, k, "confident_joint")
    return _latent.estimate_latent(cj, _label_counts_of(labels, k), py_method, converge_latent_estimates)


def estimate_py_and_noise_matrices_from_probabilities(labels, pred_probs, *, thresholds=None,
                                                      converge_latent_estimates=True, py_method="cnt",
                                                      calibrate=True, n_jobs=None):
    """(py, noise_matrix, inverse_noise_matrix, confident_joint) from predicted probabilities."""
    if py_method not in _latent.PY_METHODS:
        raise ValueError(f"py_method {py_method!r} should be in {list(_latent.PY_METHODS)}")
    pb = _cl.prepare(labels, pred_probs, n_jobs)
    _, _, _, cj, _ = _cl.confident_pass(pb, thresholds)
    if calibrate:
        cj = _latent.calibrate_confident_joint(cj, pb.label_counts())
    py, nm, inv = _latent.estimate_latent(cj, pb.label_counts(), py_method, converge_latent_estimates)
    return py, nm, inv, cj




def num_label_issues(labels, pred_probs, *, confident_joint=None, estimation_method="off_diagonal",
                     multi_label=False, n_jobs=None) -> int:
    """Estimated number of label issues.

    ``off_diagonal``: confidently counted rows off the diagonal, minus those
    whose given label is the argmax; ``off_diagonal_calibrated``: N times the
    off-diagonal mass of the estimated joint; ``off_diagonal_custom``: the
    same from the ``confident_joint`` you pass.
    """
    _no_multi_label(multi_label)
    if estimation_method not in ESTIMATION_METHODS:
        raise ValueError(f"{estimation_method!r} is not a valid estimation method; choose one of {ESTIMATION_METHODS}")
    if confident_joint is not None and estimation_method != "off_diagonal_custom":
        warnings.warn(
            "The supplied `confident_joint` is ignored unless estimation_method='off_diagonal_custom'.",
            stacklevel=2,
        )
    pb = _cl.prepare(labels, pred_probs, n_jobs)
    if estimation_method == "off_diagonal":
        _, _, rp, _, off = _cl.confident_pass(pb, keep=True)
        return int(np.count_nonzero(~rp.keep[off]))
    if estimation_method == "off_diagonal_calibrated":
        _, _, _, cj, _ = _cl.confident_pass(pb)
        joint = _latent.estimate_joint_from_calibrated(_latent.calibrate_confident_joint(cj, pb.label_counts()))
    else:
        if confident_joint is None:
            raise ValueError("estimation_method='off_diagonal_custom' needs a confident_joint")
        cj = _cl.check_square(confident_joint, pb.k, "confident_joint")
        _cl.validate(pb)
        joint = _latent.estimate_joint_from_calibrated(_latent.calibrate_confident_joint(cj, pb.label_counts()))
    frac = 1.0 - joint.trace()
    return int(np.rint(frac * pb.n))
