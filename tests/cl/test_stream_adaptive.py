"""The accumulator's adaptive sketch (``sketch="adaptive"``, issue 15): the
trim that keeps it within budget against ``sketch_rows`` at the higher
level, the full-row check of ``refine``, exactness against the in-memory
API in both tie modes (peaked, flat, tie-heavy rows; any batching; budgets
small enough to trim), the flat K = 1000 case top-8 cannot decide, the
budget, merging across levels, and format-2 checkpoints as a trust
boundary. The in-memory functions on the rows sorted by id are the truth."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labelsift
from labelsift._cl import adaptive
from labelsift._cl.sketch import sketch_rows
from labelsift.stream import ConfidentJointAccumulator as A
from support.data import grouped_softmax, tie_heavy

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
TIES = ["cleanlab", "lower_index"]


def flat(n, k, seed, bump=4.45, spread=0.5, noise=0.2, dtype=np.float32):
    """Flat softmax rows (bump 4.45 over N(0, 0.5) logits: ~7% on the true class at K = 1000), uniform flips."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    z = rng.standard_normal((n, k)) * spread
    z[np.arange(n), true] += bump
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = true.copy()
    flip = rng.random(n) < noise
    y[flip] = (true[flip] + rng.integers(1, k, int(flip.sum()))) % k
    return y, p.astype(dtype)


def data(kind, n, k, seed, dtype):
    if kind == "peaked":
        return grouped_softmax(n, k, dtype, seed=seed)
    if kind == "flat":
        return flat(n, k, seed, dtype=dtype)
    return tie_heavy(seed, n, k, 2, dtype=dtype)


def in_memory(y, p, ties):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        py, nm, inv, cj = labelsift.estimate_py_and_noise_matrices_from_probabilities(y, p, ties=ties)
        return dict(thresholds=labelsift.get_confident_thresholds(y, p), confident_joint=cj, py=py, noise_matrix=nm,
                    inverse_noise_matrix=inv, joint=labelsift.estimate_joint(y, p, ties=ties),
                    label_issues=labelsift.find_label_issues(y, p, ties=ties))


def assert_equal(res, ref):
    assert res.exact and res.num_uncertain == 0
    for name, want in ref.items():
        got = getattr(res, name)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


def refine_to_exact(acc, p_by_id, ties, rounds=3):
    res = acc.result(ties=ties)
    for _ in range(rounds):
        if res.exact:
            break
        ids = res.refine_ids
        assert len(ids)
        acc.refine(ids, p_by_id[ids])
        res = acc.result(ties=ties)
    return res


# ---------------------------------------------------------------------------
# The trim and the full-row check
# ---------------------------------------------------------------------------
def _rows(seed, n, k, dtype, decimals):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(k, rng.choice([0.1, 1.0, 10.0])), n)
    if decimals is not None:
        P = np.round(P, decimals)
    return P.astype(dtype), rng.integers(0, k, n)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(1, 40), k=st.integers(2, 30), mm=st.integers(1, 6),
       cap=st.integers(1, 40), dtype=st.sampled_from([np.float16, np.float32, np.float64]),
       decimals=st.sampled_from([None, 1, 2]), taus=st.lists(st.floats(-0.5, 0.5), min_size=2, max_size=2))
def test_trim_is_the_sketch_at_the_higher_level(seed, n, k, mm, cap, dtype, decimals, taus):
    P, y = _rows(seed, n, k, dtype, decimals)
    cap = max(cap, mm)
    lo, hi = sorted(taus)
    if seed % 4 == 0:
        lo = -np.inf
    part = (np.arange(n), y.astype(np.int32)) + (None,) * 5
    c, cls, vals, rest, g = adaptive.sketch_batch(P, y, min(mm, k), cap, lo, np.int32)
    part = (np.arange(n), y.astype(np.int32), g, c, cls, vals, rest)
    got = adaptive.trim(part, hi, min(mm, k))
    ptr, wc, wv, wr, _, wg = sketch_rows(P, y, min(mm, k), cap, None, hi)
    np.testing.assert_array_equal(got[3], np.diff(ptr))
    np.testing.assert_array_equal(got[4], wc)
    np.testing.assert_array_equal(got[5], wv)
    np.testing.assert_array_equal(got[6], wr)  # (-0.0 == 0.0)
    np.testing.assert_array_equal(got[2], wg)
    # and the full rows agree with the trimmed sketch, a changed row does not
    assert adaptive.full_row_agrees(P, y, got[2], got[3], got[4], got[5], got[6], min(mm, k), np.int32).all()


