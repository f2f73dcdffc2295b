"""Confident learning over torch.distributed ranks, exactly as one process.

Each rank passes its own rows -- rank r holds rows [offset_r, offset_r +
n_r) of the whole, in rank order, as a torchrun job that splits a dump into
consecutive shards does (an empty shard is allowed) -- and gets:

* the K x K results (confident joint, noise matrices, priors, counts)
  identical on every rank and ``np.array_equal`` to the single-process call
  on the concatenated rows;
* per-row results (label-issue masks, quality scores) for its own rows;
* index results (off-diagonal rows, ranked label issues) as global row
  numbers, the same array on every rank (the single process's).

Only O(N + K^2) values per rank travel (see :mod:`labelsift._cl.sharded`
for the scheme and :func:`comm_report` for the measured bytes); the N x K
probabilities never do. Collectives run over ``group`` (default: the
default process group), with any backend (gloo on CPUs, NCCL on GPUs). A
bad input on any rank raises the same error on every rank (naming the
global row), never a hang.

torch is imported when a function is called, never at ``import labelsift``.
The local rows can be anything the top-level functions accept on the host
(NumPy arrays, memmaps, ``.npy`` paths, shard lists, torch CPU tensors) or
a CUDA array (a torch CUDA tensor, CuPy, anything with
``__cuda_array_interface__`` or CUDA DLPack; labels on the host or the
device). CUDA rows stay on their device: the given-label gather, the row
pass (validation, confident guesses, argmax, max over the other classes) and the
self-confidence / normalized-margin scores run there; the prune
candidates, a tied class's margins and the entropy / adjusted scores read
the rank's rows through host copies of about 64 MB of rows at a time
(never the whole shard at once). Per-row results come back as the
caller's type on its device (torch in, torch out).
"""
from __future__ import annotations

import pickle

import numpy as np

from ._cl import sharded
from ._common.cuda_arrays import is_cuda_array
from ._common.cuda_arrays import parse as parse_cuda
from ._common.cuda_arrays import to_caller as cuda_to_caller
from ._common.tensors import from_tensor

__all__ = [
    "get_confident_thresholds",
    "compute_confident_joint",
    "estimate_joint",
    "estimate_py_and_noise_matrices_from_probabilities",
    "num_label_issues",
    "find_label_issues",
    "get_label_quality_scores",
    "comm_report",
]


def _dist():
    try:
        import torch
        import torch.distributed as dist
    except ImportError as exc:
        raise ImportError("labelsift.distributed needs PyTorch (torch.distributed): pip install 'labelsift[distributed]' "
                          "or pip install torch") from exc
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed")
    if not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialised: call torch.distributed.init_process_group() "
                           "first (torchrun sets the environment it reads)")
    return torch, dist


_REPORT = {"calls": 0, "sent_bytes": 0, "received_bytes": 0, "collectives": 0}


def comm_report(reset: bool = False) -> dict:
    """Bytes this rank sent and received through labelsift's collectives
    (payload bytes: pickled arrays for the gathers, the integer tensors of
    the all-reduces counted as a ring all-reduce moves them), since the
    process started or the last reset."""
    out = dict(_REPORT)
    if reset:
        for k in _REPORT:
            _REPORT[k] = 0
    return out


class _Handle:
    """This rank's result of a step: ("ok", value) or ("err", exception)."""

    __slots__ = ("tag", "value")

    def __init__(self, pair):
        self.tag, self.value = pair


