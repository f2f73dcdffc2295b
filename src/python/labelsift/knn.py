"""k-NN neighbourhood agreement: exact search, neighbour label statistics and
cleanlab Datalab's feature checks, result for result, without N x N memory.

* :func:`search` -- exact k-NN (cosine or L2) at float32-GEMM speed, proven
  by a rounding-error certificate (``labelsift._knn.search``);
* :func:`label_counts`, :func:`agreement`, :func:`knn_pred_probs` -- label
  statistics over neighbour lists;
* :func:`outlier_scores`, :func:`near_duplicates`, :func:`non_iid`,
  :func:`correct_exact_duplicates`, :func:`find_issues` -- Datalab's checks.

Every function that takes neighbours accepts an (N, k) index array, a pair
``(indices, distances)`` or a SciPy CSR kNN graph (Datalab's ``knn_graph``).
"""
from __future__ import annotations

import numpy as np

from ._common.params import flag, integer
from ._knn import counts as _counts
from ._knn import datalab as _dl
from ._knn.features import as_features
from ._knn.graph import Neighbors, as_neighbors, correct_exact_duplicates as _correct
from ._knn.graph import exact_duplicate_sets, to_csr
from ._knn.search import SearchInfo, check_metric
from ._knn.search import search as _search
from ._knn.search import search_metrics as _search_metrics

__all__ = ["search", "label_counts", "agreement", "knn_pred_probs", "outlier_scores", "near_duplicates",
           "non_iid", "correct_exact_duplicates", "exact_duplicate_sets", "find_issues", "SearchInfo",
           "default_metric", "simifeat"]


def _route(features, database, backend, device) -> str:
    """Where a search runs: "cpu" (host input), "cuda" (CUDA arrays on their
    device and the library's current stream), or "host_copy" (CUDA arrays
    searched on the CPU: ``device="cpu"`` or ``backend="cpu"``)."""
    from ._common.cuda_arrays import is_cuda_array
    from ._sinkhorn.device import is_cuda_device

    if backend not in ("auto", "cpu", "numpy", "cuda"):
        raise ValueError(f"backend={backend!r} is not one of 'auto', 'cpu', 'numpy', 'cuda'")
    if device not in (None, "cpu") and not is_cuda_device(device):
        raise ValueError(f"device={device!r} is not one of None, 'cpu', 'cuda', 'cuda:<index>'")
    on_gpu = is_cuda_array(features)
    if database is not None and is_cuda_array(database) != on_gpu:
        raise TypeError("features and database must both be CUDA arrays or both host arrays")
    wants_gpu = backend == "cuda" or is_cuda_device(device)
    if not on_gpu:
        if wants_gpu:
            raise ValueError(f"{'device=' + repr(device) if device else 'backend=' + repr(backend)}: moving host "
                             "features to a GPU is not implemented; pass them as a CUDA array (torch, CuPy)")
        return "cpu"
    if backend in ("cpu", "numpy") or device == "cpu":
        if wants_gpu:
            raise ValueError(f"backend={backend!r} and device={device!r} disagree")
        return "host_copy"
    return "cuda"


