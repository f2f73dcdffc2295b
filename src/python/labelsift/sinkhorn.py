"""Sinkhorn self-labelling: SeLa (Asano et al., ICLR 2020) and SwAV (Caron
et al., NeurIPS 2020) as fused C++ kernels that never produce NaN.

N samples are assigned to K classes so that class sizes follow a marginal
(equal by default, SeLa's equipartition) while following the model's
scores. With S = lam * scores (rows are shift-invariant) and potentials f
(one per class), every iteration is one read of S: for each row i,
t_k = S_ik + f_k, m = max_k t_k, s = sum_k exp(t_k - m), the row-normalised
plan pi_ik = b_i exp(t_k - m) / s is added into float64 column sums, and
after the pass f_k += log a_k - log colsum_k. Every exp argument is <= 0, so
nothing overflows; a column whose mass underflows takes the largest log plan
entry in it as its log mass (finite; documented in
``labelsift._sinkhorn.potentials``). Labels are argmax_k (S_ik + f_k), ties
to the lower class index. Column partial sums are float64 and added in a
fixed order over fixed row chunks, and the exp is labelsift's own polynomial
(identical in its scalar, SSE2, AVX2 and AVX-512 forms), so results are the
same on any thread count and any x86-64 CPU.

Functions (NumPy in, NumPy out; torch CPU tensors in, torch tensors out,
through DLPack -- torch is never imported by labelsift):

* :func:`self_label` -- hard labels (and on request the plan, potentials,
  error history);
* :func:`rebalance` -- probabilities whose column means match a prior;
* :func:`swav_codes` -- the soft codes of SwAV's ``distributed_sinkhorn``.
"""
from __future__ import annotations

import warnings

import numpy as np

from ._common import params
from ._common.backend import threads
from ._common.tensors import from_tensor
from ._sinkhorn.engine import MODES, Problem, SinkhornResult, run
from ._sinkhorn.inputs import as_distribution, as_lam, as_potentials, as_scores

__all__ = ["self_label", "rebalance", "swav_codes", "SinkhornResult"]

LOG_DOMAIN = ("auto", True, False)


def _no_group_device(group, device) -> None:
    if group is not None:
        raise NotImplementedError("group= (torch.distributed) is not available for this function")
    _cpu_only(device)


def _cpu_only(device) -> None:
    if device not in (None, "cpu"):
        raise ValueError(f"device={device!r}: only the CPU is available in this build")


def _sharded(group, prepare):
    """``prepare()`` on this rank, its error (if any rank has one) raised on
    every rank; then the rank's :class:`ShardRows` over ``group``
    (torch.distributed: ``True`` for the default group)."""
    from ._cl.sharded import capture
    from ._sinkhorn.sharded import ShardRows
    from .distributed import sinkhorn_comm
    comm = sinkhorn_comm(None if group is True else group)
    got = capture(prepare)()
    errs = comm.allgather(None if got[0] == "ok" else got[1])
    for e in errs:
        if e is not None:
            raise e
    pb = got[1]
    pb.shard = ShardRows(comm, pb.n)
    return pb


def _iters(n_iter, what="n_iter", low=0):
    if n_iter is None:
        return None
    return params.integer(n_iter, what, lo=low)


def _tol(tol) -> float:
    return params.real(tol, "tol", lo=0.0, hi=float("inf"))


def _plan_dtype(X: np.ndarray):
    return np.float64 if X.dtype == np.float64 else np.float32


def _problem(X, lam, marginals, row_weights, n_jobs, isa=0, device=None) -> Problem:
    n, k = X.shape
    a = np.full(k, 1.0 / k) if marginals is None else as_distribution(marginals, k, "marginals")
    b = None if row_weights is None else as_distribution(row_weights, n, "row_weights")
    return Problem(X, lam, a, b, threads(n_jobs), isa, device=device)


def _route(scores, device):
    """The device scores for a CUDA array (see ``_sinkhorn.device.route``), or None."""
    from ._sinkhorn.device import route
    return route(scores, device)


def _host_copy(ds):
    """(host copy of device scores, its to_caller, None): the CPU path for a CUDA array."""
    from ._common import cuda_arrays

    return ds.host(), (lambda r: cuda_arrays.to_caller(ds.arr, r)), None


def _same(x):
    return x


def _warn_unconverged(res: SinkhornResult, tol: float) -> None:
    if not res.converged:
        warnings.warn(f"Sinkhorn did not converge to tol={tol:g} in {res.n_iter} iterations "
                      f"(column error {res.error:.3g}); pass max_iter= or a larger tol", RuntimeWarning,
                      stacklevel=3)


