"""The adaptive row sketch (C++ ``sketch_rows``, groundwork of the one-read
path of issue 15) against its row-by-row NumPy definition, and the two
bounds it promises on the full rows: every class left out (the given label
aside) is at most ``rest``, and below its floor when ``certified``."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelsift._cl.sketch import sketch_rows, sketch_rows_numpy

from support.data import dirichlet_rows  # noqa: E402

DTYPES = [np.float16, np.float32, np.float64]


def _rows(seed, n, k, dtype, decimals):
    return dirichlet_rows(seed, n, k, dtype, decimals)


def _check(P, y, mmin, cap, floor, tau):
    got = sketch_rows(P, y, mmin, cap, floor, tau)
    want = sketch_rows_numpy(P, y, mmin, cap, floor, tau)
    for a, b, name in zip(got, want, ("ptr", "classes", "values", "rest", "certified", "given")):
        assert a.dtype == b.dtype or name in ("classes",), name
        assert np.array_equal(a, b), name
    ptr, cls, vals, rest, cert, given = got
    assert np.array_equal(given, P[np.arange(len(P)), y])
    # the promises, checked on the full rows
    v64 = P.astype(np.float64)
    fl = np.full(P.shape[1], np.inf) if floor is None else np.asarray(floor, np.float64)
    for i in range(len(P)):
        out = np.ones(P.shape[1], bool)
        out[cls[ptr[i]:ptr[i + 1]]] = False
        out[y[i]] = False
        assert ptr[i + 1] - ptr[i] >= min(mmin, P.shape[1])
        assert ptr[i + 1] - ptr[i] <= min(cap, P.shape[1])
        assert cls[ptr[i]] == np.argmax(v64[i])  # the argmax always kept first
        if out.any():
            assert v64[i][out].max() == float(rest[i])
        if cert[i]:
            assert floor is not None or not out.any()
            assert (v64[i][out] < fl[out]).all()
    return got


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n=st.integers(1, 40), k=st.integers(2, 60), dtype=st.sampled_from(DTYPES),
       decimals=st.sampled_from([None, 1, 2, 3]), mmin=st.integers(1, 6), extra=st.integers(0, 30),
       use_floor=st.booleans(), tau=st.sampled_from([np.inf, -np.inf, 0.0, -0.05, 0.01, 0.2]))
def test_kernel_equals_definition(seed, n, k, dtype, decimals, mmin, extra, use_floor, tau):
    P, y = _rows(seed, n, k, dtype, decimals)
    rng = np.random.default_rng(seed + 1)
    floor = rng.uniform(0, 0.3, k) if use_floor else None
    _check(P, y, mmin, mmin + extra, floor, tau)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n=st.integers(1, 30), k=st.integers(64, 400), dtype=st.sampled_from(DTYPES),
       decimals=st.sampled_from([None, 2, 3, 4]), cap=st.integers(2, 90), floors=st.sampled_from([None, 1.0, 3.0]),
       tau=st.sampled_from([np.inf, -np.inf, 0.0, -1.0, -0.2, 0.1]), strided=st.booleans())
def test_wide_rows_fused_path_equals_definition(seed, n, k, dtype, decimals, cap, floors, tau, strided):
    # K >= 64 and mmin 2: float16/float32 rows take the fused sweeps of sketch.cpp (float thresholds for the
    # float64 tests); floors and tau scaled to 1/k so that a few to all classes are wanted and the cap bites
    P, y = _rows(seed, n, k, dtype, decimals)
    rng = np.random.default_rng(seed + 1)
    floor = None if floors is None else rng.uniform(0, floors / k, k)
    if strided:
        big = np.zeros((2 * n, 2 * k), dtype)
        big[::2, 1::2] = P
        P = big[::2, 1::2]
    _check(P, y, 2, cap, floor, tau if not np.isfinite(tau) else tau / k)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_wide_rows_thresholds_one_ulp_apart(dtype):
    # the fused path turns the float64 tests into float compares: floors one float64 ulp above a value, and a
    # margin level exactly at and one ulp above a value's margin, must decide as in float64
    P, y = _rows(7, 20, 150, dtype, None)
    v = P.astype(np.float64)
    floor = np.nextafter(v[0], np.inf)  # row 0: every class one ulp below its floor
    _check(P, y, 2, 80, floor, np.inf)
    _check(P, y, 2, 80, v[0].copy(), np.inf)  # exactly at its floor: wanted
    g = v[3, y[3]]
    j = int(np.argsort(v[3])[-5])  # a class of row 3 with a margin below the top
    for tau in (v[3, j] - g, np.nextafter(v[3, j] - g, np.inf), np.nextafter(v[3, j] - g, -np.inf)):
        _check(P, y, 2, 80, None, tau)


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_view_read_in_place(dtype):
    P, y = _rows(3, 50, 40, dtype, 2)
    big = np.zeros((100, 80), dtype)
    big[::2, ::2] = P
    view = big[::2, ::2]
    floor = np.full(40, 0.05)
    a = _check(view, y, 2, 12, floor, 0.01)
    b = sketch_rows(np.ascontiguousarray(view), y, 2, 12, floor, 0.01)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_floors_and_cap_decide_certification():
    P = np.array([[0.5, 0.2, 0.2, 0.1]], np.float32)
    y = np.array([3])
    # floors above every left-out value: certified; a class at its floor left out by the cap: not
    ptr, cls, vals, rest, cert, _ = sketch_rows(P, y, 1, 4, np.array([0.9, 0.25, 0.25, 0.9]), np.inf)
    assert cls.tolist() == [0] and cert[0] and float(rest[0]) == np.float32(0.2)
    ptr, cls, vals, rest, cert, _ = sketch_rows(P, y, 1, 2, np.array([0.9, 0.2, 0.2, 0.9]), np.inf)
    assert cls.tolist() == [0, 1] and not cert[0]  # class 2 (0.2 >= its floor) dropped by the cap
    ptr, cls, vals, rest, cert, _ = sketch_rows(P, y, 1, 8, None, 0.15)  # margins >= 0.15 wanted
    assert cls.tolist() == [0] and not cert[0]  # 0.2 - 0.1 < 0.15; no floor: nothing certified


def test_bad_arguments_are_refused():
    P, y = _rows(0, 4, 5, np.float32, None)
    with pytest.raises(ValueError, match="mmin"):
        sketch_rows(P, y, 3, 2)
    with pytest.raises(ValueError, match="label"):
        sketch_rows(P, np.array([0, 1, 2, 7]), 1, 2)
    with pytest.raises(ValueError, match="floor"):
        sketch_rows(P, y, 1, 2, np.zeros(4))


# ---------------------------------------------------------------------------
# The certificate on CSR sketches, against the full rows
# ---------------------------------------------------------------------------
def _csr_sketch(P, y, mmin, cap, floor, tau):
    from labelsift._cl.sketch import Sketch
    ptr, cls, vals, rest, cert, _ = sketch_rows(P, y, mmin, cap, floor, tau)
    n, k = P.shape
    return Sketch(np.arange(n, dtype=np.int64), y.astype(np.int64), P[np.arange(n), y].copy(), ptr,
                  cls.astype(np.int64), vals, rest, cert, np.empty(0, np.int64), np.empty((0, k), P.dtype), k,
                  P.dtype)


def _true_guess_keep(P, y, cut):
    from labelsift._cl.rules import confident_guess, given_beaten
    v = P.astype(np.float64)
    passes = v >= cut
    guess = confident_guess(np.count_nonzero(passes, axis=1), np.argmax(passes, axis=1), np.argmax(v, axis=1))
    nudged = (P[np.arange(len(P)), y] + np.asarray(1e-6, dtype=P.dtype)).astype(np.float64)
    keep = ~given_beaten(np.arange(P.shape[1])[None, :], v, y, nudged)
    return guess, keep


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n=st.integers(1, 40), k=st.integers(1, 30), dtype=st.sampled_from(DTYPES),
       decimals=st.sampled_from([None, 1, 2]), mmin=st.integers(1, 4), extra=st.integers(0, 8),
       floors=st.sampled_from(["none", "at_cut", "below_cut"]), tau=st.sampled_from([np.inf, 0.0, 0.05]))
def test_certificate_never_claims_a_wrong_answer(seed, n, k, dtype, decimals, mmin, extra, floors, tau):
    from labelsift._cl.sketch import _guesses, _keeps, _min_unknown_cut
    P, y = _rows(seed, n, k, dtype, decimals)
    rng = np.random.default_rng(seed + 2)
    cut = rng.uniform(0.0, 0.4, k)
    floor = {"none": None, "at_cut": cut, "below_cut": cut * rng.uniform(0.2, 1.0, k)}[floors]
    sk = _csr_sketch(P, y, mmin, mmin + extra, floor, tau)
    guess, g_dec = _guesses(sk, cut)
    # the C++ kernel against its NumPy definition: every guess and every decided flag
    from labelsift._cl.sketch import _guesses_numpy
    ng, nd = _guesses_numpy(sk, cut)
    assert np.array_equal(guess, ng) and np.array_equal(g_dec, nd) and guess.dtype == ng.dtype
    from labelsift._cl.sketch import _keeps_numpy
    nk, nkd = _keeps_numpy(sk)
    kk, kkd = _keeps(sk)
    assert np.array_equal(kk, nk) and np.array_equal(kkd, nkd)
    keep, k_dec = _keeps(sk)
    tg, tk = _true_guess_keep(P, y, cut)
    assert np.array_equal(guess[g_dec], tg[g_dec])
    assert np.array_equal(keep[k_dec], tk[k_dec])
    assert g_dec[sk.cert].all()  # a certified row's guess is always decided
    if floors == "at_cut" and mmin + extra >= k:  # no cap: every left-out class is below its cut
        assert sk.cert.all()
    # the smallest cut among unknown classes, against a direct computation
    rows = np.arange(n)
    got = _min_unknown_cut(sk, rows, cut)
    for i in rows:
        known = np.zeros(k, bool)
        known[sk.ec[sk.ptr[i]:sk.ptr[i + 1]]] = True
        known[y[i]] = True
        assert got[i] == (cut[~known].min() if (~known).any() else np.inf)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n=st.integers(1, 40), k=st.integers(1, 30), dtype=st.sampled_from(DTYPES),
       decimals=st.sampled_from([None, 1, 2]), frac=st.sampled_from([0.0, 0.3, 1.0]))
def test_refined_rows_kernel_equals_numpy(seed, n, k, dtype, decimals, frac):
    """Rows held in full (re-read): the C++ full_rows_tests against the NumPy definitions, and both
    against the true guess and unflagging test; every refined row decided."""
    from labelsift._cl.sketch import _guesses, _guesses_numpy, _keeps, _keeps_numpy
    P, y = _rows(seed, n, k, dtype, decimals)
    rng = np.random.default_rng(seed + 5)
    cut = rng.uniform(0.0, 0.4, k)
    sk = _csr_sketch(P, y, 2, 3, None, np.inf)
    sk.fpos = np.flatnonzero(rng.random(n) < frac).astype(np.int64)
    sk.frows = np.ascontiguousarray(P[sk.fpos])
    guess, g_dec = _guesses(sk, cut)
    ng, nd = _guesses_numpy(sk, cut)
    assert np.array_equal(guess, ng) and np.array_equal(g_dec, nd)
    keep, k_dec = _keeps(sk)
    nk, nkd = _keeps_numpy(sk)
    assert np.array_equal(keep, nk) and np.array_equal(k_dec, nkd)
    tg, tk = _true_guess_keep(P, y, cut)
    assert g_dec[sk.fpos].all() and k_dec[sk.fpos].all()
    assert np.array_equal(guess[sk.fpos], tg[sk.fpos]) and np.array_equal(keep[sk.fpos], tk[sk.fpos])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(0, 300), k=st.sampled_from([1, 3, 200, 40000]))
def test_class_then_descending_order_equals_lexsort(seed, n, k):
    from labelsift._cl.sketch_prune import _by_class_then_desc
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    v = np.round(rng.normal(size=n), 1)  # many ties
    v[rng.random(n) < 0.1] = -np.inf
    v[rng.random(n) < 0.1] = -0.0
    assert np.array_equal(_by_class_then_desc(y, v, k), np.lexsort((np.arange(n), -v, y)))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), m=st.integers(0, 400), ngroups=st.integers(1, 30))
def test_group_sort_equals_lexsort(seed, m, ngroups):
    """The C++ group_sort_desc (the prune certificate's known margins by pair) against np.lexsort,
    with ties in the key, -0.0 and -inf; (group, id) unique as in the sketch."""
    from labelsift._common.backend import core
    rng = np.random.default_rng(seed)
    ids = rng.permutation(10 * m + 1)[:m].astype(np.int64)
    g = rng.integers(0, ngroups, m).astype(np.int64)
    key = np.round(rng.normal(size=m), 1)
    key[rng.random(m) < 0.1] = -0.0
    key[rng.random(m) < 0.05] = -np.inf
    o, start = core().group_sort_desc(g, key, ids, ngroups, 0)
    assert np.array_equal(o, np.lexsort((ids, -key, g)))
    assert np.array_equal(start, np.concatenate(([0], np.cumsum(np.bincount(g, minlength=ngroups)))))
