"""Passes over the probabilities: each a loop over ``Probs.blocks()`` calling
one C++ kernel (``labelsift._core``).

* :func:`given_probs`  reads P[i, y_i] (one value a row);
* :func:`row_pass`     one sweep over every value: validation, confident
                       guesses, argmax, the unflagging test, max over the
                       other classes;
* :func:`validate`     the same sweep, validation only;
* :func:`prune_by_noise_rate` one sweep reading, for each row, only the
                       columns its class still has to prune (and
                       :func:`prune_by_class`, on the given-label values).

Also the K x K steps that round (:func:`calibrate`, :func:`prune_counts`:
the NumPy algebra of :mod:`.latent` with the C++ rounding kernel) and the
thresholds. Results do not depend on the thread count, the block size or how
the rows are split into shards.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._common.arrays import PROB_HIGH, PROB_LOW, OverProbs, Probs, as_labels, as_probs, check_kxk_memory, row_sum_tolerance
from .._common.backend import core, threads
from .._common.checks import raise_row_error
from .._common.cuda_arrays import is_cuda_array
from .._common.trace import stage
from . import latent
from .rules import active_pairs, confident_joint_from_guesses, eligible


@dataclass
class Problem(OverProbs):
    """A validated (labels, probabilities, threads) triple: what every pass reads."""

    labels: np.ndarray  # int64 (N,)
    probs: Probs
    nthreads: int
    validated: bool = False

    @property
    def on_device(self) -> bool:
        """Whether pred_probs lives on a CUDA device (the passes of .device run)."""
        return getattr(self.probs, "device", "cpu") != "cpu"

    def label_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.k).astype(np.int64)

    def bounds(self):
        """(lowest, highest accepted value, row-sum tolerance) for the kernels."""
        return PROB_LOW, PROB_HIGH, row_sum_tolerance(self.dtype)

    def raise_row_error(self, block: np.ndarray, row0: int, err) -> None:
        """The error for a kernel's report on a block starting at global row ``row0``."""
        raise_row_error(block, err, lambda r: f"pred_probs row {row0 + int(r)}",
                        lambda r, c: f"pred_probs[{row0 + int(r)}, {c}]", row_sum_tolerance(self.dtype))


def prepare(labels, pred_probs, n_jobs=None, *, labels_optional=False, device_ok=False) -> Problem:
    """Wrap the inputs (the conversion point) into a :class:`Problem`
    (``labels_optional``: None stands for all-zero labels, for a call that
    only validates pred_probs). ``device_ok``: the caller has a CUDA path, so
    a CUDA pred_probs stays on its device (labels may then be a CUDA array
    too: they are copied to the host and validated there); elsewhere CUDA
    arrays get the TypeError of ``arrays.host_array``."""
    with stage("prepare"):
        if device_ok and is_cuda_array(pred_probs):
            from .device import DeviceProbs
            probs = DeviceProbs.of(pred_probs)
            if labels is not None and is_cuda_array(labels):
                labels = probs.labels_to_host(labels)
        else:
            probs = as_probs(pred_probs)
        if labels is None and labels_optional:
            labels = np.zeros(probs.n, np.int64)
        y = as_labels(labels, probs.n, probs.k)
        return Problem(y, probs, threads(n_jobs))


def validate(pb: Problem) -> None:
    """Check every value (one pass); skipped if a row pass already did."""
    if pb.validated:
        return
    if pb.on_device:
        from . import device
        return device.validate(pb)
    with stage("validate"):
        lo, hi, tol = pb.bounds()
        for row0, block in pb.probs.blocks():
            y = pb.labels[row0 : row0 + len(block)]
            pb.raise_row_error(block, row0, core().validate(block, y, lo, hi, tol, pb.nthreads))
    pb.validated = True


def given_probs(pb: Problem) -> np.ndarray:
    """g[i] = P[i, y_i] in the input dtype."""
    if pb.on_device:
        from . import device
        return device.given_probs(pb)
    with stage("given_probs"):
        g = np.empty(pb.n, dtype=pb.dtype)
        for row0, block in pb.probs.blocks():
            m = len(block)
            core().gather_given(block, pb.labels[row0 : row0 + m], g[row0 : row0 + m], pb.nthreads)
        return g


