"""Shards whose rows are CUDA arrays (labelsift._cl.sharded with the device
passes of labelsift._cl.device), run against the emulated ``labelsift._cuda``
of tests/support/cuda_emu.py: every result equals the single-process call on
the host rows, whatever mix of host and device shards (strided device
layouts, an empty device shard, labels on the device), and no device shard is
ever copied to the host whole. The gloo run of the same (one rank's rows on
the emulated device) is in test_torch_gloo.py; the kernels themselves are
compared with the CPU on a GPU in tests/gpu."""
import numpy as np
import pytest
from support.cuda_emu import Emu, FakeDeviceArray, TorchLike
from support.device_arrays import host_view as layout

import labelsift
from labelsift._cl import sharded
from labelsift._common import arrays

FILTERS = ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
           "low_normalized_margin", "low_self_confidence"]


@pytest.fixture
def emulated(monkeypatch):
    """The emulated labelsift._cuda as the device path's module (as tests/common/conftest.py's fixture),
    with small host blocks, and every device-to-host copy's size recorded."""
    from labelsift._cl import device
    monkeypatch.setattr(device, "backend_info", lambda: {"cuda_available": True, "cuda_reason": ""})
    monkeypatch.setattr(device, "cuda_module", lambda: Emu)
    monkeypatch.setattr(arrays, "BLOCK_BYTES", 1024)
    copies = []
    real = Emu.copy_dtoh

    def copy_dtoh(dst, src, dev, stream):
        copies.append(dst.nbytes)
        return real(dst, src, dev, stream)

    monkeypatch.setattr(Emu, "copy_dtoh", staticmethod(copy_dtoh))
    Emu.calls = []
    monkeypatch.setattr(Emu, "copies", copies, raising=False)
    return Emu


