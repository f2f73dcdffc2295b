"""The O(K) and O(N) steps between two passes over the scores, plain NumPy,
shared by the engine (:mod:`.engine`) and the float64 reference
(:mod:`labelsift.reference.sinkhorn`), so both take the same decisions from
the same column sums.

Notation: t_ik = lam * x_ik + f_k; the pass row-normalises exp(t) to the
plan pi (row i sums to b_i) and returns its column sums c_k and the column
maxima of log pi_ik.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Below this a column's float64 mass is no longer trusted (its entries may
#: have underflowed): its log mass is then taken as the largest log plan entry
#: in it, a lower bound within log(N) of the truth. The step stays finite and
#: the next passes correct the overshoot. (A dead class, scores -1e4 at
#: lam = 25, reaches its share in a few iterations instead of never.)
TINY_MASS = 1e-200


def log_mass(colsum: np.ndarray, colmax: np.ndarray) -> np.ndarray:
    """log c_k, with the underflow rule above."""
    with np.errstate(divide="ignore"):
        lc = np.log(colsum)
    return np.where(colsum > TINY_MASS, lc, colmax)


def column_step(f: np.ndarray, colsum: np.ndarray, colmax: np.ndarray, log_a: np.ndarray) -> np.ndarray:
    """The column update f_k + log a_k - log c_k (a new array)."""
    return f + (log_a - log_mass(colsum, colmax))


def l1_error(colsum: np.ndarray, a: np.ndarray) -> float:
    """sum_k |c_k - a_k|: the column-marginal violation of the row-normalised plan."""
    return float(np.sum(np.abs(colsum - a)))


def sela_error(g_prev: np.ndarray, g_new: np.ndarray, nansum=None) -> float:
    """SeLa's criterion nansum(|c / c_new - 1|), with c = exp(g) its sample
    scalings (``nansum``: the sum over all workers' rows, when sharded)."""
    terms = np.abs(np.exp(g_prev - g_new) - 1.0)
    return float(np.nansum(terms)) if nansum is None else nansum(terms)


@dataclass
class StopRule:
    """When the loop stops.

    ``mode="fused"``: pass j (j = 1, 2, ...) measures the L1 column error of
    the plan of the potentials after j - 1 updates; the loop stops at the
    first pass with error <= tol (``n_iter=None``), or at pass n_iter + 1
    (``n_iter`` given: exactly n_iter updates; tol only reported), or at pass
    max_iter + 1 (not converged). The iteration count is the number of
    column updates, j - 1.

    ``mode="sela"``: SeLa's ``optimize_L_sk`` loop, numbered as SeLa does: its
    iteration n is the column update that precedes our pass n + 1, and at
    passes j with (j - 1) % 10 == 0 its relative change of the sample
    scalings is compared with tol. The iteration count is j (always 10m + 1
    when it converges).
    """

    mode: str
    tol: float
    n_iter: int | None
    max_iter: int

    def checks_sela(self, j: int) -> bool:
        return self.mode == "sela" and self.n_iter is None and (j - 1) % 10 == 0

    def done(self, j: int, err: float, sela_err: float | None) -> tuple[bool, bool]:
        """(stop, converged) after pass j with its errors."""
        if self.mode == "sela":
            count = j
            if self.n_iter is not None:
                return count >= self.n_iter, True
            if sela_err is not None and sela_err <= self.tol:
                return True, True
            return count >= self.max_iter, False
        count = j - 1
        if self.n_iter is not None:
            return count >= self.n_iter, True
        if err <= self.tol:
            return True, True
        return count >= self.max_iter, False

    def count(self, j: int) -> int:
        return j if self.mode == "sela" else j - 1
