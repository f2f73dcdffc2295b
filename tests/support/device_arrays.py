"""Device arrays for the CUDA tests: the layouts every test sweeps (C, F,
every other row and column, a negative row stride), their values uploaded
to labelsift's own device memory behind ``__cuda_array_interface__``, or as
CuPy / torch CUDA arrays, and results copied back. Needs a GPU (or the
emulated ``labelsift._cuda`` of :mod:`support.cuda_emu_plugin`) only when an
array is uploaded."""
import numpy as np
import pytest


class RawDevice:
    """A NumPy view's values in labelsift's own device memory, exposed through
    ``__cuda_array_interface__`` v3 with the view's (byte) strides: needs no
    CuPy or torch. ``stream``: the handle the interface reports (None: none)."""

    def __init__(self, base: np.ndarray, view: np.ndarray, stream=None):
        cuda = __import__("labelsift._cuda", fromlist=["_cuda"])
        assert base.flags.c_contiguous
        self.buf = cuda.DeviceBuffer(base.nbytes, 0)
        cuda.copy_htod(self.buf.ptr, base, 0, 0)
        offset = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        self.__cuda_array_interface__ = {
            "shape": view.shape, "strides": None if view.flags.c_contiguous and stream is None else view.strides,
            "typestr": view.dtype.str, "data": (self.buf.ptr + offset, False), "version": 3, "stream": stream}


def layout(a: np.ndarray, how: str):
    """(base to upload, the view of it whose values equal `a`)."""
    if how == "C":
        base = np.ascontiguousarray(a)
        return base, base
    if how == "F":
        base = np.ascontiguousarray(a.T)
        return base, base.T
    if how == "strided":  # every other row and column of a larger array
        base = np.zeros((2 * a.shape[0], 2 * a.shape[1] + 1), a.dtype)
        base[::2, 1::2][:, : a.shape[1]] = a
        return base, base[::2, 1::2][:, : a.shape[1]]
    if how == "reversed":  # negative row stride
        base = np.ascontiguousarray(a[::-1])
        return base, base[::-1]
    raise ValueError(how)


def host_view(a: np.ndarray, how: str) -> np.ndarray:
    """`a`'s values in the host view of a layout (for the emulated device)."""
    return layout(a, how)[1]


def to_device(a: np.ndarray, how: str = "C", framework: str = "raw", stream=None):
    base, view = layout(a, how)
    assert np.array_equal(view, a, equal_nan=True)
    if framework == "raw":
        return RawDevice(base, view, stream)
    if framework == "cupy":
        cupy = pytest.importorskip("cupy")
        d = cupy.asarray(base)
        return d.T if how == "F" else (d[::2, 1::2][:, : a.shape[1]] if how == "strided"
                                       else (d[::-1] if how == "reversed" else d))
    if framework == "torch":
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("torch has no CUDA here")
        if how == "reversed":
            pytest.skip("torch tensors have no negative strides")
        d = torch.from_numpy(base).cuda()
        return d.T if how == "F" else (d[::2, 1::2][:, : a.shape[1]] if how == "strided" else d)
    raise ValueError(framework)


def host(r):
    """A result as NumPy (torch/CuPy results copied back; tuples element by element)."""
    if isinstance(r, tuple):
        return tuple(host(x) for x in r)
    mod = type(r).__module__.split(".")[0]
    if mod == "torch":
        return r.cpu().numpy()
    if mod == "cupy":
        return r.get()
    return np.asarray(r)
