"""Reading CUDA arrays (labelsift._common.cuda_arrays) without a GPU: fake
objects exposing ``__cuda_array_interface__``, DLPack capsules built with
ctypes and real (CPU) torch capsules. Nothing here touches device memory."""
import ctypes

import numpy as np
import pytest

import labelsift
from labelsift._common import cuda_arrays as ca


class FakeCAI:
    """An object exposing a given __cuda_array_interface__ dict."""

    def __init__(self, cai):
        self._cai = cai

    @property
    def __cuda_array_interface__(self):
        return self._cai


def cai(shape=(4, 3), typestr="<f4", strides=None, ptr=0x7000_0000, version=3, **extra):
    d = {"shape": shape, "typestr": typestr, "data": (ptr, False), "version": version, "strides": strides}
    d.update(extra)
    return d


def test_v2_c_order_without_strides():
    a = ca.parse_cai(FakeCAI(cai((5, 7), "<f8", None, version=2)))
    assert a.ptr == 0x7000_0000 and a.shape == (5, 7) and a.dtype == np.float64
    assert a.strides == (7, 1) and a.is_c_contiguous()
    assert a.stream is None and a.framework == "other"


@pytest.mark.parametrize("typestr,itemsize", [("<f2", 2), ("<f4", 4), ("<f8", 8)])
def test_byte_strides_become_element_strides(typestr, itemsize):
    # a transposed view of a (3, 4) array: strides (1, 4) elements
    a = ca.parse_cai(FakeCAI(cai((4, 3), typestr, (itemsize, 4 * itemsize))))
    assert a.strides == (1, 4) and not a.is_c_contiguous()
    assert a.dtype.itemsize == itemsize


def test_negative_strides_and_span():
    a = ca.parse_cai(FakeCAI(cai((4, 3), "<f4", (-12, 4))))
    assert a.strides == (-3, 1)
    assert ca.span(a) == (-9, 3)  # rows 0..-3 back, three columns
    b = ca.parse_cai(FakeCAI(cai((2, 5), "<f4", (4, 8))))  # column-major with gaps
    assert ca.span(b) == (0, 1 + 4 * 2 + 1 * 1)
    assert ca.span(ca.parse_cai(FakeCAI(cai((0, 5), "<f4")))) == (0, 0)


def test_v3_stream_is_used_and_v2_stream_ignored():
    a = ca.parse_cai(FakeCAI(cai(stream=0xBEEF)))
    assert a.stream == 0xBEEF and ca.resolve_stream(a) == 0xBEEF
    assert ca.parse_cai(FakeCAI(cai(stream=1))).stream == 1  # legacy default
    assert ca.parse_cai(FakeCAI(cai(version=2, stream=0xBEEF))).stream is None
    assert ca.resolve_stream(ca.parse_cai(FakeCAI(cai(stream=None)))) == 0  # no framework: legacy default


@pytest.mark.parametrize("bad,err,match", [
    (dict(stream=0), ValueError, "stream 0"),
    (dict(stream="s"), ValueError, "stream"),
    (dict(strides=(6, 4)), ValueError, "multiples of the item size"),
    (dict(strides=(4,)), ValueError, "do not match"),
    (dict(mask=(1, False)), ValueError, "masked"),
    (dict(version=1), ValueError, "version"),
    (dict(typestr=">f4"), TypeError, "byte-swapped"),
    (dict(shape=(4, -3)), ValueError, "shape"),
    (dict(ptr=0), ValueError, "null data pointer"),
])
def test_malformed_interfaces_are_refused(bad, err, match):
    d = cai(**{k: v for k, v in bad.items() if k in ("strides", "version", "typestr", "shape", "ptr")})
    d.update({k: v for k, v in bad.items() if k in ("stream", "mask")})
    with pytest.raises(err, match=match):
        ca.parse_cai(FakeCAI(d))


def test_missing_keys_and_non_dict():
    for key in ("shape", "typestr", "data", "version"):
        d = cai()
        del d[key]
        with pytest.raises(ValueError, match=repr(key)):
            ca.parse_cai(FakeCAI(d))
    with pytest.raises(TypeError, match="must be a dict"):
        ca.parse_cai(FakeCAI([1, 2]))


def test_probs_and_labels_checks():
    assert ca.as_device_probs(FakeCAI(cai((10, 3), "<f2"))).dtype == np.float16
    with pytest.raises(TypeError, match="floating-point"):
        ca.as_device_probs(FakeCAI(cai((10, 3), "<i8")))
    with pytest.raises(TypeError, match="not supported"):
        ca.as_device_probs(FakeCAI(cai((10, 3), "<f16")))  # longdouble
    with pytest.raises(ValueError, match="2-D"):
        ca.as_device_probs(FakeCAI(cai((10,), "<f4")))
    with pytest.raises(ValueError, match="empty"):
        ca.as_device_probs(FakeCAI(cai((0, 3), "<f4")))
    with pytest.raises(ValueError, match="at least 2 classes"):
        ca.as_device_probs(FakeCAI(cai((5, 1), "<f4")))
    assert ca.as_device_labels(FakeCAI(cai((10,), "<i4"))).dtype == np.int32
    with pytest.raises(TypeError, match="integer"):
        ca.as_device_labels(FakeCAI(cai((10,), "<f4")))
    with pytest.raises(ValueError, match="1-D"):
        ca.as_device_labels(FakeCAI(cai((10, 2), "<i8")))


class Raises:
    @property
    def __cuda_array_interface__(self):
        raise AttributeError("not on a GPU")


