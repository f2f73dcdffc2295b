"""labelsift.dask on the threaded scheduler and on a 2-worker LocalCluster:
every result equals the in-memory call on the same values, for chunkings
from one row to all of them, from NumPy, ``.npy`` shards and Zarr."""
import numpy as np
import pytest

import labelsift

da = pytest.importorskip("dask.array")
ldk = pytest.importorskip("labelsift.dask")

FILTERS = ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
           "low_normalized_margin", "low_self_confidence"]


def _data(n=300, k=5, dtype=np.float32, seed=0, coarse=False):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(k) * 0.4, n)
    if coarse:
        P = np.round(P * 5) + 1e-3
        P /= P.sum(1, keepdims=True)
    y = np.where(rng.random(n) < 0.75, P.argmax(1), rng.integers(0, k, n))
    return y, P.astype(dtype)


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def _check_all(y, P, X, **kw):
    """Every function of labelsift.dask on X (a Dask array of P) against the in-memory call."""
    for ties in ("cleanlab", "lower_index"):
        for fb in FILTERS:
            got = ldk.find_label_issues(y, X, filter_by=fb, ties=ties, **kw)
            assert isinstance(got, da.Array) and got.chunks[0] == tuple(c for c in X.chunks[0] if c)
            assert _same(got.compute(), labelsift.find_label_issues(y, P, filter_by=fb, ties=ties)), (fb, ties)
        for rb in ("self_confidence", "normalized_margin"):
            assert _same(ldk.find_label_issues(y, X, return_indices_ranked_by=rb, ties=ties, **kw),
                         labelsift.find_label_issues(y, P, return_indices_ranked_by=rb, ties=ties))
        got = ldk.compute_confident_joint(y, X, return_indices_of_off_diagonals=True, ties=ties, **kw)
        want = labelsift.compute_confident_joint(y, P, return_indices_of_off_diagonals=True, ties=ties)
        assert _same(got[0], want[0]) and _same(got[1], want[1])
        got = ldk.estimate_py_and_noise_matrices_from_probabilities(y, X, ties=ties, **kw)
        want = labelsift.estimate_py_and_noise_matrices_from_probabilities(y, P, ties=ties)
        assert all(_same(a, b) for a, b in zip(got, want))
        assert _same(ldk.estimate_joint(y, X, ties=ties, **kw), labelsift.estimate_joint(y, P, ties=ties))
        for m in ("off_diagonal", "off_diagonal_calibrated"):
            assert ldk.num_label_issues(y, X, estimation_method=m, ties=ties, **kw) == \
                labelsift.num_label_issues(y, P, estimation_method=m, ties=ties)
    assert _same(ldk.get_confident_thresholds(y, X, **kw), labelsift.get_confident_thresholds(y, P))
    cj = labelsift.compute_confident_joint(y, P, calibrate=False) + 1  # a user's confident joint
    assert _same(ldk.estimate_joint(y, X, confident_joint=cj, **kw), labelsift.estimate_joint(y, P, confident_joint=cj))
    assert ldk.num_label_issues(y, X, confident_joint=cj, estimation_method="off_diagonal_custom", **kw) == \
        labelsift.num_label_issues(y, P, confident_joint=cj, estimation_method="off_diagonal_custom")
    assert _same(ldk.find_label_issues(y, X, confident_joint=cj, filter_by="both", **kw).compute(),
                 labelsift.find_label_issues(y, P, confident_joint=cj, filter_by="both"))
    with pytest.raises(ValueError, match="columns"):
        ldk.estimate_joint(y, X, confident_joint=np.ones((P.shape[1] + 1,) * 2, np.int64), **kw)
    assert _same(ldk.compute_confident_joint(y, X, calibrate=False, **kw),
                 labelsift.compute_confident_joint(y, P, calibrate=False))
    for m in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
        for adj in ((False, True) if m != "confidence_weighted_entropy" else (False,)):
            got = ldk.get_label_quality_scores(y, X, method=m, adjust_pred_probs=adj, **kw)
            assert _same(got.compute(), labelsift.get_label_quality_scores(y, P, method=m, adjust_pred_probs=adj))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_threaded_scheduler_matches_in_memory(dtype):
    y, P = _data(dtype=dtype, coarse=dtype != np.float32)
    for chunks in (300, 97, (0, 40, 1, 259)):
        X = da.from_array(P, chunks=(chunks, 5) if not isinstance(chunks, tuple) else (chunks, (5,)))
        _check_all(y, P, X)


