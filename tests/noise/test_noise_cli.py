"""labelsift noise-matrix --features (HOC) from the command line."""
import json

import numpy as np
import pytest

import labelsift.noise as nz
from labelsift.cli import main
from support.noise import clusters


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hoc")
    x, y, _, _ = clusters(3, 900, 3, 6, noise=0.2)
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", y)
    return d, x, y


def test_noise_matrix_from_features(files, capsys):
    d, x, y = files
    out = d / "hoc.json"
    rc = main(["noise-matrix", "--features", str(d / "x.npy"), "--labels", str(d / "y.npy"), "--rounds", "3",
               "--steps", "200", "--seed", "5", "--out", str(out), "--no-progress"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "hoc" and summary["num_examples"] == 900
    got = json.loads(out.read_text())
    r = nz.hoc(x, y, rounds=3, steps=200, seed=5)
    np.testing.assert_array_equal(np.array(got["noise_matrix"]), r.noise_matrix)
    np.testing.assert_array_equal(np.array(got["transition_matrix"]), r.transition_matrix)
    assert got["diagnostics"]["agreement_1nn"] == r.agreement_1nn
    assert "given" in got["axes"]["noise_matrix"]


@pytest.mark.parametrize("extra,match", [
    ([], "exactly one of --pred-probs"),
    (["--features", "Y"], "expected N x d floats"),
    (["--features", "X", "--rounds", "2", "--sample-size", "2"], "sample_size"),
])
def test_errors_exit_2_with_one_line(files, capsys, extra, match):
    d, _, _ = files
    extra = [str(d / "x.npy") if a == "X" else str(d / "y.npy") if a == "Y" else a for a in extra]
    rc = main(["noise-matrix", "--labels", str(d / "y.npy"), "--no-progress", *extra])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
