"""Confident learning on a ``dask.array`` of probabilities, exactly as one process.

``pred_probs`` is a Dask array (N x K, any row chunking; the K columns are
brought into one chunk if they are not), ``labels`` a NumPy array, a Dask
array or a ``.npy`` path. Each row chunk is a shard of
:mod:`labelsift._cl.sharded`: its tasks run the compiled kernels on that
chunk; the exchanges between steps gather O(N + K^2) values on the client
(the given-label probabilities, integer counts, the prune candidates),
never the N x K values. Results:

* K x K results (confident joint, noise matrices, thresholds) and index
  arrays (ranked label issues, off-diagonal rows) as NumPy arrays,
  ``np.array_equal`` to the single-process call on ``pred_probs.compute()``;
* per-row results (label-issue masks, quality scores) as Dask arrays with
  the rows' chunking (the per-chunk state they read is persisted).

The tasks run on whatever scheduler is active -- the threaded one by
default, a ``distributed.Client`` when one is -- or on ``scheduler=``.
:func:`from_npy_shards` and :func:`from_zarr` make such an array of a dump.
Dask is an optional extra (``pip install 'labelsift[dask]'``).
"""
from __future__ import annotations

import os

import numpy as np

from ._cl import sharded
from ._common import params
from ._common.arrays import is_pathlike, load_npy

__all__ = [
    "from_npy_shards",
    "from_zarr",
    "get_confident_thresholds",
    "compute_confident_joint",
    "estimate_joint",
    "estimate_py_and_noise_matrices_from_probabilities",
    "num_label_issues",
    "find_label_issues",
    "get_label_quality_scores",
]


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError("labelsift.dask needs Dask: pip install 'labelsift[dask]' (or pip install 'dask[array]')") \
            from exc
    return dask, da


# ---------------------------------------------------------------------------
# Dumps as Dask arrays
# ---------------------------------------------------------------------------
def _load_rows(path, lo, hi):
    return np.load(path, mmap_mode="r")[lo:hi]


def from_npy_shards(paths, rows_per_chunk: int | None = None):
    """A Dask array of row shards saved as ``.npy`` files (in row order), read
    through memory maps; each shard is one chunk, or chunks of
    ``rows_per_chunk`` rows."""
    dask, da = _dask()
    if is_pathlike(paths):
        paths = [paths]
    if not isinstance(paths, (list, tuple)) or not paths:
        raise TypeError("paths must be a .npy path or a non-empty list of them")
    if rows_per_chunk is not None:
        rows_per_chunk = params.integer(rows_per_chunk, "rows_per_chunk", lo=1)
    parts, k, dt = [], None, None
    for i, p in enumerate(paths):
        if not is_pathlike(p):
            raise TypeError(f"paths[{i}] must be a .npy path, got {type(p).__name__}")
        a = load_npy(p, f"pred_probs shard {i}")
        if a.ndim != 2:
            raise ValueError(f"pred_probs shard {i} ({os.fsdecode(p)}) must be 2-D, got shape {a.shape}")
        if k is None:
            k, dt = a.shape[1], a.dtype
        elif a.shape[1] != k:
            raise ValueError(f"pred_probs shard {i} has {a.shape[1]} columns, shard 0 has {k}")
        elif a.dtype != dt:
            raise TypeError(f"pred_probs shard {i} has dtype {a.dtype}, shard 0 has {dt}")
        step = rows_per_chunk or max(1, len(a))
        for lo in range(0, len(a), step):
            hi = min(len(a), lo + step)
            parts.append(da.from_delayed(dask.delayed(_load_rows, pure=True)(os.fsdecode(os.fspath(p)), lo, hi),
                                         shape=(hi - lo, k), dtype=dt))
    if not parts:
        raise ValueError("the shards hold no rows")
    return da.concatenate(parts, axis=0)


