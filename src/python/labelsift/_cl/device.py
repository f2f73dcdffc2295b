"""The passes of :mod:`.passes` on a CUDA device (``labelsift._cuda``).

pred_probs stays where the caller put it (any strides, float16/32/64); the
labels are validated on the host (O(N)) and copied to the device once. What
runs on the device, and what comes back:

* :func:`given_probs`: the gather of P[i, y_i] (N values back to the host,
  where the thresholds are summed by the same NumPy pairwise mean as on the
  CPU: exact by construction);
* :func:`row_pass`: validation, confident guesses, argmax, the unflagging
  test, max over the other classes, and the K x K confident counts by
  integer atomics (the per-row vectors come back: O(N), as the host's
  selection code reads them);
* :func:`prune_by_noise_rate`: the margins P[j] - P[k] of every row of a
  class k with an active selection (j, c), computed on the device in the
  input dtype and ranked on the host (stable sort for ``ties="lower_index"``,
  cleanlab's own ``np.argsort(-margin)`` for ``"cleanlab"``), in batches of
  classes of at most MARGIN_BATCH values.

Paths that have no kernel yet (the entropy score, ``adjust_pred_probs``)
read a host copy of pred_probs (:meth:`DeviceProbs.blocks`); results are
the same, only the copy costs.
"""
from __future__ import annotations

import numpy as np

from .._common import arrays as _arrays
from .._common.arrays import PROB_HIGH, PROB_LOW, check_kxk_memory, row_sum_tolerance
from .._common.backend import backend_info, cuda_module
from .._common.cuda_arrays import DTYPE_CODE, CudaArray, DeviceMatrix, as_device_labels, as_device_probs
from .._common.trace import stage
from .rules import active_pairs


#: The most margins (float64) one batch of prune_by_noise_rate computes.
MARGIN_BATCH = 1 << 26

#: Confident counts on the device up to this many bytes of K x K uint64.
DEVICE_COUNTS_MAX_BYTES = 1 << 30


def require_cuda(what: str = "pred_probs"):
    """The CUDA module, or a TypeError saying why a CUDA array cannot be used."""
    info = backend_info()
    if not info["cuda_available"]:
        raise TypeError(
            f"{what} is a CUDA array, but labelsift cannot use a GPU here ({info['cuda_reason']}): "
            "pass a NumPy array (cupy.asnumpy(x) or tensor.cpu().numpy())")
    return cuda_module()


class DeviceProbs(DeviceMatrix):
    """pred_probs on a CUDA device (what a Problem's ``probs`` is on the device path)."""

    def __init__(self, arr: CudaArray):
        super().__init__(arr, require_cuda())
        self.n, self.k = arr.shape
        self.device = f"cuda:{self.dev}"
        self.on_block = None
        self._labels = None  # (host labels, their device buffer)
        self._host = None

    @classmethod
    def of(cls, x, what: str = "pred_probs") -> "DeviceProbs":
        return cls(as_device_probs(x, what))

    def labels_ptr(self, labels: np.ndarray) -> int:
        """The int64 labels on the device (copied once per Problem)."""
        if self._labels is None or self._labels[0] is not labels:
            self._labels = (labels, self.upload(np.ascontiguousarray(labels, dtype=np.int64)))
        return self._labels[1].ptr

    def labels_to_host(self, labels, what: str = "labels") -> np.ndarray:
        a = as_device_labels(labels, what)
        return self.fetch(a.ptr, a.shape, a.strides, a.dtype)

    def row(self, i: int) -> np.ndarray:
        isz = self.dtype.itemsize
        return self.fetch(self.arr.ptr + int(i) * self.s0 * isz, (self.k,), (self.s1,), self.dtype)

    # -- the host fallback (paths without a kernel) ---------------------------
    def host(self) -> np.ndarray:
        if self._host is None:
            self._host = self.fetch(self.arr.ptr, (self.n, self.k), (self.s0, self.s1), self.dtype)
        return self._host

    def blocks(self, block_bytes=None):
        yield 0, self.host()

    def rows(self, idx):
        idx = np.asarray(idx, dtype=np.int64)
        yield np.arange(len(idx)), self.host(), idx


