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
