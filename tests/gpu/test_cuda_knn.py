"""The CUDA k-NN search (labelsift._knn.device; kernels in
src/cuda/knn/knn_kernels.cu) against the CPU search.

What must be equal: indices and distances ``np.array_equal`` to
``labelsift.knn.search`` on the same values as a NumPy array, for every
dtype, layout, metric and ``gram`` precision, on data built with exact
ties (integer coordinates) and duplicate rows, with tiles small enough that
every search crosses several query and database blocks. The float64 keys
come from the same per-pair math (knn/math.h) on both sides, so equality is
exact, not a tolerance. The certificate's fallback is exercised by keeping
no extra candidates (``extra=0``): rows it cannot prove are recomputed by
the exhaustive kernel, and the answer is still the CPU's.

Marked ``gpu``: without a usable CUDA device every test skips with the
device query's reason. tests/common/test_gpu_suite_emulated.py runs this
file against the host emulation (support.cuda_emu: the CPU kernels, NumPy
products with the tensor-core roundings emulated).
"""
import numpy as np
import pytest

import labelsift
from labelsift import knn
from labelsift._knn import device as kdev
from support.device_arrays import host, to_device

_INFO = labelsift.backend_info()
_REASON = ("no usable CUDA device: " + (_INFO["cuda_reason"] or "the CUDA module is not built")
           if not _INFO["cuda_available"] else "")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _INFO["cuda_available"], reason=_REASON)]

DTYPES = [np.float16, np.float32, np.float64]
LAYOUTS = ["C", "F", "strided"]
GRAMS = ["auto", "tf32", "bf16", "fp32"]
TILE = (96, 160)


