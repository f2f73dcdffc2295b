"""Exact k-NN search at GEMM speed.

Definition (the answer, whatever path computes it): for query row i, the k
database rows j with the smallest float64 keys, ties to the lower index,
where the key is computed from the input values by ``src/cpp/knn/math.h``
(sequential float64 sums over the d coordinates):

* ``"l2"``: key = sum_t (x_it - y_jt)^2, distance = sqrt(key);
* ``"cosine"``: key = distance = clip(1 - x.y / (|x| |y|), 0, 2), a zero
  vector being at distance 1 from everything.

With ``exclude_self`` (one set searched against itself) row i is excluded
by identity -- its own index -- never by position, so exact duplicates of i
are neighbours like any other row, ordered by index.

How it is computed, and why it is exact:

1. candidates: G = float32 copy of the features (the features themselves
   when they are float32; centred for "l2" when the mean dominates the norms;
   scaled by a power of two when the values are huge or tiny) and, per tile
   of bq query rows and bc database rows, S = Gq Gd^T by NumPy's matmul
   (BLAS). The C++ epilogue (``knn_tile_select``) turns S into float32 keys
   a_j + b_j S_ij (l2: |G_j|^2 - 2 S_ij; cosine: -S_ij / |x_j|) and keeps the
   m = k + r smallest per row in a heap. N x N is never held: one tile.
2. re-rank: the m candidates' float64 keys (``knn_rerank``), the k best by
   (key, index).
3. certificate: every excluded row j has a float32 key >= the worst kept one,
   and the float32 key differs from the exact real value by at most a
   rounding bound (|fl(G_i.G_j) - G_i.G_j| <= gamma_d |G_i| |G_j|, plus the
   roundings of the epilogue, of the float32 copy and of the float64 keys).
   If the k-th float64 key is strictly below the smallest key any excluded
   row can have, the row is proven. Otherwise the row is recomputed
   exhaustively in float64 (``knn_exhaustive``); ``SearchInfo.fallback_rows``
   counts them.

A set searched against itself (``exclude_self``, the Datalab/HOC/SimiFeat
case) computes each pair once: the fused kernel ``knn_sym_search`` runs the
block pairs (I <= J) as a round-robin tournament, each task computing its
float32 Gram tile with labelsift's own micro-kernel into a per-thread buffer
and feeding it to the heaps of I's rows (directly) and of J's rows
(transposed); tasks of one round touch disjoint heaps, so no locks and an
insertion order fixed by the schedule. Several metrics whose float32 copy is
the same (cosine, and L2 without centring: Datalab's two searches) are fed
from the same tiles. The certificate is unchanged: it holds for any
summation order of the float32 products.

On CPUs with Intel AMX (``gram="auto"``), the tiles of both paths are
computed from a bfloat16 split of G instead (x = h + l + t, S = Ah Bh' +
Ah Bl' + Al Bh' in float32 tile accumulators, ``knn/amx.cpp``), in stripes
of 128 rows that are selected while they are in L2; their error bound
(:func:`amx_bounds`, about 2^-15 relative plus an absolute term for the
tiles' flushing of subnormals) replaces gamma_d in the certificate, so the
neighbours are the same and only more rows may need the exhaustive pass.

Memory: O(N k) outputs, O(bq m) heap (O(N m) per metric for the symmetric
search, up to ``SYM_HEAP_BYTES``), one float32 tile per thread, and the
float32 copy G when the features are not float32 (or need centring).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .._common.backend import core, threads
from .._common.params import integer
from .features import as_features

METRICS = {"l2": 0, "euclidean": 0, "cosine": 1}
U32 = 2.0 ** -24
U64 = 2.0 ** -53
#: default tile: 1024 query rows x 4096 database rows (a 16 MiB float32 tile)
TILE = (1024, 4096)
_CONVERT_ROWS = 1 << 14


def gamma(n: int, u: float) -> float:
    return n * u / (1.0 - n * u)


#: the bf16 split copy for the AMX tiles (8 N d bytes, twice a float32 copy) up to this many bytes, or a
#: quarter of the memory available when that is more; above it, float32 tiles
AMX_SPLIT_BYTES = 4 << 30


def _amx_split_budget() -> int:
    avail = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return max(AMX_SPLIT_BYTES, avail // 4)


def _aligned_empty(shape, dtype, align=64):
    """An uninitialised C array whose data starts on an ``align``-byte boundary."""
    dt = np.dtype(dtype)
    n = int(np.prod(shape)) * dt.itemsize
    raw = np.empty(n + align, np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + n].view(dt).reshape(shape)


def bf16_split(G, nt, a=True, b=True):
    """The AMX operands of float32 G (knn/amx.h): a_hi, a_lo (np x dp uint16), b_hi, b_lo
    (np / 16 x dp / 2 x 16 uint32; np, dp = rows, columns rounded up to 32), 64-byte aligned.
    ``a=False`` / ``b=False`` leave that layout out (two empty arrays): a query split needs only A,
    a database split only B."""
    n, d = G.shape
    np_, dp = -(-n // 32) * 32, -(-max(d, 1) // 32) * 32
    none = np.empty(0, np.uint16)
    ah, al = ((_aligned_empty((np_, dp), np.uint16), _aligned_empty((np_, dp), np.uint16)) if a
              else (none, none))
    bh, bl = ((_aligned_empty((np_ // 16, dp // 2, 16), np.uint32), _aligned_empty((np_ // 16, dp // 2, 16), np.uint32))
              if b else (np.empty(0, np.uint32), np.empty(0, np.uint32)))
    split = (ah, al, bh, bl)
    core().knn_bf16_split(G, split, nt)
    return split


def _amx_splits(gram, Gq, Gd, bq, bc, c, nt):
    """(query split, database split) for the AMX tiles (one split twice when Gq is Gd, as in the
    fused self-search), or None where they cannot be used (gram="fp32", no AMX, tiles not
    multiples of 32, arrays that are not float32 rows with unit column stride, over the memory
    budget)."""
    if gram != "auto" or bq % 32 or bc % 32 or not c.knn_amx_usable():
        return None
    for A in (Gq, Gd):
        if not (A.dtype == np.float32 and A.ndim == 2 and A.strides[1] == 4 and A.strides[0] % 4 == 0):
            return None
    d_pad = -(-max(Gd.shape[1], 1) // 32) * 32
    rows = -(-len(Gd) // 32) * 32 + (0 if Gq is Gd else -(-len(Gq) // 32) * 32)
    if (8 if Gq is Gd else 4) * rows * d_pad > _amx_split_budget():
        return None
    if Gq is Gd:
        s = bf16_split(Gd, nt)
        return s, s
    # only the layouts each side's tiles read: 4 bytes a value each
    return bf16_split(Gq, nt, b=False), bf16_split(Gd, nt, a=False)


def _amx_plans(plans, d, gmax):
    """The plans whose tiles come from AMX: their certificate takes amx_bounds."""
    g_prod, g_abs = amx_bounds(d, gmax)
    for p in plans:
        p.g_prod, p.g_abs, p.gram = g_prod, g_abs, "amx-bf16x3"


def amx_bounds(d: int, gmax: float) -> tuple:
    """(g_prod, g_abs) of the AMX tiles of G (d columns, max |G| = gmax):
    |S_ij - G_i.G_j| <= g_prod |G_i| |G_j| + g_abs.

    Each float32 x = h + l + t with h = bf16(x), l = bf16(x - h) (unit
    roundoff u = 2^-8): |l| <= u (1 + u) |x|, |t| <= u^2 |x|, and the three
    products h h' + h l' + l h' miss l l' + t y + (h + l) t', at most
    (3 + 3u) u^2 |x_k| |y_k| per coordinate: 3.05 2^-16 |x| |y| in all
    (Cauchy-Schwarz). The bf16 products are exact in float32; their 3 dp
    float32 additions (dp = d padded to 32) cost gamma_{3 dp}(2^-24) times the
    sum of their magnitudes (<= 1.03 |x| |y|), doubled for an accumulation
    order the hardware does not document. The tiles treat subnormal inputs
    and results as zero: a subnormal part (< 2^-126) dropped from one of the
    3 dp products errs by at most 2^-126 * 1.01 gmax, a flushed product or
    partial sum by at most 2^-126: g_abs = dp 2^-126 (3.1 gmax + 6)."""
    dp = -(-max(int(d), 1) // 32) * 32
    return (3.05 * 2.0 ** -16 + 2.0 * 1.03 * gamma(3 * dp, U32),
            dp * 2.0 ** -126 * (3.1 * float(gmax) + 6.0))


@dataclass
class SearchInfo:
    """What a search did: rows searched, candidates kept per row (k + r),
    rows whose certificate failed and were recomputed exhaustively, the tile,
    whether the float32 copy was centred or scaled (2^scale_exponent)."""

    rows: int
    k: int
    candidates: int
    fallback_rows: int
    tile: tuple
    metric: str
    centred: bool = False
    scale_exponent: int = 0
    float32_copy: bool = False
    symmetric: bool = False
    device: str = "cpu"
    gram: str = "fp32"
    #: (CUDA) rows searched a second time with more candidates before any exhaustive fallback
    retried_rows: int = 0


def check_metric(metric) -> str:
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(f"metric must be 'cosine' or 'l2' (alias 'euclidean'), got {metric!r}")
    return "l2" if metric == "euclidean" else metric


def _abs_max(X: np.ndarray) -> float:
    m = 0.0
    for a in range(0, len(X), _CONVERT_ROWS):
        m = max(m, float(np.max(np.abs(X[a:a + _CONVERT_ROWS]))))
    return m


def _float32_copy(X: np.ndarray, mu, e: int) -> np.ndarray:
    """fl32((X - mu) * 2^e), block by block (never a float64 copy of X)."""
    G = np.empty(X.shape, np.float32)
    s = math.ldexp(1.0, e)
    for a in range(0, len(X), _CONVERT_ROWS):
        blk = np.asarray(X[a:a + _CONVERT_ROWS], dtype=np.float64)
        if mu is not None:
            blk = blk - mu
        if e:
            blk = blk * s
        G[a:a + _CONVERT_ROWS] = blk
    return G


@dataclass
class _Plan:
    """One metric's float32 keys a_j + b_j S_ij over the Gram tiles of G and
    the constants of its certificate."""

    metric: str
    mcode: int
    Gq: np.ndarray
    Gd: np.ndarray
    a_col: np.ndarray
    b_col: np.ndarray
    e: int
    s: float
    mu: Optional[np.ndarray]
    rounded: bool
    gq2: Optional[np.ndarray] = None
    M: float = 0.0
    eta_max: float = 0.0
    #: bound on |S_ij - G_i.G_j| / (|G_i| |G_j|) of the tile products (0: NumPy's float32 GEMM, gamma_d(u32))
    g_prod: float = 0.0
    #: absolute bound added to it (the AMX tiles flush subnormals)
    g_abs: float = 0.0
    #: cosine: the largest |b_j| (scales g_abs into key units)
    inv_max: float = 0.0
    #: how the tiles were computed ("fp32" or "amx-bf16x3")
    gram: str = "fp32"


def _plan(metric, Q, D, same, qn, dn, nt, c, amax, copies) -> _Plan:
    """The float32 copy (shared through ``copies`` between metrics that need
    the same one), the epilogue's per-column a and b, the certificate's norms."""
    nd, d = D.shape
    e = 0
    if amax > 0 and (amax > 2.0 ** 40 or amax < 2.0 ** -40):
        e = -math.frexp(amax)[1]
    mu = None
    if metric == "l2":
        mean = np.zeros(d)
        for a in range(0, nd, _CONVERT_ROWS):
            mean += np.asarray(D[a:a + _CONVERT_ROWS], np.float64).sum(axis=0)
        mean /= nd
        if float(mean @ mean) > 0.25 * float(np.mean(dn)):
            mu = mean
    key = (mu is None, e)
    if D.dtype == np.float32 and mu is None and e == 0:
        Gd, Gq, rounded = D, Q, False
    elif key in copies:
        Gd, Gq, rounded = copies[key]
    else:
        Gd = _float32_copy(D, mu, e)
        Gq = Gd if same else _float32_copy(Q, mu, e)
        rounded = not (D.dtype == np.float16 and mu is None)
        copies[key] = (Gd, Gq, rounded)
    s = math.ldexp(1.0, e)
    p = _Plan(metric, METRICS[metric], Gq, Gd, None, None, e, s, mu, rounded)
    if metric == "l2":
        gq2 = c.knn_norms2(Gq, nt) if (Gq is not Q) else qn
        gd2 = gq2 if same else (c.knn_norms2(Gd, nt) if Gd is not D else dn)
        p.a_col = gd2.astype(np.float32)
        p.b_col = np.full(nd, -2.0, np.float32)
        p.gq2 = gq2
        p.M = math.sqrt(float(gd2.max()))
        p.eta_max = 1.02 * (U32 + U64) * p.M if rounded else 0.0
    else:
        with np.errstate(divide="ignore"):
            inv = np.where(dn > 0, s / np.sqrt(dn), 0.0)
        p.a_col = np.zeros(nd, np.float32)
        p.b_col = (-inv).astype(np.float32)
        p.inv_max = float(inv.max()) if nd else 0.0
    return p


def _proven(p, worst, kth, qt, gq, d) -> np.ndarray:
    """The certificate of a block of rows: True where the k-th float64 key
    (kth) is strictly below the smallest key any row outside the candidates
    can have, given the worst float32 key kept (worst; +inf: every row is a
    candidate) and the rounding bounds of the plan p (qt: the rows' float64
    squared norms; gq: those of their float32 copies, for L2)."""
    g32 = p.g_prod if p.g_prod else gamma(d, U32)
    g64 = gamma(d + 8, U64)
    rho = 2.01 * U32 if p.rounded else 0.0
    s = p.s
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if p.metric == "cosine":
            ni = s * np.sqrt(qt)
            E = 1.05 * ((g32 + rho + 3 * U32) * ni + p.g_abs * p.inv_max)
            lb = 1.0 + (worst - E) / ni
            good = (ni > 0) & (kth < lb - 2.0 * (1.1 * g64 + 4 * U64))
        else:
            M = p.M
            ni = np.sqrt(gq)
            E = 1.05 * (2 * g32 * ni * M + 2 * U32 * M * M + 2 * U32 * ni * M + 2 * p.g_abs)
            lbc = np.sqrt(np.maximum(gq * (1 - g64) + worst - E, 0.0))
            eta = 1.02 * (U32 + U64) * ni if p.rounded else 0.0
            lbx = (lbc - eta - p.eta_max) / s
            good = np.sqrt(kth) * (1 + g64) < lbx * (1 - g64)
        good |= ~np.isfinite(worst)
    return good


def _finish(p: _Plan, Q, D, qn, dn, q0, q1, hk, hi, k, m, avail, excl, nt, c):
    """Rows q0..q1 from their heaps (hk, hi): the float64 re-rank, the
    certificate, the exhaustive recomputation of the rows it cannot prove.
    Returns (indices, float64 keys, fallback rows)."""
    n = q1 - q0
    d = Q.shape[1]
    oi = np.empty((n, k), np.int64)
    ok = np.empty((n, k), np.float64)
    Qt = Q[q0:q1]
    qt = np.ascontiguousarray(qn[q0:q1])
    c.knn_rerank(Qt, D, qt, dn, hi, p.mcode, k, oi, ok, nt)
    fallback = 0
    if m < avail:
        worst = hk.max(axis=1).astype(np.float64)
        good = _proven(p, worst, ok[:, k - 1], qt, None if p.gq2 is None else p.gq2[q0:q1], d)
        bad = np.flatnonzero(~good).astype(np.int64)
        if len(bad):
            fallback = len(bad)
            selfs = (bad + q0) if excl else None
            ri, rk = c.knn_exhaustive(Qt, bad, selfs, D, qt, dn, p.mcode, k, nt)
            oi[bad] = ri
            ok[bad] = rk
    return oi, ok, fallback


#: heaps of every row at once (the symmetric self-search) up to this many bytes
SYM_HEAP_BYTES = 1 << 30
#: rows per block of the fused symmetric kernel (a block x block float32 tile per thread; 1024 was the
#: fastest of 256..2048 at 50k x 128 on an AMD EPYC with 1 MiB L2 per core)
SYM_BLOCK = 1024


def _prepare(queries, database, k, exclude_self, extra, tile, n_jobs):
    Q = as_features(queries, "features" if database is None else "queries")
    same = database is None
    D = Q if same else as_features(database, "database")
    if D.shape[1] != Q.shape[1]:
        raise ValueError(f"queries have {Q.shape[1]} features but the database has {D.shape[1]}")
    if Q.dtype != D.dtype:
        dt = np.result_type(Q.dtype, D.dtype)
        Q, D = np.asarray(Q, dt), np.asarray(D, dt)
    excl = bool(exclude_self) and same
    nd = D.shape[0]
    avail = nd - (1 if excl else 0)
    k = integer(k, "k", lo=1)
    if k > avail:
        raise ValueError(f"k={k} neighbours requested but only {avail} "
                         f"{'other ' if excl else ''}rows exist")
    r = max(16, k) if extra is None else integer(extra, "extra", lo=0)
    m = min(avail, k + r)
    bq, bc = TILE if tile is None else (integer(tile[0], "tile[0]", lo=1), integer(tile[1], "tile[1]", lo=1))
    return Q, D, same, excl, avail, k, m, (bq, bc), threads(n_jobs)


def search(queries, database=None, *, k: int = 10, metric: str = "cosine", exclude_self: bool = True,
           n_jobs=None, tile=None, extra=None, progress: Optional[Callable[[str, int, int], None]] = None,
           gram="auto"):
    """(indices int64 (Nq, k), distances float32 (Nq, k), SearchInfo)."""
    return search_metrics(queries, database, k=k, metrics=(metric,), exclude_self=exclude_self, n_jobs=n_jobs,
                          tile=tile, extra=extra, progress=progress, gram=gram)[0]


def search_metrics(queries, database=None, *, k: int = 10, metrics=("cosine",), exclude_self: bool = True,
                   n_jobs=None, tile=None, extra=None, progress=None, symmetric=None, gram="auto"):
    """The same search for several metrics at once: a list of (indices,
    distances, SearchInfo), one per metric. Metrics whose float32 copy is the
    same (cosine, and L2 when the data need no centring) share every Gram
    tile. A set searched against itself (``exclude_self``) computes only the
    tiles on and above the diagonal, each feeding the heaps of its rows and,
    transposed, of its columns (``symmetric=None``: when the heaps of all
    rows fit in ``SYM_HEAP_BYTES``). ``gram``: "auto" computes the tiles
    (the fused kernel's, or those of queries against a database) on AMX
    (bf16 split in three products, :func:`amx_bounds`) where the CPU has it,
    the tile sizes are multiples of 32 and the split copies fit
    ``AMX_SPLIT_BYTES`` (or a quarter of the available memory); "fp32"
    always in float32. The neighbours are the same either way (the
    certificate takes each one's bound)."""
    if gram not in ("auto", "fp32"):
        raise ValueError(f"gram={gram!r}: the CPU search computes its tiles in float32 or on AMX "
                         "(gram='auto' or 'fp32')")
    metrics = [check_metric(mt) for mt in metrics]
    if not metrics:
        raise ValueError("at least one metric")
    Q, D, same, excl, avail, k, m, (bq, bc), nt = _prepare(queries, database, k, exclude_self, extra, tile, n_jobs)
    nq, d = Q.shape
    nd = D.shape[0]
    c = core()
    qn = c.knn_norms2(Q, nt)
    dn = qn if same else c.knn_norms2(D, nt)
    amax = max(_abs_max(Q), 0.0 if same else _abs_max(D))
    copies = {}
    plans = [_plan(mt, Q, D, same, qn, dn, nt, c, amax, copies) for mt in metrics]
    groups = []  # plans sharing one float32 copy
    for i, p in enumerate(plans):
        for g in groups:
            if plans[g[0]].Gd is p.Gd:
                g.append(i)
                break
        else:
            groups.append([i])
    if symmetric is None:
        symmetric = excl and nq * m * 12 * max(len(g) for g in groups) <= SYM_HEAP_BYTES
    symmetric = bool(symmetric) and excl
    out = [None] * len(plans)
    fallback = [0] * len(plans)
    # block of the fused symmetric kernel: tile[0] when given
    blk = bq if tile is not None else SYM_BLOCK
    for g in groups:
        ps = [plans[i] for i in g]
        G = ps[0].Gd
        # progress(label, done, total) per group, in tiles (rounds of tiles for the fused kernel)
        label = "k-NN search (" + "+".join(p.metric for p in ps) + ")"
        done = 0
        if symmetric:
            hks = [np.full((nq, m), np.inf, np.float32) for _ in ps]
            his = [np.full((nq, m), -1, np.int64) for _ in ps]
            a_l = [p.a_col for p in ps]
            b_l = [p.b_col for p in ps]
            fused = G.dtype == np.float32 and G.ndim == 2 and G.strides[1] == 4 and G.strides[0] % 4 == 0
            if fused:
                # one Gram tile per block pair, computed and consumed in each thread's cache
                splits = _amx_splits(gram, G, G, blk, blk, c, nt)
                split = None if splits is None else splits[0]
                if split is not None:
                    _amx_plans(ps, G.shape[1], _abs_max(G))
                nr = c.knn_sym_rounds(-(-nq // blk))
                step = max(1, -(-nr // 32))
                for r0 in range(0, nr, step):
                    r1 = min(nr, r0 + step)
                    c.knn_sym_search(G, blk, r0, r1, a_l, b_l, hks, his, nt, split)
                    if progress is not None:
                        progress(label, r1, nr)
                del split, splits
            else:
                total = sum(-(-(nq - i0) // bc) for i0 in range(0, nq, bq))
                buf = np.empty(min(bq, nq) * min(bc, nq), np.float32)
                for i0 in range(0, nq, bq):
                    i1 = min(nq, i0 + bq)
                    Gt = np.ascontiguousarray(G[i0:i1])
                    for c0 in range(i0, nq, bc):
                        c1 = min(nq, c0 + bc)
                        S = buf[: (i1 - i0) * (c1 - c0)].reshape(i1 - i0, c1 - c0)
                        np.matmul(Gt, G[c0:c1].T, out=S)
                        tstart = min(c1 - c0, max(0, i1 - c0))
                        c.knn_tile_select_sym(S, i0, c0, tstart, a_l, b_l, hks, his, nt)
                        done += 1
                    if progress is not None:
                        progress(label, done, total)
                del buf
            for p, i, hk, hi in zip(ps, g, hks, his):
                oi_all = np.empty((nq, k), np.int64)
                dist = np.empty((nq, k), np.float32)
                for q0 in range(0, nq, _CONVERT_ROWS):
                    q1 = min(nq, q0 + _CONVERT_ROWS)
                    oi, ok, fb = _finish(p, Q, D, qn, dn, q0, q1, hk[q0:q1], hi[q0:q1], k, m, avail, excl, nt, c)
                    oi_all[q0:q1] = oi
                    dist[q0:q1] = np.sqrt(ok) if p.metric == "l2" else ok
                    fallback[i] += fb
                out[i] = (oi_all, dist)
            continue
        res = [(np.empty((nq, k), np.int64), np.empty((nq, k), np.float32)) for _ in ps]
        total = -(-nq // bq) * -(-nd // bc)
        Gq = ps[0].Gq
        splits = _amx_splits(gram, Gq, G, bq, bc, c, nt)
        if splits is not None:
            _amx_plans(ps, G.shape[1], max(_abs_max(Gq), _abs_max(G)))
            buf = None
        else:
            buf = np.empty(min(bq, nq) * min(bc, nd), np.float32)
        for q0 in range(0, nq, bq):
            q1 = min(nq, q0 + bq)
            n = q1 - q0
            hks = [np.full((n, m), np.inf, np.float32) for _ in ps]
            his = [np.full((n, m), -1, np.int64) for _ in ps]
            Gt = np.ascontiguousarray(Gq[q0:q1]) if splits is None else None
            for c0 in range(0, nd, bc):
                c1 = min(nd, c0 + bc)
                if splits is not None:
                    # AMX tiles, computed and selected stripe by stripe in the kernel
                    c.knn_amx_tile_select(splits[0], splits[1], q0, n, c0, c1 - c0, [p.a_col for p in ps],
                                          [p.b_col for p in ps], q0 if excl else -1, hks, his, nt)
                    done += 1
                    continue
                S = buf[: n * (c1 - c0)].reshape(n, c1 - c0)
                np.matmul(Gt, G[c0:c1].T, out=S)
                for p, hk, hi in zip(ps, hks, his):
                    c.knn_tile_select(S, p.a_col[c0:c1], p.b_col[c0:c1], c0, q0 if excl else -1, hk, hi, nt)
                done += 1
            for p, i, hk, hi, (ri, rd) in zip(ps, g, hks, his, res):
                oi, ok, fb = _finish(p, Q, D, qn, dn, q0, q1, hk, hi, k, m, avail, excl, nt, c)
                ri[q0:q1] = oi
                rd[q0:q1] = np.sqrt(ok) if p.metric == "l2" else ok
                fallback[i] += fb
            if progress is not None:
                progress(label, done, total)
        for i, r_ in zip(g, res):
            out[i] = r_
    infos = [SearchInfo(rows=nq, k=k, candidates=m, fallback_rows=fallback[i], tile=(bq, bc), metric=p.metric,
                        centred=p.mu is not None, scale_exponent=p.e, float32_copy=p.Gd is not D,
                        symmetric=symmetric, gram=p.gram)
             for i, p in enumerate(plans)]
    return [(out[i][0], out[i][1], infos[i]) for i in range(len(plans))]


def exhaustive(queries, database=None, *, k=10, metric="cosine", exclude_self=True, n_jobs=None):
    """The float64 exhaustive search alone (the fallback of every row): the same answer, O(N^2 d)."""
    metric = check_metric(metric)
    Q = as_features(queries)
    same = database is None
    D = Q if same else as_features(database, "database")
    if Q.dtype != D.dtype:
        dt = np.result_type(Q.dtype, D.dtype)
        Q, D = np.asarray(Q, dt), np.asarray(D, dt)
    nt = threads(n_jobs)
    c = core()
    qn = c.knn_norms2(Q, nt)
    dn = qn if same else c.knn_norms2(D, nt)
    rows = np.arange(len(Q), dtype=np.int64)
    excl = bool(exclude_self) and same
    ri, rk = c.knn_exhaustive(Q, rows, rows if excl else None, D, qn, dn, METRICS[metric], int(k), nt)
    return ri, (np.sqrt(rk) if metric == "l2" else rk).astype(np.float32)
