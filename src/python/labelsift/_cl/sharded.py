"""Confident learning over row shards held by different workers, exactly.

The plan of :mod:`.find` / :mod:`.counts` split into per-shard steps (run
where a shard lives: a torch.distributed rank, a Dask chunk task) and
exchanges between them (run by an *executor*, :class:`Executor`). Nothing
O(N x K) ever travels; every result equals the single-process call's:

1. per shard: validation of the labels, P[i, y_i] (``g``).
   exchange: every shard's (g, labels) in shard order -- O(N) -- so that
   each worker computes the thresholds with the same per-class pairwise
   sums as one process over the concatenated rows (bit for bit), and the
   class counts.
2. per shard: the row pass with those thresholds (confident guesses, the
   unflagging test, argmax, max over the other classes).
   exchange: the raw K x K counts (integers: any order gives the same sum),
   the off-diagonal rows; the calibration and the prune counts are then the
   same K x K NumPy algebra everywhere.
3. per shard, prune by noise rate: for every selection (given k, true j,
   count c) the shard's c + 1 best rows by (margin desc, row asc), with
   their margins. exchange: those candidates (O(flagged) rows); the global
   c best of their union are the single process's c best -- a shard's rows
   in the global selection are among its own c best -- and the (c+1)-th
   tells whether equal margins straddle the cut.
4. only for such a tied selection with ``ties="cleanlab"``: the margins of
   every row of class k (O(N_k)), in row order, and cleanlab's own
   ``np.argsort(-margin)[:c]`` on them, as the single process does.

Prune by class and the ``low_*`` rankings work on O(N) per-row values
gathered the same way (g, the scores). Index outputs are global row numbers,
the same on every worker (the single process's arrays); masks and scores are
per shard.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._common import params
from .._common.arrays import Probs, as_2d, as_counts, as_labels, as_probs, check_kxk_memory, kernel_dtype
from .._common.backend import core, threads
from .._common.cuda_arrays import is_cuda_array
from .._common.cuda_arrays import parse as parse_device
from .._common.names import ESTIMATION_METHODS, PRUNE_METHODS
from .._common.options import resolve_ties
from . import latent
from .passes import (Problem, calibrate, cut_from_thresholds, given_probs, margin_upper_bound, prune_by_class,
                     prune_counts, row_pass, thresholds_from_given, validate)
from .rules import active_pairs
from .scores import argsort, check_method, quality_scores, score_kwargs


# ---------------------------------------------------------------------------
# One shard
# ---------------------------------------------------------------------------
@dataclass
class ShardProblem(Problem):
    """A :class:`Problem` over rows [offset, offset + n) of the whole: its
    errors name global rows."""

    offset: int = 0

    def raise_row_error(self, block, row0, err) -> None:
        Problem.raise_row_error(self, block, self.offset + row0, err)


def _device_shard(labels, pred_probs):
    """(labels, probabilities) of a shard whose rows are a CUDA array: they stay
    on the device (the passes of :mod:`.device` read them; the paths without
    a kernel read bounded host copies, :class:`.device.StreamedDeviceProbs`);
    CUDA labels come to the host (O(n)). An empty CUDA shard becomes an
    empty host array (there is nothing to read on the device)."""
    a = parse_device(pred_probs, "pred_probs")
    if a.ndim == 2 and a.shape[0] == 0:
        if is_cuda_array(labels):
            la = parse_device(labels, "labels")
            if la.size == 0:
                labels = np.empty(la.shape, la.dtype)
        return labels, np.empty(a.shape, a.dtype)
    from .device import StreamedDeviceProbs
    probs = StreamedDeviceProbs.of(pred_probs)
    if is_cuda_array(labels):
        labels = probs.labels_to_host(labels)
    return labels, probs


def open_shard(labels, pred_probs, offset: int, n_jobs=None) -> ShardProblem:
    """The checked local rows (an empty shard is allowed: a (0, K) array).
    ``pred_probs`` may be a CUDA array (``__cuda_array_interface__`` or CUDA
    DLPack: torch, CuPy, ...): see :func:`_device_shard`."""
    on_device = None
    if is_cuda_array(pred_probs):
        labels, pred_probs = _device_shard(labels, pred_probs)
        if not isinstance(pred_probs, np.ndarray):
            on_device = pred_probs
    if on_device is not None:
        probs = on_device
    elif isinstance(pred_probs, np.ndarray) and pred_probs.ndim == 2 and len(pred_probs) == 0:
        a = as_2d(pred_probs)
        if a.shape[1] < 2:
            raise ValueError(f"pred_probs has {a.shape[1]} column(s); confident learning needs at least 2 classes")
        probs = Probs([a], 0, a.shape[1], kernel_dtype(a.dtype))
    else:
        probs = as_probs(pred_probs)
    y = as_labels(labels, probs.n, probs.k, row_name=lambda i: f"labels[{offset + i}]")
    return ShardProblem(y, probs, threads(n_jobs), offset=int(offset))


def describe(sh: ShardProblem):
    return sh.n, sh.k, str(sh.dtype)


def step_given(sh: ShardProblem):
    """(g, labels in the narrowest integer type that holds K classes, all finite) of the shard."""
    g = given_probs(sh)
    small = np.uint8 if sh.k <= 256 else np.uint16 if sh.k <= 65536 else np.int64
    return g, sh.labels.astype(small), bool(np.isfinite(g).all())


def step_validate(sh: ShardProblem):
    validate(sh)
    return None


@dataclass
class Rows:
    """What the row pass of a shard leaves: counts to exchange, per-row results to keep."""

    offset: int
    counts: np.ndarray  # int64 K*K [true * K + given] (raw, diagonal not raised)
    off: np.ndarray     # global off-diagonal rows (ascending)
    keep: np.ndarray
    argmax: np.ndarray | None
    max_other: np.ndarray | None
    g: np.ndarray | None = None

    def unkept_off(self) -> int:
        """Off-diagonal rows that fail the unflagging test (cleanlab's off_diagonal count)."""
        return int(np.count_nonzero(~self.keep[self.off - self.offset]))


def step_rows(sh: ShardProblem, cut, want_argmax: bool, want_margin: bool) -> Rows:
    """The row pass with the global thresholds' cut (validates every value)."""
    rp = row_pass(sh, cut, argmax=want_argmax, keep=True, max_other=want_margin)
    counted = rp.guess >= 0
    flat = rp.guess[counted].astype(np.int64) * sh.k + sh.labels[counted]
    counts = np.bincount(flat, minlength=sh.k * sh.k).astype(np.int64)
    off = np.flatnonzero(counted & (rp.guess != sh.labels)) + sh.offset
    return Rows(sh.offset, counts, off, rp.keep, rp.argmax, rp.max_other)


def step_rows_given(sh: ShardProblem, given, cut, want_argmax: bool, want_margin: bool) -> Rows:
    """:func:`step_rows`, keeping the shard's P[i, y_i] that :func:`step_given`
    already read (its result ``given``), instead of a second sweep for them."""
    rws = step_rows(sh, cut, want_argmax, want_margin)
    rws.g = given[0]
    return rws


def joint_from_counts(counts: np.ndarray, k: int) -> np.ndarray:
    """The raw confident joint of summed counts, laid out as the single process's."""
    cj = np.asarray(counts, dtype=np.int64).reshape(k, k).T
    np.fill_diagonal(cj, np.maximum(cj.diagonal(), 1))
    return cj


def _class_margins(sh: ShardProblem, k: int, js: np.ndarray):
    """(rows of class k in the shard, margins P[:, j] - P[:, k] in the input dtype, one column per j)."""
    rows = np.flatnonzero(sh.labels == k)
    cols = np.concatenate([[k], js]).astype(np.int64)
    vals = np.empty((len(rows), len(cols)), sh.dtype)
    for pos, block, local in sh.probs.rows(rows):
        vals[pos] = np.asarray(block[np.ix_(local, cols)], dtype=sh.dtype)
    return rows, vals[:, 1:] - vals[:, :1]


def step_candidates(sh: ShardProblem, rws: Rows, ks, js, caps):
    """Per selection t = (ks[t], js[t], caps[t]): the shard's caps[t] + 1 best
    rows by (margin desc, row asc), best first -- the single process's
    selection kernel (``TopCSelector``) on the shard's rows -- as three flat
    arrays (candidates per selection, global rows, margins in the dtype), one
    message however many selections there are."""
    k = sh.k
    offsets = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(ks, minlength=k), out=offsets[1:])
    counts = np.bincount(sh.labels, minlength=k).astype(np.int64)
    sel = core().TopCSelector(sh.n, k, offsets.tolist(), js.tolist(), (np.asarray(caps) + 1).tolist(),
                              counts.tolist())
    ub = margin_upper_bound(sh, rws.g, rws.max_other) if rws.max_other is not None else None
    for row0, block in sh.probs.blocks():
        m = len(block)
        sel.feed(block, sh.labels[row0 : row0 + m], row0, sh.nthreads, None if ub is None else ub[row0 : row0 + m])
    sizes, keys, rows = sel.kept()
    order = np.lexsort((rows, -keys, np.repeat(np.arange(len(sizes)), sizes)))
    return sizes, rows[order] + sh.offset, keys[order].astype(sh.dtype)  # (margins are values of the dtype)


