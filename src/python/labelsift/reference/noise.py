"""NumPy float64 ports of Docta's HOC and SimiFeat: the oracles of
labelsift.noise's tests and the peer of bench/bench_noise.py.

These follow Docta's code path literally -- per round, the full sample x
sample cosine distance matrix (here in tiles of rows, float64), the k
smallest per row, dense K^3 counts, the solver written with einsums from
the consensus equations -- with three changes that make a port testable:

* the randomness is NumPy Generators from ``SeedSequence(seed)`` (children 0,
  1: HOC's samples, its prior's initialisation; 2: SimiFeat's samples), as in
  labelsift.noise, where Docta uses the unseeded global generators;
* self is excluded by identity and ties go to the lower index (Docta: the
  order of ``torch.topk``);
* float64 throughout (Docta: float32).

Nothing here is compiled or optimised; nothing imports labelsift's kernels.
"""
from __future__ import annotations

import numpy as np


# ---------------------------------------------------------------------------
# Neighbours (Docta: cosDistance + topk over the sample)
# ---------------------------------------------------------------------------
def normalise(features) -> np.ndarray:
    """torch.nn.functional.normalize(features, dim=1) in float64."""
    f = np.asarray(features, dtype=np.float64)
    nrm = np.sqrt((f * f).sum(axis=1))
    return f / np.maximum(nrm, 1e-12)[:, None]


def knn_in(xn: np.ndarray, rows: np.ndarray, k: int, tile: int = 1024):
    """The k nearest of each of ``rows`` among ``rows`` themselves (global
    ids, sorted), self excluded: (indices (m, k) global, distances (m, k))."""
    rows = np.asarray(rows, np.int64)
    xs = xn[rows]
    m = len(rows)
    out_i = np.empty((m, k), np.int64)
    out_d = np.empty((m, k), np.float64)
    for lo in range(0, m, tile):
        d = 1.0 - xs[lo:lo + tile] @ xs.T
        t = d.shape[0]
        d[np.arange(t), lo + np.arange(t)] = np.inf
        kth = np.partition(d, k - 1, axis=1)[:, k - 1]
        r, c = np.nonzero(d <= kth[:, None])         # every row's k smallest, and any ties with the k-th
        order = np.lexsort((c, d[r, c], r))           # by row, then (distance, index)
        r, c = r[order], c[order]
        start = np.searchsorted(r, np.arange(t))
        take = (start[:, None] + np.arange(k)).ravel()
        out_i[lo:lo + t] = rows[c[take]].reshape(t, k)
        out_d[lo:lo + t] = d[r[take], c[take]].reshape(t, k)
    return out_i, out_d


def knn_full(xn: np.ndarray, k: int, tile: int = 1024):
    return knn_in(xn, np.arange(len(xn)), k, tile)


def _streams(seed: int, count: int):
    return [np.random.default_rng(c) for c in np.random.SeedSequence(seed).spawn(count)]


# ---------------------------------------------------------------------------
# HOC
# ---------------------------------------------------------------------------
def consensus_counts(labels: np.ndarray, rows: np.ndarray, nbr: np.ndarray, num_classes: int):
    """Docta's ``consensus_counts`` of the patterns (y[row], y[nbr0], y[nbr1]): dense c1, c2, c3."""
    k = num_classes
    a, b, c = labels[rows], labels[nbr[:, 0]], labels[nbr[:, 1]]
    c1 = np.zeros(k)
    c2 = np.zeros((k, k))
    c3 = np.zeros((k, k, k))
    np.add.at(c1, a, 1)
    np.add.at(c2, (a, b), 1)
    np.add.at(c3, (a, b, c), 1)
    return c1, c2, c3


def consensus_analytical(T: np.ndarray, p: np.ndarray):
    """c1 = T^T p, c2 = T^T diag(p) T, c3[a,b,c] = sum_k p_k T_ka T_kb T_kc."""
    return (np.einsum("k,ka->a", p, T), np.einsum("k,ka,kb->ab", p, T, T),
            np.einsum("k,ka,kb,kc->abc", p, T, T, T))


