"""The sweeps of multi-label confident learning over P (N x K, independent
per-class probabilities), each a loop over ``Probs.blocks()`` calling one C++
kernel (``src/cpp/multilabel/``) that handles all K classes at once:

* :func:`thresholds`    per class, the binary problem's two thresholds
                        (values checked to lie in [0, 1] on the way);
* :func:`joint_sweep`   the K raw 2 x 2 confident joints, the rows the
                        ``confident_learning`` / ``predicted_neq_given`` rules
                        flag in some class, histograms of the prune keys;
* :func:`select`        the per-class prune selections (top-c by key, ties
                        by ``ties``), flagged unless the unflagging test keeps them.

Class c's binary problem is cleanlab's ``stack_complement``: row [1 - p, p]
(1 - p rounded in the input dtype), label 1 when c is among the row's labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._common.arrays import OverProbs, Probs, as_probs
from .._common.backend import core, threads
from .._common.trace import stage
from .labels import MultiLabels, as_multilabels

KEY_NOISE_RATE, KEY_BY_CLASS = 0, 1


@dataclass
class Problem(OverProbs):
    y: MultiLabels
    probs: Probs
    nthreads: int
    validated: bool = False

    def counts(self) -> np.ndarray:
        """(K, 2) int64: examples without / with class c."""
        n1 = self.y.counts()
        return np.stack([self.n - n1, n1], axis=1)

    def csr(self, row0: int, m: int):
        return self.y.indptr[row0:row0 + m + 1], self.y.indices

    def column(self, c: int) -> np.ndarray:
        """P[:, c] in the input dtype (one strided read)."""
        out = np.empty(self.n, self.dtype)
        for row0, block in self.probs.blocks():
            out[row0:row0 + len(block)] = block[:, c]
        return out


def prepare(labels, pred_probs, n_jobs=None) -> Problem:
    with stage("prepare"):
        probs = as_probs(pred_probs)
        if probs.k < 1:
            raise ValueError("pred_probs must have at least one column (class)")
        return Problem(as_multilabels(labels, probs.n, probs.k), probs, threads(n_jobs))


def check_block(block: np.ndarray, row0: int) -> None:
    """ValueError naming the first value that is NaN or outside [0, 1]."""
    if block.size and block.min() >= 0 and block.max() <= 1:  # (NaN fails) no N x K temporaries
        return
    ok = (block >= 0) & (block <= 1)
    if not ok.all():
        r, c = np.argwhere(~ok)[0]
        raise_bad_value(block, row0, int(r), int(c))


def raise_bad_value(block: np.ndarray, row0: int, r: int, c: int):
    """The ValueError of check_block for block[r, c]."""
    raise ValueError(f"pred_probs[{row0 + r}, {c}] = {block[r, c]!r} is not a probability in [0, 1] "
                     "(multi-label pred_probs hold one independent probability per class)")


def validate(pb: Problem) -> None:
    if pb.validated:
        return
    for row0, block in pb.probs.blocks():
        check_block(block, row0)
    pb.validated = True


def class_side_means(pb: Problem) -> np.ndarray:
    """(K, 2) float64: np.mean of [1 - p over rows without c, p over rows with c]
    in the input dtype (NaN where a side is empty), validating every value."""
    with stage("ml_thresholds"):
        acc = core().MlClassSideMeans(pb.k, pb.y.counts().tolist(), pb.n, pb.dtype)
        for row0, block in pb.probs.blocks():
            if not pb.validated:
                check_block(block, row0)
            ip, ix = pb.csr(row0, len(block))
            acc.feed(block, ip, ix, pb.nthreads)
        pb.validated = True
        return acc.finish().reshape(pb.k, 2)


def thresholds_and_cuts(pb: Problem):
    """(thresholds (K, 2) float64 as cleanlab returns them, per-class threshold
    arrays in the dtype cleanlab compares them in, cuts (K, 2) float64).

    A class whose binary problem has both sides present keeps its thresholds
    in the input dtype; a side absent gets 2 and promotes that class's pair
    to float64 (cleanlab's rule, per binary problem). Clipped below at 2e-6;
    the cut is ``t - 1e-6`` in t's dtype.
    """
    means = class_side_means(pb)
    present = pb.counts() > 0
    both = present.all(axis=1)
    with np.errstate(invalid="ignore"):
        t_in = np.clip(np.nan_to_num(means, nan=0.0).astype(pb.dtype), a_min=2e-6, a_max=None)
    t64 = np.clip(np.where(present, means, 2.0), a_min=2e-6, a_max=None)
    cut = np.where(both[:, None], (t_in - 1e-6).astype(np.float64), t64 - 1e-6)
    per_class = [t_in[c] if both[c] else t64[c] for c in range(pb.k)]
    thresholds = np.where(both[:, None], t_in.astype(np.float64), t64)
    return thresholds, per_class, np.ascontiguousarray(cut)


def joint_sweep(pb: Problem, cut=None, *, cl=False, neq=False, key_method=None):
    """(raw confident joints (K, 2, 2) or None, cl flags, neq flags, histograms)."""
    cj = np.zeros(pb.k * 4, np.int64) if cut is not None else None
    cl_mask = np.zeros(pb.n, np.uint8) if cl else None
    neq_mask = np.zeros(pb.n, np.uint8) if neq else None
    hist = np.zeros(pb.k * 2 * core().ML_BUCKETS, np.int64) if key_method is not None else None
    c0 = None if cut is None else np.ascontiguousarray(cut[:, 0])
    c1 = None if cut is None else np.ascontiguousarray(cut[:, 1])
    with stage("ml_joint"):
        for row0, block in pb.probs.blocks():
            if not pb.validated:
                check_block(block, row0)
            m = len(block)
            ip, ix = pb.csr(row0, m)
            core().ml_joint_sweep(block, ip, ix, c0, c1, cj, None if cl_mask is None else cl_mask[row0:row0 + m],
                                  None if neq_mask is None else neq_mask[row0:row0 + m],
                                  0 if key_method is None else key_method, hist, pb.nthreads)
        pb.validated = True
    if cj is not None:
        cj = cj.reshape(pb.k, 2, 2)
        # as every binary confident joint: each diagonal entry raised to >= 1
        # (cleanlab's guarantee of one correct example per class)
        cj[:, 0, 0] = np.maximum(cj[:, 0, 0], 1)
        cj[:, 1, 1] = np.maximum(cj[:, 1, 1], 1)
    return (cj,
            None if cl_mask is None else cl_mask.view(bool),
            None if neq_mask is None else neq_mask.view(bool),
            None if hist is None else hist.reshape(pb.k, 2, -1))


def _keep(p: np.ndarray, q: np.ndarray, side: int) -> np.ndarray:
    """The unflagging test on a side's rows, in the dtype (as the kernel)."""
    return (p + 1e-6 > q) if side else (q + 1e-6 >= p)


def select(pb: Problem, key_method: int, caps: np.ndarray, hist: np.ndarray, ties: str):
    """Per (class c, side s) the caps[c, s] rows of that side with the largest
    key (ties by the lower row index, or as cleanlab's ``np.argsort`` orders
    them with ``ties="cleanlab"``), flagged unless kept.

    Returns (mask (N,), flagged counts (K, 2)).
    """
    caps = np.asarray(caps, np.int64)
    # per (c, s): the cut bucket (the highest b with #keys in buckets >= b reaching the cap) and the
    # number of keys above it; one group's histogram at a time (no K x 2 x B temporaries)
    cutb = np.full(caps.shape, -1, np.int32)
    above = np.zeros(caps.shape, np.int64)
    nb = hist.shape[2]
    for c, s in zip(*np.nonzero(caps > 0)):
        rc = np.cumsum(hist[c, s, ::-1])  # rc[j] = #keys in buckets >= nb - 1 - j (non-decreasing)
        j = int(np.searchsorted(rc, caps[c, s], side="left"))  # first j with rc[j] >= cap
        if j < nb:  # (fewer keys than the cap: nothing selected, as before)
            cutb[c, s] = nb - 1 - j
            above[c, s] = rc[j - 1] if j > 0 else 0
    need = np.where(cutb >= 0, caps - above, 0)
    mask = np.zeros(pb.n, np.uint8)
    flagged = np.zeros(pb.k * 2, np.int64)
    groups, rows, keys, keeps = [], [], [], []
    with stage("ml_select"):
        for row0, block in pb.probs.blocks():
            m = len(block)
            ip, ix = pb.csr(row0, m)
            g, r, kk, kp = core().ml_select_sweep(block, ip, ix, row0, key_method, np.ascontiguousarray(cutb.ravel()),
                                                  mask[row0:row0 + m], flagged, pb.nthreads)
            groups.append(g), rows.append(r), keys.append(kk), keeps.append(kp)
    mask = mask.view(bool)
    flagged = flagged.reshape(pb.k, 2)
    g, r, kk, kp = (np.concatenate(a) for a in (groups, rows, keys, keeps))
    order = np.lexsort((r, -kk, g))
    g, r, kk, kp = g[order], r[order], kk[order], kp[order].view(bool)
    starts = np.searchsorted(g, np.arange(pb.k * 2))
    ends = np.searchsorted(g, np.arange(pb.k * 2), side="right")
    for grp in np.flatnonzero(need.ravel() > 0):
        c, s = divmod(int(grp), 2)
        a, b, nd = starts[grp], ends[grp], int(need[c, s])
        if ties == "cleanlab" and b - a > nd and kk[a + nd - 1] == kk[a + nd]:
            _cleanlab_group(pb, c, s, key_method, int(caps[c, s]), mask, flagged)
            continue
        sel = slice(a, a + nd)
        hit = r[sel][~kp[sel]]
        mask[hit] = True
        flagged[c, s] += len(hit)
    return mask, flagged


def _cleanlab_group(pb: Problem, c: int, s: int, key_method: int, cap: int, mask, flagged) -> None:
    """Redo one (class, side) selection with cleanlab's own call on the very
    array it sorts (equal keys straddle the cut)."""
    ycol = pb.y.column(c)
    rows = np.flatnonzero(ycol == s)
    p = pb.column(c)[rows]
    q = 1 - p
    if key_method == KEY_NOISE_RATE:
        margin = (q - p) if s else (p - q)
        chosen = np.argsort(-margin)[:cap]
    else:
        chosen = np.argsort(p if s else q)[:cap]
    chosen = chosen[~_keep(p[chosen], q[chosen], s)]
    new = rows[chosen][~mask[rows[chosen]]]
    # flagged counts: recount this group's selection from scratch
    flagged[c, s] = len(chosen)
    mask[new] = True