def search(features, database=None, *, k=10, metric="cosine", exclude_self=True, backend="auto", device=None,
           n_jobs=None, tile=None, extra=None, gram="auto", return_info=False):
    """Exact k nearest neighbours of every row of ``features`` (against
    ``features`` itself, or against ``database``).

    Returns ``(indices int64 (N, k), distances float32 (N, k))`` [, SearchInfo]:
    the k smallest float64 distances computed from the input values, ties by
    (distance, lower index), self excluded by identity (its own index, never
    a duplicate of it) when searching one set with ``exclude_self``.
    Identical on any thread count (``n_jobs``) and tile size
    (``tile=(query_rows, database_rows)``). ``extra`` = r, the candidates kept
    per row beyond k (default max(16, k)); ``SearchInfo.fallback_rows`` counts
    rows recomputed exhaustively because the float32 candidates could not be
    proven. Features: float16/32/64 (bfloat16 and integers are widened)
    arrays, memmaps or ``.npy`` paths.

    CUDA arrays (torch, CuPy, anything with ``__cuda_array_interface__`` or
    DLPack; float16/32/64) are searched on their device (``device`` None or
    "cuda[:i]"): the Gram tiles through the caller's PyTorch/CuPy in
    ``gram`` precision ("auto", "tf32", "bf16", "fp32"; see
    ``labelsift._knn.device``), selection, float64 re-rank and fallback in
    labelsift's kernels; the same indices and distances as the CPU search,
    returned as arrays of the caller's kind (NumPy for other producers).
    ``device="cpu"`` searches a host copy instead. At most 1024 candidates
    (k + extra) per row on the device.

    On the CPU, ``gram="auto"`` computes the Gram tiles (of a set searched
    against itself, or of queries against a database, with tiles that are
    multiples of 32) on Intel AMX where the CPU and OS allow it (each float32
    value split into two bfloat16 parts, three tile products, float32
    accumulation: ``SearchInfo.gram == "amx-bf16x3"``; ``LABELSIFT_NO_AMX=1``
    turns it off), otherwise in float32; ``gram="fp32"`` always in float32.
    The certificate uses each one's error bound, so the neighbours are the
    same; only ``fallback_rows`` and the time differ.
    """
    where = _route(features, database, backend, device)
    exclude_self = flag(exclude_self, "exclude_self")
    if where == "cuda":
        from ._knn.device import search_metrics_device
        idx, dist, info = search_metrics_device(features, database, k=k, metrics=(metric,), exclude_self=exclude_self,
                                                tile=tile, extra=extra, gram=gram)[0]
        return (idx, dist, info) if return_info else (idx, dist)
    to_caller = None
    if where == "host_copy":
        from ._knn.device import host_copy
        features, to_caller = host_copy(features, "features")
        if database is not None:
            database, _ = host_copy(database, "database")
    idx, dist, info = _search(features, database, k=k, metric=metric, exclude_self=exclude_self,
                              n_jobs=n_jobs, tile=tile, extra=extra, gram=gram)
    if to_caller is not None:
        idx, dist = to_caller((idx, dist))
    return (idx, dist, info) if return_info else (idx, dist)


def _neighbour_indices(neighbors):
    return as_neighbors(neighbors).indices


def label_counts(labels, indices, num_classes, *, weights=None):
    """(N, K) counts of neighbour labels (float64 total weights with ``weights``)."""
    return _counts.label_counts(labels, indices, num_classes, weights=weights)


def agreement(labels, indices, *, weights=None):
    """(N,) fraction of each row's neighbours sharing its label (optionally weighted,
    e.g. ``weights=1 - distances`` for cosine similarity)."""
    return _counts.agreement(labels, indices, weights=weights)


def knn_pred_probs(labels, indices, num_classes, *, weights=None):
    """(N, K) neighbour label frequencies, self excluded: feeds ``find_label_issues``."""
    return _counts.knn_pred_probs(labels, indices, num_classes, weights=weights)


def default_metric(num_features: int) -> str:
    """Datalab's choice: cosine when d > 3, else Euclidean ("l2")."""
    return "cosine" if num_features > 3 else "l2"


def _graph(features_or_neighbors, k, metric, n_jobs, correct=True):
    """(indices, distances, metric, info) of Datalab's corrected graph."""
    x = features_or_neighbors
    if isinstance(x, (Neighbors, tuple)) or hasattr(x, "indptr"):
        nb = as_neighbors(x)
        if nb.distances is None:
            raise ValueError("these checks need distances: pass (indices, distances) or a CSR kNN graph")
        return nb.indices, nb.distances, metric, None
    X = as_features(x)
    metric = default_metric(X.shape[1]) if metric is None else check_metric(metric)
    ind, dist, info = _search(X, k=k, metric=metric, exclude_self=True, n_jobs=n_jobs)
    if correct:
        ind, dist = _correct(X, ind, dist)
    return ind, dist, metric, info


