"""K x K algebra of confident learning, in plain NumPy.

Everything here works on K x K count or probability matrices and length-K
vectors, never on the N x K predicted probabilities, so it is cheap and is
shared verbatim by the engine and by :mod:`labelsift.reference`. It imports
nothing compiled: the two functions that round a matrix take the row
rounding as an argument (``round_rows``), the NumPy definition by default;
the engine passes the C++ kernel that computes the same thing
(``labelsift._cl.passes.calibrate`` / ``prune_counts``).

Bit-for-bit agreement with cleanlab 2.9.0
-----------------------------------------
The results equal cleanlab's K x K helpers bit for bit.  Floating-point
addition is not associative, so that is only true if every operation happens
in the same order *and on arrays with the same memory layout*: NumPy sums a
C-ordered matrix along ``axis=0`` row by row, but an F-ordered one (such as
``M.T``) with pairwise summation.  The expressions below are therefore
written in the same shape as the reference ones (a transposed view where the
reference has one, ``builtins.sum`` where the reference uses it, and so on);
the comments say where that matters.  Do not "simplify" them.

The inputs' layout matters too.  cleanlab's uncalibrated confident joint is
F-ordered (the transpose of a C-ordered ``[true, given]`` count matrix), its
calibrated one C-ordered; :func:`calibrate_confident_joint` and
:func:`estimate_latent` give cleanlab's bits only when handed the same
layout (``labelsift.reference.compute_confident_joint`` returns the same
layouts as cleanlab).

Conventions
-----------
* ``confident_joint[k, j]``: count of examples with given label ``k`` whose
  true label is guessed to be ``j`` (rows = given, columns = true).
* ``noise_matrix[k, j] = P(given = k | true = j)`` (columns sum to 1).
* ``inverse_noise_matrix[j, k] = P(true = j | given = k)`` (columns sum to 1).
* ``prune_count_matrix[j, k]``: count with true ``j`` and given ``k``, i.e. the
  transpose of the confident joint.

Deliberate differences from cleanlab (documented behaviour of labelsift)
------------------------------------------------------------------------
1. Ties in :func:`round_preserving_sum`.  When a total is off by ``d``,
   ``d`` entries get +1 (largest residual first) or -1 (smallest residual
   first).  cleanlab orders the residuals with NumPy's unstable sort, so among
   exactly equal residuals its choice depends on NumPy's sort; with
   ``ties="cleanlab"`` labelsift makes the same call, with
   ``ties="lower_index"`` it picks the lower index.
2. ``num_to_remove_per_class``: see :func:`prune_counts_for_num_to_remove`.
   cleanlab mixes up rows and columns there; labelsift implements what
   cleanlab's documentation promises.
"""
from __future__ import annotations

import builtins

import numpy as np

__all__ = [
    "TINY_VALUE",
    "CLIPPING_LOWER_BOUND",
    "FLOATING_POINT_COMPARISON",
    "round_preserving_sum",
    "round_preserving_row_totals",
    "calibrate_confident_joint",
    "estimate_joint_from_calibrated",
    "clip_noise_rates",
    "clip_values",
    "compute_py",
    "compute_inv_noise_matrix",
    "compute_noise_matrix_from_inverse",
    "converge_estimates",
    "estimate_latent",
    "keep_at_least_n_per_class",
    "reduce_prune_counts",
    "prune_counts_for_num_to_remove",
    "validate_num_to_remove_per_class",
    "PY_METHODS",
]

#: Guard against division by zero (cleanlab's ``TINY_VALUE``).
TINY_VALUE = 1e-100
#: Lower clip of the latent prior ``py`` (cleanlab's ``CLIPPING_LOWER_BOUND``).
CLIPPING_LOWER_BOUND = 1e-6
#: Fuzzy-equality tolerance (cleanlab's ``FLOATING_POINT_COMPARISON``).
FLOATING_POINT_COMPARISON = 1e-6

PY_METHODS = ("cnt", "eqn", "marginal", "marginal_ps")


