"""The one-sweep kernels against the plain reference (labelsift.reference.multilabel),
in both tie modes, on tie-heavy data, dense/CSR/list labels and shard-like blocks."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import labelsift
import labelsift.multilabel_classification as L
from labelsift.reference import multilabel as R

from ml_data import gen


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 120), k=st.integers(2, 9), seed=st.integers(0, 10**6),
       decimals=st.sampled_from([None, 1, 2]), dt=st.sampled_from([np.float32, np.float64]),
       ties=st.sampled_from(["cleanlab", "lower_index"]),
       fb=st.sampled_from(["prune_by_noise_rate", "prune_by_class", "confident_learning", "predicted_neq_given",
                           "low_self_confidence"]))
def test_kernels_vs_reference(n, k, seed, decimals, dt, ties, fb):
    labels, p = gen(n, k, seed=seed, dtype=dt, decimals=decimals, empty_frac=0.3)
    rng = np.random.default_rng(seed)
    if rng.random() < 0.3:  # a class with no positives / all positives
        c = int(rng.integers(k))
        labels = [[x for x in r if x != c] for r in labels]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = R.find_label_issues(labels, p, filter_by=fb, ties=ties)
        b = L.filter.find_label_issues(labels, p, filter_by=fb, ties=ties)
        assert np.array_equal(a, b)
        assert np.array_equal(R.compute_confident_joint(labels, p, ties=ties),
                              labelsift.compute_confident_joint(labels, p, multi_label=True, ties=ties))
        assert np.array_equal(R.get_confident_thresholds(labels, p),
                              labelsift.get_confident_thresholds(labels, p, multi_label=True))


@pytest.mark.parametrize("ties", ["cleanlab", "lower_index"])
def test_label_formats_and_blocks(ties, tmp_path):
    sp = pytest.importorskip("scipy.sparse")
    labels, p = gen(3000, 7, seed=5, decimals=2)
    dense = R.onehot(labels, 7)
    ref = R.find_label_issues(labels, p, ties=ties)
    for lab in (labels, dense, sp.csr_matrix(dense), [tuple(r) + tuple(r) for r in labels]):
        assert np.array_equal(L.filter.find_label_issues(lab, p, ties=ties), ref)
    np.save(tmp_path / "a.npy", p[:1234])
    np.save(tmp_path / "b.npy", p[1234:])
    assert np.array_equal(L.filter.find_label_issues(labels, [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")],
                                                     ties=ties), ref)


def test_threads_do_not_matter():
    labels, p = gen(20000, 13, seed=2, decimals=2)
    a = L.filter.find_label_issues(labels, p, n_jobs=1)
    assert np.array_equal(a, L.filter.find_label_issues(labels, p, n_jobs=2))
    assert np.array_equal(a, R.find_label_issues(labels, p))


def test_float16_thresholds():
    labels, p = gen(20000, 4, seed=8)
    p16 = p.astype(np.float16)
    assert np.array_equal(R.get_confident_thresholds(labels, p16),
                          labelsift.get_confident_thresholds(labels, p16, multi_label=True))


def test_joint_sweep_histograms_past_the_uint16_flush():
    # the per-thread histogram counters are uint16, added into the output every 255 tiles of 256 rows:
    # one block of 70,000 rows (two flushes) against the same rows as two blocks of 35,000 (none)
    from labelsift._common.backend import core
    rng = np.random.default_rng(4)
    n, k = 70_000, 3
    p = np.round(rng.random((n, k)), 2)
    p[rng.random((n, k)) < 0.97] = 0.0  # one key for most rows: its bucket passes 65,535 counts
    y = rng.random((n, k)) < 0.01
    ip = np.zeros(n + 1, np.int64)
    np.cumsum(y.sum(axis=1), out=ip[1:])
    ix = np.nonzero(y)[1].astype(np.int32)
    cut = np.full(k, 0.5)
    nb = core().ML_BUCKETS

    def sweep(rows):
        cj, hist = np.zeros(k * 4, np.int64), np.zeros(k * 2 * nb, np.int64)
        core().ml_joint_sweep(p[rows], ip[rows.start:rows.stop + 1], ix, cut, cut, cj, None, None, 0, hist, 2)
        return cj, hist

    whole = sweep(slice(0, n))
    halves = [sweep(slice(0, n // 2)), sweep(slice(n // 2, n))]
    assert whole[1].max() > 65_535
    assert np.array_equal(whole[1], halves[0][1] + halves[1][1])
    assert np.array_equal(whole[0], halves[0][0] + halves[1][0])
    assert whole[1].sum() == n * k