def from_zarr(url, component=None, **kwargs):
    """A Dask array of a Zarr array (``dask.array.from_zarr``), its columns in one chunk."""
    _, da = _dask()
    try:
        arr = da.from_zarr(url, component=component, **kwargs)
    except ImportError as exc:
        raise ImportError("from_zarr needs zarr: pip install zarr") from exc
    if arr.ndim != 2:
        raise ValueError(f"the Zarr array must be 2-D (N x K), got shape {arr.shape}")
    return arr.rechunk({1: -1})


# ---------------------------------------------------------------------------
# The executor: one shard per row chunk
# ---------------------------------------------------------------------------
def _open(y, p, offset, n_jobs):
    return sharded.capture(sharded.open_shard)(y, p, offset, n_jobs)


def _task(fn, args, *vals):
    for v in vals:
        if v[0] == "err":
            return v
    return sharded.capture(fn)(*(v[1] for v in vals), *args)


def _pick(v, pick):
    if v[0] == "err" or pick is None:
        return v
    return sharded.capture(pick)(v[1])


def _add(*parts):
    for p in parts:
        if p[0] == "err":
            return p
    return ("ok", np.sum(np.stack([np.asarray(p[1], np.int64) for p in parts]), axis=0))


def _value(v):
    if v[0] == "err":
        raise v[1]
    return v[1]


class DaskExecutor:
    """The executor of :mod:`labelsift._cl.sharded` over a Dask array's row chunks."""

    def __init__(self, labels, pred_probs, n_jobs=None, scheduler=None):
        dask, da = _dask()
        self.dask, self.da, self.scheduler = dask, da, scheduler
        if not isinstance(pred_probs, da.Array):
            raise TypeError(f"pred_probs must be a dask.array.Array, got {type(pred_probs).__name__} "
                            "(use the top-level labelsift functions for NumPy arrays and paths)")
        if pred_probs.ndim != 2:
            raise ValueError(f"pred_probs must be 2-D (num_examples x num_classes), got shape {pred_probs.shape}")
        if any(np.isnan(c) for c in pred_probs.chunks[0]):
            raise ValueError("pred_probs has unknown chunk sizes (call compute_chunk_sizes() first)")
        if pred_probs.numblocks[1] != 1:
            pred_probs = pred_probs.rechunk({1: -1})
        self.chunks = tuple(int(c) for c in pred_probs.chunks[0])
        n = sum(self.chunks)
        offsets = np.concatenate([[0], np.cumsum(self.chunks)]).astype(np.int64)
        if is_pathlike(labels):
            labels = load_npy(labels, "labels")
        if isinstance(labels, da.Array):
            if labels.ndim != 1 or labels.shape[0] != n:
                raise ValueError(f"labels must be 1-D with {n} entries, got shape {labels.shape}")
            ys = labels.rechunk((self.chunks,)).to_delayed().ravel()
        else:
            y = np.asarray(labels)
            if y.ndim != 1 or len(y) != n:
                raise ValueError(f"labels has {len(y) if y.ndim == 1 else y.shape} entries but pred_probs has {n} rows")
            ys = [y[lo:hi] for lo, hi in zip(offsets[:-1], offsets[1:])]
        ps = pred_probs.to_delayed().ravel()
        op = dask.delayed(_open, pure=True)
        self.shards = [op(yb, pb, int(o), n_jobs) for yb, pb, o in zip(ys, ps, offsets[:-1])]

    def _compute(self, *xs):
        return self.dask.compute(*xs, scheduler=self.scheduler)

    def each(self, fn, *args, per_shard=()):
        t = self.dask.delayed(_task, pure=False)
        return [t(fn, args, *vals) for vals in zip(*per_shard)]

    def gather(self, h, pick=None):
        # a step's results are kept (persisted) where they are: a later step reads them again
        if h is not self.shards:  # (the shards hold the chunks' values: never kept)
            h[:] = self.dask.persist(*h, scheduler=self.scheduler)
        pk = self.dask.delayed(_pick, pure=True)
        return sharded.first_error(list(self._compute(*[pk(v, pick) for v in h])))

    def sum_ints(self, h, pick):
        pk = self.dask.delayed(_pick, pure=True)
        add = self.dask.delayed(_add, pure=True)
        level = [pk(v, pick) for v in h]
        while len(level) > 1:  # a tree of additions: no task receives every chunk's K x K counts
            level = [add(*level[i:i + 8]) for i in range(0, len(level), 8)]
        h[:] = self.dask.persist(*h, scheduler=self.scheduler)
        return _value(self._compute(level[0])[0])

    def local(self, h):
        return self.gather(h)

    def rows_array(self, h, dtype):
        """A per-row step's results as one Dask array with the rows' chunking."""
        self.gather(h, lambda _: None)  # raises the first chunk's error now, not at compute time
        val = self.dask.delayed(_value, pure=True)
        parts = [self.da.from_delayed(val(v), shape=(c,), dtype=dtype) for v, c in zip(h, self.chunks)]
        return self.da.concatenate(parts)


