"""CUDA arrays in: what the device kernels read, and results back out.

The conversion point of device inputs. It reads, without importing any
framework and without copying to the host:

* ``__cuda_array_interface__`` (versions 2 and 3: data pointer, shape,
  strides in bytes or None for C order, typestr, v3 ``stream``), which CuPy,
  PyTorch, Numba and others expose;
* DLPack (``__dlpack_device__`` / ``__dlpack__``) for CUDA tensors without
  the interface (JAX, ...): the capsule's ``DLTensor`` is read with ctypes.

PyTorch tensors expose the interface, so they take the first route.

The work runs on the caller's stream: the interface's ``stream`` (v3), else
the framework's current stream (torch/CuPy, found in ``sys.modules``: a
caller that passes their arrays has imported them), else the legacy default
stream. Results come back in the caller's type (:func:`to_caller`): CuPy in,
CuPy out; torch in, torch out (on the same device); any other producer gets
NumPy arrays.
"""
from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np

#: DLPack device types of CUDA memory (kDLCUDA, kDLCUDAManaged).
DLPACK_CUDA = 2
DLPACK_CUDA_MANAGED = 13
DLPACK_CUDA_HOST = 3  # pinned host memory: not device memory

_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


@dataclass
class CudaArray:
    """A CUDA array as the kernels read it."""

    ptr: int  # address of element (0, ..., 0)
    shape: tuple
    strides: tuple  # in elements
    dtype: np.dtype
    stream: Optional[int]  # the producer's stream (CAI v3 / DLPack consumer stream), None: not given
    device: Optional[int]  # the device ordinal when the producer said it (DLPack, torch, CuPy)
    framework: str  # "torch", "cupy" or "other"
    owner: object  # the caller's object (keeps the memory alive)
    keepalive: object = None  # e.g. the DLPack capsule

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def is_c_contiguous(self) -> bool:
        return self.strides == c_strides(self.shape)


def c_strides(shape) -> tuple:
    """C-order strides (in elements) of a shape."""
    st, acc = [], 1
    for d in reversed(shape):
        st.append(acc)
        acc *= max(int(d), 1)
    return tuple(reversed(st))


def framework_of(x) -> str:
    mod = (type(x).__module__ or "").split(".")[0]
    return mod if mod in ("torch", "cupy") else "other"


def _dlpack_device(x):
    fn = getattr(x, "__dlpack_device__", None)
    if fn is None:
        return None
    try:
        dev_type, dev_id = fn()
        return int(dev_type), int(dev_id)
    except Exception:  # noqa: BLE001 - a producer that cannot say: not a CUDA array for us
        return None


def is_cuda_array(x) -> bool:
    """Whether ``x`` is device memory the CUDA path can read."""
    if isinstance(x, np.ndarray):
        return False
    try:
        x.__cuda_array_interface__  # torch raises for CPU tensors and tensors that require grad
    except Exception:  # noqa: BLE001 - any failure: not readable this way (DLPack may still be)
        pass
    else:
        return True
    dev = _dlpack_device(x)
    return dev is not None and dev[0] in (DLPACK_CUDA, DLPACK_CUDA_MANAGED)


