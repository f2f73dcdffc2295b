"""The GPU row kernel's lane split (RowOps::sweep_row_part + combine +
finish, cl/row_math.h) against the scalar definition RowOps::row, on the
host: tests/cl/native/row_parts_check.cpp is compiled with the C++ compiler
and the same flags' no-contraction rule, then run."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "tests" / "cl" / "native" / "row_parts_check.cpp"


def _compiler():
    for cc in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if cc and shutil.which(cc):
            return cc
    return None


def test_lane_split_equals_scalar_row(tmp_path):
    cc = _compiler()
    if cc is None:
        pytest.skip("no C++ compiler")
    if not (ROOT / "src" / "cpp" / "cl" / "row_math.h").exists():
        pytest.skip("the C++ sources are not beside the tests")
    exe = tmp_path / "row_parts_check"
    subprocess.run([cc, "-std=c++17", "-O1", "-ffp-contract=off", "-I", str(ROOT / "src" / "cpp"), str(SRC),
                    "-o", str(exe)], check=True, capture_output=True, text=True, timeout=240)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "mismatches 0" in run.stdout
    rows = int(run.stdout.split("rows ")[1].split()[0])
    assert rows == 11 * 2 * 3 * 400