def thresholds_from_given(g: np.ndarray, labels: np.ndarray, k: int, nthreads: int = 0) -> np.ndarray:
    """Per-class mean of g (in g's dtype) in index order, as the reference builds it.

    All classes present: an array of g's dtype. A class absent: 2 for it, and
    the whole vector becomes float64 (the reference's promotion). Then
    clipped below at 2e-6 (a Python float: weak, stays in the dtype).
    """
    with stage("thresholds"):
        means, counts = core().class_means(g, labels, k, nthreads)
        present = counts > 0
        t = means.astype(g.dtype) if present.all() else np.where(present, means, 2.0)
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
    if isinstance(thresholds, (str, bytes, dict, set)):
        raise TypeError(f"thresholds must be an array of {k} numbers, got {type(thresholds).__name__}")
    try:
        t = np.asarray(thresholds)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"thresholds must be an array of {k} numbers ({exc})") from None
    if t.dtype.kind not in "fiu":
        raise TypeError(f"thresholds must hold real numbers (one per class), got dtype {t.dtype}")
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
    """The one sweep over every value (validating it), with the outputs asked for."""
    if pb.on_device:
        from . import device
        return device.row_pass(pb, cut, argmax=argmax, keep=keep, max_other=max_other)
    n = pb.n
    out = RowPass(
        guess=np.empty(n, np.int32) if cut is not None else None,
        argmax=np.empty(n, np.int32) if argmax else None,
        keep=np.empty(n, np.uint8) if keep else None,
        max_other=np.empty(n, np.float64) if max_other else None,
    )
    lo, hi, tol = pb.bounds()
    with stage("row_pass"):
        for row0, block in pb.probs.blocks():
            sl = slice(row0, row0 + len(block))
            outs = [None if o is None else o[sl] for o in (out.guess, out.argmax, out.keep, out.max_other)]
            err = core().row_pass(block, pb.labels[sl], cut, *outs, lo, hi, tol, pb.nthreads)
            pb.raise_row_error(block, row0, err)
    pb.validated = True
    if out.keep is not None:
        out.keep = out.keep.view(bool)
    return out


def confident_pass(pb: Problem, thresholds=None, *, argmax=False, keep=False, max_other=False):
    """Thresholds (computed unless given), then the row pass with guesses.

    Returns (g or None, thresholds, RowPass, raw confident joint, ascending
    off-diagonal rows).
    """
    if pb.on_device:
        from . import device
        return device.confident_pass(pb, thresholds, argmax=argmax, keep=keep, max_other=max_other)
    g = None
    check_kxk_memory(pb.k)
    if thresholds is None:
        g = given_probs(pb)
        if not np.isfinite(g).all():
            validate(pb)  # raises, naming the first invalid row and column
        thresholds = thresholds_from_given(g, pb.labels, pb.k, pb.nthreads)
    cut = cut_from_thresholds(thresholds, pb.k, pb.dtype)
    rp = row_pass(pb, cut, argmax=argmax, keep=keep, max_other=max_other)
    with stage("confident_joint"):
        cj, off = confident_joint_from_guesses(pb.labels, rp.guess, pb.k)
    return g, thresholds, rp, cj, off


def row_rounding(ties: str):
    """The K x K row rounding of a tie rule: the C++ ``round_rows`` kernel for
    ``"lower_index"``; for ``"cleanlab"`` cleanlab's own NumPy calls on the
    same floats (:func:`.latent.round_preserving_row_totals`), since its
    choice among equal residuals is whatever NumPy's unstable sort returns."""
    if ties == "cleanlab":
        return lambda matrix: latent.round_preserving_row_totals(matrix, "cleanlab")
    return lambda matrix: core().round_rows(np.ascontiguousarray(matrix, dtype=float))


def calibrate(confident_joint, label_counts, ties: str) -> np.ndarray:
    """:func:`.latent.calibrate_confident_joint` with the row rounding of ``ties``."""
    with stage("calibrate"):
        return latent.calibrate_confident_joint(confident_joint, label_counts, round_rows=row_rounding(ties))


def prune_counts(prune_count_matrix, min_examples_per_class: int, ties: str, frac_noise=1.0) -> np.ndarray:
    """:func:`.latent.keep_at_least_n_per_class` with the row rounding of ``ties``."""
    with stage("prune_counts"):
        return latent.keep_at_least_n_per_class(prune_count_matrix, min_examples_per_class, frac_noise,
                                                round_rows=row_rounding(ties))


