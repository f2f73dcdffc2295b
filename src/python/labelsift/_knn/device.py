"""Exact k-NN on a CUDA device: the CPU search's plan (:mod:`.search`) with
the Gram tiles from the caller's PyTorch or CuPy and labelsift's own kernels
for everything else (``src/cuda/knn/knn_kernels.cu``).

Why the products come from the caller's library: a matrix product at a
good share of tensor-core peak is what cuBLAS(Lt) already is, it is loaded
in every process that holds CUDA tensors, and calling it through torch or
CuPy at run time needs nothing at build time (the build machine has no
cuBLAS). labelsift's kernels do the rest, which cuBLAS cannot: the top-(k+r)
selection of every tile row under (key, index), the float64 re-rank with
the CPU's per-pair math (``knn/math.h``, bit for bit), and the exhaustive
recomputation of the rows the certificate cannot prove.

Per block of ``bq`` query rows, for each block of ``bc`` database rows: one
float32 tile S = Gq Gd^T (the product in ``gram`` precision, accumulated and
written in float32), consumed at once by ``knn_tile_select``; N x N is never
held, one tile is. Then ``knn_rerank`` on the block's candidates, the
certificate on the host (O(bq) values cross), ``knn_exhaustive`` on the rows
it cannot prove. The answer is the CPU search's: the same float64 keys, the
same (key, index) order, self excluded by identity.

``gram`` -- how the tile products are computed, and the rounding bound the
certificate then uses (relative error of each operand element u_in, float32
accumulation bounded by gamma_d(2 u32) to cover tensor cores' truncating
adds and any split-K order):

* ``"tf32"``: float32 operands on TF32 tensor cores (u_in = 2^-10, which
  covers round-to-nearest and truncation to TF32's 10 fraction bits);
* ``"bf16"``: operands rounded to bfloat16 (u_in = 2^-8), the product in
  float32 (``torch.mm(..., out_dtype=torch.float32)``; torch only);
* ``"fp32"``: IEEE float32 products (u_in = 0; TF32 switched off around the
  call; CuPy only when ``CUPY_TF32`` is not set);
* ``"auto"``: ``"tf32"`` with torch (or CuPy with ``CUPY_TF32=1``), else
  ``"fp32"``.

A coarser ``gram`` is faster per tile but proves fewer rows from the same
r extra candidates (``SearchInfo.fallback_rows``); the benchmark
(bench/bench_gpu_knn.py) measures both.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import os
import sys
from typing import Optional

import numpy as np

from .._common.cuda_arrays import DTYPE_CODE, CudaArray, parse
from .search import METRICS, U32, SearchInfo, _proven, check_metric, gamma

GRAMS = ("auto", "tf32", "bf16", "fp32")
U_IN = {"tf32": 2.0 ** -10, "bf16": 2.0 ** -8, "fp32": 0.0}
#: default device tile: 8192 query rows x 32768 database rows (a 1 GiB float32 tile)
DEVICE_TILE = (8192, 32768)
_CONVERT_ROWS = 1 << 16
#: rows the certificate cannot prove are searched again with this many times the candidates (up to the
#: kernels' cap) before the exhaustive kernel takes those still unproven -- when there are at least
#: RETRY_MIN_ROWS of them in a query block (fewer cost less exhaustively)
RETRY_FACTOR = 4
RETRY_MIN_ROWS = 32

#: tests/support/cuda_emu_plugin.py sets this to build the emulator's array operations
OPS_OVERRIDE = None


def _torch():
    return sys.modules.get("torch") or importlib.import_module("torch")


class TorchOps:
    """The array operations of the device search through PyTorch."""

    name = "torch"

    def __init__(self, dev: int):
        self.t = _torch()
        self.device = self.t.device("cuda", dev)
        self.dt = {np.dtype(np.float16): self.t.float16, np.dtype(np.float32): self.t.float32,
                   np.dtype(np.float64): self.t.float64, np.dtype(np.int64): self.t.int64,
                   np.dtype(np.uint8): self.t.uint8}

    def wrap(self, arr: CudaArray):
        if arr.framework == "torch":
            return arr.owner
        if any(st < 0 for st in arr.strides):
            raise TypeError("features with negative strides cannot be read through torch (the CUDA k-NN search's "
                            "matrix products): pass a copy with positive strides")
        if hasattr(arr.owner, "__cuda_array_interface__"):
            return self.t.as_tensor(arr.owner, device=self.device)
        return self.t.from_dlpack(arr.owner)

    def stream(self) -> int:
        return int(self.t.cuda.current_stream(self.device).cuda_stream)

    def export(self, x):
        """``x`` as an array the CUDA entry points accept (it already is one)."""
        return x

    def ptr(self, x) -> int:
        return int(x.data_ptr())

    def strides(self, x) -> tuple:
        return tuple(x.stride())

    def empty(self, shape, dtype):
        return self.t.empty(shape, dtype=self.dt[np.dtype(dtype)], device=self.device)

    def full(self, shape, value, dtype):
        return self.t.full(shape, value, dtype=self.dt[np.dtype(dtype)], device=self.device)

    def host(self, x) -> np.ndarray:
        return x.detach().cpu().numpy()

    def upload(self, a: np.ndarray):
        return self.t.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def astype(self, x, dtype):
        return x.to(self.dt[np.dtype(dtype)])

    def colsum64(self, X):
        return self.host(X.sum(dim=0, dtype=self.t.float64))

    def absmax(self, X) -> float:
        return float(X.abs().max().item())

    def to_float32(self, X, mu, s):
        """fl32((X - mu) * s) of a block of rows."""
        b = X.to(self.t.float64)
        if mu is not None:
            b = b - self.upload(mu)
        if s != 1.0:
            b = b * s
        return b.to(self.t.float32)

    def operand(self, G, gram):
        return G.to(self.t.bfloat16) if gram == "bf16" else G

    @contextlib.contextmanager
    def _fp32_mode(self, tf32: bool):
        """float32 products on TF32 tensor cores (tf32) or in IEEE float32,
        for the scope: torch's newer ``fp32_precision`` or the older
        ``allow_tf32``; ``self._mode_set`` says whether either took."""
        m = self.t.backends.cuda.matmul
        saved = None
        for attr, val in (("fp32_precision", "tf32" if tf32 else "ieee"), ("allow_tf32", tf32)):
            try:
                old = getattr(m, attr)
                setattr(m, attr, val)
            except Exception:  # noqa: BLE001 -- not this torch's API
                continue
            saved = (attr, old)
            break
        self._mode_set = saved is not None
        try:
            yield
        finally:
            if saved is not None:
                try:
                    setattr(m, *saved)
                except Exception:  # noqa: BLE001
                    pass

    def mm(self, A, B, out, gram):
        """out (float32) = A @ B.T."""
        if gram == "bf16":
            return self.t.mm(A, B.T, out_dtype=self.t.float32)
        with self._fp32_mode(gram == "tf32"):
            return self.t.mm(A, B.T, out=out)

    def supports(self, gram) -> bool:
        if gram != "bf16":
            return True
        try:
            a = self.t.zeros((2, 2), dtype=self.t.bfloat16, device=self.device)
            return self.t.mm(a, a, out_dtype=self.t.float32).dtype == self.t.float32
        except Exception:  # noqa: BLE001 -- no out_dtype in this torch
            return False

    def fp32_is_ieee(self) -> bool:
        with self._fp32_mode(False):
            return self._mode_set

    def distances(self, ok, metric):
        return (self.t.sqrt(ok) if metric == "l2" else ok).to(self.t.float32)


class ArrayOps:
    """The same operations through a NumPy-like module (CuPy)."""

    def __init__(self, xp, dev: int, name: str):
        self.xp = xp
        self.dev = dev
        self.name = name

    def wrap(self, arr: CudaArray):
        if arr.framework == "cupy":
            return arr.owner
        return self.xp.asarray(arr.owner)

    def stream(self) -> int:
        with self.xp.cuda.Device(self.dev):
            return int(self.xp.cuda.get_current_stream().ptr)

    def ptr(self, x) -> int:
        return int(x.data.ptr)

    def strides(self, x) -> tuple:
        return tuple(s // x.itemsize for s in x.strides)

    def empty(self, shape, dtype):
        with self.xp.cuda.Device(self.dev):
            return self.xp.empty(shape, dtype)

    def full(self, shape, value, dtype):
        with self.xp.cuda.Device(self.dev):
            return self.xp.full(shape, value, dtype)

    def host(self, x) -> np.ndarray:
        return self.xp.asnumpy(x)

    def export(self, x):
        return x

    def upload(self, a: np.ndarray):
        with self.xp.cuda.Device(self.dev):
            return self.xp.asarray(np.ascontiguousarray(a))

    def astype(self, x, dtype):
        return x.astype(dtype)

    def colsum64(self, X):
        return self.host(X.sum(axis=0, dtype=np.float64))

    def absmax(self, X) -> float:
        return float(self.xp.abs(X).max())

    def to_float32(self, X, mu, s):
        b = X.astype(np.float64)
        if mu is not None:
            b = b - self.upload(mu)
        if s != 1.0:
            b = b * s
        return b.astype(np.float32)

    def operand(self, G, gram):
        return G

    def mm(self, A, B, out, gram):
        return self.xp.matmul(A, B.T, out=out)

    def supports(self, gram) -> bool:
        return gram == ("tf32" if os.environ.get("CUPY_TF32", "0") not in ("", "0") else "fp32")

    def fp32_is_ieee(self) -> bool:
        return os.environ.get("CUPY_TF32", "0") in ("", "0")

    def distances(self, ok, metric):
        return (self.xp.sqrt(ok) if metric == "l2" else ok).astype(np.float32)


def ops_for(arr: CudaArray, dev: int):
    """The array operations for the caller's arrays: their own library (torch
    for torch, CuPy for CuPy), torch or else CuPy for other producers."""
    if OPS_OVERRIDE is not None:
        return OPS_OVERRIDE(arr, dev)
    if arr.framework == "cupy":
        return ArrayOps(sys.modules["cupy"], dev, "cupy")
    try:
        return TorchOps(dev)
    except ImportError:
        pass
    try:
        return ArrayOps(importlib.import_module("cupy"), dev, "cupy")
    except ImportError:
        raise TypeError("the CUDA k-NN search computes its matrix products through PyTorch or CuPy, and "
                        "neither is installed: pip install torch (or cupy), or pass NumPy features") from None


def resolve_gram(ops, gram) -> str:
    if gram not in GRAMS:
        raise ValueError(f"gram={gram!r} is not one of {', '.join(map(repr, GRAMS))}")
    if gram == "auto":
        if ops.name == "cupy":
            return "fp32" if ops.fp32_is_ieee() else "tf32"
        return "tf32"
    if not ops.supports(gram):
        raise ValueError(f"gram={gram!r} is not available through {ops.name} here (bf16 needs torch.mm's "
                         "out_dtype; CuPy gives tf32 only with CUPY_TF32=1 and fp32 only without it)")
    if gram == "fp32" and not ops.fp32_is_ieee():
        raise ValueError("gram='fp32': TF32 cannot be switched off here; use gram='tf32'")
    return gram


def host_copy(x, what: str):
    """(a NumPy copy of CUDA features, the function that turns results back
    into the caller's kind)."""
    from .._cl.device import require_cuda
    from .._common.cuda_arrays import host_copy as fetch_all, to_caller

    a = device_features(x, what)
    return fetch_all(a, require_cuda(what)), (lambda r: to_caller(a, r))


def device_features(x, what: str) -> CudaArray:
    a = parse(x, what)
    if a.dtype not in DTYPE_CODE:
        raise TypeError(f"{what}: CUDA arrays of dtype {a.dtype} are not supported by the CUDA k-NN search "
                        "(float16, float32 or float64)")
    if a.ndim != 2:
        raise ValueError(f"{what} must be 2-D (num_examples x num_features), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {a.shape})")
    return a


class _Mat:
    """A device matrix as the kernels take it: (ptr, n, d, s0, s1, dtype code)."""

    def __init__(self, ops, x):
        self.x = x
        self.ptr = ops.ptr(x)
        self.n, self.d = int(x.shape[0]), int(x.shape[1])
        self.s0, self.s1 = ops.strides(x)
        self.dtype = np.dtype(str(x.dtype).replace("torch.", ""))
        self.code = DTYPE_CODE[self.dtype]

    def row_ptr(self, i: int) -> int:
        return self.ptr + i * self.s0 * self.dtype.itemsize


def _absmax(ops, X, n) -> float:
    return max(ops.absmax(X[a:a + _CONVERT_ROWS]) for a in range(0, n, _CONVERT_ROWS))


def _norms(cuda, ops, M: _Mat, dev, stream):
    out = ops.empty((M.n,), np.float64)
    cuda.knn_norms2(M.ptr, M.n, M.d, M.s0, M.s1, M.code, ops.ptr(out), dev, stream)
    return out


def _check_finite(ops, X, norms: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(~np.isfinite(norms))
    if not len(bad):
        return
    i = int(bad[0])
    row = ops.host(X[i]).astype(np.float64)
    cols = np.flatnonzero(~np.isfinite(row))
    if len(cols):
        j = int(cols[0])
        raise ValueError(f"{what}[{i}, {j}] = {float(row[j])!r} is not finite")
    raise ValueError(f"{what}[{i}]: its squared norm overflows float64 (values too large)")


def search_metrics_device(queries, database=None, *, k=10, metrics=("cosine",), exclude_self=True, tile=None,
                          extra=None, gram="auto", progress=None, float64_keys=False):
    """:func:`.search.search_metrics` on CUDA arrays: a list of (indices,
    distances, SearchInfo) per metric, as arrays of the caller's kind
    (``float64_keys``: the float64 keys instead of the float32 distances)."""
    from .._cl.device import require_cuda
    from .._common.params import integer

    metrics = [check_metric(mt) for mt in metrics]
    if not metrics:
        raise ValueError("at least one metric")
    aq = device_features(queries, "features" if database is None else "queries")
    cuda = require_cuda("features")
    same = database is None
    ad = aq if same else device_features(database, "database")
    dev = aq.device if aq.device is not None else int(cuda.pointer_device(aq.ptr))
    ddev = ad.device if ad.device is not None else int(cuda.pointer_device(ad.ptr))
    if ddev != dev:
        raise ValueError(f"queries are on cuda:{dev} but the database is on cuda:{ddev}")
    if ad.shape[1] != aq.shape[1]:
        raise ValueError(f"queries have {aq.shape[1]} features but the database has {ad.shape[1]}")
    ops = ops_for(aq, dev)
    gram = resolve_gram(ops, gram)
    XQ = ops.wrap(aq)
    XD = XQ if same else ops.wrap(ad)
    if aq.dtype != ad.dtype:
        dt = np.result_type(aq.dtype, ad.dtype)
        XQ, XD = ops.astype(XQ, dt), ops.astype(XD, dt)
    # the library's current stream: its products and these kernels run in order there
    stream = ops.stream()
    Q = _Mat(ops, XQ)
    D = Q if same else _Mat(ops, XD)
    nq, d = Q.n, Q.d
    nd = D.n
    excl = bool(exclude_self) and same
    avail = nd - (1 if excl else 0)
    k = integer(k, "k", lo=1)
    if k > avail:
        raise ValueError(f"k={k} neighbours requested but only {avail} {'other ' if excl else ''}rows exist")
    r = max(16, k) if extra is None else integer(extra, "extra", lo=0)
    m = min(avail, k + r)
    cap = int(cuda.knn_max_candidates)
    if m > cap:
        raise ValueError(f"the CUDA k-NN search keeps at most {cap} candidates per row (k + extra = {k + r}); "
                         "use fewer, or NumPy features for the CPU search")
    bq, bc = DEVICE_TILE if tile is None else (integer(tile[0], "tile[0]", lo=1), integer(tile[1], "tile[1]", lo=1))
    bq, bc = min(bq, nq), min(bc, nd)

    qn_d = _norms(cuda, ops, Q, dev, stream)
    qn = ops.host(qn_d)
    _check_finite(ops, XQ, qn, "features" if same else "queries")
    if same:
        dn_d, dn = qn_d, qn
    else:
        dn_d = _norms(cuda, ops, D, dev, stream)
        dn = ops.host(dn_d)
        _check_finite(ops, XD, dn, "database")
    amax = _absmax(ops, XQ, nq) if same else max(_absmax(ops, XQ, nq), _absmax(ops, XD, nd))
    e = 0
    if amax > 0 and (amax > 2.0 ** 40 or amax < 2.0 ** -40):
        e = -math.frexp(amax)[1]
    s = math.ldexp(1.0, e)
    u_in = U_IN[gram]
    g_prod = gamma(d, 2 * U32) * (1 + u_in) ** 2 + 2.01 * u_in

    out = []
    copies = {}
    for metric in metrics:
        mu = None
        if metric == "l2":
            mean = sum(ops.colsum64(XD[a:a + _CONVERT_ROWS]) for a in range(0, nd, _CONVERT_ROWS)) / nd
            if float(mean @ mean) > 0.25 * float(np.mean(dn)):
                mu = mean
        key = (mu is None, e)
        if Q.dtype == np.float32 and mu is None and e == 0:
            Gq, Gd, rounded = XQ, XD, False
        elif key in copies:
            Gq, Gd, rounded = copies[key]
        else:
            def conv(X, n):
                G = ops.empty((n, d), np.float32)
                for a in range(0, n, _CONVERT_ROWS):
                    G[a:a + _CONVERT_ROWS] = ops.to_float32(X[a:a + _CONVERT_ROWS], mu, s)
                return G
            Gd = conv(XD, nd)
            Gq = Gd if same else conv(XQ, nq)
            rounded = not (Q.dtype == np.float16 and mu is None)
            copies[key] = (Gq, Gd, rounded)
        p = _DevPlan(metric, METRICS[metric], e, s, mu, rounded, g_prod)
        if metric == "l2":
            gq2 = qn if Gq is XQ else ops.host(_norms(cuda, ops, _Mat(ops, Gq), dev, stream))
            gd2 = gq2 if same else (dn if Gd is XD else ops.host(_norms(cuda, ops, _Mat(ops, Gd), dev, stream)))
            a_col = gd2.astype(np.float32)
            b_col = np.full(nd, -2.0, np.float32)
            p.gq2 = gq2
            p.M = math.sqrt(float(gd2.max()))
            p.eta_max = 1.02 * (U32 + 2.0 ** -53) * p.M if rounded else 0.0
        else:
            with np.errstate(divide="ignore"):
                inv = np.where(dn > 0, s / np.sqrt(dn), 0.0)
            a_col = np.zeros(nd, np.float32)
            b_col = (-inv).astype(np.float32)
        a_d, b_d = ops.upload(a_col), ops.upload(b_col)
        Oq, Od = ops.operand(Gq, gram), ops.operand(Gd, gram)
        oi = ops.empty((nq, k), np.int64)
        ok = ops.empty((nq, k), np.float64)
        S = ops.empty((bq, bc), np.float32)
        fallback = retried = 0
        done, total = 0, -(-nq // bq) * -(-nd // bc)
        label = f"k-NN search ({metric}, CUDA)"
        mc = METRICS[metric]

        def select(A, n, mm, self0, self_rows):
            """The mm best float32 keys of each of the n operand rows A over every database tile."""
            hk = ops.full((n, mm), np.inf, np.float32)
            hi = ops.full((n, mm), -1, np.int64)
            for c0 in range(0, nd, bc):
                c1 = min(nd, c0 + bc)
                St = ops.mm(A, Od[c0:c1], S[:n, : c1 - c0] if (n, c1 - c0) == (bq, bc) else None, gram)
                cuda.knn_tile_select(ops.ptr(St), n, c1 - c0, ops.strides(St)[0], ops.ptr(a_d) + 4 * c0,
                                     ops.ptr(b_d) + 4 * c0, c0, self0, self_rows, ops.ptr(hk), ops.ptr(hi), mm,
                                     dev, stream)
            return hk, hi

        def unproven(hk, keys, rows):
            worst = ops.host(hk[:, 0]).astype(np.float64)
            kth = ops.host(keys[:, k - 1])
            good = _proven(p, worst, kth, qn[rows], None if p.gq2 is None else p.gq2[rows], d)
            return rows[~good]

        m2 = min(cap, avail, RETRY_FACTOR * m)

        def retry(bad):
            """Rows the certificate could not prove, searched again with m2 candidates (their own
            operand rows gathered); returns those still unproven."""
            left = []
            for t0 in range(0, len(bad), bq):
                rows = bad[t0:t0 + bq]
                rd = ops.upload(rows)
                hk, hi = select(Oq[rd], len(rows), m2, -1, ops.ptr(rd) if excl else 0)
                Xb = _Mat(ops, XQ[rd])
                qb = qn_d[rd]
                ti = ops.empty((len(rows), k), np.int64)
                tk = ops.empty((len(rows), k), np.float64)
                cuda.knn_rerank(Xb.ptr, Xb.n, Xb.s0, Xb.s1, D.ptr, nd, D.s0, D.s1, d, Q.code, ops.ptr(qb),
                                ops.ptr(dn_d), ops.ptr(hi), m2, mc, k, ops.ptr(ti), ops.ptr(tk), dev, stream)
                oi[rd] = ti
                ok[rd] = tk
                left.append(unproven(hk, tk, rows) if m2 < avail else rows[:0])
            return np.concatenate(left)

        for q0 in range(0, nq, bq):
            q1 = min(nq, q0 + bq)
            n = q1 - q0
            hk, hi = select(Oq[q0:q1], n, m, q0 if excl else -1, 0)
            done += -(-nd // bc)
            cuda.knn_rerank(Q.row_ptr(q0), n, Q.s0, Q.s1, D.ptr, nd, D.s0, D.s1, d, Q.code, ops.ptr(qn_d) + 8 * q0,
                            ops.ptr(dn_d), ops.ptr(hi), m, mc, k, ops.ptr(oi) + 8 * q0 * k,
                            ops.ptr(ok) + 8 * q0 * k, dev, stream)
            if m < avail:
                bad = unproven(hk, ok[q0:q1], np.arange(q0, q1, dtype=np.int64))
                del hk, hi
                if m2 > m and len(bad) >= RETRY_MIN_ROWS:
                    retried += len(bad)
                    bad = retry(bad)
                if len(bad):
                    fallback += len(bad)
                    rows = ops.upload(bad)
                    cuda.knn_exhaustive(Q.ptr, nq, Q.s0, Q.s1, ops.ptr(rows), len(bad), ops.ptr(rows) if excl else 0,
                                        ops.ptr(rows), D.ptr, nd, D.s0, D.s1, d, Q.code, ops.ptr(qn_d),
                                        ops.ptr(dn_d), mc, k, ops.ptr(oi), ops.ptr(ok), dev, stream)
            if progress is not None:
                progress(label, done, total)
        dist = ok if float64_keys else ops.distances(ok, metric)
        info = SearchInfo(rows=nq, k=k, candidates=m, fallback_rows=fallback, tile=(bq, bc), metric=metric,
                          centred=mu is not None, scale_exponent=e, float32_copy=Gd is not XD, symmetric=False,
                          device=f"cuda:{dev}", gram=gram, retried_rows=retried)
        out.append((_result(aq, ops, oi), _result(aq, ops, dist), info))
    return out


class _DevPlan:
    """What the certificate needs of one metric's device plan (see search._Plan)."""

    def __init__(self, metric, mcode, e, s, mu, rounded, g_prod):
        self.metric, self.mcode, self.e, self.s, self.mu, self.rounded = metric, mcode, e, s, mu, rounded
        self.g_prod = g_prod
        self.g_abs = 0.0  # the device bound is g_prod alone (see search_metrics_device)
        self.inv_max = 0.0
        self.gq2: Optional[np.ndarray] = None
        self.M = 0.0
        self.eta_max = 0.0


def _result(arr: CudaArray, ops, x):
    """A result in the caller's kind: torch for torch, CuPy for CuPy, NumPy otherwise."""
    if arr.framework == ops.name:
        return x
    return ops.host(x)
