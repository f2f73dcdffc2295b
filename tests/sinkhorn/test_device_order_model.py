"""The summation order of the CUDA pass (src/cuda/sinkhorn/sk_kernels.cu),
modelled in NumPy and compared with the CPU pass bit for bit, on the CPU.

The kernel's claim is that its decomposition performs the CPU's additions in
the CPU's order: lane j of a row's eight lanes adds e_k for k = j, j + 8,
... (in increasing k, from 0) and the eight are combined as combine8 does;
the thread of (chunk c, column k) adds e_ik * w_i over the rows of chunk c
(chunk_rows(N) rows each) in increasing i, from 0; the chunks are then
added 0, 1, 2, ... per column. This file computes exactly that with
sequential NumPy accumulations (np.add.accumulate adds in order) and the
same exp (labelsift's own, ``_core.sk_exp``), and requires the CPU kernel's
labels, column sums and plan to be the same bits. If the CPU's order were
anything else (another accumulator split, pairwise row sums, chunks of
another size), these tests would fail -- and so would the GPU's equality.
"""
import numpy as np
import pytest

from labelsift._common.backend import core


def model_pass(X, lam, f, unit_rows=False):
    n, k = X.shape
    single = X.dtype.itemsize <= 4
    t = lam * X.astype(np.float64) + f            # the same IEEE operations: one multiply, one add
    m = t.max(axis=1)
    label = t.argmax(axis=1)                     # first index of the max
    d = t - m[:, None]
    e = core().sk_exp(np.ascontiguousarray(d).reshape(-1), 0, 1, single).reshape(n, k)
    acc8 = np.zeros((n, 8))
    for j in range(min(8, k)):                   # lane j: classes j, j + 8, ... in order, from 0
        acc8[:, j] = np.add.accumulate(np.concatenate([np.zeros((n, 1)), e[:, j::8]], axis=1), axis=1)[:, -1]
    s = ((acc8[:, 0] + acc8[:, 1]) + (acc8[:, 2] + acc8[:, 3])) + ((acc8[:, 4] + acc8[:, 5]) + (acc8[:, 6] + acc8[:, 7]))
    b = 1.0 / n
    w = b / s
    pw = 1.0 / s if unit_rows else w
    rpc = int(core().sk_chunk_rows(n))
    nch = -(-n // rpc)
    part = np.zeros((nch, k))
    for c in range(nch):                         # thread (c, k): the chunk's rows in order, from 0
        rows = slice(c * rpc, min(n, (c + 1) * rpc))
        contrib = e[rows] * w[rows, None]
        part[c] = np.add.accumulate(np.concatenate([np.zeros((1, k)), contrib]), axis=0)[-1]
    colsum = np.add.accumulate(np.concatenate([np.zeros((1, k)), part]), axis=0)[-1]  # chunks 0, 1, 2, ...
    plan = e * pw[:, None]
    return label, colsum, plan


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("n,k", [(1, 1), (7, 3), (64, 8), (200, 9), (3000, 17), (20000, 5), (500, 130)])
def test_kernel_order_equals_cpu(dtype, n, k):
    rng = np.random.default_rng(n * 31 + k)
    X = rng.normal(0, 1.0, (n, k)).astype(dtype)
    f = rng.normal(0, 1.0, k)
    for lam, unit in ((25.0, False), (1.0, True)):
        label, colsum, plan = model_pass(X, lam, f, unit)
        cs, cm = np.empty(k), np.empty(k)
        lab, g, P = np.empty(n, np.int64), np.empty(n), np.empty((n, k))
        core().sk_pass(X, lam, f, None, 1.0 / n, cs, cm, lab, g, P, unit, True, 0, 0)
        assert np.array_equal(lab, label)
        assert np.array_equal(P, plan)
        assert np.array_equal(cs, colsum)


def test_another_order_would_differ():
    """The model is sensitive: row sums in plain sequential order (one
    accumulator) or chunk partials summed pairwise give other bits here."""
    rng = np.random.default_rng(5)
    n, k = 20000, 300
    X = rng.normal(0, 1.0, (n, k))
    f = rng.normal(0, 1.0, k)
    cs, cm = np.empty(k), np.empty(k)
    core().sk_pass(X, 3.0, f, None, 1.0 / n, cs, cm, None, None, None, False, False, 0, 0)
    t = 3.0 * X + f
    d = t - t.max(axis=1, keepdims=True)
    e = core().sk_exp(np.ascontiguousarray(d).reshape(-1), 0, 1, False).reshape(n, k)
    s_seq = np.add.accumulate(e, axis=1)[:, -1]
    pairwise_colsum = ((e * ((1.0 / n) / s_seq)[:, None])).sum(axis=0)
    assert not np.array_equal(cs, pairwise_colsum)
