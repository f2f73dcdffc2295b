"""The CUDA Sinkhorn path (src/cuda/sinkhorn/sk_kernels.cu) against the CPU.

What must be equal, and how it is checked:

* one pass of the kernel (``labelsift._cuda.sk_pass``) against the CPU's
  ``_core.sk_pass`` on the same f: labels, the plan and the column sums
  ``np.array_equal`` (the column partials are added in the CPU's chunk and
  row order, see the kernel's header); the row potentials g and the column
  maxima within the bound of the one non-shared function, log (CUDA's log
  is within 1 ulp of the correctly rounded value, glibc's within 1 ulp
  too):  |g_dev - g_cpu| <= G_TOL(g, b, K) = 8 * 2**-52 * (|log b_i| + log K
  + |g_i| + 1), the same for colmax with max_i(|log b_i|) and |colmax_k|;
* the whole loop (self_label, swav_codes) on device memory against the
  same call on NumPy: labels, plan, column potentials, error history and
  iteration counts ``np.array_equal`` wherever the start does not take a
  log on the device (fused mode; SeLa/SwAV's uniform start) -- SeLa's start
  on logits takes the row log-sum-exp from a pass (its g), so there the
  potentials are compared with a relative 1e-12 and the labels may differ
  only on rows whose top two classes are within 1e-9;
* bad rows: the same error message as the CPU.

Marked ``gpu``: without a usable CUDA device every test skips with the
device query's reason. tests/common/test_gpu_suite_emulated.py runs this
file against the host emulation to check its own logic.
"""
import math

import numpy as np
import pytest

import labelsift
from labelsift import sinkhorn
from labelsift._common.backend import core
from labelsift._common.cuda_arrays import parse
from support.device_arrays import host, to_device

_INFO = labelsift.backend_info()
_REASON = ("no usable CUDA device: " + (_INFO["cuda_reason"] or "the CUDA module is not built")
           if not _INFO["cuda_available"] else "")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _INFO["cuda_available"], reason=_REASON)]

DTYPES = [np.float16, np.float32, np.float64]
CODE = {np.dtype(np.float16): 0, np.dtype(np.float32): 1, np.dtype(np.float64): 2}
LAYOUTS = ["C", "F", "strided", "reversed"]
EPS = 2.0 ** -52


def cuda():
    return __import__("labelsift._cuda", fromlist=["_cuda"])