def test_full_row_check_catches_changed_rows():
    y, P = grouped_softmax(200, 12, np.float64, seed=3)
    c, cls, vals, rest, g = adaptive.sketch_batch(P, y, 2, 64, 0.0, np.int32)
    ok = adaptive.full_row_agrees(P, y, g, c, cls, vals, rest, 2, np.int32)
    assert ok.all()
    Q = P.copy()
    ptr = adaptive.ptr_of(c)
    r = 5
    out = np.setdiff1d(np.arange(12), np.r_[cls[ptr[r]:ptr[r + 1]], y[r]])
    Q[r, out[0]], Q[r, cls[ptr[r]]] = Q[r, cls[ptr[r]]], Q[r, out[0]]  # the argmax moves to a left-out class
    Q[7, y[7]] += 1e-9  # the given value differs
    Q[9, out[0] if out[0] != y[9] else out[1]] *= 0.999  # a left-out value below rest
    bad = ~adaptive.full_row_agrees(Q, y, g, c, cls, vals, rest, 2, np.int32)
    assert bad[r] and bad[7]
    assert bad.sum() >= 2


# ---------------------------------------------------------------------------
# Exactness against the in-memory API
# ---------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(["peaked", "flat", "ties"]),
       k=st.sampled_from([3, 10, 40, 200]), n=st.integers(20, 1500), nb=st.integers(1, 6),
       dtype=st.sampled_from([np.float16, np.float32, np.float64]), top_m=st.integers(1, 8),
       avg=st.sampled_from([1, 3, 16, 64]), mx=st.sampled_from([1, 4, 64, 1024]), ties=st.sampled_from(TIES))
def test_exact_equals_in_memory(seed, kind, k, n, nb, dtype, top_m, avg, mx, ties):
    y, p = data(kind, n, k, seed % 1000, dtype)
    rng = np.random.default_rng(seed)
    ids = rng.permutation(n)  # id i holds row i; the batches come in a random order
    acc = A(k, top_m=top_m, avg_entries=avg, max_entries=mx)
    cuts = np.sort(rng.choice(np.arange(1, n), min(nb, n) - 1, replace=False)) if nb > 1 else []
    for part in np.split(ids, cuts):
        acc.update(part, y[part], p[part])
        s = acc.stats()
        assert s["entries"] <= avg * s["examples"] or s["entries"] <= min(top_m, k) * s["examples"]
    ref = in_memory(y, p, ties)
    first = acc.result(ties=ties)
    np.testing.assert_array_equal(first.thresholds, ref["thresholds"])
    decided = ~first.uncertain
    np.testing.assert_array_equal(first.label_issues[decided], ref["label_issues"][decided])
    if first.counts_exact:
        np.testing.assert_array_equal(first.confident_joint, ref["confident_joint"])
    assert_equal(refine_to_exact(acc, p, ties), ref)


def _flat_vs_top8(n, k, bump, ties, check):
    y, p = flat(n, k, seed=4, bump=bump)
    new, old = A(k), A(k, sketch="top_m")
    for a in range(0, n, 4000):
        ids = np.arange(a, min(n, a + 4000))
        new.update(ids, y[ids], p[ids])
        old.update(ids, y[ids], p[ids])
    r_new, r_old = new.result(ties=ties), old.result(ties=ties)
    assert r_old.num_uncertain > 0.05 * n  # what the issue is about: top-8 leaves many flat rows open
    assert new.stats()["entries_per_row"] <= 64
    if check:
        ref = in_memory(y, p, ties)
        decided = ~r_new.uncertain
        np.testing.assert_array_equal(r_new.label_issues[decided], ref["label_issues"][decided])
        assert_equal(refine_to_exact(new, p, ties), ref)
    return r_new.num_uncertain


@pytest.mark.parametrize("ties", TIES)
def test_flat_rows_one_pass_decides_what_top8_cannot(ties):
    # K = 200 with the flatness of the issue's K = 1000 case (true class ~7.7%, 20% noise), 64 rows per class
    n = 12800
    assert _flat_vs_top8(n, 200, 2.83, ties, check=True) <= 0.005 * n


@pytest.mark.slow
@pytest.mark.parametrize("ties", TIES)
def test_flat_k1000_128k_rows_leave_at_most_half_a_percent_open(ties):
    # (with 12 rows per class, n = 12000, 2-4% stay open: few rows per class put the tail cuts nearer the level)
    assert _flat_vs_top8(128000, 1000, 4.45, ties, check=False) <= 0.005 * 128000