def test_one_row_chunks_and_split_columns():
    y, P = _data(n=40, k=3, seed=3)
    _check_all(y, P, da.from_array(P, chunks=(1, 3)))
    y, P = _data(n=120, k=6, seed=4)
    X = da.from_array(P, chunks=(50, 2))  # columns in several chunks: brought into one
    assert _same(ldk.find_label_issues(y, X).compute(), labelsift.find_label_issues(y, P))
    assert _same(ldk.find_label_issues(da.from_array(y, chunks=7), X).compute(), labelsift.find_label_issues(y, P))


def test_cleanlab_ties_across_chunks():
    rng = np.random.default_rng(5)
    P = np.round(rng.random((900, 3)) * 4) + 1e-3
    P /= P.sum(1, keepdims=True)
    y = rng.integers(0, 3, 900)
    want = labelsift.find_label_issues(y, P, ties="cleanlab")
    assert not np.array_equal(want, labelsift.find_label_issues(y, P, ties="lower_index"))
    assert _same(ldk.find_label_issues(y, da.from_array(P, chunks=(333, 3)), ties="cleanlab").compute(), want)


def test_npy_shards_and_zarr(tmp_path):
    y, P = _data(n=250)
    paths = []
    for i, (lo, hi) in enumerate([(0, 100), (100, 101), (101, 250)]):
        paths.append(tmp_path / f"p{i}.npy")
        np.save(paths[-1], P[lo:hi])
    X = ldk.from_npy_shards(paths)
    assert X.chunks[0] == (100, 1, 149)
    assert _same(ldk.find_label_issues(y, X).compute(), labelsift.find_label_issues(y, P))
    X = ldk.from_npy_shards(paths, rows_per_chunk=30)
    assert max(X.chunks[0]) == 30
    assert _same(ldk.find_label_issues(y, X, filter_by="both").compute(),
                 labelsift.find_label_issues(y, P, filter_by="both"))
    zarr = pytest.importorskip("zarr")
    z = zarr.open(str(tmp_path / "p.zarr"), mode="w", shape=P.shape, chunks=(64, 2), dtype=P.dtype)
    z[:] = P
    X = ldk.from_zarr(str(tmp_path / "p.zarr"))
    assert X.numblocks[1] == 1
    assert _same(ldk.compute_confident_joint(y, X), labelsift.compute_confident_joint(y, P))


def test_bad_input_names_the_global_row():
    y, P = _data(n=200)
    P[150, 1] = np.inf
    with pytest.raises(ValueError) as want:
        labelsift.find_label_issues(y, P)
    with pytest.raises(ValueError) as got:
        ldk.find_label_issues(y, da.from_array(P, chunks=(60, 5)))
    assert str(got.value) == str(want.value) and "150" in str(got.value)
    with pytest.raises(TypeError, match="dask.array"):
        ldk.find_label_issues(y, P)
    with pytest.raises(ValueError, match="entries"):
        ldk.find_label_issues(y[:-1], da.from_array(_data(n=200)[1], chunks=50))


@pytest.mark.distributed
def test_local_cluster_two_workers():
    distributed = pytest.importorskip("distributed")
    y, P = _data(n=400, coarse=True, dtype=np.float64)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl):
        X = da.from_array(P, chunks=(90, 5))
        _check_all(y, P, X)


def test_each_chunk_reads_its_given_probabilities_once(monkeypatch):
    """The row pass's tasks reuse the persisted results of exchange 1 (P[i, y_i]
    of each chunk) instead of recomputing them from the chunk."""
    from labelsift._cl import sharded
    calls = []
    real = sharded.given_probs
    monkeypatch.setattr(sharded, "given_probs", lambda sh: calls.append(sh.offset) or real(sh))
    y, P = _data(n=300, coarse=True)
    X = da.from_array(P, chunks=(97, 5))
    for fb in ("prune_by_noise_rate", "both", "low_self_confidence"):
        calls.clear()
        got = ldk.find_label_issues(y, X, filter_by=fb, scheduler="threads").compute()
        assert sorted(calls) == [0, 97, 194, 291], fb
        assert _same(got, labelsift.find_label_issues(y, P, filter_by=fb))
    calls.clear()
    ranked = ldk.find_label_issues(y, X, return_indices_ranked_by="self_confidence", scheduler="threads")
    assert sorted(calls) == [0, 97, 194, 291]
    assert _same(ranked, labelsift.find_label_issues(y, P, return_indices_ranked_by="self_confidence"))
