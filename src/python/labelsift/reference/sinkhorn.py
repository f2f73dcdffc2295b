"""Plain-NumPy float64 references of Sinkhorn self-labelling: the oracles of
``labelsift.sinkhorn``'s tests. Written to be read, not to be fast (every
function holds N x K float64 arrays).

* :func:`self_label` -- the log-domain loop of the kernels, whole arrays,
  np.exp and NumPy sums, with the same start, updates and stop rules
  (:mod:`labelsift._sinkhorn.potentials`, shared with the engine);
* :func:`self_label_scaling` -- the plain scaling loop exp(S) (SeLa's
  arithmetic), the same rules; it underflows where the log domain does not;
* :func:`sela_optimize_L_sk` -- a line-by-line port of SeLa's
  ``sinkhornknopp.optimize_L_sk`` (yukimasano/self-label @ 3891e376);
* :func:`swav_distributed_sinkhorn` -- a port of SwAV's
  ``distributed_sinkhorn`` (facebookresearch/swav @ 06b1b7cb, one process),
  in the input's dtype, overflow included;
* :func:`swav_codes`, :func:`rebalance` -- the log-domain float64 versions
  of the public functions.
"""
from __future__ import annotations

import numpy as np

from .._sinkhorn.engine import SinkhornResult
from .._sinkhorn.potentials import StopRule, column_step, l1_error, sela_error


def _lse(v: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(v, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(v - m), axis=axis))


def _scores64(scores, kind: str) -> np.ndarray:
    x = np.asarray(scores)
    if kind == "probs":
        tiny = np.finfo(x.dtype).tiny if x.dtype.kind == "f" else np.finfo(np.float64).tiny
        x = np.log(np.maximum(x, tiny))
    return np.asarray(x, dtype=np.float64)


def _start(X: np.ndarray, lam: float, lb: np.ndarray, log_a: np.ndarray, rows: str):
    S = lam * X
    g0 = lb.copy()
    if rows == "softmax":
        g0 = lb - lam * _lse(X, 1)  # SeLa's P^lam of P = softmax(x)
    f0 = log_a - _lse(S + g0[:, None], 0)
    return f0, g0


def _row_pass(S, f, lb):
    t = S + f
    m = t.max(axis=1)
    labels = t.argmax(axis=1)
    d = t - m[:, None]
    e = np.exp(d)
    s = e.sum(axis=1)
    lw = lb - np.log(s)
    pi = e * np.exp(lw)[:, None]
    return labels, pi, pi.sum(axis=0), (d + lw[:, None]).max(axis=0), lw - m, s


def self_label(scores, *, kind="logits", lam=25.0, marginals=None, row_weights=None, n_iter=None, tol=1e-3,
               mode="fused", init=None, max_iter=1000, start=None, unit_rows=False) -> SinkhornResult:
    """The kernels' loop in float64 NumPy (see labelsift.sinkhorn.self_label)."""
    X = _scores64(scores, kind)
    N, K = X.shape
    S = lam * X
    a = np.full(K, 1.0 / K) if marginals is None else np.asarray(marginals, np.float64) / np.sum(marginals)
    b = np.full(N, 1.0 / N) if row_weights is None else np.asarray(row_weights, np.float64) / np.sum(row_weights)
    lb, log_a = np.log(b), np.log(a)
    rule = StopRule(mode, tol, n_iter, max_iter)
    g_prev = None
    if init is not None:
        f = np.array(init, dtype=np.float64)
    elif mode == "sela" or start is not None:
        f, g_prev = _start(X, lam, lb, log_a, start or ("softmax" if kind == "logits" else "uniform"))
    else:
        f = np.zeros(K)
    if mode != "sela":
        g_prev = None
    history, sela_hist = [], []
    j = 0
    while True:
        j += 1
        labels, pi, colsum, colmax, g, s = _row_pass(S, f, lb)
        err = l1_error(colsum, a)
        history.append(err)
        s_err = None
        if rule.checks_sela(j) and g_prev is not None:
            s_err = sela_error(g_prev, g)
            sela_hist.append((j - 1, s_err))
        stop, converged = rule.done(j, err, s_err)
        if stop:
            break
        if g_prev is not None:
            g_prev = g
        f = column_step(f, colsum, colmax, log_a)
    plan = pi / b[:, None] if unit_rows else pi
    return SinkhornResult(labels=labels.astype(np.int64), col_potentials=f, n_iter=rule.count(j), error=err,
                          history=history, converged=converged, plan=plan, row_potentials=g,
                          sela_history=sela_hist, mode=mode)


