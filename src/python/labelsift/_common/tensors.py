"""Torch CPU tensors in and out, through DLPack; torch stays optional.

labelsift never imports torch: a tensor can only be passed by a caller that
has imported it already, so :func:`from_tensor` finds the module in
``sys.modules``. CUDA tensors get the same TypeError as every CUDA array
(``arrays.host_array``) until the GPU path lands.
"""
from __future__ import annotations

import sys

import numpy as np


def is_torch_tensor(x) -> bool:
    mod = type(x).__module__ or ""
    return mod.split(".")[0] == "torch" and hasattr(x, "__dlpack__")


def from_tensor(x, what: str):
    """(NumPy view of x, to_caller) where to_caller(ndarray) returns the caller's type."""
    if not is_torch_tensor(x):
        return x, lambda a: a
    torch = sys.modules["torch"]
    if x.device.type != "cpu":
        raise TypeError(f"{what} is a {x.device.type} tensor; the GPU path is not available in this build yet: "
                        "pass tensor.cpu()")
    arr = np.from_dlpack(x.detach())

    def to_caller(a):
        return torch.from_dlpack(np.ascontiguousarray(a))

    return arr, to_caller