# ---------------------------------------------------------------------------
# Budget, memory, merging across levels
# ---------------------------------------------------------------------------
def test_budget_level_and_memory_report():
    n, k = 6000, 300
    y, p = flat(n, k, seed=5)
    acc = A(k, top_m=2, avg_entries=10, max_entries=200)
    levels = []
    for a in range(0, n, 500):
        ids = np.arange(a, a + 500)
        acc.update(ids, y[ids], p[ids])
        s = acc.stats()
        assert s["entries"] <= 10 * s["examples"]
        assert s["max_row_entries"] <= 200
        levels.append(acc.level)
    assert levels == sorted(levels) and levels[-1] > 0  # raised, never lowered
    held = sum(a.nbytes for part in acc._parts for a in part) + sum(r.nbytes for r in acc._ids.runs)
    assert acc.memory_bytes() == held
    s = acc.stats()
    assert s["bytes_per_row"] <= 10 * (4 + 2) + 24 + 2 * 4
    assert s["entries"] == len(acc.state_dict()["classes"])
    top = A(k, sketch="top_m", top_m=3).update(np.arange(n), y, p).stats()
    assert top["entries_per_row"] == 3 and np.isnan(top["level"])
    for ties in TIES:
        assert_equal(refine_to_exact(acc, p, ties), in_memory(y, p, ties))


def test_merge_across_levels_and_all_reduce_parameters():
    n, k = 4000, 200
    y, p = flat(n, k, seed=6)
    a = A(k, top_m=2, avg_entries=20).update(np.arange(0, 3000), y[:3000], p[:3000])
    b = A(k, top_m=2, avg_entries=20).update(np.arange(3000, n), y[3000:], p[3000:])
    la, lb = a.level, b.level
    a.merge(b)
    assert a.level >= max(la, lb) and len(a) == n
    assert a.stats()["entries"] <= 20 * n
    for ties in TIES:
        c = A.from_state_dict(a.state_dict())
        assert_equal(refine_to_exact(c, p, ties), in_memory(y, p, ties))
    with pytest.raises(ValueError, match="sketch 'top_m' != 'adaptive'"):
        a.merge(A(k, top_m=2, sketch="top_m"))
    with pytest.raises(ValueError, match="avg_entries"):
        a.merge(A(k, top_m=2, avg_entries=21))
    assert repr(a._like()).startswith(f"ConfidentJointAccumulator(num_classes={k}, top_m=2, sketch='adaptive', "
                                      "avg_entries=20, max_entries=1024")


# ---------------------------------------------------------------------------
# Checkpoints (format 2)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_round_trip_and_resume(dtype, tmp_path):
    n, k = 3000, 50
    y, p = flat(n, k, seed=7, dtype=dtype)
    ids = np.random.default_rng(8).permutation(n) * 3 - 500
    acc = A(k, avg_entries=8)
    for part in np.array_split(np.arange(2000), 3):
        acc.update(ids[part], y[part], p[part])
    acc.refine(ids[:4], p[:4])
    st = acc.state_dict()
    assert st["format_version"] == 2 and all(isinstance(v, (int, np.ndarray)) for v in st.values())
    np.savez(tmp_path / "a.npz", **st)
    with np.load(tmp_path / "a.npz") as z:
        b = A.from_state_dict(z)
    assert (b.sketch, b.level, b.avg_entries) == ("adaptive", acc.level, 8)
    st2 = b.state_dict()
    for key in st:
        np.testing.assert_array_equal(st2[key], st[key], err_msg=key)
        assert np.asarray(st2[key]).dtype == np.asarray(st[key]).dtype, key
    # rows in another order are accepted
    o = np.random.default_rng(1).permutation(2000)
    counts = np.diff(st["ptr"])
    ent = adaptive.gather_rows(counts.astype(np.int32), o)
    shuffled = dict(st, ids=st["ids"][o], labels=st["labels"][o], given=st["given"][o], rest=st["rest"][o],
                    ptr=adaptive.ptr_of(counts[o]), classes=st["classes"][ent], values=st["values"][ent])
    c = A.from_state_dict(shuffled)
    for x in (acc, b, c):
        x.update(ids[2000:], y[2000:], p[2000:])
    r = [x.result() for x in (acc, b, c)]
    for f in ("label_issues", "uncertain", "to_refine", "confident_joint", "indices"):
        np.testing.assert_array_equal(r[1].__dict__[f], r[0].__dict__[f], err_msg=f)
        np.testing.assert_array_equal(r[2].__dict__[f], r[0].__dict__[f], err_msg=f)
    with pytest.raises(ValueError, match=f"id {int(ids[0])}"):
        b.update(ids[:1], y[:1], p[:1])


