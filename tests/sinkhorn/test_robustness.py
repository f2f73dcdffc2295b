"""No NaN or inf anywhere in the outputs on hard inputs; clear errors on bad ones."""
import sys
import warnings

import numpy as np
import pytest

from labelsift import sinkhorn
from labelsift.reference import sinkhorn as ref
from support.sinkhorn import logits, softmax


def _all_finite(r):
    assert np.isfinite(r.col_potentials).all()
    assert np.isfinite(r.history).all() and np.isfinite(r.error)
    if r.row_potentials is not None:
        assert np.isfinite(r.row_potentials).all()
    if r.plan is not None:
        assert np.isfinite(np.asarray(r.plan)).all()


def _valid_labels(r, k):
    assert r.labels.min() >= 0 and r.labels.max() < k


def test_near_uniform_float32_at_lam_25():
    # probabilities within 1e-3 of 1/K: P^25 in plain float32 underflows (0.01^25 = 1e-50)
    rng = np.random.default_rng(0)
    k = 100
    p = (np.full((3000, k), 1.0 / k) * (1 + 1e-3 * rng.uniform(-1, 1, size=(3000, k)))).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    with np.errstate(under="ignore"):
        assert (p.astype(np.float32) ** np.float32(25) == 0).all()
    r = sinkhorn.self_label(p, kind="probs", lam=25, return_info=True, return_plan=True)
    _all_finite(r)
    _valid_labels(r, k)
    assert r.converged and r.error <= 1e-3
    sizes = r.class_sizes()
    assert sizes.min() > 0  # every class used (near equipartition)


def test_dead_class():
    x = logits(2000, 10, seed=1)
    x[:, 3] = -1e4  # a class no sample scores
    r = sinkhorn.self_label(x, lam=25, return_info=True, return_plan=True)
    _all_finite(r)
    _valid_labels(r, 10)
    assert r.converged and r.error <= 1e-3
    assert abs(r.class_sizes()[3] - 200) <= 20  # the marginal gives it its share
    want = ref.self_label(x, lam=25)
    assert want.n_iter == r.n_iter


def test_lam_100():
    x = logits(1500, 20, seed=2)
    r = sinkhorn.self_label(x, lam=100, return_info=True, return_plan=True)
    _all_finite(r)
    _valid_labels(r, 20)
    assert r.error <= 1e-3


@pytest.mark.parametrize("n,k", [(50, 1), (1, 1), (1, 7), (5, 30), (30, 31)])
def test_degenerate_shapes(n, k):
    x = logits(n, k, seed=n + k).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # N < K cannot meet an equipartition of labels
        r = sinkhorn.self_label(x, lam=25, return_info=True, return_plan=True, max_iter=200)
    _all_finite(r)
    _valid_labels(r, k)
    np.testing.assert_allclose(np.asarray(r.plan, np.float64).sum(1), 1.0 / n, rtol=1e-5)
    if k == 1:
        assert (r.labels == 0).all() and r.error < 1e-12
    assert r.converged == (r.error <= 1e-3)
    q = sinkhorn.swav_codes(x, epsilon=0.05)
    assert np.isfinite(q).all()
    rb = sinkhorn.rebalance(softmax(x), np.full(k, 1.0 / k))
    assert np.isfinite(rb).all()


def test_extreme_scores_stay_finite():
    x = logits(400, 8, seed=3) * 1e3  # lam * x ~ 1e5 apart
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a near-hard assignment converges slowly; it stays finite
        r = sinkhorn.self_label(x, lam=25, return_info=True, return_plan=True, max_iter=50)
    _all_finite(r)
    _valid_labels(r, 8)
    q = sinkhorn.swav_codes(x, epsilon=0.01)
    assert np.isfinite(q).all()


@pytest.mark.parametrize("bad,msg", [
    (np.nan, r"scores\[3, 2\] = nan is NaN"),
    (np.inf, r"scores\[3, 2\] = inf is infinite"),
    (-np.inf, r"scores\[3, 2\] = -inf is infinite"),
])
@pytest.mark.parametrize("mode", ["fused", "sela"])
def test_non_finite_scores(bad, msg, mode):
    x = logits(100, 5, seed=0)
    x[3, 2] = bad
    with pytest.raises(ValueError, match=msg):
        sinkhorn.self_label(x, mode=mode)
    with pytest.raises(ValueError, match=msg):
        sinkhorn.swav_codes(x)


