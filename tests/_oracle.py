"""Test helpers: seeded data, cleanlab as the oracle, and tie-aware comparison.

cleanlab 2.9.0 is the oracle of labelsift's confident learning.  Two of its
choices are arbitrary and labelsift pins them (documented behaviour):

* ``round_preserving_sum`` (K x K rounding): among exactly equal residuals,
  the entry that gets the +-1 is whatever NumPy's unstable argsort puts
  first.  :func:`pinned_cleanlab_rounding` runs cleanlab with that one
  function replaced by :func:`round_preserving_sum_lower_index`, a
  re-statement with ties going to the lower index (checked against the
  original in the tests).  Everything else in cleanlab runs unchanged.
* Selections of the c smallest/largest values (the prune methods, the
  ``low_*`` methods, rankings): cleanlab's choice among equal keys is
  arbitrary.  Masks are compared with :func:`assert_masks_equal_up_to_ties`,
  which accepts a difference only in a row whose key equals the boundary
  value of one of the selections.
"""
from __future__ import annotations

import contextlib
import functools
import pickle
import warnings

import numpy as np

import cleanlab.count
import cleanlab.filter
import cleanlab.internal.util
import cleanlab.rank

from conftest import load_dump

from labelsift._common.names import FILTER_BY, PRUNE_METHODS, SCORE_METHODS


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def make_data(seed, n, k, *, dtype=np.float64, label_dtype=np.int64, absent=0, singletons=0,
              tiny=0, noise=0.2):
    """Noisy but realistic ``(labels, pred_probs)``.

    Given labels have Dirichlet class sizes, with ``absent`` classes that
    never occur, ``singletons`` classes with one example and ``tiny``
    classes with 2-4.  About ``noise`` of the examples have another true
    class (mostly a "neighbouring" one); the probabilities are the softmax of
    random logits with the true class boosted (and the given one a little),
    computed in float64 and cast to ``dtype`` without renormalising.
    """
    rng = np.random.default_rng(seed)
    classes = rng.permutation(k)
    absent_c = classes[:absent]
    single_c = classes[absent:absent + singletons]
    tiny_c = classes[absent + singletons:absent + singletons + tiny]
    rest = classes[absent + singletons + tiny:]
    counts = np.zeros(k, dtype=np.int64)
    counts[single_c] = 1
    counts[tiny_c] = rng.integers(2, 5, len(tiny_c))
    counts[rest] = rng.multinomial(n - counts.sum(), rng.dirichlet(np.full(len(rest), 2.0)))
    assert counts[absent_c].sum() == 0
    given = rng.permutation(np.repeat(np.arange(k), counts))
    true = given.copy()
    flip = rng.random(n) < noise
    neighbour = (given + 1 + rng.integers(0, 2, n)) % k
    other = np.where(rng.random(n) < 0.6, neighbour, rng.integers(0, k, n))
    true[flip] = other[flip]
    logits = rng.normal(0.0, 1.5, (n, k))
    logits[np.arange(n), true] += rng.gamma(3.0, 1.0, n)
    logits[np.arange(n), given] += rng.gamma(1.0, 0.7, n)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return given.astype(label_dtype), probs.astype(dtype)


# name -> (maker, tie_free): tie_free cases must have no tie at any
# selection boundary, so their masks are compared exactly.
def _real(name, dtype):
    def load():
        labels, probs = load_dump(name)
        return labels, probs.astype(dtype)
    return load


def _gen(*args, **kwargs):
    return lambda: make_data(*args, **kwargs)


