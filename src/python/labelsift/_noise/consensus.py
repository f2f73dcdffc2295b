"""HOC's empirical consensus: counts of (given label, 1-NN's, 2-NN's) patterns.

Docta (``estimator_hoc``): per round, the patterns of the sampled rows are
counted, divided by the sample size, and the rounds' counts are averaged:
``c_est[j] = (sum over rounds of cnt_j / m) / rounds``. Here the third-order
counts are kept sparse (the codes a*K*K + b*K + c that occur, and their
values), so nothing of size K^3 is formed for large K; :meth:`Consensus.dense`
gives the K x K x K array when it is small. The values are the same float64
numbers as the dense accumulation: each code's per-round shares are added in
round order (the rounds in which it does not occur add an exact zero).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._common.backend import core

#: K^3 above this: ``Consensus.dense()`` refuses (use the sparse codes).
DENSE_LIMIT = 1 << 24


@dataclass
class Consensus:
    """c1 (K,), c2 (K, K) and the sparse c3: ``codes`` (sorted, unique
    a*K*K + b*K + c) with ``values``; K classes."""

    c1: np.ndarray
    c2: np.ndarray
    codes: np.ndarray
    values: np.ndarray
    num_classes: int

    def triplets(self):
        """(a, b, c) index arrays of the sparse c3."""
        k = self.num_classes
        a, rest = np.divmod(self.codes, k * k)
        b, c = np.divmod(rest, k)
        return a, b, c

    def dense(self) -> np.ndarray:
        """The K x K x K third-order consensus (refused above DENSE_LIMIT entries)."""
        k = self.num_classes
        if k ** 3 > DENSE_LIMIT:
            raise ValueError(f"the third-order consensus has {k}^3 entries; use the sparse codes")
        c3 = np.zeros(k ** 3, np.float64)
        c3[self.codes] = self.values
        return c3.reshape(k, k, k)


class ConsensusCounter:
    """Adds rounds of patterns: ``add(labels, rows, nbr)`` with nbr (m, 2)."""

    def __init__(self, num_classes: int, nthreads: int = 0):
        self.k = num_classes
        self.nthreads = nthreads
        self.c1 = np.zeros(num_classes, np.float64)
        self.c2 = np.zeros(num_classes * num_classes, np.float64)
        self._rounds: list[tuple[np.ndarray, np.ndarray, int]] = []

    def add(self, labels: np.ndarray, rows: np.ndarray, nbr: np.ndarray) -> None:
        codes, h1, h2 = core().nz_consensus(labels, np.ascontiguousarray(rows, np.int64),
                                            np.ascontiguousarray(nbr, np.int64), self.k, self.nthreads)
        self.add_counts(codes, h1, h2, len(rows))

    def add_counts(self, codes: np.ndarray, h1: np.ndarray, h2: np.ndarray, m: int) -> None:
        """A round already counted (one code per sampled row, c1, c2 flat): the device path's."""
        self.c1 += h1 / m
        self.c2 += h2 / m
        u, cnt = np.unique(codes, return_counts=True)
        self._rounds.append((u, cnt, m))

    def result(self) -> Consensus:
        r = len(self._rounds)
        if r == 0:
            raise ValueError("no rounds were counted")
        allc = np.unique(np.concatenate([u for u, _, _ in self._rounds]))
        vals = np.zeros(len(allc), np.float64)
        for u, cnt, m in self._rounds:
            vals[np.searchsorted(allc, u)] += cnt / m
        k = self.k
        return Consensus(self.c1 / r, (self.c2 / r).reshape(k, k), allc, vals / r, k)


def count_patterns(labels: np.ndarray, rows: np.ndarray, nbr: np.ndarray, num_classes: int, nthreads: int = 0):
    """One round's integer counts (c1, c2 (K, K), codes) of the patterns of ``rows``."""
    codes, h1, h2 = core().nz_consensus(labels, np.ascontiguousarray(rows, np.int64),
                                        np.ascontiguousarray(nbr, np.int64), num_classes, nthreads)
    return h1, h2.reshape(num_classes, num_classes), codes