class TorchExecutor:
    """The executor of :mod:`labelsift._cl.sharded` over a process group: one shard per rank."""

    def __init__(self, group, labels, pred_probs, n_jobs=None):
        self.torch, self.dist = _dist()
        self.group = group
        self.size = self.dist.get_world_size(group)
        self.rank = self.dist.get_rank(group)
        _REPORT["calls"] += 1
        sizes = sharded.first_error(self._all_gather(sharded.capture(_rows_of)(pred_probs)))
        self.offset = int(sum(sizes[: self.rank]))
        self.shards = _Handle(sharded.capture(sharded.open_shard)(labels, pred_probs, self.offset, n_jobs))

    # -- collectives ---------------------------------------------------------
    def _all_gather(self, obj):
        out = [None] * self.size
        self.dist.all_gather_object(out, obj, group=self.group)
        mine = len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        theirs = sum(len(pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL)) for o in out) - mine
        _REPORT["sent_bytes"] += mine * (self.size - 1)
        _REPORT["received_bytes"] += theirs
        _REPORT["collectives"] += 1
        return out

    # -- the executor interface ----------------------------------------------
    def each(self, fn, *args, per_shard=()):
        for h in per_shard:
            if h.tag == "err":
                return _Handle(("err", h.value))
        return _Handle(sharded.capture(fn)(*(h.value for h in per_shard), *args))

    def gather(self, h, pick=None):
        if h.tag == "err":
            payload = ("err", h.value)
        else:
            payload = sharded.capture(pick)(h.value) if pick is not None else ("ok", h.value)
        return sharded.first_error(self._all_gather(payload))

    def sum_ints(self, h, pick):
        self.gather(h, lambda _: None)  # every rank raises the same error, if any
        torch = self.torch
        a = np.ascontiguousarray(pick(h.value), dtype=np.int64)
        t = torch.from_numpy(a.copy())
        if self.dist.get_backend(self.group) == "nccl":
            t = t.cuda()
        self.dist.all_reduce(t, op=self.dist.ReduceOp.SUM, group=self.group)
        ring = 2 * (self.size - 1) / self.size * a.nbytes
        _REPORT["sent_bytes"] += int(ring)
        _REPORT["received_bytes"] += int(ring)
        _REPORT["collectives"] += 1
        return t.cpu().numpy()

    def local(self, h):
        """This rank's value of a per-row step (after checking every rank's)."""
        self.gather(h, lambda _: None)
        return h.value


class SinkhornComm:
    """The communicator of :mod:`labelsift._sinkhorn.sharded` over a process group."""

    def __init__(self, group=None):
        self.torch, self.dist = _dist()
        self.group = group
        self.size = self.dist.get_world_size(group)
        self.rank = self.dist.get_rank(group)
        self.cuda = self.dist.get_backend(group) == "nccl"

    def _global(self, r: int) -> int:
        return r if self.group is None else self.dist.get_global_rank(self.group, r)

    def allgather(self, obj):
        out = [None] * self.size
        self.dist.all_gather_object(out, obj, group=self.group)
        mine = len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        _REPORT["sent_bytes"] += mine * (self.size - 1)
        _REPORT["received_bytes"] += sum(len(pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL)) for o in out) - mine
        _REPORT["collectives"] += 1
        return out

    def send(self, dst: int, arr) -> None:
        t = self.torch.from_numpy(np.array(arr, dtype=np.float64, copy=True))
        if self.cuda:
            t = t.cuda()
        self.dist.send(t, self._global(dst), group=self.group)
        _REPORT["sent_bytes"] += t.numel() * 8

    def recv(self, src: int, size: int):
        t = self.torch.empty(size, dtype=self.torch.float64, device="cuda" if self.cuda else "cpu")
        self.dist.recv(t, self._global(src), group=self.group)
        _REPORT["received_bytes"] += size * 8
        return t.cpu().numpy()


def sinkhorn_comm(group=None) -> SinkhornComm:
    """For ``labelsift.sinkhorn.self_label`` / ``swav_codes`` with ``group=``."""
    return SinkhornComm(group)


def _rows_of(pred_probs) -> int:
    """The local row count, read from the input without reading its values."""
    return sharded.shard_rows(pred_probs)


def _device_caller(pred_probs):
    """to_caller for local rows on a CUDA device: per-row results as the
    caller's type on that device (torch in, torch out; CuPy in, CuPy out)."""
    def to_caller(result):
        return cuda_to_caller(parse_cuda(pred_probs, "pred_probs"), result)
    return to_caller