CASES = {
    "cifar10-f64": (_real("cifar10", np.float64), True),
    "cifar10-f32": (_real("cifar10", np.float32), True),
    "cifar10-f16": (_real("cifar10", np.float16), False),
    "mnist-f64": (_real("mnist", np.float64), True),
    "mnist-f32": (_real("mnist", np.float32), True),
    "mnist-f16": (_real("mnist", np.float16), False),
    "k2-f64-i64": (_gen(1, 500, 2), True),
    "k3-f32-u8-tiny": (_gen(2, 600, 3, dtype=np.float32, label_dtype=np.uint8, tiny=1), True),
    "k3-f16-u8-small": (_gen(3, 60, 3, dtype=np.float16, label_dtype=np.uint8), False),
    "k10-f64-u16-absent-single-tiny": (
        _gen(4, 3000, 10, label_dtype=np.uint16, absent=1, singletons=1, tiny=1), True),
    "k10-f32-i32-absent2": (_gen(5, 2000, 10, dtype=np.float32, label_dtype=np.int32, absent=2),
                            True),
    "k10-f16-i32-absent-single-tiny": (
        _gen(6, 3000, 10, dtype=np.float16, label_dtype=np.int32, absent=1, singletons=1,
             tiny=1), False),
    "k100-f32-u16-absent-single-tiny": (
        _gen(7, 4000, 100, dtype=np.float32, label_dtype=np.uint16, absent=3, singletons=3,
             tiny=3), True),
    "k100-f16-i64-absent-single-tiny": (
        _gen(8, 3000, 100, dtype=np.float16, absent=2, singletons=2, tiny=2), False),
    "k1000-f64-u16": (_gen(9, 2500, 1000, label_dtype=np.uint16), True),
    "k1000-f16-i32": (_gen(10, 1500, 1000, dtype=np.float16, label_dtype=np.int32), False),
}
REAL_CASES = [c for c in CASES if c.startswith(("cifar10", "mnist"))]


@functools.lru_cache(maxsize=None)
def case_data(name):
    labels, probs = CASES[name][0]()
    labels.setflags(write=False)
    probs.setflags(write=False)
    return labels, probs


def tie_free(name):
    return CASES[name][1]


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


# --------------------------------------------------------------------------
# Tie-aware comparison of selections
# --------------------------------------------------------------------------
def _selection(keys, count, *, largest):
    """``(forced, possible)`` masks over ``keys`` for choosing ``count`` items.

    ``forced``: items strictly beyond the boundary (every valid tie order
    chooses them); ``possible``: forced plus items equal to the boundary
    value.  NaN keys sort last, as in NumPy.
    """
    n = len(keys)
    if count <= 0:
        return np.zeros(n, bool), np.zeros(n, bool)
    if count >= n:
        return np.ones(n, bool), np.ones(n, bool)
    sort_keys = -keys if largest else keys  # negation is exact
    boundary = np.sort(sort_keys)[count - 1]
    if np.isnan(boundary):
        better, tied = ~np.isnan(sort_keys), np.isnan(sort_keys)
    else:
        better, tied = sort_keys < boundary, sort_keys == boundary
    if better.sum() + tied.sum() == count:  # every tied item is needed: no choice
        return better | tied, better | tied
    return better, better | tied


def selection_structure(labels, probs, filter_by, *, prune_counts=None,
                        min_examples_per_class=1, scores=None, num_issues=None):
    """``(forced, possible)`` over all rows for one ``filter_by``.

    Every implementation that breaks ties in *some* order (cleanlab's
    arbitrary one, labelsift's lower-index one) returns a mask ``m`` with
    ``forced <= m <= possible``.  ``prune_counts`` (``[true, given]``) is
    needed for the prune methods, ``scores`` and ``num_issues`` for the
    ``low_*`` methods.
    """
    labels = np.asarray(labels).astype(np.int64)
    n, num_classes = probs.shape
    if filter_by in ("confident_learning", "predicted_neq_given"):
        raise ValueError("no selection: compare exactly")
    if filter_by in ("low_self_confidence", "low_normalized_margin"):
        return _selection(np.asarray(scores), num_issues, largest=False)

    def per_class(select):
        forced = np.zeros(n, bool)
        possible = np.zeros(n, bool)
        for k in range(num_classes):
            rows = np.flatnonzero(labels == k)
            if len(rows) <= min_examples_per_class or len(rows) == 1:
                continue
            for f, p in select(k, rows):
                forced[rows[f]] = True
                possible[rows[p]] = True
        return forced, possible

    def by_class(k, rows):
        yield _selection(probs[rows, k], len(rows) - prune_counts[k, k], largest=False)

    def by_noise_rate(k, rows):
        for j in np.flatnonzero(prune_counts[:, k] > 0):
            if j != k:
                margin = probs[rows, j] - probs[rows, k]
                yield _selection(margin, prune_counts[j, k], largest=True)

    wins = cleanlab_given_label_wins(labels, probs)
    if filter_by == "prune_by_class":
        forced, possible = per_class(by_class)
    elif filter_by == "prune_by_noise_rate":
        forced, possible = per_class(by_noise_rate)
    elif filter_by == "both":
        f1, p1 = per_class(by_class)
        f2, p2 = per_class(by_noise_rate)
        forced, possible = f1 & f2, p1 & p2
    else:
        raise ValueError(filter_by)
    return forced & ~wins, possible & ~wins


