"""The counting and ranking calls of confident learning (bodies of
``labelsift.count`` and ``labelsift.rank``): validate the arguments, plan the
passes, return cleanlab's results."""
from __future__ import annotations

import warnings

import numpy as np

from .._common import params
from .._common.arrays import HOST, as_counts, as_probs, label_counts
from .._common.names import ESTIMATION_METHODS
from .._common.options import resolve_ties
from . import latent, oneread
from .passes import calibrate, confident_pass, given_probs, prepare, thresholds_from_given, validate
from .scores import order_by_scores, quality_scores, score_kwargs


def _ml():
    from .._multilabel import counts  # the multi-label room (multi_label=True)
    return counts


def _check_py_method(py_method) -> None:
    if not isinstance(py_method, str) or py_method not in latent.PY_METHODS:
        raise ValueError(f"py_method {py_method!r} should be in {list(latent.PY_METHODS)}")


def get_confident_thresholds(labels, pred_probs, *, multi_label=False, n_jobs=None) -> np.ndarray:
    if multi_label:
        return _ml().get_confident_thresholds(labels, pred_probs, n_jobs)
    pb = prepare(labels, pred_probs, n_jobs, device_ok=True)
    validate(pb)
    return _to_caller(pb, thresholds_from_given(given_probs(pb), pb.labels, pb.k, pb.nthreads))


def _to_caller(pb, result):
    """Results of a call on a CUDA pred_probs in the caller's type (torch in,
    torch out; CuPy in, CuPy out; NumPy for other producers)."""
    if not pb.on_device:
        return result
    from .._common.cuda_arrays import to_caller
    return to_caller(pb.probs.arr, result)


def _joint(labels, pred_probs, thresholds, calibrate_, n_jobs, ties, device_ok=False):
    """(Problem, confident joint calibrated or raw, ascending off-diagonal rows)."""
    pb = prepare(labels, pred_probs, n_jobs, device_ok=device_ok)
    got = None
    if thresholds is None and pb.probs.device == HOST and oneread.prefer_for(pb):  # reads="one", or "auto" on a big file
        got = oneread.joint(pb, oneread.new_report(pb))
    if got is not None:
        cj, off, _ = got
    else:
        _, _, _, cj, off = confident_pass(pb, thresholds)
    return pb, calibrate(cj, pb.label_counts(), resolve_ties(ties)) if calibrate_ else cj, off


def compute_confident_joint(labels, pred_probs, *, thresholds=None, calibrate_=True, multi_label=False,
                            return_indices_of_off_diagonals=False, n_jobs=None, ties=None):
    calibrate_ = params.flag(calibrate_, "calibrate")
    return_indices_of_off_diagonals = params.flag(return_indices_of_off_diagonals, "return_indices_of_off_diagonals")
    if multi_label:
        return _ml().compute_confident_joint(labels, pred_probs, thresholds=thresholds, calibrate_=calibrate_,
                                             return_indices_of_off_diagonals=return_indices_of_off_diagonals,
                                             n_jobs=n_jobs, ties=ties)
    pb, cj, off = _joint(labels, pred_probs, thresholds, calibrate_, n_jobs, ties, device_ok=True)
    return _to_caller(pb, (cj, off) if return_indices_of_off_diagonals else cj)


def calibrate_confident_joint(confident_joint, labels, *, multi_label=False, ties=None) -> np.ndarray:
    if multi_label:
        return _ml().calibrate_confident_joint(confident_joint, labels, ties=ties)
    cj = as_counts(confident_joint, None, "confident_joint")
    return calibrate(cj, label_counts(labels, cj.shape[0]), resolve_ties(ties))


def estimate_joint(labels, pred_probs, *, confident_joint=None, multi_label=False, n_jobs=None,
                   ties=None) -> np.ndarray:
    if multi_label:
        return _ml().estimate_joint(labels, pred_probs, confident_joint=confident_joint, n_jobs=n_jobs, ties=ties)
    if confident_joint is None:
        cal = _joint(labels, pred_probs, None, True, n_jobs, ties)[1]
    else:
        cj = as_counts(confident_joint, None, "confident_joint")
        if pred_probs is not None:  # not needed here, but never accepted unchecked
            probs = as_probs(pred_probs)
            if probs.k != cj.shape[0]:
                raise ValueError(f"confident_joint is {cj.shape[0]} x {cj.shape[0]} but pred_probs has {probs.k} "
                                 "columns")
            validate(prepare(labels, probs, n_jobs, labels_optional=True))
        cal = cj if labels is None else calibrate(cj, label_counts(labels, cj.shape[0]), resolve_ties(ties))
    return latent.estimate_joint_from_calibrated(cal)


