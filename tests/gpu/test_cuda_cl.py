"""The CUDA path of confident learning against the CPU path, bit for bit.

Every test computes a result from device memory (labelsift's own device
buffers behind a ``__cuda_array_interface__``, CuPy arrays, torch tensors)
and from the same values in a NumPy array, and compares them with
``np.array_equal`` (dtypes included). Marked ``gpu``: without a usable CUDA
device every test skips with the device query's reason.
"""
import numpy as np
import pytest

import labelsift
from labelsift._cl import passes
from support.device_arrays import RawDevice, host, to_device

_INFO = labelsift.backend_info()
_REASON = ("no usable CUDA device: " + (_INFO["cuda_reason"] or "the CUDA module is not built")
           if not _INFO["cuda_available"] else "")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _INFO["cuda_available"], reason=_REASON)]

DTYPES = [np.float16, np.float32, np.float64]
KS = [2, 3, 10, 16, 17, 33, 100, 1000]
LAYOUTS = ["C", "F", "strided", "reversed"]
TIES = ["cleanlab", "lower_index"]
FILTERS = ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
           "low_normalized_margin", "low_self_confidence"]


# ---------------------------------------------------------------------------
# device arrays
# ---------------------------------------------------------------------------
def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


# ---------------------------------------------------------------------------
# data: softmax rows with label noise, and rows of sixteenths (many ties)
# ---------------------------------------------------------------------------
def make(n, k, dtype, seed, tied=False):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    if tied:
        p = np.full(k, 1.0 / k)
        P = np.stack([rng.multinomial(16, p) for _ in range(n)]).astype(np.float64) / 16
        P[np.arange(n), y_true] += 0  # rows of sixteenths sum to 1 exactly
    else:
        logits = rng.normal(0, 1.5, (n, k))
        logits[np.arange(n), y_true] += 3.0
        P = np.exp(logits - logits.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
    y = y_true.copy()
    flip = rng.random(n) < 0.2
    y[flip] = rng.integers(0, k, flip.sum())
    P = P.astype(dtype)
    if dtype == np.float16:  # keep row sums within float16's tolerance
        P = (P.astype(np.float64) / P.astype(np.float64).sum(axis=1, keepdims=True)).astype(dtype)
    return y, P


def n_for(k):
    return 3000 if k <= 100 else 600


# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("how", LAYOUTS)
def test_thresholds_and_joint(dtype, k, how):
    y, P = make(n_for(k), k, dtype, seed=k)
    d = to_device(P, how)
    assert same(host(labelsift.get_confident_thresholds(y, d)), labelsift.get_confident_thresholds(y, P))
    for calibrate in (True, False):
        got = labelsift.compute_confident_joint(y, d, calibrate=calibrate, return_indices_of_off_diagonals=True)
        want = labelsift.compute_confident_joint(y, P, calibrate=calibrate, return_indices_of_off_diagonals=True)
        assert same(got[0], want[0]) and same(got[1], want[1])
        # the K x K layout too (calibration's float sums follow it)
        assert got[0].flags.f_contiguous == want[0].flags.f_contiguous


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("how", ["C", "F", "strided"])
@pytest.mark.parametrize("tied", [False, True])
def test_row_pass_outputs(dtype, k, how, tied):
    y, P = make(n_for(k), k, dtype, seed=100 + k, tied=tied)
    pc = passes.prepare(y, P)
    pg = passes.prepare(y, to_device(P, how), device_ok=True)
    assert pg.on_device and not pc.on_device
    gc, tc, rc, cjc, offc = passes.confident_pass(pc, argmax=True, keep=True, max_other=True)
    gg, tg, rg, cjg, offg = passes.confident_pass(pg, argmax=True, keep=True, max_other=True)
    assert same(gg, gc) and same(tg, tc) and same(cjg, cjc) and same(offg, offc)
    for name in ("guess", "argmax", "keep", "max_other"):
        assert same(getattr(rg, name), getattr(rc, name)), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("ties", TIES)
@pytest.mark.parametrize("tied", [False, True])
def test_find_label_issues_default(dtype, k, ties, tied):
    y, P = make(n_for(k), k, dtype, seed=200 + k, tied=tied)
    with labelsift.options(ties=ties):
        want = labelsift.find_label_issues(y, P)
        for how in LAYOUTS:
            assert same(host(labelsift.find_label_issues(y, to_device(P, how))), want), how


@pytest.mark.parametrize("filter_by", FILTERS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [2, 17, 100])
@pytest.mark.parametrize("ties", TIES)
def test_find_label_issues_filters(filter_by, dtype, k, ties):
    y, P = make(2000, k, dtype, seed=300 + k, tied=(k == 17))
    d = to_device(P, "strided")
    with labelsift.options(ties=ties):
        assert same(host(labelsift.find_label_issues(y, d, filter_by=filter_by)),
                    labelsift.find_label_issues(y, P, filter_by=filter_by))
        for rank_by in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
            assert same(host(labelsift.find_label_issues(y, d, filter_by=filter_by, return_indices_ranked_by=rank_by)),
                        labelsift.find_label_issues(y, P, filter_by=filter_by, return_indices_ranked_by=rank_by))


def test_margin_batches(monkeypatch):
    """prune_by_noise_rate in many small batches of classes gives the same mask."""
    from labelsift._cl import device
    y, P = make(4000, 50, np.float32, seed=7)
    want = labelsift.find_label_issues(y, P)
    monkeypatch.setattr(device, "MARGIN_BATCH", 100)
    assert same(host(labelsift.find_label_issues(y, to_device(P))), want)


def test_device_labels_any_integer_dtype_and_stride():
    y, P = make(1000, 7, np.float32, seed=8)
    base = np.zeros(2 * len(y), np.int32)
    base[::2] = y
    yd = RawDevice(base, base[::2])
    assert same(host(labelsift.find_label_issues(yd, to_device(P))), labelsift.find_label_issues(y, P))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [3, 40])