def embeddings(n, d, dtype, seed, ties=False, dups=0):
    """Clustered rows; ``ties``: small integer coordinates (many equal
    distances); ``dups``: that many rows repeated exactly elsewhere."""
    rng = np.random.default_rng(seed)
    if ties:
        X = rng.integers(-2, 3, (n, d)).astype(np.float64)
    else:
        centres = rng.normal(0, 1, (max(2, n // 40), d))
        X = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(0, 1, (n, d))
    if dups:
        src = rng.choice(n, dups, replace=False)
        dst = rng.choice(np.setdiff1d(np.arange(n), src), dups, replace=False)
        X[dst] = X[src]
    return X.astype(dtype)


def cpu(X, **kw):
    return knn.search(np.asarray(X), **kw)


def search_gram(d, gram, **kw):
    try:
        return knn.search(d, gram=gram, return_info=True, **kw)
    except ValueError as exc:
        if "is not available" in str(exc) or "cannot be switched off" in str(exc):
            pytest.skip(str(exc))
        raise


def check_equal(got, want):
    gi, gd = host(got[0]), host(got[1])
    wi, wd = want
    assert gi.dtype == np.int64 and gd.dtype == np.float32
    assert np.array_equal(gi, wi), np.argwhere(gi != wi)[:5]
    assert np.array_equal(gd, wd)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_search_equals_cpu(dtype, layout, metric):
    X = embeddings(420, 24, dtype, seed=3, dups=12)
    want = cpu(X, k=7, metric=metric)
    got = search_gram(to_device(X, layout), "auto", k=7, metric=metric, tile=TILE)
    check_equal(got, want)
    info = got[2]
    assert info.device.startswith("cuda") and info.rows == 420 and info.candidates == 7 + 16


@pytest.mark.parametrize("gram", GRAMS)
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_every_gram_precision_equals_cpu(gram, metric):
    X = embeddings(500, 40, np.float32, seed=11, dups=20)
    want = cpu(X, k=10, metric=metric)
    got = search_gram(to_device(X), gram, k=10, metric=metric, tile=TILE)
    check_equal(got, want)
    assert got[2].gram == (gram if gram != "auto" else got[2].gram) and got[2].gram in ("tf32", "bf16", "fp32")


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_and_duplicates_by_lower_index(dtype, metric):
    X = embeddings(300, 6, dtype, seed=5, ties=True, dups=40)
    want = cpu(X, k=9, metric=metric)
    got = search_gram(to_device(X), "auto", k=9, metric=metric, tile=(64, 100))
    check_equal(got, want)
    # the data really are tie-heavy: some row has equal distances at its k-th neighbour's boundary
    d = want[1]
    assert (d[:, 1:] == d[:, :-1]).any()


@pytest.fixture(params=["retry", "exhaustive"])
def fallback(request, monkeypatch):
    """Unproven rows searched again with more candidates first ("retry", the
    default), or sent straight to the exhaustive kernel ("exhaustive")."""
    if request.param == "exhaustive":
        monkeypatch.setattr(kdev, "RETRY_FACTOR", 1)
    return request.param


def check_fallback(info, how):
    if how == "exhaustive":
        assert info.fallback_rows > 0 and info.retried_rows == 0
    else:
        assert info.retried_rows > 0


@pytest.mark.parametrize("gram", ["auto", "bf16"])
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_certificate_fallback_is_exercised_and_exact(gram, metric, fallback):
    X = embeddings(360, 16, np.float32, seed=8, ties=True, dups=10)
    want = cpu(X, k=5, metric=metric)
    got = search_gram(to_device(X), gram, k=5, metric=metric, tile=TILE, extra=0)
    check_equal(got, want)
    check_fallback(got[2], fallback)


def test_fallback_on_every_row_of_a_tiny_candidate_list(monkeypatch):
    # k = 1, no extra, all rows equal: no row can be proven, every row recomputed (a retry with 4
    # candidates cannot prove one either, so the exhaustive kernel takes them all)
    assert kdev.RETRY_MIN_ROWS == 32
    X = np.ones((130, 8), np.float32)
    want = cpu(X, k=1, metric="l2")
    got = search_gram(to_device(X), "auto", k=1, metric="l2", extra=0, tile=(32, 50))
    check_equal(got, want)
    # the four full blocks of 32 rows are retried first; the last block's 2 rows are too few to retry
    assert got[2].fallback_rows == 130 and got[2].retried_rows == 128
    assert np.array_equal(want[0][:, 0], np.r_[1, np.zeros(129, np.int64)])


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_queries_against_a_database(metric):
    D = embeddings(400, 20, np.float64, seed=1, dups=5)
    Q = np.vstack([D[:30], embeddings(50, 20, np.float64, seed=2)])
    want = knn.search(Q, D, k=6, metric=metric)
    got = search_gram(to_device(Q), "auto", database=to_device(D, "F"), k=6, metric=metric, tile=TILE)
    check_equal(got, want)
    # a query equal to database row j finds j at distance 0 (no self exclusion against a database)
    assert np.array_equal(host(got[0])[:30, 0], np.arange(30)) or (want[1][:30, 0] == 0).all()


def test_large_and_small_values_scaled_and_centred():
    X = embeddings(260, 12, np.float64, seed=4) * 1e30 + 1e31  # scaled, and L2 with a dominant mean
    for metric in ("cosine", "l2"):
        want = cpu(X, k=4, metric=metric)
        got = search_gram(to_device(X), "auto", k=4, metric=metric, tile=TILE)
        check_equal(got, want)
    assert got[2].centred and got[2].scale_exponent != 0


def test_zero_rows_and_exclude_self_false():
    X = embeddings(200, 10, np.float32, seed=6)
    X[[3, 50, 51]] = 0
    for ex in (True, False):
        want = cpu(X, k=5, metric="cosine", exclude_self=ex)
        got = search_gram(to_device(X), "auto", k=5, metric="cosine", exclude_self=ex, tile=TILE)
        check_equal(got, want)


def test_device_cpu_reads_a_host_copy():
    X = embeddings(150, 8, np.float32, seed=9)
    want = cpu(X, k=3)
    got = knn.search(to_device(X), k=3, device="cpu")
    check_equal(got, want)


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    X = embeddings(300, 16, np.float32, seed=12, dups=5)
    t = torch.from_numpy(X).cuda()
    idx, dist = knn.search(t, k=5, tile=TILE)
    assert isinstance(idx, torch.Tensor) and idx.is_cuda and idx.dtype == torch.int64
    assert dist.dtype == torch.float32
    check_equal((idx, dist), cpu(X, k=5))


def test_bad_input_errors():
    X = embeddings(100, 6, np.float32, seed=1)
    X[17, 4] = np.nan
    with pytest.raises(ValueError, match=r"features\[17, 4\] = nan is not finite"):
        knn.search(to_device(X), k=3)
    ok = embeddings(20, 6, np.float32, seed=1)
    with pytest.raises(ValueError, match="only 19 other rows"):
        knn.search(to_device(ok), k=20)
    big = embeddings(1100, 4, np.float32, seed=1)
    with pytest.raises(ValueError, match="at most 1024 candidates"):
        knn.search(to_device(big), k=1000, extra=100)
    with pytest.raises(ValueError, match="gram="):
        knn.search(to_device(ok), k=3, gram="int8")
    with pytest.raises(ValueError, match="features but the database"):
        knn.search(to_device(ok), to_device(ok[:, :5]), k=3)


@pytest.mark.parametrize("gram", ["bf16", "tf32"])
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_coarse_products_on_tight_clusters(gram, metric, fallback):
    # 60 tight clusters of 20 rows in 32 dimensions: a row's neighbours lie
    # closer together than bfloat16/TF32 products resolve, so the candidates
    # are often wrong (with float32's bound instead of the coarse products'
    # the emulated search returns wrong neighbours on 100+ rows); only the
    # certificate's bound for the products in use sends those rows to the
    # exhaustive kernel
    rng = np.random.default_rng(21)
    base = rng.normal(0, 1, (60, 32))
    X = (base[rng.integers(0, 60, 1200)] + 0.1 * rng.normal(0, 1, (1200, 32))).astype(np.float32)
    want = cpu(X, k=10, metric=metric)
    got = search_gram(to_device(X), gram, k=10, metric=metric, tile=(512, 700), extra=2)
    check_equal(got, want)
    check_fallback(got[2], fallback)


# ---------------------------------------------------------------------------
# neighbour label statistics on the device (src/cuda/knn/vote_kernels.cu)
# ---------------------------------------------------------------------------
def neighbour_lists(n, k, K, seed, idx_dtype=np.int64):
    rng = np.random.default_rng(seed)
    ind = rng.integers(0, n, (n, k)).astype(idx_dtype)
    ind[rng.random((n, k)) < 0.1] = -1  # missing neighbours
    ind[5] = -1  # a row without any
    y = rng.integers(0, K, n)
    w = rng.random((n, k)) * rng.choice([1e-3, 1.0, 1e3], (n, k))
    return ind, y, w


@pytest.mark.parametrize("idx_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("weighted", [False, True])
def test_votes_equal_the_host_functions(idx_dtype, layout, weighted):
    n, k, K = 700, 13, 9
    ind, y, w = neighbour_lists(n, k, K, seed=1, idx_dtype=idx_dtype)
    wt = w if weighted else None
    d = to_device(ind, layout)
    for fn, args in ((knn.label_counts, (K,)), (knn.knn_pred_probs, (K,)), (knn.agreement, ())):
        want = fn(y, ind, *args, weights=wt)
        got = host(fn(y, d, *args, weights=wt))
        assert got.dtype == want.dtype and got.shape == want.shape, fn.__name__
        assert np.array_equal(got, want, equal_nan=True), fn.__name__


def test_votes_on_the_device_search_output_and_long_rows():
    # k = 150 (> 128: NumPy's pairwise sum splits the row) and K = 300 classes
    n, k, K = 400, 150, 300
    ind, y, w = neighbour_lists(n, k, K, seed=2)
    for wt in (None, w):
        for fn, args in ((knn.knn_pred_probs, (K,)), (knn.agreement, ())):
            want = fn(y, ind, *args, weights=wt)
            assert np.array_equal(host(fn(y, to_device(ind), *args, weights=wt)), want, equal_nan=True)
    X = embeddings(300, 12, np.float32, seed=3)
    yy = np.random.default_rng(4).integers(0, 5, 300)
    idx_d, dist_d = knn.search(to_device(X), k=6, tile=TILE)
    want = knn.knn_pred_probs(yy, knn.search(X, k=6)[0], 5)
    assert np.array_equal(host(knn.knn_pred_probs(yy, (idx_d, dist_d), 5)), want)


def test_votes_bad_indices_named():
    ind, y, _ = neighbour_lists(100, 4, 3, seed=5)
    ind[37, 2] = 100
    with pytest.raises(ValueError, match=r"indices\[37, 2\] = 100 is not a row index in 0..99"):
        knn.agreement(y, to_device(ind))
    with pytest.raises(ValueError, match="labels"):
        knn.label_counts(np.full(100, 7), to_device(np.zeros((100, 4), np.int64)), 3)
