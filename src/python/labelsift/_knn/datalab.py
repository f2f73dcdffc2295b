"""Datalab's feature checks (cleanlab 2.9.0 ``datalab/internal/issue_manager``),
result for result, on labelsift's exact neighbours.

Formulas (see ``shared/spec/peers.md`` section 1):

* outliers: avg_i = mean of row i's k graph distances; scores
  exp(-t avg / max(s, 1e-6)) with s = max(median(avg), 100 eps); scores set
  to 1 where avg < tol (cosine 100 epsneg, euclidean sqrt(100 eps)); flag
  avg > Q3 + (1/0.37037 - 1) IQR;
* near duplicates: j in set(i) iff j is one of i's neighbours with
  d < 0.13 median(d1) (strict), then symmetrised (appended in increasing i);
  score 1 - exp(-d1 / median), 0 where d1 is close to 0;
* non-IID: KS statistic of the neighbours' index gaps against the
  background, 25 permutations (RandomState(seed): the global generator is
  never touched), Gaussian-KDE p-value, only argmin(score) flagged when
  p < 0.05; per-row scores as Datalab's ``_score_dataset``. Memory O(N k).
"""
from __future__ import annotations

import numpy as np

from .._common.params import integer, real

EPSILON = 1e-6
OUTLIER_THRESHOLD = 0.37037
NEAR_DUPLICATE_THRESHOLD = 0.13


def outlier_scores(distances, *, t=1, metric="cosine", threshold=None, scaling_factor=None):
    """(is_outlier (N,), score (N,), info) from an (N, k) distance array."""
    dist = np.asarray(distances)
    avg = dist.mean(axis=1)
    thr = OUTLIER_THRESHOLD if threshold is None else real(threshold, "threshold", lo=0, hi=1)
    q3 = np.percentile(avg, 75)
    pct = np.percentile(avg, [25, 75])
    iqr = np.subtract(pct[1], pct[0])
    scale = 1 / thr - 1 if thr != 0 else np.inf
    issue_threshold = float(q3 + scale * iqr)
    is_issue = avg > issue_threshold
    if scaling_factor is None:
        scaling_factor = float(max(np.median(avg), 100 * np.finfo(np.float64).eps))
    scores = np.exp(-t * avg / max(scaling_factor, EPSILON))
    name = {"l2": "euclidean"}.get(metric, metric)
    tol = {"cosine": 100 * np.finfo(np.float64).epsneg, "euclidean": np.sqrt(100 * np.finfo(np.float64).eps)}.get(name)
    if tol is not None:
        scores[avg < tol] = 1
    return is_issue, scores, {"issue_threshold": issue_threshold, "scaling_factor": scaling_factor,
                              "threshold": thr, "score": float(scores.mean())}


def near_duplicates(indices, distances, *, threshold=NEAR_DUPLICATE_THRESHOLD):
    """(is_near_duplicate (N,), score (N,), sets (list of int64 arrays), info)."""
    ind = np.asarray(indices)
    dist = np.asarray(distances)
    N = len(ind)
    d1 = dist[:, 0]
    median = max(np.median(d1), EPSILON)
    mask = (dist < threshold * median) & (ind >= 0)
    counts = mask.sum(axis=1)
    src = np.repeat(np.arange(N), counts)
    dst = ind[mask]
    # reverse edges missing: append i to set(j), in increasing i
    fwd = src * N + dst
    rev = dst * N + src
    missing = ~np.isin(rev, fwd)
    app_j, app_i = dst[missing], src[missing]
    order = np.lexsort((app_i, app_j))
    app_j, app_i = app_j[order], app_i[order]
    acounts = np.bincount(app_j, minlength=N)
    starts = np.concatenate([[0], np.cumsum(counts)])
    astarts = np.concatenate([[0], np.cumsum(acounts)])
    sets = [np.concatenate([dst[starts[i]:starts[i + 1]], app_i[astarts[i]:astarts[i + 1]]]).astype(np.int64)
            for i in range(N)]
    is_issue = np.zeros(N, bool)
    is_issue[dst] = True
    is_issue[src] = True
    temperature = 1.0 / median
    scores = 1 - np.exp(-temperature * d1)
    scores[np.isclose(d1, 0)] = 0
    return is_issue, scores, sets, {"median_distance_to_nearest_neighbor": float(median),
                                    "threshold": threshold, "score": float(scores.mean())}