# ---------------------------------------------------------------------------
# The selections of the prune methods (ties go to the lower row index)
# ---------------------------------------------------------------------------
def prune_by_class(pb: Problem, g: np.ndarray, pcm: np.ndarray, label_counts, min_examples_per_class,
                   ties: str) -> np.ndarray:
    """Per class k, the n_k - pcm[k, k] rows with the lowest P[:, k].

    The kernel picks by (value, lower index) and reports the classes where
    equal values straddle the cut; with ``ties="cleanlab"`` those classes are
    redone with cleanlab's own call (:func:`_cleanlab_lowest`).
    """
    with stage("prune_by_class"):
        num = (label_counts - np.diagonal(pcm)).astype(np.int64)
        num[~eligible(label_counts, min_examples_per_class) | (num < 1)] = 0
        mask = np.zeros(pb.n, np.uint8)
        tied = np.zeros(pb.k, np.uint8) if ties == "cleanlab" else None
        core().lowest_per_class(g.astype(np.float64), pb.labels, pb.k, num, mask, pb.nthreads, tied)
        mask = mask.view(bool)
        for k in np.flatnonzero(tied) if tied is not None else ():
            rows = np.flatnonzero(pb.labels == k)
            mask[rows] = False
            mask[rows[np.argsort(g[rows])[: num[k]]]] = True  # cleanlab: argsort(pred_probs[labels == k][:, k])
        return mask


def margin_upper_bound(pb: Problem, g: np.ndarray, max_other: np.ndarray) -> np.ndarray:
    """max_{j != y} P[j] - P[y] per row, in the input dtype (as float64): every
    margin P[j] - P[y] of the row, rounded in the dtype, is <= it."""
    return (max_other.astype(pb.dtype) - g).astype(np.float64)


def prune_by_noise_rate(pb: Problem, pcm: np.ndarray, label_counts, min_examples_per_class, ties: str,
                        ub: np.ndarray | None = None) -> np.ndarray:
    """Per class k and j != k, the pcm[j, k] rows with the largest P[:, j] - P[:, k].

    ``ub`` (from :func:`margin_upper_bound`) lets the sweep skip, without
    reading them, rows that cannot enter any selection of their class. The
    kernel picks by (margin, lower index) and reports the (k, j) selections
    where equal margins straddle the cut; with ``ties="cleanlab"`` those are
    redone with cleanlab's own call (:func:`_cleanlab_largest_margins`).
    """
    if pb.on_device:
        from . import device
        return device.prune_by_noise_rate(pb, pcm, label_counts, min_examples_per_class, ties, ub)
    _, ks, js, caps = active_pairs(pcm, label_counts, min_examples_per_class)
    mask = np.zeros(pb.n, np.uint8)
    if len(ks) == 0:
        return mask.view(bool)
    with stage("prune_by_noise_rate"):
        offsets = np.zeros(pb.k + 1, dtype=np.int64)
        np.cumsum(np.bincount(ks, minlength=pb.k), out=offsets[1:])
        sel = core().TopCSelector(pb.n, pb.k, offsets.tolist(), js.tolist(), caps.tolist(), label_counts.tolist())
        for row0, block in pb.probs.blocks():
            m = len(block)
            sel.feed(block, pb.labels[row0 : row0 + m], row0, pb.nthreads,
                     None if ub is None else ub[row0 : row0 + m])
        tied = np.zeros(len(ks), np.uint8) if ties == "cleanlab" else None
        sel.finish(mask, tied)  # tied selections are left out of the mask
        mask = mask.view(bool)
        if tied is not None and tied.any():
            _cleanlab_largest_margins(pb, ks[tied.view(bool)], js[tied.view(bool)], caps[tied.view(bool)], mask)
    return mask


def _cleanlab_largest_margins(pb: Problem, ks, js, caps, mask) -> None:
    """Flag, for each (k, j, c), the c rows cleanlab flags: the rows of class
    k in index order, margin P[:, j] - P[:, k] in the input dtype, and the
    first c of ``np.argsort(-margin)`` (NumPy's default sort, as cleanlab
    calls it). Reads only those rows' two columns."""
    for k in np.unique(ks):
        rows = np.flatnonzero(pb.labels == k)
        sub = ks == k
        cols = np.concatenate([[k], js[sub]])
        vals = np.empty((len(rows), len(cols)), pb.dtype)
        for pos, block, local in pb.probs.rows(rows):
            vals[pos] = np.asarray(block[np.ix_(local, cols)], dtype=pb.dtype)
        for t, (j, c) in enumerate(zip(js[sub], caps[sub])):
            margin = vals[:, 1 + t] - vals[:, 0]
            mask[rows[np.argsort(-margin)[:c]]] = True
