"""HOC's solver: T (row softmax of logits) and p (softmax) fitted to the
empirical consensus by Adam on the sum of unsquared Frobenius norms.

The published loop (Docta ``calc_func``; the HOC and SimiFeat repositories
agree), reproduced here in float64 with a hand-written gradient (no torch):

* logits ``A0 = 5 I - 1`` (T), ``b0 = 1/K + 0.1 U[0, 1)`` (p), U from the
  caller's seeded generator;
* ``loss = ||c1 - c1_hat|| + ||c2 - c2_hat|| + ||c3 - c3_hat||`` with
  c1 = T^T p, c2 = T^T diag(p) T, c3[a,b,c] = sum_k p_k T_ka T_kb T_kc;
* ``for step in range(steps)``: step 0 only evaluates, every later step makes
  one Adam update (torch's defaults: betas (0.9, 0.999), eps 1e-8, lr 0.1)
  with the gradient of the previous evaluation, then evaluates: steps - 1
  updates in all.
* Keep-best: the published code records ``T_rec = T.detach()`` when the loss
  improves after step 5, but ``detach`` shares storage with T, which Adam
  updates in place, so it returns the **final** T (and a loss_min that is not
  that T's). ``keep_best=False`` reproduces that; ``keep_best=True`` (the
  default) returns a real copy of the best iterate after step 5.

The third-order term never forms K^3 arrays in the sparse mode:
``||c3 - c3_hat||^2 = ||c3_hat||^2 - 2 <c3_hat, c3> + ||c3||^2`` with
``||c3||^2 = p^T (G o G o G) p``, ``G = T T^T``, and ``<c3_hat, c3>`` summed
over the triplets that occur. The dense mode (small K) forms c3 as the
published code does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .consensus import Consensus

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
#: K at or below which the third-order term is dense (K^4 work per step, as published).
DENSE_MAX_K = 24


def softmax_rows(a: np.ndarray) -> np.ndarray:
    z = a - a.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


class Objective:
    """loss(A, b) and its gradient for one consensus."""

    def __init__(self, cons: Consensus, mode: str = "auto"):
        k = cons.num_classes
        if mode == "auto":
            mode = "dense" if k <= DENSE_MAX_K else "sparse"
        if mode not in ("dense", "sparse"):
            raise ValueError(f"mode must be 'auto', 'dense' or 'sparse', got {mode!r}")
        self.mode, self.k = mode, k
        self.c1, self.c2 = cons.c1, cons.c2
        if mode == "dense":
            self.c3 = cons.dense()
        else:
            a, b, c = cons.triplets()
            self.a, self.b, self.c = a, b, c
            self.w = cons.values
            self.c3_sq = float(np.dot(cons.values, cons.values))
            # for the scatter of the gradient over each triplet position
            self._groups = []
            for idx in (a, b, c):
                order = np.argsort(idx, kind="stable")
                u, starts = np.unique(idx[order], return_index=True)
                self._groups.append((order, u, starts))

    def __call__(self, A: np.ndarray, bl: np.ndarray):
        k = self.k
        T = softmax_rows(A)
        p = softmax_rows(bl)
        # first order
        r1 = T.T @ p - self.c1
        n1 = float(np.sqrt(np.dot(r1, r1)))
        e1 = r1 / n1 if n1 > 0 else np.zeros_like(r1)
        gT = np.outer(p, e1)
        gp = T @ e1
        # second order
        PT = p[:, None] * T
        r2 = T.T @ PT - self.c2
        n2 = float(np.sqrt((r2 * r2).sum()))
        e2 = r2 / n2 if n2 > 0 else np.zeros_like(r2)
        gT += p[:, None] * (T @ (e2 + e2.T))
        gp += (T * (T @ e2.T)).sum(axis=1)
        # third order
        if self.mode == "dense":
            W = (T[:, :, None] * T[:, None, :]).reshape(k, k * k)        # W[k, (b,c)] = T_kb T_kc
            c3 = (PT.T @ W).reshape(k, k, k)                              # sum_k p_k T_ka T_kb T_kc
            r3 = c3 - self.c3
            n3 = float(np.sqrt((r3 * r3).sum()))
            e3 = r3 / n3 if n3 > 0 else np.zeros_like(r3)
            q1 = W @ e3.reshape(k, k * k).T                               # sum_bc e3[a,b,c] T_kb T_kc
            q2 = W @ e3.transpose(1, 0, 2).reshape(k, k * k).T
            q3 = W @ e3.transpose(2, 0, 1).reshape(k, k * k).T
            gT += p[:, None] * (q1 + q2 + q3)
            gp += (T * q1).sum(axis=1)
        else:
            Ta, Tb, Tc = T[:, self.a], T[:, self.b], T[:, self.c]       # K x S
            TbTc = Tb * Tc
            U = Ta * TbTc
            Uw = U @ self.w                                               # d<c3_hat, c3>/dp
            B = float(np.dot(p, Uw))
            G = T @ T.T
            G2 = G * G
            G3p = (G2 * G) @ p
            C = float(np.dot(p, G3p))
            sq = self.c3_sq - 2.0 * B + C
            n3 = float(np.sqrt(sq)) if sq > 0 else 0.0
            if n3 > 0:
                pw = self.w[None, :] * p[:, None]                         # K x S
                dB = np.zeros((k, k))
                for (order, u, starts), part in zip(self._groups, (TbTc, Ta * Tc, Ta * Tb)):
                    dB[:, u] += np.add.reduceat((part * pw)[:, order], starts, axis=1)
                H = 3.0 * G2 * np.outer(p, p)
                gT += (2.0 * (H @ T) - 2.0 * dB) / (2.0 * n3)
                gp += (G3p - Uw) / n3
        loss = n1 + n2 + n3
        # softmax backward
        gA = T * (gT - (gT * T).sum(axis=1, keepdims=True))
        gb = p * (gp - np.dot(gp, p))
        return loss, gA, gb


@dataclass
class Fit:
    transition_matrix: np.ndarray  # T [true, noisy]
    py: np.ndarray                 # p, the clean prior
    loss: float                    # the loss of the returned T, p
    step: int                      # the step of the returned iterate
    final_loss: float
    best_loss: float
    best_step: int
    logits: np.ndarray             # T's logits (Docta's "T_est_before_sfmx")


def adam_fit(obj: Objective, k: int, steps: int, lr: float, p_init: np.ndarray, keep_best: bool = True,
             A0: np.ndarray | None = None) -> Fit:
    """The published loop (module docstring); ``p_init`` are the prior's logits."""
    A = (5.0 * np.eye(k) - 1.0) if A0 is None else np.array(A0, np.float64)
    bl = np.array(p_init, np.float64)
    mA = np.zeros_like(A)
    vA = np.zeros_like(A)
    mb = np.zeros_like(bl)
    vb = np.zeros_like(bl)
    loss, gA, gb = obj(A, bl)
    best_loss, best_step, best = np.inf, -1, None
    for step in range(1, steps):
        bc1 = 1.0 - BETA1 ** step
        bc2s = np.sqrt(1.0 - BETA2 ** step)
        for x, g, m, v in ((A, gA, mA, vA), (bl, gb, mb, vb)):
            m += (1.0 - BETA1) * (g - m)          # torch: exp_avg.lerp_(grad, 1 - beta1)
            v *= BETA2
            v += (1.0 - BETA2) * g * g
            x -= (lr / bc1) * (m / (np.sqrt(v) / bc2s + EPS))  # addcdiv_(m, denom, -step_size)
        loss, gA, gb = obj(A, bl)
        if loss < best_loss and step > 5:
            best_loss, best_step, best = loss, step, (A.copy(), bl.copy())
    final_loss = float(loss)
    if keep_best and best is not None:
        rA, rb, rloss, rstep = best[0], best[1], float(best_loss), best_step
    else:
        rA, rb, rloss, rstep = A, bl, final_loss, steps - 1
    if best is None:
        best_loss, best_step = final_loss, steps - 1
    return Fit(softmax_rows(rA), softmax_rows(rb), rloss, rstep, final_loss, float(best_loss), best_step,
               rA.copy())