def self_label(scores, *, kind="logits", lam=25.0, marginals=None, n_iter=None, tol=1e-3, log_domain="auto",
               return_plan=False, group=None, device=None, mode="fused", init=None, row_weights=None,
               max_iter=1000, return_info=False, n_jobs=None, callback=None, _isa=0):
    """Hard labels whose class sizes follow ``marginals`` (SeLa's self-labelling).

    Parameters
    ----------
    scores : (N, K) array, ``.npy`` path or torch CPU tensor
        ``kind="logits"`` or ``"log_probs"`` (used as they are) or
        ``"probs"`` (logged once: log(max(p, tiny)), an N x K array of the
        input dtype). float16/32/64 are read in place.
    lam : float
        SeLa's lambda: S = lam * scores (``lamb`` in SeLa, 25 on ImageNet).
    marginals : (K,) or None
        Target class proportions, positive, summing to 1 (within 1e-6);
        None = equipartition.
    row_weights : (N,) or None
        Row marginal, positive, summing to 1; None = 1/N each.
    n_iter, tol, max_iter
        ``n_iter=None``: iterate until the L1 column error of the
        row-normalised plan is <= ``tol`` (at most ``max_iter`` iterations,
        then a RuntimeWarning). ``n_iter`` given: exactly that many
        iterations; ``tol`` is then not used.
    mode : "fused" or "sela"
        ``"fused"`` (default): start from f = 0 (or ``init``), one pass per
        iteration as described in the module. ``"sela"``: SeLa's
        ``optimize_L_sk`` from the same start -- its first step is the
        column update from uniform sample scalings (on the softmax of
        logits), then rows first, and its relative change of the sample
        scalings is compared with ``tol`` every 10 iterations (SeLa uses
        tol=0.1 on ImageNet, 0.01 on CIFAR): the same labels and iteration
        count (10 m + 1) as SeLa's loop.
    init : (K,) column potentials or a :class:`SinkhornResult`
        Warm start (e.g. the previous epoch's ``col_potentials``).
    log_domain : "auto", True or False
        "auto"/True: the log-domain fused kernel (never NaN). False: the
        plain scaling loop of SeLa, exp(S) in float64 NumPy (an N x K
        float64 buffer; it underflows where the log domain does not) -- for
        comparisons only.
    return_plan : bool
        Also return the plan (N x K, rows summing to b_i; float64 for float64
        scores, else float32). Only on request: it doubles memory traffic.
    return_info : bool
        Return the whole :class:`SinkhornResult` (labels, plan if asked,
        potentials, error history, iteration count, convergence).
    n_jobs : int or None
        CPU threads; results do not depend on it.
    callback : callable or None
        Called after every pass over the scores as ``callback(pass_index,
        error)`` (the L1 column error; SeLa's criterion where mode="sela"
        evaluates it), e.g. for a progress display.
    group : torch.distributed process group, True (the default group) or None
        Each rank passes its own consecutive rows (rank 0 the first ones;
        an empty share is fine): labels, plan and row potentials for those
        rows, column potentials and iteration counts replicated -- all
        identical to the single-process run on the concatenated rows (the
        column sums are added in the single process's chunk order, see
        ``labelsift._sinkhorn.sharded``). Not with ``row_weights`` or
        ``log_domain=False``.
    device : None, "cpu", "cuda" or "cuda:<index>"
        ``scores`` as a CUDA array (torch, CuPy, anything with
        ``__cuda_array_interface__`` or DLPack) run on its device and
        stream (device None or "cuda"): the fused passes run there, only
        K-vectors cross to the host between passes; labels and plan come
        back as arrays of the caller's kind on that device. Labels, plan
        and column potentials equal the CPU path's (the row potentials
        within a few ulp: CUDA's log). ``kind="probs"``,
        ``log_domain=False``, ``group=`` and ``device="cpu"`` read a host
        copy of a CUDA array instead (same results, results in the
        caller's type). Host scores with ``device="cuda"``: ValueError
        (moving host scores to a GPU is not implemented).

    Returns
    -------
    labels (N,) int64; ``(labels, plan)`` with ``return_plan``; a
    :class:`SinkhornResult` with ``return_info``. Torch input gives torch
    output.
    """
    ds = _route(scores, device)
    if log_domain not in LOG_DOMAIN:
        raise ValueError(f"log_domain={log_domain!r} is not one of 'auto', True, False")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {', '.join(MODES)}")
    if group is not None and (row_weights is not None or log_domain is False):
        raise NotImplementedError("group= works with the log-domain loop and uniform rows only "
                                  "(no row_weights, no log_domain=False)")
    if ds is not None and (kind == "probs" or log_domain is False or group is not None or device == "cpu"):
        raw, to_caller, ds = _host_copy(ds)  # no kernel for these: the CPU path on a host copy
    elif ds is None:
        raw, to_caller = from_tensor(scores, "scores")
    lam = as_lam(lam)
    n_iter = _iters(n_iter, low=1 if mode == "sela" else 0)
    max_iter = _iters(max_iter, "max_iter", low=1)
    tol = _tol(tol)

    def prepare():
        if ds is not None:
            if kind not in ("logits", "log_probs"):  # pragma: no cover - routed to the host above
                raise AssertionError(kind)
            return _problem(ds, lam, marginals, row_weights, n_jobs, _isa, device=ds)
        X_ = as_scores(raw, kind, allow_empty=group is not None)
        return _problem(X_, lam, marginals, row_weights, n_jobs, _isa)

    pb = prepare() if group is None else _sharded(group, prepare)
    X = pb.X
    f0 = None if init is None else as_potentials(init, pb.k)
    if log_domain is False:
        from .reference.sinkhorn import self_label_scaling

        res = self_label_scaling(X, lam=lam, a=pb.a, b=pb.b, mode=mode, n_iter=n_iter, tol=tol, max_iter=max_iter,
                                 init=f0, logits=(kind == "logits"), want_plan=return_plan)
    else:
        start = None if f0 is not None or mode != "sela" else ("softmax" if kind == "logits" else "uniform")
        res = run(pb, mode=mode, n_iter=n_iter, tol=tol, max_iter=max_iter, init=f0, start=start,
                  want_plan=return_plan, plan_dtype=_plan_dtype(X), want_row_potentials=return_info,
                  on_pass=callback)
    _warn_unconverged(res, tol)
    if ds is not None:  # the outputs are already of the caller's kind, on its device
        res.labels = res.labels.result()
        if res.plan is not None:
            res.plan = res.plan.result()
        to_caller = _same
    if return_info:
        res.labels = to_caller(res.labels)
        if res.plan is not None:
            res.plan = to_caller(res.plan)
        return res
    if return_plan:
        return to_caller(res.labels), to_caller(res.plan)
    return to_caller(res.labels)


