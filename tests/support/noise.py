"""Generated Gaussian-cluster embeddings with known label noise (HOC, SimiFeat tests)."""
from __future__ import annotations

import numpy as np


def clusters(seed, n, k, d, *, sep=4.0, noise=0.2, kind="symmetric", dtype=np.float32):
    """(features (n, d), noisy labels, true labels, realised T[true, noisy]).

    Class centres are random directions times ``sep`` (unit-variance noise
    around them); balanced classes. ``kind="symmetric"``: a flipped label is
    uniform over the other classes; ``"pairflip"``: it becomes (y + 1) % k.
    T is the realised transition matrix (counts of (true, noisy), rows
    normalised), so the error measures the estimator, not the sampling."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d))
    centres *= sep / np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.arange(n) % k
    rng.shuffle(y)
    x = centres[y] + rng.standard_normal((n, d))
    flip = rng.random(n) < noise
    if kind == "symmetric":
        other = (y + rng.integers(1, k, n)) % k
    elif kind == "pairflip":
        other = (y + 1) % k
    else:
        raise ValueError(kind)
    noisy = np.where(flip, other, y)
    T = np.zeros((k, k))
    np.add.at(T, (y, noisy), 1)
    T /= T.sum(1, keepdims=True)
    return x.astype(dtype), noisy.astype(np.int64), y.astype(np.int64), T


def t_error(T_hat, T):
    """HOC's 'L11 error': sum |T_hat - T| / K * 100."""
    return float(np.abs(np.asarray(T_hat) - T).sum() / T.shape[0] * 100)


def f1(pred, truth):
    tp = float((pred & truth).sum())
    if tp == 0:
        return 0.0
    prec = tp / pred.sum()
    rec = tp / truth.sum()
    return 2 * prec * rec / (prec + rec)
