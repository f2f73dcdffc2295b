"""The tie rule: ``ties="cleanlab"`` is np.array_equal to unmodified cleanlab
2.9.0 (ties included), ``ties="lower_index"`` to cleanlab with every sort
made stable (lower index first), on inputs built to have many exact ties."""
from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

import cleanlab.count
import cleanlab.filter
import cleanlab.rank

import labelsift
from labelsift.stream import ConfidentJointAccumulator
from support.constants import FILTER_BY, SCORE_METHODS
from support.data import real_dump, tie_heavy
from support.oracle import cleanlab_with_stable_sorts

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(autouse=True)
def _lower_index_ties():
    """Overrides the suite's pin: this module tests the default rule itself."""
    with labelsift.options(ties="cleanlab"):
        yield


CASES = {
    "cifar10": lambda: real_dump("cifar10"),
    "k10_3dec": lambda: tie_heavy(1, 3000, 10, 3),
    "k10_2dec_f32": lambda: tie_heavy(2, 3000, 10, 2, dtype=np.float32),
    "k100_3dec": lambda: tie_heavy(3, 6000, 100, 3),
    "k1000_3dec": lambda: tie_heavy(4, 8000, 1000, 3, dup_frac=0.1),
    "k37_f16": lambda: tie_heavy(5, 4000, 37, 3, dtype=np.float16),
}


# K = 1000 with 8000 rows: each comparison over every call takes > 10 s
CASE_PARAMS = [pytest.param(c, marks=pytest.mark.slow) if c == "k1000_3dec" else c for c in sorted(CASES)]


@functools.lru_cache(maxsize=None)
def _case(name):
    return CASES[name]()


def _calls(y, p):
    """(name, labelsift call, cleanlab call) for every function that can depend on tie order."""
    out = [
        ("compute_confident_joint", lambda L, **t: L.count.compute_confident_joint(y, p, **t), None),
        ("estimate_joint", lambda L, **t: L.count.estimate_joint(y, p, **t), None),
        ("estimate_py_and_noise", lambda L, **t: L.count.estimate_py_and_noise_matrices_from_probabilities(y, p, **t),
         None),
        ("num_label_issues_calibrated",
         lambda L, **t: L.count.num_label_issues(y, p, estimation_method="off_diagonal_calibrated", **t), None),
    ]
    for fb in FILTER_BY:
        out.append((f"find[{fb}]", lambda L, fb=fb, **t: L.filter.find_label_issues(y, p, filter_by=fb, **t),
                    {"n_jobs": 1}))
    out.append(("find[frac_noise=0.5,min=5]", lambda L, **t: L.filter.find_label_issues(
        y, p, filter_by="both", frac_noise=0.5, min_examples_per_class=5, **t), {"n_jobs": 1}))
    for rb in SCORE_METHODS:
        out.append((f"ranked[{rb}]", lambda L, rb=rb, **t: L.filter.find_label_issues(
            y, p, return_indices_ranked_by=rb, **t), {"n_jobs": 1}))
    mask = np.asarray(p.argmax(1) != y)
    out.append(("order_label_issues", lambda L, **t: L.rank.order_label_issues(mask, y, p, rank_by="normalized_margin",
                                                                               **t), None))
    return out


def _run(fn, extra, L, ties=None):
    kwargs = {} if ties is None else {"ties": ties}
    if L is not labelsift and extra:
        kwargs.update(extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(L, **kwargs)


def _assert_same(name, got, want):
    if isinstance(want, tuple):
        assert len(got) == len(want), name
        for i, (a, b) in enumerate(zip(got, want)):
            _assert_same(f"{name}[{i}]", a, b)
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and np.array_equal(got, want), f"{name} differs from cleanlab"


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_cleanlab_mode_equals_unmodified_cleanlab(case):
    y, p = _case(case)
    for name, fn, extra in _calls(y, p):
        want = _run(fn, extra, cleanlab)
        _assert_same(name, _run(fn, extra, labelsift, "cleanlab"), want)
        _assert_same(name + " (default)", _run(fn, extra, labelsift), want)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_lower_index_mode_equals_cleanlab_with_stable_sorts(case):
    y, p = _case(case)
    with cleanlab_with_stable_sorts():
        wants = [_run(fn, extra, cleanlab) for _, fn, extra in _calls(y, p)]
    for (name, fn, extra), want in zip(_calls(y, p), wants):
        _assert_same(name, _run(fn, extra, labelsift, "lower_index"), want)


@pytest.mark.slow
def test_tie_cases_really_depend_on_the_rule():
    """The tie-heavy inputs must make the two rules disagree somewhere (else the tests above prove nothing)."""
    differing = 0
    for case in ("k10_3dec", "k100_3dec", "k1000_3dec"):
        y, p = _case(case)
        for name, fn, extra in _calls(y, p):
            a = _run(fn, extra, labelsift, "cleanlab")
            b = _run(fn, extra, labelsift, "lower_index")
            a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
            differing += any(not np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(a, b))
    assert differing >= 5


@pytest.mark.parametrize("ties", ["cleanlab", "lower_index"])
@pytest.mark.parametrize("case", ["cifar10", "k10_3dec", "k100_3dec"])
def test_stream_equals_in_memory_in_both_modes(case, ties):
    y, p = _case(case)
    acc = ConfidentJointAccumulator(p.shape[1], top_m=4)
    for b in np.array_split(np.random.default_rng(0).permutation(len(y)), 3):
        acc.update(b, y[b], p[b])
    est = acc.result(ties=ties)
    for _ in range(3):
        if est.exact:
            break
        ids = est.refine_ids
        assert len(ids) and not np.isin(ids, getattr(acc, "_refined")()[0]).any()
        acc.refine(ids, p[ids])
        est = acc.result(ties=ties)
    assert est.exact
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(est.label_issues, labelsift.find_label_issues(y, p, ties=ties))
        np.testing.assert_array_equal(est.confident_joint, labelsift.compute_confident_joint(y, p, ties=ties))


def test_options_setter_context_and_per_call():
    y, p = _case("k100_3dec")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = labelsift.find_label_issues(y, p, ties="cleanlab")
        lower = labelsift.find_label_issues(y, p, ties="lower_index")
        assert not np.array_equal(clean, lower)
        before = labelsift.options()["ties"]
        with labelsift.options(ties="lower_index"):
            assert labelsift.options()["ties"] == "lower_index"
            np.testing.assert_array_equal(labelsift.find_label_issues(y, p), lower)
            np.testing.assert_array_equal(labelsift.find_label_issues(y, p, ties="cleanlab"), clean)
        assert labelsift.options()["ties"] == before
        try:
            labelsift.options(ties="lower_index")
            np.testing.assert_array_equal(labelsift.find_label_issues(y, p), lower)
        finally:
            labelsift.options(ties=before)
    with pytest.raises(ValueError, match="ties='stable' is not one of cleanlab, lower_index"):
        labelsift.find_label_issues(y, p, ties="stable")
    with pytest.raises(ValueError, match="ties="):
        labelsift.options(ties="random")