def rebalance(pred_probs, target_prior, *, tol=1e-6, n_iter=None, max_iter=1000, row_weights=None,
              return_info=False, n_jobs=None, group=None, device=None):
    """Probabilities whose column means match ``target_prior``.

    Q = diag(u) P diag(v) with every row summing to 1 and
    ``Q.mean(axis=0) == target_prior`` (within ``tol``, L1): the prior
    shift of Saerens et al. solved by Sinkhorn scaling (lam = 1, in the log
    domain). Returns Q (N x K; float64 for float64 input, else float32), or
    the :class:`SinkhornResult` (Q in ``.plan``) with ``return_info``.
    """
    _no_group_device(group, device)
    raw, to_caller = from_tensor(pred_probs, "pred_probs")
    X = as_scores(raw, "probs", "pred_probs")
    pb = _problem(X, 1.0, None, row_weights, n_jobs)
    pb.a = as_distribution(target_prior, pb.k, "target_prior")
    tol = _tol(tol)
    res = run(pb, mode="fused", n_iter=_iters(n_iter), tol=tol, max_iter=_iters(max_iter, "max_iter", low=1),
              want_plan=True, plan_dtype=_plan_dtype(X), unit_rows=True)
    _warn_unconverged(res, tol)
    res.plan = to_caller(res.plan)
    return res if return_info else res.plan


def swav_codes(scores, *, epsilon=0.05, n_iter=3, group=None, n_jobs=None, device=None):
    """SwAV's ``distributed_sinkhorn`` codes Q (B x K, rows sum to 1), in the log domain.

    The same update order as SwAV (prototype sums first, then sample
    normalisation) and the same fixed ``n_iter`` iterations, from
    exp(scores / epsilon) without any max subtraction in SwAV -- here every
    exponent is <= 0, so Q is finite where SwAV's overflows (epsilon too
    small, features not L2-normalised). Equal to SwAV's output (to rounding)
    where that is finite. Same dtype and type as the input (NumPy or torch
    CPU tensor). ``group`` (a torch.distributed group, or True for the
    default one): each rank passes its batch, as SwAV's
    ``distributed_sinkhorn`` does, and gets its rows of the codes --
    identical to the single-process codes of the concatenated batches.
    A CUDA array (torch/CuPy) runs on its device and stream and gets codes
    of its kind there (``device``: as for :func:`self_label`).
    """
    ds = _route(scores, device)
    if ds is not None and (group is not None or device == "cpu"):
        raw, to_caller, ds = _host_copy(ds)
    elif ds is None:
        raw, to_caller = from_tensor(scores, "scores")
    eps = as_lam(epsilon, "epsilon")
    n_iter = _iters(n_iter, low=1)
    if n_iter is None:
        raise ValueError("n_iter must be an integer >= 1 (SwAV's sinkhorn_iterations)")

    def prepare():
        if ds is not None:
            return _problem(ds, 1.0 / eps, None, None, n_jobs, device=ds)
        return _problem(as_scores(raw, "logits", allow_empty=group is not None), 1.0 / eps, None, None, n_jobs)

    pb = prepare() if group is None else _sharded(group, prepare)
    X = pb.X
    res = run(pb, mode="sela", n_iter=n_iter, start="uniform", want_plan=True,
              plan_dtype=np.float64 if X.dtype == np.float64 else np.float32, unit_rows=True)
    if ds is not None:  # already the caller's kind, on its device
        return res.plan.result(dtype=X.dtype)
    Q = res.plan if res.plan.dtype == X.dtype else res.plan.astype(X.dtype)
    return to_caller(Q)
