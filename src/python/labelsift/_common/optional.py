"""Optional dependencies, imported where they are needed, with one clear
message when missing (SciPy for the non-IID check and CSR graphs, pandas for
DataFrames; the extras are declared in pyproject.toml)."""
from __future__ import annotations

import importlib

# the pip package of each module, and the labelsift extra that brings it
_PACKAGES = {"scipy": ("scipy", "knn"), "pandas": ("pandas", "pandas")}


def optional(module: str, what: str):
    """``importlib.import_module(module)``, or an ImportError saying that
    ``what`` needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        pkg, extra = _PACKAGES.get(top, (top, None))
        hint = f"pip install '{pkg}'" if extra is None else f"pip install 'labelsift[{extra}]' (or pip install {pkg})"
        raise ImportError(f"{what} needs {pkg}: {hint}") from None