def _opener(labels, pred_probs, group, n_jobs):
    """For the functions of :mod:`labelsift._cl.sharded`: (executor, Whole) of
    the local rows, every rank checking every rank's input. CUDA rows
    (and labels) go to the shard as they are (its passes run on their device);
    a bad one raises inside the executor's steps, on every rank."""
    def open_():
        if is_cuda_array(pred_probs):
            x, to_caller = pred_probs, _device_caller(pred_probs)
        else:
            x, to_caller = from_tensor(pred_probs, "pred_probs")
        y = labels if is_cuda_array(labels) else from_tensor(labels, "labels")[0]
        ex = TorchExecutor(group, y, x, n_jobs)
        ex.to_caller = to_caller
        return ex, sharded.place(ex)
    return open_


def _local_rows(ex, h, dtype):
    """This rank's per-row result, in the caller's type (torch in, torch out)."""
    return ex.to_caller(ex.local(h))


def get_confident_thresholds(labels, pred_probs, *, group=None, n_jobs=None) -> np.ndarray:
    """The per-class thresholds of all ranks' rows (replicated)."""
    return sharded.api_thresholds(_opener(labels, pred_probs, group, n_jobs))


def compute_confident_joint(labels, pred_probs, *, thresholds=None, calibrate=True,
                            return_indices_of_off_diagonals=False, group=None, n_jobs=None, ties=None):
    """The confident joint of all ranks' rows (replicated); the off-diagonal
    rows, when asked for, as global row numbers."""
    return sharded.api_confident_joint(_opener(labels, pred_probs, group, n_jobs), thresholds, calibrate,
                                       return_indices_of_off_diagonals, ties)


def estimate_joint(labels, pred_probs, *, confident_joint=None, group=None, n_jobs=None, ties=None) -> np.ndarray:
    """The joint distribution of (given, true) labels of all ranks' rows (replicated)."""
    return sharded.api_estimate_joint(_opener(labels, pred_probs, group, n_jobs), confident_joint, ties)


def estimate_py_and_noise_matrices_from_probabilities(labels, pred_probs, *, thresholds=None,
                                                      converge_latent_estimates=True, py_method="cnt",
                                                      calibrate=True, group=None, n_jobs=None, ties=None):
    """(py, noise_matrix, inverse_noise_matrix, confident_joint), replicated."""
    return sharded.api_latent(_opener(labels, pred_probs, group, n_jobs), thresholds, converge_latent_estimates,
                              py_method, calibrate, ties)


def num_label_issues(labels, pred_probs, *, confident_joint=None, estimation_method="off_diagonal", group=None,
                     n_jobs=None, ties=None) -> int:
    return sharded.api_num_label_issues(_opener(labels, pred_probs, group, n_jobs), confident_joint,
                                        estimation_method, ties)


def find_label_issues(labels, pred_probs, *, return_indices_ranked_by=None, rank_by_kwargs=None,
                      filter_by="prune_by_noise_rate", frac_noise=1.0, num_to_remove_per_class=None,
                      min_examples_per_class=1, confident_joint=None, group=None, n_jobs=None, ties=None):
    """cleanlab's find_label_issues over all ranks' rows.

    Returns this rank's boolean mask (its rows), or, with
    ``return_indices_ranked_by``, every flagged row of all ranks as global row
    numbers ranked as the single process ranks them (the same array on
    every rank: write it from rank 0).
    """
    return sharded.api_find(_opener(labels, pred_probs, group, n_jobs), _local_rows,
                            return_indices_ranked_by=return_indices_ranked_by, rank_by_kwargs=rank_by_kwargs,
                            filter_by=filter_by, frac_noise=frac_noise,
                            num_to_remove_per_class=num_to_remove_per_class,
                            min_examples_per_class=min_examples_per_class, confident_joint=confident_joint, ties=ties)


def get_label_quality_scores(labels, pred_probs, *, method="self_confidence", adjust_pred_probs=False, group=None,
                             n_jobs=None) -> np.ndarray:
    """Label quality scores of this rank's rows (adjusted ones use all ranks' thresholds)."""
    return sharded.api_scores(_opener(labels, pred_probs, group, n_jobs), _local_rows, method, adjust_pred_probs)
