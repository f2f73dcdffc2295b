"""The AMX Gram tiles of the fused k-NN search (knn/amx.cpp): the bfloat16 split, the error bound
the certificate relies on, and the exact neighbours. The split runs everywhere; the tile tests
skip, with the reason, where the CPU or the OS offers no AMX."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from labelsift import knn
from labelsift._common.backend import core
from labelsift._knn.search import amx_bounds, bf16_split, search_metrics
from labelsift.reference import knn as ref

needs_amx = pytest.mark.skipif(not core().knn_amx_usable(),
                               reason="no AMX-BF16 here (CPU without it, OS refused the tile state, "
                                      "or LABELSIFT_NO_AMX set)")


def _bf16_rne(x):
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def _bf16_value(h):
    return (h.astype(np.uint32) << 16).view(np.float32)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), n=st.integers(1, 70), d=st.integers(1, 100),
       scale=st.sampled_from([1.0, 1e-30, 1e-39, 1e37, 1e20]))
def test_split_is_the_rounded_parts_in_both_layouts(seed, n, d, scale):
    rng = np.random.default_rng(seed)
    G = (rng.normal(size=(n, d)) * scale).astype(np.float32)
    G[rng.random((n, d)) < 0.1] = 0.0
    ah, al, bh, bl = bf16_split(G, 2)
    np_, dp = ah.shape
    assert np_ % 32 == 0 and dp % 32 == 0 and np_ >= n and dp >= d and np_ - n < 32 and dp - d < 32
    X = np.zeros((np_, dp), np.float32)
    X[:n, :d] = G
    h = _bf16_rne(X)
    with np.errstate(over="ignore", invalid="ignore"):
        lo = X - _bf16_value(h)
    assert np.array_equal(ah, h)
    assert np.array_equal(al, _bf16_rne(lo))
    # VNNI: group g of 16 rows, pair p: the 16 rows' columns (2p, 2p + 1), the even one low
    pairs = lambda a: (a[:, 0::2].astype(np.uint32) | (a[:, 1::2].astype(np.uint32) << 16))  # noqa: E731
    want_h = pairs(ah).reshape(np_ // 16, 16, dp // 2).transpose(0, 2, 1)
    want_l = pairs(al).reshape(np_ // 16, 16, dp // 2).transpose(0, 2, 1)
    assert bh.shape == (np_ // 16, dp // 2, 16)
    assert np.array_equal(bh, want_h) and np.array_equal(bl, want_l)


def _within_bound(G, i0, nI, j0, nJ):
    split = bf16_split(G, 2)
    S = core().knn_amx_gram(split, i0, nI, j0, nJ)[:nI, :nJ].astype(np.float64)
    A = G[i0:i0 + nI].astype(np.float64)
    B = G[j0:j0 + nJ].astype(np.float64)
    exact = A @ B.T  # float64: exact enough (the bound is ~2^-15 relative)
    g_prod, g_abs = amx_bounds(G.shape[1], float(np.abs(G).max()))
    err = np.abs(S - exact)
    lim = g_prod * np.linalg.norm(A, axis=1)[:, None] * np.linalg.norm(B, axis=1)[None, :] + g_abs
    return err, lim, S, exact


@needs_amx
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 31), n=st.integers(33, 130), d=st.integers(1, 300),
       kind=st.sampled_from(["normal", "wide", "cancel", "tiny", "huge", "ints"]))
def test_amx_tiles_stay_within_the_certificate_bound(seed, n, d, kind):
    """The bound amx_bounds() promises, on data built to stress it: magnitudes over 60 binades,
    cancelling sums, subnormal-scale values (flushed by the tiles), the copy's largest values."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        G = rng.normal(size=(n, d))
    elif kind == "wide":
        G = rng.normal(size=(n, d)) * 2.0 ** rng.integers(-30, 30, size=(n, d))
    elif kind == "cancel":
        G = rng.normal(size=(n, d))
        G[1::2] = -G[0::2][: len(G[1::2])] * (1 + 2.0 ** -20 * rng.normal(size=(len(G[1::2]), d)))
    elif kind == "tiny":
        G = rng.normal(size=(n, d)) * 2.0 ** rng.integers(-149, -100, size=(n, d))
    elif kind == "huge":
        G = rng.normal(size=(n, d)) * 2.0 ** 39
    else:
        G = rng.integers(-256, 257, size=(n, d)).astype(np.float64)
    G = G.astype(np.float32)
    nI = min(n, 64)
    j0 = 32 if n > 64 else 0
    err, lim, S, exact = _within_bound(G, 0, nI, j0, n - j0)
    assert (err <= lim).all(), float((err / lim).max())
    if kind == "ints" and d <= 64:
        # |values| <= 256 fit bfloat16's 8 bits: l = 0, so the tile is exact whenever the float32
        # sums are (|S| <= 64 * 2^16 < 2^24)
        assert np.array_equal(S, exact)


