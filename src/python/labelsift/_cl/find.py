"""``find_label_issues``: the plan of passes behind cleanlab's seven
``filter_by`` methods.

A default call reads P[i, y_i] once, sweeps all values once (validation,
confident guesses, the unflagging test, max over the other classes), and
sweeps once more reading only the columns a row's class has to prune.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._common import params
from .._common.arrays import as_counts
from .._common.checks import check_choice, no_multi_label
from .._common.names import FILTER_BY, PRUNE_METHODS, SCORE_METHODS
from .._common.options import resolve_ties
from . import latent, oneread
from .passes import (Problem, calibrate, confident_pass, given_probs, margin_upper_bound, prepare, prune_by_class,
                     prune_by_noise_rate, prune_counts, row_pass)
from .scores import argsort, quality_scores, score_kwargs


@dataclass
class Found:
    """What one find_label_issues run computed, for the caller to pick from."""

    mask: np.ndarray
    pb: Problem
    rp: object  # RowPass
    g: np.ndarray | None
    thresholds: np.ndarray | None
    ties: str


def _check_args(filter_by, frac_noise, num_to_remove_per_class, min_examples_per_class, return_indices_ranked_by,
                confident_joint, multi_label, device):
    no_multi_label(multi_label)
    check_choice(filter_by, FILTER_BY, "filter_by")
    if device not in (None, "cpu"):
        raise ValueError(f"device={device!r}: moving host inputs to a GPU is not implemented; pass pred_probs "
                         "as a CUDA array (torch, CuPy) to run on its device (device=None)")
    frac_noise = params.real(frac_noise, "frac_noise", lo=0.0, hi=1.0)
    min_examples_per_class = params.integer(min_examples_per_class, "min_examples_per_class", lo=0)
    if filter_by not in PRUNE_METHODS and (frac_noise != 1.0 or num_to_remove_per_class is not None):
        warnings.warn(
            "frac_noise and num_to_remove_per_class only apply to filter_by 'prune_by_noise_rate', "
            "'prune_by_class' and 'both'.",
            stacklevel=4,
        )
    if num_to_remove_per_class is not None and filter_by not in PRUNE_METHODS:
        raise ValueError(f"num_to_remove_per_class is not supported with filter_by={filter_by!r}")
    if return_indices_ranked_by is not None:
        check_choice(return_indices_ranked_by, SCORE_METHODS, "return_indices_ranked_by")
    if filter_by == "confident_learning" and confident_joint is not None:
        warnings.warn("The supplied `confident_joint` is ignored when filter_by='confident_learning'.", stacklevel=4)
    return frac_noise, min_examples_per_class


def find(labels, pred_probs, *, filter_by="prune_by_noise_rate", frac_noise=1.0, num_to_remove_per_class=None,
         min_examples_per_class=1, confident_joint=None, want_margin=False, want_argmax=False,
         n_jobs=None, ties="cleanlab") -> Found:
    """The mask of ``find_label_issues`` (arguments already checked) and the
    per-row results computed on the way."""
    pb = prepare(labels, pred_probs, n_jobs, device_ok=True)
    own_joint = confident_joint is None or filter_by == "confident_learning"
    user_cj = None if own_joint else as_counts(confident_joint, pb.k, "confident_joint")
    if num_to_remove_per_class is not None:
        num_to_remove_per_class = params.count_vector(num_to_remove_per_class, pb.k, "num_to_remove_per_class")
    if (filter_by == "prune_by_noise_rate" and confident_joint is None and frac_noise == 1.0
            and num_to_remove_per_class is None and int(min_examples_per_class) == 1):
        if not pb.on_device and oneread.prefer_for(pb):
            got = oneread.find(pb, ties, oneread.new_report(pb))
            if got is not None:
                mask, g, thresholds, rp = got
                return Found(mask, pb, rp, g, thresholds, ties)
    # max over the other classes: for the margin score, and for the prune
    # sweep's bound on every margin of a row (it lets it skip rows unread)
    # (the device's prune selections rank exact margins and need no bound)
    needs_bound = filter_by in ("prune_by_noise_rate", "both") and not pb.on_device
    want_margin = want_margin or filter_by == "low_normalized_margin" or needs_bound
    want_argmax = want_argmax or filter_by == "predicted_neq_given"
    g = thresholds = None
    if own_joint or filter_by.startswith("low_"):
        g, thresholds, rp, cj_raw, off = confident_pass(pb, argmax=want_argmax, keep=True, max_other=want_margin)
    else:
        rp = row_pass(pb, argmax=want_argmax, keep=True, max_other=want_margin)
    cj = calibrate(cj_raw, pb.label_counts(), ties) if own_joint else user_cj
    if filter_by in PRUNE_METHODS:
        g = given_probs(pb) if g is None else g
        mask = _prune(pb, filter_by, cj, g, rp, frac_noise, num_to_remove_per_class, int(min_examples_per_class),
                      ties)
    elif filter_by == "confident_learning":
        mask = np.zeros(pb.n, bool)
        mask[off] = True
    elif filter_by == "predicted_neq_given":
        mask = rp.argmax != pb.labels
    else:  # low_self_confidence / low_normalized_margin
        num_errors = int(np.count_nonzero(~rp.keep[off]))
        scores = quality_scores(pb, filter_by[4:], g=g, max_other=rp.max_other)
        mask = np.zeros(pb.n, bool)
        mask[argsort(scores, ties)[:num_errors]] = True
    if not filter_by.startswith("low_"):
        mask &= ~rp.keep
    return Found(mask, pb, rp, g, thresholds, ties)


def _prune(pb: Problem, filter_by, cj, g, rp, frac_noise, num_to_remove_per_class, min_examples,
           ties) -> np.ndarray:
    label_counts = pb.label_counts()
    pcm = prune_counts(cj.T, min_examples, ties, frac_noise=frac_noise)
    if num_to_remove_per_class is not None:
        pcm = latent.prune_counts_for_num_to_remove(pcm, label_counts, num_to_remove_per_class)
    for kk in np.flatnonzero((label_counts <= min_examples) & (label_counts > 0)):
        warnings.warn(
            f"May not flag all label issues in class: {kk}, it has too few examples "
            "(see argument: `min_examples_per_class`)",
            stacklevel=5,
        )
    if filter_by in ("prune_by_class", "both"):
        mask = prune_by_class(pb, g, pcm, label_counts, min_examples, ties)
    if filter_by in ("prune_by_noise_rate", "both"):
        ub = None if rp.max_other is None else margin_upper_bound(pb, g, rp.max_other)
        by_rate = prune_by_noise_rate(pb, pcm, label_counts, min_examples, ties, ub)
        mask = by_rate if filter_by == "prune_by_noise_rate" else (mask & by_rate)
    return mask


def find_label_issues(labels, pred_probs, *, return_indices_ranked_by=None, rank_by_kwargs=None,
                      filter_by="prune_by_noise_rate", multi_label=False, frac_noise=1.0,
                      num_to_remove_per_class=None, min_examples_per_class=1, confident_joint=None,
                      n_jobs=None, verbose=False, device=None, ties=None):
    """Body of :func:`labelsift.filter.find_label_issues`."""
    if multi_label:  # the multi-label room, as cleanlab's _find_label_issues_multilabel
        from .._multilabel.find import find_label_issues as _ml_find
        if device not in (None, "cpu"):
            raise ValueError(f"device={device!r}: only the CPU is available in this build")
        return _ml_find(labels, pred_probs, return_indices_ranked_by=return_indices_ranked_by,
                        rank_by_kwargs=rank_by_kwargs, filter_by=filter_by, frac_noise=frac_noise,
                        num_to_remove_per_class=num_to_remove_per_class, min_examples_per_class=min_examples_per_class,
                        confident_joint=confident_joint, n_jobs=n_jobs, verbose=verbose, ties=ties)
    ties = resolve_ties(ties)
    frac_noise, min_examples_per_class = _check_args(
        filter_by, frac_noise, num_to_remove_per_class, min_examples_per_class, return_indices_ranked_by,
        confident_joint, multi_label, device)
    verbose = params.flag(verbose, "verbose")
    rank_by_kwargs = score_kwargs(rank_by_kwargs, "rank_by_kwargs")
    found = find(labels, pred_probs, filter_by=filter_by, frac_noise=frac_noise,
                 num_to_remove_per_class=num_to_remove_per_class, min_examples_per_class=min_examples_per_class,
                 confident_joint=confident_joint, n_jobs=n_jobs, ties=ties,
                 want_margin=return_indices_ranked_by == "normalized_margin" and not rank_by_kwargs)
    if verbose:
        print(f"Number of label issues found: {int(found.mask.sum())}")
    if return_indices_ranked_by is None:
        return _to_caller(found, found.mask)
    idx, _ = ranked_issues(found, return_indices_ranked_by, rank_by_kwargs)
    return _to_caller(found, idx)


def _to_caller(found: Found, result):
    """A result of a call on a CUDA pred_probs in the caller's type (torch in,
    torch out; CuPy in, CuPy out; NumPy for other producers)."""
    if not found.pb.on_device:
        return result
    from .._common.cuda_arrays import to_caller
    return to_caller(found.pb.probs.arr, result)


def ranked_issues(found: Found, rank_by: str, rank_by_kwargs=None):
    """(flagged rows ranked by ascending score, their scores in that order)."""
    idx = np.flatnonzero(found.mask)
    scores = quality_scores(found.pb, rank_by, rows=idx, g=found.g, max_other=found.rp.max_other,
                            thresholds=found.thresholds, **dict(rank_by_kwargs or {}))
    order = argsort(scores, found.ties)
    return idx[order], scores[order]


def issue_table(labels, pred_probs, *, filter_by="prune_by_noise_rate", rank_by="self_confidence", n_jobs=None,
                ties=None):
    """For the command line: (ranked flagged rows, their scores, their argmax
    class, the int64 labels, N, K) from one find_label_issues run."""
    _check_args(filter_by, 1.0, None, 1, rank_by, None, False, None)
    found = find(labels, pred_probs, filter_by=filter_by, want_argmax=True,
                 want_margin=rank_by == "normalized_margin", n_jobs=n_jobs, ties=resolve_ties(ties))
    idx, scores = ranked_issues(found, rank_by)
    return idx, scores, found.rp.argmax[idx].astype(np.int64), found.pb.labels, found.pb.n, found.pb.k


__all__ = ["find_label_issues", "issue_table"]