def self_label_scaling(scores, *, lam, a, b=None, mode="fused", n_iter=None, tol=1e-3, max_iter=1000, init=None,
                       logits=True, want_plan=False, kind=None) -> SinkhornResult:
    """The same loop with the plain scaling arithmetic of SeLa: P = exp(S) once
    (float64, no max subtraction; it under- or overflows where the log
    domain does not), r = a / (P c), c = b / (P^T r). ``scores`` are already
    log-domain (log-probabilities or logits)."""
    X = np.asarray(scores, dtype=np.float64)
    N, K = X.shape
    b = np.full(N, 1.0 / N) if b is None else np.asarray(b, np.float64)
    a = np.asarray(a, np.float64)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        P = np.exp(lam * X)
        if mode == "sela" and logits and init is None:
            P = P / np.sum(np.exp(X), axis=1, keepdims=True) ** lam  # softmax(x)^lam
        rule = StopRule(mode, tol, n_iter, max_iter)
        if init is not None:
            r = np.exp(np.asarray(init, np.float64))
        elif mode == "sela":
            r = a / (b @ P)
        else:
            r = np.ones(K)
        c_prev = b.copy() if mode == "sela" else None
        history, sela_hist = [], []
        j = 0
        while True:
            j += 1
            c = b / (P @ r)
            pi_cols = (c @ P) * r
            err = l1_error(pi_cols, a)
            history.append(err)
            s_err = None
            if rule.checks_sela(j) and c_prev is not None:
                s_err = float(np.nansum(np.abs(c_prev / c - 1)))
                sela_hist.append((j - 1, s_err))
            stop, converged = rule.done(j, err, s_err)
            if stop:
                break
            if c_prev is not None:
                c_prev = c
            r = a / (c @ P)
        labels = np.argmax(P * r, axis=1).astype(np.int64)
        plan = (P * r) * c[:, None] if want_plan else None
        f = np.log(r)
    return SinkhornResult(labels=labels, col_potentials=f, n_iter=rule.count(j), error=err, history=history,
                          converged=converged, plan=plan, sela_history=sela_hist, mode=mode)


def sela_optimize_L_sk(probs, lamb=25, tol=1e-1):
    """SeLa's ``optimize_L_sk`` (CPU version), line by line, on an N x K
    matrix of softmax outputs. Returns (labels, iterations)."""
    PS = np.asarray(probs, dtype=np.float64).T.copy()  # K x N
    K, N = PS.shape
    r = np.ones((K, 1)) / K
    c = np.ones((N, 1)) / N
    PS **= lamb
    inv_K = 1.0 / K
    inv_N = 1.0 / N
    err = 1e6
    _counter = 0
    while err > tol:
        r = inv_K / (PS @ c)
        c_new = inv_N / (r.T @ PS).T
        if _counter % 10 == 0:
            err = np.nansum(np.abs(c / c_new - 1))
        c = c_new
        _counter += 1
    PS *= np.squeeze(c)
    PS = PS.T
    PS *= np.squeeze(r)
    PS = PS.T
    argmaxes = np.nanargmax(PS, 0)
    return argmaxes.astype(np.int64), _counter


def swav_distributed_sinkhorn(out, epsilon=0.05, sinkhorn_iterations=3):
    """SwAV's ``distributed_sinkhorn`` for one process, in the input's dtype
    (NaN/inf where its exp overflows, as SwAV's)."""
    out = np.asarray(out)
    with np.errstate(over="ignore", invalid="ignore"):
        Q = np.exp(out / out.dtype.type(epsilon)).T
        B = Q.shape[1]
        K = Q.shape[0]
        Q /= np.sum(Q)
        for _ in range(sinkhorn_iterations):
            Q /= np.sum(Q, axis=1, keepdims=True)
            Q /= K
            Q /= np.sum(Q, axis=0, keepdims=True)
            Q /= B
        Q *= B
    return Q.T


def swav_codes(scores, epsilon=0.05, n_iter=3) -> np.ndarray:
    """SwAV's codes in the log domain, float64 (finite where SwAV's overflow)."""
    X = np.asarray(scores, dtype=np.float64)
    return self_label(X, kind="logits", lam=1.0 / epsilon, mode="sela", n_iter=n_iter, start="uniform",
                      unit_rows=True).plan


def rebalance(pred_probs, target_prior, tol=1e-6, n_iter=None, max_iter=1000) -> np.ndarray:
    """Rows sum to 1, column means = target_prior (float64)."""
    return self_label(pred_probs, kind="probs", lam=1.0, marginals=target_prior, n_iter=n_iter, tol=tol,
                      max_iter=max_iter, unit_rows=True).plan
