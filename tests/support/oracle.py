"""cleanlab 2.9.0 as the oracle of labelsift's confident learning.

Two of its choices are arbitrary and labelsift pins them (documented behaviour):

* ``round_preserving_sum`` (K x K rounding): among exactly equal residuals,
  the entry that gets the +-1 is whatever NumPy's unstable argsort puts
  first.  :func:`pinned_cleanlab_rounding` runs cleanlab with that one
  function replaced by :func:`round_preserving_sum_lower_index`, a
  re-statement with ties going to the lower index (checked against the
  original in the tests).  Everything else in cleanlab runs unchanged.
  This is what ``ties="lower_index"`` reproduces; the suite pins that rule
  (tests/conftest.py) except where a test checks the default ``ties="cleanlab"``.
* Selections of the c smallest/largest values (the prune methods, the
  ``low_*`` methods, rankings): cleanlab's choice among equal keys is
  arbitrary.  Masks are compared with
  :func:`support.compare.assert_masks_equal_up_to_ties`; or cleanlab runs
  with every sort made stable (:func:`cleanlab_with_stable_sorts`), which
  ``ties="lower_index"`` must equal exactly.
"""
from __future__ import annotations

import contextlib
import pickle
import warnings

import numpy as np

import cleanlab.count
import cleanlab.filter
import cleanlab.internal.util
import cleanlab.rank

from support.cases import case_data


# --------------------------------------------------------------------------
# cleanlab with its K x K rounding ties pinned to the lower index
# --------------------------------------------------------------------------
def round_preserving_sum_lower_index(values):
    """cleanlab's ``round_preserving_sum`` with ties going to the lower index.

    Same steps as the original (round half to even; while the integer total
    misses the rounded total by d, move min(|d|, n) entries by one, those
    with the largest residual for +1 or the smallest for -1), but the order
    among equal residuals is fixed: lower index first.
    """
    floats = np.asarray(values, dtype=float)
    ints = floats.round()
    target = np.sum(floats).round()
    total = np.sum(ints).round()
    while abs(total - target) > 1e-6:
        gap = np.round(target - total)
        step = -1 if gap < 0 else 1
        residual = floats - ints
        # primary key: residual, largest first for +1 / smallest first for -1;
        # secondary key: the index (lexsort sorts by the last key first)
        order = np.lexsort((np.arange(len(floats)), -step * residual))
        for i in order[:min(int(abs(gap)), len(floats))]:
            ints[i] += step
        total = np.sum(ints).round()
    return ints.astype(int)


ORIGINAL_ROUND_PRESERVING_SUM = cleanlab.internal.util.round_preserving_sum


@contextlib.contextmanager
def pinned_cleanlab_rounding():
    """Run cleanlab with :func:`round_preserving_sum_lower_index` in place of its
    ``round_preserving_sum`` (looked up at call time by
    ``round_preserving_row_totals``, which count.py and filter.py use)."""
    util = cleanlab.internal.util
    saved = util.round_preserving_sum
    util.round_preserving_sum = round_preserving_sum_lower_index
    try:
        yield
    finally:
        util.round_preserving_sum = saved


def cleanlab_call(module, func, *args, **kwargs):
    """Call ``cleanlab.<module>.<func>`` with pinned rounding, warnings off.

    Returns ``("raised", exception)`` instead of raising.
    """
    fn = getattr(getattr(cleanlab, module), func)
    with pinned_cleanlab_rounding(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the oracle may raise; the test decides
            return ("raised", exc)


def raised(result):
    return isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], str) \
        and result[0] == "raised"


_CACHE = {}


def memo(key, compute):
    """``compute()`` once per ``key`` (hashable) for the whole session: the
    oracle's results and the comparison structures serve every
    implementation under test."""
    if key not in _CACHE:
        _CACHE[key] = compute()
    return _CACHE[key]


def cached_cleanlab(case, module, func, *args, **kwargs):
    """:func:`cleanlab_call` on ``case_data(case)`` (prepended to args), memoised
    so that the same oracle result serves every implementation under test."""
    key = (case, module, func, pickle.dumps((args, sorted(kwargs.items()))))
    return memo(key, lambda: cleanlab_call(module, func, *case_data(case), *args, **kwargs))


def cleanlab_prune_counts(labels, probs, *, min_examples_per_class=1, frac_noise=1.0,
                          confident_joint=None):
    """cleanlab's prune count matrix ``[true, given]`` as its find_label_issues builds it."""
    if confident_joint is None:
        confident_joint = cleanlab_call("count", "compute_confident_joint", labels, probs)
    with pinned_cleanlab_rounding():
        return cleanlab.filter._keep_at_least_n_per_class(
            np.asarray(confident_joint).T, min_examples_per_class, frac_noise=frac_noise)


def cleanlab_given_label_wins(labels, probs):
    """cleanlab's final unflagging mask (given label wins the argmax after +1e-6)."""
    return cleanlab.count._reduce_issues(pred_probs=probs, labels=np.asarray(labels))


class _StableNumpy:
    """numpy, except that argsort defaults to a stable sort."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def argsort(a, axis=-1, kind=None, order=None):
        return np.argsort(a, axis=axis, kind="stable" if kind is None else kind, order=order)


@contextlib.contextmanager
def cleanlab_with_stable_sorts():
    """cleanlab with every argsort of cleanlab.filter and cleanlab.rank stable
    (lower index first among equal keys) and the K x K rounding pinned to the
    lower index: the ``ties="lower_index"`` rule stated on cleanlab's code."""
    saved = {mod: mod.np for mod in (cleanlab.filter, cleanlab.rank)}
    try:
        for mod in saved:
            mod.np = _StableNumpy()
        with pinned_cleanlab_rounding():
            yield
    finally:
        for mod, np_module in saved.items():
            mod.np = np_module