def test_validation_errors_name_the_first_bad_row(dtype, k):
    y, P = make(5000, k, dtype, seed=9)
    for row, col, value, match in [(4100, 1, np.nan, "is NaN"), (4100, 2, np.inf, "is infinite"),
                                    (4100, 0, 1.5, "outside")]:
        Q = P.copy()
        Q[row, col] = value
        Q[4900, 0] = np.nan  # a later bad row: the first one is reported
        for fn in (labelsift.find_label_issues, labelsift.compute_confident_joint,
                   labelsift.get_confident_thresholds):
            with pytest.raises(ValueError) as want:
                fn(y, Q)
            with pytest.raises(ValueError, match=match) as got:
                fn(y, to_device(Q, "F"))
            assert str(got.value) == str(want.value)
    Q = P.copy()
    Q[123] *= 0.5  # a row summing to 0.5
    with pytest.raises(ValueError) as want:
        labelsift.find_label_issues(y, Q)
    with pytest.raises(ValueError, match="sums to") as got:
        labelsift.find_label_issues(y, to_device(Q))
    assert str(got.value) == str(want.value)


def test_per_thread_default_stream_from_the_interface():
    y, P = make(3000, 20, np.float32, seed=10)
    d = to_device(P, "strided", stream=2)  # cudaStreamPerThread
    assert same(host(labelsift.find_label_issues(y, d)), labelsift.find_label_issues(y, P))


# ---------------------------------------------------------------------------
# CuPy and torch inputs: results in the caller's type, on a non-default stream
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["C", "F", "strided", "reversed"])
def test_cupy_in_cupy_out(dtype, how):
    cupy = pytest.importorskip("cupy")
    y, P = make(3000, 30, dtype, seed=11)
    with cupy.cuda.Stream(non_blocking=True):
        d = to_device(P, how, "cupy")
        mask = labelsift.find_label_issues(y, d)
        cj = labelsift.compute_confident_joint(cupy.asarray(y), d)
        t = labelsift.get_confident_thresholds(y, d)
    assert isinstance(mask, cupy.ndarray) and isinstance(cj, cupy.ndarray) and isinstance(t, cupy.ndarray)
    assert same(mask.get(), labelsift.find_label_issues(y, P))
    assert same(cj.get(), labelsift.compute_confident_joint(y, P))
    assert same(t.get(), labelsift.get_confident_thresholds(y, P))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["C", "F", "strided"])
def test_torch_in_torch_out(dtype, how):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    y, P = make(3000, 30, dtype, seed=12)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        d = to_device(P, how, "torch")
        mask = labelsift.find_label_issues(torch.from_numpy(y).cuda(), d)
        cj = labelsift.compute_confident_joint(y, d)
        t = labelsift.get_confident_thresholds(y, d)
    torch.cuda.synchronize()
    for r in (mask, cj, t):
        assert isinstance(r, torch.Tensor) and r.device == d.device
    assert same(mask.cpu().numpy(), labelsift.find_label_issues(y, P))
    assert same(cj.cpu().numpy(), labelsift.compute_confident_joint(y, P))
    assert same(t.cpu().numpy(), labelsift.get_confident_thresholds(y, P))


def test_kernel_errors_become_runtime_errors():
    cuda = __import__("labelsift._cuda", fromlist=["_cuda"])
    with pytest.raises((RuntimeError, ValueError)):
        cuda.pointer_device(0x10)  # not device memory
    with pytest.raises(RuntimeError, match="cudaMalloc"):
        cuda.DeviceBuffer(1 << 60, 0)  # far more than any device holds
