"""The compiled modules: threads, the CUDA module's import without a GPU."""
import importlib

import numpy as np
import pytest

import labelsift


def test_backend_info_keys_and_types():
    info = labelsift.backend_info()
    for key in ("cpu_threads", "cuda_built", "cuda_available", "cuda_reason"):
        assert key in info
    assert isinstance(info["cpu_threads"], int) and info["cpu_threads"] >= 1
    assert isinstance(info["cuda_built"], bool) and isinstance(info["cuda_available"], bool)
    if not info["cuda_available"]:
        assert info["cuda_reason"], "an unusable GPU must come with a reason"
    else:
        assert info["cuda_reason"] == ""


def test_cuda_module_imports_without_gpu_and_reports_why():
    info = labelsift.backend_info()
    if not info["cuda_built"]:
        pytest.skip(f"built without CUDA: {info['cuda_reason']}")
    mod = importlib.import_module("labelsift._cuda")
    q = mod.device_query()
    assert q["count"] >= 0
    assert q["runtime_version"] >= 12000  # the statically linked runtime answers even without a driver
    if q["count"] == 0:
        assert q["reason"]


def test_gpu_device_is_usable():
    info = labelsift.backend_info()
    if not info["cuda_available"]:
        pytest.skip(f"no usable CUDA device: {info['cuda_reason'] or 'CUDA module not built'}")
    q = importlib.import_module("labelsift._cuda").device_query()
    assert q["count"] >= 1 and len(q["names"]) == q["count"]


def test_device_argument_only_cpu_for_now():
    y = np.array([0, 1, 0, 1])
    P = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    assert labelsift.find_label_issues(y, P, device="cpu").shape == (4,)
    with pytest.raises(ValueError, match="device"):
        labelsift.find_label_issues(y, P, device="cuda")


def test_cleanlab_module_names():
    from labelsift import count, filter, rank  # noqa: A004

    assert filter.find_label_issues is labelsift.find_label_issues
    assert count.compute_confident_joint is labelsift.compute_confident_joint
    assert rank.get_label_quality_scores is labelsift.get_label_quality_scores