def parse_cai(x, what: str = "array") -> CudaArray:
    """A :class:`CudaArray` from ``x.__cuda_array_interface__`` (v2 or v3)."""
    try:
        cai = x.__cuda_array_interface__
    except (AttributeError, TypeError, RuntimeError, ValueError) as exc:
        raise TypeError(f"{what}: its __cuda_array_interface__ cannot be read ({exc})") from None
    if not isinstance(cai, dict):
        raise TypeError(f"{what}: __cuda_array_interface__ must be a dict, got {type(cai).__name__}")
    for key in ("shape", "typestr", "data", "version"):
        if key not in cai:
            raise ValueError(f"{what}: __cuda_array_interface__ has no {key!r} entry")
    version = cai["version"]
    if not isinstance(version, int) or version < 2:
        raise ValueError(f"{what}: __cuda_array_interface__ version {version!r} is not supported (need 2 or 3)")
    shape = cai["shape"]
    if not isinstance(shape, (tuple, list)) or any(not isinstance(d, int) or isinstance(d, bool) or d < 0
                                                  for d in shape):
        raise ValueError(f"{what}: __cuda_array_interface__ shape {shape!r} is not a tuple of sizes")
    shape = tuple(int(d) for d in shape)
    try:
        dtype = np.dtype(cai["typestr"])
    except TypeError as exc:
        raise TypeError(f"{what}: __cuda_array_interface__ typestr {cai['typestr']!r} is not a dtype ({exc})") from None
    if not dtype.isnative:
        raise TypeError(f"{what}: byte-swapped device data (typestr {cai['typestr']!r}) is not supported")
    data = cai["data"]
    if not isinstance(data, (tuple, list)) or len(data) != 2 or not isinstance(data[0], int):
        raise ValueError(f"{what}: __cuda_array_interface__ data must be (pointer, read_only), got {data!r}")
    ptr = int(data[0])
    if cai.get("mask") is not None:
        raise ValueError(f"{what}: masked CUDA arrays are not supported")
    strides = cai.get("strides")
    if strides is None:
        el_strides = c_strides(shape)
    else:
        if not isinstance(strides, (tuple, list)) or len(strides) != len(shape) or any(
                not isinstance(s, int) for s in strides):
            raise ValueError(f"{what}: __cuda_array_interface__ strides {strides!r} do not match shape {shape}")
        bad = [s for s in strides if s % dtype.itemsize]
        if bad:
            raise ValueError(f"{what}: strides {tuple(strides)} (bytes) are not multiples of the item size "
                             f"{dtype.itemsize}")
        el_strides = tuple(int(s) // dtype.itemsize for s in strides)
    if ptr == 0 and int(np.prod(shape, dtype=np.int64)) > 0:
        raise ValueError(f"{what}: __cuda_array_interface__ has a null data pointer")
    stream = cai.get("stream") if version >= 3 else None
    if stream is not None:
        if not isinstance(stream, int) or isinstance(stream, bool):
            raise ValueError(f"{what}: __cuda_array_interface__ stream {stream!r} is not an integer handle")
        if stream == 0:
            raise ValueError(f"{what}: __cuda_array_interface__ stream 0 is disallowed by the protocol "
                             "(1: legacy default, 2: per-thread default)")
    return CudaArray(ptr, shape, el_strides, dtype, stream, _framework_device(x), framework_of(x), x)


def _framework_device(x) -> Optional[int]:
    fw = framework_of(x)
    try:
        if fw == "torch":
            return int(x.device.index or 0)
        if fw == "cupy":
            return int(x.device.id)
    except (AttributeError, TypeError, ValueError):
        return None
    return None


# ---------------------------------------------------------------------------
# DLPack
# ---------------------------------------------------------------------------
class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class _DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("version", _DLPackVersion), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p),
                ("flags", ctypes.c_uint64), ("dl_tensor", _DLTensor)]


_DL_INT, _DL_UINT, _DL_FLOAT = 0, 1, 2


def _capsule_pointer(capsule, name: bytes) -> Optional[int]:
    api = ctypes.pythonapi
    api.PyCapsule_IsValid.restype = ctypes.c_int
    api.PyCapsule_IsValid.argtypes = [ctypes.py_object, ctypes.c_char_p]
    if not api.PyCapsule_IsValid(capsule, name):
        return None
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return api.PyCapsule_GetPointer(capsule, name)


def _dl_dtype(dt: _DLDataType, what: str) -> np.dtype:
    if dt.lanes != 1:
        raise TypeError(f"{what}: vector DLPack dtypes (lanes={dt.lanes}) are not supported")
    kinds = {_DL_INT: "i", _DL_UINT: "u", _DL_FLOAT: "f"}
    if dt.code not in kinds or dt.bits not in (8, 16, 32, 64) or (dt.code == _DL_FLOAT and dt.bits == 8):
        raise TypeError(f"{what}: DLPack dtype (code {dt.code}, {dt.bits} bits) is not supported")
    return np.dtype(f"{kinds[dt.code]}{dt.bits // 8}")