def step_tied_margins(sh: ShardProblem, ks, js):
    """Per tied selection (k, j): the margins of every row of class k in the shard, in row order."""
    out = []
    for k, j in zip(ks, js):
        rows, m = _class_margins(sh, int(k), np.array([j]))
        out.append((rows + sh.offset, m[:, 0]))
    return out


def step_scores(sh: ShardProblem, rws: Rows | None, method, adjust, thresholds, rows=None):
    """Label quality scores of the shard's rows (all, or sorted global ``rows``)."""
    local = None if rows is None else np.asarray(rows, np.int64) - sh.offset
    g = rws.g if rws is not None else None
    mo = rws.max_other if rws is not None else None
    return quality_scores(sh, method, adjust_pred_probs=adjust, rows=local, g=g, max_other=mo,
                          thresholds=thresholds)


def step_mask(sh: ShardProblem, flagged: np.ndarray) -> np.ndarray:
    """The shard's slice of a global flagged-row list, as a mask."""
    mask = np.zeros(sh.n, bool)
    mask[_in_shard(sh, flagged) - sh.offset] = True
    return mask


def step_mask_kept(sh: ShardProblem, rws: Rows, flagged: np.ndarray) -> np.ndarray:
    """step_mask, less the rows that pass the unflagging test."""
    return step_mask(sh, flagged) & ~rws.keep


