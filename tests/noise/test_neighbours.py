"""The exact cosine search of labelsift._noise.neighbours against brute force (ties, duplicates)."""
import numpy as np
import pytest

from labelsift._noise.neighbours import Features, SampleNeighbours, exact_knn


def _brute(feats, k, queries, database):
    out = []
    for q in queries:
        db = np.array([j for j in database if j != q])
        d = feats.distances(np.full(len(db), q), db)
        order = np.lexsort((db, d))[:k]
        out.append((db[order], d[order]))
    return np.array([o[0] for o in out]), np.array([o[1] for o in out])


def _tricky(seed, n=300, d=8):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (n, d)).astype(np.float64)  # small integers: many exact ties
    x[::7] = x[3]                                        # exact duplicates
    x[5::11] = 2 * x[4]                                  # scaled copies: cosine distance ~0
    return x


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [1, 2, 9])
def test_exact_knn_equals_brute_force(seed, k):
    feats = Features(_tricky(seed))
    idx, d = exact_knn(feats, k, block_bytes=20000)
    bi, bd = _brute(feats, k, range(feats.n), range(feats.n))
    np.testing.assert_array_equal(idx, bi)
    np.testing.assert_array_equal(d, bd)
    assert not (idx == np.arange(feats.n)[:, None]).any()


def test_exact_knn_in_a_subset():
    feats = Features(_tricky(2))
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(feats.n, 150, replace=False))
    idx, d = exact_knn(feats, 3, sample, sample)
    bi, bd = _brute(feats, 3, sample, sample)
    np.testing.assert_array_equal(idx, bi)
    np.testing.assert_array_equal(d, bd)


@pytest.mark.parametrize("rounds", [1, 400])  # 1: direct search each round; 400: the filtered full lists
def test_sample_neighbours_equal_a_search_of_the_sample(rounds):
    feats = Features(_tricky(3))
    sn = SampleNeighbours(feats, 4, 0.6, rounds)
    assert (sn.cand_i is None) == (rounds == 1)
    rng = np.random.default_rng(1)
    for _ in range(3):
        sample = np.sort(rng.choice(feats.n, 180, replace=False))
        idx, d = sn(sample)
        ei, ed = exact_knn(feats, 4, sample, sample)
        np.testing.assert_array_equal(idx, ei)
        np.testing.assert_array_equal(d, ed)


def test_labelsift_knn_search_is_used_when_present(monkeypatch):
    """Once labelsift.knn exists its search gives the full-set lists; the answers must not change."""
    import types

    import labelsift.noise as nz
    from labelsift._noise import neighbours
    from labelsift.reference import noise as ref

    x = _tricky(4, n=400, d=6) + np.random.default_rng(0).standard_normal((400, 6)) * 1e-3
    y = np.arange(400) % 3
    calls = []

    def fake_search(features, k=10, *, metric="cosine", exclude_self=True):
        assert metric == "cosine" and exclude_self
        calls.append(k)
        idx, d = ref.knn_full(ref.normalise(features), k)
        return idx[:, ::-1].copy(), d[:, ::-1].astype(np.float32)  # any order: re-sorted on arrival

    want = nz.hoc(x, y, 3, rounds=60, steps=30)
    monkeypatch.setattr(neighbours, "_knn_module", lambda: types.SimpleNamespace(search=fake_search))
    got = nz.hoc(x, y, 3, rounds=60, steps=30)
    assert calls, "labelsift.knn.search was not called"
    np.testing.assert_array_equal(got.consensus.c2, want.consensus.c2)
    np.testing.assert_array_equal(got.transition_matrix, want.transition_matrix)
