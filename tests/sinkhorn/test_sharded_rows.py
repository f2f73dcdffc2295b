"""The Sinkhorn loop over rows split between workers (ranks as threads of
one process, labelsift._sinkhorn.sharded.ThreadComm) equals the single
process's run bit for bit: labels, plan, potentials, iteration counts --
for any split, including chunks spread over several workers and empty ones."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelsift._common.backend import threads
from labelsift._sinkhorn import engine
from labelsift._sinkhorn.sharded import ShardRows, ThreadComm


def _problem(X, lam, a):
    return engine.Problem(X, lam, a, None, threads(None))


def _run(X, lam, a, bounds, **kw):
    def body(comm):
        lo, hi = bounds[comm.rank], bounds[comm.rank + 1]
        pb = _problem(X[lo:hi], lam, a)
        pb.shard = ShardRows(comm, hi - lo)
        return engine.run(pb, **kw)
    res, errs = ThreadComm.run(len(bounds) - 1, body)
    for e in errs:
        if e is not None:
            raise e
    return res


@st.composite
def cases(draw):
    n = draw(st.integers(1, 400))
    k = draw(st.integers(2, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = (rng.normal(size=(n, k)) * draw(st.sampled_from([0.5, 3.0]))).astype(
        draw(st.sampled_from([np.float16, np.float32, np.float64])))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    a = rng.dirichlet(np.ones(k) * 3)
    return X, a, [0, *cuts, n]


@settings(max_examples=40, deadline=None)
@given(cases(), st.sampled_from([("fused", None, 6), ("fused", None, None), ("sela", "softmax", 11),
                                 ("sela", "uniform", 11)]))
def test_sharded_loop_equals_one_process(case, plan):
    X, a, bounds = case
    mode, start, n_iter = plan
    kw = dict(mode=mode, n_iter=n_iter, start=start, want_plan=True, plan_dtype=np.float64,
              want_row_potentials=True, tol=1e-3, max_iter=50)
    want = engine.run(_problem(X, 7.0, a), **kw)
    got = _run(X, 7.0, a, bounds, **kw)
    assert np.array_equal(np.concatenate([r.labels for r in got]), want.labels)
    assert np.array_equal(np.concatenate([r.plan for r in got]), want.plan)
    assert np.array_equal(np.concatenate([r.row_potentials for r in got]), want.row_potentials)
    for r in got:
        assert np.array_equal(r.col_potentials, want.col_potentials)
        assert r.n_iter == want.n_iter and r.history == want.history


def test_chunks_over_many_workers_and_a_bad_value():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 4))
    a = np.full(4, 0.25)
    bounds = [0, 1, 2, 3, 40, 40, 2999, 3000]  # the first 64-row chunk spans five workers
    want = engine.run(_problem(X, 3.0, a), n_iter=4)
    got = _run(X, 3.0, a, bounds, n_iter=4)
    assert np.array_equal(np.concatenate([r.labels for r in got]), want.labels)
    X[2500, 2] = np.nan
    with pytest.raises(ValueError) as one:
        engine.run(_problem(X, 3.0, a), n_iter=4)
    with pytest.raises(ValueError) as sharded:
        _run(X, 3.0, a, bounds, n_iter=4)
    assert str(sharded.value) == str(one.value) and "2500" in str(one.value)
