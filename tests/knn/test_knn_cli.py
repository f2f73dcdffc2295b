"""labelsift knn-issues: the CSV equals knn.find_issues; bad input exits 2."""
import csv
import json

import numpy as np
import pytest

from labelsift import cli, knn

pytest.importorskip("scipy")


def test_knn_issues_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    X[5] = X[6]
    y = rng.integers(0, 3, 300)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "issues.csv"
    rc = cli.main(["knn-issues", "--features", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
                   "--out", str(out)])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    ref = knn.find_issues(X, y, as_frame=False)
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 300
    assert [r["is_near_duplicate_issue"] == "True" for r in rows] == list(ref["is_near_duplicate_issue"])
    np.testing.assert_array_equal([float(r["outlier_score"]) for r in rows], ref["outlier_score"])
    assert rows[5]["near_duplicate_sets"].split() == ["6"]
    assert summary["num_issues"]["near_duplicate"] == int(ref["is_near_duplicate_issue"].sum())


def test_knn_issues_bad_input(tmp_path, capsys):
    np.save(tmp_path / "y.npy", np.zeros(3, int))
    rc = cli.main(["knn-issues", "--features", str(tmp_path / "nope.npy"), "--labels", str(tmp_path / "y.npy")])
    assert rc == 2
    assert "labelsift: error" in capsys.readouterr().err


def test_knn_issues_progress_bar(tmp_path, capsys):
    pytest.importorskip("tqdm")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", rng.integers(0, 3, 400))
    out = tmp_path / "issues.csv"
    rc = cli.main(["knn-issues", "--features", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
                   "--out", str(out), "--progress"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "k-NN search (cosine+l2)" in err  # one bar over the tiles of both searches
    rc = cli.main(["knn-issues", "--features", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
                   "--out", str(out), "--no-progress"])
    assert rc == 0 and "k-NN search" not in capsys.readouterr().err