def _opener(labels, pred_probs, n_jobs, scheduler):
    def open_():
        ex = DaskExecutor(labels, pred_probs, n_jobs, scheduler)
        return ex, sharded.place(ex)
    return open_


def _rows_array(ex, h, dtype):
    if dtype is None:  # as the single process makes them (one small gather of each chunk's dtype)
        dtype = ex.gather(h, lambda s: np.asarray(s).dtype)[0]
    return ex.rows_array(h, dtype)


def get_confident_thresholds(labels, pred_probs, *, n_jobs=None, scheduler=None) -> np.ndarray:
    return sharded.api_thresholds(_opener(labels, pred_probs, n_jobs, scheduler))


def compute_confident_joint(labels, pred_probs, *, thresholds=None, calibrate=True,
                            return_indices_of_off_diagonals=False, n_jobs=None, ties=None, scheduler=None):
    return sharded.api_confident_joint(_opener(labels, pred_probs, n_jobs, scheduler), thresholds, calibrate,
                                       return_indices_of_off_diagonals, ties)


def estimate_joint(labels, pred_probs, *, confident_joint=None, n_jobs=None, ties=None,
                   scheduler=None) -> np.ndarray:
    return sharded.api_estimate_joint(_opener(labels, pred_probs, n_jobs, scheduler), confident_joint, ties)


def estimate_py_and_noise_matrices_from_probabilities(labels, pred_probs, *, thresholds=None,
                                                      converge_latent_estimates=True, py_method="cnt",
                                                      calibrate=True, n_jobs=None, ties=None, scheduler=None):
    return sharded.api_latent(_opener(labels, pred_probs, n_jobs, scheduler), thresholds, converge_latent_estimates,
                              py_method, calibrate, ties)


def num_label_issues(labels, pred_probs, *, confident_joint=None, estimation_method="off_diagonal", n_jobs=None,
                     ties=None, scheduler=None) -> int:
    return sharded.api_num_label_issues(_opener(labels, pred_probs, n_jobs, scheduler), confident_joint,
                                        estimation_method, ties)


def find_label_issues(labels, pred_probs, *, return_indices_ranked_by=None, rank_by_kwargs=None,
                      filter_by="prune_by_noise_rate", frac_noise=1.0, num_to_remove_per_class=None,
                      min_examples_per_class=1, confident_joint=None, n_jobs=None, ties=None, scheduler=None):
    """cleanlab's find_label_issues: a Dask boolean array (the rows' chunking),
    or with ``return_indices_ranked_by`` the ranked flagged rows (NumPy)."""
    return sharded.api_find(_opener(labels, pred_probs, n_jobs, scheduler), _rows_array,
                            return_indices_ranked_by=return_indices_ranked_by, rank_by_kwargs=rank_by_kwargs,
                            filter_by=filter_by, frac_noise=frac_noise,
                            num_to_remove_per_class=num_to_remove_per_class,
                            min_examples_per_class=min_examples_per_class, confident_joint=confident_joint, ties=ties)


def get_label_quality_scores(labels, pred_probs, *, method="self_confidence", adjust_pred_probs=False, n_jobs=None,
                             scheduler=None):
    """Label quality scores as a Dask array (the rows' chunking)."""
    return sharded.api_scores(_opener(labels, pred_probs, n_jobs, scheduler), _rows_array, method, adjust_pred_probs)
