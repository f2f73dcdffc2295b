"""Multi-label label quality scores: per-class binary scores aggregated per row.

cleanlab's ``MultilabelScorer``: class c's score of a row is the binary
problem's score (``self_confidence``, ``normalized_margin`` or
``confidence_weighted_entropy``, optionally on threshold-adjusted
probabilities), stored as float64; a row's score is the exponential moving
average (alpha = 0.8 by default; sorted descending) or the softmin of its K
class scores.

``self_confidence`` and ``normalized_margin`` without adjustment, with the
moving average (cleanlab's default) or per class, are one C++ sweep
(``ml_ema_scores``, src/cpp/multilabel/scores.cpp: each row's scores sorted
by a SIMD sorting network and folded in the same float64 operations as
cleanlab's loop, so the results are identical), which also checks the
values. ``confidence_weighted_entropy``, ``adjust_pred_probs`` and the
softmin aggregator are NumPy in row blocks (never an N x K copy beyond one
block).
"""
from __future__ import annotations

import numpy as np

from .._common.checks import check_choice
from .._common.names import SCORE_METHODS
from .._common.backend import core
from ..reference.multilabel import exponential_moving_average, softmin

AGGREGATORS = ("exponential_moving_average", "softmin")
DEFAULT_AGGREGATOR = {"method": "exponential_moving_average", "alpha": 0.8}
_BLOCK_VALUES = 1 << 19


def check_aggregator(aggregator_kwargs):
    kw = dict(DEFAULT_AGGREGATOR if not aggregator_kwargs else aggregator_kwargs)
    method = kw.pop("method", None)
    if method is None:
        # cleanlab's Aggregator(**kwargs) needs a method
        raise TypeError("aggregator_kwargs needs a 'method' (exponential_moving_average or softmin)")
    check_choice(method, AGGREGATORS, "aggregator_kwargs['method']")
    allowed = {"alpha"} if method == "exponential_moving_average" else {"temperature"}
    extra = set(kw) - allowed
    if extra:
        raise TypeError(f"aggregator_kwargs: unexpected {sorted(extra)} for {method}")
    if method == "exponential_moving_average" and kw.get("alpha") is not None and not 0 <= kw["alpha"] <= 1:
        raise ValueError(f"alpha must be in the interval [0, 1], got {kw['alpha']}")
    return method, kw


def class_scores(yb: np.ndarray, p: np.ndarray, method: str, thresholds=None) -> np.ndarray:
    """m x K float64 per-class scores of rows with binary labels ``yb`` (m x K)
    and probabilities ``p`` (m x K, input dtype). ``thresholds``: the per-class
    threshold arrays (for ``adjust_pred_probs``). Every class at once: the
    operations and dtypes of the binary problem's score
    (reference.confident_learning.get_label_quality_scores on cleanlab's
    stack_complement rows), on m x K arrays."""
    if thresholds is None:
        return _binary_scores(yb != 0, 1 - p, p, method).astype(np.float64, copy=False)
    out = np.empty(p.shape)
    for cols, a0, a1 in _adjusted_rows(p, thresholds):
        out[:, cols] = _binary_scores(yb[:, cols] != 0, a0, a1, method)
    return out


def _adjusted_rows(p: np.ndarray, thresholds):
    """(columns, column 0, column 1) of cleanlab's ``adjust_pred_probs`` of the
    binary rows [1 - p, p] ([1 - p - t0, p - t1] + max(t), over its sum -- a
    two-value sum is a + b), one group of classes per threshold dtype (a class
    whose side is empty has float64 thresholds, so its rows are float64)."""
    groups: dict = {}
    for c, t in enumerate(thresholds):
        groups.setdefault(np.asarray(t).dtype, []).append(c)
    for cols in groups.values():
        cols = np.asarray(cols)
        t = np.stack([np.asarray(thresholds[c]) for c in cols])  # (g, 2) in the group's dtype
        pc = p[:, cols]
        a0 = (1 - pc) - t[:, 0]
        a1 = pc - t[:, 1]
        tmax = t.max(axis=1)
        a0 += tmax
        a1 += tmax
        tot = a0 + a1
        a0 /= tot
        a1 /= tot
        yield cols, a0, a1


