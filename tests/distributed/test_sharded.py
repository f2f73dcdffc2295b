"""The exact sharded scheme (labelsift._cl.sharded) in one process, against
the single-process calls, on any split of the rows: hypothesis draws the
data (with many equal values), the split (empty shards, one-row shards) and
the options."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labelsift
from labelsift._cl import sharded

FILTERS = ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
           "low_normalized_margin", "low_self_confidence"]


@st.composite
def problems(draw):
    n = draw(st.integers(2, 200))  # classes over 16 rows: NumPy's sort is no longer stable there
    k = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    levels = draw(st.sampled_from([3, 6, 0]))  # 0: continuous values, else few distinct values (ties)
    P = rng.random((n, k)) ** 3 + 1e-3
    if levels:
        P = np.round(P * levels) + 1e-3
    P /= P.sum(1, keepdims=True)
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    labels = np.where(rng.random(n) < 0.7, P.argmax(1), rng.integers(0, k, n)).astype(np.int64)
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=5)))
    bounds = [0, *cuts, n]
    return labels, P.astype(dtype), bounds


def _shards(labels, P, bounds):
    return [(labels[lo:hi], P[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.sampled_from(FILTERS), st.sampled_from(["cleanlab", "lower_index"]),
       st.sampled_from([None, "self_confidence", "normalized_margin"]))
def test_find_matches_single_process(prob, filter_by, ties, rank_by):
    labels, P, bounds = prob
    want = labelsift.find_label_issues(labels, P, filter_by=filter_by, ties=ties, return_indices_ranked_by=rank_by)
    ex = sharded.LocalExecutor(_shards(labels, P, bounds))
    masks, ranked = sharded.find(ex, sharded.place(ex), filter_by=filter_by, ties=ties, rank_by=rank_by)
    got = ranked if rank_by is not None else np.concatenate(ex.local(masks))
    assert _same(got, want), (bounds, filter_by, ties)


@settings(max_examples=40, deadline=None)
@given(problems(), st.booleans(), st.sampled_from(["cleanlab", "lower_index"]))
def test_joint_and_thresholds_match_single_process(prob, calibrate, ties):
    labels, P, bounds = prob
    ex = sharded.LocalExecutor(_shards(labels, P, bounds))
    w = sharded.place(ex)
    cj, off = sharded.joint(ex, w, calibrate_=calibrate, ties=ties, want_off=True)
    want_cj, want_off = labelsift.compute_confident_joint(labels, P, calibrate=calibrate, ties=ties,
                                                          return_indices_of_off_diagonals=True)
    assert _same(cj, want_cj) and _same(off, want_off)
    assert _same(w.thresholds, labelsift.get_confident_thresholds(labels, P))
    for m in ("off_diagonal", "off_diagonal_calibrated"):
        ex = sharded.LocalExecutor(_shards(labels, P, bounds))
        assert sharded.num_label_issues(ex, sharded.place(ex), estimation_method=m, ties=ties) == \
            labelsift.num_label_issues(labels, P, estimation_method=m, ties=ties)


def test_a_bad_value_raises_the_single_process_error_whichever_shard_holds_it():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(4), 50)
    labels = P.argmax(1)
    P[37, 2] = -0.5
    try:
        labelsift.find_label_issues(labels, P)
    except ValueError as exc:
        want = str(exc)
    for bounds in ([0, 50], [0, 10, 37, 38, 50], [0, 0, 40, 50]):
        ex = sharded.LocalExecutor(_shards(labels, P, bounds))
        try:
            sharded.find(ex, sharded.place(ex))
        except ValueError as exc:
            assert str(exc) == want
        else:
            raise AssertionError("no error")


def test_cleanlab_ties_follow_numpys_sort_across_shards():
    """Classes of a few hundred rows with few distinct values: cleanlab's
    order among equal margins (NumPy's unstable sort) differs from the lower
    index, and the shards still give the single process's mask."""
    rng = np.random.default_rng(5)
    n, k = 900, 3
    P = np.round(rng.random((n, k)) * 4) + 1e-3
    P /= P.sum(1, keepdims=True)
    labels = rng.integers(0, k, n)
    want = labelsift.find_label_issues(labels, P, ties="cleanlab")
    assert not np.array_equal(want, labelsift.find_label_issues(labels, P, ties="lower_index"))
    for bounds in ([0, 300, 301, 900], [0, 0, 450, 899, 900]):
        ex = sharded.LocalExecutor(_shards(labels, P, bounds))
        masks, _ = sharded.find(ex, sharded.place(ex), ties="cleanlab")
        assert _same(np.concatenate(ex.local(masks)), want)


def _count_given_sweeps(monkeypatch):
    """Record the first global row of every P[i, y_i] sweep of a shard."""
    calls = []
    real = sharded.given_probs
    monkeypatch.setattr(sharded, "given_probs", lambda sh: calls.append(sh.offset) or real(sh))
    return calls


@pytest.mark.parametrize("filter_by", FILTERS)
@pytest.mark.parametrize("rank_by", [None, "self_confidence", "normalized_margin"])
def test_find_reads_the_given_probabilities_once_per_shard(monkeypatch, filter_by, rank_by):
    """step_rows keeps the P[i, y_i] of exchange 1 (step_given) instead of
    sweeping the shard for them again; the results stay the single process's."""
    rng = np.random.default_rng(11)
    P = rng.dirichlet(np.ones(4) * 0.5, 120).astype(np.float32)
    labels = np.where(rng.random(120) < 0.7, P.argmax(1), rng.integers(0, 4, 120))
    bounds = [0, 30, 30, 95, 120]
    calls = _count_given_sweeps(monkeypatch)
    ex = sharded.LocalExecutor(_shards(labels, P, bounds))
    masks, ranked = sharded.find(ex, sharded.place(ex), filter_by=filter_by, rank_by=rank_by, ties="cleanlab")
    assert calls == bounds[:-1]  # one sweep per shard (the empty one included), in shard order
    want = labelsift.find_label_issues(labels, P, filter_by=filter_by, return_indices_ranked_by=rank_by,
                                       ties="cleanlab")
    assert _same(ranked if rank_by is not None else np.concatenate(ex.local(masks)), want)