def step_flagged(sh: ShardProblem, mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask) + sh.offset


def _in_shard(sh: ShardProblem, rows) -> np.ndarray:
    """The sorted global ``rows`` that are the shard's."""
    f = np.asarray(rows, np.int64)
    lo, hi = np.searchsorted(f, [sh.offset, sh.offset + sh.n])
    return f[lo:hi]


def step_rank_scores(sh: ShardProblem, rws: Rows, flagged, method, adjust, thresholds):
    return step_scores(sh, rws, method, adjust, thresholds, _in_shard(sh, flagged))


# ---------------------------------------------------------------------------
# The exchanges, written once for every executor
# ---------------------------------------------------------------------------
# An executor runs per-shard steps and exchanges their results:
#
# * ``ex.shards``: the handle of the opened shards (ShardProblem each);
# * ``ex.each(fn, *args, per_shard=(h1, h2, ...))`` runs, for every shard s,
#   ``fn(h1[s], h2[s], ..., *args)`` and returns the handle of the results;
# * ``ex.gather(h, pick=None)``: every shard's result (``pick(result)``), in
#   shard order, on every worker. A step that raised on some shard raises
#   here, on every worker, the error of the first such shard (never a hang);
# * ``ex.sum_ints(h, pick)``: the sum over shards of int64 arrays.
#
# labelsift.distributed has one shard per rank (``each`` runs locally,
# ``gather`` is an all-gather); labelsift.dask one per row chunk (``each``
# builds tasks, ``gather`` computes them).

def capture(fn):
    """fn wrapped to return ("ok", value) or ("err", exception) instead of raising."""
    def run(*a):
        try:
            return ("ok", fn(*a))
        except (ValueError, TypeError, OverflowError, MemoryError, NotImplementedError) as exc:
            return ("err", exc)
    return run


def first_error(results):
    """Raise the first shard's captured error; else return the values."""
    for tag, v in results:
        if tag == "err":
            raise v
    return [v for _, v in results]


