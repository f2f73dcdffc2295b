"""The kernels against the float64 NumPy reference (labelsift.reference.sinkhorn)
and against POT (test-only oracle)."""
import numpy as np
import pytest

import labelsift
from labelsift import sinkhorn
from labelsift.reference import sinkhorn as ref
from support.sinkhorn import assert_labels_near_ties, logits, prior, softmax

CASES = [
    # n, k, lam, dtype, skew, marginals
    (3000, 20, 25.0, np.float32, 0.0, None),
    (2000, 50, 10.0, np.float64, 1.0, None),
    (1500, 30, 25.0, np.float32, 0.5, "prior"),
    (997, 7, 5.0, np.float64, 2.0, "prior"),
]


@pytest.mark.parametrize("n,k,lam,dtype,skew,marg", CASES)
def test_fused_matches_reference(n, k, lam, dtype, skew, marg):
    x = logits(n, k, seed=n + k, dtype=dtype, skew=skew, scale=0.3)
    a = prior(k, seed=k) if marg else None
    got = sinkhorn.self_label(x, lam=lam, marginals=a, return_info=True, return_plan=True)
    want = ref.self_label(x, lam=lam, marginals=a)
    assert got.n_iter == want.n_iter
    assert got.converged and want.converged
    assert got.error <= 1e-3
    np.testing.assert_allclose(got.history, want.history, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(got.col_potentials, want.col_potentials, rtol=1e-9, atol=1e-9)
    assert_labels_near_ties(got.labels, want.labels, x, want.col_potentials, lam)
    # rows exact, columns within tol
    plan = np.asarray(got.plan, np.float64)
    tol_row = 1e-6 if plan.dtype == np.float32 or x.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(plan.sum(1), np.full(n, 1.0 / n), rtol=tol_row)
    target = np.full(k, 1.0 / k) if a is None else a
    assert np.abs(plan.sum(0) - target).sum() <= 1e-3 + 1e-6
    np.testing.assert_allclose(plan, want.plan, rtol=1e-5 if dtype == np.float32 else 1e-9, atol=1e-12 / n)


def test_row_weights_and_fixed_iterations():
    x = logits(1200, 12, seed=3, scale=0.5)
    w = np.random.default_rng(0).uniform(0.5, 1.5, size=1200)
    w /= w.sum()
    got = sinkhorn.self_label(x, lam=10, row_weights=w, n_iter=7, return_info=True, return_plan=True)
    want = ref.self_label(x, lam=10, row_weights=w, n_iter=7)
    assert got.n_iter == want.n_iter == 7 and len(got.history) == 8
    np.testing.assert_allclose(got.plan.sum(1), w, rtol=1e-12)
    np.testing.assert_allclose(got.col_potentials, want.col_potentials, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(got.labels, want.labels)


def test_warm_start_continues_the_run():
    x = logits(2000, 25, seed=5, scale=0.4, skew=1.0)
    full = sinkhorn.self_label(x, lam=20, n_iter=12, return_info=True)
    first = sinkhorn.self_label(x, lam=20, n_iter=5, return_info=True)
    rest = sinkhorn.self_label(x, lam=20, n_iter=7, init=first, return_info=True)
    np.testing.assert_array_equal(rest.col_potentials, full.col_potentials)
    np.testing.assert_array_equal(rest.labels, full.labels)
    assert rest.history == full.history[5:]
    # a warm start from the converged potentials stops at once
    conv = sinkhorn.self_label(x, lam=20, return_info=True)
    again = sinkhorn.self_label(x, lam=20, init=conv.col_potentials, return_info=True)
    assert again.n_iter == 0 and np.array_equal(again.labels, conv.labels)


def test_plan_and_row_potentials_agree():
    x = logits(800, 9, seed=8)
    r = sinkhorn.self_label(x, lam=3.0, return_info=True, return_plan=True)
    logpi = 3.0 * x + r.col_potentials[None, :] + r.row_potentials[:, None]
    np.testing.assert_allclose(r.plan, np.exp(logpi), rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(r.labels, np.argmax(r.plan, axis=1))
    labels, plan = sinkhorn.self_label(x, lam=3.0, return_plan=True)
    np.testing.assert_array_equal(labels, r.labels)
    np.testing.assert_array_equal(plan, r.plan)


def test_invariance_to_row_constants_and_permutations():
    x = logits(1500, 16, seed=11, scale=0.5, skew=1.0)
    base = sinkhorn.self_label(x, lam=15, return_info=True)
    c = np.random.default_rng(1).normal(size=(1500, 1)) * 5
    shifted = sinkhorn.self_label(x + c, lam=15, return_info=True)
    assert shifted.n_iter == base.n_iter
    np.testing.assert_allclose(shifted.col_potentials, base.col_potentials, rtol=1e-8, atol=1e-8)
    assert_labels_near_ties(shifted.labels, base.labels, x, base.col_potentials, 15)
    perm = np.random.default_rng(2).permutation(1500)
    permuted = sinkhorn.self_label(x[perm], lam=15, return_info=True)
    assert permuted.n_iter == base.n_iter
    np.testing.assert_allclose(permuted.col_potentials, base.col_potentials, rtol=1e-9, atol=1e-9)
    assert_labels_near_ties(permuted.labels, base.labels[perm], x[perm], base.col_potentials, 15)


def test_kinds_agree():
    x = logits(1000, 10, seed=4, scale=0.7)
    p = softmax(x)
    a = sinkhorn.self_label(x, kind="logits", lam=8, return_info=True)
    b = sinkhorn.self_label(np.log(p), kind="log_probs", lam=8, return_info=True)
    c = sinkhorn.self_label(p, kind="probs", lam=8, return_info=True)
    for r in (b, c):
        assert r.n_iter == a.n_iter
        np.testing.assert_allclose(r.col_potentials, a.col_potentials, rtol=1e-8, atol=1e-8)
        assert_labels_near_ties(r.labels, a.labels, x, a.col_potentials, 8)


def test_log_domain_false_is_the_scaling_loop():
    x = logits(600, 8, seed=6, scale=0.3)
    a = sinkhorn.self_label(x, lam=5, return_info=True)
    b = sinkhorn.self_label(x, lam=5, log_domain=False, return_info=True)
    assert a.n_iter == b.n_iter
    # the scaling loop's potentials differ by a constant (the gauge); labels do not
    d = a.col_potentials - b.col_potentials
    np.testing.assert_allclose(d, d.mean(), atol=1e-8)
    assert_labels_near_ties(a.labels, b.labels, x, a.col_potentials, 5)


@pytest.fixture(scope="module")
def ot():
    return pytest.importorskip("ot", reason="POT (pip install pot) is the test-only oracle of the plans")


@pytest.mark.parametrize("method", ["sinkhorn", "sinkhorn_log"])
def test_plan_agrees_with_pot(ot, method):
    n, k, lam = 300, 6, 4.0
    x = logits(n, k, seed=21, scale=0.5, skew=1.0)
    a = prior(k, seed=2)
    ours = sinkhorn.self_label(x, lam=lam, marginals=a, tol=1e-11, return_plan=True, return_info=True)
    M = -x
    b_rows = np.full(n, 1.0 / n)
    if method == "sinkhorn":
        pot = ot.sinkhorn(b_rows, a, M, 1.0 / lam, stopThr=1e-13, numItermax=100000)
    else:
        pot = ot.bregman.sinkhorn_log(b_rows, a, M, 1.0 / lam, stopThr=1e-13, numItermax=100000)
    np.testing.assert_allclose(ours.plan, pot, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(ours.labels, np.argmax(pot, axis=1))


def test_info_fields():
    x = logits(500, 5, seed=1)
    r = sinkhorn.self_label(x, lam=5, return_info=True)
    assert isinstance(r, labelsift.sinkhorn.SinkhornResult)
    assert r.labels.dtype == np.int64 and r.labels.shape == (500,)
    assert r.col_potentials.shape == (5,) and r.row_potentials.shape == (500,)
    assert len(r.history) == r.n_iter + 1 and r.history[-1] == r.error <= 1e-3
    assert r.plan is None
    np.testing.assert_array_equal(r.class_sizes(), np.bincount(r.labels, minlength=5))
