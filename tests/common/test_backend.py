"""The compiled modules: threads, the CUDA module's import without a GPU,
the AVX2 clone of the row kernel against the SSE2 baseline."""
import importlib
import os
import platform
import subprocess
import sys

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
    assert isinstance(q["count"], int) and len(q["names"]) == q["count"]
    assert q["runtime_version"] >= 12000  # the statically linked runtime answers even without a driver
    assert q["runtime_version"] == info["cuda_runtime_version"]
    # backend_info reports what the device query found
    assert (q["count"] > 0) == info["cuda_available"]
    assert list(q["names"]) == info["cuda_devices"]
    if q["count"] == 0:
        assert q["reason"] and q["reason"] == info["cuda_reason"]


@pytest.mark.gpu
def test_gpu_device_is_usable():
    info = labelsift.backend_info()
    if not info["cuda_available"]:
        pytest.skip(f"no usable CUDA device: {info['cuda_reason'] or 'CUDA module not built'}")
    q = importlib.import_module("labelsift._cuda").device_query()
    assert q["count"] >= 1 and len(q["names"]) == q["count"]
    assert all(isinstance(name, str) and name for name in q["names"])
    assert list(q["names"]) == info["cuda_devices"] and info["cuda_reason"] == ""


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


_KERNEL_RUN = """
import sys
import numpy as np
import labelsift as ls
from labelsift._cl.sketch import PairTable, sketch_rows
rng = np.random.default_rng(5)
out = {}
for t, dt in enumerate([np.float16, np.float32, np.float64] * 3):
    n, k = int(rng.integers(50, 400)), int(rng.integers(2, 70))
    P = rng.random((n, k)) ** 3
    P[rng.random((n, k)) < 0.2] = 0
    P[:, 0] += 1e-3
    P = (P / P.sum(1, keepdims=True)).astype(dt)
    if t % 3 == 0:
        P[::3] = P[0]  # exact ties
    y = rng.integers(0, k, n)
    if t % 4 == 1:
        y[y == 1] = 0  # an absent class: float64 thresholds
    for fb in ("prune_by_noise_rate", "both", "predicted_neq_given", "low_normalized_margin"):
        out[f"{t}-{fb}"] = ls.find_label_issues(y, P, filter_by=fb)
    out[f"{t}-cj"] = ls.compute_confident_joint(y, P, calibrate=False)
    out[f"{t}-nm"] = ls.get_label_quality_scores(y, P, method="normalized_margin")
    # the one-read kernels: the adaptive row sketch and the pair table fed with it
    sk = sketch_rows(P, y, 2, 16, rng.random(k) * 0.1, 0.001)
    for j, v in enumerate(sk):
        out[f"{t}-sketch{j}"] = v
    tb = PairTable(k, 3, P.dtype, n)
    tb.update(P, y, 0, sketch_rows(P, y, 1, 4, None, np.inf))
    out[f"{t}-pair-vals"], out[f"{t}-pair-ids"], out[f"{t}-pair-low"] = tb.vals, tb.ids, tb.low
# rows too long for the lane sweep: the one-row sweep (baseline and AVX2 widths)
for t, dt in enumerate([np.float16, np.float32, np.float64] * 2):
    n, k = int(rng.integers(40, 120)), int(rng.integers(170, 1100))
    P = rng.random((n, k)) ** 6
    P = (P / P.sum(1, keepdims=True)).astype(dt)
    if t % 2:
        P[::4] = P[1]
    y = rng.integers(0, k, n)
    for fb in ("prune_by_noise_rate", "both"):
        out[f"long{t}-{fb}"] = ls.find_label_issues(y, P, filter_by=fb)
    out[f"long{t}-cj"] = ls.compute_confident_joint(y, P, calibrate=False)
    out[f"long{t}-nm"] = ls.get_label_quality_scores(y, P, method="normalized_margin")
# the fused sketch of wide float rows (K >= 64, mmin 2): AVX2 sweeps or their scalar twins
for t, dt in enumerate([np.float16, np.float32] * 3):
    n, k = int(rng.integers(50, 200)), int(rng.integers(64, 600))
    P = (rng.random((n, k)) ** 4).astype(np.float64)
    P = (P / P.sum(1, keepdims=True)).astype(dt)
    if t % 2:
        P = np.round(P, 3).astype(dt)  # ties
    y = rng.integers(0, k, n)
    for j, v in enumerate(sketch_rows(P, y, 2, int(rng.integers(2, 70)), rng.random(k) * 4 / k, -1.0 / k)):
        out[f"wide{t}-sketch{j}"] = v
np.savez(sys.argv[1], **out)
"""


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _avx2_skip_reason():
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"the AVX2 clone exists only on x86-64 (this is {platform.machine()})"
    missing = {"avx2", "f16c"} - _cpu_flags()
    if missing:
        return f"/proc/cpuinfo lacks {', '.join(sorted(missing))}: only the baseline kernel can run here"
    return None


def test_baseline_and_avx2_kernels_agree(tmp_path):
    """The SSE2 baseline row kernels and their AVX2 clones (the row pass, the
    one-read sketch and pair table) give identical results
    (the suite otherwise runs only the one this CPU selects).  The default run
    takes the AVX2 clone when the CPU has AVX2 and F16C; LABELSIFT_NO_AVX2=1
    forces the baseline.  Without AVX2/F16C both runs would take the baseline
    and the comparison would prove nothing, so the test skips there."""
    reason = _avx2_skip_reason()
    if reason:
        pytest.skip(reason)
    script = tmp_path / "run.py"
    script.write_text(_KERNEL_RUN)
    results = {}
    for name, extra in (("default", {}), ("baseline", {"LABELSIFT_NO_AVX2": "1"})):
        env = {k: v for k, v in os.environ.items() if k != "LABELSIFT_NO_AVX2"} | extra
        out = tmp_path / f"{name}.npz"
        r = subprocess.run([sys.executable, str(script), str(out)], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        results[name] = np.load(out)
    a, b = results["default"], results["baseline"]
    assert sorted(a.files) == sorted(b.files) and len(a.files) > 0
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key, strict=True)