@dataclass
class Whole:
    """What every worker knows of all the rows."""

    n: int
    k: int
    dtype: np.dtype
    offsets: np.ndarray
    g: np.ndarray | None = None
    labels: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    label_counts: np.ndarray | None = None
    #: the handle of the shards' step_given results (exchange 1), for steps that reuse their g
    given: object = None


def place(ex) -> Whole:
    """Check that the shards agree (K, dtype) and place them."""
    shapes = ex.gather(ex.each(describe, per_shard=(ex.shards,)))
    ks = [k for _, k, _ in shapes]
    if len(set(ks)) != 1:
        raise ValueError(f"the shards have different numbers of columns: {ks}")
    dts = [d for _, _, d in shapes]
    if len(set(dts)) != 1:
        raise TypeError(f"the shards have different dtypes: {dts}")
    ns = np.array([n for n, _, _ in shapes], np.int64)
    if ns.sum() == 0:
        raise ValueError("pred_probs is empty (0 rows on every shard)")
    return Whole(int(ns.sum()), ks[0], np.dtype(dts[0]), np.concatenate([[0], np.cumsum(ns)]))


def given_and_thresholds(ex, w: Whole, thresholds=None) -> Whole:
    """Exchange 1: every row's (g, label), the class counts and the thresholds
    (computed as one process computes them, bit for bit, unless given)."""
    check_kxk_memory(w.k)
    w.given = ex.each(step_given, per_shard=(ex.shards,))
    got = ex.gather(w.given)  # (the Dask executor persists the chunks' results: step_rows_given reads them)
    w.g = np.concatenate([g for g, _, _ in got])
    w.labels = np.concatenate([y for _, y, _ in got]).astype(np.int64)
    if not all(ok for _, _, ok in got):
        ex.gather(ex.each(step_validate, per_shard=(ex.shards,)))  # raises, naming the first bad row
    w.label_counts = np.bincount(w.labels, minlength=w.k).astype(np.int64)
    w.thresholds = thresholds_from_given(w.g, w.labels, w.k) if thresholds is None else thresholds
    return w


def confident_rows(ex, w: Whole, *, argmax=False, margin=False, g=False, want_off=False):
    """Exchange 2: (handle of the shards' Rows, raw confident joint, global
    off-diagonal rows -- gathered only when asked for, else None). ``g``:
    the Rows keep the shard's P[i, y_i], those of exchange 1 (no new sweep)."""
    cut = cut_from_thresholds(w.thresholds, w.k, w.dtype)
    if g:
        rows = ex.each(step_rows_given, cut, argmax, margin, per_shard=(ex.shards, w.given))
    else:
        rows = ex.each(step_rows, cut, argmax, margin, per_shard=(ex.shards,))
    counts = ex.sum_ints(rows, lambda r: r.counts)
    off = np.concatenate(ex.gather(rows, lambda r: r.off)) if want_off else None
    return rows, joint_from_counts(counts, w.k), off


class _Global:
    """The attributes :func:`.passes.prune_by_class` reads, for the gathered rows."""

    def __init__(self, w: Whole):
        self.n, self.k, self.labels, self.nthreads = w.n, w.k, w.labels, threads(None)


def prune_noise_rate(ex, w: Whole, rws, pcm, min_examples, ties) -> np.ndarray:
    """Exchanges 3-4: the flagged global rows of prune by noise rate (ascending)."""
    _, ks, js, caps = active_pairs(pcm, w.label_counts, min_examples)
    if len(ks) == 0:
        return np.empty(0, np.int64)
    flats = ex.gather(ex.each(step_candidates, ks, js, caps, per_shard=(ex.shards, rws)))
    nsel = len(ks)
    sel = np.concatenate([np.repeat(np.arange(nsel), f[0]) for f in flats])
    rows = np.concatenate([f[1] for f in flats])
    ms = np.concatenate([f[2] for f in flats]).astype(np.float64)
    order = np.lexsort((rows, -ms, sel))  # per selection: margin desc, row asc
    sel, rows, ms = sel[order], rows[order], ms[order]
    counts = np.bincount(sel, minlength=nsel)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    caps = np.asarray(caps, np.int64)
    take = (np.arange(len(sel)) - first[sel]) < caps[sel]
    tied = np.zeros(nsel, bool)
    if ties == "cleanlab":  # equal margins straddle the cut: the c-th and (c+1)-th best are equal
        over = np.flatnonzero((counts > caps) & (caps > 0))
        tied[over] = ms[first[over] + caps[over] - 1] == ms[first[over] + caps[over]]
        take &= ~tied[sel]
    flagged = [rows[take]]
    tied = np.flatnonzero(tied)
    if len(tied):
        got = ex.gather(ex.each(step_tied_margins, ks[tied], js[tied], per_shard=(ex.shards,)))
        for u, t in enumerate(tied):
            rows = np.concatenate([p[u][0] for p in got])
            ms = np.concatenate([p[u][1] for p in got])
            flagged.append(rows[np.argsort(-ms)[: int(caps[t])]])  # cleanlab's call, on its array
    return np.unique(np.concatenate(flagged)) if flagged else np.empty(0, np.int64)


