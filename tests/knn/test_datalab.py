"""Datalab parity (cleanlab 2.9.0) and the neighbour-list functions."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from labelsift import knn
from labelsift.reference import knn as ref

datalab = pytest.importorskip("cleanlab.datalab.datalab", reason="cleanlab[datalab] (needs `datasets`) is not installed")
scipy_sparse = pytest.importorskip("scipy.sparse")

CHECKS = {"label": {}, "outlier": {}, "near_duplicate": {}, "non_iid": {}}


def gen(N, d, seed):
    rng = np.random.default_rng(seed)
    K = 4
    c = rng.normal(size=(K, d)) * 3
    y = rng.integers(0, K, N)
    X = (c[y] + rng.normal(size=(N, d))).astype(np.float32)
    X[-5:] *= 8                      # outliers
    X[10:14] = X[3]                  # an exact duplicate group of 5
    X[50] = X[51]
    X[60] = X[61] + 1e-4             # a near duplicate
    noisy = rng.random(N) < 0.1
    y[noisy] = rng.integers(0, K, noisy.sum())
    return X, y


def run_datalab(X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab = datalab.Datalab(data={"y": y}, label_name="y", verbosity=0)
        lab.find_issues(features=X, issue_types={c: {} for c in CHECKS}, **kw)  # Datalab mutates the dict
    return lab


def tie_rows(X, y_ind, o_ind, o_dist, metric):
    """For each row whose neighbour set differs from the peer's: "exact" when
    the swapped members are at exactly our k-th float64 distance (a tie the
    peer broke its own way), "float32" when they are within the peer's
    float32 rounding (sklearn's cosine is 1 - a float32 GEMM: it misorders
    distances closer than ~1e-6; ours is the exact order), else "bad"."""
    kinds = []
    for r in np.flatnonzero([set(a) != set(b) for a, b in zip(y_ind, o_ind)]):
        extra = np.array(sorted(set(y_ind[r]) - set(o_ind[r])))
        dk = ref.pair_keys(X[r:r + 1], X[extra], metric)[0]
        kth = ref.pair_keys(X[r:r + 1], X[o_ind[r][-1:]], metric)[0][0]
        if metric == "l2":
            dk, kth = np.sqrt(dk), np.sqrt(kth)
        kinds.append("exact" if np.all(dk == kth) else "float32" if np.all(np.abs(dk - kth) < 2e-6) else "bad")
    return kinds


@pytest.mark.parametrize("N,d", [(400, 2), (1200, 8), (1500, 64)])
def test_find_issues_equals_datalab(N, d):
    X, y = gen(N, d, N + d)
    lab = run_datalab(X, y)
    ours = knn.find_issues(X, y)
    I = lab.issues
    metric = "cosine" if d > 3 else "l2"
    # the graph Datalab used (corrected) against ours: differences are exact ties only
    G = lab.get_info("statistics")["weighted_knn_graph"]
    gi = G.indices.reshape(N, -1)
    oi, od = knn.search(X, k=10, metric=metric)
    oi, od = knn.correct_exact_duplicates(X, oi, od)
    ties = tie_rows(X.astype(np.float64), gi, oi, od, metric)
    assert "bad" not in ties, "a neighbour set differs from Datalab's outside a tie"
    assert ties.count("float32") <= 0.005 * N
    # columns: exact where the rows' graphs agree
    same = np.array([set(a) == set(b) for a, b in zip(gi, oi)])
    for col in ["is_outlier_issue", "is_near_duplicate_issue"]:
        differ = np.flatnonzero(I[col].values != ours[col].values)
        assert len(differ) <= len(ties), col  # a flag can move only with a tie (then checked above)
    np.testing.assert_allclose(I["outlier_score"].values, ours["outlier_score"].values, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(I["near_duplicate_score"].values, ours["near_duplicate_score"].values, atol=3e-5)
    nd = lab.get_issues("near_duplicate")
    assert sum(set(a) != set(b) for a, b in zip(nd["near_duplicate_sets"], ours["near_duplicate_sets"])) <= len(ties)
    np.testing.assert_allclose(nd["distance_to_nearest_neighbor"].values,
                               ours["distance_to_nearest_neighbor"].values, atol=2e-6)
    # non-IID scores depend on the neighbour sets only
    np.testing.assert_allclose(I["non_iid_score"].values[same], ours["non_iid_score"].values[same], rtol=1e-12)
    # label check: Euclidean k + 1 neighbours; rows may differ only where sklearn broke a tie
    from sklearn.neighbors import KNeighborsClassifier
    _, si = KNeighborsClassifier(n_neighbors=11).fit(X, y).kneighbors(X)
    li, _ = knn.search(X, k=10, metric="l2")
    sk_sets = [np.array(sorted(set(row) - {r}))[:10] if r in row else row[:10] for r, row in enumerate(si)]
    lties = tie_rows(X.astype(np.float64), sk_sets, li, None, "l2")
    assert "bad" not in lties
    n_tie_rows = len(lties)
    if n_tie_rows == 0:
        np.testing.assert_array_equal(I["is_label_issue"].values, ours["is_label_issue"].values)
        np.testing.assert_allclose(I["label_score"].values, ours["label_score"].values, rtol=1e-12)
    else:  # the label columns may differ at most on the tied rows' own entries and the thresholds they move
        diff = np.flatnonzero(np.abs(I["label_score"].values - ours["label_score"].values) > 1e-12)
        assert len(diff) <= n_tie_rows
    assert ours.attrs["fallback_rows"] >= 0


def test_graph_given_equals_datalab_exactly():
    # on Datalab's own graph every graph-derived column is Datalab's
    N, d = 1000, 16
    X, y = gen(N, d, 7)
    lab = run_datalab(X, y)
    G = lab.get_info("statistics")["weighted_knn_graph"]
    ours = knn.find_issues(X, y, knn_graph=G)
    I = lab.issues
    for col in ["is_outlier_issue", "is_near_duplicate_issue", "is_non_iid_issue"]:
        np.testing.assert_array_equal(I[col].values, ours[col].values)
    for col in ["outlier_score", "near_duplicate_score", "non_iid_score"]:
        np.testing.assert_allclose(I[col].values, ours[col].values, rtol=1e-6, atol=1e-7)
    nd = lab.get_issues("near_duplicate")
    for a, b in zip(nd["near_duplicate_sets"], ours["near_duplicate_sets"]):
        np.testing.assert_array_equal(a, b)   # same order too
    assert ours.attrs["non_iid"] == pytest.approx(lab.get_info("non_iid")["p-value"], rel=1e-9)


def test_exact_duplicate_correction_matches_cleanlab():
    from cleanlab.internal.neighbor.knn_graph import correct_knn_distances_and_indices
    rng = np.random.default_rng(8)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    X[5:8] = X[1]          # a group of 4 (< k + 1)
    X[30:45] = X[2]        # a group of 16 (>= k + 1)
    X[60] = -0.0 * X[60]   # -0.0 equals 0.0
    X[61] = 0.0
    ind = rng.integers(0, 120, size=(120, 10))
    dist = np.sort(rng.random((120, 10)), axis=1)
    cd, ci = correct_knn_distances_and_indices(X, dist, ind)
    oi, od = knn.correct_exact_duplicates(X, ind, dist)
    np.testing.assert_array_equal(ci, oi)
    np.testing.assert_array_equal(cd, od)


def test_neighbour_inputs_csr_pairs_arrays():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(300, 6))
    y = rng.integers(0, 3, 300)
    i, d = knn.search(X, k=8, metric="l2")
    G = scipy_sparse.csr_matrix((d.ravel(), i.ravel(), np.arange(0, 300 * 8 + 1, 8)), shape=(300, 300))
    a = knn.outlier_scores((i, d), metric="l2")
    b = knn.outlier_scores(G, metric="l2")
    c = knn.outlier_scores(X, k=8, metric="l2")
    for u, v in [(a, b), (a, c)]:
        np.testing.assert_array_equal(u[0], v[0])
        np.testing.assert_array_equal(u[1], v[1])
    np.testing.assert_array_equal(knn.label_counts(y, G, 3), knn.label_counts(y, i, 3))
    np.testing.assert_array_equal(knn.non_iid(i)[1], knn.non_iid((i, d))[1])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 40), k=st.integers(1, 6), K=st.integers(1, 5), seed=st.integers(0, 10**6),
       weighted=st.booleans())
def test_counts_vs_reference(n, k, K, seed, weighted):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    ind = rng.integers(-1, n, size=(n, k))
    w = rng.random((n, k)) if weighted else None
    c = knn.label_counts(y, ind, K, weights=w)
    np.testing.assert_allclose(c, ref.label_counts(y, ind, K, w), rtol=1e-12)
    p = knn.knn_pred_probs(y, ind, K, weights=w)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    agr = knn.agreement(y, ind, weights=w)
    r = ref.label_counts(y, ind, K, w)
    tot = r.sum(axis=1)
    expect = np.where(tot > 0, r[np.arange(n), y] / np.where(tot > 0, tot, 1), np.nan)
    np.testing.assert_allclose(agr, expect, rtol=1e-12)


def test_non_iid_leaves_global_rng_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    rng = np.random.default_rng(0)
    knn.non_iid(rng.normal(size=(200, 4)), k=5)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
