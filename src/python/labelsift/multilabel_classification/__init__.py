"""``labelsift.multilabel_classification``: cleanlab's module of the same name
(``filter``, ``rank``, ``dataset``), same functions, arguments, defaults and
results. Labels: a list of per-example label lists (empty lists allowed), an
N x K 0/1 array or a SciPy sparse matrix; ``pred_probs``: N x K independent
per-class probabilities in [0, 1] (rows need not sum to 1)."""
from . import dataset, filter, rank  # noqa: A004

__all__ = ["dataset", "filter", "rank"]
