"""Property tests (hypothesis) of the Sinkhorn kernels: against the float64
reference, and the same results on any thread count, ISA and memory layout."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelsift import _core, sinkhorn
from labelsift.reference import sinkhorn as ref
from support.sinkhorn import assert_labels_near_ties

ISAS = [i for i in (1, 2, 3, 4) if i <= _core.vec_isa()] or [1]


@st.composite
def problems(draw, max_n=400, max_k=24):
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(1, max_k))
    seed = draw(st.integers(0, 2**31 - 1))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    scale = draw(st.sampled_from([0.01, 0.3, 1.0, 5.0]))
    lam = draw(st.sampled_from([1.0, 5.0, 25.0, 100.0]))
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, k)) * scale).astype(dtype)
    marg = None
    if k > 1 and draw(st.booleans()):
        a = rng.uniform(0.2, 1.0, size=k)
        marg = a / a.sum()
    return x, lam, marg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.integers(0, 6))
def test_kernel_matches_reference(prob, n_iter):
    x, lam, marg = prob
    got = sinkhorn.self_label(x, lam=lam, marginals=marg, n_iter=n_iter, return_info=True, return_plan=True)
    want = ref.self_label(x, lam=lam, marginals=marg, n_iter=n_iter)
    assert got.n_iter == want.n_iter == n_iter
    for r in (got,):
        assert np.isfinite(r.col_potentials).all() and np.isfinite(np.asarray(r.plan, np.float64)).all()
    np.testing.assert_allclose(got.col_potentials, want.col_potentials, rtol=1e-9, atol=1e-9 * (1 + lam))
    np.testing.assert_allclose(got.history, want.history, rtol=1e-7, atol=1e-12)
    xs = np.asarray(x, np.float64)
    assert_labels_near_ties(got.labels, want.labels, xs, want.col_potentials, lam, min_equal=0.99)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_n=3000, max_k=40), st.sampled_from(["fused", "sela"]))
def test_same_results_on_any_thread_count_isa_and_layout(prob, mode):
    x, lam, marg = prob
    kw = dict(lam=lam, marginals=marg, n_iter=4, mode=mode, return_info=True, return_plan=True)
    base = sinkhorn.self_label(x, n_jobs=1, **kw)
    variants = [dict(n_jobs=2), dict(n_jobs=3)] + [dict(_isa=i, n_jobs=2) for i in ISAS]
    for v in variants:
        r = sinkhorn.self_label(x, **kw, **v)
        np.testing.assert_array_equal(r.labels, base.labels, err_msg=str(v))
        np.testing.assert_array_equal(r.col_potentials, base.col_potentials, err_msg=str(v))
        np.testing.assert_array_equal(r.row_potentials, base.row_potentials, err_msg=str(v))
        np.testing.assert_array_equal(r.plan, base.plan, err_msg=str(v))
        assert r.history == base.history
    # Fortran order and a strided view: the scalar definition on strided rows, the same numbers
    for y in (np.asfortranarray(x), np.repeat(x, 2, axis=1)[:, ::2]):
        r = sinkhorn.self_label(y, **kw)
        np.testing.assert_array_equal(r.col_potentials, base.col_potentials)
        np.testing.assert_array_equal(r.labels, base.labels)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 2000), st.integers(0, 2**31 - 1), st.sampled_from([1e-3, 1.0, 30.0, 800.0]))
def test_exp_on_every_isa(n, seed, spread):
    x = -np.abs(np.random.default_rng(seed).normal(size=n)) * spread
    x[0] = 0.0
    want = _core.sk_exp(x, 1)
    for isa in ISAS:
        np.testing.assert_array_equal(_core.sk_exp(x, isa), want)
    e = np.exp(x)
    ok = x >= -708.0
    assert want[0] == 1.0
    assert (want[~ok] == 0).all()
    ulp = np.abs(want[ok] - e[ok]) / np.spacing(e[ok])
    assert ulp.max() <= 4


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 2000), st.integers(0, 2**31 - 1), st.sampled_from([1e-3, 1.0, 30.0, 800.0]))
def test_single_precision_exp_on_every_isa(n, seed, spread):
    """The float32-precision exp of float32/float16 scores: the same bits on
    every ISA and in the NumPy reference, within 3e-7 of np.exp."""
    x = -np.abs(np.random.default_rng(seed).normal(size=n)) * spread
    x[0] = 0.0
    want = _core.sk_exp(x, 1, single=True)
    for isa in ISAS:
        np.testing.assert_array_equal(_core.sk_exp(x, isa, single=True), want)
    np.testing.assert_array_equal(ref.exp_single(x), want)
    ok = x >= -708.0
    assert want[0] == 1.0 and (want[~ok] == 0).all()
    e = np.exp(x[ok])
    live = e > 1e-300  # (below: subnormal scale, absolute error only)
    assert (np.abs(want[ok][live] - e[live]) <= 3e-7 * e[live]).all()


def test_float32_scores_take_the_single_precision_exp():
    """float32 and float16 scores: potentials equal the reference's with its
    float32 exp to float64 round-off, and differ from float64 scores' (a test
    that the precision really is chosen by the dtype) by about float32 ulps."""
    x = np.random.default_rng(3).normal(size=(500, 12))
    r64 = sinkhorn.self_label(x, n_iter=4, return_info=True)
    for dt in (np.float32, np.float16):
        xs = x.astype(dt)
        r = sinkhorn.self_label(xs, n_iter=4, return_info=True)
        want = ref.self_label(xs, n_iter=4)
        np.testing.assert_allclose(r.col_potentials, want.col_potentials, rtol=1e-12, atol=1e-11)
        wide = sinkhorn.self_label(xs.astype(np.float64), n_iter=4, return_info=True)
        d = np.abs(r.col_potentials - wide.col_potentials).max()
        assert 0 < d < 1e-4, d
    assert r64.n_iter == 4


def test_threads_really_change_the_chunking_work():
    # a problem big enough that the pass runs parallel (above the kernel's work threshold)
    x = np.random.default_rng(0).normal(size=(5000, 64)).astype(np.float32)
    a = sinkhorn.self_label(x, lam=25, n_iter=3, n_jobs=1, return_info=True)
    b = sinkhorn.self_label(x, lam=25, n_iter=3, n_jobs=2, return_info=True)
    np.testing.assert_array_equal(a.col_potentials, b.col_potentials)
    assert 20.0 * x.size >= 2**18


@pytest.mark.parametrize("seed", range(3))
def test_swav_codes_any_thread_count(seed):
    x = np.random.default_rng(seed).normal(size=(3000, 50)).astype(np.float32)
    q1 = sinkhorn.swav_codes(x, n_jobs=1)
    q2 = sinkhorn.swav_codes(x, n_jobs=2)
    np.testing.assert_array_equal(q1, q2)
