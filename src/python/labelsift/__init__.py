"""labelsift: label-noise estimation at the speed of the hardware.

The confident-learning functions carry cleanlab's names, arguments, defaults
and results, so ``from labelsift import filter`` replaces ``from cleanlab
import filter``. Exactly equal values are ordered as cleanlab orders them
(``labelsift.options(ties="cleanlab")``, the default) or by the lower index
(``ties="lower_index"``), per call or globally.
"""
from ._common import openmp as _openmp  # noqa: F401  (first: the wait policy of labelsift's OpenMP runtime)
from ._common.backend import backend_info
from ._common.options import options
from ._cl.oneread import read_report
from .count import (
    calibrate_confident_joint,
    compute_confident_joint,
    estimate_joint,
    estimate_latent,
    estimate_py_and_noise_matrices_from_probabilities,
    get_confident_thresholds,
    num_label_issues,
)
from .filter import find_label_issues
from .rank import get_label_quality_scores, order_label_issues
from . import count, filter, knn, rank, sinkhorn, stream  # noqa: A004  (cleanlab's module names)
from . import noise
from . import multilabel_classification

__version__ = "0.1.0"

__all__ = [
    "backend_info",
    "calibrate_confident_joint",
    "compute_confident_joint",
    "count",
    "estimate_joint",
    "estimate_latent",
    "estimate_py_and_noise_matrices_from_probabilities",
    "filter",
    "find_label_issues",
    "get_confident_thresholds",
    "get_label_quality_scores",
    "multilabel_classification",
    "noise",
    "num_label_issues",
    "options",
    "read_report",
    "order_label_issues",
    "rank",
    "knn",
    "sinkhorn",
    "stream",
]