# --------------------------------------------------------------------------
# Rounding that preserves totals
# --------------------------------------------------------------------------
def round_preserving_sum(x, ties="lower_index") -> np.ndarray:
    """Round a 1-D float vector to integers whose sum is the rounded sum of ``x``.

    Every entry is first rounded half to even.  While the integer total
    differs from ``round(sum(x))`` by ``d``, ``min(|d|, len(x))`` entries are
    moved by one towards the target: for ``d > 0`` the entries with the
    largest residual ``x - rounded`` get +1, for ``d < 0`` those with the
    smallest residual get -1.

    ``ties`` orders equal residuals: ``"lower_index"`` picks the lower index
    (stable sorts; for "largest first" a stable sort of the negated
    residuals); ``"cleanlab"`` makes cleanlab's own call,
    ``np.argsort(residual)[::-step]`` with NumPy's default (unstable) sort, so
    the choice among equal residuals is the one cleanlab makes on this
    machine.

    Returns an ``int64`` array of the same length.
    """
    values = np.asarray(x, dtype=float)
    rounded = values.round()
    target = np.sum(values).round()
    current = np.sum(rounded).round()
    while abs(current - target) > FLOATING_POINT_COMPARISON:
        gap = np.round(target - current)
        step = -1 if gap < 0.0 else 1
        n_changes = min(int(abs(gap)), len(values))
        residual = values - rounded
        if ties == "cleanlab":  # cleanlab's own call: its unstable sort decides among equal residuals
            chosen = np.argsort(residual)[::-step][:n_changes]
        elif step == 1:
            chosen = np.argsort(-residual, kind="stable")[:n_changes]  # largest residual first
        else:
            chosen = np.argsort(residual, kind="stable")[:n_changes]  # smallest residual first
        rounded[chosen] += step
        current = np.sum(rounded).round()
    return rounded.astype(np.int64)


