"""Label quality scores (cleanlab's ``get_label_quality_scores``) for all rows
or a sorted subset, and the ranking of flagged rows by them."""
from __future__ import annotations

import numpy as np

from .._common import params
from .._common.arrays import HOST
from .._common.backend import core
from .._common.checks import raise_row_error
from .._common.names import SCORE_METHODS
from .._common.trace import stage
from .passes import Problem, given_probs, row_pass, thresholds_from_given, validate


def _rows_op(pb: Problem, rows, fn, *outs):
    """Run fn(block, local_rows, labels_block, *out_slices) over all rows or sorted global `rows`."""
    if rows is None:
        for row0, block in pb.probs.blocks():
            m = len(block)
            fn(block, None, pb.labels[row0 : row0 + m], *(o[row0 : row0 + m] for o in outs))
        return
    for pos, block, local in pb.probs.rows(rows):
        tmp = [np.empty(len(pos), o.dtype) for o in outs]
        labels_block = np.zeros(len(block), np.int64)
        labels_block[local] = pb.labels[rows[pos]]
        fn(block, np.ascontiguousarray(local, np.int64), labels_block, *tmp)
        for o, t in zip(outs, tmp):
            o[pos] = t


def score_kwargs(value, what: str) -> dict:
    """The keyword arguments a caller may pass on to the scores
    (cleanlab's ``rank_by_kwargs``): only ``adjust_pred_probs``."""
    return params.keywords(value, what, {"adjust_pred_probs": params.flag})


def check_method(method: str, adjust_pred_probs: bool) -> None:
    adjust_pred_probs = params.flag(adjust_pred_probs, "adjust_pred_probs")
    if not isinstance(method, str) or method not in SCORE_METHODS:
        raise ValueError(f"{method!r} is not a valid scoring method; choose one of {', '.join(SCORE_METHODS)}")
    if adjust_pred_probs and method == "confidence_weighted_entropy":
        raise ValueError(f"adjust_pred_probs is not currently supported for {method}.")


def quality_scores(pb: Problem, method: str, *, adjust_pred_probs=False, rows=None, g=None, max_other=None,
                   thresholds=None) -> np.ndarray:
    """Scores of cleanlab's get_label_quality_scores, for all rows or sorted `rows`.

    ``g``, ``max_other`` and ``thresholds`` are reused when a pass already
    computed them (over all rows).
    """
    check_method(method, adjust_pred_probs)
    if (rows is None and g is None and max_other is None and not adjust_pred_probs and not pb.validated
            and pb.probs.device == HOST):
        with stage("scores"):
            return _scores_in_one_sweep(pb, method)
    if not (method == "normalized_margin" and not adjust_pred_probs and max_other is None and rows is None):
        validate(pb)  # (the max-other sweep of that case validates as it reads)
    with stage("scores"):
        if adjust_pred_probs:
            return _adjusted(pb, method, rows, g, thresholds)
        gs = (given_probs(pb) if rows is None else _given_rows(pb, rows)) if g is None else g[_sel(rows)]
        if method == "self_confidence":
            return np.array(gs, copy=True)
        if method == "normalized_margin":
            return _normalized_margin(pb, gs, rows, max_other)
        return _confidence_weighted_entropy(pb, gs, rows)


def _scores_in_one_sweep(pb: Problem, method: str) -> np.ndarray:
    """All rows' scores reading each block once: validation (the row pass's,
    for the margin), P[i, y_i] and the method's per-row sweep on the block
    while it is in memory -- one read of a file-backed dump, not two or three."""
    g = np.empty(pb.n, pb.dtype)
    extra = None if method == "self_confidence" else np.empty(pb.n, np.float64)
    lo, hi, tol = pb.bounds()
    for row0, block in pb.probs.blocks():
        sl = slice(row0, row0 + len(block))
        y = pb.labels[sl]
        core().gather_given(block, y, g[sl], pb.nthreads)
        if method == "normalized_margin":  # max over the other classes; validates as it reads
            err = core().row_pass(block, y, None, None, None, None, extra[sl], lo, hi, tol, pb.nthreads)
        else:
            err = core().validate(block, y, lo, hi, tol, pb.nthreads)
        pb.raise_row_error(block, row0, err)
        if method == "confidence_weighted_entropy":
            core().xlogx_rows(block, None, extra[sl], pb.nthreads)
    pb.validated = True
    if method == "self_confidence":
        return g
    if method == "normalized_margin":
        return _normalized_margin(pb, g, None, extra)
    return _entropy_score(pb, g, extra)


