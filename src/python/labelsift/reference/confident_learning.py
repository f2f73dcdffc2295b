"""Plain-NumPy reference implementation of confident learning.

This module is the oracle of labelsift's property tests: the compiled kernels
behind the public API must return exactly what these functions return.  It
is written to be read, not to be fast; it follows cleanlab 2.9.0's
confident-learning algorithm step by step and gives the same results on the
same inputs, except for the deliberate differences below.  The K x K algebra
lives in :mod:`labelsift._cl.latent` (plain NumPy, here with its NumPy
rounding), which the engine shares.

Deliberate differences from cleanlab 2.9.0
------------------------------------------
* Ties (``ties=``, default ``labelsift.options()["ties"]``).  With
  ``"cleanlab"`` every sort is cleanlab's own call (NumPy's default, unstable
  sort of the same array), so results equal cleanlab's, ties included; with
  ``"lower_index"`` every sort is stable (lower index first).
* ``num_to_remove_per_class`` does what cleanlab documents (see
  :func:`labelsift._cl.latent.prune_counts_for_num_to_remove`).
* ``confidence_weighted_entropy`` does not raise for probabilities outside
  ``[0, 1]``: inside its logarithm values are clipped to ``[0, 1]``.
* Labels may have any integer dtype; a label set with a single class is
  accepted.  ``multi_label=True`` raises ``NotImplementedError`` for now.

dtype semantics (these are the reference's, reproduced on purpose)
------------------------------------------------------------------
Thresholds are ``np.mean`` of the class's self-confidences in the input
dtype (float16 accumulates in float32).  If any class is absent from the
labels its threshold is the integer 2 and the whole threshold vector becomes
float64, so comparisons then happen in float64.  Margins, normalized margins
and the ``+ 1e-6`` of the final unflagging step are computed in the input
dtype.
"""
from __future__ import annotations

import warnings

import numpy as np

from .._cl import latent as _latent
from .._common.checks import no_multi_label as _no_multi_label
from .._common.options import resolve_ties as _resolve_ties
from .._common.names import ESTIMATION_METHODS, FILTER_BY, PRUNE_METHODS, SCORE_METHODS


def _xlogy(x, y):
    """scipy.special.xlogy (imported lazily: SciPy is only needed by this oracle's entropy score)."""
    from scipy.special import xlogy

    return xlogy(x, y)


__all__ = [
    "get_confident_thresholds",
    "compute_confident_joint",
    "calibrate_confident_joint",
    "estimate_joint",
    "estimate_latent",
    "estimate_py_and_noise_matrices_from_probabilities",
    "num_label_issues",
    "find_label_issues",
    "get_label_quality_scores",
    "order_label_issues",
]

#: Absent classes get this threshold: no probability can reach it.
ABSENT_CLASS_THRESHOLD = 2
#: Thresholds are clipped from below to this value.
THRESHOLD_LOWER_BOUND = 2e-6
#: A probability passes its class threshold when ``p >= t - EPS``; the final
#: unflagging step adds ``EPS`` to the given label's probability.
EPS = _latent.FLOATING_POINT_COMPARISON


_BLOCK_ROWS = 1 << 15  # row block of the few N x K temporaries we need


