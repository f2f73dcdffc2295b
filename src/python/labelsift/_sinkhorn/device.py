"""The Sinkhorn loop's passes on a CUDA device (``labelsift._cuda``:
``sk_pass``, ``sk_col_lse``; kernels in ``src/cuda/sinkhorn/sk_kernels.cu``).

The scores stay where the caller put them (any strides, float16/32/64);
between two passes only K-vectors cross to the host: f goes down, the
column sums and maxima come back, and the O(K) column step runs in NumPy as
on the CPU (:mod:`.potentials`). Labels and the plan are written into
arrays of the caller's kind on the input's device (torch tensors for torch,
CuPy arrays for CuPy; labelsift's own device buffers, copied to NumPy at
the end, for other producers). Row potentials, when the loop needs them
(``mode="sela"``, ``return_info``), come back every pass (N float64).

The device pass reproduces the CPU pass bit for bit except for log (see the
kernel's header): labels, column sums, plan and potentials are the CPU's
wherever no column's mass falls below ``potentials.TINY_MASS``.
"""
from __future__ import annotations

import sys

import numpy as np

from .._common.backend import core
from .._common.cuda_arrays import DTYPE_CODE, CudaArray, DeviceMatrix, parse

KERNEL_DTYPES = tuple(DTYPE_CODE)


def require_cuda(what: str = "scores"):
    from .._cl.device import require_cuda as req
    return req(what)


def device_scores(x, what: str = "scores") -> CudaArray:
    """scores on the device: 2-D, float16/float32/float64, N >= 1, 1 <= K < 2**31."""
    a = parse(x, what)
    if a.dtype not in KERNEL_DTYPES:
        raise TypeError(f"{what}: CUDA arrays of dtype {a.dtype} are not supported by the CUDA Sinkhorn "
                        "(float16, float32 or float64)")
    if a.ndim != 2:
        raise ValueError(f"{what} must be 2-D (N x K), got shape {a.shape}")
    n, k = a.shape
    if n == 0:
        raise ValueError(f"{what} is empty (0 rows)")
    if k == 0:
        raise ValueError(f"{what} has 0 columns")
    if k >= 2 ** 31:
        raise ValueError(f"{what} has {k} columns; the CUDA kernels take fewer than 2**31")
    return a


class DevOut:
    """An output array of the pass on the device, of the caller's kind."""

    def __init__(self, ds: "DeviceScores", shape, dtype):
        self.shape = (int(shape),) if np.isscalar(shape) else tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.obj = self.buf = None
        fw = ds.arr.framework
        if fw == "torch" and "torch" in sys.modules:
            torch = sys.modules["torch"]
            tdt = {np.dtype(np.int64): torch.int64, np.dtype(np.float32): torch.float32,
                   np.dtype(np.float64): torch.float64}[self.dtype]
            self.obj = torch.empty(self.shape, dtype=tdt, device=ds.arr.owner.device)
            self.ptr = int(self.obj.data_ptr())
        elif fw == "cupy" and "cupy" in sys.modules:
            cupy = sys.modules["cupy"]
            with cupy.cuda.Device(ds.dev):
                self.obj = cupy.empty(self.shape, self.dtype)
            self.ptr = int(self.obj.data.ptr)
        else:
            self.buf = ds.alloc(int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize)
            self.ptr = self.buf.ptr
        self.ds = ds

    def result(self, dtype=None):
        """The array in the caller's type (``dtype``: cast to it, e.g. float16 codes)."""
        if self.obj is not None:
            out = self.obj
            if dtype is not None and np.dtype(dtype) != self.dtype:
                if self.ds.arr.framework == "torch":
                    torch = sys.modules["torch"]
                    out = out.to({np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32,
                                  np.dtype(np.float64): torch.float64}[np.dtype(dtype)])
                else:
                    out = out.astype(dtype)
            return out
        host = np.empty(self.shape, self.dtype)
        self.ds.cuda.copy_dtoh(host, self.ptr, self.ds.dev, self.ds.stream)
        return host if dtype is None or np.dtype(dtype) == self.dtype else host.astype(dtype)