def dltensor_fields(capsule, what: str = "array"):
    """(data pointer incl. byte offset, shape, strides in elements, dtype,
    device type, device id) of a DLPack capsule (``dltensor`` or
    ``dltensor_versioned``), read with ctypes; the capsule is not consumed."""
    addr = _capsule_pointer(capsule, b"dltensor")
    if addr is not None:
        t = _DLTensor.from_address(addr)  # DLManagedTensor starts with its DLTensor
    else:
        addr = _capsule_pointer(capsule, b"dltensor_versioned")
        if addr is None:
            raise TypeError(f"{what}: __dlpack__() did not return a DLPack capsule")
        t = _DLManagedTensorVersioned.from_address(addr).dl_tensor
    dtype = _dl_dtype(t.dtype, what)
    if t.ndim < 0:
        raise ValueError(f"{what}: DLPack tensor with ndim {t.ndim}")
    shape = tuple(int(t.shape[i]) for i in range(t.ndim))
    if any(d < 0 for d in shape):
        raise ValueError(f"{what}: DLPack shape {shape} has a negative size")
    strides = c_strides(shape) if not t.strides else tuple(int(t.strides[i]) for i in range(t.ndim))
    ptr = int(t.data or 0) + int(t.byte_offset)
    return ptr, shape, strides, dtype, int(t.device.device_type), int(t.device.device_id)


def parse_dltensor(capsule, owner, what: str = "array", stream: Optional[int] = None) -> CudaArray:
    """A :class:`CudaArray` from a DLPack capsule of CUDA memory; the capsule
    is kept alive with the result and never consumed (its deleter runs when
    it is collected)."""
    ptr, shape, strides, dtype, dev_type, dev_id = dltensor_fields(capsule, what)
    if dev_type not in (DLPACK_CUDA, DLPACK_CUDA_MANAGED):
        raise TypeError(f"{what}: DLPack device type {dev_type} is not CUDA memory")
    return CudaArray(ptr, shape, strides, dtype, stream, dev_id, framework_of(owner), owner, keepalive=capsule)


def parse_dlpack(x, what: str = "array") -> CudaArray:
    """A :class:`CudaArray` from an object with ``__dlpack__`` on a CUDA device.
    The producer is asked to make the data ready for the legacy default
    stream (``stream=1``), where the kernels then run."""
    dev = _dlpack_device(x)
    if dev is None or dev[0] not in (DLPACK_CUDA, DLPACK_CUDA_MANAGED):
        raise TypeError(f"{what} is not a CUDA DLPack tensor (device {dev})")
    try:
        capsule = x.__dlpack__(stream=1)
    except TypeError:
        capsule = x.__dlpack__()
    return parse_dltensor(capsule, x, what, stream=1)


def parse(x, what: str = "array") -> CudaArray:
    """The one reader of device arrays: the interface when there is one, else
    DLPack. A torch tensor that requires grad is read through ``detach()``
    (same memory; torch refuses both protocols otherwise)."""
    if framework_of(x) == "torch" and getattr(x, "requires_grad", False):
        x = x.detach()
    try:
        has_cai = hasattr(x, "__cuda_array_interface__")
    except Exception:  # noqa: BLE001 - a property that raises something else than AttributeError
        has_cai = False
    if has_cai:
        return parse_cai(x, what)
    return parse_dlpack(x, what)


# ---------------------------------------------------------------------------
# What the confident-learning kernels accept
# ---------------------------------------------------------------------------
def as_device_probs(x, what: str = "pred_probs") -> CudaArray:
    """pred_probs on the device: 2-D, float16/float32/float64, N >= 1, K >= 2."""
    a = parse(x, what)
    if a.dtype.kind != "f":
        raise TypeError(f"{what} must hold floating-point probabilities, got dtype {a.dtype}")
    if a.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{what}: CUDA arrays of dtype {a.dtype} are not supported (float16, float32 or float64)")
    if a.ndim != 2:
        raise ValueError(f"{what} must be 2-D (num_examples x num_classes), got shape {a.shape}")
    n, k = a.shape
    if n == 0:
        raise ValueError(f"{what} is empty (0 rows)")
    if k < 2:
        raise ValueError(f"{what} has {k} column(s); confident learning needs at least 2 classes")
    if k >= 2 ** 31:
        raise ValueError(f"{what} has {k} columns; the CUDA kernels take fewer than 2**31")
    return a


