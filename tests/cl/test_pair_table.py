"""The pair table of the one-read path (issue 15): for every given class and
column the best few rows by prune margin. The C++ kernel against the NumPy
definition and against the full-data definition, fed in any block order and
on any thread count; and the one-read answer with and without it."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labelsift
from labelsift._common.backend import core
from labelsift._cl import oneread
from labelsift._cl.sketch import PairTable, pair_slots, sketch_rows

from support.data import dirichlet_rows  # noqa: E402

DTYPES = [np.float16, np.float32, np.float64]


def _rows(seed, n, k, dtype, decimals):
    return dirichlet_rows(seed, n, k, dtype, decimals, (0.2, 1.0, 5.0))


def _definition(P, y, slots, runner=False):
    """Per (k, j != k): the rows of class k by (margin in the dtype desc, id asc), first `slots`
    (``runner``: also the best margin of the rows left out, -inf when none is)."""
    n, K = P.shape
    want_v = np.full((K, slots, K), -np.inf)
    want_i = np.full((K, slots, K), -1, np.int64)
    want_r = np.full((K, K), -np.inf)
    for k in range(K):
        rows = np.flatnonzero(y == k)
        for j in range(K):
            if j == k or len(rows) == 0:
                continue
            m = (P[rows, j] - P[rows, k]).astype(P.dtype).astype(np.float64)
            full = np.lexsort((rows, -m))
            order = full[:slots]
            want_v[k, : len(order), j] = m[order]
            want_i[k, : len(order), j] = rows[order]
            if len(full) > slots:
                want_r[k, j] = m[full[slots]]
    return (want_v, want_i, want_r) if runner else (want_v, want_i)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n=st.integers(0, 120), k=st.integers(2, 40), slots=st.integers(1, 4),
       dtype=st.sampled_from(DTYPES), decimals=st.sampled_from([None, 1, 2]), nblocks=st.integers(1, 5),
       threads=st.sampled_from([1, 2, 3]))
def test_kernel_equals_definition_in_any_block_order(seed, n, k, slots, dtype, decimals, nblocks, threads):
    """k up to 40: the AVX2 scan's 8-column compares, its tail, and the given class in either."""
    P, y = _rows(seed, n, k, dtype, decimals)
    cuts = np.sort(np.random.default_rng(seed).integers(0, n + 1, nblocks - 1)) if n else []
    bounds = list(zip([0, *cuts], [*cuts, n]))
    np.random.default_rng(seed + 1).shuffle(bounds)  # blocks in any order
    got = PairTable(k, slots, dtype, n)
    ref = PairTable(k, slots, dtype, n)
    skipping = PairTable(k, slots, dtype, n)  # fed with each block's sketch: rows below the worst slots skipped
    for a, b in bounds:
        yb = y[a:b].astype(np.int64)
        core().pair_top_update(P[a:b], yb, a, slots, got.vals, got.ids, nthreads=threads, runner=got.runner)
        ref.update_numpy(P[a:b], y[a:b], a)
        part = sketch_rows(P[a:b], yb, 1, max(1, k // 3), None, np.inf)  # few kept classes: most left out
        ptr, cls, _, rest = part[:4]
        core().pair_top_update(P[a:b], yb, a, slots, skipping.vals, skipping.ids, skipping.low, rest, ptr,
                               cls.astype(np.int32), threads, skipping.runner)
    want_v, want_i, want_r = _definition(P, y, slots, runner=True)
    for t in (got, ref, skipping):
        assert np.array_equal(t.ids, want_i) and np.array_equal(t.vals.astype(np.float64), want_v)
    # the runner-up: exact in the definition; in the kernels a bound that ties the worst slot exactly when
    # a row outside the slots does (rows never offered were below the worst slot of their time)
    worst = want_v[:, -1, :]
    assert np.array_equal(ref.runner.astype(np.float64), want_r)
    for t in (got, skipping):
        r = t.runner.astype(np.float64)
        assert (r <= want_r).all()
        assert np.array_equal(r >= worst, want_r >= worst)
    if n:  # the bounds are bounds: every filled worst slot of a class is at least its low
        worst = skipping.vals[:, -1, :].astype(np.float64)
        assert all((worst[c][np.arange(k) != c] >= skipping.low[c]).all() for c in range(k))


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_rows_and_wide_ids(dtype):
    P, y = _rows(7, 300, 6, dtype, 2)
    big = np.zeros((300, 13), dtype)
    big[:, ::2][:, :6] = P
    view = big[:, ::2][:, :6]  # strided columns
    t = PairTable(6, 2, dtype, 300)
    t.ids = t.ids.astype(np.int64)  # the int64 ids of dumps past 2**31 rows
    t.update(view, y, 0)
    want_v, want_i = _definition(P, y, 2)
    assert np.array_equal(t.ids, want_i) and np.array_equal(t.vals.astype(np.float64), want_v)


def test_kernel_refuses_bad_tables_and_labels():
    P, y = _rows(1, 10, 4, np.float32, None)
    t = PairTable(4, 2, np.float32, 10)
    with pytest.raises(ValueError, match="bad table"):
        core().pair_top_update(P, y.astype(np.int64), 0, 3, t.vals, t.ids, nthreads=1)  # slots do not match
    with pytest.raises(ValueError, match="bad table"):
        core().pair_top_update(P, y.astype(np.int64), 0, 2, t.vals.astype(np.float64), t.ids, nthreads=1)
    with pytest.raises(ValueError, match="rest needs low"):
        core().pair_top_update(P, y.astype(np.int64), 0, 2, t.vals, t.ids, None, P[:, 0].copy())
    bad = y.astype(np.int64)
    bad[3] = 4
    with pytest.raises(ValueError, match="label out of range"):
        core().pair_top_update(P, bad, 0, 2, t.vals, t.ids, nthreads=1)


def test_slots_fit_the_budget():
    """Slots of 8 bytes an entry (float32 margins, int32 ids) plus the runner-up row of each class."""
    kk = 4000 * 4000
    assert pair_slots(1000, np.float32, 10**6, 1 << 30) == 3
    assert pair_slots(4000, np.float32, 10**6, 3 * kk * 8 + kk * 4) == 3
    assert pair_slots(4000, np.float32, 10**6, 3 * kk * 8 + kk * 4 - 1) == 2
    assert pair_slots(4000, np.float64, 10**6, kk * 12 + kk * 8) == 1
    assert pair_slots(4000, np.float64, 10**6, kk * 8) == 0  # the runner alone
    assert pair_slots(21000, np.float32, 10**7, 1 << 30) == 0


def _flat(n, k, seed):
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
    from bench_sketch import flat_dump
    return flat_dump(n, k, seed=seed)


@pytest.mark.parametrize("ties", ["cleanlab", "lower_index"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_the_table_settles_tail_selections_without_rereads(ties, dtype, tmp_path, monkeypatch):
    """Flat rows: the cuts of the small selections land on tail margins no
    row's sketch keeps; the table settles them, so far fewer rows are read
    again, and the answer is the two-pass one either way."""
    y, P = _flat(8000, 300, seed=4)
    P = P.astype(dtype)
    path = str(tmp_path / "p.npy")
    np.save(path, P)
    with labelsift.options(reads="two"):
        want = labelsift.find_label_issues(y, path, ties=ties)
    reports = {}
    for slots in (0, 3):
        monkeypatch.setattr(oneread, "PAIR_SLOTS", slots)
        with labelsift.options(reads="one"):
            got = labelsift.find_label_issues(y, path, ties=ties)
        reports[slots] = labelsift.read_report()
        assert np.array_equal(got, want), slots
        assert reports[slots]["exact"]
    assert reports[0]["pair_table_bytes"] == 0 and reports[3]["pair_table_bytes"] > 0
    assert reports[3]["rows_reread"] < 0.5 * reports[0]["rows_reread"], reports


def test_the_runner_up_settles_selections_of_slots_rows_with_cleanlab_ties(tmp_path, monkeypatch):
    """ties="cleanlab": a selection of exactly `slots` rows is settled by the table only when its worst
    slot strictly beats every other row of the class -- what the runner-up tells. Without it (a runner
    that ties everything) those selections send rows back to be read; with it none, same answer."""
    from labelsift._cl import sketch_prune
    y, P = _flat(20000, 300, seed=4)
    path = str(tmp_path / "p.npy")
    np.save(path, P)
    with labelsift.options(reads="two"):
        want = labelsift.find_label_issues(y, path, ties="cleanlab")
    with labelsift.options(reads="one"):
        got = labelsift.find_label_issues(y, path, ties="cleanlab")
    with_runner = labelsift.read_report()
    real = sketch_prune._table_pairs

    def blind(sel, table, *args):
        if table is not None:
            table.runner[:] = np.inf  # a bound that proves nothing
        return real(sel, table, *args)

    monkeypatch.setattr(sketch_prune, "_table_pairs", blind)
    with labelsift.options(reads="one"):
        blind_got = labelsift.find_label_issues(y, path, ties="cleanlab")
    without = labelsift.read_report()
    assert np.array_equal(got, want) and np.array_equal(blind_got, want)
    assert with_runner["exact"] and with_runner["rows_reread"] == 0
    assert without["rows_reread"] > 0, without