def assert_masks_equal_up_to_ties(ours, theirs, structure, *, exact=False):
    """``ours`` equals ``theirs`` except, possibly, in rows at a tie boundary.

    ``structure = (forced, possible)`` from :func:`selection_structure`.  Both
    masks must satisfy ``forced <= mask <= possible`` (so any row where they
    differ has a key equal to a selection boundary).  With ``exact`` the
    structure must have no ambiguity at all (``forced == possible``), which
    makes the comparison exact.
    """
    ours = np.asarray(ours, dtype=bool)
    theirs = np.asarray(theirs, dtype=bool)
    forced, possible = structure
    assert ours.shape == theirs.shape == forced.shape
    for name, mask in (("labelsift", ours), ("cleanlab", theirs)):
        missing = np.flatnonzero(forced & ~mask)
        extra = np.flatnonzero(mask & ~possible)
        assert missing.size == 0, f"{name} misses rows every tie order flags: {missing[:10]}"
        assert extra.size == 0, f"{name} flags rows no tie order flags: {extra[:10]}"
    if exact:
        ambiguous = np.flatnonzero(possible & ~forced)
        assert ambiguous.size == 0, f"tie at a selection boundary in a tie-free case: {ambiguous[:10]}"
        np.testing.assert_array_equal(ours, theirs)


def assert_ties_to_lower_index(mask, structure):
    """For a single selection (the ``low_*`` methods): among the rows at the
    boundary value, the chosen ones are those with the lowest indices."""
    forced, possible = structure
    ambiguous = np.flatnonzero(possible & ~forced)
    chosen = np.flatnonzero(np.asarray(mask) & possible & ~forced)
    np.testing.assert_array_equal(chosen, ambiguous[:len(chosen)])


def assert_ranked_by_score(indices, scores):
    """``indices`` are in ascending ``scores`` order, ties by lower index."""
    indices = np.asarray(indices)
    expected = indices[np.lexsort((indices, scores[indices]))]
    np.testing.assert_array_equal(indices, expected)


def assert_rankings_equal_up_to_ties(ours, theirs, scores, structure=None, *, exact=False):
    """Ranked index lists: ours sorted by (score, index); same set as cleanlab's up
    to selection ties, and, when the sets agree, the same score at every rank."""
    ours = np.asarray(ours)
    theirs = np.asarray(theirs)
    assert_ranked_by_score(ours, scores)
    if structure is not None:
        n = len(scores)
        mask_ours = np.zeros(n, bool)
        mask_ours[ours] = True
        mask_theirs = np.zeros(n, bool)
        mask_theirs[theirs] = True
        assert_masks_equal_up_to_ties(mask_ours, mask_theirs, structure, exact=exact)
    if set(ours.tolist()) == set(theirs.tolist()):
        # Same score at every rank; with ours in (score, index) order this
        # pins everything except cleanlab's arbitrary order among equal scores.
        np.testing.assert_array_equal(scores[ours], scores[theirs])
    else:
        assert structure is not None and not exact