def _softmax(a, axis):
    z = np.exp(a - a.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def hoc_loss_grad(A: np.ndarray, b: np.ndarray, c_est):
    """Docta's ``func`` (sum of unsquared norms) and its gradient in the logits."""
    T = _softmax(A, 1)
    p = _softmax(b, 0)
    c_ana = consensus_analytical(T, p)
    loss = 0.0
    E = []
    for est, ana in zip(c_est, c_ana):
        r = ana - est
        n = np.sqrt((r ** 2).sum())
        loss += n
        E.append(r / n if n > 0 else np.zeros_like(r))
    e1, e2, e3 = E
    dT = (np.einsum("a,k->ka", e1, p)
          + np.einsum("ab,k,kb->ka", e2, p, T) + np.einsum("ab,k,ka->kb", e2, p, T)
          + np.einsum("abc,k,kb,kc->ka", e3, p, T, T) + np.einsum("abc,k,ka,kc->kb", e3, p, T, T)
          + np.einsum("abc,k,ka,kb->kc", e3, p, T, T))
    dp = (np.einsum("a,ka->k", e1, T) + np.einsum("ab,ka,kb->k", e2, T, T)
          + np.einsum("abc,ka,kb,kc->k", e3, T, T, T))
    dA = T * (dT - (dT * T).sum(axis=1, keepdims=True))
    db = p * (dp - (dp * p).sum())
    return loss, dA, db


def calc_func(c_est, num_classes: int, p_init: np.ndarray, steps: int = 1501, lr: float = 0.1,
              keep_best: bool = False):
    """Docta's ``calc_func``: Adam (torch's update) from T0 = 5I - 1, P0 = p_init.

    ``keep_best=False`` is the published behaviour (the final T: the
    recorded ``T_rec`` aliases T); True returns the best iterate after step 5.
    Returns (T, p, loss of the returned iterate, its step)."""
    k = num_classes
    A = 5.0 * np.eye(k) - np.ones((k, k))
    b = np.array(p_init, np.float64)
    state = [[np.zeros_like(A), np.zeros_like(A)], [np.zeros_like(b), np.zeros_like(b)]]
    b1, b2, eps = 0.9, 0.999, 1e-8
    loss_min, rec = 100.0, (A, b, None, 0)
    loss = grads = None
    for step in range(steps):
        if step:
            for x, g, (m, v) in zip((A, b), grads, state):
                m[...] = m + (1 - b1) * (g - m)
                v[...] = v * b2 + (1 - b2) * g * g
                denom = np.sqrt(v) / np.sqrt(1 - b2 ** step) + eps
                x -= (lr / (1 - b1 ** step)) * (m / denom)
        loss, dA, db = hoc_loss_grad(A, b, c_est)
        grads = (dA, db)
        if loss < loss_min and step > 5:
            loss_min = loss
            rec = (A.copy(), b.copy(), loss, step) if keep_best else (A, b, None, None)
    if keep_best and rec[2] is not None:
        return _softmax(rec[0], 1), _softmax(rec[1], 0), rec[2], rec[3]
    return _softmax(A, 1), _softmax(b, 0), loss, steps - 1


def estimator_hoc(features, labels, num_classes: int, *, rounds: int = 50, sample_size: int = 35000,
                  steps: int = 1501, seed: int = 0, keep_best: bool = False, lr: float = 0.1,
                  neighbours: str = "sample", indices=None):
    """Docta's ``estimator_hoc``. ``features=None`` with ``indices`` (N x >=2)
    uses the given lists (Docta's ``already_2nn``). Returns a dict with T
    ([true, noisy]), p, loss, step and c_est."""
    labels = np.asarray(labels, np.int64)
    n = len(labels)
    k = num_classes
    m = min(sample_size, int(0.9 * n))
    rng_sample, rng_init = _streams(seed, 2)
    xn = None if features is None else normalise(features)
    full = None
    if indices is not None:
        full = np.asarray(indices, np.int64)[:, :2]
    elif neighbours == "full":
        full = knn_full(xn, 2)[0]
    c_est = None
    for _ in range(rounds):
        sample = np.sort(rng_sample.choice(n, m, replace=False))
        nbr = full[sample] if full is not None else knn_in(xn, sample, 2)[0]
        cnt = consensus_counts(labels, sample, nbr, k)
        cnt = [c / m for c in cnt]
        c_est = cnt if c_est is None else [a + c for a, c in zip(c_est, cnt)]
    c_est = [c / rounds for c in c_est]
    p_init = 1.0 / k + 0.1 * rng_init.random(k)
    T, p, loss, step = calc_func(c_est, k, p_init, steps, lr, keep_best)
    return {"T": T, "p": p, "loss": loss, "step": step, "c_est": c_est, "p_init": p_init}


# ---------------------------------------------------------------------------
# SimiFeat
# ---------------------------------------------------------------------------
def knn_vote(labels: np.ndarray, nbr: np.ndarray, w: np.ndarray, num_classes: int):
    """Docta's ``count_knn_distribution`` with l2 norm: votes (m, K) added in
    neighbour order, divided by max(||.||, 1e-12)."""
    m, k = nbr.shape
    cnt = np.zeros((m, num_classes))
    r = np.arange(m)
    for j in range(k):
        cnt[r, labels[nbr[:, j]]] += w[:, j]
    nrm = np.sqrt((cnt * cnt).sum(axis=1))
    return cnt / np.maximum(nrm, 1e-12)[:, None]


def simi_feat_round(labels, sample, nb, nd, num_classes, method, T_given_noisy_diag=None):
    """One ``simi_feat_batch``: (flags, vote argmax) of the sampled rows."""
    nbr = np.concatenate([sample[:, None], nb], axis=1)
    if nd is None:
        w = np.ones(nbr.shape)
    else:
        vals = np.concatenate([np.zeros((len(sample), 1)), nd], axis=1)
        vals[:, 0] = 2.0 * vals[:, 1] - vals[:, 2]
        w = 1.0 - vals
    prob = knn_vote(labels, nbr, w, num_classes)
    given = labels[sample]
    score = -np.log(prob[np.arange(len(sample)), given] + 1e-8)
    pred = np.argmax(prob, axis=1)
    if method == "vote":
        return pred != given, pred
    flags = np.zeros(len(sample), bool)
    for c in range(num_classes):
        rho = 1 - min(1.0 * T_given_noisy_diag[c], 1.0)
        if rho >= 1.0:
            rho = 0.95
        elif rho <= 0.0:
            rho = 0.05
        sel = given == c
        if not sel.any():
            continue
        thr = np.percentile(score[sel], 100 * (1 - rho))
        flags |= (score >= thr) & sel
    return flags, pred


def simifeat(features, labels, num_classes: int, *, k: int = 10, method: str = "rank", rounds: int = 21,
             sample_size: int = 35000, seed: int = 0, T=None, p=None, neighbours: str = "sample",
             indices=None, distances=None, hoc_kwargs=None):
    """Docta's ``DetectLabel.simifeat``. For ``rank``, T and p default to
    :func:`estimator_hoc` (keep_best=True, as labelsift.noise.hoc's default).
    Returns dict(is_noisy, score (noisy_avg), suggested_label, ...)."""
    labels = np.asarray(labels, np.int64)
    n = len(labels)
    K = num_classes
    m = min(sample_size, int(0.9 * n))
    diag = None
    if method == "rank":
        if T is None:
            est = estimator_hoc(features, labels, K, sample_size=sample_size, seed=seed, indices=indices,
                                keep_best=True, **(hoc_kwargs or {}))
            T, p = est["T"], est["p"]
        p_org = np.bincount(labels, minlength=K) / n
        diag = np.diag(T * np.asarray(p).reshape(K, 1) / p_org)
    rng = _streams(seed, 3)[2]
    xn = None if features is None else normalise(features)
    full_i = full_d = None
    if indices is not None:
        full_i = np.asarray(indices, np.int64)[:, :k - 1]
        full_d = None if distances is None else np.asarray(distances, np.float64)[:, :k - 1]
    elif neighbours == "full":
        full_i, full_d = knn_full(xn, k - 1)
    sel_noisy = np.zeros((rounds, n))
    times = np.zeros(n)
    suggest = np.zeros((n, K))
    for e in range(rounds):
        sample = np.sort(rng.choice(n, m, replace=False))
        if full_i is not None:
            nb, nd = full_i[sample], (None if full_d is None else full_d[sample])
        else:
            nb, nd = knn_in(xn, sample, k - 1)
        flags, pred = simi_feat_round(labels, sample, nb, nd, K, method, diag)
        sel_noisy[e][sample[flags]] = 1
        times[sample] += 1
        suggest[sample[flags], pred[flags]] += 1
    noisy_avg = (sel_noisy.sum(0) + 1) / (times + 2)
    is_noisy = np.round(noisy_avg).astype(bool)
    sm = (suggest + 1) / (suggest.sum(1).reshape(-1, 1) + K)
    sm[np.arange(n), labels] = -1
    return {"is_noisy": is_noisy, "score": noisy_avg, "suggested_label": np.argmax(sm, axis=1),
            "times_sampled": times.astype(np.int64), "times_flagged": sel_noisy.sum(0).astype(np.int64),
            "T": T, "p": p}