def _background_cdf(N):
    return np.cumsum((N - np.arange(1, N)) / (N * (N - 1) / 2))


def _ks(gaps, N, bg_cdf):
    """Datalab's KS statistic of the flattened index gaps, without sorting:
    the sorted array's runs of equal values come from a bincount, and the
    maximum over a run is at one of its ends (the same float64 values as
    arange(M) / (M - 1) and background_cdf[v - 1])."""
    cnt = np.bincount(gaps.ravel(), minlength=N)
    cnt[N - 1] += 1  # the appended N - 1
    M = int(cnt.sum())
    vals = np.flatnonzero(cnt)
    first = np.cumsum(cnt)[vals] - cnt[vals]
    last = first + cnt[vals] - 1
    b = bg_cdf[vals - 1]
    return float(max(np.max(np.abs(first / (M - 1) - b)), np.max(np.abs(last / (M - 1) - b))))


def _scores(gaps, N, block=1 << 15):
    """Datalab's ``NonIIDIssueManager._score_dataset``, in row blocks."""
    out = np.empty(N)
    middle = np.floor((N - 1) / 2).astype(int)
    for a in range(0, N, block):
        g = gaps[a:a + block]
        n = len(g)
        sn = np.sort(g, axis=1)
        dd = np.arange(a, a + n).reshape(n, 1)
        dd[dd > middle] -= N - 1
        dd = np.abs(dd)
        sn = np.hstack([sn, np.ones((n, 1)) * (N - 1)]).astype(int)
        beg = sn <= dd
        mid = (sn > dd) & (sn <= (N - dd - 1))
        end = sn > (N - dd - 1)
        sh = np.zeros(sn.shape)
        sh[:, 1:] = sn[:, :-1]
        diffs = sn - sh
        area_beg = (dd ** 2) / (N - 1)
        length = N - 2 * dd - 1
        aa = 2 * dd / (N - 1)
        area_mid = 0.5 * (aa + 1) * length
        bga = np.zeros(diffs.shape)
        bga[beg] = ((sn ** 2) / (N - 1))[beg]
        bga[mid] = (area_beg + 0.5 * ((sn + 3 * dd) * (sn - dd) / (N - 1)))[mid]
        bga[end] = (area_beg + area_mid + (sn - (N - dd - 1) * 1.0))[end]
        shb = np.zeros(bga.shape)
        shb[:, 1:] = bga[:, :-1]
        bgd = bga - shb
        fg = np.arange(sn.shape[1]) / (sn.shape[1] - 1)
        stats = np.sum(np.abs(fg.reshape(1, -1) * diffs - bgd), axis=1)
        idx = np.arange(a, a + n)
        rev = N - idx
        out[a:a + n] = stats / np.where(idx > rev, idx, rev)
    return np.tanh(-1 * out) + 1


def non_iid(indices, *, num_permutations=25, seed=0, significance_threshold=0.05):
    """(is_non_iid (N,), score (N,), info with the p-value)."""
    from .._common.optional import optional
    gaussian_kde = optional("scipy.stats", "the non-IID check (its p-value is SciPy's gaussian_kde)").gaussian_kde

    ind = np.asarray(indices, dtype=np.int64)
    N = len(ind)
    num_permutations = integer(num_permutations, "num_permutations", lo=2)
    gaps = np.abs(np.arange(N).reshape(-1, 1) - ind)
    bg = _background_cdf(N)
    ks_obs = _ks(gaps, N, bg)
    rs = np.random.RandomState(seed)
    ks = []
    for _ in range(num_permutations):
        p = rs.permutation(N)
        ks.append(_ks(np.abs(p[:, None] - p[ind]), N, bg))
    p_value = float(gaussian_kde(np.array(ks)).integrate_box(ks_obs, 100))
    scores = _scores(gaps, N)
    is_issue = np.zeros(N, bool)
    if p_value < significance_threshold:
        is_issue[scores.argmin()] = True
    return is_issue, scores, {"p-value": p_value, "ks": ks_obs}