@needs_amx
def test_amx_tile_bound_is_not_vacuous():
    # the split's three products are far more accurate than one bfloat16 product: on normal data
    # the error is well inside the bound but beyond what a plain float32 GEMM would show
    rng = np.random.default_rng(0)
    G = rng.normal(size=(96, 256)).astype(np.float32)
    err, lim, S, exact = _within_bound(G, 0, 96, 0, 96)
    assert (err <= lim).all()
    rel = err / (np.linalg.norm(G, axis=1)[:, None] * np.linalg.norm(G, axis=1)[None, :])
    assert 2.0 ** -24 < rel.max() < 2.0 ** -12


@needs_amx
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_amx_search_equals_reference_with_ties(metric):
    rng = np.random.default_rng(0)
    X = rng.integers(-3, 4, size=(300, 12)).astype(np.float32)  # small integers: many exact ties
    X[20:45] = X[7]
    X[100:104] = X[200]
    X[150] = 0.0
    for k in (1, 7, 30):
        i1, d1, info = knn.search(X, k=k, metric=metric, tile=(64, 64), return_info=True)
        assert info.gram == "amx-bf16x3" and info.symmetric
        i2, d2 = ref.search(X, k=k, metric=metric)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(d1, d2)
        i3, d3, info3 = knn.search(X, k=k, metric=metric, tile=(64, 64), gram="fp32", return_info=True)
        assert info3.gram == "fp32"
        np.testing.assert_array_equal(i3, i2)


@needs_amx
def test_amx_near_ties_fall_back_and_stay_exact():
    # neighbours whose distances differ below the split's resolution (~2^-15) but not in float64:
    # the certificate cannot separate them from the AMX tiles, the rows are recomputed exactly
    rng = np.random.default_rng(1)
    base = rng.normal(size=(1, 64))
    X = (base + 1e-6 * rng.normal(size=(256, 64))).astype(np.float32)
    X[128:] = rng.normal(size=(128, 64)).astype(np.float32) * 10
    for metric in ("l2", "cosine"):
        i1, d1, info = knn.search(X, k=5, metric=metric, tile=(64, 64), return_info=True)
        assert info.gram == "amx-bf16x3"
        assert info.fallback_rows > 0
        i2, d2 = ref.search(X, k=5, metric=metric)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(d1, d2)


@needs_amx
def test_amx_rows_odd_block_and_env_switch(tmp_path):
    # a block that is not a multiple of 32 keeps float32 tiles; LABELSIFT_NO_AMX turns AMX off
    rng = np.random.default_rng(2)
    X = rng.normal(size=(203, 40)).astype(np.float32)
    r = search_metrics(X, k=6, metrics=("l2", "cosine"), tile=(50, 50))
    assert [i.gram for _, _, i in r] == ["fp32", "fp32"]
    r = search_metrics(X, k=6, metrics=("l2", "cosine"), tile=(96, 96))
    assert [i.gram for _, _, i in r] == ["amx-bf16x3", "amx-bf16x3"]
    for (i1, _, _), metric in zip(r, ("l2", "cosine")):
        np.testing.assert_array_equal(i1, ref.search(X, k=6, metric=metric)[0])
    code = ("import numpy as np, sys; from labelsift import knn, backend_info; "
            "X = np.load(sys.argv[1]); i, d, info = knn.search(X, k=6, return_info=True); "
            "print(info.gram, backend_info()['cpu_isa']['knn_gram'])")
    np.save(tmp_path / "X.npy", X)
    env = dict(os.environ, LABELSIFT_NO_AMX="1")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "X.npy")], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out[0] == "fp32" and out[1] != "amx-bf16x3"


