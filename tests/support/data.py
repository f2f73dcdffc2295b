"""Seeded data generators and the real prediction dumps, defined once.

Every generator is deterministic in its arguments (the oracle cache and the
reproducibility of failures rely on it).
"""
from __future__ import annotations

import pathlib

import numpy as np

from labelsift.datasets import cifar10_test

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


# --------------------------------------------------------------------------
# Real dumps
# --------------------------------------------------------------------------
def real_dump(name):
    """``(labels, pred_probs)`` of a real test-set dump: ``"cifar10"`` (embedded
    in labelsift.datasets) or ``"mnist"`` (tests/data, see NOTICE there).
    Labels are uint16, probabilities float64, 10000 x 10 each."""
    if name == "cifar10":
        data = cifar10_test()
        return data.labels, data.pred_probs
    if name == "mnist":
        return (np.load(DATA / "mnist_labels.npy", allow_pickle=False),
                np.load(DATA / "mnist_pred_probs.npy", allow_pickle=False))
    raise ValueError(f"no real dump named {name!r}")


# --------------------------------------------------------------------------
# Generated problems
# --------------------------------------------------------------------------
def make_data(seed, n, k, *, dtype=np.float64, label_dtype=np.int64, absent=0, singletons=0,
              tiny=0, noise=0.2):
    """Noisy but realistic ``(labels, pred_probs)``.

    Given labels have Dirichlet class sizes, with ``absent`` classes that
    never occur, ``singletons`` classes with one example and ``tiny``
    classes with 2-4.  About ``noise`` of the examples have another true
    class (mostly a "neighbouring" one); the probabilities are the softmax of
    random logits with the true class boosted (and the given one a little),
    computed in float64 and cast to ``dtype`` without renormalising.
    """
    rng = np.random.default_rng(seed)
    classes = rng.permutation(k)
    absent_c = classes[:absent]
    single_c = classes[absent:absent + singletons]
    tiny_c = classes[absent + singletons:absent + singletons + tiny]
    rest = classes[absent + singletons + tiny:]
    counts = np.zeros(k, dtype=np.int64)
    counts[single_c] = 1
    counts[tiny_c] = rng.integers(2, 5, len(tiny_c))
    counts[rest] = rng.multinomial(n - counts.sum(), rng.dirichlet(np.full(len(rest), 2.0)))
    assert counts[absent_c].sum() == 0
    given = rng.permutation(np.repeat(np.arange(k), counts))
    true = given.copy()
    flip = rng.random(n) < noise
    neighbour = (given + 1 + rng.integers(0, 2, n)) % k
    other = np.where(rng.random(n) < 0.6, neighbour, rng.integers(0, k, n))
    true[flip] = other[flip]
    logits = rng.normal(0.0, 1.5, (n, k))
    logits[np.arange(n), true] += rng.gamma(3.0, 1.0, n)
    logits[np.arange(n), given] += rng.gamma(1.0, 0.7, n)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return given.astype(label_dtype), probs.astype(dtype)


def valid_data(dtype=np.float64, n=30, k=4, seed=0, *, labelled_row=7, label=1):
    """Small valid ``(labels, pred_probs)`` for the validation tests: every
    class present, row ``labelled_row`` labelled ``label``."""
    rng = np.random.default_rng(seed)
    w = rng.random((n, k)) ** 3 + 1e-3
    p = (w / w.sum(axis=1, keepdims=True)).astype(dtype)
    y = p.argmax(axis=1)
    flip = rng.random(n) < 0.25
    y[flip] = rng.integers(0, k, size=int(flip.sum()))
    y[: k] = np.arange(k)  # every class present
    y[labelled_row] = label
    return y.astype(np.int64), p


