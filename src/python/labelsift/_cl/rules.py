"""The rules of confident learning on per-row facts, written once in NumPy.

The C++ row kernel (``cl/row_math.h``) applies the same rules to whole rows;
these are for the places that only know part of a row (the streaming
sketch) or work on per-row results (the engine):

* :func:`confident_guess`: which class a row is confidently counted for;
* :func:`given_beaten`: the final unflagging test ("the given label is the
  argmax after adding 1e-6 to it"), from any subset of a row's classes;
* :func:`eligible`: which given classes the prune methods may flag;
* :func:`active_pairs`: the (given k, true j, count) selections of
  prune-by-noise-rate from the prune counts;
* :func:`confident_joint_from_guesses`: the raw K x K counts.
"""
from __future__ import annotations

import numpy as np


def confident_guess(n_pass: np.ndarray, single: np.ndarray, argmax: np.ndarray) -> np.ndarray:
    """The confident guess per row: -1 when no class passes its threshold,
    the passing class when exactly one does (``single``), else the row's
    argmax over all classes."""
    return np.where(n_pass == 0, -1, np.where(n_pass == 1, single, argmax))


def given_beaten(classes: np.ndarray, values: np.ndarray, labels: np.ndarray, nudged: np.ndarray) -> np.ndarray:
    """True where a listed class beats the given label in the unflagging test.

    ``classes``/``values`` (rows x m, or a broadcastable row of classes): some
    of each row's classes and their probabilities (float64, exact);
    ``nudged`` = P[y] + 1e-6 rounded in the input dtype (float64). The given
    label y stays the argmax (first maximum) unless an earlier class reaches
    ``nudged`` or a later one exceeds it.
    """
    y = labels[:, None]
    pa = nudged[:, None]
    return (((classes < y) & (values >= pa)) | ((classes > y) & (values > pa))).any(axis=1)


def eligible(label_counts: np.ndarray, min_examples_per_class: int) -> np.ndarray:
    """Classes the prune methods may flag: more than m examples, and not singletons."""
    return (label_counts > min_examples_per_class) & (label_counts > 1)


def active_pairs(prune_count_matrix: np.ndarray, label_counts: np.ndarray, min_examples_per_class: int):
    """Selections of prune-by-noise-rate: for given class k and true class j != k
    with c = prune_count_matrix[j, k] > 0 (k eligible), the c rows of class k
    with the largest margin P[j] - P[k].

    Returns (counts [given k, true j] as a C-ordered int64 matrix with
    inactive entries 0, ks, js, caps) with the pairs sorted by (k, j) and
    caps clipped to the class sizes.
    """
    c = np.array(prune_count_matrix, dtype=np.int64, copy=True)  # [true j, given k]
    np.fill_diagonal(c, 0)
    c[:, ~eligible(label_counts, min_examples_per_class)] = 0
    c[c < 0] = 0
    by_given = np.ascontiguousarray(c.T)
    ks, js = np.nonzero(by_given)
    caps = np.minimum(by_given[ks, js], label_counts[ks])
    return by_given, ks, js, caps


def confident_joint_from_guesses(labels: np.ndarray, guess: np.ndarray, k: int):
    """(raw confident joint with diagonal >= 1, ascending off-diagonal rows)."""
    counted = guess >= 0
    if counted.any():
        # Built as [true, given] and transposed: the reference's matrix is a
        # transposed (Fortran-ordered) view too, and the float sums of the
        # calibration follow the memory layout.
        flat = guess[counted].astype(np.int64) * k + labels[counted]
        cj = np.bincount(flat, minlength=k * k).astype(np.int64, copy=False).reshape(k, k).T  # no K x K copy
    else:
        cj = np.zeros((k, k), dtype=np.int64)
    np.fill_diagonal(cj, np.maximum(cj.diagonal(), 1))
    off = np.flatnonzero(counted & (guess != labels))
    return cj, off