def round_preserving_row_totals(matrix, ties="lower_index") -> np.ndarray:
    """:func:`round_preserving_sum` on every row of a 2-D float matrix.

    Returns an ``int64`` matrix whose row totals are the rounded row totals
    of ``matrix``. (The C++ kernel ``round_rows`` computes the same on a
    C-contiguous float64 copy; the tests check the two agree.)
    """
    matrix = np.ascontiguousarray(matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {matrix.shape}")
    out = np.empty(matrix.shape, dtype=np.int64)
    for k in range(matrix.shape[0]):
        out[k] = round_preserving_sum(matrix[k], ties)
    return out


# --------------------------------------------------------------------------
# Calibration and the joint
# --------------------------------------------------------------------------
def calibrate_confident_joint(confident_joint, label_counts, *,
                              round_rows=round_preserving_row_totals) -> np.ndarray:
    """Calibrate a confident joint to the observed label counts.

    ``label_counts[k]`` is the number of examples with given label ``k``
    (length K; cleanlab takes the labels themselves, labelsift the counts).

    1. Row ``k`` is rescaled to sum to ``label_counts[k]`` (a row summing to
       zero is divided by ``TINY_VALUE`` instead, so it stays zero).
    2. The whole matrix is rescaled to sum to ``sum(label_counts)``.
    3. Each row is rounded preserving its total (``round_rows``, by default
       :func:`round_preserving_row_totals`).

    Returns an ``int64`` K x K matrix.
    """
    cj = np.asarray(confident_joint)
    label_counts = np.asarray(label_counts)
    # Written as (cj.T / rowsums * counts).T, as the reference is: the result
    # is then C-ordered, which fixes the order of the total sum below.
    row_sums = np.clip(cj.sum(axis=1), a_min=TINY_VALUE, a_max=None)
    calibrated = (cj.T / row_sums * label_counts).T
    total = np.clip(np.sum(calibrated), a_min=TINY_VALUE, a_max=None)
    # builtins.sum: a left-to-right integer sum, exact.
    calibrated = calibrated / total * builtins.sum(label_counts)
    return round_rows(calibrated)


def estimate_joint_from_calibrated(calibrated_confident_joint) -> np.ndarray:
    """``joint = C / sum(C)`` for an (already calibrated) confident joint ``C``."""
    c = np.asarray(calibrated_confident_joint)
    return c / np.clip(float(np.sum(c)), a_min=TINY_VALUE, a_max=None)


# --------------------------------------------------------------------------
# Clipping helpers
# --------------------------------------------------------------------------
def clip_noise_rates(noise_matrix) -> np.ndarray:
    """Clip off-diagonal entries to ``[0, 0.9999]`` and renormalise columns.

    The diagonal (not a noise rate) is kept as it is before the columns are
    rescaled to sum to one.  The column sums follow the input's memory
    layout (row by row for C order, pairwise for F order), as the reference.
    """
    noise_matrix = np.asarray(noise_matrix)
    diagonal = np.diagonal(noise_matrix).copy()
    clipped = np.clip(noise_matrix, 0, 0.9999)  # keeps the memory layout
    np.fill_diagonal(clipped, diagonal)
    return clipped / np.clip(clipped.sum(axis=0), a_min=TINY_VALUE, a_max=None)


def clip_values(x, low=0.0, high=1.0, new_sum=None) -> np.ndarray:
    """Clip a 1-D vector to ``[low, high]`` and rescale it.

    The result sums to ``new_sum`` if given, else to the sum of ``x`` before
    clipping.  Raises ``TypeError`` for arrays of more than one dimension.
    """
    x = np.asarray(x)
    if x.ndim > 1:
        raise TypeError(f"clip_values expects a 1-D array, got shape {x.shape}")
    target = np.sum(x) if new_sum is None else new_sum
    clipped = np.clip(x, low, high)
    return clipped * target / np.clip(np.sum(clipped), a_min=TINY_VALUE, a_max=None)


# --------------------------------------------------------------------------
# Latent prior and noise matrices
# --------------------------------------------------------------------------
def compute_py(ps, noise_matrix, inverse_noise_matrix, py_method="cnt",
               true_labels_class_counts=None) -> np.ndarray:
    """Latent prior ``py = P(true = j)``, clipped to ``[1e-6, 1]`` and summing to 1.

    ``ps`` is ``P(given = k)``.  Methods:

    * ``"cnt"``: ``diag(inverse) / diag(noise) * ps`` (robust; the default),
    * ``"eqn"``: ``inv(noise_matrix) @ ps``,
    * ``"marginal"``: ``true_labels_class_counts / sum(...)`` (column sums of
      the confident joint; required for this method),
    * ``"marginal_ps"``: ``inverse_noise_matrix @ ps``.
    """
    if py_method == "marginal" and true_labels_class_counts is None:
        raise ValueError('py_method="marginal" requires true_labels_class_counts')
    if py_method == "cnt":
        py = (np.diagonal(inverse_noise_matrix)
              / np.clip(np.diagonal(noise_matrix), a_min=TINY_VALUE, a_max=None)
              * ps)
    elif py_method == "eqn":
        py = np.linalg.inv(noise_matrix).dot(ps)
    elif py_method == "marginal":
        counts = true_labels_class_counts
        # builtins.sum (left to right), as the reference; not np.sum (pairwise).
        py = counts / np.clip(float(builtins.sum(counts)), a_min=TINY_VALUE, a_max=None)
    elif py_method == "marginal_ps":
        py = np.dot(inverse_noise_matrix, ps)
    else:
        raise ValueError(f"py_method {py_method!r} should be one of {list(PY_METHODS)}")
    return clip_values(py, low=CLIPPING_LOWER_BOUND, high=1.0, new_sum=1.0)


def compute_inv_noise_matrix(py, noise_matrix, ps) -> np.ndarray:
    """``inverse[j, k] = noise[k, j] * py[j] / ps[k]``, then :func:`clip_noise_rates`."""
    joint = noise_matrix * py
    # joint.T is F-ordered; the division keeps that layout (it matters for
    # the column sums in clip_noise_rates).
    inverse = joint.T / np.clip(ps, a_min=TINY_VALUE, a_max=None)
    return clip_noise_rates(inverse)


def compute_noise_matrix_from_inverse(ps, inverse_noise_matrix, py) -> np.ndarray:
    """``noise[k, j] = inverse[j, k] * ps[k] / py[j]``, then :func:`clip_noise_rates`."""
    joint = (inverse_noise_matrix * ps).T
    noise = joint / np.clip(py, a_min=TINY_VALUE, a_max=None)
    return clip_noise_rates(noise)


def converge_estimates(ps, py, noise_matrix, inverse_noise_matrix, *,
                       inv_noise_matrix_iterations=5, noise_matrix_iterations=3):
    """Make ``py``, the noise matrix and its inverse algebraically consistent.

    ``noise_matrix_iterations`` outer rounds; in each, ``inv_noise_matrix_iterations``
    inner rounds recompute the inverse from ``(py, noise, ps)`` and ``py``
    from them (always method ``"cnt"``), then the noise matrix is recomputed
    from the inverse.  Returns ``(py, noise_matrix, inverse_noise_matrix)``.
    """
    for _ in range(noise_matrix_iterations):
        for _ in range(inv_noise_matrix_iterations):
            inverse_noise_matrix = compute_inv_noise_matrix(py, noise_matrix, ps)
            py = compute_py(ps, noise_matrix, inverse_noise_matrix, "cnt")
        noise_matrix = compute_noise_matrix_from_inverse(ps, inverse_noise_matrix, py)
    return py, noise_matrix, inverse_noise_matrix


def estimate_latent(confident_joint, label_counts, py_method="cnt",
                    converge_latent_estimates=False):
    """``(py, noise_matrix, inverse_noise_matrix)`` from a confident joint.

    ``label_counts[k]`` is the number of examples with given label ``k``;
    ``ps = label_counts / N``.  The noise matrix is the confident joint with
    columns normalised, the inverse its transpose with columns normalised
    (both then pass through :func:`clip_noise_rates`); ``py`` comes from
    :func:`compute_py`.  With ``converge_latent_estimates`` the three are
    refined by :func:`converge_estimates`, then ``py`` is clipped to
    ``[1e-5, 1]`` and both matrices are clipped again.
    """
    cj = np.asarray(confident_joint)
    label_counts = np.asarray(label_counts)
    ps = label_counts / float(np.sum(label_counts))  # integer total: exact
    given_counts = cj.sum(axis=1).astype(float)
    true_counts = cj.sum(axis=0).astype(float)
    noise_matrix = cj / np.clip(true_counts, a_min=TINY_VALUE, a_max=None)
    # cj.T / ...: F-ordered, as the reference (see clip_noise_rates).
    inverse_noise_matrix = cj.T / np.clip(given_counts, a_min=TINY_VALUE, a_max=None)
    py = compute_py(ps, noise_matrix, inverse_noise_matrix, py_method,
                    true_labels_class_counts=true_counts)
    noise_matrix = clip_noise_rates(noise_matrix)
    inverse_noise_matrix = clip_noise_rates(inverse_noise_matrix)
    if converge_latent_estimates:
        py, noise_matrix, inverse_noise_matrix = converge_estimates(
            ps, py, noise_matrix, inverse_noise_matrix)
        py = clip_values(py, low=1e-5, high=1.0, new_sum=1.0)
        noise_matrix = clip_noise_rates(noise_matrix)
        inverse_noise_matrix = clip_noise_rates(inverse_noise_matrix)
    return py, noise_matrix, inverse_noise_matrix


# --------------------------------------------------------------------------
# Prune counts (how many examples find_label_issues removes)
# --------------------------------------------------------------------------
def reduce_prune_counts(prune_count_matrix, frac_noise=1.0) -> np.ndarray:
    """Multiply off-diagonal counts by ``frac_noise``, move the removed mass to
    the diagonal (column totals preserved) and truncate to ``int64``."""
    pcm = np.asarray(prune_count_matrix)
    if frac_noise == 1.0 and pcm.ndim == 2 and pcm.shape[0] == pcm.shape[1] and pcm.dtype.kind in "iuf":
        # nothing moves to the diagonal (pcm - pcm * 1.0 is all zeros): the same int64 truncation, in one
        # pass over K x K instead of four (the frac_noise = 1 default of find_label_issues)
        return pcm.astype(np.int64)
    reduced = pcm * frac_noise
    np.fill_diagonal(reduced, pcm.diagonal())
    np.fill_diagonal(reduced, pcm.diagonal() + np.sum(pcm - reduced, axis=0))
    return reduced.astype(np.int64)


def keep_at_least_n_per_class(prune_count_matrix, n, frac_noise=1.0, *,
                              round_rows=round_preserving_row_totals) -> np.ndarray:
    """Adjust prune counts so at least ``n`` examples stay in every class.

    ``prune_count_matrix[j, k]`` counts true ``j`` with given ``k`` (pass
    ``confident_joint.T``).  In each column the diagonal is raised to at
    least ``n``; the increase is taken, split evenly, out of the column's
    other non-zero entries (floored at 0).  Then :func:`reduce_prune_counts`
    applies ``frac_noise`` and the rows are re-rounded preserving totals
    (``round_rows``).
    Returns an ``int64`` K x K matrix.
    """
    pcm = np.asarray(prune_count_matrix)
    diagonal = np.diagonal(pcm)
    new_diagonal = np.maximum(diagonal, n)
    raised_by = new_diagonal - diagonal
    # Non-zero off-diagonal entries per column, at least 1 (a divisor).
    n_nonzero_off = np.maximum(np.count_nonzero(pcm, axis=0) - 1.0, 1.0)
    adjusted = pcm - raised_by / n_nonzero_off  # keeps pcm's layout (F for cj.T)
    adjusted[adjusted < 0] = 0
    np.fill_diagonal(adjusted, new_diagonal)
    adjusted = reduce_prune_counts(adjusted, frac_noise)
    return round_rows(adjusted)


def validate_num_to_remove_per_class(num_to_remove_per_class, num_classes) -> np.ndarray:
    """Check ``num_to_remove_per_class`` (length K, non-negative integers) and
    return it as ``int64``; ``ValueError`` otherwise."""
    r = np.asarray(num_to_remove_per_class)
    if r.ndim != 1 or r.shape[0] != num_classes:
        raise ValueError(
            f"num_to_remove_per_class must have one entry per class ({num_classes}), "
            f"got shape {r.shape}")
    if r.dtype.kind not in "iu":
        raise ValueError(
            f"num_to_remove_per_class must hold non-negative integers, got dtype {r.dtype}")
    if np.any(r < 0):
        bad = int(np.flatnonzero(r < 0)[0])
        raise ValueError(
            f"num_to_remove_per_class must be non-negative; class {bad} has {r[bad]}")
    return r.astype(np.int64)


def prune_counts_for_num_to_remove(prune_count_matrix, label_counts,
                                   num_to_remove_per_class) -> np.ndarray:
    """Prune counts that remove ``num_to_remove_per_class[k]`` from each given class k.

    ``prune_count_matrix[j, k]`` counts true ``j`` with given ``k`` (the
    output of :func:`keep_at_least_n_per_class`); ``label_counts[k] = n_k``.
    For every class ``k`` (column ``k``), with ``r_k`` clipped to
    ``[0, n_k]``:

    * the off-diagonal entries ``j != k`` are rescaled, in proportion to the
      estimated ``prune_count_matrix[j, k]``, to sum to ``r_k`` (when they
      are all zero, ``r_k`` is split evenly over ``j != k`` in integers, the
      remainder going one each to the lowest indices);
    * the diagonal becomes ``n_k - r_k``;
    * the column is rounded preserving its total ``n_k``.  The diagonal is
      already an integer, so only off-diagonal entries are moved; this is
      done by rounding them with :func:`round_preserving_sum` to the integer
      total ``r_k``, which keeps the result exact.

    So ``prune_by_class`` flags exactly ``r_k`` examples of class k (before
    the final unflagging step) and ``prune_by_noise_rate`` at most ``r_k``.

    This is what cleanlab documents.  cleanlab 2.9.0's own code divides
    ``prune_count_matrix`` by its row sums and rescales rows where it means
    columns, so asking it to remove 0 per class can still remove many;
    labelsift deliberately does not reproduce that.  Raises ``ValueError``
    unless ``num_to_remove_per_class`` has length K and holds non-negative
    integers.  Returns an ``int64`` K x K matrix.
    """
    pcm = np.asarray(prune_count_matrix)
    num_classes = pcm.shape[0]
    r = validate_num_to_remove_per_class(num_to_remove_per_class, num_classes)
    label_counts = np.asarray(label_counts).astype(np.int64)
    r = np.minimum(r, label_counts)
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    off = ~np.eye(num_classes, dtype=bool)
    for k in range(num_classes):
        others = off[:, k]
        estimate = pcm[others, k].astype(float)
        total = estimate.sum()
        if num_classes == 1 or r[k] == 0:
            rounded = np.zeros(num_classes - 1, dtype=np.int64)
        elif total > 0:
            rounded = round_preserving_sum(estimate * (r[k] / total))
        else:  # no estimate: split evenly, the remainder to the lowest indices
            base, extra = divmod(int(r[k]), num_classes - 1)
            rounded = np.full(num_classes - 1, base, dtype=np.int64)
            rounded[:extra] += 1
        out[others, k] = rounded
        out[k, k] = label_counts[k] - r[k]
    return out
