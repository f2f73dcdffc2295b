"""Confident-learning counts: thresholds, confident joint, noise matrices.

Same names, arguments, defaults and results as ``cleanlab.count``. Inputs
may be NumPy arrays of any float dtype (float16/32/64), memmaps, ``.npy``
paths or lists of ``.npy`` shard paths; labels any integer dtype. The work
happens in :mod:`labelsift._cl` (``counts.py``).
"""
from __future__ import annotations

import numpy as np

from ._cl import counts as _counts


def get_confident_thresholds(labels, pred_probs, *, multi_label=False, n_jobs=None) -> np.ndarray:
    """Per-class threshold: mean predicted probability of class k over the
    examples labelled k, in the input dtype (2 for an absent class, which
    promotes the vector to float64), clipped below at 2e-6."""
    return _counts.get_confident_thresholds(labels, pred_probs, multi_label=multi_label, n_jobs=n_jobs)


def compute_confident_joint(labels, pred_probs, *, thresholds=None, calibrate=True, multi_label=False,
                            return_indices_of_off_diagonals=False, n_jobs=None, ties=None):
    """K x K counts C[given, guessed true] of confidently counted examples.

    A row is counted when at least one class k has P[i, k] >= t[k] - 1e-6;
    its guess is that class, or the argmax over all classes when several
    pass. Diagonal raised to >= 1; calibrated by default. With
    ``return_indices_of_off_diagonals`` also returns the ascending indices of
    counted rows whose guess differs from the given label. ``ties`` orders
    equal rounding residuals of the calibration (see ``labelsift.options``).
    """
    return _counts.compute_confident_joint(
        labels, pred_probs, thresholds=thresholds, calibrate_=calibrate, multi_label=multi_label,
        return_indices_of_off_diagonals=return_indices_of_off_diagonals, n_jobs=n_jobs, ties=ties)


def calibrate_confident_joint(confident_joint, labels, *, multi_label=False, ties=None) -> np.ndarray:
    """Rescale rows to the label counts, the total to N, round preserving row totals
    (equal residuals ordered by ``ties``)."""
    return _counts.calibrate_confident_joint(confident_joint, labels, multi_label=multi_label, ties=ties)


def estimate_joint(labels, pred_probs, *, confident_joint=None, multi_label=False, n_jobs=None,
                   ties=None) -> np.ndarray:
    """Joint distribution of (given, true) labels: the calibrated confident joint / its total."""
    return _counts.estimate_joint(labels, pred_probs, confident_joint=confident_joint, multi_label=multi_label,
                                  n_jobs=n_jobs, ties=ties)


def estimate_latent(confident_joint, labels, *, py_method="cnt", converge_latent_estimates=False):
    """(py, noise_matrix, inverse_noise_matrix) from a confident joint and the labels."""
    return _counts.estimate_latent(confident_joint, labels, py_method=py_method,
                                   converge_latent_estimates=converge_latent_estimates)


def estimate_py_and_noise_matrices_from_probabilities(labels, pred_probs, *, thresholds=None,
                                                      converge_latent_estimates=True, py_method="cnt",
                                                      calibrate=True, n_jobs=None, ties=None):
    """(py, noise_matrix, inverse_noise_matrix, confident_joint) from predicted probabilities."""
    return _counts.estimate_py_and_noise_matrices_from_probabilities(
        labels, pred_probs, thresholds=thresholds, converge_latent_estimates=converge_latent_estimates,
        py_method=py_method, calibrate_=calibrate, n_jobs=n_jobs, ties=ties)


def num_label_issues(labels, pred_probs, *, confident_joint=None, estimation_method="off_diagonal",
                     multi_label=False, n_jobs=None, ties=None) -> int:
    """Estimated number of label issues.

    ``off_diagonal``: confidently counted rows off the diagonal, minus those
    whose given label is the argmax; ``off_diagonal_calibrated``: N times the
    off-diagonal mass of the estimated joint; ``off_diagonal_custom``: the
    same from the ``confident_joint`` you pass.
    """
    return _counts.num_label_issues(labels, pred_probs, confident_joint=confident_joint,
                                    estimation_method=estimation_method, multi_label=multi_label, n_jobs=n_jobs,
                                    ties=ties)