def correct_exact_duplicates(features, indices, distances=None):
    """Datalab's exact-duplicate correction of a kNN graph (returns new arrays,
    or a new CSR graph when given one)."""
    X = as_features(features)
    if hasattr(indices, "indptr"):
        nb = as_neighbors(indices, len(X))
        i, d = _correct(X, nb.indices, nb.distances)
        return to_csr(i, d)
    nb = as_neighbors((indices, distances), len(X))
    return _correct(X, nb.indices, nb.distances if nb.distances is not None else np.zeros(nb.indices.shape))


def outlier_scores(features, *, k=10, metric=None, t=1, threshold=None, n_jobs=None, return_info=False):
    """Datalab's outlier check: (is_outlier_issue, outlier_score) [, info].
    ``features``: a feature matrix, ``(indices, distances)`` or a CSR graph."""
    ind, dist, metric, _ = _graph(features, integer(k, "k", lo=1), metric, n_jobs)
    flags, scores, info = _dl.outlier_scores(dist, t=t, metric=metric, threshold=threshold)
    return (flags, scores, info) if return_info else (flags, scores)


def near_duplicates(features, *, k=10, metric=None, threshold=0.13, n_jobs=None, return_info=False):
    """Datalab's near-duplicate check: (is_near_duplicate_issue, near_duplicate_score,
    near_duplicate_sets) [, info]."""
    ind, dist, metric, _ = _graph(features, integer(k, "k", lo=1), metric, n_jobs)
    flags, scores, sets, info = _dl.near_duplicates(ind, dist, threshold=threshold)
    return (flags, scores, sets, info) if return_info else (flags, scores, sets)


def non_iid(features, *, k=10, metric=None, num_permutations=25, seed=0, significance_threshold=0.05,
            n_jobs=None, return_info=False):
    """Datalab's non-IID check: (is_non_iid_issue, non_iid_score) [, info with the p-value].
    Seeded by ``numpy.random.RandomState(seed)``; NumPy's global generator is untouched."""
    ind, dist, metric, _ = _graph(features, integer(k, "k", lo=1), metric, n_jobs) \
        if not (isinstance(features, np.ndarray) and features.dtype.kind in "iu") else (features, None, metric, None)
    flags, scores, info = _dl.non_iid(ind, num_permutations=num_permutations, seed=seed,
                                      significance_threshold=significance_threshold)
    return (flags, scores, info) if return_info else (flags, scores)


def _datalab_pred_probs(y, ind, K):
    """Datalab's label-check arithmetic: sklearn's predict_proba over k + 1
    (self included) minus the self vote, times (k + 1) / k."""
    k = ind.shape[1]
    c = _counts.label_counts(y, ind, K).astype(np.float64)
    onehot = np.zeros_like(c)
    onehot[np.arange(len(y)), y] = 1.0
    P = (c + onehot) / (k + 1)
    return (P - onehot / (k + 1)) * (k + 1) / k


