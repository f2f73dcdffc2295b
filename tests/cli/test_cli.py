"""The command line: example job, outputs, exit code 2 on bad input."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import labelsift
from labelsift.cli import main
from labelsift.datasets import cifar10_test


def run_cli(*args):
    p = subprocess.run([sys.executable, "-m", "labelsift", *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    d = tmp_path_factory.mktemp("dump")
    data = cifar10_test()
    np.save(d / "labels.npy", data.labels)
    np.save(d / "probs.npy", data.pred_probs.astype(np.float32))
    np.save(d / "p0.npy", data.pred_probs[:3333].astype(np.float32))
    np.save(d / "p1.npy", data.pred_probs[3333:].astype(np.float32))
    return d, data


def test_example_prints_issues_and_noise_matrix():
    code, out, err = run_cli("example")
    assert code == 0, err
    data = cifar10_test()
    n = int(labelsift.find_label_issues(data.labels, data.pred_probs).sum())
    assert f"label issues found: {n}" in out
    assert "noise matrix" in out and "airplane" in out


def test_find_issues_csv_and_summary(dump, tmp_path):
    d, data = dump
    out_csv = tmp_path / "issues.csv"
    code, out, err = run_cli("find-issues", "--labels", d / "labels.npy", "--pred-probs", d / "probs.npy",
                             "--out", out_csv)
    assert code == 0, err
    summary = json.loads(out)
    P = data.pred_probs.astype(np.float32)
    ranked = labelsift.find_label_issues(data.labels, P, return_indices_ranked_by="self_confidence")
    assert summary["num_issues"] == len(ranked)
    rows = list(csv.DictReader(out_csv.open()))
    assert [int(r["index"]) for r in rows] == ranked.tolist()
    for r in rows[:20]:
        i = int(r["index"])
        assert int(r["given_label"]) == data.labels[i]
        assert int(r["suggested_label"]) == int(P[i].argmax())
        assert float(r["quality_score"]) == pytest.approx(float(P[i, data.labels[i]]), rel=1e-6)


def test_shards_equal_single_file(dump, tmp_path):
    d, _ = dump
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run_cli("noise-matrix", "--labels", d / "labels.npy", "--pred-probs", d / "probs.npy", "--out", a)[0] == 0
    assert run_cli("noise-matrix", "--labels", d / "labels.npy", "--pred-probs", d / "p0.npy", d / "p1.npy",
                   "--out", b)[0] == 0
    assert json.loads(a.read_text()) == json.loads(b.read_text())


@pytest.mark.parametrize("case", ["missing", "pickled", "mismatch", "float_labels", "nan", "wrong_ndim"])
def test_bad_input_exits_2_with_one_line(dump, tmp_path, case, capsys):
    d, data = dump
    labels, probs = d / "labels.npy", d / "probs.npy"
    if case == "missing":
        probs = tmp_path / "nope.npy"
    elif case == "pickled":
        probs = tmp_path / "obj.npy"
        np.save(probs, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif case == "mismatch":
        labels = tmp_path / "short.npy"
        np.save(labels, data.labels[:10])
    elif case == "float_labels":
        labels = tmp_path / "fl.npy"
        np.save(labels, data.labels.astype(np.float64))
    elif case == "nan":
        P = data.pred_probs.copy()
        P[17, 3] = np.nan
        probs = tmp_path / "nan.npy"
        np.save(probs, P)
    elif case == "wrong_ndim":
        probs = tmp_path / "flat.npy"
        np.save(probs, data.pred_probs.ravel())
    out_csv = tmp_path / "never.csv"
    code = main(["find-issues", "--labels", str(labels), "--pred-probs", str(probs), "--out", str(out_csv)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labelsift: error:")
    assert not out_csv.exists()
    if case == "nan":
        assert "[17, 3]" in lines[0]


def test_noise_matrix_plot_png(dump, tmp_path):
    """--plot writes a PNG (the figure itself is inspected in test_cli_usage.py)."""
    import struct

    pytest.importorskip("matplotlib")
    d, data = dump
    png = tmp_path / "m.png"
    code, out, err = run_cli("noise-matrix", "--labels", d / "labels.npy", "--pred-probs", d / "probs.npy",
                             "--plot", png, "--quiet")
    assert code == 0, err
    assert json.loads(out)["plot"] == str(png)
    b = png.read_bytes()
    assert b[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", b[16:24])
    assert 800 <= w <= 4000 and 800 <= h <= 4000  # a figure for a report, not one pixel per cell


def test_float16_shards_and_labels_path(tmp_path):
    data = cifar10_test()
    P = data.pred_probs.astype(np.float16)
    np.save(tmp_path / "y.npy", data.labels)
    for i, (a, b) in enumerate([(0, 1234), (1234, 1240), (1240, 10000)]):
        np.save(tmp_path / f"s{i}.npy", P[a:b])
    code, out, err = run_cli("scores", "--labels", tmp_path / "y.npy", "--pred-probs",
                             *(tmp_path / f"s{i}.npy" for i in range(3)), "--method", "normalized_margin",
                             "--out", tmp_path / "s.csv", "--quiet")
    assert code == 0, err
    got = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    want = labelsift.get_label_quality_scores(data.labels, P, method="normalized_margin")
    np.testing.assert_array_equal(got[:, 0], np.arange(10000))
    np.testing.assert_allclose(got[:, 1], want.astype(np.float64), rtol=1e-8)


def test_mismatched_shards_exit_2(tmp_path, capsys):
    np.save(tmp_path / "y.npy", np.zeros(20, np.int64))
    np.save(tmp_path / "a.npy", np.full((10, 3), 1 / 3))
    np.save(tmp_path / "b.npy", np.full((10, 4), 1 / 4))
    code = main(["find-issues", "--labels", str(tmp_path / "y.npy"), "--pred-probs", str(tmp_path / "a.npy"),
                 str(tmp_path / "b.npy")])
    assert code == 2
    assert "shard 1" in capsys.readouterr().err