def as_device_labels(x, what: str = "labels") -> CudaArray:
    """Labels on the device: 1-D integers (validated on the host after the copy)."""
    a = parse(x, what)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{what} must have an integer dtype, got {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {a.shape}")
    return a


def span(a: CudaArray) -> tuple[int, int]:
    """(lowest, one past the highest) element offset an array touches."""
    if a.size == 0:
        return 0, 0
    lo = sum(min(0, (d - 1) * s) for d, s in zip(a.shape, a.strides))
    hi = sum(max(0, (d - 1) * s) for d, s in zip(a.shape, a.strides))
    return lo, hi + 1


def resolve_stream(a: CudaArray) -> int:
    """The stream handle the work runs on: the producer's (interface v3 /
    DLPack), else the framework's current stream, else 0 (legacy default)."""
    if a.stream is not None:
        return int(a.stream)
    if a.framework == "torch" and "torch" in sys.modules:
        torch = sys.modules["torch"]
        return int(torch.cuda.current_stream(a.owner.device).cuda_stream)
    if a.framework == "cupy" and "cupy" in sys.modules:
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(a.device or 0):
            return int(cupy.cuda.get_current_stream().ptr)
    return 0


def to_caller(a: CudaArray, result):
    """``result`` (a NumPy array, or a tuple of them) in the caller's type:
    a torch tensor / CuPy array on the input's device, else unchanged NumPy."""
    if isinstance(result, tuple):
        return tuple(to_caller(a, r) for r in result)
    if not isinstance(result, np.ndarray):
        return result
    if a.framework == "torch" and "torch" in sys.modules:
        torch = sys.modules["torch"]
        return torch.from_numpy(np.ascontiguousarray(result)).to(a.owner.device)
    if a.framework == "cupy" and "cupy" in sys.modules:
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(a.device or 0):
            return cupy.asarray(result)
    return result


__all__ = ["CudaArray", "as_device_labels", "dltensor_fields", "as_device_probs", "is_cuda_array", "parse", "parse_cai",
           "parse_dlpack", "parse_dltensor", "resolve_stream", "span", "to_caller"]


#: the dtype codes of the CUDA kernels' descriptors
DTYPE_CODE = {np.dtype(np.float16): 0, np.dtype(np.float32): 1, np.dtype(np.float64): 2}


class DeviceMatrix:
    """What the device paths share about an N x K CUDA array: its descriptor
    for the kernels (pointer, n, k, strides in elements, dtype code), its
    device and the caller's stream, and buffers on that device. Subclasses
    give ``n`` and ``k``."""

    def __init__(self, arr: CudaArray, cuda):
        self.cuda = cuda
        self.arr = arr
        self.dtype = arr.dtype
        self.s0, self.s1 = arr.strides
        self.dev = arr.device if arr.device is not None else int(cuda.pointer_device(arr.ptr))
        self.stream = resolve_stream(arr)

    def desc(self):
        return (self.arr.ptr, self.n, self.k, self.s0, self.s1, DTYPE_CODE[self.dtype])

    def alloc(self, nbytes: int):
        return self.cuda.DeviceBuffer(int(nbytes), self.dev)

    def upload(self, host: np.ndarray):
        host = np.ascontiguousarray(host)
        buf = self.alloc(host.nbytes)
        self.cuda.copy_htod(buf.ptr, host, self.dev, self.stream)
        return buf

    def download(self, buf, n: int, dtype) -> np.ndarray:
        out = np.empty(n, dtype)
        self.cuda.copy_dtoh(out, buf.ptr, self.dev, self.stream)
        return out

    def fetch(self, ptr: int, shape, strides, dtype) -> np.ndarray:
        """A host copy of a strided device array (strides in elements, any sign)."""
        return _fetch(self.cuda, self.dev, self.stream, ptr, shape, strides, dtype)


def _fetch(cuda, dev: int, stream: int, ptr: int, shape, strides, dtype) -> np.ndarray:
    a = CudaArray(ptr, tuple(shape), tuple(strides), np.dtype(dtype), None, dev, "other", None)
    lo, hi = span(a)
    raw = np.empty(hi - lo, a.dtype)
    if hi > lo:
        cuda.copy_dtoh(raw, ptr + lo * a.dtype.itemsize, dev, stream)
    view = np.ndarray(a.shape, a.dtype, buffer=raw, offset=-lo * a.dtype.itemsize,
                      strides=tuple(s * a.dtype.itemsize for s in a.strides))
    return view.copy()


def host_copy(a: CudaArray, cuda) -> np.ndarray:
    """A host copy of the whole CUDA array ``a`` (any shape and strides), on its own device and stream."""
    dev = a.device if a.device is not None else int(cuda.pointer_device(a.ptr))
    return _fetch(cuda, dev, resolve_stream(a), a.ptr, a.shape, a.strides, a.dtype)
