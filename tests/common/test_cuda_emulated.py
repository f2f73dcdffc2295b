"""The Python side of the CUDA path, run on the CPU against an emulated
``labelsift._cuda``.

The emulator (tests/support/cuda_emu.py) implements the contract of each
kernel binding on host memory. With it, everything between the
caller's ``__cuda_array_interface__`` and the result -- reading the
interface, strided copies, labels uploaded once, the confident joint's
layout, the margin batches of prune_by_noise_rate and their ranking under
both tie rules, error rows, results in the caller's type -- runs here and
is compared with the CPU path. The kernels themselves are compared with the
CPU in tests/gpu (on a GPU)."""
import numpy as np
import pytest
from support.cuda_emu import FakeDeviceArray, TorchLike
from support.device_arrays import host_view as layout

import labelsift

def make(n, k, dtype, seed, tied=False):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    if tied:
        P = rng.multinomial(16, np.full(k, 1.0 / k), size=n).astype(np.float64) / 16
    else:
        z = rng.normal(0, 1.5, (n, k))
        z[np.arange(n), y_true] += 3.0
        P = np.exp(z - z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
    y = y_true.copy()
    flip = rng.random(n) < 0.25
    y[flip] = rng.integers(0, k, flip.sum())
    return y, P.astype(dtype)


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("how", ["C", "F", "strided", "reversed"])
@pytest.mark.parametrize("k,tied", [(2, False), (5, True), (40, False), (40, True)])
def test_three_functions_equal_cpu(emulated, dtype, how, k, tied):
    y, P = make(1500, k, dtype, seed=k + 7 * tied, tied=tied)
    d = FakeDeviceArray(layout(P, how))
    assert same(labelsift.get_confident_thresholds(y, d), labelsift.get_confident_thresholds(y, P))
    for calibrate in (True, False):
        got = labelsift.compute_confident_joint(y, d, calibrate=calibrate, return_indices_of_off_diagonals=True)
        want = labelsift.compute_confident_joint(y, P, calibrate=calibrate, return_indices_of_off_diagonals=True)
        assert same(got[0], want[0]) and same(got[1], want[1])
        assert got[0].flags.f_contiguous == want[0].flags.f_contiguous
    for ties in ("cleanlab", "lower_index"):
        with labelsift.options(ties=ties):
            assert same(labelsift.find_label_issues(y, d), labelsift.find_label_issues(y, P))
    assert {"gather_given", "row_pass", "pair_margins"} <= set(emulated.calls)


@pytest.mark.parametrize("filter_by", ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
                                       "predicted_neq_given", "low_normalized_margin", "low_self_confidence"])
@pytest.mark.parametrize("ties", ["cleanlab", "lower_index"])
def test_every_filter_and_ranking(emulated, filter_by, ties):
    y, P = make(1200, 6, np.float32, seed=3, tied=True)
    d = FakeDeviceArray(layout(P, "F"))
    with labelsift.options(ties=ties):
        assert same(labelsift.find_label_issues(y, d, filter_by=filter_by),
                    labelsift.find_label_issues(y, P, filter_by=filter_by))
        for rank_by in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
            assert same(labelsift.find_label_issues(y, d, filter_by=filter_by, return_indices_ranked_by=rank_by),
                        labelsift.find_label_issues(y, P, filter_by=filter_by, return_indices_ranked_by=rank_by))


def test_cleanlab_ties_really_differ_from_lower_index(emulated):
    """The tie rules must matter on this data, or the test above proves little."""
    y, P = make(1200, 6, np.float32, seed=3, tied=True)
    d = FakeDeviceArray(P)
    with labelsift.options(ties="cleanlab"):
        a = labelsift.find_label_issues(y, d)
    with labelsift.options(ties="lower_index"):
        b = labelsift.find_label_issues(y, d)
    assert not np.array_equal(a, b)


def test_margin_batches(emulated, monkeypatch):
    from labelsift._cl import device
    y, P = make(3000, 30, np.float64, seed=4)
    want = labelsift.find_label_issues(y, P)
    monkeypatch.setattr(device, "MARGIN_BATCH", 50)
    assert same(labelsift.find_label_issues(y, FakeDeviceArray(P)), want)


def test_labels_on_the_device(emulated):
    y, P = make(800, 4, np.float32, seed=5)
    ybase = np.zeros(2 * len(y), np.int16)
    ybase[::2] = y
    got = labelsift.find_label_issues(FakeDeviceArray(ybase[::2]), FakeDeviceArray(P))
    assert same(got, labelsift.find_label_issues(y, P))
    with pytest.raises(ValueError, match="not a class index"):
        yb = y.copy()
        yb[17] = 9
        labelsift.find_label_issues(FakeDeviceArray(yb), FakeDeviceArray(P))


@pytest.mark.parametrize("how", ["C", "F", "reversed"])
def test_errors_name_the_same_row(emulated, how):
    y, P = make(2000, 5, np.float32, seed=6)
    for r, c, v in [(1500, 2, np.nan), (1500, 0, np.inf), (1500, 3, -0.5)]:
        Q = P.copy()
        Q[r, c] = v
        Q[1900, 1] = np.nan
        for fn in (labelsift.find_label_issues, labelsift.compute_confident_joint,
                   labelsift.get_confident_thresholds):
            with pytest.raises(ValueError) as want:
                fn(y, Q)
            with pytest.raises(ValueError) as got:
                fn(y, FakeDeviceArray(layout(Q, how)))
            assert str(got.value) == str(want.value) and "1500" in str(got.value)
    Q = P.copy()
    Q[77] *= 0.5
    with pytest.raises(ValueError, match="sums to") as got:
        labelsift.find_label_issues(y, FakeDeviceArray(Q))
    with pytest.raises(ValueError) as want:
        labelsift.find_label_issues(y, Q)
    assert str(got.value) == str(want.value)


def test_torch_in_torch_out(emulated):
    torch = pytest.importorskip("torch")
    y, P = make(1000, 8, np.float32, seed=7)
    d = TorchLike(np.asfortranarray(P))
    for got, want in [(labelsift.find_label_issues(y, d), labelsift.find_label_issues(y, P)),
                      (labelsift.get_confident_thresholds(y, d), labelsift.get_confident_thresholds(y, P)),
                      (labelsift.compute_confident_joint(y, d), labelsift.compute_confident_joint(y, P))]:
        assert isinstance(got, torch.Tensor)
        assert same(got.numpy(), want)
    idx, off = labelsift.compute_confident_joint(y, d, return_indices_of_off_diagonals=True)
    assert isinstance(off, torch.Tensor) and same(off.numpy(), labelsift.compute_confident_joint(
        y, P, return_indices_of_off_diagonals=True)[1])


def test_other_functions_keep_refusing_cuda_arrays(emulated):
    y, P = make(100, 3, np.float32, seed=8)
    with pytest.raises(TypeError, match="no GPU path"):
        labelsift.rank.get_label_quality_scores(y, FakeDeviceArray(P))
    with pytest.raises(TypeError, match="no GPU path"):
        labelsift.count.estimate_joint(y, FakeDeviceArray(P))