def test_overflowing_scale():
    x = logits(10, 3, seed=0)
    x[4, 1] = 1e308
    with pytest.raises(ValueError, match=r"scores\[4, 1\].*overflows"):
        sinkhorn.self_label(x, lam=25)


def test_bad_probs():
    p = softmax(logits(20, 4))
    p[2, 1] = -0.1
    with pytest.raises(ValueError, match=r"scores\[2, 1\] = .* is negative"):
        sinkhorn.self_label(p, kind="probs")
    with pytest.raises(ValueError, match="pred_probs"):
        sinkhorn.rebalance(p, np.full(4, 0.25))


@pytest.mark.parametrize("marg,err,msg", [
    ([0.5, 0.6, -0.1], ValueError, "must be positive"),
    ([0.5, 0.5, 0.0], ValueError, "must be positive"),
    ([0.3, 0.3, 0.3], ValueError, "sums to 0.9"),
    ([0.5, 0.5], ValueError, "has 2 entries, expected 3"),
    ([[0.5, 0.5, 0.0]], ValueError, "must be 1-D"),
    ([0.5, np.nan, 0.5], ValueError, "not finite"),
    (["a", "b", "c"], TypeError, "numeric"),
])
def test_bad_marginals(marg, err, msg):
    x = logits(30, 3)
    with pytest.raises(err, match=msg):
        sinkhorn.self_label(x, marginals=marg)


def test_bad_shapes_and_arguments():
    with pytest.raises(ValueError, match="2-D"):
        sinkhorn.self_label(np.zeros(5))
    with pytest.raises(ValueError, match="2-D"):
        sinkhorn.self_label(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="empty"):
        sinkhorn.self_label(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="0 columns"):
        sinkhorn.self_label(np.zeros((3, 0)))
    with pytest.raises(TypeError, match="floating|real"):
        sinkhorn.self_label(np.array([["a", "b"]]))
    x = logits(20, 4)
    for kw, err in [({"kind": "softmax"}, ValueError), ({"lam": 0}, ValueError), ({"lam": np.inf}, ValueError),
                    ({"lam": "x"}, TypeError), ({"tol": -1}, ValueError), ({"n_iter": -1}, ValueError),
                    ({"n_iter": 1.5}, ValueError), ({"mode": "swav"}, ValueError), ({"log_domain": "yes"}, ValueError),
                    ({"init": np.zeros(3)}, ValueError), ({"init": [0, 0, np.inf, 0]}, ValueError),
                    ({"row_weights": np.ones(20)}, ValueError), ({"device": "cuda"}, ValueError),
                    ({"group": object()}, (RuntimeError, ImportError))]:
        with pytest.raises(err):
            sinkhorn.self_label(x, **kw)
    with pytest.raises(ValueError, match="epsilon"):
        sinkhorn.swav_codes(x, epsilon=0)
    with pytest.raises(ValueError, match="n_iter"):
        sinkhorn.swav_codes(x, n_iter=0)
    with pytest.raises(ValueError, match="target_prior"):
        sinkhorn.rebalance(softmax(x), np.full(3, 1 / 3))


def test_unconverged_warns():
    x = logits(500, 10, seed=0, skew=2.0)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        r = sinkhorn.self_label(x, lam=25, tol=1e-12, max_iter=3, return_info=True)
    assert not r.converged and r.n_iter == 3


def test_torch_is_not_imported():
    assert "torch" not in sys.modules or True  # another test may import it; check in a fresh process:
    import subprocess
    code = "import labelsift, labelsift.sinkhorn, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rebalance_matches_reference():
    x = logits(1000, 6, seed=9, skew=1.5)
    p = softmax(x)
    pri = np.array([0.1, 0.1, 0.2, 0.2, 0.15, 0.25])
    got = sinkhorn.rebalance(p, pri)
    want = ref.rebalance(p, pri)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-12)
    assert np.abs(got.mean(0) - pri).sum() <= 1e-6
    g32 = sinkhorn.rebalance(p.astype(np.float32), pri)
    assert g32.dtype == np.float32
