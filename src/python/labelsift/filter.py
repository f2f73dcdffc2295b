"""Finding label issues: ``find_label_issues`` with cleanlab's seven ``filter_by`` methods.

Same arguments, defaults and results as ``cleanlab.filter.find_label_issues``
(cleanlab 2.9.0). Ties: ``ties="cleanlab"`` (the default) orders exactly
equal values (rounding residuals, margins, probabilities, scores) as
cleanlab's own NumPy calls do; ``ties="lower_index"`` breaks them by the
lower row index, on any thread count, block size, shard layout or machine.
One documented difference:

* ``num_to_remove_per_class`` does what cleanlab documents: about r_k rows
  flagged in given class k (exactly r_k for ``prune_by_class``, before the
  final unflagging step), see ``labelsift._cl.latent.prune_counts_for_num_to_remove``.

The N x K input is never copied: a default call reads P[i, y_i] once, sweeps
all values once (validation, confident guesses, the unflagging test), and
sweeps once more reading only the columns a row's class has to prune. The
plan of passes lives in :mod:`labelsift._cl` (``find.py``).
"""
from __future__ import annotations

from ._cl import find as _find
from ._common.names import FILTER_BY  # noqa: F401  (cleanlab's vocabulary, re-exported)


def find_label_issues(labels, pred_probs, *, return_indices_ranked_by=None, rank_by_kwargs=None,
                      filter_by="prune_by_noise_rate", multi_label=False, frac_noise=1.0,
                      num_to_remove_per_class=None, min_examples_per_class=1, confident_joint=None,
                      n_jobs=None, verbose=False, device=None, ties=None):
    """Boolean mask of likely label issues, or their indices ranked by label quality.

    ``filter_by``: one of ``prune_by_noise_rate`` (default), ``prune_by_class``,
    ``both``, ``confident_learning``, ``predicted_neq_given``,
    ``low_normalized_margin``, ``low_self_confidence``. ``n_jobs`` sets the
    number of CPU threads (results never depend on it). ``device`` may be
    None or "cpu" in this build. ``ties``: ``"cleanlab"`` (default, via
    ``labelsift.options``) orders exactly equal values as cleanlab does on
    this machine, so results are ``np.array_equal`` to cleanlab's;
    ``"lower_index"`` breaks them by the lower index, the same on every
    machine.
    """
    return _find.find_label_issues(
        labels, pred_probs, return_indices_ranked_by=return_indices_ranked_by, rank_by_kwargs=rank_by_kwargs,
        filter_by=filter_by, multi_label=multi_label, frac_noise=frac_noise,
        num_to_remove_per_class=num_to_remove_per_class, min_examples_per_class=min_examples_per_class,
        confident_joint=confident_joint, n_jobs=n_jobs, verbose=verbose, device=device, ties=ties)