def find(ex, w: Whole, *, filter_by="prune_by_noise_rate", frac_noise=1.0, num_to_remove_per_class=None,
         min_examples_per_class=1, confident_joint=None, ties="cleanlab", rank_by=None, rank_by_kwargs=None):
    """find_label_issues over the shards (arguments already checked):
    (handle of the per-shard masks, ranked global rows or None)."""
    own_joint = confident_joint is None or filter_by == "confident_learning"
    # max over the other classes: for the margin score, and the prune sweep's bound on every margin of a row
    want_margin = filter_by in ("low_normalized_margin", "prune_by_noise_rate", "both") or rank_by == "normalized_margin"
    given_and_thresholds(ex, w)
    rows, cj_raw, _ = confident_rows(ex, w, argmax=filter_by == "predicted_neq_given", margin=want_margin, g=True)
    if filter_by in PRUNE_METHODS:
        cj = calibrate(cj_raw, w.label_counts, ties) if own_joint else confident_joint
        pcm = prune_counts(cj.T, min_examples_per_class, ties, frac_noise=frac_noise)
        if num_to_remove_per_class is not None:
            pcm = latent.prune_counts_for_num_to_remove(pcm, w.label_counts, num_to_remove_per_class)
        for kk in np.flatnonzero((w.label_counts <= min_examples_per_class) & (w.label_counts > 0)):
            warnings.warn(f"May not flag all label issues in class: {kk}, it has too few examples "
                          "(see argument: `min_examples_per_class`)", stacklevel=4)
        flagged = None
        if filter_by in ("prune_by_class", "both"):
            flagged = np.flatnonzero(prune_by_class(_Global(w), w.g, pcm, w.label_counts, min_examples_per_class,
                                                    ties))
        if filter_by in ("prune_by_noise_rate", "both"):
            by_rate = prune_noise_rate(ex, w, rows, pcm, min_examples_per_class, ties)
            flagged = by_rate if flagged is None else np.intersect1d(flagged, by_rate)
        masks = ex.each(step_mask_kept, flagged, per_shard=(ex.shards, rows))
    elif filter_by == "confident_learning":
        masks = ex.each(_off_diagonal_mask, per_shard=(ex.shards, rows))
    elif filter_by == "predicted_neq_given":
        masks = ex.each(_pred_neq_given, per_shard=(ex.shards, rows))
    else:  # low_self_confidence / low_normalized_margin
        num_errors = sum(ex.gather(rows, Rows.unkept_off))
        scores = ex.gather(ex.each(step_scores, filter_by[4:], False, None, per_shard=(ex.shards, rows)))
        flagged = np.sort(argsort(np.concatenate(scores), ties)[:num_errors])
        masks = ex.each(step_mask, flagged, per_shard=(ex.shards,))
    ranked = None
    if rank_by is not None:
        flagged = np.concatenate(ex.gather(ex.each(step_flagged, per_shard=(ex.shards, masks))))
        adjust = bool(dict(rank_by_kwargs or {}).get("adjust_pred_probs", False))
        scores = ex.gather(ex.each(step_rank_scores, flagged, rank_by, adjust, w.thresholds,
                                   per_shard=(ex.shards, rows)))
        ranked = flagged[argsort(np.concatenate(scores), ties)]
    return masks, ranked


def _off_diagonal_mask(sh: ShardProblem, r: Rows):
    mask = np.zeros(sh.n, bool)
    mask[r.off - sh.offset] = True
    return mask & ~r.keep


