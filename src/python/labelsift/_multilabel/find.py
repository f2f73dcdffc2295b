"""``find_label_issues`` with ``multi_label=True`` (cleanlab's
``_find_label_issues_multilabel``): per class the binary problem's issues,
an example flagged when any class flags it.

A default call sweeps P three times (thresholds; joints and prune-key
histograms; selections), each sweep handling all K classes. ``filter_by="both"``
runs the per-class binary problems through :mod:`labelsift._cl` instead.
"""
from __future__ import annotations

import warnings
import numpy as np

from .._cl import latent
from .._cl.find import find_label_issues as _binary_find
from .._cl.passes import prune_counts
from .._cl.rules import active_pairs, eligible
from .._cl.scores import argsort
from .._common import params
from .._common.checks import check_choice
from .._common.names import FILTER_BY, PRUNE_METHODS, SCORE_METHODS
from .._common.options import resolve_ties
from .counts import confident_joints
from .passes import KEY_BY_CLASS, KEY_NOISE_RATE, joint_sweep, prepare, select, thresholds_and_cuts
from .scores import row_scores


def _check(filter_by, frac_noise, min_examples_per_class, return_indices_ranked_by, rank_by_kwargs):
    check_choice(filter_by, FILTER_BY, "filter_by")
    frac_noise = params.real(frac_noise, "frac_noise", lo=0.0, hi=1.0)
    m = params.integer(min_examples_per_class, "min_examples_per_class", lo=0)
    if return_indices_ranked_by is not None:
        check_choice(return_indices_ranked_by, SCORE_METHODS, "return_indices_ranked_by")
    kw = dict(rank_by_kwargs or {})
    if set(kw) - {"adjust_pred_probs"}:
        raise TypeError(f"rank_by_kwargs: unexpected {sorted(set(kw) - {'adjust_pred_probs'})}")
    return frac_noise, m, kw


def _user_joint(confident_joint, k):
    if confident_joint is None:
        return None
    cj = np.asarray(confident_joint)
    if cj.shape == (k, k):
        warnings.warn("The new recommended format for `confident_joint` in multi_label settings is (num_classes,2,2) "
                      "as output by compute_confident_joint(...,multi_label=True). Your K x K confident_joint in the "
                      "old format is being ignored.", stacklevel=4)
        return None
    if cj.shape != (k, 2, 2):
        raise ValueError(f"confident_joint should be of shape ({k}, 2, 2), got {cj.shape}")
    return cj.astype(np.int64)


def per_class_prune(pb, filter_by, cj, frac_noise, num_to_remove_per_class, m, ties):
    """(mask, flagged counts (K, 2)) of the prune methods from calibrated joints."""
    counts = pb.counts()
    caps = np.zeros((pb.k, 2), np.int64)
    for c in range(pb.k):
        pcm = prune_counts(cj[c].T, m, ties, frac_noise=frac_noise)
        if num_to_remove_per_class is not None:
            pcm = latent.prune_counts_for_num_to_remove(pcm, counts[c], np.array([num_to_remove_per_class[c], 0]))
        if filter_by == "prune_by_noise_rate":
            by_given = active_pairs(pcm, counts[c], m)[0]
            caps[c] = [by_given[0, 1], by_given[1, 0]]
        else:
            num = (counts[c] - np.diagonal(pcm)).astype(np.int64)
            num[~eligible(counts[c], m) | (num < 1)] = 0
            caps[c] = num
    key = KEY_NOISE_RATE if filter_by == "prune_by_noise_rate" else KEY_BY_CLASS
    return caps, key


