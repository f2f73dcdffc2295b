"""Finding label issues: ``find_label_issues`` with cleanlab's seven ``filter_by`` methods.

Same arguments, defaults and results as ``cleanlab.filter.find_label_issues``
(cleanlab 2.9.0), with two documented differences:

* ties between exactly equal values (margins, probabilities, scores) are
  broken by the lower row index, on any thread count, block size or shard
  layout (cleanlab leaves them to NumPy's unstable sort);
* ``num_to_remove_per_class`` does what cleanlab documents: about r_k rows
  flagged in given class k (exactly r_k for ``prune_by_class``, before the
  final unflagging step), see ``labelsift._latent.prune_counts_for_num_to_remove``.

The N x K input is never copied: a default call reads P[i, y_i] once, sweeps
all values once (validation, confident guesses, the unflagging test), and
sweeps once more reading only the columns a row's class has to prune.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import _cl, _latent

from ._names import FILTER_BY, PRUNE_METHODS as _PRUNE


def find_label_issues(labels, pred_probs, *, return_indices_ranked_by=None, rank_by_kwargs=None,
                      filter_by="prune_by_noise_rate", multi_label=False, frac_noise=1.0,
                      num_to_remove_per_class=None, min_examples_per_class=1, confident_joint=None,
                      n_jobs=None, verbose=False, device=None):
    """Boolean mask of likely label issues, or their indices ranked by label quality.

    ``filter_by``: one of ``prune_by_noise_rate`` (default), ``prune_by_class``,
    ``both``, ``confident_learning``, ``predicted_neq_given``,
    ``low_normalized_margin``, ``low_self_confidence``. ``n_jobs`` sets the
    number of CPU threads (results never depend on it). ``device`` may be
    None or "cpu" in this build.
    """
    if multi_label:
        raise NotImplementedError("multi_label=True is not supported yet in labelsift")
    if filter_by not in FILTER_BY:
        raise ValueError(f"filter_by={filter_by!r} is not one of {', '.join(FILTER_BY)}")
    if device not in (None, "cpu"):
        raise ValueError(f"device={device!r}: only the CPU is available in this build")
    if not (0.0 <= float(frac_noise) <= 1.0):
        raise ValueError(f"frac_noise must be in [0, 1], got {frac_noise}")
    if int(min_examples_per_class) != min_examples_per_class or min_examples_per_class < 0:
        raise ValueError(f"min_examples_per_class must be a non-negative integer, got {min_examples_per_class}")
    rank_by_kwargs = dict(rank_by_kwargs or {})
    if filter_by not in _PRUNE and (frac_noise != 1.0 or num_to_remove_per_class is not None):
        warnings.warn(
            "frac_noise and num_to_remove_per_class only apply to filter_by 'prune_by_noise_rate', "
            "'prune_by_class' and 'both'.",
            stacklevel=2,
        )
    if num_to_remove_per_class is not None and filter_by not in _PRUNE:
        raise ValueError(f"num_to_remove_per_class is not supported with filter_by={filter_by!r}")
    if return_indices_ranked_by is not None and return_indices_ranked_by not in _cl.SCORE_METHODS:
        raise ValueError(
            f"return_indices_ranked_by={return_indices_ranked_by!r} is not one of {', '.join(_cl.SCORE_METHODS)}"
        )
    if filter_by == "confident_learning" and confident_joint is not None:
        warnings.warn(
            "The supplied `confident_joint` is ignored when filter_by='confident_learning'.", stacklevel=2
        )

    pb = _cl.prepare(labels, pred_probs, n_jobs)
    k = pb.k
    label_counts = pb.label_counts()
    # max over the other classes: for the margin score, and for the prune
    # sweep's bound on every margin of a row (it lets it skip rows unread)
    want_margin = (
        filter_by in ("low_normalized_margin", "prune_by_noise_rate", "both")
        or (return_indices_ranked_by == "normalized_margin" and not rank_by_kwargs)
    )
    g = thresholds = None
    if confident_joint is None or filter_by == "confident_learning" or filter_by.startswith("low_"):
        g, thresholds, rp, cj_raw, off = _cl.confident_pass(
            pb, argmax=filter_by == "predicted_neq_given", keep=True, max_other=want_margin
        )
    else:
        rp = _cl.row_pass(pb, argmax=filter_by == "predicted_neq_given", keep=True, max_other=want_margin)
    if confident_joint is None or filter_by == "confident_learning":
        cj = _latent.calibrate_confident_joint(cj_raw, label_counts)
    else:
        cj = _cl.check_square(confident_joint, k, "confident_joint")

    if filter_by in _PRUNE:
        pcm = _latent.keep_at_least_n_per_class(cj.T, int(min_examples_per_class), frac_noise=frac_noise)
        if num_to_remove_per_class is not None:
            pcm = _latent.prune_counts_for_num_to_remove(pcm, label_counts, num_to_remove_per_class)
        for kk in np.flatnonzero((label_counts <= min_examples_per_class) & (label_counts > 0)):
            warnings.warn(
                f"May not flag all label issues in class: {kk}, it has too few examples "
                "(see argument: `min_examples_per_class`)",
                stacklevel=2,
            )
        if g is None:
            g = _cl.given_probs(pb)
        if filter_by in ("prune_by_class", "both"):
            mask = _cl.prune_by_class(pb, g, pcm, label_counts, min_examples_per_class)
        if filter_by in ("prune_by_noise_rate", "both"):
            ub = _cl.margin_upper_bound(pb, g, rp.max_other)
            by_rate = _cl.prune_by_noise_rate(pb, pcm, label_counts, min_examples_per_class, ub)
            mask = by_rate if filter_by == "prune_by_noise_rate" else (mask & by_rate)
    elif filter_by == "confident_learning":
        mask = np.zeros(pb.n, bool)
        mask[off] = True
    elif filter_by == "predicted_neq_given":
        mask = rp.argmax != pb.labels
    else:  # low_self_confidence / low_normalized_margin
        num_errors = int(np.count_nonzero(~rp.keep[off]))
        method = filter_by[4:]
        scores = _cl.quality_scores(pb, method, g=g, max_other=rp.max_other)
        mask = np.zeros(pb.n, bool)
        mask[np.argsort(scores, kind="stable")[:num_errors]] = True

    if not filter_by.startswith("low_"):
        mask &= ~rp.keep
    if verbose:
        print(f"Number of label issues found: {int(mask.sum())}")
    if return_indices_ranked_by is None:
        return mask
    idx = np.flatnonzero(mask)
    scores = _cl.quality_scores(
        pb,
        return_indices_ranked_by,
        rows=idx,
        g=g,
        max_other=rp.max_other,
        thresholds=thresholds,
        **rank_by_kwargs,
    )
    return _cl.order_by_scores(idx, scores)