def estimate_latent(confident_joint, labels, *, py_method="cnt", converge_latent_estimates=False):
    _check_py_method(py_method)
    converge_latent_estimates = params.flag(converge_latent_estimates, "converge_latent_estimates")
    cj = as_counts(confident_joint, None, "confident_joint")
    return latent.estimate_latent(cj, label_counts(labels, cj.shape[0]), py_method, converge_latent_estimates)


def estimate_py_and_noise_matrices_from_probabilities(labels, pred_probs, *, thresholds=None,
                                                      converge_latent_estimates=True, py_method="cnt",
                                                      calibrate_=True, n_jobs=None, ties=None):
    _check_py_method(py_method)
    converge_latent_estimates = params.flag(converge_latent_estimates, "converge_latent_estimates")
    calibrate_ = params.flag(calibrate_, "calibrate")
    pb, cj, _ = _joint(labels, pred_probs, thresholds, calibrate_, n_jobs, ties)
    py, nm, inv = latent.estimate_latent(cj, pb.label_counts(), py_method, converge_latent_estimates)
    return py, nm, inv, cj


def num_label_issues(labels, pred_probs, *, confident_joint=None, estimation_method="off_diagonal",
                     multi_label=False, n_jobs=None, ties=None) -> int:
    if multi_label:  # cleanlab: the confident_learning count, whatever estimation_method
        return _ml().num_label_issues(labels, pred_probs, confident_joint=confident_joint, n_jobs=n_jobs, ties=ties)
    ties = resolve_ties(ties)
    if not isinstance(estimation_method, str) or estimation_method not in ESTIMATION_METHODS:
        raise ValueError(f"{estimation_method!r} is not a valid estimation method; choose one of {ESTIMATION_METHODS}")
    if confident_joint is not None and estimation_method != "off_diagonal_custom":
        warnings.warn(
            "The supplied `confident_joint` is ignored unless estimation_method='off_diagonal_custom'.",
            stacklevel=3,
        )
    pb = prepare(labels, pred_probs, n_jobs)
    if estimation_method == "off_diagonal":
        _, _, rp, _, off = confident_pass(pb, keep=True)
        return int(np.count_nonzero(~rp.keep[off]))
    if estimation_method == "off_diagonal_calibrated":
        _, _, _, cj, _ = confident_pass(pb)
    else:
        if confident_joint is None:
            raise ValueError("estimation_method='off_diagonal_custom' needs a confident_joint")
        cj = as_counts(confident_joint, pb.k, "confident_joint")
        validate(pb)
    joint = latent.estimate_joint_from_calibrated(calibrate(cj, pb.label_counts(), ties))
    frac = 1.0 - joint.trace()
    return int(np.rint(frac * pb.n))


def get_label_quality_scores(labels, pred_probs, *, method="self_confidence", adjust_pred_probs=False,
                             n_jobs=None) -> np.ndarray:
    pb = prepare(labels, pred_probs, n_jobs)
    return quality_scores(pb, method, adjust_pred_probs=adjust_pred_probs)


def order_label_issues(label_issues_mask, labels, pred_probs, *, rank_by="self_confidence", rank_by_kwargs=None,
                       n_jobs=None, ties=None) -> np.ndarray:
    ties = resolve_ties(ties)
    pb = prepare(labels, pred_probs, n_jobs)
    rank_by_kwargs = score_kwargs(rank_by_kwargs, "rank_by_kwargs")
    mask = np.asarray(label_issues_mask)
    if mask.dtype != bool or mask.shape != (pb.n,):
        raise ValueError(f"label_issues_mask must be a boolean array of shape ({pb.n},), got {mask.dtype} {mask.shape}")
    idx = np.flatnonzero(mask)
    scores = quality_scores(pb, rank_by, rows=idx, **rank_by_kwargs)
    return order_by_scores(idx, scores, ties)
