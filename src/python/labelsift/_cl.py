"""The confident-learning engine: passes over the probabilities.

One call of the public API is a handful of passes, each a loop over
``Probs.blocks()`` calling one C++ kernel:

* ``given_probs``   reads P[i, y_i] (one value a row);
* ``row_pass``      one sweep over every value: validation, confident guesses,
                    argmax, the unflagging test, max over the other classes;
* ``prune_by_noise_rate`` one sweep reading, for each row, only the columns
                    its class still has to prune.

Everything else is O(N) or O(K^2) NumPy. Results do not depend on the thread
count, the block size or how the rows are split into shards.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _latent
from ._arrays import PROB_HIGH, PROB_LOW, Probs, as_labels, as_probs, row_sum_tolerance
from ._backend import core, threads
from ._names import SCORE_METHODS

_ROW_ERRORS = {1: "is NaN", 2: "is infinite", 3: "is outside [-1e-06, 1.0001]"}


@dataclass
class Problem:
    labels: np.ndarray  # int64 (N,)
    probs: Probs
    nthreads: int
    validated: bool = False

    @property
    def n(self) -> int:
        return self.probs.n

    @property
    def k(self) -> int:
        return self.probs.k

    @property
    def dtype(self) -> np.dtype:
        return self.probs.dtype

    def label_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.k).astype(np.int64)


def prepare(labels, pred_probs, n_jobs=None) -> Problem:
    probs = as_probs(pred_probs)
    y = as_labels(labels, probs.n, probs.k)
    return Problem(y, probs, threads(n_jobs))


def raise_row_error(block: np.ndarray, err, row_name, cell_name) -> None:
    """Raise the ValueError for a kernel's (row, code, col) report, if any.

    ``row_name(r)`` / ``cell_name(r, c)`` say how the caller names a block
    row and cell (global row index, example id, ...).
    """
    row, code, col = err
    if row < 0:
        return
    if code == 4:
        s = float(np.sum(np.asarray(block[row], dtype=np.float64)))
        tol = row_sum_tolerance(block.dtype)
        raise ValueError(
            f"{row_name(row)} sums to {s:.6g}, not 1 (tolerance {tol:g}); "
            "pass probabilities (e.g. softmax outputs), not logits or scores"
        )
    raise ValueError(f"{cell_name(row, col)} = {block[row, col]!r} {_ROW_ERRORS[code]}")


def _raise_row_error(pb: Problem, block: np.ndarray, row0: int, err) -> None:
    raise_row_error(
        block, err, lambda r: f"pred_probs row {row0 + int(r)}", lambda r, c: f"pred_probs[{row0 + int(r)}, {c}]"
    )


def _bounds(pb: Problem):
    return PROB_LOW, PROB_HIGH, row_sum_tolerance(pb.dtype)


def validate(pb: Problem) -> None:
    """Check every value (one pass); skipped if a row pass already did."""
    if pb.validated:
        return
    lo, hi, tol = _bounds(pb)
    for row0, block in pb.probs.blocks():
        y = pb.labels[row0 : row0 + len(block)]
        _raise_row_error(pb, block, row0, core().validate(block, y, lo, hi, tol, pb.nthreads))
    pb.validated = True


def given_probs(pb: Problem) -> np.ndarray:
    """g[i] = P[i, y_i] in the input dtype."""
    g = np.empty(pb.n, dtype=pb.dtype)
    for row0, block in pb.probs.blocks():
        m = len(block)
        core().gather_given(block, pb.labels[row0 : row0 + m], g[row0 : row0 + m], pb.nthreads)
    return g


def thresholds_from_given(pb: Problem, g: np.ndarray) -> np.ndarray:
    """Per-class mean of g in index order, as the reference builds it.

    All classes present: an array of the input dtype. A class absent: 2 for
    it, and the whole vector becomes float64 (the reference's promotion).
    Then clipped below at 2e-6 (a Python float: weak, stays in the dtype).
    """
    means, counts = core().class_means(g, pb.labels, pb.k, pb.nthreads)
    present = counts > 0
    if present.all():
        t = means.astype(pb.dtype)
    else:
        t = np.where(present, means, 2.0)
    return np.clip(t, a_min=2e-6, a_max=None)


def cut_from_thresholds(thresholds, k: int, input_dtype=np.float64) -> np.ndarray:
    """thresholds - 1e-6 in the thresholds' dtype, as the kernel compares it.

    For float16/float32 inputs the cut is returned as float32 (the kernel then
    compares in float, vectorised): each value is the smallest float32 that is
    >= the cut, so for every float32 (or float16) value v, ``v >= c32`` holds
    exactly when ``float64(v) >= cut`` -- the comparison the reference makes,
    also after its float64 promotion of the thresholds. For float64 inputs the
    cut is float64.
    """
    t = np.asarray(thresholds)
    if t.dtype.kind not in "fiub":
        t = t.astype(np.float64)
    if t.shape != (k,):
        raise ValueError(f"thresholds must have shape ({k},), got {t.shape}")
    cut = t - 1e-6
    if cut.dtype.kind != "f" or cut.dtype.itemsize > 8:
        cut = cut.astype(np.float64)
    cut = np.ascontiguousarray(cut, dtype=np.float64)
    if np.isnan(cut).any():
        raise ValueError(f"thresholds[{int(np.flatnonzero(np.isnan(cut))[0])}] is NaN")
    if np.dtype(input_dtype).itemsize <= 4:
        return ceil_to_float32(cut)
    return cut


def ceil_to_float32(x: np.ndarray) -> np.ndarray:
    """The smallest float32 >= each float64 value (exact: no value in between)."""
    with np.errstate(over="ignore"):
        c = x.astype(np.float32)
    below = c.astype(np.float64) < x
    c[below] = np.nextafter(c[below], np.float32(np.inf))
    return c


@dataclass
class RowPass:
    guess: np.ndarray | None = None  # int32, -1 = not confidently counted
    argmax: np.ndarray | None = None  # int32
    keep: np.ndarray | None = None  # bool: given label is the (1e-6-nudged) argmax
    max_other: np.ndarray | None = None  # float64 (exact input-dtype values)


def row_pass(pb: Problem, cut=None, *, argmax=False, keep=False, max_other=False) -> RowPass:
    n = pb.n
    out = RowPass(
        guess=np.empty(n, np.int32) if cut is not None else None,
        argmax=np.empty(n, np.int32) if argmax else None,
        keep=np.empty(n, np.uint8) if keep else None,
        max_other=np.empty(n, np.float64) if max_other else None,
    )
    lo, hi, tol = _bounds(pb)
    for row0, block in pb.probs.blocks():
        m = len(block)
        sl = slice(row0, row0 + m)
        err = core().row_pass(
            block,
            pb.labels[sl],
            cut,
            None if out.guess is None else out.guess[sl],
            None if out.argmax is None else out.argmax[sl],
            None if out.keep is None else out.keep[sl],
            None if out.max_other is None else out.max_other[sl],
            lo,
            hi,
            tol,
            pb.nthreads,
        )
        _raise_row_error(pb, block, row0, err)
    pb.validated = True
    if out.keep is not None:
        out.keep = out.keep.view(bool)
    return out


def confident_joint_from_guesses(pb: Problem, guess: np.ndarray):
    """(raw confident joint with diagonal >= 1, ascending off-diagonal indices)."""
    k = pb.k
    counted = guess >= 0
    y = pb.labels
    if counted.any():
        # Built as [true, given] and transposed: the reference's matrix is a
        # transposed (Fortran-ordered) view too, and the float sums of the
        # calibration follow the memory layout.
        flat = guess[counted].astype(np.int64) * k + y[counted]
        cj = np.bincount(flat, minlength=k * k).astype(np.int64).reshape(k, k).T
    else:
        cj = np.zeros((k, k), dtype=np.int64)
    np.fill_diagonal(cj, np.maximum(cj.diagonal(), 1))
    off = np.flatnonzero(counted & (guess != y))
    return cj, off


def confident_pass(pb: Problem, thresholds=None, *, argmax=False, keep=False, max_other=False):
    """Thresholds (computed unless given), then the row pass with guesses."""
    g = None
    if thresholds is None:
        g = given_probs(pb)
        if not np.isfinite(g).all():
            validate(pb)  # raises, naming the first invalid row and column
        thresholds = thresholds_from_given(pb, g)
    cut = cut_from_thresholds(thresholds, pb.k, pb.dtype)
    rp = row_pass(pb, cut, argmax=argmax, keep=keep, max_other=max_other)
    cj, off = confident_joint_from_guesses(pb, rp.guess)
    return g, thresholds, rp, cj, off


def check_square(matrix, k: int, what: str) -> np.ndarray:
    m = np.asarray(matrix)
    if m.shape != (k, k):
        raise ValueError(f"{what} must have shape ({k}, {k}), got {m.shape}")
    if m.dtype.kind not in "iuf":
        raise TypeError(f"{what} must be numeric, got dtype {m.dtype}")
    if not np.isfinite(m).all():
        i, j = np.argwhere(~np.isfinite(m))[0]
        raise ValueError(f"{what}[{i}, {j}] is not finite")
    if (m < 0).any():
        i, j = np.argwhere(m < 0)[0]
        raise ValueError(f"{what}[{i}, {j}] = {m[i, j]} is negative")
    return m


# ---------------------------------------------------------------------------
# Selections of the prune methods
# ---------------------------------------------------------------------------
def _eligible(label_counts: np.ndarray, min_examples_per_class: int) -> np.ndarray:
    """Classes the prune methods may flag: more than m examples, and not singletons."""
    return (label_counts > min_examples_per_class) & (label_counts > 1)


def prune_by_class(pb: Problem, g: np.ndarray, pcm: np.ndarray, label_counts, min_examples_per_class) -> np.ndarray:
    """Per class k, the n_k - pcm[k, k] rows with the lowest P[:, k] (ties: lower index)."""
    num = (label_counts - np.diagonal(pcm)).astype(np.int64)
    num[~_eligible(label_counts, min_examples_per_class) | (num < 1)] = 0
    mask = np.zeros(pb.n, np.uint8)
    core().lowest_per_class(g.astype(np.float64), pb.labels, pb.k, num, mask, pb.nthreads)
    return mask.view(bool)


def margin_upper_bound(pb: Problem, g: np.ndarray, max_other: np.ndarray) -> np.ndarray:
    """max_{j != y} P[j] - P[y] per row, in the input dtype (as float64): every
    margin P[j] - P[y] of the row, rounded in the dtype, is <= it."""
    return (max_other.astype(pb.dtype) - g).astype(np.float64)


def prune_by_noise_rate(pb: Problem, pcm: np.ndarray, label_counts, min_examples_per_class,
                        ub: np.ndarray | None = None) -> np.ndarray:
    """Per class k and j != k, the pcm[j, k] rows with the largest P[:, j] - P[:, k].

    ``ub`` (from :func:`margin_upper_bound`) lets the sweep skip, without
    reading them, rows that cannot enter any selection of their class.
    """
    k = pb.k
    c = np.array(pcm, dtype=np.int64, copy=True)  # c[j, k]: true j, given k
    np.fill_diagonal(c, 0)
    c[:, ~_eligible(label_counts, min_examples_per_class)] = 0
    c[c < 0] = 0
    cols_by_class = c.T  # [given k, true j]
    ks, js = np.nonzero(cols_by_class)
    caps = cols_by_class[ks, js]
    offsets = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(ks, minlength=k), out=offsets[1:])
    mask = np.zeros(pb.n, np.uint8)
    if len(ks) == 0:
        return mask.view(bool)
    sel = core().TopCSelector(pb.n, k, offsets.tolist(), js.tolist(), caps.tolist(), label_counts.tolist())
    for row0, block in pb.probs.blocks():
        m = len(block)
        sel.feed(block, pb.labels[row0 : row0 + m], row0, pb.nthreads, None if ub is None else ub[row0 : row0 + m])
    sel.finish(mask)
    return mask.view(bool)


# ---------------------------------------------------------------------------
# Label quality scores
# ---------------------------------------------------------------------------


def _rows_op(pb: Problem, rows, fn, *outs):
    """Run fn(block, local_rows, labels_block, *out_slices) over all rows or sorted global `rows`."""
    if rows is None:
        for row0, block in pb.probs.blocks():
            m = len(block)
            fn(block, None, pb.labels[row0 : row0 + m], *(o[row0 : row0 + m] for o in outs))
    else:
        for pos, block, local in pb.probs.rows(rows):
            tmp = [np.empty(len(pos), o.dtype) for o in outs]
            labels_block = np.zeros(len(block), np.int64)
            labels_block[local] = pb.labels[rows[pos]]
            fn(block, np.ascontiguousarray(local, np.int64), labels_block, *tmp)
            for o, t in zip(outs, tmp):
                o[pos] = t


def quality_scores(pb: Problem, method: str, *, adjust_pred_probs=False, rows=None, g=None, max_other=None,
                   thresholds=None) -> np.ndarray:
    """Scores of cleanlab's get_label_quality_scores, for all rows or sorted `rows`."""
    if method not in SCORE_METHODS:
        raise ValueError(f"{method!r} is not a valid scoring method; choose one of {', '.join(SCORE_METHODS)}")
    if adjust_pred_probs and method == "confidence_weighted_entropy":
        raise ValueError(f"adjust_pred_probs is not currently supported for {method}.")
    if not (method == "normalized_margin" and not adjust_pred_probs and max_other is None and rows is None):
        validate(pb)  # (the max-other sweep below validates as it reads)
    sel = slice(None) if rows is None else rows
    m = pb.n if rows is None else len(rows)
    if adjust_pred_probs:
        if g is None:
            g = given_probs(pb)
        t = thresholds if thresholds is not None else thresholds_from_given(pb, g)
        t = np.asarray(t)
        a_dtype = np.result_type(pb.dtype, t.dtype)
        sc = np.empty(m, np.float64)
        mo = np.empty(m, np.float64)
        t64 = np.ascontiguousarray(t, dtype=np.float64)
        t_is_f64 = a_dtype == np.float64
        _rows_op(
            pb,
            rows,
            lambda b, r, y, s_, o_: core().adjusted_rows(b, y, t64, bool(t_is_f64), r, s_, o_, pb.nthreads),
            sc,
            mo,
        )
        sc = sc.astype(a_dtype)
        if method == "self_confidence":
            return sc
        return (sc - mo.astype(a_dtype) + 1) / 2
    if g is None:
        g = given_probs(pb) if rows is None else _given_rows(pb, rows)
        gs = g
    else:
        gs = g[sel]
    if method == "self_confidence":
        return np.array(gs, copy=True)
    if method == "normalized_margin":
        if max_other is not None:
            mo = max_other[sel]
        elif rows is None:
            mo = row_pass(pb, max_other=True).max_other  # validates as it sweeps
        else:
            mo = np.empty(m, np.float64)
            _rows_op(pb, rows, lambda b, r, y, o_: _max_other_rows(pb, b, r, y, o_), mo)
        return (gs - mo.astype(pb.dtype) + 1) / 2
    # confidence_weighted_entropy
    xs = np.empty(m, np.float64)
    _rows_op(pb, rows, lambda b, r, y, o_: core().xlogx_rows(b, r, o_, pb.nthreads), xs)
    xs = xs.astype(np.float32 if pb.dtype == np.float32 else np.float64)
    entropy = -xs / np.log(pb.k)
    sc = np.clip(gs, a_min=1e-6, a_max=None)
    x = entropy / sc
    clipped = np.clip(x, a_min=1e-6, a_max=None)
    return np.log(x + 1) / clipped


def _given_rows(pb: Problem, rows) -> np.ndarray:
    out = np.empty(len(rows), pb.dtype)
    for pos, block, local in pb.probs.rows(rows):
        out[pos] = block[local, pb.labels[rows[pos]]]
    return out


def _max_other_rows(pb, block, rows, y, out):
    """max over the other classes for the requested rows of a block (already validated)."""
    lo, hi, tol = _bounds(pb)
    sub = np.asarray(block[rows], dtype=pb.dtype)
    err = core().row_pass(sub, np.ascontiguousarray(y[rows]), None, None, None, None, out, lo, hi, tol, pb.nthreads)
    raise_row_error(sub, err, lambda r: "a selected pred_probs row", lambda r, c: f"a selected pred_probs row, column {c},")


def order_by_scores(idx: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """idx ordered by ascending score; ties keep the lower index first."""
    return idx[np.argsort(scores, kind="stable")]


__all__ = [
    "Problem",
    "prepare",
    "validate",
    "given_probs",
    "thresholds_from_given",
    "cut_from_thresholds",
    "row_pass",
    "confident_pass",
    "confident_joint_from_guesses",
    "check_square",
    "prune_by_class",
    "prune_by_noise_rate",
    "quality_scores",
    "order_by_scores",
]
