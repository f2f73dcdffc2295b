"""Exact search vs the float64 NumPy reference (labelsift.reference.knn):
ties, duplicates, dtypes, metrics, k; thread and tile independence; the
certificate's fallback; faiss as an oracle outside ties."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from labelsift import knn
from labelsift._knn.search import exhaustive
from labelsift.reference import knn as ref
from labelsift._common.backend import core


def tied_data(n=300, d=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(-3, 4, size=(n, d)).astype(np.float64)  # small integers: many exact distance ties
    X[20:45] = X[7]            # a duplicate group larger than k + r for small k
    X[100:104] = X[200]
    X[150] = 0.0               # a zero vector (cosine distance 1 to everything)
    return X


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_equals_reference_with_ties(metric, dtype):
    X = tied_data().astype(dtype)
    for k in (1, 7, 40):
        i1, d1, info = knn.search(X, k=k, metric=metric, tile=(64, 96), return_info=True)
        i2, d2 = ref.search(X, k=k, metric=metric)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(d1, d2)
        if k == 1:  # a duplicate group of 26 > k + r = 17: ties the bound cannot separate
            assert info.fallback_rows >= 26
        assert not (i1 == np.arange(len(X))[:, None]).any()  # self excluded by identity


def test_k_up_to_100_and_continuous():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 24)).astype(np.float32)
    X[::50] = X[1]
    for metric in ("l2", "cosine"):
        for k in (1, 10, 100):
            i1, d1 = knn.search(X, k=k, metric=metric)
            i2, d2 = ref.search(X, k=k, metric=metric)
            np.testing.assert_array_equal(i1, i2)


def test_thread_and_tile_independence():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(900, 20)).astype(np.float32)
    X[300:340] = X[5]
    base = knn.search(X, k=10, metric="cosine", n_jobs=1, tile=(900, 900))
    for nj, tile in [(2, (64, 100)), (1, (7, 333)), (2, (1000, 17))]:
        got = knn.search(X, k=10, metric="cosine", n_jobs=nj, tile=tile)
        np.testing.assert_array_equal(got[0], base[0])
        np.testing.assert_array_equal(got[1], base[1])


def test_forced_near_ties_hit_the_fallback():
    # points on a sphere around each query, at distances that differ below
    # float32 resolution: the float32 candidates cannot order them
    rng = np.random.default_rng(3)
    d = 16
    centre = np.zeros(d)
    dirs = rng.normal(size=(200, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    radii = 1.0 + rng.integers(0, 5, 200) * 1e-12
    X = np.vstack([centre, dirs * radii[:, None] + 100.0])  # offset: centring is exercised too
    X[0] += 100.0
    i1, d1, info = knn.search(X, k=5, metric="l2", extra=2, return_info=True)
    i2, _ = ref.search(X, k=5, metric="l2")
    np.testing.assert_array_equal(i1, i2)
    assert info.fallback_rows >= 1
    assert info.centred


def test_two_sets_and_exhaustive_agree():
    rng = np.random.default_rng(4)
    Q = rng.normal(size=(50, 8))
    D = rng.normal(size=(300, 8))
    for metric in ("l2", "cosine"):
        i1, d1 = knn.search(Q, D, k=6, metric=metric)
        i2, d2 = ref.search(Q, D, k=6, metric=metric)
        np.testing.assert_array_equal(i1, i2)
        i3, _ = exhaustive(Q, D, k=6, metric=metric)
        np.testing.assert_array_equal(i1, i3)


def test_huge_and_tiny_values_scaled():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 6))
    for s in (1e30, 1e-30):
        i1, _ = knn.search(X * s, k=4, metric="l2")
        i2, _ = ref.search(X * s, k=4, metric="l2")
        np.testing.assert_array_equal(i1, i2)


def test_memmap_and_path(tmp_path):
    X = tied_data(250, 6).astype(np.float32)
    p = tmp_path / "X.npy"
    np.save(p, X)
    a = knn.search(str(p), k=5)
    b = knn.search(np.load(p, mmap_mode="r"), k=5)
    c = ref.search(X, k=5, metric="cosine")
    np.testing.assert_array_equal(a[0], c[0])
    np.testing.assert_array_equal(b[0], c[0])


def test_bad_inputs():
    X = np.zeros((5, 3))
    with pytest.raises(ValueError):
        knn.search(X, k=5)
    with pytest.raises(ValueError):
        knn.search(X, k=2, metric="manhattan")
    Y = X.copy()
    Y[1, 1] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        knn.search(Y, k=2)
    with pytest.raises(ValueError):
        knn.search(np.zeros(5), k=1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(3, 60), d=st.integers(1, 9), k=st.integers(1, 8), seed=st.integers(0, 10**6),
       metric=st.sampled_from(["l2", "cosine"]), levels=st.integers(1, 4))
def test_property_vs_reference(n, d, k, seed, metric, levels):
    rng = np.random.default_rng(seed)
    X = rng.integers(-levels, levels + 1, size=(n, d)).astype(np.float32)
    k = min(k, n - 1)
    i1, d1 = knn.search(X, k=k, metric=metric, tile=(5, 7), extra=1)
    i2, d2 = ref.search(X, k=k, metric=metric)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(d1, d2)


def test_faiss_outside_ties():
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is not installed (test-only oracle)")
    rng = np.random.default_rng(6)
    X = rng.normal(size=(2000, 32)).astype(np.float32)
    index = faiss.IndexFlatL2(32)
    index.add(X)
    D, I = index.search(X, 11)
    ours, od = knn.search(X, k=10, metric="l2")
    # faiss includes self (first column, distance 0) and squared distances
    fI = np.array([[j for j in row if j != i][:10] for i, row in enumerate(I)])
    fD = np.array([[dd for j, dd in zip(row, drow) if j != i][:10] for i, (row, drow) in enumerate(zip(I, D))])
    differ = (fI != ours).any(axis=1)
    for r in np.flatnonzero(differ):  # each difference must be a float32 near-tie in faiss's distances
        assert np.isclose(np.sort(fD[r]), od[r].astype(np.float64) ** 2, rtol=1e-4).all()
    assert differ.mean() < 0.01
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    ip = faiss.IndexFlatIP(32)
    ip.add(Xn)
    _, I2 = ip.search(Xn, 11)
    ours2, _ = knn.search(X, k=10, metric="cosine")
    fI2 = np.array([[j for j in row if j != i][:10] for i, row in enumerate(I2)])
    assert (fI2 != ours2).any(axis=1).mean() < 0.01


# --- the symmetric self-search and several metrics from one Gram tile ------------------------------

from labelsift._knn.search import search_metrics  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_symmetric_and_shared_tiles_equal_the_one_sided_search(dtype):
    X = tied_data(260, 10, seed=7).astype(dtype)
    for k in (1, 5, 30):
        for tile in [(64, 96), (7, 5), (300, 300), (17, 1000)]:
            both = search_metrics(X, k=k, metrics=("cosine", "l2"), tile=tile, extra=3)
            for (i, d_, info), metric in zip(both, ("cosine", "l2")):
                assert info.symmetric
                one = search_metrics(X, k=k, metrics=(metric,), tile=tile, extra=3, symmetric=False)[0]
                assert not one[2].symmetric
                np.testing.assert_array_equal(i, one[0])
                np.testing.assert_array_equal(d_, one[1])
                i2, d2 = ref.search(X, k=k, metric=metric)
                np.testing.assert_array_equal(i, i2)
                np.testing.assert_array_equal(d_, d2)


def test_symmetric_thread_independence_and_fallback():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(700, 16)).astype(np.float32)
    X[100:140] = X[3]  # 41 copies: more than k + r candidates tie at distance 0
    base = search_metrics(X, k=2, metrics=("cosine", "l2"), extra=4, n_jobs=1, tile=(700, 700))
    assert all(info.fallback_rows >= 41 for _, _, info in base)
    for nj, tile in [(2, (64, 100)), (2, (1, 3)), (1, (333, 64))]:
        got = search_metrics(X, k=2, metrics=("cosine", "l2"), extra=4, n_jobs=nj, tile=tile)
        for (i, d_, _), (bi, bd, _) in zip(got, base):
            np.testing.assert_array_equal(i, bi)
            np.testing.assert_array_equal(d_, bd)


def test_centred_l2_does_not_share_the_cosine_copy():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(300, 8)) + 50.0  # the mean dominates: L2 runs on a centred copy
    (ci, cd, cinfo), (li, ld, linfo) = search_metrics(X, k=4, metrics=("cosine", "l2"))
    assert linfo.centred and not cinfo.centred
    np.testing.assert_array_equal(ci, ref.search(X, k=4, metric="cosine")[0])
    np.testing.assert_array_equal(li, ref.search(X, k=4, metric="l2")[0])


def test_progress_reports_every_tile():
    X = np.random.default_rng(10).normal(size=(100, 4)).astype(np.float32)
    seen = []
    # the fused symmetric kernel: rounds of block pairs (4 blocks of 30 rows: 3 rounds of pairs + the diagonal)
    search_metrics(X, k=3, metrics=("cosine", "l2"), tile=(30, 40), progress=lambda *a: seen.append(a))
    assert seen[-1] == ("k-NN search (cosine+l2)", 4, 4) and [s[1] for s in seen] == [1, 2, 3, 4]
    seen.clear()
    # symmetric over NumPy tiles (a strided float32 view): blocks at 0, 30, 60, 90 with 3 + 2 + 1 + 1 tiles
    Xs = np.asfortranarray(X)
    search_metrics(Xs, k=3, metrics=("cosine",), tile=(30, 40), progress=lambda *a: seen.append(a))
    assert [s[1:] for s in seen] == [(3, 7), (5, 7), (6, 7), (7, 7)]
    seen.clear()
    search_metrics(X, k=3, metrics=("l2",), tile=(30, 40), symmetric=False, progress=lambda *a: seen.append(a))
    assert seen[-1][1:] == (12, 12) and len(seen) == 4


@pytest.mark.parametrize("d", [1, 255, 300, 520])
def test_fused_kernel_coordinate_chunks(d):
    # the Gram tile sums d in chunks of 256 coordinates; d = 1 and d not a multiple of 16 or 256
    rng = np.random.default_rng(d)
    X = rng.integers(-2, 3, size=(150, d)).astype(np.float32)
    X[40:60] = X[3]
    for metric in ("cosine", "l2"):
        i1, d1, info = search_metrics(X, k=6, metrics=(metric,), tile=(37, 37))[0]
        assert info.symmetric
        i2, d2 = ref.search(X, k=6, metric=metric)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(d1, d2)


def test_fused_kernel_without_avx2(tmp_path):
    # LABELSIFT_NO_AVX2 selects the portable micro-kernel and selections (read once per process)
    import subprocess
    import sys
    X = tied_data(220, 20, seed=11).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    code = ("import numpy as np, sys; from labelsift._knn.search import search_metrics; "
            "X = np.load(sys.argv[1]); r = search_metrics(X, k=7, metrics=('cosine', 'l2'), tile=(50, 50)); "
            "np.save(sys.argv[2], np.stack([r[0][0], r[1][0]]))")
    env = dict(__import__("os").environ, LABELSIFT_NO_AVX2="1")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "X.npy"), str(tmp_path / "out.npy")], env=env,
                   check=True)
    got = np.load(tmp_path / "out.npy")
    np.testing.assert_array_equal(got[0], ref.search(X, k=7, metric="cosine")[0])
    np.testing.assert_array_equal(got[1], ref.search(X, k=7, metric="l2")[0])


_ISA_SCRIPT = """
import sys, numpy as np
import labelsift
from labelsift._knn.search import search_metrics
X = np.load(sys.argv[1]); Y = np.load(sys.argv[2]); out = {}
for name, tile, extra in (("t50", (50, 50), None), ("t37", (37, 37), None), ("t64", (64, 64), None),
                          ("t50x0", (50, 50), 0), ("t130x0", (130, 130), 0)):
    # extra=0: the heaps hold exactly k, so a wrong insertion is a wrong neighbour
    r = search_metrics(X, k=7, metrics=("cosine", "l2"), tile=tile, extra=extra)
    out[name + "_cos"], out[name + "_l2"] = r[0][0], r[1][0]
    assert r[0][2].symmetric