def _binary_scores(y: np.ndarray, a0: np.ndarray, a1: np.ndarray, method: str) -> np.ndarray:
    """The binary score of rows [a0, a1] with labels y (bool), element-wise.
    confidence_weighted_entropy takes the rows' sums of xlogy(v, v) from the
    C++ row kernel of the single-label path (``xlogx_rows``: scipy's xlogy and
    NumPy's pairwise sum, exactly; no SciPy needed)."""
    own = np.where(y, a1, a0)
    if method == "self_confidence":
        return own
    if method == "normalized_margin":
        return (own - np.where(y, a0, a1) + 1) / 2
    from .._cl.latent import CLIPPING_LOWER_BOUND as lo
    pairs = np.empty(a0.shape + (2,), a0.dtype)
    pairs[..., 0] = a0
    pairs[..., 1] = a1
    xs = np.empty(a0.size)
    core().xlogx_rows(pairs.reshape(-1, 2), None, xs, 0)
    xs = xs.reshape(a0.shape).astype(np.float32 if a0.dtype == np.float32 else np.float64)  # scipy's result dtype
    ratio = (-xs / np.log(2)) / np.clip(own, a_min=lo, a_max=None)
    return np.log(ratio + 1) / np.clip(ratio, a_min=lo, a_max=None)


def aggregate(s: np.ndarray, method: str, kw: dict) -> np.ndarray:
    return exponential_moving_average(s, **kw) if method == "exponential_moving_average" else softmin(s, **kw)


def _ema_weights(aggregator, k: int):
    """(alpha, beta) as float64 for the C++ fold ``alpha * s + beta * ema`` when
    that is exactly cleanlab's ``alpha * s_i + (1 - alpha) * s_ema`` on float64
    arrays; None otherwise (softmin, or an alpha NumPy would not multiply in
    float64, such as a longdouble)."""
    method, kw = aggregator
    if method != "exponential_moving_average":
        return None
    alpha = kw.get("alpha")
    if alpha is None:
        alpha = float(2 / (k + 1))  # cleanlab's own default
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        return None
    if np.result_type(alpha, np.float64) != np.float64:
        return None
    beta = 1 - alpha  # in alpha's own type, as cleanlab computes it
    return float(alpha), float(beta)


_KERNEL_METHODS = {"self_confidence": 0, "normalized_margin": 1}  # ScoreMethod (multilabel/row_math.h)


def _ema_block(block: np.ndarray, indptr, indices, weights, out: np.ndarray, nthreads: int, row0: int,
               method: str = "self_confidence") -> None:
    """The C++ sweep on one block: ``weights`` (alpha, beta) into ``out`` (m,),
    or, with ``weights`` None, the m x K class scores into ``out``."""
    from .passes import raise_bad_value
    code = _KERNEL_METHODS[method]
    if weights is None:
        bad = core().ml_ema_scores(block, indptr, indices, 0.0, 0.0, None, 0, nthreads, code, out.reshape(-1))
    else:
        bad = core().ml_ema_scores(block, indptr, indices, weights[0], weights[1], out, 0, nthreads, code)
    if bad >= 0:
        raise_bad_value(block, row0, *divmod(int(bad), block.shape[1]))


def row_scores(pb, rows, method="self_confidence", thresholds=None, aggregator=("exponential_moving_average",
                                                                                  {"alpha": 0.8}), per_class=False):
    """Scores of ``rows`` (None = all; any order), in row blocks. Checks the
    values first unless ``pb`` says they were checked."""
    from .passes import validate
    check_choice(method, SCORE_METHODS, "method")
    kernel = method in _KERNEL_METHODS and thresholds is None
    weights = None if per_class or not kernel else _ema_weights(aggregator, pb.k)
    kernel = kernel and (per_class or weights is not None)
    if kernel and rows is None:
        out = np.empty((pb.n, pb.k) if per_class else pb.n)
        for row0, block in pb.probs.blocks():
            m = len(block)
            ip, ix = pb.csr(row0, m)
            _ema_block(block, ip, ix, weights, out[row0:row0 + m], pb.nthreads, row0, method)
        pb.validated = True
        return out
    validate(pb)
    if rows is not None:
        rows = np.asarray(rows, np.int64)
        if len(rows) > 1 and (rows[1:] < rows[:-1]).any():  # Probs.rows reads ascending rows
            order = np.argsort(rows, kind="stable")
            s = row_scores(pb, rows[order], method, thresholds, aggregator, per_class)
            out = np.empty_like(s)
            out[order] = s
            return out
    rows = np.arange(pb.n) if rows is None else rows
    step = max(1, _BLOCK_VALUES // max(pb.k, 1))
    parts = []
    for a in range(0, len(rows), step):
        r = rows[a:a + step]
        p = np.empty((len(r), pb.k), pb.dtype)
        for pos, block, local in pb.probs.rows(r):
            p[pos] = block[local]
        if kernel:
            s = np.empty((len(r), pb.k) if per_class else len(r))
            ip, ix = pb.y.sub(r)
            _ema_block(p, ip, ix, weights, s, pb.nthreads, 0, method)
            parts.append(s)
            continue
        s = class_scores(pb.y.dense(r), p, method, thresholds)
        parts.append(s if per_class else aggregate(s, *aggregator))
    if not parts:
        return np.zeros((0, pb.k)) if per_class else np.zeros(0)
    return np.concatenate(parts)
