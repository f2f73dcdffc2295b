"""The selections of the prune methods (``prune_by_class``,
``prune_by_noise_rate``): which rows the prune counts remove. Ties go to the
lower row index."""
from __future__ import annotations

import numpy as np

from .._common.backend import core
from .._common.trace import stage
from .passes import Problem
from .rules import active_pairs, eligible


def prune_by_class(pb: Problem, g: np.ndarray, pcm: np.ndarray, label_counts, min_examples_per_class) -> np.ndarray:
    """Per class k, the n_k - pcm[k, k] rows with the lowest P[:, k] (ties: lower index)."""
    with stage("prune_by_class"):
        num = (label_counts - np.diagonal(pcm)).astype(np.int64)
        num[~eligible(label_counts, min_examples_per_class) | (num < 1)] = 0
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
        sel.finish(mask)
    return mask.view(bool)
