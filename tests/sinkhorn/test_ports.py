"""SeLa mode against a port of SeLa's optimize_L_sk, and swav_codes against a
port of SwAV's distributed_sinkhorn (labelsift.reference.sinkhorn)."""
import numpy as np
import pytest

from labelsift import sinkhorn
from labelsift.reference import sinkhorn as ref
from support.sinkhorn import assert_labels_near_ties, logits, softmax


@pytest.mark.parametrize("n,k,lamb,tol,kind", [
    (2000, 20, 25, 1e-1, "probs"),      # SeLa's ImageNet settings
    (1500, 10, 10, 1e-2, "probs"),      # its CIFAR settings
    (1000, 30, 25, 1e-1, "logits"),     # SeLa's P is the softmax of the logits
    (800, 12, 10, 1e-2, "log_probs"),
])
def test_sela_mode_equals_optimize_L_sk(n, k, lamb, tol, kind):
    x = logits(n, k, seed=n, scale=0.25, skew=1.0)
    p = softmax(x)
    want_labels, want_iters = ref.sela_optimize_L_sk(p, lamb=lamb, tol=tol)
    arg = {"probs": p, "logits": x, "log_probs": np.log(p)}[kind]
    got = sinkhorn.self_label(arg, kind=kind, lam=lamb, mode="sela", tol=tol, return_info=True)
    assert got.n_iter == want_iters
    assert got.n_iter % 10 == 1
    assert_labels_near_ties(got.labels, want_labels, lamb * np.log(p), got.col_potentials, 1.0, min_equal=0.999)
    # the float64 reference of the same mode agrees too
    r = ref.self_label(arg, kind=kind, lam=lamb, mode="sela", tol=tol)
    assert r.n_iter == want_iters
    assert [i for i, _ in got.sela_history] == [i for i, _ in r.sela_history]
    np.testing.assert_allclose([e for _, e in got.sela_history], [e for _, e in r.sela_history], rtol=1e-7)


def test_sela_mode_fixed_iterations_and_scaling_loop():
    x = logits(700, 9, seed=2, scale=0.3)
    p = softmax(x)
    got = sinkhorn.self_label(p, kind="probs", lam=10, mode="sela", n_iter=4, return_info=True)
    plain = sinkhorn.self_label(p, kind="probs", lam=10, mode="sela", n_iter=4, log_domain=False, return_info=True)
    assert got.n_iter == plain.n_iter == 4
    np.testing.assert_array_equal(got.labels, plain.labels)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-11), (np.float32, 2e-5)])
@pytest.mark.parametrize("b,k,eps,iters", [(256, 100, 0.05, 3), (100, 300, 0.05, 3), (64, 10, 0.1, 5), (50, 7, 0.03, 1)])
def test_swav_codes_equal_the_port_where_finite(dtype, rtol, b, k, eps, iters):
    rng = np.random.default_rng(b * k)
    z = rng.normal(size=(b, 16))
    c = rng.normal(size=(k, 16))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    out = (z @ c.T).astype(dtype)  # cosine scores in [-1, 1], as SwAV's
    want = ref.swav_distributed_sinkhorn(out, eps, iters)
    assert np.isfinite(want).all()
    got = sinkhorn.swav_codes(out, epsilon=eps, n_iter=iters)
    assert got.dtype == dtype and got.shape == (b, k)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=10 * rtol)


def test_swav_codes_stay_finite_where_swav_overflows():
    rng = np.random.default_rng(0)
    out = (rng.normal(size=(128, 50)) * 8).astype(np.float32)  # not normalised: exp(out / 0.05) overflows
    with np.errstate(all="ignore"):
        port = ref.swav_distributed_sinkhorn(out, 0.05, 3)
    assert not np.isfinite(port).all()
    got = sinkhorn.swav_codes(out, epsilon=0.05)
    assert np.isfinite(got).all()
    want = ref.swav_codes(out.astype(np.float64), 0.05, 3)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-5)


def test_swav_codes_torch_round_trip():
    torch = pytest.importorskip("torch", reason="torch is optional; the DLPack path needs it")
    out = torch.randn(32, 10, dtype=torch.float32)
    got = sinkhorn.swav_codes(out, epsilon=0.5)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), sinkhorn.swav_codes(out.numpy(), epsilon=0.5))