class StreamedDeviceProbs(DeviceProbs):
    """:class:`DeviceProbs` whose host fallback is bounded: the paths without
    a kernel read host copies of about ``BLOCK_BYTES`` of rows at a time (the
    same blocks a host memmap is read in), never the whole N x K at once.
    What a row shard of :mod:`.sharded` (a torch.distributed rank's CUDA
    rows) is: its prune candidates and the scores without a kernel sweep the
    shard through such copies."""

    def _row_major(self) -> bool:
        """Whether rows are the outer dimension on the device (C order, every
        other row/column, reversed rows): a block of rows is then one span."""
        return abs(self.s1) <= abs(self.s0)

    def _slab(self, row0: int, m: int) -> np.ndarray:
        """A host copy of rows [row0, row0 + m): one copy of their span when
        rows are the outer dimension, else one copy per column (Fortran order:
        a block of rows' span would be nearly the whole array)."""
        m, k, isz = int(m), self.k, self.dtype.itemsize
        ptr = self.arr.ptr + int(row0) * self.s0 * isz
        if self._row_major():
            return self.fetch(ptr, (m, k), (self.s0, self.s1), self.dtype)
        out = np.empty((m, k), self.dtype)
        for j in range(k):
            out[:, j] = self.fetch(ptr + j * self.s1 * isz, (m,), (self.s0,), self.dtype)
        return out

    def _row_compact(self) -> bool:
        """Whether one row is (nearly) contiguous on the device: a copy per row moves about K values."""
        return (self.k - 1) * abs(self.s1) + 1 <= 2 * self.k

    def block_rows(self, block_bytes=None) -> int:
        """Rows per host block: about ``block_bytes`` (default BLOCK_BYTES) of
        copied memory (a row of a row-major layout moves its whole stride)."""
        block_bytes = _arrays.BLOCK_BYTES if block_bytes is None else block_bytes
        per_row = max(self.k, abs(self.s0)) if self._row_major() else self.k
        return max(1, int(block_bytes) // max(1, per_row * self.dtype.itemsize))

    def blocks(self, block_bytes=None):
        step = self.block_rows(block_bytes)
        for row0 in range(0, self.n, step):
            yield row0, self._slab(row0, min(step, self.n - row0))

    def rows(self, idx):
        """For sorted rows: (positions in idx, host block, rows of it) per window
        of ``block_rows()`` rows; a window with few of them wanted copies just
        those rows (one copy each, when a row is contiguous on the device)
        instead of the whole window."""
        idx = np.asarray(idx, dtype=np.int64)
        step = self.block_rows()
        i = 0
        while i < len(idx):
            base = int(idx[i])
            j = int(np.searchsorted(idx, base + step, side="left"))
            span_rows = int(idx[j - 1]) - base + 1
            if (j - i) * 8 < span_rows and self._row_compact():
                block = np.stack([self.row(int(r)) for r in idx[i:j]])
                yield np.arange(i, j), block, np.arange(j - i, dtype=np.int64)
            else:
                yield np.arange(i, j), self._slab(base, span_rows), idx[i:j] - base
            i = j


# ---------------------------------------------------------------------------
def _raise_row_error(pb, err) -> None:
    row, code, col = err
    if row < 0:
        return
    pb.raise_row_error(pb.probs.row(row)[None, :], int(row), (0, code, col))


def given_probs(pb) -> np.ndarray:
    dp: DeviceProbs = pb.probs
    with stage("given_probs"):
        out = dp.alloc(dp.n * dp.dtype.itemsize)
        dp.cuda.gather_given(*dp.desc(), dp.labels_ptr(pb.labels), out.ptr, dp.dev, dp.stream)
        return dp.download(out, dp.n, dp.dtype)


def _row_pass(pb, cut, argmax=False, keep=False, max_other=False, counts=False):
    """(RowPass with host arrays, raw counts [guess, given] as int64 (K, K) or None)."""
    from .passes import RowPass

    dp: DeviceProbs = pb.probs
    n, k = dp.n, dp.k
    cut_buf = None
    cut_f32 = False
    if cut is not None:
        cut = np.ascontiguousarray(cut)
        cut_f32 = cut.dtype == np.float32
        if not cut_f32:
            cut = cut.astype(np.float64)
        cut_buf = dp.upload(cut)
    want = {"guess": (cut is not None, 4, np.int32), "argmax": (argmax, 4, np.int32),
            "keep": (keep, 1, np.uint8), "max_other": (max_other, 8, np.float64)}
    bufs = {name: dp.alloc(n * size) if on else None for name, (on, size, _) in want.items()}
    cj_buf = None
    if counts and cut is not None:
        cj_buf = dp.alloc(8 * k * k)
        dp.cuda.memset(cj_buf.ptr, 0, 8 * k * k, dp.dev, dp.stream)
    lo, hi, tol = PROB_LOW, PROB_HIGH, row_sum_tolerance(dp.dtype)
    ptr = lambda b: 0 if b is None else b.ptr  # noqa: E731
    with stage("row_pass"):
        err = dp.cuda.row_pass(*dp.desc(), dp.labels_ptr(pb.labels), ptr(cut_buf), cut_f32, ptr(bufs["guess"]),
                               ptr(bufs["argmax"]), ptr(bufs["keep"]), ptr(bufs["max_other"]), ptr(cj_buf), lo, hi,
                               tol, dp.dev, dp.stream)
        _raise_row_error(pb, err)
        host = {name: None if bufs[name] is None else dp.download(bufs[name], n, want[name][2]) for name in want}
    pb.validated = True
    rp = RowPass(guess=host["guess"], argmax=host["argmax"], keep=host["keep"], max_other=host["max_other"])
    if rp.keep is not None:
        rp.keep = rp.keep.view(bool)
    raw = None if cj_buf is None else dp.download(cj_buf, k * k, np.int64).reshape(k, k)
    return rp, raw


def validate(pb) -> None:
    if pb.validated:
        return
    with stage("validate"):
        _row_pass(pb, None)


def row_pass(pb, cut=None, *, argmax=False, keep=False, max_other=False):
    return _row_pass(pb, cut, argmax=argmax, keep=keep, max_other=max_other)[0]


def confident_pass(pb, thresholds=None, *, argmax=False, keep=False, max_other=False):
    """:func:`.passes.confident_pass` with the row pass and the confident
    counts on the device (same results, same K x K memory layout)."""
    from .passes import cut_from_thresholds, thresholds_from_given

    g = None
    check_kxk_memory(pb.k)
    if thresholds is None:
        g = given_probs(pb)
        if not np.isfinite(g).all():
            validate(pb)
        thresholds = thresholds_from_given(g, pb.labels, pb.k, pb.nthreads)
    cut = cut_from_thresholds(thresholds, pb.k, pb.dtype)
    on_device = 8 * pb.k * pb.k <= DEVICE_COUNTS_MAX_BYTES
    rp, raw = _row_pass(pb, cut, argmax=argmax, keep=keep, max_other=max_other, counts=on_device)
    with stage("confident_joint"):
        counted = rp.guess >= 0
        if raw is None:
            from .rules import confident_joint_from_guesses
            cj, off = confident_joint_from_guesses(pb.labels, rp.guess, pb.k)
        else:
            # raw[true (guess), given], transposed as rules.confident_joint_from_guesses builds it
            cj = raw.T
            np.fill_diagonal(cj, np.maximum(cj.diagonal(), 1))
            off = np.flatnonzero(counted & (rp.guess != pb.labels))
    return g, thresholds, rp, cj, off


def prune_by_noise_rate(pb, pcm, label_counts, min_examples_per_class, ties: str, ub=None) -> np.ndarray:
    """:func:`.passes.prune_by_noise_rate` with the margins from the device."""
    dp: DeviceProbs = pb.probs
    _, ks, js, caps = active_pairs(pcm, label_counts, min_examples_per_class)
    mask = np.zeros(pb.n, bool)
    if len(ks) == 0:
        return mask
    with stage("prune_by_noise_rate"):
        order = np.argsort(pb.labels, kind="stable")  # rows by class, in index order
        starts = np.zeros(pb.k + 1, np.int64)
        np.cumsum(label_counts, out=starts[1:])
        sizes = label_counts[ks].astype(np.int64)  # margins per pair
        q0 = 0
        while q0 < len(ks):
            # a batch: whole classes, at most MARGIN_BATCH margins (at least one class)
            q1 = q0
            total = 0
            while q1 < len(ks):
                kk = ks[q1]
                q_end = q1 + int(np.searchsorted(ks[q1:], kk, side="right"))
                more = int(sizes[q1:q_end].sum())
                if q1 > q0 and total + more > MARGIN_BATCH:
                    break
                total += more
                q1 = q_end
            _prune_batch(pb, dp, order, starts, ks[q0:q1], js[q0:q1], caps[q0:q1], sizes[q0:q1], total, ties,
                         mask)
            q0 = q1
    return mask


def _prune_batch(pb, dp, order, starts, ks, js, caps, sizes, total, ties, mask) -> None:
    classes = np.unique(ks)
    rows = np.concatenate([order[starts[c]:starts[c + 1]] for c in classes]).astype(np.int64)
    local = np.concatenate([np.arange(starts[c + 1] - starts[c], dtype=np.int64) for c in classes])
    pair_off = np.zeros(pb.k + 1, np.int64)
    np.cumsum(np.bincount(ks, minlength=pb.k), out=pair_off[1:])
    pair_base = np.zeros(len(ks), np.int64)
    np.cumsum(sizes[:-1], out=pair_base[1:])
    bufs = [dp.upload(a) for a in (rows, local, pair_off, np.ascontiguousarray(js, np.int64), pair_base)]
    out = dp.alloc(8 * max(total, 1))
    dp.cuda.pair_margins(*dp.desc(), dp.labels_ptr(pb.labels), bufs[0].ptr, bufs[1].ptr, len(rows), bufs[2].ptr,
                         bufs[3].ptr, bufs[4].ptr, out.ptr, dp.dev, dp.stream)
    margins = dp.download(out, total, np.float64)
    for q in range(len(ks)):
        k, c = ks[q], int(caps[q])
        rk = order[starts[k]:starts[k + 1]]
        m = margins[pair_base[q]:pair_base[q] + sizes[q]]
        if ties == "cleanlab":  # cleanlab's call on the margins in the input dtype
            sel = np.argsort(-m.astype(pb.dtype))[:c]
        else:  # largest margin, ties to the lower index
            sel = np.argsort(-m, kind="stable")[:c]
        mask[rk[sel]] = True
