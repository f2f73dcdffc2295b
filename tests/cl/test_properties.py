"""Property tests: the compiled API (``labelsift``) against ``labelsift.reference``.

Generated problems cover N in 1..300, K in 2..12 (a few up to 60), float16 /
float32 / float64 probabilities (generated in float64, normalised, cast),
uint8 / uint16 / int32 / int64 labels, absent and singleton classes, and
deliberate exact ties (duplicated rows, duplicated columns within rows,
probabilities on a coarse grid). Both implementations break every tie by the
lower index, so all results must be *exactly* equal, dtypes included.

A second group checks that the compiled results do not depend on the thread
count or on how the same values are laid out in memory (C / Fortran order,
strided and negative-stride views, read-only, big-endian, np.memmap, a .npy
path, uneven .npy shards).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labelsift
import labelsift.reference as ref
from support.compare import assert_same
from support.constants import FILTER_BY, LABEL_DTYPES, PROB_DTYPES, PRUNE_METHODS, SCORE_METHODS

pytestmark = pytest.mark.filterwarnings("ignore")


# ---------------------------------------------------------------------------
# Generated problems
# ---------------------------------------------------------------------------
@dataclass
class Problem:
    labels: np.ndarray
    pred_probs: np.ndarray
    desc: str

    def __repr__(self):  # hypothesis prints this on failure
        return (f"Problem({self.desc}, N={len(self.labels)}, K={self.pred_probs.shape[1]}, "
                f"dtype={self.pred_probs.dtype}, labels={self.labels.dtype})")


def _make_problem(seed, n, k, dtype, label_dtype, style, absent, singleton, dup_rows, dup_cols, noise):
    rng = np.random.default_rng(seed)
    # --- weights (float64, positive) -------------------------------------
    if style == "grid":  # coarse values: many exact ties within and across rows
        w = rng.integers(0, 4, size=(n, k)).astype(np.float64)
    elif style == "peaked":  # softmax of scaled normals: confident rows
        logits = rng.normal(size=(n, k)) * rng.uniform(0.5, 6.0)
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
    else:  # "flat": powers of uniforms
        w = rng.random((n, k)) ** rng.uniform(1.0, 4.0) + 1e-12
    if dup_cols and k >= 2:  # within-row ties between two columns
        rows = rng.random(n) < 0.5
        a, b = rng.choice(k, size=2, replace=False)
        w[rows, b] = w[rows, a]
    empty = w.sum(axis=1) == 0  # (grid rows only)
    w[empty, rng.integers(0, k, size=int(empty.sum()))] = 1.0
    # --- labels ------------------------------------------------------------
    if absent and k >= 2:
        present = np.sort(rng.choice(k, size=int(rng.integers(1, k)), replace=False))
    else:
        present = np.arange(k)
    y = w.argmax(axis=1)
    flip = rng.random(n) < noise
    y[flip] = rng.choice(present, size=int(flip.sum()))
    bad = ~np.isin(y, present)
    y[bad] = rng.choice(present, size=int(bad.sum()))
    if dup_rows and n >= 2:  # whole rows repeated exactly (labels copied or not)
        m = int(rng.integers(1, max(2, n // 3) + 1))
        src = rng.integers(0, n, size=m)
        dst = rng.integers(0, n, size=m)
        w[dst] = w[src]
        same = rng.random(m) < 0.6
        y[dst[same]] = y[src[same]]
    if singleton and len(present) >= 2 and n >= 2:
        s = rng.choice(present)
        others = present[present != s]
        rows = np.flatnonzero(y == s)
        y[rows] = rng.choice(others, size=len(rows))
        y[rng.integers(0, n)] = s
    p = w / w.sum(axis=1, keepdims=True)
    desc = (f"seed={seed}, style={style}, absent={absent}, singleton={singleton}, dup_rows={dup_rows}, "
            f"dup_cols={dup_cols}, noise={noise:.2f}")
    return Problem(y.astype(label_dtype), p.astype(dtype), desc)


@st.composite
def problems(draw, k_min=2, k_max=12, n_max=300):
    return _make_problem(
        seed=draw(st.integers(0, 2**32 - 1)),
        n=draw(st.integers(1, n_max)),
        k=draw(st.integers(k_min, k_max)),
        dtype=draw(st.sampled_from(PROB_DTYPES)),
        label_dtype=draw(st.sampled_from(LABEL_DTYPES)),
        style=draw(st.sampled_from(["peaked", "flat", "grid"])),
        absent=draw(st.booleans()),
        singleton=draw(st.booleans()),
        dup_rows=draw(st.booleans()),
        dup_cols=draw(st.booleans()),
        noise=draw(st.sampled_from([0.0, 0.1, 0.3, 0.7])),
    )


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def _find_kwargs(filter_by, mepc, frac_noise, ranked_by):
    kw = dict(filter_by=filter_by, min_examples_per_class=mepc, return_indices_ranked_by=ranked_by)
    if filter_by in PRUNE_METHODS:
        kw["frac_noise"] = frac_noise
    return kw


# ---------------------------------------------------------------------------
# Compiled API == reference
# ---------------------------------------------------------------------------
def _compare_with_reference(pb, mepc, frac_noise, ranked_by, n_jobs, pass_cj):
    y, p = pb.labels, pb.pred_probs
    lib_kw = {} if n_jobs is None else {"n_jobs": n_jobs}

    assert_same(labelsift.get_confident_thresholds(y, p, **lib_kw), ref.get_confident_thresholds(y, p),
                "get_confident_thresholds")

    for calibrate in (True, False):
        assert_same(labelsift.compute_confident_joint(y, p, calibrate=calibrate, **lib_kw),
                    ref.compute_confident_joint(y, p, calibrate=calibrate),
                    f"compute_confident_joint(calibrate={calibrate})")
        assert_same(
            labelsift.compute_confident_joint(y, p, calibrate=calibrate, return_indices_of_off_diagonals=True,
                                              **lib_kw),
            ref.compute_confident_joint(y, p, calibrate=calibrate, return_indices_of_off_diagonals=True),
            f"compute_confident_joint(calibrate={calibrate}, return_indices_of_off_diagonals=True)")

    assert_same(labelsift.estimate_joint(y, p, **lib_kw), ref.estimate_joint(y, p), "estimate_joint")
    assert_same(labelsift.estimate_py_and_noise_matrices_from_probabilities(y, p, **lib_kw),
                ref.estimate_py_and_noise_matrices_from_probabilities(y, p),
                "estimate_py_and_noise_matrices_from_probabilities")
    cj = ref.compute_confident_joint(y, p)
    for method in ("off_diagonal", "off_diagonal_calibrated"):
        assert_same(labelsift.num_label_issues(y, p, estimation_method=method, **lib_kw),
                    ref.num_label_issues(y, p, estimation_method=method), f"num_label_issues({method})")
    assert_same(labelsift.num_label_issues(y, p, confident_joint=cj, estimation_method="off_diagonal_custom",
                                           **lib_kw),
                ref.num_label_issues(y, p, confident_joint=cj, estimation_method="off_diagonal_custom"),
                "num_label_issues(off_diagonal_custom)")

    for filter_by in FILTER_BY:
        for rank in (None, ranked_by):
            kw = _find_kwargs(filter_by, mepc, frac_noise, rank)
            if pass_cj and filter_by in PRUNE_METHODS:
                kw["confident_joint"] = cj
            got = labelsift.find_label_issues(y, p, **kw, **lib_kw)
            want = ref.find_label_issues(y, p, **kw)
            assert_same(got, want, f"find_label_issues({kw})")

    for method in SCORE_METHODS:
        adjusts = (False,) if method == "confidence_weighted_entropy" else (False, True)
        for adjust in adjusts:
            assert_same(
                labelsift.get_label_quality_scores(y, p, method=method, adjust_pred_probs=adjust, **lib_kw),
                ref.get_label_quality_scores(y, p, method=method, adjust_pred_probs=adjust),
                f"get_label_quality_scores(method={method}, adjust_pred_probs={adjust})")

    mask = ref.find_label_issues(y, p, filter_by="predicted_neq_given")
    for rank_by in SCORE_METHODS:
        assert_same(labelsift.order_label_issues(mask, y, p, rank_by=rank_by, **lib_kw),
                    ref.order_label_issues(mask, y, p, rank_by=rank_by), f"order_label_issues({rank_by})")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pb=problems(),
    mepc=st.sampled_from([0, 1, 3]),
    frac_noise=st.sampled_from([1.0, 0.6]),
    ranked_by=st.sampled_from(SCORE_METHODS),
    n_jobs=st.sampled_from([None, 1, 2]),
    pass_cj=st.booleans(),
)
def test_matches_reference(pb, mepc, frac_noise, ranked_by, n_jobs, pass_cj):
    _compare_with_reference(pb, mepc, frac_noise, ranked_by, n_jobs, pass_cj)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pb=problems(k_min=13, k_max=60), mepc=st.sampled_from([0, 1, 3]), frac_noise=st.sampled_from([1.0, 0.6]),
       ranked_by=st.sampled_from(SCORE_METHODS))
def test_matches_reference_many_classes(pb, mepc, frac_noise, ranked_by):
    _compare_with_reference(pb, mepc, frac_noise, ranked_by, None, False)


# ---------------------------------------------------------------------------
# Independence of thread count and memory layout
# ---------------------------------------------------------------------------
def _compiled_results(y, probs, n_jobs=None):
    """A bundle of compiled-API results on the same (labels, probabilities)."""
    kw = {} if n_jobs is None else {"n_jobs": n_jobs}
    out = {
        "thresholds": labelsift.get_confident_thresholds(y, probs, **kw),
        "cj": labelsift.compute_confident_joint(y, probs, return_indices_of_off_diagonals=True, **kw),
        "cj_raw": labelsift.compute_confident_joint(y, probs, calibrate=False, **kw),
        "num_issues": labelsift.num_label_issues(y, probs, **kw),
    }
    for filter_by in FILTER_BY:
        out[f"find[{filter_by}]"] = labelsift.find_label_issues(y, probs, filter_by=filter_by, **kw)
    out["find[both, ranked_by=normalized_margin]"] = labelsift.find_label_issues(
        y, probs, filter_by="both", min_examples_per_class=0,
        return_indices_ranked_by="normalized_margin", **kw)
    out["order[confidence_weighted_entropy]"] = labelsift.order_label_issues(
        out["find[predicted_neq_given]"], y, probs, rank_by="confidence_weighted_entropy", **kw)
    for method in SCORE_METHODS:
        out[f"scores[{method}]"] = labelsift.get_label_quality_scores(y, probs, method=method, **kw)
        if method != "confidence_weighted_entropy":
            out[f"scores[{method}, adjusted]"] = labelsift.get_label_quality_scores(
                y, probs, method=method, adjust_pred_probs=True, **kw)
    return out


def _assert_bundles_equal(got, want, what):
    assert got.keys() == want.keys()
    for key in want:
        assert_same(got[key], want[key], f"{what}: {key}")


def _layouts(p, tmp, rng):
    """(name, object) pairs holding exactly the values of the C-ordered array p."""
    n, k = p.shape
    yield "fortran", np.asfortranarray(p)
    wide = np.full((n, 2 * k), np.nan, dtype=p.dtype)  # NaN between: strides must be honoured
    wide[:, ::2] = p
    yield "column-strided view big[:, ::2]", wide[:, ::2]
    tall = np.full((2 * n, k), np.nan, dtype=p.dtype)
    tall[::2] = p
    yield "row-strided view big[::2]", tall[::2]
    yield "negative-stride views", p[::-1, ::-1].copy()[::-1, ::-1]
    ro = p.copy()
    ro.setflags(write=False)
    yield "read-only", ro
    yield "big-endian", p.astype(p.dtype.newbyteorder(">"))
    raw = os.path.join(tmp, "raw.dat")
    mm = np.memmap(raw, dtype=p.dtype, mode="w+", shape=p.shape)
    mm[:] = p
    mm.flush()
    del mm
    yield "np.memmap", np.memmap(raw, dtype=p.dtype, mode="r", shape=p.shape)
    path = os.path.join(tmp, "probs.npy")
    np.save(path, p)
    yield ".npy path", path
    n_shards = min(n, int(rng.integers(2, 4)))
    if n_shards >= 2:
        cuts = np.sort(rng.choice(np.arange(1, n), size=n_shards - 1, replace=False))
        paths = []
        for i, part in enumerate(np.split(p, cuts)):
            paths.append(os.path.join(tmp, f"shard{i}.npy"))
            np.save(paths[-1], part)
        yield f"{n_shards} .npy shards of {[len(s) for s in np.split(p, cuts)]} rows", paths


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pb=problems(), seed=st.integers(0, 2**32 - 1))
def test_independent_of_threads_and_layout(pb, seed):
    y, p = pb.labels, np.ascontiguousarray(pb.pred_probs)
    base = _compiled_results(y, p, n_jobs=1)
    for n_jobs in (2, 3):
        _assert_bundles_equal(_compiled_results(y, p, n_jobs=n_jobs), base, f"n_jobs={n_jobs}")
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        for name, probs in _layouts(p, tmp, rng):
            n_jobs = int(rng.integers(1, 4))
            _assert_bundles_equal(_compiled_results(y, probs, n_jobs=n_jobs), base, f"{name}, n_jobs={n_jobs}")
            del probs


@settings(max_examples=60, deadline=None)
@given(
    cut=st.lists(st.floats(min_value=-1.0, max_value=3.0, allow_nan=False), min_size=1, max_size=20),
    seed=st.integers(0, 2**32 - 1),
)
def test_float32_cut_compares_exactly_like_float64(cut, seed):
    """The kernel compares float16/float32 values with a float32 cut: the same answers as in float64."""
    from labelsift._cl.passes import ceil_to_float32

    cut64 = np.array(cut, dtype=np.float64)
    c32 = ceil_to_float32(cut64)
    rng = np.random.default_rng(seed)
    # values at and around every cut, plus random ones
    near = np.concatenate([cut64.astype(np.float32), np.nextafter(cut64.astype(np.float32), np.float32(-np.inf)),
                           np.nextafter(cut64.astype(np.float32), np.float32(np.inf))])
    v = np.concatenate([near, rng.random(50, dtype=np.float32) * 3 - 1]).astype(np.float32)
    for k in range(len(cut64)):
        np.testing.assert_array_equal(v >= c32[k], v.astype(np.float64) >= cut64[k])
        h = v.astype(np.float16)
        np.testing.assert_array_equal(h.astype(np.float32) >= c32[k], h.astype(np.float64) >= cut64[k])