def _pred_neq_given(sh: ShardProblem, r: Rows):
    return (r.argmax != sh.labels) & ~r.keep


def joint(ex, w: Whole, *, thresholds=None, calibrate_=True, ties="cleanlab", want_off=False):
    """(confident joint calibrated or raw, global off-diagonal rows or None)."""
    given_and_thresholds(ex, w, thresholds)
    _, cj, off = confident_rows(ex, w, want_off=want_off)
    return (calibrate(cj, w.label_counts, ties) if calibrate_ else cj), off


def step_label_counts(sh: ShardProblem) -> np.ndarray:
    return np.bincount(sh.labels, minlength=sh.k).astype(np.int64)


def label_counts(ex, validate_probs=True) -> np.ndarray:
    """The class counts of all rows (after validating every value, unless told not to)."""
    if validate_probs:
        ex.gather(ex.each(step_validate, per_shard=(ex.shards,)), lambda _: None)
    return ex.sum_ints(ex.each(step_label_counts, per_shard=(ex.shards,)), lambda c: c)


def num_label_issues(ex, w: Whole, *, confident_joint=None, estimation_method="off_diagonal",
                     ties="cleanlab") -> int:
    if estimation_method == "off_diagonal_custom":
        counts = label_counts(ex)
        cj = confident_joint
    else:
        given_and_thresholds(ex, w)
        rows, cj, _ = confident_rows(ex, w)
        if estimation_method == "off_diagonal":
            return int(sum(ex.gather(rows, Rows.unkept_off)))
        counts = w.label_counts
    joint_ = latent.estimate_joint_from_calibrated(calibrate(cj, counts, ties))
    return int(np.rint((1.0 - joint_.trace()) * w.n))


def scores(ex, w: Whole, *, method="self_confidence", adjust_pred_probs=False):
    """The handle of per-shard label quality scores."""
    t = None
    if adjust_pred_probs:
        t = given_and_thresholds(ex, w).thresholds
    return ex.each(step_scores, None, method, adjust_pred_probs, t, per_shard=(ex.shards,))


class LocalExecutor:
    """All shards in this process, one after the other: the reference
    executor (tests, and a user holding a dump as separate arrays)."""

    def __init__(self, shards, n_jobs=None):
        """``shards``: a list of (labels, pred_probs) in row order."""
        offsets = np.concatenate([[0], np.cumsum([shard_rows(p) for _, p in shards])]).astype(np.int64)
        self.shards = [capture(open_shard)(y, p, int(o), n_jobs) for (y, p), o in zip(shards, offsets)]

    def each(self, fn, *args, per_shard=()):
        out = []
        for vals in zip(*per_shard):
            err = next((v for v in vals if v[0] == "err"), None)
            out.append(err if err is not None else capture(fn)(*(v[1] for v in vals), *args))
        return out

    def gather(self, h, pick=None):
        return first_error([v if v[0] == "err" or pick is None else capture(pick)(v[1]) for v in h])

    def sum_ints(self, h, pick):
        return np.sum(np.stack([np.asarray(v, np.int64) for v in self.gather(h, pick)]), axis=0)

    def local(self, h):
        return self.gather(h)


def shard_rows(p) -> int:
    """A shard's row count, read from the input without reading its values
    (errors are open_shard's, later)."""
    if isinstance(p, np.ndarray) and p.ndim == 2:
        return len(p)
    if is_cuda_array(p):
        a = parse_device(p, "pred_probs")
        if a.ndim != 2:
            raise ValueError(f"pred_probs must be 2-D (num_examples x num_classes), got shape {a.shape}")
        return int(a.shape[0])
    return as_probs(p).n



# ---------------------------------------------------------------------------
# The public functions of labelsift.distributed and labelsift.dask, once:
# ``opener()`` returns (executor, Whole) for the caller's rows, ``per_row(ex,
# handle, dtype)`` turns a per-shard result into the caller's per-row output
# (this rank's array; a Dask array), dtype None for "as the results have it".
# ---------------------------------------------------------------------------
def square(matrix, w: Whole, what: str) -> np.ndarray:
    m = as_counts(matrix, None, what)
    if m.shape[0] != w.k:
        raise ValueError(f"{what} is {m.shape[0]} x {m.shape[0]} but pred_probs has {w.k} columns")
    return m