def _data(n, k, dtype, seed, coarse):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    z = rng.normal(0, 1.5, (n, k))
    z[np.arange(n), true] += 2.5
    P = np.exp(z - z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    if coarse:  # many equal values and margins: the tie rules matter
        P = np.round(P * 6) + 1e-3
        P /= P.sum(1, keepdims=True)
    y = np.where(rng.random(n) < 0.75, true, rng.integers(0, k, n))
    return y, P.astype(dtype)


# (bounds, per shard: "host", or a device layout of support.device_arrays, "torch" for torch-looking ones)
SPLITS = [
    ([0, 500], ["C"]),
    ([0, 170, 170, 420, 500], ["F", "C", "host", "reversed"]),
    ([0, 1, 260, 500], ["strided", "torch", "host"]),
]


def _shards(y, P, bounds, kinds, labels_on_device=False):
    out = []
    for (lo, hi), kind in zip(zip(bounds[:-1], bounds[1:]), kinds):
        p, yy = P[lo:hi], y[lo:hi]
        if kind == "torch":
            p = TorchLike(np.ascontiguousarray(p))
        elif kind != "host":
            p = FakeDeviceArray(layout(p, kind))
            if labels_on_device:
                yy = FakeDeviceArray(np.ascontiguousarray(yy))
        out.append((yy, p))
    return out


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def _bounded(emu, bounds, kinds, k, itemsize):
    """No device-to-host copy of a device shard's whole rows: at most a 1 KB
    block of rows, or a per-row vector (8 bytes a row)."""
    biggest = max(hi - lo for lo, hi, kind in zip(bounds[:-1], bounds[1:], kinds) if kind != "host")
    return 0 < max(emu.copies, default=0) <= max(1024, 8 * biggest) < biggest * k * itemsize


@pytest.mark.parametrize("split", range(len(SPLITS)))
@pytest.mark.parametrize("dtype,coarse", [(np.float32, False), (np.float64, True), (np.float16, True)])
def test_find_on_device_shards_equals_the_single_process(emulated, split, dtype, coarse):
    bounds, kinds = SPLITS[split]
    y, P = _data(500, 12, dtype, 7 + split, coarse)
    on_device = sum(kind != "host" and hi > lo for lo, hi, kind in zip(bounds[:-1], bounds[1:], kinds))
    for ties in ("cleanlab", "lower_index"):
        for fb in FILTERS:
            for rank_by in (None, "self_confidence", "normalized_margin", "confidence_weighted_entropy"):
                emulated.calls.clear()
                ex = sharded.LocalExecutor(_shards(y, P, bounds, kinds, labels_on_device=split == 1))
                masks, ranked = sharded.find(ex, sharded.place(ex), filter_by=fb, ties=ties, rank_by=rank_by)
                got = ranked if rank_by is not None else np.concatenate(ex.local(masks))
                want = labelsift.find_label_issues(y, P, filter_by=fb, ties=ties, return_indices_ranked_by=rank_by)
                assert _same(got, want), (bounds, kinds, fb, ties, rank_by)
                # the device passes ran on the device shards (not a host copy), once each
                assert emulated.calls.count("row_pass") == on_device
                assert emulated.calls.count("gather_given") == on_device
    assert _bounded(emulated, bounds, kinds, P.shape[1], P.dtype.itemsize), max(emulated.copies)


@pytest.mark.parametrize("split", range(len(SPLITS)))
def test_counts_thresholds_and_scores_on_device_shards(emulated, split):
    bounds, kinds = SPLITS[split]
    y, P = _data(500, 12, np.float32, 3, True)
    for ties in ("cleanlab", "lower_index"):
        ex = sharded.LocalExecutor(_shards(y, P, bounds, kinds))
        w = sharded.place(ex)
        cj, off = sharded.joint(ex, w, ties=ties, want_off=True)
        want_cj, want_off = labelsift.compute_confident_joint(y, P, ties=ties, return_indices_of_off_diagonals=True)
        assert _same(cj, want_cj) and _same(off, want_off)
        assert _same(w.thresholds, labelsift.get_confident_thresholds(y, P))
        for m in ("off_diagonal", "off_diagonal_calibrated"):
            ex = sharded.LocalExecutor(_shards(y, P, bounds, kinds))
            assert sharded.num_label_issues(ex, sharded.place(ex), estimation_method=m, ties=ties) == \
                labelsift.num_label_issues(y, P, estimation_method=m, ties=ties)
    for method in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
        for adjust in ((False, True) if method != "confidence_weighted_entropy" else (False,)):
            ex = sharded.LocalExecutor(_shards(y, P, bounds, kinds))
            got = np.concatenate(ex.local(sharded.scores(ex, sharded.place(ex), method=method,
                                                         adjust_pred_probs=adjust)))
            assert _same(got, labelsift.get_label_quality_scores(y, P, method=method, adjust_pred_probs=adjust))
    assert _bounded(emulated, bounds, kinds, P.shape[1], P.dtype.itemsize), max(emulated.copies)


def test_a_bad_value_on_a_device_shard_names_the_global_row(emulated):
    y, P = _data(300, 5, np.float32, 1, False)
    P[211, 3] = np.nan
    with pytest.raises(ValueError) as want:
        labelsift.find_label_issues(y, P)
    ex = sharded.LocalExecutor(_shards(y, P, [0, 100, 300], ["host", "F"]))
    with pytest.raises(ValueError) as got:
        sharded.find(ex, sharded.place(ex))
    assert str(got.value) == str(want.value) and "211" in str(got.value)


def test_without_a_usable_gpu_a_device_shard_says_why(monkeypatch):
    from labelsift._cl import device
    monkeypatch.setattr(device, "backend_info", lambda: {"cuda_available": False, "cuda_reason": "no GPU here"})
    y, P = _data(50, 3, np.float32, 2, False)
    ex = sharded.LocalExecutor(_shards(y, P, [0, 20, 50], ["host", "C"]))
    with pytest.raises(TypeError, match="no GPU here"):
        sharded.find(ex, sharded.place(ex))


@pytest.mark.gpu
def test_torch_cuda_shards_on_a_real_gpu():
    """The same on a real GPU with torch CUDA tensors (skips without one)."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available() or not labelsift.backend_info()["cuda_available"]:
        pytest.skip("no usable CUDA device for labelsift and torch here")
    y, P = _data(500, 12, np.float32, 5, True)
    shards = [(y[:200], torch.from_numpy(P[:200]).cuda()), (torch.from_numpy(y[200:]).cuda(),
                                                           torch.from_numpy(P[200:]).cuda().T.contiguous().T)]
    for fb in FILTERS:
        ex = sharded.LocalExecutor(shards)
        masks, _ = sharded.find(ex, sharded.place(ex), filter_by=fb, ties="lower_index")
        assert _same(np.concatenate(ex.local(masks)), labelsift.find_label_issues(y, P, filter_by=fb,
                                                                                   ties="lower_index"))
