"""The CUDA k-NN search's Python side (labelsift._knn.device) on the host
emulation of labelsift._cuda (support.cuda_emu: the CPU kernels on host
memory, NumPy products with the tensor-core roundings emulated), and the
routing of ``knn.search`` without a GPU."""
import numpy as np
import pytest
from support.cuda_emu import EmuOps, FakeDeviceArray

import labelsift
from labelsift import knn
from labelsift._knn import device as kdev


@pytest.fixture
def knn_emulated(emulated, monkeypatch):
    monkeypatch.setattr(kdev, "OPS_OVERRIDE", EmuOps)
    EmuOps.calls = []
    return emulated


def clustered(n, d, seed, sig=0.2, dtype=np.float32):
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (max(2, n // 25), d))
    return (base[rng.integers(0, len(base), n)] + sig * rng.normal(0, 1, (n, d))).astype(dtype)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("gram", ["tf32", "bf16", "fp32"])
def test_device_path_equals_cpu(knn_emulated, metric, gram):
    X = clustered(700, 24, seed=1)
    X[400:420] = X[100:120]  # exact duplicates
    want_i, want_d = knn.search(X, k=8, metric=metric)
    gi, gd, info = knn.search(FakeDeviceArray(X), k=8, metric=metric, gram=gram, tile=(128, 300),
                              return_info=True)
    assert np.array_equal(gi, want_i) and np.array_equal(gd, want_d)
    assert info.gram == gram and info.device == "cuda:0" and info.tile == (128, 300)
    assert EmuOps.calls and set(EmuOps.calls) == {gram}
    for kernel in ("knn_norms2", "knn_tile_select", "knn_rerank"):
        assert kernel in knn_emulated.calls


def test_tiles_and_precisions_do_not_change_the_answer(knn_emulated):
    X = clustered(500, 16, seed=2, sig=0.05)
    ref = knn.search(X, k=6, metric="cosine")
    for tile in [(1, 7), (64, 64), (500, 500), (77, 499)]:
        for gram in ("tf32", "bf16"):
            gi, gd = knn.search(FakeDeviceArray(X), k=6, gram=gram, tile=tile)
            assert np.array_equal(gi, ref[0]) and np.array_equal(gd, ref[1]), (tile, gram)


@pytest.mark.parametrize("factor", [1, 4])
def test_unproven_rows_retried_then_exhaustive(knn_emulated, monkeypatch, factor):
    monkeypatch.setattr(kdev, "RETRY_FACTOR", factor)
    X = clustered(600, 32, seed=3, sig=0.1)
    ref = knn.search(X, k=10, metric="l2")
    gi, gd, info = knn.search(FakeDeviceArray(X), k=10, metric="l2", gram="bf16", extra=2, return_info=True)
    assert np.array_equal(gi, ref[0]) and np.array_equal(gd, ref[1])
    if factor == 1:  # no retry: every unproven row through the exhaustive kernel
        assert info.retried_rows == 0 and info.fallback_rows > 0 and "knn_exhaustive" in knn_emulated.calls
    else:  # 48 candidates prove what 12 could not: fewer exhaustive rows than retried ones
        assert info.retried_rows > 0 and info.fallback_rows < info.retried_rows


def test_a_few_unproven_rows_skip_the_retry(knn_emulated, monkeypatch):
    monkeypatch.setattr(kdev, "RETRY_MIN_ROWS", 10 ** 9)
    X = clustered(300, 16, seed=3, sig=0.1)
    ref = knn.search(X, k=5)
    gi, _, info = knn.search(FakeDeviceArray(X), k=5, gram="bf16", extra=0, return_info=True)
    assert np.array_equal(gi, ref[0]) and info.retried_rows == 0 and info.fallback_rows > 0


def test_queries_against_database_and_dtype_promotion(knn_emulated):
    D = clustered(300, 12, seed=4, dtype=np.float64)
    Q = clustered(90, 12, seed=5, dtype=np.float32)
    ref = knn.search(Q, D, k=5, metric="l2")
    gi, gd = knn.search(FakeDeviceArray(Q), FakeDeviceArray(np.asfortranarray(D)), k=5, metric="l2")
    assert np.array_equal(gi, ref[0]) and np.array_equal(gd, ref[1])


def test_device_cpu_searches_a_host_copy(knn_emulated):
    X = clustered(200, 8, seed=6)
    ref = knn.search(X, k=4)
    got = knn.search(FakeDeviceArray(X[::2]), k=4, device="cpu")
    assert np.array_equal(got[0], knn.search(X[::2], k=4)[0])
    assert not knn_emulated.calls or "knn_tile_select" not in knn_emulated.calls
    assert ref[0].shape == (200, 4)


def test_device_errors(knn_emulated):
    X = clustered(100, 6, seed=7)
    bad = X.copy()
    bad[41, 2] = np.inf
    with pytest.raises(ValueError, match=r"features\[41, 2\] = inf is not finite"):
        knn.search(FakeDeviceArray(bad), k=3)
    with pytest.raises(ValueError, match="only 99 other rows"):
        knn.search(FakeDeviceArray(X), k=100)
    with pytest.raises(ValueError, match="at most 1024 candidates"):
        knn.search(FakeDeviceArray(clustered(1200, 4, seed=1)), k=1000, extra=200)
    with pytest.raises(ValueError, match="gram="):
        knn.search(FakeDeviceArray(X), k=3, gram="fp8")
    with pytest.raises(TypeError, match="float16, float32 or float64"):
        knn.search(FakeDeviceArray(X.astype(np.int32)), k=3)
    with pytest.raises(TypeError, match="both be CUDA arrays"):
        knn.search(FakeDeviceArray(X), X, k=3)


def test_routing_without_a_gpu():
    X = clustered(50, 4, seed=8)
    with pytest.raises(ValueError, match="moving host features to a GPU"):
        knn.search(X, k=3, device="cuda")
    with pytest.raises(ValueError, match="moving host features to a GPU"):
        knn.search(X, k=3, backend="cuda")
    with pytest.raises(ValueError, match="backend="):
        knn.search(X, k=3, backend="faiss")
    with pytest.raises(ValueError, match="device="):
        knn.search(X, k=3, device="tpu")
    with pytest.raises(ValueError, match="CPU search computes its tiles in float32"):
        knn.search(X, k=3, gram="bf16")
    if not labelsift.backend_info()["cuda_available"]:
        with pytest.raises(TypeError, match="cannot use a GPU here"):
            knn.search(FakeDeviceArray(X), k=3)
        with pytest.raises(TypeError, match="cannot use a GPU here"):
            knn.agreement(np.zeros(50, np.int64), FakeDeviceArray(np.zeros((50, 3), np.int64)))


def test_votes_of_device_neighbour_lists(knn_emulated):
    rng = np.random.default_rng(3)
    ind = rng.integers(-1, 80, (80, 6))
    y = rng.integers(0, 4, 80)
    w = rng.random((80, 6))
    for fn, args in ((knn.label_counts, (4,)), (knn.knn_pred_probs, (4,)), (knn.agreement, ())):
        for wt in (None, w, FakeDeviceArray(w)):
            got = fn(FakeDeviceArray(y), FakeDeviceArray(ind.astype(np.int32)), *args, weights=wt)
            want = fn(y, ind, *args, weights=None if wt is None else w)
            assert np.array_equal(got, want, equal_nan=True) and got.dtype == want.dtype
    assert "knn_votes" in knn_emulated.calls


def test_a_missing_matrix_library_is_named(knn_emulated, monkeypatch):
    monkeypatch.setattr(kdev, "OPS_OVERRIDE", None)

    def no_module(name):
        raise ImportError(name)

    monkeypatch.setattr(kdev, "_torch", lambda: no_module("torch"))
    monkeypatch.setattr(kdev.importlib, "import_module", no_module)
    with pytest.raises(TypeError, match="through PyTorch or CuPy"):
        knn.search(FakeDeviceArray(clustered(40, 4, seed=9)), k=3)
