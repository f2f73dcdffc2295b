"""Comparison of results: exact (dtype included) and up to selection ties.

Selections of the c smallest/largest values (prune methods, ``low_*``
methods, rankings) may differ between two implementations only in rows
whose key equals the boundary value of a selection; everything else is
compared exactly.
"""
from __future__ import annotations

import numpy as np

from support.cases import case_data
from support.constants import PRUNE_METHODS
from support.oracle import cached_cleanlab, cleanlab_given_label_wins, cleanlab_prune_counts, memo


def assert_same(got, want, what):
    """Exact equality, dtype included, recursing into tuples."""
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), f"{what}: {type(got)} vs {type(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{what}[{i}]")
        return
    if isinstance(want, (int, np.integer)) and not isinstance(want, (bool, np.bool_)):
        assert isinstance(got, (int, np.integer)) and int(got) == int(want), f"{what}: {got!r} != {want!r}"
        return
    g, w = np.asarray(got), np.asarray(want)
    assert g.dtype == w.dtype, f"{what}: dtype {g.dtype} != {w.dtype}"
    np.testing.assert_array_equal(g, w, err_msg=what, strict=True)


def assert_parts_equal(ours, theirs):
    """Tuples of arrays (e.g. py, noise matrix, inverse noise matrix) equal part
    by part (values; same number of parts)."""
    for our_part, their_part in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(our_part, their_part)


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


# --------------------------------------------------------------------------
# The selection structure of a named case, from cleanlab's own counts
# --------------------------------------------------------------------------
def case_structure(case, filter_by, *, min_examples_per_class=1, frac_noise=1.0,
                   confident_joint=None):
    """:func:`selection_structure` of ``case_data(case)`` with cleanlab's prune
    counts (or, for ``low_*``, its scores and issue count), memoised."""
    key = ("structure", case, filter_by, min_examples_per_class, frac_noise,
           confident_joint is not None)
    return memo(key, lambda: _compute_case_structure(case, filter_by, min_examples_per_class,
                                                     frac_noise, confident_joint))


def _compute_case_structure(case, filter_by, min_examples_per_class, frac_noise, confident_joint):
    labels, probs = case_data(case)
    if filter_by in PRUNE_METHODS:
        pcm = cleanlab_prune_counts(labels, probs, min_examples_per_class=min_examples_per_class,
                                    frac_noise=frac_noise, confident_joint=confident_joint)
        return selection_structure(labels, probs, filter_by, prune_counts=pcm,
                                   min_examples_per_class=min_examples_per_class)
    scores = cached_cleanlab(case, "rank", "get_label_quality_scores",
                             method=filter_by[len("low_"):])
    num_issues = cached_cleanlab(case, "count", "num_label_issues")
    return selection_structure(labels, probs, filter_by, scores=scores, num_issues=num_issues)