def find(labels, pred_probs, *, filter_by="prune_by_noise_rate", frac_noise=1.0, num_to_remove_per_class=None,
         min_examples_per_class=1, confident_joint=None, n_jobs=None, ties="cleanlab"):
    """(Problem, mask, per-class flagged counts (K, 2) or None, thresholds or None)."""
    pb = prepare(labels, pred_probs, n_jobs)
    user_cj = _user_joint(confident_joint, pb.k)
    if num_to_remove_per_class is not None:
        num_to_remove_per_class = params.count_vector(num_to_remove_per_class, pb.k, "num_to_remove_per_class")
    if filter_by in ("prune_by_noise_rate", "prune_by_class"):
        key = KEY_NOISE_RATE if filter_by == "prune_by_noise_rate" else KEY_BY_CLASS
        if user_cj is None:
            cj, _, _, hist = confident_joints(pb, None, True, ties, key_method=key)
        else:
            cj, hist = user_cj, joint_sweep(pb, None, key_method=key)[3]
        caps, key = per_class_prune(pb, filter_by, cj, frac_noise, num_to_remove_per_class,
                                    int(min_examples_per_class), ties)
        mask, flagged = select(pb, key, caps, hist, ties)
        return pb, mask, flagged
    if filter_by == "both":
        flagged = np.zeros((pb.k, 2), np.int64)
        mask = np.zeros(pb.n, bool)
        for c in range(pb.k):
            p = pb.column(c)
            yc = pb.y.column(c)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mc = _binary_find(yc, np.stack([1 - p, p], axis=1), filter_by="both", frac_noise=frac_noise,
                                  num_to_remove_per_class=None if num_to_remove_per_class is None
                                  else [int(num_to_remove_per_class[c]), 0],
                                  min_examples_per_class=min_examples_per_class,
                                  confident_joint=None if user_cj is None else user_cj[c], n_jobs=n_jobs, ties=ties)
            flagged[c] = [np.count_nonzero(mc & (yc == 0)), np.count_nonzero(mc & (yc == 1))]
            mask |= mc
        return pb, mask, flagged
    if filter_by == "confident_learning":
        return pb, confident_joints(pb, None, False, ties, cl=True)[1], None
    if filter_by == "predicted_neq_given":
        return pb, joint_sweep(pb, None, neq=True)[2], None
    # low_self_confidence / low_normalized_margin: cleanlab counts the
    # confident_learning issues and takes that many lowest *default* scores
    num_errors = int(confident_joints(pb, None, False, ties, cl=True)[1].sum())
    order = argsort(row_scores(pb, None), ties)[:num_errors]
    mask = np.zeros(pb.n, bool)
    mask[order] = True
    return pb, mask, order


def find_label_issues(labels, pred_probs, *, return_indices_ranked_by=None, rank_by_kwargs=None,
                      filter_by="prune_by_noise_rate", frac_noise=1.0, num_to_remove_per_class=None,
                      min_examples_per_class=1, confident_joint=None, n_jobs=None, verbose=False, ties=None):
    ties = resolve_ties(ties)
    frac_noise, m, rank_by_kwargs = _check(filter_by, frac_noise, min_examples_per_class, return_indices_ranked_by,
                                           rank_by_kwargs)
    if num_to_remove_per_class is not None and filter_by not in PRUNE_METHODS:
        raise ValueError(f"num_to_remove_per_class is not supported with filter_by={filter_by!r}")
    pb, mask, extra = find(labels, pred_probs, filter_by=filter_by, frac_noise=frac_noise,
                           num_to_remove_per_class=num_to_remove_per_class, min_examples_per_class=m,
                           confident_joint=confident_joint, n_jobs=n_jobs, ties=ties)
    if params.flag(verbose, "verbose"):
        print(f"Number of label issues found: {int(mask.sum())}")
    if return_indices_ranked_by is None:
        return mask
    adjust = params.flag(rank_by_kwargs.get("adjust_pred_probs", False), "adjust_pred_probs")
    if filter_by.startswith("low_"):
        # cleanlab's quirk, reproduced: the flagged rows' scores, computed on
        # those rows alone in ascending row order, index the flagged rows in
        # score order.
        rows = np.flatnonzero(mask)
        sub = _subproblem(pb, rows)
        t = thresholds_and_cuts(sub)[1] if adjust else None
        s = row_scores(sub, None, return_indices_ranked_by, t)
        return extra[argsort(s, ties)]
    idx = np.flatnonzero(mask)
    t = thresholds_and_cuts(pb)[1] if adjust else None
    s = row_scores(pb, idx, return_indices_ranked_by, t)
    return idx[argsort(s, ties)]


def _subproblem(pb, rows):
    from .labels import MultiLabels
    from .passes import Problem
    p = np.empty((len(rows), pb.k), pb.dtype)
    for pos, block, local in pb.probs.rows(rows):
        p[pos] = block[local]
    lens = pb.y.indptr[rows + 1] - pb.y.indptr[rows]
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lens, out=indptr[1:])
    idx = np.concatenate([pb.y.indices[a:b] for a, b in zip(pb.y.indptr[rows], pb.y.indptr[rows + 1])]) \
        if len(rows) else np.zeros(0, np.int32)
    from .._common.arrays import as_probs
    return Problem(MultiLabels(indptr, idx.astype(np.int32), len(rows), pb.k), as_probs(p), pb.nthreads, True)