def api_thresholds(opener) -> np.ndarray:
    ex, w = opener()
    given_and_thresholds(ex, w)
    ex.gather(ex.each(step_validate, per_shard=(ex.shards,)), lambda _: None)
    return w.thresholds


def api_confident_joint(opener, thresholds, calibrate_, return_indices_of_off_diagonals, ties):
    calibrate_ = params.flag(calibrate_, "calibrate")
    want_off = params.flag(return_indices_of_off_diagonals, "return_indices_of_off_diagonals")
    ex, w = opener()
    cj, off = joint(ex, w, thresholds=thresholds, calibrate_=calibrate_, ties=resolve_ties(ties), want_off=want_off)
    return (cj, off) if want_off else cj


def api_estimate_joint(opener, confident_joint, ties) -> np.ndarray:
    ex, w = opener()
    ties = resolve_ties(ties)
    if confident_joint is not None:
        cal = calibrate(square(confident_joint, w, "confident_joint"), label_counts(ex), ties)
    else:
        cal, _ = joint(ex, w, calibrate_=True, ties=ties)
    return latent.estimate_joint_from_calibrated(cal)


def api_latent(opener, thresholds, converge_latent_estimates, py_method, calibrate_, ties):
    if not isinstance(py_method, str) or py_method not in latent.PY_METHODS:
        raise ValueError(f"py_method {py_method!r} should be in {list(latent.PY_METHODS)}")
    converge_latent_estimates = params.flag(converge_latent_estimates, "converge_latent_estimates")
    calibrate_ = params.flag(calibrate_, "calibrate")
    ex, w = opener()
    cj, _ = joint(ex, w, thresholds=thresholds, calibrate_=calibrate_, ties=resolve_ties(ties))
    py, nm, inv = latent.estimate_latent(cj, w.label_counts, py_method, converge_latent_estimates)
    return py, nm, inv, cj


def api_num_label_issues(opener, confident_joint, estimation_method, ties) -> int:
    if not isinstance(estimation_method, str) or estimation_method not in ESTIMATION_METHODS:
        raise ValueError(f"{estimation_method!r} is not a valid estimation method; choose one of {ESTIMATION_METHODS}")
    if estimation_method == "off_diagonal_custom" and confident_joint is None:
        raise ValueError("estimation_method='off_diagonal_custom' needs a confident_joint")
    ex, w = opener()
    if estimation_method == "off_diagonal_custom":
        confident_joint = square(confident_joint, w, "confident_joint")
    return num_label_issues(ex, w, confident_joint=confident_joint, estimation_method=estimation_method,
                            ties=resolve_ties(ties))


def api_find(opener, per_row, *, return_indices_ranked_by, rank_by_kwargs, filter_by, frac_noise,
             num_to_remove_per_class, min_examples_per_class, confident_joint, ties):
    from .find import _check_args
    ties = resolve_ties(ties)
    frac_noise, min_examples_per_class = _check_args(
        filter_by, frac_noise, num_to_remove_per_class, min_examples_per_class, return_indices_ranked_by,
        confident_joint, False, None)
    rank_by_kwargs = score_kwargs(rank_by_kwargs, "rank_by_kwargs")
    ex, w = opener()
    cj = None
    if confident_joint is not None and filter_by != "confident_learning":
        cj = square(confident_joint, w, "confident_joint")
    if num_to_remove_per_class is not None:
        num_to_remove_per_class = params.count_vector(num_to_remove_per_class, w.k, "num_to_remove_per_class")
    masks, ranked = find(ex, w, filter_by=filter_by, frac_noise=frac_noise,
                         num_to_remove_per_class=num_to_remove_per_class,
                         min_examples_per_class=int(min_examples_per_class), confident_joint=cj, ties=ties,
                         rank_by=return_indices_ranked_by, rank_by_kwargs=rank_by_kwargs)
    return ranked if ranked is not None else per_row(ex, masks, np.dtype(bool))


def api_scores(opener, per_row, method, adjust_pred_probs):
    check_method(method, adjust_pred_probs)
    ex, w = opener()
    h = scores(ex, w, method=method, adjust_pred_probs=params.flag(adjust_pred_probs, "adjust_pred_probs"))
    return per_row(ex, h, None)