def test_format_1_still_loads_and_kinds_are_not_mixed():
    y, p = grouped_softmax(500, 10, np.float32, seed=9)
    old = A(10, top_m=3, sketch="top_m").update(np.arange(500), y, p)
    st1 = old.state_dict()
    assert st1["format_version"] == 1 and "top_classes" in st1
    back = A.from_state_dict(st1)
    assert back.sketch == "top_m"
    np.testing.assert_array_equal(back.result().label_issues, old.result().label_issues)
    with pytest.raises(ValueError, match="format_version 1 is a sketch='top_m' checkpoint"):
        A(10, top_m=3).load_state_dict(st1)
    st2 = A(10, top_m=3).update(np.arange(500), y, p).state_dict()
    with pytest.raises(ValueError, match="format_version 2 is a sketch='adaptive' checkpoint"):
        A(10, top_m=3, sketch="top_m").load_state_dict(st2)
    with pytest.raises(ValueError, match="format_version 7"):
        A.from_state_dict(dict(st2, format_version=7))
    empty = A.from_state_dict(A(10).state_dict())
    assert len(empty) == 0 and empty.sketch == "adaptive"


def _state():
    y, p = flat(300, 8, seed=10, dtype=np.float64)
    ids = np.arange(300) * 7 + 11
    acc = A(8, top_m=2, avg_entries=4).update(ids, y, p)
    acc.refine(ids[:5], p[:5])
    st = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in acc.state_dict().items()}
    return acc, st, p


def _row_with(st, cond):
    counts = np.diff(st["ptr"])
    return int(np.flatnonzero(cond(counts))[0])


def _t_unsorted(st):
    r = _row_with(st, lambda c: c >= 3)
    s = st["ptr"][r]
    st["values"][s:s + 2] = st["values"][s:s + 2][::-1].copy()
    st["classes"][s:s + 2] = st["classes"][s:s + 2][::-1].copy()


def _t_rest_above(st):
    r = _row_with(st, lambda c: c < 8)
    st["rest"][r] = st["values"][st["ptr"][r + 1] - 1] + 1e-3


def _t_repeat(st):
    r = _row_with(st, lambda c: c >= 2)
    s = st["ptr"][r]
    st["classes"][s + 1] = st["classes"][s]


def _t_ptr_down(st):
    st["ptr"][3] = st["ptr"][2] - 1


def _t_given(st):
    in_row = np.repeat(np.arange(300), np.diff(st["ptr"]))[st["classes"] == st["labels"][
        np.repeat(np.arange(300), np.diff(st["ptr"]))]]
    st["given"][in_row[0]] *= 0.5


def _t_given_out(st):
    rows = np.repeat(np.arange(300), np.diff(st["ptr"]))
    has = np.zeros(300, bool)
    has[rows[st["classes"] == st["labels"][rows]]] = True
    r = int(np.flatnonzero(~has)[0])
    st["given"][r] = min(1.0, st["values"][st["ptr"][r]] + 0.01)


def _t_label_late(st):
    r = _row_with(st, lambda c: c >= 3)
    s = st["ptr"][r]
    st["classes"][s + 2] = st["labels"][r]


def _t_sum(st):
    rows = np.repeat(np.arange(300), np.diff(st["ptr"]))
    has = np.zeros(300, bool)
    has[rows[st["classes"] == st["labels"][rows]]] = True
    r = int(np.flatnonzero(~has & (np.diff(st["ptr"]) >= 2))[0])
    s = st["ptr"][r]
    st["values"][s:s + 2] = [0.9, 0.8]  # (still descending, the left-out label below both)


def _t_refined(st):
    st["refined_rows"][0] = st["refined_rows"][0][::-1].copy()


def _t_rest_inf(st):
    st["rest"][_row_with(st, lambda c: c < 7)] = -np.inf


def _t_set(key, value):
    def f(st):
        st[key] = value
    return f


def _t_del(key):
    def f(st):
        del st[key]
    return f


