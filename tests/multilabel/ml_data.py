"""Shared generators of the multi-label tests."""
import numpy as np


def gen(n, k, seed=0, dtype=np.float32, empty_frac=0.1, zero_cls=(), all_cls=(), decimals=None):
    """(labels as lists, pred_probs) with ~8% flipped labels; ``decimals``
    rounds the probabilities (many exact ties)."""
    rng = np.random.default_rng(seed)
    y = rng.random((n, k)) < rng.uniform(0.05, 0.5, k)
    y[rng.random(n) < empty_frac] = False
    for c in zero_cls:
        y[:, c] = False
    for c in all_cls:
        y[:, c] = True
    noisy = y ^ (rng.random((n, k)) < 0.08)
    p = np.clip(np.where(noisy, rng.beta(5, 2, (n, k)), rng.beta(2, 5, (n, k))), 0, 1)
    if decimals is not None:
        p = np.round(p, decimals)
    return [list(map(int, np.flatnonzero(r))) for r in y], p.astype(dtype)
