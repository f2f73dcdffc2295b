"""Label noise from features, without training a model: HOC and SimiFeat.

* :func:`hoc` -- the noise transition matrix from 2-NN label consensus (Zhu,
  Song & Liu, ICML 2021), as Docta (``docta.core.hoc``) computes it, seeded;
* :func:`simifeat` -- which labels are wrong, from weighted k-NN votes (Zhu,
  Dong & Liu, ICML 2022), as Docta's ``DetectLabel.simifeat``, seeded.

One convention everywhere: ``noise_matrix[given, true] = P(given | true)``
(cleanlab's); HOC's T, indexed ``[true, noisy]``, is only ever
``transition_matrix`` (= ``noise_matrix.T``).

Both take features (N x d floats: an array, a memmap or a ``.npy`` path) or
neighbour lists: integer indices (N x k), ``(indices, distances)``, or a SciPy
CSR kNN graph -- self excluded, nearest first. Neighbours of features are the
exact cosine nearest (distances in float64, ties by the lower index, self
excluded by identity), never an N x N matrix. Randomness comes from
``numpy.random.SeedSequence(seed)`` only (children 0 and 1: HOC's samples and
its prior's initialisation; 2: SimiFeat's samples): the same seed gives the
same result on any thread count, and NumPy's global generator is untouched.

Where labelsift differs from Docta, on purpose:

* Docta takes ``topk`` of a float32 distance matrix and assumes self comes
  first; with exact duplicates that is not so. Here self is excluded by
  identity and the neighbours are exact (float64, lower index on ties).
* Docta's keep-best step returns the final T (``.detach()`` shares storage);
  ``keep_best=True`` returns the best iterate, ``keep_best=False`` the final
  one, as published.
* Docta never seeds; the arithmetic here is float64 (Docta: float32).
"""
from __future__ import annotations

from ._noise.hoc import HOCResult
from ._noise.hoc import estimate as _hoc
from ._noise.simifeat import SimiFeatResult
from ._noise.simifeat import detect as _simifeat

__all__ = ["hoc", "simifeat", "HOCResult", "SimiFeatResult"]


def hoc(features, labels, num_classes=None, *, rounds=50, sample_size=35000, steps=1501, seed=0, keep_best=True,
        lr=0.1, neighbours=None, n_jobs=None) -> HOCResult:
    """Estimate the noise matrix by HOC (high-order consensus of 2-NN labels).

    Parameters
    ----------
    features : features (N x d floats, array / memmap / ``.npy`` path) or
        neighbour lists (N x k ints, ``(indices, distances)``, CSR kNN graph).
        Features on a CUDA device (PyTorch, CuPy, ``__cuda_array_interface__``)
        stay there: every round's search, distances and counts run on the
        device, with the CPU path's results (labelsift._noise.device); CUDA
        neighbour lists and labels are copied to the host (they are O(N k)).
    labels : (N,) integer given labels in 0..K-1.
    num_classes : K (default: ``labels.max() + 1``).
    rounds : sampling rounds (Docta's ``num_rounds``, 50).
    sample_size : rows per round, capped at ``int(0.9 N)`` (35000).
    steps : the solver's loop length; step 0 only evaluates, so ``steps - 1``
        Adam updates (Docta's ``max_step``, 1501).
    seed : a non-negative integer; the result depends on it only.
    keep_best : return the iterate with the lowest loss after step 5 (True),
        or the final iterate, which is what the published code returns
        (its keep-best is a no-op: ``T.detach()`` aliases the optimised T).
    lr : Adam's learning rate (0.1).
    neighbours : ``"sample"`` (features' default, Docta's: each round's
        neighbours are searched within its sample) or ``"full"`` (neighbours
        in the whole set; Docta's ``already_2nn``; the only choice for lists).
    n_jobs : CPU threads for the kernels (default: all); results do not
        depend on it.

    Returns
    -------
    HOCResult with ``noise_matrix`` [given, true], ``transition_matrix``
    [true, noisy] (= noise_matrix.T), ``inverse_noise_matrix`` [true, given],
    ``py`` (clean prior), ``noisy_prior``, the solver's ``loss``/``step``
    (and ``best_loss``, ``final_loss``), the diagnostics ``agreement_1nn``,
    ``agreement_2nn`` and ``duplicate_rate`` (a RuntimeWarning above 1%:
    duplicates make neighbours agree and bias HOC towards too little noise),
    and the empirical ``consensus``.
    """
    return _hoc(features, labels, num_classes, rounds=rounds, sample_size=sample_size, steps=steps, seed=seed,
                keep_best=keep_best, lr=lr, neighbours=neighbours, n_jobs=n_jobs)


def simifeat(features, labels, num_classes=None, *, k=10, method="rank", rounds=21, sample_size=35000, seed=0,
             hoc=None, neighbours=None, n_jobs=None) -> SimiFeatResult:
    """Find wrong labels by SimiFeat (Docta's semantics; see labelsift._noise.simifeat).

    Parameters
    ----------
    features, labels, num_classes : as :func:`hoc`.
    k : voters per row, self included (Docta's ``topk(k)``): self plus k - 1
        neighbours; self's distance is taken as ``2 d1 - d2``; weights ``1 - d``
        (uniform weights for index-only lists). k >= 3.
    method : ``"rank"`` (per-class thresholds from HOC's estimate, Docta's
        default) or ``"vote"`` (alias ``"mv"``: flag when the vote's argmax is
        not the given label).
    rounds : subsampling rounds (Docta's ``num_epoch``, 21).
    sample_size : rows per round, capped at ``int(0.9 N)`` (Docta uses
        ``hoc_cfg.sample_size``; its ``detect_cfg.sample_size`` is unused).
    seed : non-negative integer.
    hoc : a HOCResult to use for ``method="rank"`` (default: computed here
        with :func:`hoc`'s defaults, the same ``sample_size`` and ``seed``).
    neighbours, n_jobs : as :func:`hoc`.

    Returns
    -------
    SimiFeatResult: ``is_noisy`` (N,) bool, ``score`` (N,) =
    ``(times_flagged + 1) / (times_sampled + 2)`` (higher = more likely
    wrong; flagged iff it rounds, half to even, to 1), ``suggested_label``
    (N,), ``ranked`` (flagged rows, highest score first, ties by lower index),
    ``times_sampled``, ``times_flagged``, and ``hoc`` (rank only).
    """
    return _simifeat(features, labels, num_classes, k=k, method=method, rounds=rounds, sample_size=sample_size,
                     seed=seed, hoc=hoc, neighbours=neighbours, n_jobs=n_jobs)