@needs_amx
def test_amx_split_over_budget_keeps_float32_tiles(monkeypatch):
    import labelsift._knn.search as srch
    rng = np.random.default_rng(3)
    X = rng.normal(size=(100, 16)).astype(np.float32)
    monkeypatch.setattr(srch, "_amx_split_budget", lambda: 8 * 128 * 32 - 1)  # one byte short
    r = search_metrics(X, k=4, metrics=("l2",), tile=(64, 64))
    assert r[0][2].gram == "fp32"
    monkeypatch.setattr(srch, "_amx_split_budget", lambda: 8 * 128 * 32)
    r2 = search_metrics(X, k=4, metrics=("l2",), tile=(64, 64))
    assert r2[0][2].gram == "amx-bf16x3"
    np.testing.assert_array_equal(r[0][0], r2[0][0])


def test_split_budget_is_at_least_the_floor():
    from labelsift._knn.search import AMX_SPLIT_BYTES, _amx_split_budget
    assert _amx_split_budget() >= AMX_SPLIT_BYTES


@needs_amx
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_amx_database_search_equals_reference(metric):
    # the query-against-database path (and a self search forced off the symmetric kernel): AMX
    # stripes selected in the kernel, with partial row and column tiles
    rng = np.random.default_rng(4)
    D = rng.integers(-3, 4, size=(517, 24)).astype(np.float32)
    D[100:140] = D[3]
    Q = np.concatenate([D[:50], rng.normal(size=(83, 24)).astype(np.float32)])
    for tile in ((64, 96), (128, 256)):
        i1, d1, info = search_metrics(Q, D, k=9, metrics=(metric,), tile=tile)[0]
        assert info.gram == "amx-bf16x3" and not info.symmetric
        i2, d2 = ref.search(Q, D, k=9, metric=metric)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(d1, d2)
    i1, d1, info = search_metrics(D, k=6, metrics=(metric,), tile=(96, 160), symmetric=False)[0]
    assert info.gram == "amx-bf16x3" and not info.symmetric
    np.testing.assert_array_equal(i1, ref.search(D, k=6, metric=metric)[0])
    i3, _, info3 = search_metrics(Q, D, k=9, metrics=(metric,), tile=(50, 96))[0]   # 50: not a multiple of 32
    assert info3.gram == "fp32"
    np.testing.assert_array_equal(i3, ref.search(Q, D, k=9, metric=metric)[0])


def test_split_with_one_layout_only():
    rng = np.random.default_rng(9)
    G = rng.normal(size=(77, 45)).astype(np.float32)
    ah, al, bh, bl = bf16_split(G, 2)
    qa = bf16_split(G, 2, b=False)
    db = bf16_split(G, 2, a=False)
    assert np.array_equal(qa[0], ah) and np.array_equal(qa[1], al) and qa[2].size == qa[3].size == 0
    assert np.array_equal(db[2], bh) and np.array_equal(db[3], bl) and db[0].size == db[1].size == 0
    if core().knn_amx_usable():
        # a kernel that reads both layouts refuses a split that lacks one
        hk, hi = np.full((77, 3), np.inf, np.float32), np.full((77, 3), -1, np.int64)
        a, b = np.zeros(77, np.float32), np.full(77, -1.0, np.float32)
        with pytest.raises(ValueError, match="lacks an operand layout"):
            core().knn_sym_search(G, 32, 0, 1, [a], [b], [hk], [hi], 1, qa)
