"""The body of ``labelsift.noise.hoc``: rounds of 2-NN consensus counts, then
the solver (solver.py). Docta's ``estimator_hoc`` step by step:

1. per round, ``m = min(sample_size, int(0.9 N))`` rows drawn without
   replacement (a seeded Generator, the first child of SeedSequence(seed));
2. each sampled row's pattern (its label, its nearest neighbour's, its
   second nearest's) -- neighbours searched within the round's sample
   (``neighbours="sample"``, Docta's default for features) or in the whole
   set (``"full"``: Docta's ``already_2nn``, the only choice for lists);
3. counts / m, averaged over the rounds (consensus.py);
4. Adam on the consensus equations, p initialised from the second child of
   SeedSequence(seed).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .._common import params
from .._common.backend import threads
from .consensus import Consensus, ConsensusCounter
from .inputs import as_data, as_labels, exact_duplicate_rate, sample_size_for, seed_streams
from .neighbours import Features, SampleNeighbours, search
from .solver import Objective, adam_fit

#: Warn when more rows than this have an exact duplicate.
DUPLICATE_WARN = 0.01


@dataclass
class HOCResult:
    """HOC's estimate. Conventions as everywhere in labelsift:

    * ``noise_matrix[given, true] = P(given label | true label)`` (cleanlab's);
    * ``transition_matrix[true, noisy]`` = HOC's T, ``= noise_matrix.T``;
    * ``inverse_noise_matrix[true, given] = P(true | given)`` from T, py and
      the fitted noisy prior ``T^T py`` (columns sum to 1);
    * ``py[true]``, the clean prior; ``noisy_prior[given]``, the given labels'
      frequencies.

    Solver: ``loss`` is the loss of the returned (T, py), ``step`` its step;
    ``best_loss``/``best_step`` the best after step 5, ``final_loss`` the
    last. Diagnostics: ``agreement_1nn`` (fraction of sampled rows whose
    nearest neighbour shares their label, = trace of c2), ``agreement_2nn``
    (both neighbours do, = sum of c3[a,a,a]), ``duplicate_rate`` (rows with an
    exact duplicate; None when unknown), ``recomputed_rows`` (sampled rows
    whose in-sample neighbours needed a direct search). ``consensus`` holds
    the empirical c1, c2 and sparse c3.
    """

    noise_matrix: np.ndarray
    transition_matrix: np.ndarray
    inverse_noise_matrix: np.ndarray
    py: np.ndarray
    noisy_prior: np.ndarray
    loss: float
    step: int
    best_loss: float
    best_step: int
    final_loss: float
    agreement_1nn: float
    agreement_2nn: float
    duplicate_rate: float | None
    recomputed_rows: int
    rounds: int
    sample_size: int
    steps: int
    neighbours: str
    consensus: Consensus = field(repr=False)

    @property
    def estimated_noise_rate(self) -> float:
        """P(given != true) = 1 - sum_i py_i T_ii."""
        return float(1.0 - np.dot(self.py, np.diag(self.transition_matrix)))


def _check_common(rounds, steps, lr, keep_best, neighbours, kind):
    rounds = params.integer(rounds, "rounds", lo=1, hi=1 << 20)
    steps = params.integer(steps, "steps", lo=1, hi=1 << 24)
    lr = params.real(lr, "lr", lo=1e-12, hi=1e6)
    keep_best = params.flag(keep_best, "keep_best")
    if neighbours is None:
        neighbours = "sample" if kind == "features" else "full"
    if neighbours not in ("sample", "full"):
        raise ValueError(f"neighbours must be 'sample' or 'full' (or None), got {neighbours!r}")
    if kind == "lists" and neighbours == "sample":
        raise ValueError("neighbours='sample' needs features (it searches each round's sample); "
                         "neighbour lists are used as given (neighbours='full')")
    return rounds, steps, lr, keep_best, neighbours


class _Patterns:
    """The two nearest neighbours of each round's sampled rows."""

    def __init__(self, data, feats, neighbours, m, rounds, nthreads):
        self.data, self.feats, self.mode = data, feats, neighbours
        self.full = self.sampler = None
        if data.kind == "lists":
            if data.indices.shape[1] < 2:
                raise ValueError("features: HOC needs at least 2 neighbours per row, got 1 column of indices")
            self.full = data.indices[:, :2]
        elif neighbours == "full":
            self.full = search(feats, 2, data.features)[0]
        else:
            self.sampler = SampleNeighbours(feats, 2, m / data.n, rounds, raw=data.features, nthreads=nthreads)

    @property
    def recomputed(self) -> int:
        return 0 if self.sampler is None else self.sampler.recomputed

    def __call__(self, sample):
        if self.full is not None:
            return self.full[sample]
        return self.sampler(sample)[0]


def estimate(data, labels, num_classes=None, *, rounds=50, sample_size=35000, steps=1501, seed=0, keep_best=True,
             lr=0.1, neighbours=None, n_jobs=None, mode="auto", progress=None) -> HOCResult:
    d = as_data(data)
    y, k = as_labels(labels, d.n, num_classes)
    on_device = d.kind == "device"
    rounds, steps, lr, keep_best, neighbours = _check_common(rounds, steps, lr, keep_best, neighbours,
                                                             "features" if on_device else d.kind)
    m = sample_size_for(d.n, sample_size)
    if m < 3:
        raise ValueError(f"sample_size: each round's sample has {m} rows (min(sample_size, int(0.9 N))); "
                         "HOC needs at least 3")
    nthreads = threads(n_jobs)
    rng_sample, rng_init = seed_streams(seed, 2)
    feats = Features(d.features) if d.kind == "features" else None
    dup = None
    if on_device:
        dup = d.features.duplicate_rate()
    elif d.kind == "features":
        dup = exact_duplicate_rate(d.features)
    elif d.distances is not None:
        dup = float((d.distances[:, 0] <= 1e-12).mean())
    if dup is not None and dup > DUPLICATE_WARN:
        warnings.warn(f"{100 * dup:.1f}% of the rows have an exact duplicate; a duplicate is its copy's nearest "
                      "neighbour and shares its label, which biases HOC towards too little noise: "
                      "deduplicate the features first", RuntimeWarning, stacklevel=3)
    if on_device:  # every round's search and counts on the device (device.py)
        from .device import RoundNeighbours

        patterns = RoundNeighbours(d.features, 2, neighbours, y)
    else:
        patterns = _Patterns(d, feats, neighbours, m, rounds, nthreads)
    counter = ConsensusCounter(k, nthreads)
    for r in range(rounds):
        sample = np.sort(rng_sample.choice(d.n, m, replace=False))
        if on_device:
            counter.add_counts(*d.features.consensus(*patterns(sample)[:3], k), m)
        else:
            counter.add(y, sample, patterns(sample))
        if progress is not None:
            progress("rounds", r + 1, rounds)
    cons = counter.result()
    p_init = 1.0 / k + 0.1 * rng_init.random(k)
    fit = adam_fit(Objective(cons, mode), k, steps, lr, p_init, keep_best)
    T, p = fit.transition_matrix, fit.py
    noisy_fit = T.T @ p
    inv = (T * p[:, None]) / np.where(noisy_fit > 0, noisy_fit, 1.0)[None, :]
    a, b, c = cons.triplets()
    agree2 = float(cons.values[(a == b) & (b == c)].sum())
    return HOCResult(
        noise_matrix=T.T.copy(), transition_matrix=T, inverse_noise_matrix=inv, py=p,
        noisy_prior=np.bincount(y, minlength=k) / d.n,
        loss=fit.loss, step=fit.step, best_loss=fit.best_loss, best_step=fit.best_step, final_loss=fit.final_loss,
        agreement_1nn=float(np.trace(cons.c2)), agreement_2nn=agree2, duplicate_rate=dup,
        recomputed_rows=patterns.recomputed, rounds=rounds, sample_size=m, steps=steps, neighbours=neighbours,
        consensus=cons)
