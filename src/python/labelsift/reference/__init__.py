"""Reference implementations (plain NumPy), the oracles of labelsift's tests.

``labelsift.reference`` exposes the confident-learning functions under the
same names and signatures as the public API, so a test written against
``cl.find_label_issues`` runs unchanged against either.
:mod:`labelsift.reference.sinkhorn` holds the Sinkhorn self-labelling oracles.
"""
from .confident_learning import (
    calibrate_confident_joint,
    compute_confident_joint,
    estimate_joint,
    estimate_latent,
    estimate_py_and_noise_matrices_from_probabilities,
    find_label_issues,
    get_confident_thresholds,
    get_label_quality_scores,
    num_label_issues,
    order_label_issues,
)
from .._cl.latent import round_preserving_sum
from . import sinkhorn  # noqa: E402  (labelsift.reference.sinkhorn: the Sinkhorn oracles)

__all__ = [
    "calibrate_confident_joint",
    "compute_confident_joint",
    "estimate_joint",
    "estimate_latent",
    "estimate_py_and_noise_matrices_from_probabilities",
    "find_label_issues",
    "get_confident_thresholds",
    "get_label_quality_scores",
    "num_label_issues",
    "order_label_issues",
    "round_preserving_sum",
    "sinkhorn",
]