r = search_metrics(Y, k=5, metrics=("l2",), tile=(40, 40))   # d = 300: two coordinate chunks
out["d300"] = r[0][0]
Wd = np.random.default_rng(8).integers(-3, 4, size=(150, 14000)).astype(np.float32)
# block 64 x d = 14000: the panels of all chunks exceed the per-thread budget -> chunk by chunk
r = search_metrics(Wd, k=4, metrics=("l2",), tile=(64, 64))
out["wide"], out["wide_x"] = r[0][0], Wd
out["wide_fp32"] = search_metrics(Wd, k=4, metrics=("l2",), tile=(64, 64), gram="fp32")[0][0]   # not AMX
r = search_metrics(X, k=6, metrics=("l2",), tile=(33, 45), symmetric=False, extra=0)   # tile_select
out["asym"] = r[0][0]
r = search_metrics(X[:70], X, k=6, metrics=("cosine",), tile=(16, 48))   # queries against a database
out["db"] = r[0][0]
from labelsift._common.backend import core
Z = np.load(sys.argv[4])   # small integers: every float32 product and sum exact, in any order
rng = np.random.default_rng(5)
a_l = [rng.integers(0, 50, len(Z)).astype(np.float32) for _ in range(2)]
b_l = [np.full(len(Z), -2.0, np.float32), rng.integers(-3, 0, len(Z)).astype(np.float32)]
for blk in (37, 64, 130):
    hks = [np.full((len(Z), 5), np.inf, np.float32) for _ in range(2)]
    his = [np.full((len(Z), 5), -1, np.int64) for _ in range(2)]
    core().knn_sym_search(Z, blk, 0, core().knn_sym_rounds(-(-len(Z) // blk)), a_l, b_l, hks, his, 2)
    for e in range(2):
        out[f"heap{blk}_{e}_k"], out[f"heap{blk}_{e}_i"] = hks[e], his[e]
if core().knn_amx_usable():   # the AMX tiles: exact on these integers too (h + l holds them)
    from labelsift._knn.search import bf16_split
    split = bf16_split(Z, 2)
    hks = [np.full((len(Z), 5), np.inf, np.float32) for _ in range(2)]
    his = [np.full((len(Z), 5), -1, np.int64) for _ in range(2)]
    core().knn_sym_search(Z, 64, 0, core().knn_sym_rounds(-(-len(Z) // 64)), a_l, b_l, hks, his, 2, split)
    for e in range(2):
        out[f"heapamx_{e}_k"], out[f"heapamx_{e}_i"] = hks[e], his[e]
out["heap_a"], out["heap_b"] = np.stack(a_l), np.stack(b_l)
isa = labelsift.backend_info()["cpu_isa"]
out["isa"] = np.array([isa["knn_gram"], isa["knn_select"]])
np.savez(sys.argv[3], **out)
"""


def _heaps_definition(Z, a, b, m):
    # the top m of key[i, j] = a[j] + b[j] * (z_i . z_j), j != i, by (key, index), sorted
    S = (Z.astype(np.float64) @ Z.astype(np.float64).T).astype(np.float32)
    key = a[None, :] + b[None, :] * S
    np.fill_diagonal(key, np.inf)
    idx = np.lexsort((np.broadcast_to(np.arange(len(Z)), key.shape), key), axis=1)[:, :m]
    return np.take_along_axis(key, idx, 1), idx


@pytest.mark.parametrize("env", [{}, {"LABELSIFT_NO_AVX512": "1"}, {"LABELSIFT_NO_AVX2": "1"}],
                         ids=["best", "no-avx512", "portable"])
def test_every_micro_kernel_isa_gives_the_exact_neighbours(tmp_path, env):
    # The Gram micro-kernel and the selections exist for AVX-512 (8 x 32
    # register block), AVX2+FMA (6 x 16) and portable C++; the ISA is read
    # once per process, so each runs in its own. Tiles whose sizes are not
    # multiples of the register blocks (rests of 1..7 rows, partial panels),
    # d past one coordinate chunk, the direct and the database searches.
    import os
    import subprocess
    import sys
    X = tied_data(230, 20, seed=11).astype(np.float32)
    X[200:] = np.random.default_rng(4).normal(size=(30, 20)).astype(np.float32)  # no ties: an order to get wrong
    Y = np.random.default_rng(3).integers(-2, 3, size=(150, 300)).astype(np.float32)
    Y[10:30] = Y[5]
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    Z = np.random.default_rng(6).integers(-4, 5, size=(260, 300)).astype(np.float32)
    Z[40:50] = Z[3]
    np.save(tmp_path / "Z.npy", Z)
    base = {k: v for k, v in os.environ.items() if k not in ("LABELSIFT_NO_AVX512", "LABELSIFT_NO_AVX2")}
    subprocess.run([sys.executable, "-c", _ISA_SCRIPT, str(tmp_path / "X.npy"), str(tmp_path / "Y.npy"),
                    str(tmp_path / "out.npz"), str(tmp_path / "Z.npy")], env=base | env, check=True)
    got = np.load(tmp_path / "out.npz")
    gram, select = got["isa"]
    if "LABELSIFT_NO_AVX2" in env:
        assert (gram, select) == ("portable", "portable")
    elif "LABELSIFT_NO_AVX512" in env:
        assert "avx512" not in (gram, select)
    for name in ("t50", "t37", "t64", "t50x0", "t130x0"):
        np.testing.assert_array_equal(got[name + "_cos"], ref.search(X, k=7, metric="cosine")[0])
        np.testing.assert_array_equal(got[name + "_l2"], ref.search(X, k=7, metric="l2")[0])
    np.testing.assert_array_equal(got["d300"], ref.search(Y, k=5, metric="l2")[0])
    np.testing.assert_array_equal(got["wide"], ref.search(got["wide_x"], k=4, metric="l2")[0])
    np.testing.assert_array_equal(got["wide_fp32"], got["wide"])
    np.testing.assert_array_equal(got["asym"], ref.search(X, k=6, metric="l2")[0])
    np.testing.assert_array_equal(got["db"], ref.search(X[:70], X, k=6, metric="cosine")[0])
    # The fused kernel's candidate heaps themselves (the re-rank and certificate would mend a
    # wrong tail): the m smallest keys, and the rows holding keys below the m-th (a heap sees its
    # candidates in the schedule's order, not by index, so which of the rows tied at the m-th
    # key it keeps is the schedule's).
    blocks = (37, 64, 130) + (("amx",) if "heapamx_0_k" in got else ())
    if not env and core().knn_amx_usable():
        assert "heapamx_0_k" in got
    for blk in blocks:
        for e in range(2):
            hk, hi = got[f"heap{blk}_{e}_k"], got[f"heap{blk}_{e}_i"]
            o = np.lexsort((hi, hk), axis=1)
            hk, hi = np.take_along_axis(hk, o, 1), np.take_along_axis(hi, o, 1)
            wk, wi = _heaps_definition(Z, got["heap_a"][e], got["heap_b"][e], 5)
            np.testing.assert_array_equal(hk, wk)
            below = wk < wk[:, -1:]
            np.testing.assert_array_equal(np.where(below, hi, -1), np.where(below, wi, -1))
            assert ((hi >= 0) & (hi != np.arange(len(hi))[:, None])).all()


def test_fused_kernel_on_row_strided_views_and_tiny_sets():
    rng = np.random.default_rng(12)
    W = rng.integers(-3, 4, size=(90, 40)).astype(np.float32)
    X = W[:, 5:22]  # unit column stride, row stride 40: the fused kernel reads it in place
    assert X.strides == (160, 4)
    for metric in ("cosine", "l2"):
        i1, d1, info = search_metrics(X, k=9, metrics=(metric,), tile=(16, 16))[0]
        assert info.symmetric and not info.float32_copy
        np.testing.assert_array_equal(i1, ref.search(np.ascontiguousarray(X), k=9, metric=metric)[0])
    for n in (2, 3, 7):
        Y = rng.normal(size=(n, 3)).astype(np.float32)
        for metric in ("cosine", "l2"):
            i1, d1 = knn.search(Y, k=n - 1, metric=metric)
            i2, d2 = ref.search(Y, k=n - 1, metric=metric)
            np.testing.assert_array_equal(i1, i2)
            np.testing.assert_array_equal(d1, d2)


def test_pairwise_row_sums_replica_equals_numpy():
    # knn/math.h's replica of NumPy's pairwise summation (the CUDA vote kernels' row sums), bit for bit
    from labelsift._common.backend import core
    rng = np.random.default_rng(0)
    for k in [1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 130, 255, 256, 257, 1000, 4099]:
        X = rng.random((50, k)) * 10.0 ** rng.integers(-8, 9, (50, k))
        assert np.array_equal(core().knn_pairwise_row_sums(X), X.sum(axis=1)), k