class FakeDL:
    def __init__(self, dev):
        self.dev = dev

    def __dlpack_device__(self):
        return self.dev


def test_is_cuda_array():
    assert not ca.is_cuda_array(np.zeros((2, 2)))
    assert ca.is_cuda_array(FakeCAI(cai()))
    assert not ca.is_cuda_array(Raises())
    assert ca.is_cuda_array(FakeDL((2, 0))) and ca.is_cuda_array(FakeDL((13, 1)))
    assert not ca.is_cuda_array(FakeDL((1, 0))) and not ca.is_cuda_array(FakeDL((3, 0)))
    assert not ca.is_cuda_array([[0.5, 0.5]])


# -- DLPack capsules built by hand ------------------------------------------
def _capsule(struct, name: bytes):
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return new(ctypes.addressof(struct), name, None)


def _dltensor(shape, strides, code=2, bits=32, dev_type=2, dev_id=1, data=0x1000, offset=0):
    nd = len(shape)
    sh = (ctypes.c_int64 * nd)(*shape)
    st = None if strides is None else (ctypes.c_int64 * nd)(*strides)
    t = ca._DLTensor()
    t.data = data
    t.device = ca._DLDevice(dev_type, dev_id)
    t.ndim = nd
    t.dtype = ca._DLDataType(code, bits, 1)
    t.shape = sh
    t.strides = st if st is not None else ctypes.POINTER(ctypes.c_int64)()
    t.byte_offset = offset
    return t, (sh, st)


_NAME = b"dltensor"  # bytes objects outlive the capsules below (the name pointer must stay valid)
_VNAME = b"dltensor_versioned"


def test_dlpack_capsule_strided_with_offset():
    t, keep = _dltensor((6, 4), (1, 6), bits=16, offset=64)
    cap = _capsule(t, _NAME)
    a = ca.parse_dltensor(cap, object())
    assert a.ptr == 0x1000 + 64 and a.shape == (6, 4) and a.strides == (1, 6)
    assert a.dtype == np.float16 and a.device == 1 and a.keepalive is cap
    del keep


def test_dlpack_capsule_compact_and_versioned():
    t, keep = _dltensor((3, 5), None, code=0, bits=64, dev_type=13, dev_id=0)
    a = ca.parse_dltensor(_capsule(t, _NAME), object())
    assert a.strides == (5, 1) and a.dtype == np.int64
    m = ca._DLManagedTensorVersioned()
    m.version = ca._DLPackVersion(1, 0)
    m.dl_tensor = t
    b = ca.parse_dltensor(_capsule(m, _VNAME), object())
    assert b.shape == (3, 5) and b.strides == (5, 1) and b.dtype == np.int64
    del keep


def test_dlpack_refuses_host_memory_and_odd_dtypes():
    t, keep = _dltensor((3,), None, dev_type=1)
    with pytest.raises(TypeError, match="not CUDA memory"):
        ca.parse_dltensor(_capsule(t, _NAME), object())
    t2, keep2 = _dltensor((3,), None, code=5, bits=64)  # complex
    with pytest.raises(TypeError, match="not supported"):
        ca.parse_dltensor(_capsule(t2, _NAME), object())
    with pytest.raises(TypeError, match="capsule"):
        ca.parse_dltensor(object(), object())
    del keep, keep2


def test_real_torch_capsule_fields():
    torch = pytest.importorskip("torch")
    x = torch.arange(40, dtype=torch.float64).reshape(5, 8)[1:, 1::3]
    ptr, shape, strides, dtype, dev_type, dev_id = ca.dltensor_fields(x.__dlpack__())
    assert ptr == x.data_ptr() and shape == tuple(x.shape) and strides == tuple(x.stride())
    assert dtype == np.float64 and dev_type == 1
    assert not ca.is_cuda_array(x)  # a CPU tensor stays on the host path
    with pytest.raises(TypeError, match="not CUDA memory"):
        ca.parse_dltensor(x.__dlpack__(), x)


def test_to_caller_keeps_numpy_for_other_producers():
    a = ca.parse_cai(FakeCAI(cai()))
    r = np.arange(3)
    assert ca.to_caller(a, r) is r
    out = ca.to_caller(a, (r, 5))
    assert out[0] is r and out[1] == 5


def test_public_api_without_gpu_says_why():
    if labelsift.backend_info()["cuda_available"]:
        pytest.skip("a usable GPU is present (a fake pointer would be dereferenced)")
    P = FakeCAI(cai((4, 2), "<f4"))
    y = np.array([0, 1, 0, 1])
    for fn in (labelsift.find_label_issues, labelsift.compute_confident_joint,
               labelsift.get_confident_thresholds):
        with pytest.raises(TypeError, match="CUDA array.*cannot use a GPU"):
            fn(y, P)
    # a function without a GPU path keeps the host-only error
    with pytest.raises(TypeError, match="no GPU path"):
        labelsift.rank.get_label_quality_scores(y, P)


class GradLike:
    """Raises RuntimeError for the interface (as torch does for tensors that
    require grad) but offers CUDA DLPack."""

    @property
    def __cuda_array_interface__(self):
        raise RuntimeError("Can't get __cuda_array_interface__ on Variable that requires grad")

    def __dlpack_device__(self):
        return (2, 0)


def test_interface_that_raises_falls_back_to_dlpack():
    assert ca.is_cuda_array(GradLike())
    with pytest.raises(AttributeError):  # parse went on to DLPack (which this fake lacks)
        ca.parse(GradLike())
