"""The K x K algebra (labelsift._cl.latent, NumPy only) against cleanlab's
helpers, and the C++ per-row rounding kernel against its NumPy definition.

K x K results must be identical to cleanlab's (with its rounding ties pinned
to the lower index, see support.oracle); where cleanlab's choice among equal
residuals is arbitrary, labelsift gives the +-1 to the lower index.
"""
from __future__ import annotations

import numpy as np
import pytest

import cleanlab.count
import cleanlab.filter
import cleanlab.internal.util

import labelsift._cl.latent as latent
from support.compare import assert_parts_equal
from support.oracle import (
    ORIGINAL_ROUND_PRESERVING_SUM,
    pinned_cleanlab_rounding,
    round_preserving_sum_lower_index,
)

pytestmark = pytest.mark.filterwarnings("ignore")
assert_equal = np.testing.assert_array_equal


def test_latent_round_preserving_sum_matches_cleanlab_without_ties():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        x = rng.random(n) * rng.choice([1, 10, 1000]) * (rng.random(n) < 0.8)
        x[rng.integers(0, n)] += 0.49  # totals off by a few after rounding
        if len(np.unique(x - x.round())) < n:
            continue  # a tie: cleanlab's order is arbitrary there
        ours = latent.round_preserving_sum(x)
        assert ours.dtype == np.int64
        assert_equal(ours, ORIGINAL_ROUND_PRESERVING_SUM(x))
        assert_equal(ours, round_preserving_sum_lower_index(x))
        assert ours.sum() == np.round(np.sum(x))


def test_latent_round_preserving_sum_ties_go_to_lower_index():
    for x, expected in (([0.3, 0.3, 0.3, 0.1], [1, 0, 0, 0]),
                        ([0.7, 0.7, 0.7, 0.9], [0, 1, 1, 1]),
                        ([0.25] * 8, [1, 1, 0, 0, 0, 0, 0, 0]),
                        ([2.5, 0.5, 1.5, 0.5], [3, 0, 2, 0])):
        assert_equal(latent.round_preserving_sum(x), expected)
        assert_equal(round_preserving_sum_lower_index(x), expected)
        # cleanlab's arbitrary choice: same total, moves among the same tie group.
        theirs = ORIGINAL_ROUND_PRESERVING_SUM(x)
        x = np.asarray(x)
        assert theirs.sum() == np.sum(expected)
        assert sorted((theirs - x.round()).tolist()) == sorted((np.array(expected) - x.round()).tolist())


def _random_joint(rng, k, zero_rows=0):
    cj = rng.integers(0, 60, (k, k)) * (rng.random((k, k)) < 0.5)
    cj[np.diag_indices(k)] += rng.integers(1, 300, k)
    cj[rng.choice(k, zero_rows, replace=False)] = 0
    return cj.astype(np.int64)


def test_latent_calibration_and_estimates_match_cleanlab():
    rng = np.random.default_rng(1)
    compared = 0
    for trial in range(40):
        k = int(rng.choice([2, 3, 7, 30]))
        cj = _random_joint(rng, k, zero_rows=int(trial % 3 == 0))
        counts = rng.integers(0, 500, k) * (rng.random(k) < 0.9)
        if counts.sum() == 0:
            counts[0] = 5
        labels = np.repeat(np.arange(k), counts)
        for matrix in (cj, np.asfortranarray(cj)):
            with pinned_cleanlab_rounding():
                theirs = cleanlab.count.calibrate_confident_joint(matrix, labels)
            calibrated = latent.calibrate_confident_joint(matrix, counts)
            assert_equal(calibrated, theirs)
            for py_method in latent.PY_METHODS:
                for converge in (False, True):
                    try:
                        theirs = cleanlab.count.estimate_latent(
                            matrix, labels, py_method=py_method, converge_latent_estimates=converge)
                    except np.linalg.LinAlgError:
                        continue
                    ours = latent.estimate_latent(matrix, counts, py_method=py_method,
                                                  converge_latent_estimates=converge)
                    assert_parts_equal(ours, theirs)
                    compared += 1
    assert compared >= 500  # of 640 (584 today): a singular matrix skips a method, not the sweep


def test_latent_prune_counts_match_cleanlab():
    rng = np.random.default_rng(2)
    for _ in range(60):
        k = int(rng.choice([2, 3, 10, 40]))
        cj = _random_joint(rng, k)
        for pcm in (cj.T, np.ascontiguousarray(cj.T)):
            for n in (0, 1, 5, 50):
                for frac in (1.0, 0.5, 0.3):
                    with pinned_cleanlab_rounding():
                        theirs = cleanlab.filter._keep_at_least_n_per_class(pcm, n, frac_noise=frac)
                    assert_equal(latent.keep_at_least_n_per_class(pcm, n, frac), theirs)


