"""Multi-label results equal cleanlab 2.9.0's (default tie rule: "cleanlab")."""
import warnings

import numpy as np
import pytest

import labelsift
import labelsift.datasets
import labelsift.multilabel_classification as L
from labelsift.reference import multilabel as R

from ml_data import gen

cleanlab = pytest.importorskip("cleanlab")
import cleanlab.count as cc  # noqa: E402
import cleanlab.multilabel_classification as mlc  # noqa: E402

FILTERS = ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
           "low_self_confidence", "low_normalized_margin"]
DATA = [(400, 2, {}, np.float32), (500, 5, {}, np.float64), (600, 6, dict(decimals=2), np.float32),
        (2000, 8, dict(decimals=1), np.float64), (300, 30, dict(decimals=2), np.float32)]


@pytest.fixture(autouse=True)
def _lower_index_ties():  # overrides the suite's pin: these test the default rule
    with labelsift.options(ties="cleanlab"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield


@pytest.mark.parametrize("n,k,kw,dt", DATA)
def test_find_label_issues(n, k, kw, dt):
    labels, p = gen(n, k, seed=k, dtype=dt, **kw)
    for fb in FILTERS:
        a = mlc.filter.find_label_issues(labels, p, filter_by=fb)
        assert np.array_equal(a, L.filter.find_label_issues(labels, p, filter_by=fb)), fb
        assert np.array_equal(a, labelsift.find_label_issues(labels, p, filter_by=fb, multi_label=True)), fb
        for rank_by in ("self_confidence", "normalized_margin"):
            a = mlc.filter.find_label_issues(labels, p, filter_by=fb, return_indices_ranked_by=rank_by)
            b = L.filter.find_label_issues(labels, p, filter_by=fb, return_indices_ranked_by=rank_by)
            assert np.array_equal(a, b), (fb, rank_by)


@pytest.mark.parametrize("n,k,kw,dt", DATA[:3])
def test_arguments(n, k, kw, dt):
    labels, p = gen(n, k, seed=k + 1, dtype=dt, **kw)
    for args in (dict(frac_noise=0.5), dict(min_examples_per_class=30), dict(filter_by="prune_by_class",
                                                                            frac_noise=0.3),
                 dict(return_indices_ranked_by="self_confidence", rank_by_kwargs={"adjust_pred_probs": True})):
        assert np.array_equal(mlc.filter.find_label_issues(labels, p, **args),
                              L.filter.find_label_issues(labels, p, **args)), args
    cj = cc.compute_confident_joint(labels, p, multi_label=True)
    assert np.array_equal(mlc.filter.find_label_issues(labels, p, confident_joint=cj),
                          L.filter.find_label_issues(labels, p, confident_joint=cj))


@pytest.mark.parametrize("n,k,kw,dt", DATA)
def test_counts(n, k, kw, dt):
    labels, p = gen(n, k, seed=k, dtype=dt, **kw)
    assert np.array_equal(cc.get_confident_thresholds(labels, p, multi_label=True),
                          labelsift.get_confident_thresholds(labels, p, multi_label=True))
    for cal in (True, False):
        assert np.array_equal(cc.compute_confident_joint(labels, p, multi_label=True, calibrate=cal),
                              labelsift.compute_confident_joint(labels, p, multi_label=True, calibrate=cal))
    a, ia = cc.compute_confident_joint(labels, p, multi_label=True, return_indices_of_off_diagonals=True)
    b, ib = labelsift.compute_confident_joint(labels, p, multi_label=True, return_indices_of_off_diagonals=True)
    assert np.array_equal(a, b) and all(np.array_equal(x, y) for x, y in zip(ia, ib))
    assert np.array_equal(cc.estimate_joint(labels, p, multi_label=True),
                          labelsift.estimate_joint(labels, p, multi_label=True))
    assert cc.num_label_issues(labels, p, multi_label=True) == labelsift.num_label_issues(labels, p, multi_label=True)


@pytest.mark.parametrize("n,k,kw,dt", DATA)
def test_scores(n, k, kw, dt):
    labels, p = gen(n, k, seed=k, dtype=dt, **kw)
    for method in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
        for agg in ({"method": "exponential_moving_average", "alpha": 0.8}, {"method": "softmin"},
                    {"method": "exponential_moving_average", "alpha": 0.3}):
            np.testing.assert_allclose(L.rank.get_label_quality_scores(labels, p, method=method, aggregator_kwargs=agg),
                                       mlc.rank.get_label_quality_scores(labels, p, method=method,
                                                                         aggregator_kwargs=agg), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(L.rank.get_label_quality_scores_per_class(labels, p, method=method),
                                      mlc.rank.get_label_quality_scores_per_class(labels, p, method=method))
    np.testing.assert_array_equal(L.rank.get_label_quality_scores(labels, p, adjust_pred_probs=True),
                                  mlc.rank.get_label_quality_scores(labels, p, adjust_pred_probs=True))


@pytest.mark.parametrize("n,k,kw,dt", DATA[1:4])
def test_dataset(n, k, kw, dt):
    labels, p = gen(n, k, seed=k, dtype=dt, **kw)
    names = [f"c{i}" for i in range(k)]
    for f in ("common_multilabel_issues", "rank_classes_by_multilabel_quality"):
        a = getattr(mlc.dataset, f)(labels, p, class_names=names)
        b = getattr(L.dataset, f)(labels, p, class_names=names)
        assert a.equals(b), f
    assert mlc.dataset.overall_multilabel_health_score(labels, p) == L.dataset.overall_multilabel_health_score(labels, p)
    cj = cc.compute_confident_joint(labels, p, multi_label=True)
    a = mlc.dataset.multilabel_health_summary(labels, p, confident_joint=cj, verbose=False)
    b = L.dataset.multilabel_health_summary(labels, p, confident_joint=cj, verbose=False)
    assert a["overall_multilabel_health_score"] == b["overall_multilabel_health_score"]
    assert a["classes_by_multilabel_quality"].equals(b["classes_by_multilabel_quality"])
    assert a["common_multilabel_issues"].equals(b["common_multilabel_issues"])


def test_k300():
    labels, p = gen(200, 300, seed=3, dtype=np.float32, decimals=2)
    assert np.array_equal(mlc.filter.find_label_issues(labels, p), L.filter.find_label_issues(labels, p))
    assert np.array_equal(cc.compute_confident_joint(labels, p, multi_label=True),
                          labelsift.compute_confident_joint(labels, p, multi_label=True))


def test_degenerate_classes():
    """Classes with no / all positives: cleanlab's counts and scores are equal;
    its find_label_issues raises, so the mask is compared with cleanlab's on the
    other classes (a degenerate class flags nothing with these methods)."""
    labels, p = gen(500, 6, seed=9, zero_cls=[1], all_cls=[4], empty_frac=0.2)
    assert np.array_equal(cc.get_confident_thresholds(labels, p, multi_label=True),
                          labelsift.get_confident_thresholds(labels, p, multi_label=True))
    assert np.array_equal(cc.compute_confident_joint(labels, p, multi_label=True),
                          labelsift.compute_confident_joint(labels, p, multi_label=True))
    np.testing.assert_array_equal(mlc.rank.get_label_quality_scores(labels, p),
                                  L.rank.get_label_quality_scores(labels, p))
    keep = [0, 2, 3, 5]
    sub = [[keep.index(c) for c in r if c in keep] for r in labels]
    for fb in ("prune_by_noise_rate", "prune_by_class", "confident_learning"):
        assert np.array_equal(mlc.filter.find_label_issues(sub, p[:, keep], filter_by=fb),
                              L.filter.find_label_issues(labels, p, filter_by=fb)), fb


def test_cifar10_top2():
    d = labelsift.datasets.cifar10_test()
    p = d.pred_probs[:3000].astype(np.float32)
    top2 = np.argsort(-p, axis=1, kind="stable")[:, :2]
    labels = [sorted(set(map(int, r))) for r in top2]
    labels = [[int(d.labels[i])] + [c for c in r if c != d.labels[i]][:1] for i, r in enumerate(labels)]
    labels = [sorted(r) for r in labels]
    for fb in ("prune_by_noise_rate", "confident_learning", "low_self_confidence"):
        assert np.array_equal(mlc.filter.find_label_issues(labels, p, filter_by=fb),
                              L.filter.find_label_issues(labels, p, filter_by=fb)), fb
    assert np.array_equal(mlc.filter.find_label_issues(labels, p, return_indices_ranked_by="self_confidence"),
                          L.filter.find_label_issues(labels, p, return_indices_ranked_by="self_confidence"))


def test_raw_joint_diagonal_raised_to_one_as_cleanlab():
    """A class whose only positive is not confidently counted: cleanlab raises
    the 2 x 2 diagonal to 1 before calibrating (found by hypothesis)."""
    import cleanlab.count as cc

    import labelsift

    p = np.array([[0.35218617, 0.02867425, 0.79059136], [0.11739814, 0.08760707, 0.46343347],
                  [0.24822712, 0.4382078, 0.40985674]], dtype=np.float32)
    y = [[], [1], []]
    for cal in (False, True):
        want = cc.compute_confident_joint(y, p, multi_label=True, calibrate=cal)
        got = labelsift.compute_confident_joint(y, p, multi_label=True, calibrate=cal)
        assert np.array_equal(got, want), (cal, got, want)