def same(a, b):
    a, b = host(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def scores(n, k, dtype, seed, scale=1.0, ties=False):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: many exact ties between classes
        z = rng.integers(-3, 3, (n, k)).astype(np.float64)
    else:
        z = rng.normal(0, scale, (n, k))
        z[np.arange(n), rng.integers(0, k, n)] += 2.0 * scale
    return z.astype(dtype)


def g_tol(g, logb, k):
    return 8 * EPS * (np.abs(logb) + math.log(k) + np.abs(g) + 1.0)


# ---------------------------------------------------------------------------
# one pass: the kernel against the CPU kernel
# ---------------------------------------------------------------------------
def device_pass(d, n, k, lam, f, b, unit_rows, plan_dtype, check=True):
    c = cuda()
    a = parse(d)
    nb = int(c.sk_work_bytes(n, k))
    work = c.DeviceBuffer(nb, 0)
    lab, g = c.DeviceBuffer(8 * n, 0), c.DeviceBuffer(8 * n, 0)
    plan = c.DeviceBuffer(n * k * np.dtype(plan_dtype).itemsize, 0)
    bbuf = None
    if b is not None:
        bbuf = c.DeviceBuffer(8 * n, 0)
        c.copy_htod(bbuf.ptr, np.ascontiguousarray(b), 0, 0)
    colsum, colmax = np.empty(k), np.empty(k)
    bad = c.sk_pass(a.ptr, n, k, a.strides[0], a.strides[1], CODE[a.dtype], lam, np.ascontiguousarray(f), 
                    0 if bbuf is None else bbuf.ptr, 1.0 / n, colsum, colmax, lab.ptr, g.ptr, plan.ptr,
                    CODE[np.dtype(plan_dtype)], unit_rows, check, work.ptr, nb, 0, 0)
    out = {"labels": np.empty(n, np.int64), "g": np.empty(n), "plan": np.empty((n, k), plan_dtype)}
    c.copy_dtoh(out["labels"], lab.ptr, 0, 0)
    c.copy_dtoh(out["g"], g.ptr, 0, 0)
    c.copy_dtoh(out["plan"], plan.ptr, 0, 0)
    return bad, colsum, colmax, out


def cpu_pass(X, lam, f, b, unit_rows, plan_dtype, check=True):
    n, k = X.shape
    colsum, colmax = np.empty(k), np.empty(k)
    out = {"labels": np.empty(n, np.int64), "g": np.empty(n), "plan": np.empty((n, k), plan_dtype)}
    bad = core().sk_pass(X, lam, f, b, 1.0 / n, colsum, colmax, out["labels"], out["g"], out["plan"], unit_rows,
                         check, 0, 0)
    return bad, colsum, colmax, out


def compare_pass(X, d, lam, f, b, unit_rows, plan_dtype, check=True):
    n, k = X.shape
    got = device_pass(d, n, k, lam, f, b, unit_rows, plan_dtype, check)
    want = cpu_pass(X, lam, f, b, unit_rows, plan_dtype, check)
    assert got[0] == want[0]
    assert same(got[1], want[1]), "colsum"
    logb = np.log(b) if b is not None else np.full(n, math.log(1.0 / n))
    cm_tol = 8 * EPS * (np.abs(logb).max() + math.log(k) + np.abs(want[2]) + 1.0)
    assert np.all(np.abs(got[2] - want[2]) <= cm_tol), "colmax"
    assert same(got[3]["labels"], want[3]["labels"]), "labels"
    assert same(got[3]["plan"], want[3]["plan"]), "plan"
    dg = np.abs(got[3]["g"] - want[3]["g"])
    assert np.all(dg <= g_tol(want[3]["g"], logb, k)), f"g: worst {dg.max()!r}"
    return got, want


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", LAYOUTS)
@pytest.mark.parametrize("n,k", [(1, 1), (5, 3), (64, 8), (65, 9), (700, 33), (20000, 7), (3000, 1000)])
def test_one_pass_equals_cpu(dtype, how, n, k):
    X = scores(n, k, dtype, seed=n + k)
    d = to_device(X, how)
    rng = np.random.default_rng(k)
    f = rng.normal(0, 2.0, k)
    for lam, unit_rows, plan_dtype in ((25.0, False, np.float64), (1.0, True, np.float32)):
        compare_pass(X, d, lam, f, None, unit_rows, plan_dtype)


def test_one_pass_row_weights_ties_and_dead_columns():
    n, k = 5000, 40
    X = scores(n, k, np.float32, seed=11, ties=True)
    X[:, 3] = -1e4  # a dead class: its mass underflows, colmax carries it
    d = to_device(X, "F")
    rng = np.random.default_rng(12)
    b = rng.random(n) + 0.1
    b /= b.sum()
    got, want = compare_pass(X, d, 25.0, np.zeros(k), b, False, np.float64)
    assert np.bincount(want[3]["labels"], minlength=k).max() > n // k  # ties resolved to the lower class


@pytest.mark.parametrize("how", ["C", "F"])
def test_one_pass_bad_rows(how):
    X = scores(3000, 12, np.float32, seed=13)
    X[1700, 5] = np.nan
    X[2900, 0] = np.inf
    d = to_device(X, how)
    for check in (True, False):
        got, want = compare_pass(X, d, 25.0, np.zeros(12), None, False, np.float64, check)
        assert got[0] == (1700 if check else -1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["C", "F", "reversed"])
def test_col_lse_equals_cpu(dtype, how):
    c = cuda()
    for n, k in ((1, 1), (70, 5), (20000, 9), (3000, 300)):
        X = scores(n, k, dtype, seed=n)
        a = parse(d := to_device(X, how))
        rpc = int(core().sk_chunk_rows(n))
        nch = -(-n // rpc)
        M, S = np.empty(nch * k), np.empty(nch * k)
        nb = int(c.sk_work_bytes(n, k))
        work = c.DeviceBuffer(nb, 0)
        lb = np.log(np.full(n, 1.0 / n)) + np.linspace(-1, 1, n)
        lbb = c.DeviceBuffer(8 * n, 0)
        c.copy_htod(lbb.ptr, lb, 0, 0)
        for lbp, lbh in ((0, None), (lbb.ptr, lb)):
            c.sk_col_lse(a.ptr, n, k, a.strides[0], a.strides[1], CODE[a.dtype], 20.0, lbp, -math.log(n), M, S,
                         work.ptr, nb, 0, 0)
            got = core().sk_lse_finish(M, S, nch, k)
            assert same(got, core().sk_col_lse(X, 20.0, lbh, -math.log(n), 0)), (n, k)
        del d


# ---------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------
def same_result(got, want):
    assert same(got.labels, want.labels)
    assert same(got.col_potentials, want.col_potentials)
    assert got.n_iter == want.n_iter and got.history == want.history
    if want.plan is not None:
        assert same(got.plan, want.plan)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", LAYOUTS)
def test_self_label_equals_cpu(dtype, how):
    X = scores(6000, 50, dtype, seed=21)
    d = to_device(X, how)
    for kw in (dict(n_iter=10), dict(tol=1e-3), dict(mode="sela", n_iter=11, kind="log_probs")):
        same_result(sinkhorn.self_label(d, return_info=True, return_plan=True, **kw),
                    sinkhorn.self_label(X, return_info=True, return_plan=True, **kw))


def test_self_label_sela_logits_within_bound():
    X = scores(6000, 50, np.float32, seed=22)
    d = to_device(X, "C")
    got = sinkhorn.self_label(d, mode="sela", n_iter=21, return_info=True)
    want = sinkhorn.self_label(X, mode="sela", n_iter=21, return_info=True)
    np.testing.assert_allclose(got.col_potentials, want.col_potentials, rtol=1e-12, atol=1e-12)
    diff = np.flatnonzero(host(got.labels) != want.labels)
    t = 25.0 * X[diff].astype(np.float64) + want.col_potentials
    top2 = np.sort(t, axis=1)[:, -2:] if len(diff) else np.zeros((0, 2))
    assert np.all(top2[:, 1] - top2[:, 0] <= 1e-9 * (1 + np.abs(top2[:, 1])))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("framework", ["raw", "torch", "cupy"])
def test_swav_codes_equal_cpu(dtype, framework):
    rng = np.random.default_rng(23)
    Z = rng.normal(size=(4096, 128))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    C = rng.normal(size=(300, 128))
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    X = (Z @ C.T).astype(dtype)
    d = to_device(X, "C", framework)
    for eps, it in ((0.05, 3), (0.01, 3), (0.003, 5)):
        got = sinkhorn.swav_codes(d, epsilon=eps, n_iter=it)
        assert type(got).__module__.split(".")[0] == {"raw": "numpy", "torch": "torch", "cupy": "cupy"}[framework]
        assert same(got, sinkhorn.swav_codes(X, epsilon=eps, n_iter=it))
        assert np.isfinite(host(got).astype(np.float64)).all()


def test_torch_labels_plan_and_stream():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    X = scores(5000, 100, np.float32, seed=24)
    want_l, want_p = sinkhorn.self_label(X, n_iter=8, return_plan=True)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        d = torch.from_numpy(X).cuda()
        lab, plan = sinkhorn.self_label(d, n_iter=8, return_plan=True)
        assert lab.device == d.device and plan.device == d.device
    s.synchronize()
    assert same(lab, want_l) and same(plan, want_p)
    g = torch.from_numpy(X).cuda().requires_grad_(True)
    assert same(sinkhorn.self_label(g, n_iter=8), want_l)


def test_bad_rows_same_message():
    X = scores(4000, 10, np.float32, seed=25)
    X[3333, 4] = np.nan
    d = to_device(X, "F")
    for call in (lambda a: sinkhorn.self_label(a, n_iter=2), lambda a: sinkhorn.swav_codes(a),
                 lambda a: sinkhorn.self_label(a, mode="sela", n_iter=2)):
        with pytest.raises(ValueError) as want:
            call(X)
        with pytest.raises(ValueError) as got:
            call(d)
        assert str(got.value) == str(want.value) and "3333" in str(got.value)