class DeviceScores(DeviceMatrix):
    """Scores on a CUDA device: what a Problem's ``X`` is on the device path
    (``shape``, ``dtype`` and row access like an array)."""

    def __init__(self, arr: CudaArray):
        super().__init__(arr, require_cuda())
        self.shape = arr.shape
        self._work = None
        self._g = None
        self._b = None  # (host row weights, their device copy)

    @classmethod
    def of(cls, x, what: str = "scores") -> "DeviceScores":
        return cls(device_scores(x, what))

    @property
    def n(self) -> int:
        return self.shape[0]

    @property
    def k(self) -> int:
        return self.shape[1]

    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return self.n

    def work(self):
        if self._work is None:
            nb = int(self.cuda.sk_work_bytes(self.n, self.k))
            self._work = (self.alloc(nb), nb)
        return self._work

    def __getitem__(self, i):
        """Row i as a host array (what the error messages read)."""
        i = int(i)
        return self.fetch(self.arr.ptr + i * self.s0 * self.dtype.itemsize, (self.k,), (self.s1,), self.dtype)

    def host(self) -> np.ndarray:
        """The whole matrix on the host (the paths without a kernel)."""
        return self.fetch(self.arr.ptr, self.shape, (self.s0, self.s1), self.dtype)

    def out(self, shape, dtype) -> DevOut:
        return DevOut(self, shape, dtype)

    def _b_ptr(self, b) -> int:
        if b is None:
            return 0
        if self._b is None or self._b[0] is not b:
            self._b = (b, self.upload(np.ascontiguousarray(b, dtype=np.float64)))
        return self._b[1].ptr

    # -- the passes ----------------------------------------------------------
    def pass_(self, f, lam, b, b0, labels=None, g=None, plan=None, unit_rows=False, check=False):
        """sk_pass on the device: (colsum, colmax, first bad row or -1).
        labels / plan: :class:`DevOut`; g: a host float64 array (filled)."""
        work, nb = self.work()
        colsum = np.empty(self.k)
        colmax = np.empty(self.k)
        gptr = 0
        if g is not None:
            if self._g is None:
                self._g = self.alloc(8 * self.n)
            gptr = self._g.ptr
        plan_code = 2
        if plan is not None:
            plan_code = DTYPE_CODE[plan.dtype]
        bad = self.cuda.sk_pass(*self.desc(), float(lam), np.ascontiguousarray(f, dtype=np.float64),
                                self._b_ptr(b), float(b0), colsum, colmax, 0 if labels is None else labels.ptr, gptr,
                                0 if plan is None else plan.ptr, plan_code, bool(unit_rows), bool(check), work.ptr,
                                nb, self.dev, self.stream)
        if g is not None:
            self.cuda.copy_dtoh(g, gptr, self.dev, self.stream)
        return colsum, colmax, int(bad)

    def col_lse(self, lam, lb, lb0) -> np.ndarray:
        """sk_col_lse on the device, merged on the host by sk_lse_finish (the CPU's merge)."""
        work, nb = self.work()
        rpc = int(core().sk_chunk_rows(self.n))
        nch = -(-self.n // rpc)
        M = np.empty(nch * self.k)
        S = np.empty(nch * self.k)
        lb_buf = None if lb is None else self.upload(np.ascontiguousarray(lb, dtype=np.float64))
        self.cuda.sk_col_lse(*self.desc(), float(lam), 0 if lb_buf is None else lb_buf.ptr, float(lb0), M, S,
                             work.ptr, nb, self.dev, self.stream)
        return core().sk_lse_finish(M, S, nch, self.k)


def is_cuda_device(device) -> bool:
    return isinstance(device, str) and (device == "cuda" or device.startswith("cuda:"))


def route(scores, device, what: str = "scores"):
    """Where a Sinkhorn call runs: a :class:`DeviceScores` for a CUDA array
    (``device`` None or "cuda[:i]"), None for host input (``device`` None or
    "cpu"). A CUDA array with ``device="cpu"`` is also returned (the caller
    then reads a host copy). Host input with ``device="cuda"``: ValueError
    (moving host scores to a GPU is not implemented)."""
    from .._common.cuda_arrays import is_cuda_array

    if device not in (None, "cpu") and not is_cuda_device(device):
        raise ValueError(f"device={device!r} is not one of None, 'cpu', 'cuda', 'cuda:<index>'")
    if not is_cuda_array(scores):
        if device not in (None, "cpu"):
            raise ValueError(f"device={device!r}: moving host {what} to a GPU is not implemented; pass {what} as a "
                             "CUDA array (torch, CuPy) to run on its device")
        return None
    ds = DeviceScores.of(scores, what)
    if is_cuda_device(device) and ":" in device and int(device.split(":")[1]) != ds.dev:
        raise ValueError(f"device={device!r}, but {what} live on cuda:{ds.dev}")
    return ds