def test_latent_clip_helpers_match_cleanlab():
    rng = np.random.default_rng(3)
    util = cleanlab.internal.util
    for _ in range(50):
        m = rng.random((5, 5)) * rng.choice([1.0, 3.0])
        for matrix in (m, m.T):
            assert_equal(latent.clip_noise_rates(matrix), util.clip_noise_rates(matrix))
        v = rng.normal(0.3, 0.5, 7)
        assert_equal(latent.clip_values(v, 1e-6, 1.0, 1.0), util.clip_values(v, 1e-6, 1.0, 1.0))
        assert_equal(latent.clip_values(v, 0.0, 0.5), util.clip_values(v, 0.0, 0.5))


def test_latent_prune_counts_for_num_to_remove():
    # pcm[j, k]: true j, given k.  Column 0 has estimated noise 6:2 between
    # classes 1 and 2; column 1 none; column 2 is a class with 1 example.
    pcm = np.array([[20, 0, 0], [6, 10, 0], [2, 0, 1]])
    counts = np.array([28, 10, 1])
    out = latent.prune_counts_for_num_to_remove(pcm, counts, [4, 3, 5])
    assert_equal(out[:, 0], [24, 3, 1])  # 4 split 3:1, total 28
    assert_equal(out[:, 1], [2, 7, 1])  # no estimate: 3 split evenly, remainder to lower index
    assert_equal(out[:, 2], [1, 0, 0])  # r clipped to n_k = 1
    assert_equal(out.sum(axis=0), counts)
    assert_equal(latent.prune_counts_for_num_to_remove(pcm, counts, [0, 0, 0]), np.diag(counts))
    for bad in ([1, 2], [1, -1, 0], [0.5, 1.0, 1.0]):
        with pytest.raises(ValueError):
            latent.prune_counts_for_num_to_remove(pcm, counts, bad)


def test_row_totals_vectorised_equals_per_row_rounding():
    """The C++ round_rows kernel == latent.round_preserving_row_totals (the NumPy definition)."""
    from labelsift._common.backend import core

    rng = np.random.default_rng(7)
    for trial in range(60):
        k = int(rng.integers(1, 40))
        m = rng.random((k, k)) * rng.choice([1, 10, 1000])
        if trial % 3 == 0:  # exact ties in the residuals
            m = np.round(m * 4) / 4
        if trial % 4 == 0:
            m = np.asfortranarray(m)
        if trial % 5 == 0:  # a row whose gap exceeds its length (several rounds)
            m[0] = 0.49
        want = latent.round_preserving_row_totals(m)
        got = core().round_rows(np.ascontiguousarray(m))  # the C++ kernel
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got.sum(axis=1), np.array([np.sum(r).round() for r in m]))


@pytest.mark.parametrize("seed", range(4))
def test_latent_round_preserving_sum_cleanlab_ties_equal_cleanlab_itself(seed):
    """ties="cleanlab" equals cleanlab's own function, on vectors built from a
    coarse grid (many equal residuals) and on long vectors (K x K rows)."""
    rng = np.random.default_rng(seed)
    moved = 0
    for _ in range(150):
        n = int(rng.choice([3, 17, 400, 4000]))
        grid = rng.choice([0.125, 0.1, 0.01, 1e-9])
        x = np.round(rng.random(n) * rng.choice([1, 5, 50]) / grid) * grid
        x[rng.integers(0, n)] += rng.choice([0.0, 0.49, 3.3])
        ours = latent.round_preserving_sum(x, "cleanlab")
        assert_equal(ours, ORIGINAL_ROUND_PRESERVING_SUM(x))
        moved += int(np.any(ours != x.round()))
    assert moved > 0  # some vectors needed entries moved


def test_reduce_prune_counts_frac_noise_one_shortcut():
    """frac_noise = 1 returns the matrix truncated to int64 in one pass: the same as the general formula
    (the removed mass moved to the diagonal is then zero), for integer and float count matrices."""
    rng = np.random.default_rng(0)
    for dt in (np.int64, np.float64):
        for _ in range(20):
            k = int(rng.integers(1, 30))
            pcm = (rng.random((k, k)) * rng.choice([3, 1000], (k, k))).astype(dt)
            reduced = pcm * 1.0
            np.fill_diagonal(reduced, pcm.diagonal())
            np.fill_diagonal(reduced, pcm.diagonal() + np.sum(pcm - reduced, axis=0))
            want = reduced.astype(np.int64)
            got = latent.reduce_prune_counts(pcm, 1.0)
            assert got.dtype == np.int64 and np.array_equal(got, want)
