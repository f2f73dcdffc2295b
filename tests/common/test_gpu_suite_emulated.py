"""The GPU suite (tests/gpu) run on the CPU against the host emulation of
``labelsift._cuda`` (support.cuda_emu): checks the suite's own logic --
its data, device layouts and comparisons -- so that the GPU session's one
run is not spent on a broken test. CuPy/torch cases skip here (no CUDA),
and the test of CUDA error reporting is left out (the emulator raises none).
"""
import os
import subprocess
import sys
from pathlib import Path

import labelsift

TESTS = Path(__file__).resolve().parents[1]


def test_gpu_suite_against_the_emulator(tmp_path):
    if labelsift.backend_info()["cuda_available"]:
        import pytest
        pytest.skip("a real GPU is present: tests/gpu runs on it")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "support.cuda_emu_plugin",
         "-W", "ignore::UserWarning", "-k", "not kernel_errors", str(TESTS / "gpu")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    tail = run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    passed = int(run.stdout.rsplit(" passed", 1)[0].split()[-1])
    assert passed >= 400, tail