@pytest.mark.parametrize("name, fn, exc, match", [
    ("values unsorted", _t_unsorted, ValueError, r"'values' is not in descending order|contradicts|repeats"),
    ("rest above the smallest value", _t_rest_above, ValueError, r"'rest'.*exceeds"),
    ("rest -inf while classes are left out", _t_rest_inf, ValueError, r"'rest' must be -inf exactly"),
    ("class repeated in a row", _t_repeat, ValueError, r"'classes' repeats class"),
    ("ptr decreasing", _t_ptr_down, ValueError, r"'ptr' decreases"),
    ("given contradicts the kept value", _t_given, ValueError, r"'given'.*contradicts the value kept"),
    ("given above a kept top value while left out", _t_given_out, ValueError, r"'given'.*contradicts its label"),
    ("label kept past the top-mm", _t_label_late, ValueError, r"given label is kept past|repeats"),
    ("row cannot sum to 1", _t_sum, ValueError, r"cannot be a probability row"),
    ("refined row contradicts the sketch", _t_refined, ValueError, r"'refined_rows'.*contradicts the sketch"),
    ("class K", lambda st: st["classes"].__setitem__(0, 8), ValueError, r"'classes' holds 8, outside 0\.\.7"),
    ("class negative", lambda st: st.__setitem__("classes", st["classes"].astype(np.int64)) or
     st["classes"].__setitem__(0, -1), ValueError, r"'classes' holds -1"),
    ("value NaN", lambda st: st["values"].__setitem__(0, np.nan), ValueError, r"'values'.*non-finite"),
    ("value 2.0", lambda st: st["values"].__setitem__(0, 2.0), ValueError, r"'values'.*outside"),
    ("rest NaN", lambda st: st["rest"].__setitem__(0, np.nan), ValueError, r"'rest'.*non-finite"),
    ("values float32", lambda st: st.__setitem__("values", st["values"].astype(np.float32)), ValueError,
     r"'values'.*dtype float32"),
    ("classes float", lambda st: st.__setitem__("classes", st["classes"].astype(float)), TypeError,
     r"'classes'.*integer"),
    ("ptr too short", lambda st: st.__setitem__("ptr", st["ptr"][:-1]), ValueError, r"'ptr'.*shape"),
    ("ptr end wrong", lambda st: st.__setitem__("values", st["values"][:-1]), ValueError,
     r"'classes' and 'values' have shapes"),
    ("ptr not from 0", lambda st: st["ptr"].__setitem__(slice(None), st["ptr"] + 1), ValueError, r"'ptr' must start at 0"),
    ("row over max_entries", lambda st: st.__setitem__("max_entries", 1), ValueError, r"'ptr' gives \d+ entries"),
    ("labels K", lambda st: st["labels"].__setitem__(0, 8), ValueError, r"'labels'.*outside 0\.\.7"),
    ("level NaN", _t_set("level", np.asarray(np.nan)), ValueError, r"'level' is NaN"),
    ("level a string", _t_set("level", "0.1"), TypeError, r"'level' must be a real number"),
    ("level bool", _t_set("level", True), TypeError, r"'level' must be a real number"),
    ("avg_entries 0", _t_set("avg_entries", 0), ValueError, r"'avg_entries' must be in"),
    ("avg_entries 2.5", _t_set("avg_entries", 2.5), TypeError, r"'avg_entries'"),
    ("no ptr", _t_del("ptr"), ValueError, r"no 'ptr'"),
    ("no level", _t_del("level"), ValueError, r"no 'level'"),
    ("an unknown field", _t_set("top_classes", np.zeros(3)), ValueError, r"unknown field.*'top_classes'"),
    ("dtype_bits 32", _t_set("dtype_bits", 32), ValueError, r"'given'.*dtype float64, expected float32"),
])
def test_tampered_format_2_checkpoints_are_refused(name, fn, exc, match):
    acc, st, _ = _state()
    before = acc.result().label_issues
    fn(st)
    with pytest.raises(exc, match=match):
        A.from_state_dict(st)
    if "max_entries" not in name and "avg_entries" not in name:
        with pytest.raises(exc, match=match):
            acc.load_state_dict(st)
    assert len(acc) == 300 and np.array_equal(acc.result().label_issues, before)  # left as it was


def test_untampered_state_loads():
    acc, st, p = _state()
    b = A.from_state_dict(st)
    np.testing.assert_array_equal(b.result().label_issues, acc.result().label_issues)
    with pytest.raises(ValueError, match="was already refined"):
        b.refine(st["refined_ids"][:1], p[:1])


def test_refine_checks_the_row():
    y, p = flat(200, 20, seed=11)
    acc = A(20, top_m=2, avg_entries=3).update(np.arange(200), y, p)
    q = p[:2].copy()
    q[0] = q[0][::-1]
    with pytest.raises(ValueError, match="id 0 differ"):
        acc.refine(np.arange(2), q)
    acc.refine(np.arange(2), p[:2])
    with pytest.raises(ValueError, match="id 1 was already refined"):
        acc.refine(np.arange(1, 3), p[1:3])
