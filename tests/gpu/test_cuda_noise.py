"""HOC and SimiFeat on CUDA features (labelsift._noise.device; kernels in
src/cuda/noise/nz_kernels.cu) against the CPU path on the same values.

What must be equal: HOC's consensus (codes and values), noise matrix,
duplicate rate; SimiFeat's flags, scores and suggested labels -- exactly
(``np.array_equal``), for every dtype and layout, on data with exact
duplicates (ties by the lower index), through both the certificate and its
exhaustive fallback (no extra candidates; rows of norm below 1e-12).

The CPU reference runs with parameters for which it searches each round's
sample directly (its definition); marked ``gpu``, run against the host
emulation by tests/common/test_gpu_suite_emulated.py.
"""
import numpy as np
import pytest

import labelsift
from labelsift import noise
from labelsift._noise import device as ndev
from support.device_arrays import to_device

_INFO = labelsift.backend_info()
_REASON = ("no usable CUDA device: " + (_INFO["cuda_reason"] or "the CUDA module is not built")
           if not _INFO["cuda_available"] else "")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _INFO["cuda_available"], reason=_REASON)]

KW = dict(rounds=3, sample_size=320, steps=40, seed=4)


def data(n=600, d=24, K=5, dtype=np.float32, seed=0, dups=0, noise_rate=0.2):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (K, d))
    true = rng.integers(0, K, n)
    X = centres[true] + 0.6 * rng.normal(0, 1, (n, d))
    if dups:
        src = rng.choice(n, dups, replace=False)
        X[rng.choice(np.setdiff1d(np.arange(n), src), dups, replace=False)] = X[src]
    y = np.where(rng.random(n) < noise_rate, rng.integers(0, K, n), true)
    return X.astype(dtype), y, K


def same_hoc(a, b):
    assert np.array_equal(a.consensus.codes, b.consensus.codes)
    assert np.array_equal(a.consensus.values, b.consensus.values)
    assert np.array_equal(a.consensus.c2, b.consensus.c2)
    assert np.array_equal(a.noise_matrix, b.noise_matrix)
    assert a.duplicate_rate == b.duplicate_rate


@pytest.mark.filterwarnings("ignore:.*exact duplicate")
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_hoc_equals_cpu(dtype, layout):
    X, y, K = data(dtype=dtype, dups=15)
    want = noise.hoc(X, y, K, **KW)
    got = noise.hoc(to_device(X, layout), y, K, **KW)
    same_hoc(got, want)
    assert want.duplicate_rate > 0


@pytest.mark.parametrize("neighbours", ["sample", "full"])
def test_hoc_neighbour_modes_equal_cpu(neighbours):
    X, y, K = data(seed=1)
    want = noise.hoc(X, y, K, neighbours=neighbours, **KW)
    got = noise.hoc(to_device(X), y, K, neighbours=neighbours, **KW)
    same_hoc(got, want)


@pytest.mark.parametrize("method", ["vote", "rank"])
@pytest.mark.parametrize("neighbours", ["sample", "full"])
def test_simifeat_equals_cpu(method, neighbours):
    X, y, K = data(seed=2, dups=10)
    kw = dict(k=6, method=method, rounds=4, sample_size=320, seed=1, neighbours=neighbours,
              hoc_kwargs=dict(rounds=3, steps=40))
    from labelsift._noise.simifeat import detect

    want = detect(X, y, K, **kw)
    got = detect(to_device(X), y, K, **kw)
    for f in ("is_noisy", "score", "suggested_label", "ranked", "times_sampled", "times_flagged"):
        assert np.array_equal(getattr(got, f), getattr(want, f)), f
    assert want.is_noisy.any()


def test_certificate_fallback_is_exact(monkeypatch):
    """No extra candidates: the certificate proves almost nothing and the exhaustive rows give the answer."""
    monkeypatch.setattr(ndev, "EXTRA", 0)
    X, y, K = data(seed=3, dups=40)
    want = noise.hoc(X, y, K, **KW)
    got = noise.hoc(to_device(X), y, K, **KW)
    same_hoc(got, want)
    assert got.recomputed_rows > 0


def test_tiny_rows_go_exhaustive_and_stay_exact():
    X, y, K = data(seed=5, dtype=np.float64)
    X[::7] *= 1e-14  # canonical rows of these are not unit vectors
    want = noise.hoc(X, y, K, **KW)
    got = noise.hoc(to_device(X), y, K, **KW)
    same_hoc(got, want)
    assert got.recomputed_rows == KW["rounds"] * want.sample_size


def test_device_labels_and_lists():
    X, y, K = data(seed=6)
    want = noise.hoc(X, y, K, **KW)
    same_hoc(noise.hoc(to_device(X), to_device(y.astype(np.int64)), K, **KW), want)
    from labelsift import knn
    idx, _ = knn.search(X, k=3)
    lw = noise.hoc(idx, y, K, **KW)
    lg = noise.hoc(to_device(np.ascontiguousarray(idx)), y, K, **KW)
    same_hoc(lg, lw)


def test_bad_device_features_named():
    X, y, K = data(seed=7)
    X[13, 2] = np.nan
    with pytest.raises(ValueError, match=r"features\[13, 2\]"):
        noise.hoc(to_device(X), y, K, **KW)
    with pytest.raises(ValueError, match="at least 4 rows"):
        noise.hoc(to_device(X[:3]), y[:3], K, **KW)