def find_issues(features, labels, *, k=10, metric=None, n_jobs=None, as_frame=True, knn_graph=None,
                progress=None):
    """Datalab's ``find_issues(features=...)`` for the label, outlier,
    near-duplicate and non-IID checks, as one table (Datalab's column names):
    ``is_label_issue, label_score, is_outlier_issue, outlier_score,
    is_near_duplicate_issue, near_duplicate_score, near_duplicate_sets,
    distance_to_nearest_neighbor, is_non_iid_issue, non_iid_score``.

    Metric as Datalab: the graph (outliers, near duplicates, non-IID) uses
    cosine when d > 3, else Euclidean (``metric=`` overrides); the label check
    always uses Euclidean k-NN with the self vote removed. ``knn_graph`` (a
    CSR graph or (indices, distances)) replaces the graph search.
    Without it both searches share one pass over the Gram tiles, and only the
    tiles on and above the diagonal are computed (each feeds its rows and,
    transposed, its columns). ``progress(stage, done, total)`` is called after
    every block of tiles.
    Returns a pandas DataFrame (``as_frame=False``: a dict of arrays); the
    summary (Datalab's per-check scores, the non-IID p-value, the metric, the
    search's fallback rows) is in ``.attrs`` (or under ``"summary"``).
    """
    from . import filter as _filter
    from . import rank as _rank
    from . import count as _count

    X = as_features(features)
    N, d = X.shape
    k = integer(k, "k", lo=1)
    if k >= N:
        raise ValueError(f"k={k} neighbours cannot reach the number of examples N={N}")
    yraw = np.asarray(labels)
    if yraw.ndim != 1 or len(yraw) != N:
        raise ValueError(f"labels must be 1-D with one entry per row of features ({N}), got shape {yraw.shape}")
    classes, y = np.unique(yraw, return_inverse=True)
    y = y.astype(np.int64)
    K = len(classes)
    metric = default_metric(d) if metric is None else check_metric(metric)
    fallback = 0
    # the graph (Datalab's outlier manager builds it; near_duplicate and non_iid reuse it)
    if knn_graph is not None:
        nb = as_neighbors(knn_graph, N)
        gi, gd = nb.indices, nb.distances
        # the label check: a separate Euclidean search, no duplicate correction
        li, _, linfo = _search(X, k=k, metric="l2", exclude_self=True, n_jobs=n_jobs, progress=progress)
        fallback += linfo.fallback_rows
    else:
        # one pass over the Gram tiles for both searches (the graph's metric and the label check's
        # Euclidean one; one search when they coincide)
        ms = (metric,) if metric == "l2" else (metric, "l2")
        found = _search_metrics(X, k=k, metrics=ms, exclude_self=True, n_jobs=n_jobs, progress=progress)
        fallback += sum(f[2].fallback_rows for f in found)
        li = found[-1][0]  # the Euclidean neighbours, before any duplicate correction
        gi, gd = _correct(X, found[0][0], found[0][1])
    if K >= 2:
        pp = _datalab_pred_probs(y, li, K)
        is_label = _filter.find_label_issues(y, pp)
        label_score = _rank.get_label_quality_scores(y, pp)
        label_health = 1 - _count.num_label_issues(y, pp) / N
    else:
        is_label, label_score, label_health = np.zeros(N, bool), np.ones(N), 1.0
    o_flag, o_score, o_info = _dl.outlier_scores(gd, metric=metric)
    n_flag, n_score, n_sets, n_info = _dl.near_duplicates(gi, gd)
    i_flag, i_score, i_info = _dl.non_iid(gi)
    cols = {
        "is_label_issue": np.asarray(is_label, bool), "label_score": np.asarray(label_score),
        "is_outlier_issue": o_flag, "outlier_score": o_score,
        "is_near_duplicate_issue": n_flag, "near_duplicate_score": n_score,
        "near_duplicate_sets": n_sets, "distance_to_nearest_neighbor": gd[:, 0],
        "is_non_iid_issue": i_flag, "non_iid_score": i_score,
    }
    summary = {"label": float(label_health), "outlier": o_info["score"], "near_duplicate": n_info["score"],
               "non_iid": i_info["p-value"], "metric": metric, "k": k, "fallback_rows": int(fallback),
               "num_issues": {"label": int(np.sum(is_label)), "outlier": int(o_flag.sum()),
                              "near_duplicate": int(n_flag.sum()), "non_iid": int(i_flag.sum())}}
    if not as_frame:
        cols["summary"] = summary
        return cols
    from ._common.optional import optional
    pd = optional("pandas", "knn.find_issues(as_frame=True)")

    df = pd.DataFrame(cols)
    df.attrs.update(summary)
    return df


def simifeat(features, labels, num_classes=None, **kwargs):
    """SimiFeat (Zhu, Dong & Liu, ICML 2022) with Docta's semantics: the same
    function as :func:`labelsift.noise.simifeat` (the API lists it here, beside
    the other neighbourhood checks)."""
    from .noise import simifeat as _simifeat

    return _simifeat(features, labels, num_classes, **kwargs)
