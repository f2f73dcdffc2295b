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
(NumPy arrays, memmaps, ``.npy`` paths, shard lists, torch CPU tensors).
"""
from __future__ import annotations

import pickle

import numpy as np

from ._cl import find as _find
from ._cl import latent
from ._cl import sharded
from ._cl.passes import calibrate as calibrate_joint
from ._cl.counts import _check_py_method
from ._cl.scores import check_method, score_kwargs
from ._common import params
from ._common.arrays import as_counts, as_probs
from ._common.names import ESTIMATION_METHODS
from ._common.options import resolve_ties
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
    if isinstance(pred_probs, np.ndarray) and pred_probs.ndim == 2 and len(pred_probs) == 0:
        return 0
    return as_probs(pred_probs).n


def _executor(labels, pred_probs, group, n_jobs):
    """(executor, Whole, to_caller) for the local rows; every rank checks every rank's input."""
    x, to_caller = from_tensor(pred_probs, "pred_probs")
    y, _ = from_tensor(labels, "labels")
    ex = TorchExecutor(group, y, x, n_jobs)
    return ex, sharded.place(ex), to_caller


def _square(matrix, w, what):
    m = as_counts(matrix, None, what)
    if m.shape[0] != w.k:
        raise ValueError(f"{what} is {m.shape[0]} x {m.shape[0]} but pred_probs has {w.k} columns")
    return m


def get_confident_thresholds(labels, pred_probs, *, group=None, n_jobs=None) -> np.ndarray:
    """The per-class thresholds of all ranks' rows (replicated)."""
    ex, w, _ = _executor(labels, pred_probs, group, n_jobs)
    sharded.given_and_thresholds(ex, w)
    ex.gather(ex.each(sharded.step_validate, per_shard=(ex.shards,)), lambda _: None)
    return w.thresholds


def compute_confident_joint(labels, pred_probs, *, thresholds=None, calibrate=True,
                            return_indices_of_off_diagonals=False, group=None, n_jobs=None, ties=None):
    """The confident joint of all ranks' rows (replicated); the off-diagonal
    rows, when asked for, as global row numbers."""
    calibrate = params.flag(calibrate, "calibrate")
    ex, w, _ = _executor(labels, pred_probs, group, n_jobs)
    want_off = params.flag(return_indices_of_off_diagonals, "return_indices_of_off_diagonals")
    cj, off = sharded.joint(ex, w, thresholds=thresholds, calibrate_=calibrate, ties=resolve_ties(ties),
                            want_off=want_off)
    return (cj, off) if want_off else cj


def estimate_joint(labels, pred_probs, *, confident_joint=None, group=None, n_jobs=None, ties=None) -> np.ndarray:
    """The joint distribution of (given, true) labels of all ranks' rows (replicated)."""
    ex, w, _ = _executor(labels, pred_probs, group, n_jobs)
    ties = resolve_ties(ties)
    if confident_joint is not None:
        cj = _square(confident_joint, w, "confident_joint")
        cal = calibrate_joint(cj, sharded.label_counts(ex), ties)
    else:
        cal, _ = sharded.joint(ex, w, calibrate_=True, ties=ties)
    return latent.estimate_joint_from_calibrated(cal)


def estimate_py_and_noise_matrices_from_probabilities(labels, pred_probs, *, thresholds=None,
                                                      converge_latent_estimates=True, py_method="cnt",
                                                      calibrate=True, group=None, n_jobs=None, ties=None):
    """(py, noise_matrix, inverse_noise_matrix, confident_joint), replicated."""
    _check_py_method(py_method)
    converge_latent_estimates = params.flag(converge_latent_estimates, "converge_latent_estimates")
    calibrate = params.flag(calibrate, "calibrate")
    ex, w, _ = _executor(labels, pred_probs, group, n_jobs)
    cj, _ = sharded.joint(ex, w, thresholds=thresholds, calibrate_=calibrate, ties=resolve_ties(ties))
    py, nm, inv = latent.estimate_latent(cj, w.label_counts, py_method, converge_latent_estimates)
    return py, nm, inv, cj


def num_label_issues(labels, pred_probs, *, confident_joint=None, estimation_method="off_diagonal", group=None,
                     n_jobs=None, ties=None) -> int:
    if not isinstance(estimation_method, str) or estimation_method not in ESTIMATION_METHODS:
        raise ValueError(f"{estimation_method!r} is not a valid estimation method; choose one of {ESTIMATION_METHODS}")
    if estimation_method == "off_diagonal_custom":
        if confident_joint is None:
            raise ValueError("estimation_method='off_diagonal_custom' needs a confident_joint")
    ex, w, _ = _executor(labels, pred_probs, group, n_jobs)
    if confident_joint is not None and estimation_method == "off_diagonal_custom":
        confident_joint = _square(confident_joint, w, "confident_joint")
    return sharded.num_label_issues(ex, w, confident_joint=confident_joint, estimation_method=estimation_method,
                                    ties=resolve_ties(ties))


def find_label_issues(labels, pred_probs, *, return_indices_ranked_by=None, rank_by_kwargs=None,
                      filter_by="prune_by_noise_rate", frac_noise=1.0, num_to_remove_per_class=None,
                      min_examples_per_class=1, confident_joint=None, group=None, n_jobs=None, ties=None):
    """cleanlab's find_label_issues over all ranks' rows.

    Returns this rank's boolean mask (its rows), or, with
    ``return_indices_ranked_by``, every flagged row of all ranks as global row
    numbers ranked as the single process ranks them (the same array on
    every rank: write it from rank 0).
    """
    ties = resolve_ties(ties)
    frac_noise, min_examples_per_class = _find._check_args(
        filter_by, frac_noise, num_to_remove_per_class, min_examples_per_class, return_indices_ranked_by,
        confident_joint, False, None)
    rank_by_kwargs = score_kwargs(rank_by_kwargs, "rank_by_kwargs")
    ex, w, to_caller = _executor(labels, pred_probs, group, n_jobs)
    cj = None
    if confident_joint is not None and filter_by != "confident_learning":
        cj = _square(confident_joint, w, "confident_joint")
    if num_to_remove_per_class is not None:
        num_to_remove_per_class = params.count_vector(num_to_remove_per_class, w.k, "num_to_remove_per_class")
    masks, ranked = sharded.find(
        ex, w, filter_by=filter_by, frac_noise=frac_noise, num_to_remove_per_class=num_to_remove_per_class,
        min_examples_per_class=int(min_examples_per_class), confident_joint=cj, ties=ties,
        rank_by=return_indices_ranked_by, rank_by_kwargs=rank_by_kwargs)
    if ranked is not None:
        return ranked
    return to_caller(ex.local(masks))


def get_label_quality_scores(labels, pred_probs, *, method="self_confidence", adjust_pred_probs=False, group=None,
                             n_jobs=None) -> np.ndarray:
    """Label quality scores of this rank's rows (adjusted ones use all ranks' thresholds)."""
    check_method(method, adjust_pred_probs)
    ex, w, to_caller = _executor(labels, pred_probs, group, n_jobs)
    h = sharded.scores(ex, w, method=method, adjust_pred_probs=params.flag(adjust_pred_probs, "adjust_pred_probs"))
    return to_caller(ex.local(h))
