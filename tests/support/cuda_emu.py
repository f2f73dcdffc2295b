"""An emulation of ``labelsift._cuda`` on host memory, for CPU tests of the
CUDA path's Python side (tests/common/test_cuda_emulated.py) and for running
the GPU suite's logic without a GPU (tests/common/test_gpu_suite_emulated.py
with :mod:`support.cuda_emu_plugin`).

The emulator implements the contract of each kernel binding (documented in
src/cuda/cl/cuda_kernels.h) on host memory: "device pointers" are host
addresses, the row pass is the CPU kernel, the confident counts and the
pair margins are NumPy; the Sinkhorn pass and column log-sum-exp are the
CPU's sk_pass / sk_col_lse_pieces over the CPU's row chunks. It does not
emulate CUDA errors.
"""
import ctypes

import numpy as np
import pytest

from labelsift._common import cuda_arrays as ca
from labelsift._common.backend import core

DT = {0: np.dtype(np.float16), 1: np.dtype(np.float32), 2: np.dtype(np.float64)}


def host_view(ptr, shape, strides, dtype):
    """Host memory at address ``ptr`` as a NumPy view (strides in elements)."""
    dtype = np.dtype(dtype)
    a = ca.CudaArray(ptr, tuple(shape), tuple(strides), dtype, None, 0, "other", None)
    lo, hi = ca.span(a)
    if hi == lo:
        return np.empty(shape, dtype)
    raw = np.frombuffer((ctypes.c_char * ((hi - lo) * dtype.itemsize)).from_address(ptr + lo * dtype.itemsize),
                        dtype)
    return np.ndarray(shape, dtype, buffer=raw, offset=-lo * dtype.itemsize,
                      strides=tuple(s * dtype.itemsize for s in strides))


