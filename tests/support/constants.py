"""Constants the tests sweep, defined once."""
import importlib.util

import numpy as np

from labelsift._common.names import FILTER_BY, PRUNE_METHODS, SCORE_METHODS  # noqa: F401 - re-exported

PROB_DTYPES = (np.float16, np.float32, np.float64)
LABEL_DTYPES = (np.uint8, np.uint16, np.int32, np.int64)
HAVE_TORCH = importlib.util.find_spec("torch") is not None
