"""The Sinkhorn loop: one fused C++ pass over the scores per iteration
(``labelsift._core.sk_pass``, ``src/cpp/sinkhorn/``), the O(K) potential
updates in NumPy between passes (:mod:`.potentials`).

Memory: besides the input, O(N + 256 K) float64 (labels, optionally the
row potentials, the chunks' column partials); an N x K buffer only for the
plan, and only when it is asked for.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .._common.backend import core
from .._common.trace import stage
from .inputs import describe_bad_row
from .potentials import StopRule, column_step, l1_error, sela_error

MODES = ("fused", "sela")


@dataclass
class SinkhornResult:
    """What a Sinkhorn run returns (``self_label(..., return_info=True)``).

    * ``labels``: argmax_k (lam * x_ik + f_k), ties to the lower class (int64, N);
    * ``plan``: the row-normalised transport plan of the final potentials
      (N x K; row i sums to b_i, or to 1 for ``rebalance`` / ``swav_codes``),
      only when asked for;
    * ``col_potentials`` (f, K) -- pass them as ``init=`` to warm-start --
      and ``row_potentials`` (g, N, when asked for): the plan is
      exp(lam * x_ik + f_k + g_i);
    * ``n_iter``: iterations done (column updates; SeLa's own count in
      ``mode="sela"``); ``error``: the L1 column error of the returned plan;
      ``history``: the L1 column error of every pass, in order;
      ``sela_history``: (iteration, SeLa's relative-change criterion) where
      it was evaluated; ``converged``.
    """

    labels: np.ndarray
    col_potentials: np.ndarray
    n_iter: int
    error: float
    history: list
    converged: bool
    plan: Optional[np.ndarray] = None
    row_potentials: Optional[np.ndarray] = None
    sela_history: list = field(default_factory=list)
    mode: str = "fused"

    def class_sizes(self) -> np.ndarray:
        """Samples per class (K), from the labels."""
        return np.bincount(self.labels, minlength=len(self.col_potentials))


@dataclass
class Problem:
    """Checked inputs of one run."""

    X: np.ndarray            # N x K, a dtype the kernels read
    lam: float
    a: np.ndarray            # K column marginals (float64, sums to 1)
    b: Optional[np.ndarray]  # N row weights (float64, sums to 1) or None (uniform 1/N)
    nthreads: int
    isa: int = 0
    #: the rows of one worker of several (.sharded.ShardRows), or None
    shard: Optional[object] = None
    #: the scores on a CUDA device (.device.DeviceScores; then X is that too), or None
    device: Optional[object] = None

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def k(self) -> int:
        return self.X.shape[1]

    @property
    def b0(self) -> float:
        return 1.0 / (self.n if self.shard is None else self.shard.n_total)

    def log_b(self) -> np.ndarray | None:
        return None if self.b is None else np.log(self.b)


def _raise_bad(pb: Problem, row: int, lam: float) -> None:
    if row >= 0:
        raise ValueError(describe_bad_row(pb.X, row, lam))


def _pass(pb: Problem, f, *, lam=None, labels=None, g=None, plan=None, unit_rows=False, check=False):
    lam = pb.lam if lam is None else lam
    if pb.shard is not None:
        return pb.shard.pass_(pb, f, lam, labels, g, plan, unit_rows, check)
    if pb.device is not None:
        colsum, colmax, bad = pb.device.pass_(f, lam, pb.b, pb.b0, labels, g, plan, unit_rows, check)
        if check:
            _raise_bad(pb, bad, lam)
        return colsum, colmax
    colsum = np.empty(pb.k)
    colmax = np.empty(pb.k)
    bad = core().sk_pass(pb.X, lam, f, pb.b, pb.b0, colsum, colmax, labels, g, plan, unit_rows, check,
                         pb.isa, pb.nthreads)
    if check:
        _raise_bad(pb, bad, lam)
    return colsum, colmax


def first_column_step(pb: Problem, rows: str) -> tuple[np.ndarray, np.ndarray]:
    """SeLa's / SwAV's start: (f_0, g_0), the column update from sample
    scalings exp(g_0) before any row normalisation.

    rows="uniform": g_0 = log b_i (SwAV: exp(scores / eps) as it is; SeLa on
    probabilities); rows="softmax": g_0 = log b_i - lam * logsumexp_k x_ik
    (SeLa on logits: its P is their softmax, P^lam its matrix).
    """
    lb = pb.log_b()
    g0 = np.full(pb.n, np.log(pb.b0)) if lb is None else lb.copy()
    if rows == "softmax":
        # a pass at lam = 1, f = 0 gives g = log b_i - logsumexp_k x_ik (and checks every value)
        g1 = np.empty(pb.n)
        _pass(pb, np.zeros(pb.k), lam=1.0, g=g1, check=True)
        g0 = g0 + pb.lam * (g1 - g0)
        lb_arg = g0
    else:
        lb_arg = lb
    with stage("col_lse"):
        if pb.shard is not None:
            lse = pb.shard.col_lse(pb, pb.lam, lb_arg, float(np.log(pb.b0)))
        elif pb.device is not None:
            lse = pb.device.col_lse(pb.lam, lb_arg, float(np.log(pb.b0)))
        else:
            lse = core().sk_col_lse(pb.X, pb.lam, lb_arg, float(np.log(pb.b0)), pb.nthreads)
    f0 = np.log(pb.a) - lse
    if not np.isfinite(f0).all():  # a NaN/inf score, or lam * x overflowing: name it
        _pass(pb, np.zeros(pb.k), check=True)
        raise ValueError("scores: the first column step is not finite")  # pragma: no cover
    return f0, g0


def _new_out(pb: Problem, shape, dtype):
    """An output of the passes: a host array, or (device path) a device one."""
    return np.empty(shape, dtype=dtype) if pb.device is None else pb.device.out(shape, dtype)


def run(pb: Problem, *, mode: str = "fused", n_iter: int | None = None, tol: float = 1e-3, max_iter: int = 1000,
        init: np.ndarray | None = None, start: str | None = None, want_plan: bool = False,
        plan_dtype=np.float64, unit_rows: bool = False, want_row_potentials: bool = False,
        on_pass: Callable[[int, float], None] | None = None) -> SinkhornResult:
    """The loop. ``start``: None (f = 0, or ``init``), or the first column step
    of SeLa/SwAV (``"uniform"``/``"softmax"``, see :func:`first_column_step`)."""
    rule = StopRule(mode, tol, n_iter, max_iter)
    log_a = np.log(pb.a)
    g_prev = None
    if init is not None:
        f = np.array(init, dtype=np.float64)
    elif start is not None:
        f, g_prev = first_column_step(pb, start)
    else:
        f = np.zeros(pb.k)
    if mode != "sela":
        g_prev = None
    labels = _new_out(pb, pb.n, np.int64)
    g = np.empty(pb.n) if (mode == "sela" or want_row_potentials) else None
    # the pass known to be the last one (fixed iteration count) writes the plan itself
    final_j = None if n_iter is None else (n_iter if mode == "sela" else n_iter + 1)
    plan = None
    history, sela_hist = [], []
    j, checked = 0, False
    while True:
        j += 1
        last = final_j is not None and j >= final_j
        if last and want_plan:
            plan = _new_out(pb, (pb.n, pb.k), plan_dtype)
        with stage("pass"):
            colsum, colmax = _pass(pb, f, labels=labels, g=g, plan=plan if last else None, unit_rows=unit_rows,
                                   check=not checked)
        checked = True
        err = l1_error(colsum, pb.a)
        history.append(err)
        s_err = None
        if rule.checks_sela(j) and g_prev is not None:
            s_err = sela_error(g_prev, g, None if pb.shard is None else pb.shard.nansum)
            sela_hist.append((rule.count(j) - 1, s_err))
        if on_pass is not None:
            on_pass(j, err if s_err is None else s_err)
        stop, converged = rule.done(j, err, s_err)
        if stop or j > max_iter + 1:
            break
        if g_prev is not None:
            g_prev[...] = g
        f = column_step(f, colsum, colmax, log_a)
    if want_plan and plan is None:
        # the loop stopped on tol: one more pass with the same potentials writes
        # the plan (the kernel is deterministic: it is the plan of the pass that stopped)
        plan = _new_out(pb, (pb.n, pb.k), plan_dtype)
        with stage("output_pass"):
            _pass(pb, f, plan=plan, unit_rows=unit_rows)
    return SinkhornResult(labels=labels, col_potentials=f, n_iter=rule.count(j), error=err, history=history,
                          converged=converged, plan=plan, row_potentials=g if want_row_potentials else None,
                          sela_history=sela_hist, mode=mode)