class Emu:
    """labelsift._cuda's kernel bindings on host memory."""

    calls = []

    class DeviceBuffer:
        def __init__(self, nbytes, device):
            self.mem = np.zeros(max(int(nbytes), 1), np.uint8)
            self.ptr = self.mem.ctypes.data
            self.nbytes = nbytes
            self.device = device

    @staticmethod
    def pointer_device(ptr):
        return 0

    @staticmethod
    def copy_htod(dst, src, device, stream):
        assert src.flags.c_contiguous
        ctypes.memmove(dst, src.ctypes.data, src.nbytes)

    @staticmethod
    def copy_dtoh(dst, src, device, stream):
        assert dst.flags.c_contiguous
        ctypes.memmove(dst.ctypes.data, src, dst.nbytes)

    @staticmethod
    def memset(dst, value, nbytes, device, stream):
        ctypes.memset(dst, value, nbytes)

    @staticmethod
    def gather_given(P, n, k, s0, s1, dtype, labels, out, device, stream):
        Emu.calls.append("gather_given")
        Pv = host_view(P, (n, k), (s0, s1), DT[dtype])
        y = host_view(labels, (n,), (1,), np.int64)
        host_view(out, (n,), (1,), DT[dtype])[:] = Pv[np.arange(n), y]

    @staticmethod
    def row_pass(P, n, k, s0, s1, dtype, labels, cut, cut_f32, guess, argmax, keep, max_other, cj, lo, hi, tol,
                 device, stream):
        Emu.calls.append("row_pass")
        Pv = host_view(P, (n, k), (s0, s1), DT[dtype])
        y = host_view(labels, (n,), (1,), np.int64)
        c = None if cut == 0 else host_view(cut, (k,), (1,), np.float32 if cut_f32 else np.float64)
        outs = [None if p == 0 else host_view(p, (n,), (1,), t)
                for p, t in ((guess, np.int32), (argmax, np.int32), (keep, np.uint8), (max_other, np.float64))]
        err = core().row_pass(Pv, np.ascontiguousarray(y), c, *outs, lo, hi, tol, 1)
        if err[0] < 0 and cj:
            g = outs[0]
            counts = host_view(cj, (k * k,), (1,), np.uint64)
            np.add.at(counts, (g[g >= 0].astype(np.int64) * k + y[g >= 0]).astype(np.int64), np.uint64(1))
        return err

    @staticmethod
    def pair_margins(P, n, k, s0, s1, dtype, labels, rows, local, m, pair_off, cols, pair_base, out, device,
                     stream):
        Emu.calls.append("pair_margins")
        Pv = host_view(P, (n, k), (s0, s1), DT[dtype])
        y = host_view(labels, (n,), (1,), np.int64)
        r = host_view(rows, (m,), (1,), np.int64)
        loc = host_view(local, (m,), (1,), np.int64)
        off = host_view(pair_off, (k + 1,), (1,), np.int64)
        cl = host_view(cols, (off[-1],), (1,), np.int64)
        base = host_view(pair_base, (off[-1],), (1,), np.int64)
        total = int(max(base[-1] + 1, 1)) if off[-1] else 1
        o = host_view(out, (total + m,), (1,), np.float64)  # bounds: checked below by the caller's sizes
        for kk in range(k):
            t = np.flatnonzero(y[r] == kk)
            for q in range(off[kk], off[kk + 1]):
                o[base[q] + loc[t]] = (Pv[r[t], cl[q]] - Pv[r[t], kk]).astype(np.float64)


    # ---- Sinkhorn (src/cuda/sinkhorn/sk_cuda.h): the CPU kernels on host views ----
    @staticmethod
    def sk_work_bytes(n, k):
        return 64  # the emulated kernels keep nothing in the work buffer

    @staticmethod
    def sk_pass(X, n, k, s0, s1, dtype, lam, f, b, b0, colsum, colmax, labels, g, plan, plan_dtype, unit_rows,
                check, work, work_bytes, device, stream):
        Emu.calls.append("sk_pass")
        assert work and work_bytes >= Emu.sk_work_bytes(n, k)
        assert f.dtype == np.float64 and f.shape == (k,) and colsum.shape == (k,) and colmax.shape == (k,)
        Xv = host_view(X, (n, k), (s0, s1), DT[dtype])
        bv = None if b == 0 else np.ascontiguousarray(host_view(b, (n,), (1,), np.float64))
        lv = None if labels == 0 else host_view(labels, (n,), (1,), np.int64)
        gv = None if g == 0 else host_view(g, (n,), (1,), np.float64)
        pv = None if plan == 0 else host_view(plan, (n, k), (k, 1), DT[plan_dtype])
        return core().sk_pass(Xv, lam, f, bv, b0, colsum, colmax, lv, gv, pv, unit_rows, check, 0, 0)

    @staticmethod
    def sk_col_lse(X, n, k, s0, s1, dtype, lam, lb, lb0, M, S, work, work_bytes, device, stream):
        Emu.calls.append("sk_col_lse")
        assert work and work_bytes >= Emu.sk_work_bytes(n, k)
        Xv = host_view(X, (n, k), (s0, s1), DT[dtype])
        rpc = int(core().sk_chunk_rows(n))
        nch = -(-n // rpc)
        starts = np.minimum(np.arange(nch + 1, dtype=np.int64) * rpc, n)  # the CPU's chunks (sinkhorn/kernels.h)
        assert M.shape == (nch * k,) and S.shape == (nch * k,)
        M[:] = -np.inf
        S[:] = 0.0
        lbv = None if lb == 0 else np.ascontiguousarray(host_view(lb, (n,), (1,), np.float64))
        core().sk_col_lse_pieces(Xv, lam, lbv, lb0, starts, M, S, 0)


    # ---- exact k-NN (src/cuda/knn/knn_cuda.h): the CPU kernels on host views ----
    knn_max_candidates = 1024

    @staticmethod
    def knn_norms2(X, n, d, s0, s1, dtype, out, device, stream):
        Emu.calls.append("knn_norms2")
        Xv = host_view(X, (n, d), (s0, s1), DT[dtype])
        host_view(out, (n,), (1,), np.float64)[:] = core().knn_norms2(np.ascontiguousarray(Xv), 1)

    @staticmethod
    def knn_tile_select(S, nq, nc, ls, a, b, c0, self0, self_rows, hk, hi, m, device, stream):
        Emu.calls.append("knn_tile_select")
        assert 1 <= m <= Emu.knn_max_candidates and ls >= nc
        Sv = host_view(S, (nq, nc), (ls, 1), np.float32)
        av = host_view(a, (nc,), (1,), np.float32)
        bv = host_view(b, (nc,), (1,), np.float32)
        hkv = host_view(hk, (nq, m), (m, 1), np.float32)
        hiv = host_view(hi, (nq, m), (m, 1), np.int64)
        Sc, ac, bc = np.ascontiguousarray(Sv), np.ascontiguousarray(av), np.ascontiguousarray(bv)
        if self_rows == 0:
            core().knn_tile_select(Sc, ac, bc, c0, self0, hkv, hiv, 1)
            return
        sr = host_view(self_rows, (nq,), (1,), np.int64)
        for r in range(nq):  # row by row: the CPU kernel skips self0 + r
            hk1, hi1 = hkv[r:r + 1].copy(), hiv[r:r + 1].copy()
            core().knn_tile_select(Sc[r:r + 1], ac, bc, c0, int(sr[r]), hk1, hi1, 1)
            hkv[r], hiv[r] = hk1[0], hi1[0]

    @staticmethod
    def knn_rerank(Q, nq, qs0, qs1, D, nd, ds0, ds1, d, dtype, qn, dn, hi, m, metric, k, out_idx, out_key, device,
                   stream):
        Emu.calls.append("knn_rerank")
        assert 1 <= k <= m <= Emu.knn_max_candidates
        Qv = host_view(Q, (nq, d), (qs0, qs1), DT[dtype])
        Dv = host_view(D, (nd, d), (ds0, ds1), DT[dtype])
        qv = np.ascontiguousarray(host_view(qn, (nq,), (1,), np.float64))
        dv = np.ascontiguousarray(host_view(dn, (nd,), (1,), np.float64))
        hv = np.ascontiguousarray(host_view(hi, (nq, m), (m, 1), np.int64))
        oi = np.empty((nq, k), np.int64)
        ok = np.empty((nq, k), np.float64)
        core().knn_rerank(np.ascontiguousarray(Qv), np.ascontiguousarray(Dv), qv, dv, hv, metric, k, oi, ok, 1)
        host_view(out_idx, (nq, k), (k, 1), np.int64)[:] = oi
        host_view(out_key, (nq, k), (k, 1), np.float64)[:] = ok

    @staticmethod
    def knn_exhaustive(Q, nq, qs0, qs1, rows, nr, self, dest, D, nd, ds0, ds1, d, dtype, qn, dn, metric, k, out_idx,
                       out_key, device, stream):
        Emu.calls.append("knn_exhaustive")
        Qv = np.ascontiguousarray(host_view(Q, (nq, d), (qs0, qs1), DT[dtype]))
        Dv = np.ascontiguousarray(host_view(D, (nd, d), (ds0, ds1), DT[dtype]))
        rv = host_view(rows, (nr,), (1,), np.int64).copy()
        sv = None if self == 0 else host_view(self, (nr,), (1,), np.int64).copy()
        tv = np.arange(nr) if dest == 0 else host_view(dest, (nr,), (1,), np.int64)
        qv = np.ascontiguousarray(host_view(qn, (nq,), (1,), np.float64))
        dv = np.ascontiguousarray(host_view(dn, (nd,), (1,), np.float64))
        ri, rk = core().knn_exhaustive(Qv, rv, sv, Dv, qv, dv, metric, k, 1)
        host_view(out_idx, (nq, k), (k, 1), np.int64)[tv] = ri
        host_view(out_key, (nq, k), (k, 1), np.float64)[tv] = rk


def _emu_votes(idx, n, k, s0, s1, idx32, labels, weights, K, mode, out, device, stream):
    """knn_votes (src/cuda/knn/vote_kernels.cu) on host views: the host functions of labelsift._knn.counts."""
    from labelsift._knn import counts
    Emu.calls.append("knn_votes")
    iv = host_view(idx, (n, k), (s0, s1), np.int32 if idx32 else np.int64).astype(np.int64)
    bad = (iv < -1) | (iv >= n)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        return int(r), int(c)
    y = host_view(labels, (n,), (1,), np.int64).copy()
    w = None if weights == 0 else host_view(weights, (n, k), (k, 1), np.float64).copy()
    if mode == 3:
        host_view(out, (n,), (1,), np.float64)[:] = counts.agreement(y, iv, weights=w)
    elif mode == 2:
        host_view(out, (n, K), (K, 1), np.float64)[:] = counts.knn_pred_probs(y, iv, K, weights=w)
    else:
        host_view(out, (n, K), (K, 1), np.int64 if mode == 0 else np.float64)[:] = counts.label_counts(
            y, iv, K, weights=w)
    return -1, -1


Emu.knn_votes = staticmethod(_emu_votes)


# ---- HOC / SimiFeat rounds (src/cuda/noise/nz_cuda.h): NumPy definitions on host views ----
def _canon_rows(b):
    from labelsift._noise.neighbours import Features
    return Features(b).x64


def _emu_nz_normalize(X, n, d, s0, s1, dtype, rows, m, out, device, stream):
    Emu.calls.append("nz_normalize")
    Xv = host_view(X, (n, d), (s0, s1), DT[dtype])
    r = np.arange(m) if rows == 0 else host_view(rows, (m,), (1,), np.int64)
    host_view(out, (m, d), (d, 1), np.float64)[:] = _canon_rows(np.asarray(Xv[r], np.float64))


def _emu_nz_row_hash(X, n, d, s0, s1, dtype, out, device, stream):
    """A deliberately weak hash (the first column's bits): rows that differ elsewhere collide, so the
    callers' bytewise check of colliding rows is exercised."""
    Emu.calls.append("nz_row_hash")
    Xv = host_view(X, (n, d), (s0, s1), DT[dtype])
    bits = np.ascontiguousarray(Xv[:, 0]).view({2: np.uint16, 4: np.uint32, 8: np.uint64}[DT[dtype].itemsize])
    host_view(out, (n,), (1,), np.int64)[:] = bits.astype(np.int64)


def _pair_dist(x, qi, dj):
    return 1.0 - (x[qi] * x[dj]).sum(axis=1)


def _emu_nz_cand_distances(x, m, d, cand, c, dist, device, stream):
    Emu.calls.append("nz_cand_distances")
    xv = host_view(x, (m, d), (d, 1), np.float64)
    cv = host_view(cand, (m, c), (c, 1), np.int64)
    rows = np.repeat(np.arange(m), c)
    j = cv.ravel()
    out = np.full(m * c, np.inf)
    ok = j >= 0
    out[ok] = _pair_dist(xv, rows[ok], j[ok])
    host_view(dist, (m, c), (c, 1), np.float64)[:] = out.reshape(m, c)


def _emu_nz_row_distances(x, m, d, rows, nr, out, device, stream):
    Emu.calls.append("nz_row_distances")
    xv = host_view(x, (m, d), (d, 1), np.float64)
    rv = host_view(rows, (nr,), (1,), np.int64)
    o = host_view(out, (nr, m), (m, 1), np.float64)
    for t, r in enumerate(rv):
        o[t] = _pair_dist(xv, np.full(m, r), np.arange(m))


def _emu_nz_select(dist, cand, key, m, c, want, eps, all_in, out_idx, out_dist, unproven, device, stream):
    Emu.calls.append("nz_select")
    dv = host_view(dist, (m, c), (c, 1), np.float64)
    cv = host_view(cand, (m, c), (c, 1), np.int64)
    kv = host_view(key, (m, c), (c, 1), np.float64)
    oi = host_view(out_idx, (m, want), (want, 1), np.int64)
    od = host_view(out_dist, (m, want), (want, 1), np.float64)
    un = host_view(unproven, (m,), (1,), np.uint8)
    for r in range(m):
        ok = cv[r] >= 0
        j, v = cv[r][ok], dv[r][ok]
        o = np.lexsort((j, v))[:want]
        oi[r], od[r] = -1, np.inf
        oi[r, :len(o)], od[r, :len(o)] = j[o], v[o]
        un[r] = 0 if all_in or (len(o) == want and od[r, -1] < kv[r, -1] - eps) else 1


def _emu_nz_vote(ya, yb, nbr, dist, m, km1, K, gv, pred, device, stream):
    from labelsift._noise.simifeat import self_weights
    Emu.calls.append("nz_vote")
    a = host_view(ya, (m,), (1,), np.int64).copy()
    b = host_view(yb, (int(host_view(nbr, (m, km1), (km1, 1), np.int64).max()) + 1,), (1,), np.int64).copy()
    nv = host_view(nbr, (m, km1), (km1, 1), np.int64)
    lab = np.concatenate([a[:, None], b[nv]], axis=1)
    w = self_weights(host_view(dist, (m, km1), (km1, 1), np.float64).copy())
    k = km1 + 1
    g, p = core().nz_vote(np.ascontiguousarray(lab.ravel()), np.arange(m * k, dtype=np.int64).reshape(m, k),
                          np.ascontiguousarray(w), a, K, 1)
    host_view(gv, (m,), (1,), np.float64)[:] = g
    host_view(pred, (m,), (1,), np.int64)[:] = p


def _emu_nz_consensus(ya, yb, nbr, ns, m, K, codes, h1, h2, device, stream):
    Emu.calls.append("nz_consensus")
    host_view(h1, (K,), (1,), np.int64)[:] = 0
    host_view(h2, (K * K,), (1,), np.int64)[:] = 0
    if m == 0:
        return
    nv = host_view(nbr, (m, 2), (ns, 1), np.int64)
    a = host_view(ya, (m,), (1,), np.int64)
    b = host_view(yb, (int(nv.max()) + 1,), (1,), np.int64)
    host_view(codes, (m,), (1,), np.int64)[:] = (a * K + b[nv[:, 0]]) * K + b[nv[:, 1]]
    host_view(h1, (K,), (1,), np.int64)[:] = np.bincount(a, minlength=K)
    host_view(h2, (K * K,), (1,), np.int64)[:] = np.bincount(a * K + b[nv[:, 0]], minlength=K * K)


for _name in ("normalize", "row_hash", "cand_distances", "row_distances", "select", "vote", "consensus"):
    setattr(Emu, "nz_" + _name, staticmethod(globals()["_emu_nz_" + _name]))


def _round_bits(G, drop, truncate):
    """float32 values kept to 23 - drop fraction bits (round to nearest even, or truncated)."""
    u = np.ascontiguousarray(G, np.float32).view(np.uint32)
    if truncate:
        r = u & np.uint32(~((1 << drop) - 1) & 0xFFFFFFFF)
    else:
        half = np.uint32((1 << (drop - 1)) - 1)
        r = (u + half + ((u >> np.uint32(drop)) & np.uint32(1))) & np.uint32(~((1 << drop) - 1) & 0xFFFFFFFF)
    return r.view(np.float32)


class EmuOps:
    """labelsift._knn.device's array operations on host memory, with the
    tensor-core roundings emulated: bfloat16 operands rounded to nearest
    (7 fraction bits), TF32 operands truncated to 10 fraction bits (the
    bounds' worst case); the product is NumPy's float32 matmul."""

    name = "emulated"
    calls = []

    def __init__(self, arr, dev):
        self.dev = dev

    def wrap(self, arr):
        return host_view(arr.ptr, arr.shape, arr.strides, arr.dtype)

    def stream(self):
        return 0

    def ptr(self, x):
        return int(x.__array_interface__["data"][0])

    def strides(self, x):
        return tuple(s // x.itemsize for s in x.strides)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def full(self, shape, value, dtype):
        return np.full(shape, value, dtype)

    def host(self, x):
        return np.array(x)

    def upload(self, a):
        return np.array(a, order="C")

    def astype(self, x, dtype):
        return x.astype(dtype)

    def colsum64(self, X):
        return X.sum(axis=0, dtype=np.float64)

    def absmax(self, X):
        return float(np.abs(X).max())

    def to_float32(self, X, mu, s):
        b = X.astype(np.float64)
        if mu is not None:
            b = b - mu
        if s != 1.0:
            b = b * s
        return b.astype(np.float32)

    def operand(self, G, gram):
        EmuOps.calls.append(gram)
        if gram == "bf16":
            return _round_bits(G, 16, truncate=False)
        if gram == "tf32":
            return _round_bits(G, 13, truncate=True)
        return G

    def mm(self, A, B, out, gram):
        return np.matmul(A, B.T, out=out)

    def supports(self, gram):
        return True

    def fp32_is_ieee(self):
        return True

    def distances(self, ok, metric):
        return (np.sqrt(ok) if metric == "l2" else ok).astype(np.float32)

    def export(self, x):
        return FakeDeviceArray(x)


class FakeDeviceArray:
    """A NumPy view exposed as a CUDA array (its host address as the pointer)."""

    def __init__(self, view, stream=None, version=3):
        self.view = view
        self.__cuda_array_interface__ = {
            "shape": view.shape, "strides": None if view.flags.c_contiguous else view.strides,
            "typestr": view.dtype.str, "data": (view.__array_interface__["data"][0], False), "version": version,
            "stream": stream}


class TorchLike(FakeDeviceArray):
    """Looks like a torch tensor to cuda_arrays (results come back as torch tensors)."""

    def __init__(self, view):
        torch = pytest.importorskip("torch")
        super().__init__(view, stream=1)
        self.device = torch.device("cpu")


TorchLike.__module__ = "torch.fake"
