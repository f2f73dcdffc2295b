"""Multi-label label issues, as ``cleanlab.multilabel_classification.filter``.

Per class c, confident learning on the binary problem (label: c among the
example's labels; probabilities ``[1 - P[:, c], P[:, c]]``); an example is an
issue when any class flags it. All K classes are handled in the same sweeps
over P (``labelsift._multilabel``). Quirks of cleanlab 2.9.0 reproduced on
purpose:

* ``filter_by="low_self_confidence"`` and ``"low_normalized_margin"`` give the
  same mask: the number of ``confident_learning`` issues, taken from the lowest
  *default* scores (self_confidence, EMA alpha = 0.8);
* with those two and ``return_indices_ranked_by``, the flagged rows' scores
  (computed on those rows alone, in row order) index the flagged rows in score
  order -- cleanlab's ordering, although it pairs scores and rows oddly;
* a K x K ``confident_joint`` is ignored with a warning.

Differences: a class with no positive (or no negative) example is accepted
(cleanlab raises "Labels must contain at least 2 classes"); such a class
flags nothing with the prune and confident-learning methods.
``num_to_remove_per_class`` does what cleanlab documents, as in
:func:`labelsift.filter.find_label_issues`. ``low_memory`` is accepted; the
result is the in-memory one (cleanlab's batched mode approximates).
"""
from __future__ import annotations

from .._multilabel import find as _find


def find_label_issues(labels, pred_probs, return_indices_ranked_by=None, rank_by_kwargs={},  # noqa: B006
                      filter_by="prune_by_noise_rate", frac_noise=1.0, num_to_remove_per_class=None,
                      min_examples_per_class=1, confident_joint=None, n_jobs=None, verbose=False,
                      low_memory=False, *, ties=None):
    """Boolean mask (N,) of examples with a label issue in some class, or
    their indices ranked by ascending multi-label quality score
    (``return_indices_ranked_by``: the per-class score, EMA-aggregated with
    alpha = 0.8; ``rank_by_kwargs`` e.g. ``{"adjust_pred_probs": True}``).
    ``ties``: see ``labelsift.options``."""
    return _find.find_label_issues(
        labels, pred_probs, return_indices_ranked_by=return_indices_ranked_by, rank_by_kwargs=rank_by_kwargs,
        filter_by=filter_by, frac_noise=frac_noise, num_to_remove_per_class=num_to_remove_per_class,
        min_examples_per_class=min_examples_per_class, confident_joint=confident_joint, n_jobs=n_jobs,
        verbose=verbose, ties=ties)
