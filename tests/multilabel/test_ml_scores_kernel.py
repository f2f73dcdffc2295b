"""The C++ multi-label score sweep (ml_ema_scores: self_confidence or
normalized_margin, with the moving average -- each row sorted by a SIMD sorting
network -- or per class) against the NumPy reference, on every ISA the CPU has,
every dtype and layout, ties, and the padding edges of the network (K around
powers of two)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import labelsift
import labelsift.multilabel_classification as L
from labelsift._common.backend import core
from labelsift._multilabel.labels import as_multilabels
from labelsift._multilabel.passes import prepare
from labelsift._multilabel.scores import row_scores
from labelsift.reference import multilabel as R

ISAS = [i for i in (1, 2, 3, 4) if i <= core().vec_isa()] or [1]
# row lengths at the network's edges: registers of 2..16 lanes, padded lengths up to 4096
EDGE_K = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1023, 1025, 4097]


def _data(rng, n, k, dt, ties, label_frac=0.15):
    p = rng.random((n, k))
    if ties:  # few distinct values: equal keys everywhere, exact 0 and 1
        p = np.round(p * ties) / ties
    p = p.astype(dt)
    y = rng.random((n, k)) < label_frac
    return p, y


def _csr(y):
    ip = np.zeros(len(y) + 1, np.int64)
    np.cumsum(y.sum(axis=1), out=ip[1:])
    return ip, np.nonzero(y)[1].astype(np.int32)


METHODS = {"self_confidence": 0, "normalized_margin": 1}


def _class_scores(p, y, method):
    if len(p) == 0:
        return np.zeros(p.shape)
    return R.get_label_quality_scores_per_class(y.astype(np.int64), np.ascontiguousarray(p), method=method)


def _expected(p, y, alpha, method="self_confidence"):
    return R.exponential_moving_average(_class_scores(p, y, method), alpha=alpha)


def _kernel(p, y, alpha, isa, nthreads=2, method="self_confidence"):
    ip, ix = _csr(y)
    out = np.full(len(p), np.nan)
    bad = core().ml_ema_scores(p, ip, ix, float(alpha), float(1 - alpha), out, isa, nthreads, METHODS[method])
    return bad, out


def _kernel_per_class(p, y, isa, method, nthreads=2):
    ip, ix = _csr(y)
    out = np.full(p.shape, np.nan)
    bad = core().ml_ema_scores(p, ip, ix, 0.0, 0.0, None, isa, nthreads, METHODS[method], out.reshape(-1))
    return bad, out


@pytest.mark.parametrize("dt", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("k", EDGE_K)
def test_edges_every_isa(k, dt):
    rng = np.random.default_rng(k)
    n = 3 if k > 1000 else 11
    for ties in (None, 4):
        p, y = _data(rng, n, k, dt, ties)
        for method in METHODS:
            want = _expected(p, y, 0.8, method)
            for isa in ISAS:
                bad, got = _kernel(p, y, 0.8, isa, method=method)
                assert bad == -1
                assert np.array_equal(got, want), (k, np.dtype(dt).name, ties, isa, method)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 70), k=st.integers(1, 300), seed=st.integers(0, 2**32 - 1),
       dt=st.sampled_from([np.float16, np.float32, np.float64]), ties=st.sampled_from([None, 2, 5, 1000]),
       layout=st.sampled_from(["C", "F", "cols", "rows"]), alpha=st.sampled_from([0.8, 0.0, 1.0, 0.3, 2 / 7]),
       nthreads=st.sampled_from([1, 2, 3]), method=st.sampled_from(sorted(METHODS)))
def test_kernel_vs_reference(n, k, seed, dt, ties, layout, alpha, nthreads, method):
    rng = np.random.default_rng(seed)
    p, y = _data(rng, n, k, dt, ties, label_frac=float(rng.random()))
    if layout == "F":
        p = np.asfortranarray(p)
    elif layout == "cols":  # every other column of a wider array
        wide = np.zeros((n, 2 * k), dt)
        wide[:, ::2] = p
        p = wide[:, ::2]
    elif layout == "rows":
        tall = np.zeros((2 * n, k), dt)
        tall[::2] = p
        p = tall[::2]
    want = _expected(p, y, alpha, method)
    want_c = _class_scores(p, y, method)
    for isa in ISAS:
        bad, got = _kernel(p, y, alpha, isa, nthreads, method)
        assert bad == -1
        assert np.array_equal(got, want)
        bad, got_c = _kernel_per_class(p, y, isa, method, nthreads)
        assert bad == -1
        assert np.array_equal(got_c, want_c)


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("isa", ISAS)
def test_first_bad_value(isa, method):
    rng = np.random.default_rng(5)
    n, k = 40, 37
    p, y = _data(rng, n, k, np.float32, None)
    for cells in ([(17, 3)], [(30, 36), (9, 0)], [(0, 0)], [(39, 36)], [(12, 5), (12, 2)]):
        q = p.copy()
        for v, (r, c) in zip([np.nan, 1.5, -0.25, np.inf, -np.inf], cells):
            q[r, c] = v
        first = min(r * k + c for r, c in cells)
        assert _kernel(q, y, 0.8, isa, method=method)[0] == first
        assert _kernel_per_class(q, y, isa, method)[0] == first


def test_public_api_equals_reference_and_names_the_bad_value(tmp_path):
    rng = np.random.default_rng(11)
    n, k = 3000, 57
    p, y = _data(rng, n, k, np.float32, 8)
    labels = [list(np.flatnonzero(r)) for r in y]
    for alpha in (0.8, None, np.float32(0.3), 1, 0, np.float16(0.6)):
        agg = {"method": "exponential_moving_average", "alpha": alpha}
        for method in METHODS:
            want = R.get_label_quality_scores(labels, p, method=method, aggregator_kwargs=dict(agg))
            got = L.rank.get_label_quality_scores(labels, p, method=method, aggregator_kwargs=dict(agg))
            assert np.array_equal(got, want), (alpha, method)
    for method in METHODS:
        assert np.array_equal(L.rank.get_label_quality_scores_per_class(labels, p, method=method),
                              R.get_label_quality_scores_per_class(labels, p, method=method))
    # shards and a memory map read block by block give the same scores
    np.save(tmp_path / "a.npy", p[:1000])
    np.save(tmp_path / "b.npy", p[1000:])
    shards = [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]
    assert np.array_equal(L.rank.get_label_quality_scores(labels, shards), R.get_label_quality_scores(labels, p))
    q = p.copy()
    q[2345, 6] = 1.25
    q[2400, 1] = np.nan
    with pytest.raises(ValueError, match=r"pred_probs\[2345, 6\] = \S*1\.25"):
        L.rank.get_label_quality_scores(labels, q)
    np.save(tmp_path / "c.npy", q[1000:])
    with pytest.raises(ValueError, match=r"pred_probs\[2345, 6\] = \S*1\.25"):
        L.rank.get_label_quality_scores(labels, [str(tmp_path / "a.npy"), str(tmp_path / "c.npy")])


def test_longdouble_alpha_takes_numpy_path():
    rng = np.random.default_rng(2)
    p, y = _data(rng, 200, 9, np.float64, None)
    labels = [list(np.flatnonzero(r)) for r in y]
    agg = {"method": "exponential_moving_average", "alpha": np.longdouble(0.8)}
    want = R.get_label_quality_scores(labels, p, aggregator_kwargs=dict(agg))
    got = L.rank.get_label_quality_scores(labels, p, aggregator_kwargs=dict(agg))
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_row_subsets_in_any_order_and_across_shards(tmp_path):
    rng = np.random.default_rng(3)
    n, k = 900, 20
    p, y = _data(rng, n, k, np.float32, 16)
    np.save(tmp_path / "a.npy", p[:400])
    np.save(tmp_path / "b.npy", p[400:])
    full = R.get_label_quality_scores(y, p)
    rows = rng.permutation(n)[:500]  # unsorted, crossing the shard boundary
    for src in (p, [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]):
        pb = prepare(as_multilabels(y, n, k), src)
        for method in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
            got = row_scores(pb, rows, method)
            want = R.get_label_quality_scores(y[rows], p[rows], method=method)
            assert np.array_equal(got, want), method
            got = row_scores(pb, rows, method, per_class=True)
            assert np.array_equal(got, R.get_label_quality_scores_per_class(y[rows], p[rows], method=method))
        assert np.array_equal(row_scores(pb, rows), full[rows])


def test_kernel_is_the_default_path_and_isa_reported(monkeypatch):
    import labelsift._multilabel.scores as S
    calls = []
    real = S._ema_block
    monkeypatch.setattr(S, "_ema_block", lambda *a: (calls.append(1), real(*a))[1])
    rng = np.random.default_rng(4)
    p, y = _data(rng, 50, 6, np.float32, None)
    L.rank.get_label_quality_scores(y, p)
    assert calls
    L.rank.get_label_quality_scores(y, p, method="normalized_margin")
    L.rank.get_label_quality_scores_per_class(y, p)
    assert len(calls) == 3
    calls.clear()
    L.rank.get_label_quality_scores(y, p, method="confidence_weighted_entropy")
    L.rank.get_label_quality_scores(y, p, adjust_pred_probs=True)
    L.rank.get_label_quality_scores(y, p, aggregator_kwargs={"method": "softmin"})
    assert not calls
    info = labelsift.backend_info()["cpu_isa"]
    assert info["multilabel_scores"] == {1: "portable", 2: "sse2", 3: "avx2", 4: "avx512"}[core().vec_isa()]


@pytest.mark.parametrize("env", ["LABELSIFT_NO_AVX512", "LABELSIFT_NO_AVX2"])
def test_env_steps_down(env):
    code = "from labelsift._common.backend import core; print(core().vec_isa())"
    e = dict(os.environ, **{env: "1"})
    out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True)
    got = int(out.stdout.strip())
    assert got <= (3 if env == "LABELSIFT_NO_AVX512" else 2)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 200), k=st.integers(2, 40), seed=st.integers(0, 2**32 - 1),
       dt=st.sampled_from([np.float16, np.float32, np.float64]), ties=st.sampled_from([None, 1, 4]),
       zeros=st.booleans())
def test_entropy_all_classes_at_once_vs_reference(n, k, seed, dt, ties, zeros):
    # confidence_weighted_entropy (NumPy, all classes of a block at once) against the per-class reference
    rng = np.random.default_rng(seed)
    p = rng.random((n, k))
    if ties:
        p = np.round(p * ties) / ties  # exact 0 and 1 (0 log 0) and ties
    if zeros:
        p[rng.random((n, k)) < 0.2] = 0
    p = p.astype(dt)
    y = (rng.random((n, k)) < 0.3).astype(np.int64)
    m = "confidence_weighted_entropy"
    assert np.array_equal(L.rank.get_label_quality_scores_per_class(y, p, method=m),
                          R.get_label_quality_scores_per_class(y, p, method=m))
    assert np.array_equal(L.rank.get_label_quality_scores(y, p, method=m), R.get_label_quality_scores(y, p, method=m))


def test_entropy_needs_no_scipy():
    # SciPy is a test extra only; the multi-label entropy score once imported it (through the reference)
    code = ("import sys; sys.modules['scipy'] = None; sys.modules['scipy.special'] = None\n"
            "import numpy as np, labelsift.multilabel_classification as L\n"
            "p = np.random.default_rng(0).random((50, 4)).astype(np.float32)\n"
            "s = L.rank.get_label_quality_scores(p > 0.5, p, method='confidence_weighted_entropy')\n"
            "print(len(s), bool(np.isfinite(s).all()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["50", "True"]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 200), k=st.integers(2, 30), seed=st.integers(0, 2**32 - 1),
       dt=st.sampled_from([np.float16, np.float32, np.float64]), ties=st.sampled_from([None, 4]),
       empty=st.booleans(), full=st.booleans(), method=st.sampled_from(sorted(METHODS)))
def test_adjusted_all_classes_at_once_vs_reference(n, k, seed, dt, ties, empty, full, method):
    # adjust_pred_probs=True (NumPy, the classes of one threshold dtype at once) against the per-class
    # reference; a class without positives or with only positives has float64 thresholds
    p, y = _data(np.random.default_rng(seed), n, k, dt, ties, 0.3)
    y = y.astype(np.int64)
    if empty:
        y[:, 0] = 0
    if full:
        y[:, -1] = 1
    kw = {"method": method, "adjust_pred_probs": True}
    assert np.array_equal(L.rank.get_label_quality_scores_per_class(y, p, **kw),
                          R.get_label_quality_scores_per_class(y, p, **kw), equal_nan=True)
    assert np.array_equal(L.rank.get_label_quality_scores(y, p, **kw), R.get_label_quality_scores(y, p, **kw),
                          equal_nan=True)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 150), k=st.integers(2, 20), seed=st.integers(0, 2**32 - 1),
       dt=st.sampled_from([np.float16, np.float32, np.float64]), ties=st.sampled_from([None, 4]),
       empty=st.booleans(), method=st.sampled_from(sorted(METHODS) + ["confidence_weighted_entropy"]))
def test_class_scores_vs_the_binary_reference(n, k, seed, dt, ties, empty, method):
    # every method on the binary rows [1 - p, p] (or their threshold-adjusted form, the rows
    # find_label_issues(return_indices_ranked_by=..., rank_by_kwargs={"adjust_pred_probs": True}) ranks),
    # class by class through the single-label reference
    from labelsift._multilabel.labels import as_multilabels
    from labelsift._multilabel.passes import prepare, thresholds_and_cuts
    from labelsift._multilabel.scores import class_scores
    from labelsift.reference import confident_learning as RC
    p, y = _data(np.random.default_rng(seed), n, k, dt, ties, 0.3)
    y = y.astype(np.int64)
    if empty:
        y[:, 0] = 0  # float64 thresholds for that class
    t = thresholds_and_cuts(prepare(as_multilabels(y, n, k), p))[1]
    for thr in (None, t):
        want = np.empty((n, k))
        for c in range(k):
            two = np.stack([1 - p[:, c], p[:, c]], axis=1)
            if thr is not None:
                two = two - thr[c]
                two += thr[c].max()
                two /= two.sum(axis=1, keepdims=True)
            want[:, c] = RC.get_label_quality_scores(y[:, c], two, method=method)
        assert np.array_equal(class_scores(y, p, method, thr), want, equal_nan=True), thr is None
