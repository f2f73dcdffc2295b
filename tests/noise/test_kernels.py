"""The consensus-counting and voting kernels against direct einsums and labelsift.reference.noise."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from labelsift._common.backend import core
from labelsift._noise.consensus import ConsensusCounter
from labelsift._noise.solver import Objective
from labelsift.reference import noise as ref


def _patterns(rng, n, m, k):
    labels = rng.integers(0, k, n)
    rows = np.sort(rng.choice(n, m, replace=False))
    nbr = rng.integers(0, n, (m, 2))
    return labels, rows, nbr


def test_counts_equal_einsum():
    rng = np.random.default_rng(0)
    n, m, k = 500, 300, 6
    labels, rows, nbr = _patterns(rng, n, m, k)
    eye = np.eye(k)
    y0, y1, y2 = eye[labels[rows]], eye[labels[nbr[:, 0]]], eye[labels[nbr[:, 1]]]
    c = ConsensusCounter(k)
    c.add(labels, rows, nbr)
    cons = c.result()
    np.testing.assert_array_equal(cons.c1, y0.sum(0) / m)
    np.testing.assert_array_equal(cons.c2, np.einsum("ia,ib->ab", y0, y1) / m)
    np.testing.assert_allclose(cons.dense(), np.einsum("ia,ib,ic->abc", y0, y1, y2) / m, rtol=0, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), k=st.integers(2, 12), m=st.integers(1, 200), rounds=st.integers(1, 4))
def test_counts_match_reference(seed, k, m, rounds):
    rng = np.random.default_rng(seed)
    n = m + int(rng.integers(0, 50))
    c = ConsensusCounter(k, nthreads=int(rng.integers(1, 4)))
    acc = None
    for _ in range(rounds):
        labels, rows, nbr = _patterns(rng, n, m, k)
        c.add(labels, rows, nbr)
        cnt = [x / m for x in ref.consensus_counts(labels, rows, nbr, k)]
        acc = cnt if acc is None else [a + b for a, b in zip(acc, cnt)]
    acc = [a / rounds for a in acc]
    cons = c.result()
    np.testing.assert_array_equal(cons.c1, acc[0])
    np.testing.assert_array_equal(cons.c2, acc[1])
    np.testing.assert_array_equal(cons.dense(), acc[2])  # same additions in the same order


def test_consensus_rejects_bad_indices():
    labels = np.zeros(10, np.int64)
    with pytest.raises(IndexError, match="row 1"):
        core().nz_consensus(labels, np.array([0, 1]), np.array([[1, 2], [3, 10]]), 2, 1)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), k=st.integers(2, 9), nk=st.integers(1, 15), m=st.integers(1, 120),
       ties=st.booleans())
def test_vote_matches_reference(seed, k, nk, m, ties):
    rng = np.random.default_rng(seed)
    n = m + 20
    labels = rng.integers(0, k, n)
    nbr = rng.integers(0, n, (m, nk))
    w = rng.choice([0.0, 0.5, 1.0], (m, nk)) if ties else 1.0 - rng.random((m, nk)) * 1.2
    given = labels[rng.integers(0, n, m)]
    gv, pred = core().nz_vote(labels, nbr, w, given, k, int(rng.integers(1, 4)))
    prob = ref.knn_vote(labels, nbr, w, k)
    np.testing.assert_array_equal(gv, prob[np.arange(m), given])
    np.testing.assert_array_equal(pred, np.argmax(prob, axis=1))


def test_vote_rejects_bad_given():
    with pytest.raises(IndexError, match="row 0"):
        core().nz_vote(np.zeros(4, np.int64), np.zeros((1, 2), np.int64), np.ones((1, 2)), np.array([5]), 2, 1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), c=st.integers(1, 12), want=st.integers(1, 5))
def test_filter_in_sample_matches_loop(seed, c, want):
    rng = np.random.default_rng(seed)
    n = 60
    cand = np.stack([rng.permutation(n)[:c] for _ in range(n)])
    cand_d = np.sort(rng.random((n, c)), axis=1)
    rows = np.sort(rng.choice(n, 30, replace=False))
    mask = np.zeros(n, np.uint8)
    mask[rows] = 1
    idx, d, short, nshort = core().nz_filter_in_sample(cand, cand_d, rows, mask, want, 2)
    for r, i in enumerate(rows):
        keep = [j for j in range(c) if mask[cand[i, j]]][:want]
        assert bool(short[r]) == (len(keep) < want)
        np.testing.assert_array_equal(idx[r, :len(keep)], cand[i, keep])
        np.testing.assert_array_equal(d[r, :len(keep)], cand_d[i, keep])
        assert (idx[r, len(keep):] == -1).all()
    assert nshort == short.sum()


def _random_consensus(seed, k):
    rng = np.random.default_rng(seed)
    c = ConsensusCounter(k)
    labels, rows, nbr = _patterns(rng, 400, 300, k)
    c.add(labels, rows, nbr)
    return c.result(), rng


@pytest.mark.parametrize("k", [2, 5, 9])
def test_objective_dense_sparse_reference_agree(k):
    cons, rng = _random_consensus(k, k)
    c_est = [cons.c1, cons.c2, cons.dense()]
    for _ in range(3):
        A, b = rng.standard_normal((k, k)) * 2, rng.standard_normal(k)
        lr_, gAr, gbr = ref.hoc_loss_grad(A, b, c_est)
        for mode in ("dense", "sparse"):
            loss, gA, gb = Objective(cons, mode)(A, b)
            assert loss == pytest.approx(lr_, rel=1e-12)
            np.testing.assert_allclose(gA, gAr, rtol=1e-8, atol=1e-13)
            np.testing.assert_allclose(gb, gbr, rtol=1e-8, atol=1e-13)


def test_objective_gradient_vs_torch_autograd():
    torch = pytest.importorskip("torch", reason="torch is the optional gradient oracle")
    k = 6
    cons, rng = _random_consensus(3, k)
    A, b = rng.standard_normal((k, k)), rng.standard_normal(k)
    At = torch.tensor(A, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    T, p = torch.softmax(At, 1), torch.softmax(bt, 0)
    ana = [p @ T, torch.einsum("k,ka,kb->ab", p, T, T), torch.einsum("k,ka,kb,kc->abc", p, T, T, T)]
    est = [torch.tensor(x) for x in (cons.c1, cons.c2, cons.dense())]
    loss = sum(torch.norm(e - a) for e, a in zip(est, ana))
    loss.backward()
    for mode in ("dense", "sparse"):
        l2, gA, gb = Objective(cons, mode)(A, b)
        assert l2 == pytest.approx(loss.item(), rel=1e-12)
        np.testing.assert_allclose(gA, At.grad.numpy(), rtol=1e-8, atol=1e-13)
        np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-8, atol=1e-13)


def test_sparse_objective_never_forms_k_cubed():
    k = 300  # K^3 = 27e6 doubles would be 216 MB; the sparse objective needs K^2 + K x S
    rng = np.random.default_rng(0)
    c = ConsensusCounter(k)
    labels = rng.integers(0, k, 3000)
    rows = np.arange(3000)
    nbr = np.stack([(rows + 1) % 3000, (rows + 2) % 3000], 1)
    c.add(labels, rows, nbr)
    cons = c.result()
    obj = Objective(cons)
    assert obj.mode == "sparse"
    loss, gA, gb = obj(5 * np.eye(k) - 1, np.full(k, 1.0 / k))
    assert np.isfinite(loss) and gA.shape == (k, k) and np.isfinite(gA).all()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 31), n=st.integers(2, 12), d=st.integers(1, 300),
       scale=st.sampled_from([1.0, 1e-3, 1e-13, 1e150, 0.0]))
def test_canonical_rows_and_distances_equal_numpy(seed, n, d, scale):
    """noise/canon_math.h (the CUDA kernels' functions, through the CPU binding nz_canon) against
    the NumPy definition of neighbours.Features, bit for bit: every d (NumPy's pairwise blocks of
    8 and 128), tiny, zero and huge rows."""
    from labelsift._noise.neighbours import Features

    rng = np.random.default_rng(seed)
    f = rng.normal(0, 1, (n, d)) * scale
    f[rng.random(n) < 0.2] = 0.0
    qi = rng.integers(0, n, 40)
    dj = rng.integers(0, n, 40)
    x, dist = core().nz_canon(np.ascontiguousarray(f), qi, dj)
    ref_f = Features(f)
    assert np.array_equal(x, ref_f.x64)
    assert np.array_equal(dist, ref_f.distances(qi, dj))



@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), m=st.integers(0, 20), km1=st.integers(2, 40),
       scale=st.sampled_from([1.0, 1e-9, 1e300, 0.0]))
def test_self_weights_row_equals_numpy(seed, m, km1, scale):
    """noise/canon_math.h self_weights_row (the CUDA vote kernel's weights, through the CPU
    binding nz_self_weights) against simifeat.self_weights, bit for bit, including distances
    that overflow 2 d_1 - d_2."""
    from labelsift._noise.simifeat import self_weights

    rng = np.random.default_rng(seed)
    dist = np.sort(rng.random((m, km1)) * 2.0, axis=1) * scale
    got = core().nz_self_weights(dist)
    want = self_weights(dist)
    assert got.shape == want.shape == (m, km1 + 1)
    assert np.array_equal(got, want, equal_nan=True)
