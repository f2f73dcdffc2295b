"""The body of ``labelsift.noise.simifeat`` (Docta's ``DetectLabel.simifeat``
and ``simi_feat_batch``).

Per round (``rounds``, Docta's ``num_epoch``): ``m = min(sample_size,
int(0.9 N))`` rows drawn without replacement (the third child of
SeedSequence(seed); HOC, for ``method="rank"``, uses the first two); each
sampled row votes with itself and its k - 1 nearest sampled rows (Docta's
``topk(k)`` includes self), weights ``1 - d``, the self distance replaced by
``2 d1 - d2``; the votes are L2-normalised; score = ``-log(v[given] + 1e-8)``
(higher = more likely corrupted; Docta's docstring says the opposite, its
code flags high scores).

* ``vote`` (Docta's ``mv``): flag when the first argmax of the votes is not
  the given label;
* ``rank``: per given class c, rho_c = 1 - min(T_given_noisy[c, c], 1),
  0.95 if >= 1, 0.05 if <= 0, where T_given_noisy[c, c] = T[c, c] py[c] /
  noisy_prior[c] from HOC; flag ``score >= np.percentile(score[class c],
  100 (1 - rho_c))`` (linear interpolation).

Across rounds: ``noisy_avg = (flags + 1) / (times_sampled + 2)``;
``is_noisy = np.round(noisy_avg)`` (half to even: exactly 0.5 is not
flagged, so a row never sampled is not flagged). Suggested label:
``argmax((suggest + 1) / (sum(suggest) + K))`` with the given label masked,
``suggest[i, c]`` counting the rounds in which i was flagged with vote c.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._common import params
from .._common.backend import core, threads
from .inputs import as_data, as_labels, sample_size_for, seed_streams
from .neighbours import Features, SampleNeighbours, search

METHODS = {"vote": "vote", "mv": "vote", "rank": "rank"}


@dataclass
class SimiFeatResult:
    """SimiFeat's verdicts, one entry per row.

    ``is_noisy`` (bool): flagged in more than half of the rounds that sampled
    it (after the +1/+2 smoothing); ``score`` = ``noisy_avg`` (higher = more
    likely wrong; Docta's ``label_error`` value); ``suggested_label``: the most
    often voted other label (meaningful where ``is_noisy``); ``ranked``: the
    flagged rows by descending score, ties by the lower index;
    ``times_sampled``/``times_flagged`` per row; ``hoc``: the HOCResult used
    by ``method="rank"`` (else None)."""

    is_noisy: np.ndarray
    score: np.ndarray
    suggested_label: np.ndarray
    ranked: np.ndarray
    times_sampled: np.ndarray
    times_flagged: np.ndarray
    method: str
    k: int
    rounds: int
    sample_size: int
    hoc: object = None


def rank_thresholds_rate(T: np.ndarray, py: np.ndarray, noisy_prior: np.ndarray) -> np.ndarray:
    """Docta's per-class noise rates rho_c (clipped as published)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        diag = np.diag(T) * py / noisy_prior
    rho = 1.0 - np.minimum(diag, 1.0)
    rho = np.where(rho >= 1.0, 0.95, rho)
    rho = np.where(rho <= 0.0, 0.05, rho)
    return np.where(np.isnan(rho), 0.95, rho)


def round_flags(score, pred, given, method, rho, k):
    """One round's flags (bool, per sampled row)."""
    if method == "vote":
        return pred != given
    flags = np.zeros(len(score), bool)
    for c in range(k):
        sel = given == c
        if not sel.any():
            continue
        thr = np.percentile(score[sel], 100 * (1 - rho[c]))
        flags |= (score >= thr) & sel
    return flags


def self_weights(d: np.ndarray) -> np.ndarray:
    """Weights (m, k) of [self, n1, ..., n_{k-1}] from the k-1 neighbour distances."""
    w = np.empty((d.shape[0], d.shape[1] + 1), np.float64)
    w[:, 0] = 1.0 - (2.0 * d[:, 0] - d[:, 1])
    w[:, 1:] = 1.0 - d
    return w


def detect(data, labels, num_classes=None, *, k=10, method="rank", rounds=21, sample_size=35000, seed=0,
           hoc=None, neighbours=None, n_jobs=None, progress=None, hoc_kwargs=None) -> SimiFeatResult:
    from .hoc import estimate as hoc_estimate

    d = as_data(data)
    y, K = as_labels(labels, d.n, num_classes)
    k = params.integer(k, "k", lo=3, hi=1 << 16)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be 'vote' (alias 'mv') or 'rank', got {method!r}")
    method = METHODS[method]
    rounds = params.integer(rounds, "rounds", lo=1, hi=1 << 20)
    m = sample_size_for(d.n, sample_size)
    on_device = d.kind == "device"
    if neighbours is None:
        neighbours = "sample" if d.kind in ("features", "device") else "full"
    if neighbours not in ("sample", "full"):
        raise ValueError(f"neighbours must be 'sample' or 'full' (or None), got {neighbours!r}")
    if d.kind == "lists" and neighbours == "sample":
        raise ValueError("neighbours='sample' needs features; neighbour lists are used as given (neighbours='full')")
    if neighbours == "sample" and m < k:
        raise ValueError(f"k = {k}: each round's sample has only {m} rows (min(sample_size, int(0.9 N)))")
    if d.kind == "lists" and d.indices.shape[1] < k - 1:
        raise ValueError(f"k = {k} needs {k - 1} neighbours per row (self is the k-th); "
                         f"the lists have {d.indices.shape[1]}")
    if d.kind != "lists" and neighbours == "full" and k - 1 > d.n - 1:
        raise ValueError(f"k = {k} is more than the {d.n} rows allow")
    nthreads = threads(n_jobs)
    _, _, rng = seed_streams(seed, 3)
    if method == "rank":
        if hoc is None:
            hoc = hoc_estimate(d.features if d.kind == "features" else data, y, K, sample_size=sample_size, seed=seed,
                               n_jobs=n_jobs, progress=progress, **(hoc_kwargs or {}))
        if not (hasattr(hoc, "transition_matrix") and hasattr(hoc, "py")):
            raise TypeError(f"hoc must be a HOCResult (labelsift.noise.hoc), got {type(hoc).__name__}")
        T = np.asarray(hoc.transition_matrix, np.float64)
        if T.shape != (K, K):
            raise ValueError(f"hoc: its transition matrix is {T.shape}, expected ({K}, {K})")
        rho = rank_thresholds_rate(T, np.asarray(hoc.py, np.float64), np.bincount(y, minlength=K) / d.n)
    else:
        rho = None
    feats = Features(d.features) if d.kind == "features" else None
    full_i = full_d = sampler = rounds_dev = None
    if on_device:  # every round's search and vote on the device (device.py)
        from .device import RoundNeighbours

        rounds_dev = RoundNeighbours(d.features, k - 1, neighbours, y)
    elif d.kind == "lists":
        full_i = d.indices[:, :k - 1]
        full_d = d.distances[:, :k - 1] if d.distances is not None else None
    elif neighbours == "full":
        full_i, full_d = search(feats, k - 1, d.features)
    else:
        sampler = SampleNeighbours(feats, k - 1, m / d.n, rounds, raw=d.features, nthreads=nthreads)
    flagged = np.zeros(d.n, np.int64)
    seen = np.zeros(d.n, np.int64)
    sugg_codes = []
    for r in range(rounds):
        sample = np.sort(rng.choice(d.n, m, replace=False))
        given = y[sample]
        if rounds_dev is not None:
            gv, pred = d.features.vote(*rounds_dev(sample), K)
        else:
            if sampler is None:
                nb, nd = full_i[sample], (None if full_d is None else full_d[sample])
            else:
                nb, nd = sampler(sample)
            nbr = np.ascontiguousarray(np.concatenate([sample[:, None], nb], axis=1))
            w = np.ones(nbr.shape, np.float64) if nd is None else self_weights(nd)
            gv, pred = core().nz_vote(y, nbr, w, given, K, nthreads)
        score = -np.log(gv + 1e-8)
        flags = round_flags(score, pred, given, method, rho, K)
        flagged[sample[flags]] += 1
        seen[sample] += 1
        sugg_codes.append(sample[flags] * K + pred[flags])
        if progress is not None:
            progress("simifeat rounds", r + 1, rounds)
    noisy_avg = (flagged + 1) / (seen + 2)
    is_noisy = np.round(noisy_avg).astype(bool)
    codes, cnt = np.unique(np.concatenate(sugg_codes) if sugg_codes else np.empty(0, np.int64), return_counts=True)
    suggested = suggested_labels(codes // K, codes % K, cnt, y, K)
    order = np.lexsort((np.arange(d.n), -noisy_avg))
    ranked = order[is_noisy[order]]
    return SimiFeatResult(is_noisy, noisy_avg, suggested, ranked, seen, flagged, method, k, rounds, m, hoc)


def suggested_labels(rows, cls, cnt, y, K):
    """argmax over c != y[i] of suggest[i, c] (first on ties): Docta's smoothed
    ``(suggest + 1) / (sum + K)`` has the same argmax (a constant per row)."""
    n = len(y)
    best = np.where(y == 0, 1, 0).astype(np.int64)
    best_cnt = np.zeros(n, np.int64)
    keep = cls != y[rows]
    rows, cls, cnt = rows[keep], cls[keep], cnt[keep]
    # codes are sorted by (row, class): the first maximum per row is the lowest class among ties
    order = np.lexsort((cls, -cnt, rows))
    rows, cls, cnt = rows[order], cls[order], cnt[order]
    first = np.ones(len(rows), bool)
    first[1:] = rows[1:] != rows[:-1]
    r, c, v = rows[first], cls[first], cnt[first]
    better = v > best_cnt[r]
    # a class with count 0 never beats the default (the lowest class != given)
    best[r[better]] = c[better]
    return best
