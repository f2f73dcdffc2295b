"""The Python side of the CUDA Sinkhorn path (labelsift._sinkhorn.device),
run on the CPU against the emulated ``labelsift._cuda``
(tests/support/cuda_emu.py: sk_pass / sk_col_lse are the CPU kernels on the
host memory behind the fake device pointers).

What this checks: CUDA arrays are routed to the device loop (and only the
paths without a kernel to a host copy); descriptors (pointer, strides,
dtype), f, row weights and log row weights reach the kernels intact; the
work buffer is sized by sk_work_bytes; labels / plan / row potentials come
back in the caller's kind and dtype; error rows are named as on the CPU.
Every result is compared with the CPU path with np.array_equal. The kernels
themselves are compared with the CPU in tests/gpu/test_cuda_sinkhorn.py."""
import numpy as np
import pytest
from support.cuda_emu import FakeDeviceArray, TorchLike
from support.device_arrays import host_view as layout

from labelsift import sinkhorn


def scores(n, k, dtype, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.0, (n, k))
    z[np.arange(n), rng.integers(0, k, n)] += 2.0
    return z.astype(dtype)


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def same_result(got, want):
    assert same(got.labels, want.labels)
    assert same(got.col_potentials, want.col_potentials)
    assert got.n_iter == want.n_iter and got.history == want.history and got.converged == want.converged
    assert got.sela_history == want.sela_history
    for name in ("plan", "row_potentials"):
        g, w = getattr(got, name), getattr(want, name)
        assert (g is None) == (w is None)
        if g is not None:
            assert same(g, w), name


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("how", ["C", "F", "strided", "reversed"])
def test_self_label_equals_cpu(emulated, dtype, how):
    X = scores(700, 13, dtype, seed=1)
    d = FakeDeviceArray(layout(X, how))
    for kw in (dict(n_iter=4), dict(tol=1e-2), dict(mode="sela", tol=0.5, kind="log_probs"),
               dict(mode="sela", n_iter=3, kind="logits")):
        got = sinkhorn.self_label(d, return_info=True, return_plan=True, **kw)
        want = sinkhorn.self_label(X, return_info=True, return_plan=True, **kw)
        same_result(got, want)
        assert same(sinkhorn.self_label(d, **kw), sinkhorn.self_label(X, **kw))
    assert "sk_pass" in emulated.calls and "sk_col_lse" in emulated.calls


def test_self_label_options_equal_cpu(emulated):
    X = scores(1500, 9, np.float32, seed=2)
    rng = np.random.default_rng(3)
    a = rng.random(9) + 0.2
    a /= a.sum()
    b = rng.random(1500) + 0.1
    b /= b.sum()
    d = FakeDeviceArray(np.asfortranarray(X))
    for kw in (dict(marginals=a, n_iter=6), dict(row_weights=b, n_iter=6), dict(row_weights=b, mode="sela", n_iter=4),
               dict(lam=3.0, tol=1e-4), dict(init=np.linspace(-1, 1, 9), n_iter=2), dict(n_iter=0)):
        same_result(sinkhorn.self_label(d, return_info=True, **kw), sinkhorn.self_label(X, return_info=True, **kw))
    # the number of passes is the CPU's: one per iteration plus the final one
    emulated.calls = []
    sinkhorn.self_label(d, n_iter=5)
    assert emulated.calls.count("sk_pass") == 6


def test_callback_and_history(emulated):
    X = scores(400, 5, np.float64, seed=4)
    seen_d, seen_h = [], []
    sinkhorn.self_label(FakeDeviceArray(X), tol=1e-6, callback=lambda j, e: seen_d.append((j, e)))
    sinkhorn.self_label(X, tol=1e-6, callback=lambda j, e: seen_h.append((j, e)))
    assert seen_d == seen_h and len(seen_d) > 2


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("how", ["C", "F", "reversed"])
def test_swav_codes_equal_cpu(emulated, dtype, how):
    X = (scores(256, 30, dtype, seed=5) / 4).astype(dtype)
    for eps, it in ((0.05, 3), (0.5, 1), (0.01, 7)):
        got = sinkhorn.swav_codes(FakeDeviceArray(layout(X, how)), epsilon=eps, n_iter=it)
        assert same(got, sinkhorn.swav_codes(X, epsilon=eps, n_iter=it))
        assert got.dtype == X.dtype
    assert "sk_pass" in emulated.calls