def _sel(rows):
    return slice(None) if rows is None else rows


def _adjusted(pb: Problem, method, rows, g, thresholds) -> np.ndarray:
    """Scores of the threshold-adjusted probabilities (cleanlab's adjust_pred_probs)."""
    if thresholds is None:
        thresholds = thresholds_from_given(given_probs(pb) if g is None else g, pb.labels, pb.k, pb.nthreads)
    t = np.asarray(thresholds)
    a_dtype = np.result_type(pb.dtype, t.dtype)
    m = pb.n if rows is None else len(rows)
    sc = np.empty(m, np.float64)
    mo = np.empty(m, np.float64)
    t64 = np.ascontiguousarray(t, dtype=np.float64)
    t_is_f64 = bool(a_dtype == np.float64)
    _rows_op(pb, rows, lambda b, r, y, s_, o_: core().adjusted_rows(b, y, t64, t_is_f64, r, s_, o_, pb.nthreads),
             sc, mo)
    sc = sc.astype(a_dtype)
    if method == "self_confidence":
        return sc
    return (sc - mo.astype(a_dtype) + 1) / 2


def _normalized_margin(pb: Problem, gs, rows, max_other) -> np.ndarray:
    if max_other is not None:
        mo = max_other[_sel(rows)]
    elif rows is None:
        mo = row_pass(pb, max_other=True).max_other  # validates as it sweeps
    else:
        mo = np.empty(len(rows), np.float64)
        _rows_op(pb, rows, lambda b, r, y, o_: _max_other_rows(pb, b, r, y, o_), mo)
    return (gs - mo.astype(pb.dtype) + 1) / 2


def _confidence_weighted_entropy(pb: Problem, gs, rows) -> np.ndarray:
    xs = np.empty(pb.n if rows is None else len(rows), np.float64)
    _rows_op(pb, rows, lambda b, r, y, o_: core().xlogx_rows(b, r, o_, pb.nthreads), xs)
    return _entropy_score(pb, gs, xs)


def _entropy_score(pb: Problem, gs, xs) -> np.ndarray:
    """cleanlab's confidence-weighted entropy from P[i, y_i] and sum_k P log P (float64) per row."""
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


def _max_other_rows(pb: Problem, block, rows, y, out):
    """max over the other classes for the requested rows of a block (already validated)."""
    lo, hi, tol = pb.bounds()
    sub = np.asarray(block[rows], dtype=pb.dtype)
    err = core().row_pass(sub, np.ascontiguousarray(y[rows]), None, None, None, None, out, lo, hi, tol, pb.nthreads)
    raise_row_error(sub, err, lambda r: "a selected pred_probs row",
                    lambda r, c: f"a selected pred_probs row, column {c},", tol)


def argsort(values: np.ndarray, ties: str) -> np.ndarray:
    """Ascending order of values: cleanlab's call (NumPy's default, unstable
    sort) for ``ties="cleanlab"``, a stable sort (lower index first) otherwise."""
    return np.argsort(values) if ties == "cleanlab" else np.argsort(values, kind="stable")


def order_by_scores(idx: np.ndarray, scores: np.ndarray, ties: str) -> np.ndarray:
    """idx (ascending) ordered by ascending score, equal scores by ``ties``."""
    return idx[argsort(scores, ties)]