# --------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------
def _as_labels(labels, num_classes=None) -> np.ndarray:
    """Labels as a 1-D int64 array (any integer dtype accepted)."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        i = int(np.argmin(arr))
        raise ValueError(f"labels must be >= 0; labels[{i}] = {arr[i]}")
    if num_classes is not None and arr.size and arr.max() >= num_classes:
        i = int(np.argmax(arr))
        raise ValueError(f"labels must be < {num_classes} (classes); labels[{i}] = {arr[i]}")
    return arr


def _as_probs(pred_probs) -> np.ndarray:
    """Predicted probabilities as a 2-D float array (kept in its own dtype)."""
    arr = np.asarray(pred_probs)
    if arr.ndim != 2:
        raise ValueError(f"pred_probs must be 2-D (N, K), got shape {arr.shape}")
    if arr.dtype.kind != "f":
        raise TypeError(f"pred_probs must be floating point, got dtype {arr.dtype}")
    if arr.shape[1] < 2:
        raise ValueError(f"pred_probs must have at least 2 classes (columns), got {arr.shape[1]}")
    return arr


def _inputs(labels, pred_probs):
    probs = _as_probs(pred_probs)
    y = _as_labels(labels, probs.shape[1])
    if len(y) != len(probs):
        raise ValueError(f"labels ({len(y)}) and pred_probs ({len(probs)}) differ in length")
    return y, probs


def _label_counts(labels, num_classes) -> np.ndarray:
    return np.bincount(labels, minlength=num_classes).astype(np.int64)


def _rows_by_class(labels, num_classes):
    """For each class k, the indices of the rows labelled k, ascending."""
    order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(_label_counts(labels, num_classes))
    return np.split(order, bounds[:-1])


def _given_label_wins(labels, pred_probs) -> np.ndarray:
    """True where the given label is the argmax after adding ``EPS`` to it.

    Equivalent to ``argmax(P') == y`` with ``P'`` a copy of ``P`` whose
    ``P'[i, y_i] = P[i, y_i] + EPS`` (rounded in P's dtype), without the copy.
    ``argmax`` returns the first maximum (a NaN counts as the maximum), so
    ``y`` wins iff ``P'[y] > P[k]`` for every ``k < y`` and ``P'[y] >= P[k]``
    for every ``k > y`` -- or ``P'[y]`` is NaN and no NaN comes before it.
    """
    n, num_classes = pred_probs.shape
    bumped = pred_probs[np.arange(n), labels] + EPS  # in P's dtype
    bumped_nan = np.isnan(bumped)
    wins = np.ones(n, dtype=bool)
    for k in range(num_classes):
        col = pred_probs[:, k]
        before = k < labels
        after = k > labels
        beats = (bumped > col) | (bumped_nan & ~np.isnan(col))
        reaches = (bumped >= col) | bumped_nan
        wins &= ~(before & ~beats) & ~(after & ~reaches)
    return wins


# --------------------------------------------------------------------------
# Thresholds and the confident joint
# --------------------------------------------------------------------------
def get_confident_thresholds(labels, pred_probs, *, multi_label=False) -> np.ndarray:
    """Per-class thresholds ``t[k] = mean(P[y == k, k])``.

    The mean is ``np.mean`` over the class's values in index order, in the
    input dtype.  An absent class gets 2 (which makes the vector float64).
    Finally ``t = max(t, 2e-6)``.
    """
    _no_multi_label(multi_label)
    y, probs = _inputs(labels, pred_probs)
    num_classes = probs.shape[1]
    thresholds = []
    for k, rows in enumerate(_rows_by_class(y, num_classes)):
        if len(rows):
            thresholds.append(np.mean(probs[rows, k]))
        else:
            thresholds.append(ABSENT_CLASS_THRESHOLD)
    return np.clip(thresholds, a_min=THRESHOLD_LOWER_BOUND, a_max=None)


def _confident_guesses(probs, thresholds):
    """``(counted, guess)`` for every row.

    ``counted[i]``: some class passes ``P[i, k] >= t[k] - EPS``.  ``guess[i]``:
    the one passing class, or ``argmax_k P[i, k]`` over all classes when two
    or more pass (meaningless where not counted).
    """
    n, num_classes = probs.shape
    cut = np.asarray(thresholds) - EPS  # in the thresholds' dtype
    num_passing = np.zeros(n, dtype=np.int64)
    first_passing = np.zeros(n, dtype=np.int64)
    for k in range(num_classes):
        passes = probs[:, k] >= cut[k]
        first_passing[passes & (num_passing == 0)] = k
        num_passing += passes
    guess = np.where(num_passing > 1, probs.argmax(axis=1), first_passing)
    return num_passing > 0, guess


def _argsort(values, ties):
    """Ascending order: NumPy's default (unstable) sort, as cleanlab calls it,
    or a stable one (ties to the lower index)."""
    return np.argsort(values) if ties == "cleanlab" else np.argsort(values, kind="stable")


def _calibrate(cj, counts, ties):
    def round_rows(m):
        return _latent.round_preserving_row_totals(m, ties)

    return _latent.calibrate_confident_joint(cj, counts, round_rows=round_rows)


def compute_confident_joint(labels, pred_probs, *, thresholds=None, calibrate=True,
                            multi_label=False, return_indices_of_off_diagonals=False, ties=None):
    """Confident joint ``C`` (K x K int64; rows = given label, columns = guessed true label).

    Row i counts in ``C[y_i, guess_i]`` when at least one class passes its
    threshold; the diagonal is then raised to at least 1, and the matrix is
    calibrated unless ``calibrate=False``.  With
    ``return_indices_of_off_diagonals`` also returns the ascending indices of
    counted rows whose guess differs from the given label.
    """
    _no_multi_label(multi_label)
    y, probs = _inputs(labels, pred_probs)
    num_classes = probs.shape[1]
    if thresholds is None:
        thresholds = get_confident_thresholds(y, probs)
    counted, guess = _confident_guesses(probs, thresholds)
    # Count into a C-ordered [guess, given] matrix and return its transpose:
    # an F-ordered [given, guess] view, the memory layout the reference's
    # confident joint has.  Later sums (calibration, estimate_latent) run in
    # memory order, so the layout is part of bit-for-bit agreement.
    cells = guess[counted] * num_classes + y[counted]
    counts = np.bincount(cells, minlength=num_classes * num_classes)
    cj = counts.astype(np.int64).reshape(num_classes, num_classes).T
    np.fill_diagonal(cj, np.maximum(cj.diagonal(), 1))
    if calibrate:
        cj = _calibrate(cj, _label_counts(y, num_classes), _resolve_ties(ties))
    if return_indices_of_off_diagonals:
        return cj, np.flatnonzero(counted & (guess != y))
    return cj


def calibrate_confident_joint(confident_joint, labels, *, multi_label=False, ties=None) -> np.ndarray:
    """Calibrate ``confident_joint`` to the label counts (rows sum to ``n_k``,
    total ``N``), rounding rows preserving their totals."""
    _no_multi_label(multi_label)
    cj = np.asarray(confident_joint)
    counts = _label_counts(_as_labels(labels, len(cj)), len(cj))
    return _calibrate(cj, counts, _resolve_ties(ties))


def estimate_joint(labels, pred_probs, *, confident_joint=None, multi_label=False, ties=None) -> np.ndarray:
    """``joint = C / sum(C)`` with ``C`` the calibrated confident joint.

    A given ``confident_joint`` is calibrated with ``labels`` first (used as
    it is when ``labels`` is None).
    """
    _no_multi_label(multi_label)
    if confident_joint is None:
        calibrated = compute_confident_joint(labels, pred_probs, calibrate=True, ties=ties)
    elif labels is not None:
        calibrated = calibrate_confident_joint(confident_joint, labels, ties=ties)
    else:
        calibrated = np.asarray(confident_joint)
    return _latent.estimate_joint_from_calibrated(calibrated)


def estimate_latent(confident_joint, labels, *, py_method="cnt", converge_latent_estimates=False):
    """``(py, noise_matrix, inverse_noise_matrix)`` from a confident joint and the labels."""
    cj = np.asarray(confident_joint)
    counts = _label_counts(_as_labels(labels, len(cj)), len(cj))
    return _latent.estimate_latent(cj, counts, py_method=py_method,
                                   converge_latent_estimates=converge_latent_estimates)


def estimate_py_and_noise_matrices_from_probabilities(
        labels, pred_probs, *, thresholds=None, converge_latent_estimates=True,
        py_method="cnt", calibrate=True, ties=None):
    """``(py, noise_matrix, inverse_noise_matrix, confident_joint)`` in one call."""
    cj = compute_confident_joint(labels, pred_probs, thresholds=thresholds, calibrate=calibrate, ties=ties)
    py, noise_matrix, inverse_noise_matrix = estimate_latent(
        cj, labels, py_method=py_method, converge_latent_estimates=converge_latent_estimates)
    return py, noise_matrix, inverse_noise_matrix, cj


# --------------------------------------------------------------------------
# Counting and finding label issues
# --------------------------------------------------------------------------
def num_label_issues(labels, pred_probs, *, confident_joint=None,
                     estimation_method="off_diagonal", ties=None) -> int:
    """Estimated number of label issues.

    * ``off_diagonal``: the off-diagonal rows of the (uncalibrated) confident
      joint, minus rows whose given label wins the argmax after ``+ EPS``.
    * ``off_diagonal_calibrated``: ``rint((1 - trace(joint)) * N)`` with the
      joint of the calibrated confident joint (calibrated a second time by
      :func:`estimate_joint`, as the reference does).
    * ``off_diagonal_custom``: the same from the given ``confident_joint``.
    """
    if estimation_method not in ESTIMATION_METHODS:
        raise ValueError(f"estimation_method must be one of {list(ESTIMATION_METHODS)}, "
                         f"got {estimation_method!r}")
    if confident_joint is not None and estimation_method != "off_diagonal_custom":
        warnings.warn("confident_joint is ignored unless estimation_method='off_diagonal_custom'")
    y, probs = _inputs(labels, pred_probs)
    if estimation_method == "off_diagonal":
        _, off_diagonal = compute_confident_joint(
            y, probs, calibrate=False, return_indices_of_off_diagonals=True)
        issues = np.zeros(len(y), dtype=bool)
        issues[off_diagonal] = True
        issues &= ~_given_label_wins(y, probs)
        return int(np.count_nonzero(issues))
    if estimation_method == "off_diagonal_calibrated":
        cj = compute_confident_joint(y, probs, calibrate=True, ties=ties)
    else:
        if confident_joint is None:
            raise ValueError("estimation_method='off_diagonal_custom' needs a confident_joint")
        cj = confident_joint
    joint = estimate_joint(y, probs, confident_joint=cj, ties=ties)
    frac_issues = 1.0 - joint.trace()
    return int(np.rint(frac_issues * len(y)))


def _prune_by_class(rows_by_class, probs, prune_counts, min_examples_per_class, ties):
    """Per class k: flag the ``n_k - pcm[k, k]`` rows with the lowest ``P[:, k]``."""
    flagged = np.zeros(len(probs), dtype=bool)
    for k, rows in enumerate(rows_by_class):
        n_k = len(rows)
        if n_k <= min_examples_per_class or n_k == 1:
            continue
        num_issues = n_k - prune_counts[k, k]
        if num_issues >= 1:
            order = _argsort(probs[rows, k], ties)
            flagged[rows[order[:num_issues]]] = True
    return flagged


def _prune_by_noise_rate(rows_by_class, probs, prune_counts, min_examples_per_class, ties):
    """Per class k and j != k with ``c = pcm[j, k] > 0``: flag the c rows with
    the largest margin ``P[:, j] - P[:, k]`` (computed in P's dtype)."""
    flagged = np.zeros(len(probs), dtype=bool)
    for k, rows in enumerate(rows_by_class):
        n_k = len(rows)
        if n_k <= min_examples_per_class or n_k == 1:
            continue
        for j in np.flatnonzero(prune_counts[:, k] > 0):
            if j == k:
                continue
            margin = probs[rows, j] - probs[rows, k]
            order = _argsort(-margin, ties)  # largest margin first
            flagged[rows[order[:prune_counts[j, k]]]] = True
    return flagged


def find_label_issues(labels, pred_probs, *, return_indices_ranked_by=None, rank_by_kwargs=None,
                      filter_by="prune_by_noise_rate", multi_label=False, frac_noise=1.0,
                      num_to_remove_per_class=None, min_examples_per_class=1,
                      confident_joint=None, n_jobs=None, verbose=False, ties=None):
    """Boolean mask of likely label issues (or their indices, ranked).

    ``filter_by`` is one of cleanlab's seven methods (the module-level
    helpers above implement each step).  ``n_jobs`` is accepted for compatibility and ignored.
    With ``return_indices_ranked_by`` (a score name) returns the flagged
    indices by ascending label quality score.  ``ties``: ``"cleanlab"``
    (NumPy's default sort at every sort cleanlab makes) or ``"lower_index"``.
    """
    _no_multi_label(multi_label)
    ties = _resolve_ties(ties)
    if filter_by not in FILTER_BY:
        raise ValueError(f"filter_by must be one of {list(FILTER_BY)}, got {filter_by!r}")
    if filter_by not in PRUNE_METHODS and (frac_noise != 1.0 or num_to_remove_per_class is not None):
        warnings.warn("frac_noise and num_to_remove_per_class only apply to filter_by "
                      f"{list(PRUNE_METHODS)}")
        if num_to_remove_per_class is not None:
            raise ValueError(f"num_to_remove_per_class is not supported with filter_by={filter_by!r}")
    y, probs = _inputs(labels, pred_probs)
    n, num_classes = probs.shape

    if filter_by in PRUNE_METHODS or filter_by == "confident_learning":
        if confident_joint is None or filter_by == "confident_learning":
            cj, off_diagonal = compute_confident_joint(
                y, probs, return_indices_of_off_diagonals=True, ties=ties)
        else:
            cj = np.asarray(confident_joint)

    if filter_by in PRUNE_METHODS:
        prune_counts = _latent.keep_at_least_n_per_class(
            cj.T, min_examples_per_class, frac_noise,
            round_rows=lambda m: _latent.round_preserving_row_totals(m, ties))
        if num_to_remove_per_class is not None:
            prune_counts = _latent.prune_counts_for_num_to_remove(
                prune_counts, _label_counts(y, num_classes), num_to_remove_per_class)
        rows_by_class = _rows_by_class(y, num_classes)
        args = (rows_by_class, probs, prune_counts, min_examples_per_class, ties)
        if filter_by == "prune_by_class":
            issues = _prune_by_class(*args)
        elif filter_by == "prune_by_noise_rate":
            issues = _prune_by_noise_rate(*args)
        else:
            issues = _prune_by_class(*args) & _prune_by_noise_rate(*args)
    elif filter_by == "confident_learning":
        issues = np.zeros(n, dtype=bool)
        issues[off_diagonal] = True
    elif filter_by == "predicted_neq_given":
        issues = probs.argmax(axis=1) != y
    else:  # low_self_confidence / low_normalized_margin
        scores = get_label_quality_scores(y, probs, method=filter_by[len("low_"):])
        num_issues = num_label_issues(y, probs)
        issues = np.zeros(n, dtype=bool)
        issues[_argsort(scores, ties)[:num_issues]] = True

    if filter_by not in ("low_self_confidence", "low_normalized_margin"):
        issues &= ~_given_label_wins(y, probs)
    if verbose:
        print(f"Number of label issues found: {int(issues.sum())}")
    if return_indices_ranked_by is not None:
        return order_label_issues(issues, y, probs, rank_by=return_indices_ranked_by,
                                  rank_by_kwargs=rank_by_kwargs, ties=ties)
    return issues


# --------------------------------------------------------------------------
# Label quality scores
# --------------------------------------------------------------------------
def _adjust_pred_probs(labels, probs):
    """``P' = P - t + max(t)``, rows renormalised (cleanlab's operation order)."""
    thresholds = get_confident_thresholds(labels, probs)
    adjusted = probs - thresholds
    adjusted += thresholds.max()
    adjusted /= adjusted.sum(axis=1, keepdims=True)
    return adjusted


def _self_confidence(labels, probs):
    return probs[np.arange(len(labels)), labels]


def _max_other_class(labels, probs):
    """``max_{k != y_i} P[i, k]`` for every row, without an N x K copy.

    It is the row maximum, except in rows where the given label attains that
    maximum; only those rows (in blocks) get a copy with the given label
    masked out.
    """
    n = len(labels)
    row_max = probs.max(axis=1)
    result = row_max.copy()
    need = np.flatnonzero(_self_confidence(labels, probs) == row_max)
    for start in range(0, len(need), _BLOCK_ROWS):
        rows = need[start:start + _BLOCK_ROWS]
        block = probs[rows]
        block[np.arange(len(rows)), labels[rows]] = -np.inf
        result[rows] = block.max(axis=1)
    assert result.shape == (n,)
    return result


def _normalized_entropy(probs):
    """``-sum_k P log P / log K`` per row (cleanlab's expression), in row blocks.

    Inside the log, values are clipped to [0, 1]: a value in the accepted
    range [-1e-6, 0) counts as 0 (``0 log 0 = 0``, the limit) and one in
    (1, 1 + 1e-4] as 1, so the entropy is never negative and no accepted
    input gives NaN (cleanlab refuses values outside [0, 1] here).
    """
    num_classes = probs.shape[1]
    parts = [
        -np.sum(_xlogy(np.clip(block, 0, 1), np.clip(block, 0, 1)), axis=1) / np.log(num_classes)
        for block in (probs[s:s + _BLOCK_ROWS] for s in range(0, max(len(probs), 1), _BLOCK_ROWS))
    ]
    return np.concatenate(parts)


def get_label_quality_scores(labels, pred_probs, *, method="self_confidence",
                             adjust_pred_probs=False) -> np.ndarray:
    """Label quality score per example (lower = more likely mislabelled).

    * ``self_confidence``: ``P[i, y_i]``.
    * ``normalized_margin``: ``(P[i, y_i] - max_{k != y_i} P[i, k] + 1) / 2``
      in P's dtype.
    * ``confidence_weighted_entropy``: ``x = H / max(P[i, y_i], 1e-6)`` with
      ``H`` the normalised entropy, score ``log(x + 1) / max(x, 1e-6)``.

    ``adjust_pred_probs`` first maps ``P -> P - t + max(t)`` with rows
    renormalised (``ValueError`` with ``confidence_weighted_entropy``).
    """
    if method not in SCORE_METHODS:
        raise ValueError(f"method must be one of {list(SCORE_METHODS)}, got {method!r}")
    y, probs = _inputs(labels, pred_probs)
    if adjust_pred_probs:
        if method == "confidence_weighted_entropy":
            raise ValueError(f"adjust_pred_probs is not supported for {method}")
        probs = _adjust_pred_probs(y, probs)

    if method == "self_confidence":
        return _self_confidence(y, probs)
    if method == "normalized_margin":
        return (_self_confidence(y, probs) - _max_other_class(y, probs) + 1) / 2
    self_conf = np.clip(_self_confidence(y, probs), a_min=_latent.CLIPPING_LOWER_BOUND, a_max=None)
    ratio = _normalized_entropy(probs) / self_conf
    return np.log(ratio + 1) / np.clip(ratio, a_min=_latent.CLIPPING_LOWER_BOUND, a_max=None)


def order_label_issues(label_issues_mask, labels, pred_probs, *, rank_by="self_confidence",
                       rank_by_kwargs=None, ties=None) -> np.ndarray:
    """Indices of the flagged examples by ascending label quality score
    (equal scores ordered by ``ties``)."""
    mask = np.asarray(label_issues_mask, dtype=bool)
    indices = np.flatnonzero(mask)
    scores = get_label_quality_scores(labels, pred_probs, method=rank_by, **(rank_by_kwargs or {}))
    return indices[_argsort(scores[indices], _resolve_ties(ties))]