def test_host_copy_paths_equal_cpu(emulated):
    rng = np.random.default_rng(6)
    P = rng.dirichlet(np.ones(6), 500).astype(np.float32)
    d = FakeDeviceArray(np.asfortranarray(P))
    assert same(sinkhorn.self_label(d, kind="probs", n_iter=3), sinkhorn.self_label(P, kind="probs", n_iter=3))
    assert "sk_pass" not in emulated.calls  # kind="probs" has no kernel: host copy, CPU loop
    X = scores(300, 4, np.float64, seed=7)
    assert same(sinkhorn.self_label(FakeDeviceArray(X), device="cpu", n_iter=3), sinkhorn.self_label(X, n_iter=3))
    assert same(sinkhorn.self_label(FakeDeviceArray(X), log_domain=False, n_iter=3),
                sinkhorn.self_label(X, log_domain=False, n_iter=3))
    assert same(sinkhorn.swav_codes(FakeDeviceArray(X), device="cpu"), sinkhorn.swav_codes(X))
    assert "sk_pass" not in emulated.calls


def test_device_argument(emulated):
    X = scores(100, 3, np.float32, seed=8)
    assert same(sinkhorn.self_label(FakeDeviceArray(X), device="cuda", n_iter=2), sinkhorn.self_label(X, n_iter=2))
    assert same(sinkhorn.swav_codes(FakeDeviceArray(X), device="cuda:0"), sinkhorn.swav_codes(X))
    with pytest.raises(ValueError, match="moving host scores to a GPU is not implemented"):
        sinkhorn.self_label(X, device="cuda")
    with pytest.raises(ValueError, match="moving host scores"):
        sinkhorn.swav_codes(X, device="cuda")
    with pytest.raises(ValueError, match="live on cuda:0"):
        sinkhorn.self_label(FakeDeviceArray(X), device="cuda:1")
    with pytest.raises(ValueError, match="is not one of"):
        sinkhorn.self_label(FakeDeviceArray(X), device="tpu")
    with pytest.raises(TypeError, match="not supported"):
        sinkhorn.self_label(FakeDeviceArray(X.astype(np.int32)))
    with pytest.raises(ValueError, match="2-D"):
        sinkhorn.self_label(FakeDeviceArray(X[0]))


@pytest.mark.parametrize("how", ["C", "F", "reversed"])
def test_errors_name_the_same_row(emulated, how):
    X = scores(2000, 5, np.float32, seed=9)
    for r, c, v in [(1500, 2, np.nan), (1500, 0, np.inf), (1500, 4, 3e38)]:
        Q = X.copy()
        Q[r, c] = v
        Q[1900, 1] = np.nan
        for kw in (dict(n_iter=2), dict(mode="sela", n_iter=2), dict(mode="sela", n_iter=2, kind="log_probs")):
            lam = 1e300 if v == 3e38 else 25.0
            with pytest.raises(ValueError) as want:
                sinkhorn.self_label(Q, lam=lam, **kw)
            with pytest.raises(ValueError) as got:
                sinkhorn.self_label(FakeDeviceArray(layout(Q, how)), lam=lam, **kw)
            assert str(got.value) == str(want.value)
            assert "1500" in str(got.value) or v == 3e38
        with pytest.raises(ValueError) as want:
            sinkhorn.swav_codes(Q)
        with pytest.raises(ValueError) as got:
            sinkhorn.swav_codes(FakeDeviceArray(layout(Q, how)))
        assert str(got.value) == str(want.value)


def test_torch_in_torch_out(emulated):
    torch = pytest.importorskip("torch")
    X = scores(600, 7, np.float32, seed=10)
    d = TorchLike(np.asfortranarray(X))
    lab = sinkhorn.self_label(d, n_iter=3)
    assert isinstance(lab, torch.Tensor) and same(lab.numpy(), sinkhorn.self_label(X, n_iter=3))
    lab, plan = sinkhorn.self_label(d, n_iter=3, return_plan=True)
    wl, wp = sinkhorn.self_label(X, n_iter=3, return_plan=True)
    assert isinstance(plan, torch.Tensor) and same(plan.numpy(), wp) and same(lab.numpy(), wl)
    for dt in (np.float16, np.float32, np.float64):
        Y = X.astype(dt)
        q = sinkhorn.swav_codes(TorchLike(Y))
        assert isinstance(q, torch.Tensor) and same(q.numpy(), sinkhorn.swav_codes(Y))
    # the host-copy paths also answer in torch
    q = sinkhorn.self_label(TorchLike(np.exp(X) / np.exp(X).sum(1, keepdims=True)), kind="probs", n_iter=2)
    assert isinstance(q, torch.Tensor)