def hand_tie_data():
    """Class 0 alternates confident rows and identical rows that look like
    class 1; with frac_noise=0.5 three of the six identical rows are flagged."""
    confident0, looks_like_1 = [0.8, 0.1, 0.1], [0.1, 0.85, 0.05]
    rows = [looks_like_1 if i % 2 else confident0 for i in range(12)]
    rows += [[0.1, 0.8, 0.1]] * 6 + [[0.1, 0.1, 0.8]] * 6
    labels = np.array([0] * 12 + [1] * 6 + [2] * 6, dtype=np.uint8)
    return labels, np.array(rows)


def grouped_softmax(n, k, dtype=np.float32, seed=0, noise=0.1, group=5):
    """Softmax outputs shaped like a trained network's: a confident true class,
    continuous ambiguity towards the classes of its superclass (groups of
    `group`, as CIFAR-100 / ImageNet hierarchies), a log-normal tail; label
    noise within the superclass."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    logits = rng.normal(0.0, 1.0, (n, k))
    rows = np.arange(n)
    base = (true // group) * group
    for s in range(group):
        logits[rows, np.minimum(base + s, k - 1)] += rng.uniform(2.0, 6.0, n)
    logits[rows, true] += rng.normal(8.0, 2.0, n)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = true.copy()
    flip = rng.random(n) < noise
    y[flip] = np.minimum(base[flip] + rng.integers(0, group, flip.sum()), k - 1)
    return y, p.astype(dtype)


def dirichlet_rows(seed, n, k, dtype, decimals=None, alphas=(0.1, 1.0, 10.0)):
    """(P (n, k) in dtype, labels) from a Dirichlet of a randomly chosen
    concentration; ``decimals``: rounded, for many exact ties."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(k, rng.choice(list(alphas))), n)
    if decimals is not None:
        P = np.round(P, decimals)
    return P.astype(dtype), rng.integers(0, k, n)


def flat_rows(n, k, seed, spread=0.05, noise=0.5):
    """Nearly uniform rows (the sketch of a stream cannot decide them)."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    logits = rng.normal(0.0, spread, (n, k))
    logits[np.arange(n), true] += 0.1
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    y = np.where(rng.random(n) < noise, rng.integers(0, k, n), true)
    return y, p


def tie_heavy(seed, n, k, decimals, dup_frac=0.3, zeros=True, dtype=np.float64):
    """Probabilities with 'decimals' digits (many exact ties in values, margins
    and scores), duplicated rows and exact zeros; rows sum to 1 exactly in
    the rounded digits (the largest entry absorbs the rounding)."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    logits = rng.normal(0, 1.2, (n, k))
    logits[np.arange(n), true] += rng.normal(3, 1.5, n)
    if zeros:
        logits[rng.random((n, k)) < 0.3] = -np.inf
        logits[np.arange(n), true] = np.maximum(logits[np.arange(n), true], 0)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scale = 10.0 ** decimals
    q = np.floor(p * scale)
    top = q.argmax(1)
    q[np.arange(n), top] += scale - q.sum(1)
    p = q / scale
    dup = rng.random(n) < dup_frac
    src = rng.integers(0, n, int(dup.sum()))
    p[dup] = p[src]
    y = true.copy()
    flip = rng.random(n) < 0.2
    y[flip] = rng.integers(0, k, int(flip.sum()))
    y[dup] = y[src]
    return y, p.astype(dtype)


def write_dump(path_probs, path_labels, n, k, dtype=np.float32, seed=0, chunk=20000):
    """A peaked-softmax ``(N, K)`` .npy dump written block by block through a
    memory map (so N x K never sits in memory), labels (uint16, 10% noise)
    beside it."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path_probs, mode="w+", dtype=dtype, shape=(n, k))
    labels = np.empty(n, np.int64)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        true = rng.integers(0, k, b - a)
        logits = rng.standard_normal((b - a, k), dtype=np.float32)
        logits[np.arange(b - a), true] += 5.0
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        out[a:b] = p
        flip = rng.random(b - a) < 0.1
        labels[a:b] = np.where(flip, rng.integers(0, k, b - a), true)
    out.flush()
    del out
    np.save(path_labels, labels.astype(np.uint16))
