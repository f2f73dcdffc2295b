"""``labelsift find-issues --multi-label``: .npz / .json labels, the ranked CSV against cleanlab 2.9.0."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

scipy_sparse = pytest.importorskip("scipy.sparse")


def run_cli(*args):
    p = subprocess.run([sys.executable, "-m", "labelsift", *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def _gen(n=600, k=7, seed=3):
    rng = np.random.default_rng(seed)
    y = rng.random((n, k)) < rng.uniform(0.1, 0.4, k)
    noisy = y ^ (rng.random((n, k)) < 0.06)
    p = np.where(noisy, rng.beta(5, 2, (n, k)), rng.beta(2, 5, (n, k))).astype(np.float32)
    return [list(map(int, np.flatnonzero(r))) for r in y], y, p


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ml")
    labels, y, p = _gen()
    np.save(d / "probs.npy", p)
    scipy_sparse.save_npz(d / "labels.npz", scipy_sparse.csr_matrix(y.astype(np.int8)))
    (d / "labels.json").write_text(json.dumps(labels))
    return d, labels, p


def _cleanlab_ranked(labels, p, **kw):
    cl_filter = pytest.importorskip("cleanlab.multilabel_classification.filter")
    return cl_filter.find_label_issues(labels, p, n_jobs=1, **kw)


@pytest.mark.parametrize("fmt", ["npz", "json"])
def test_csv_matches_cleanlab(files, tmp_path, fmt):
    d, labels, p = files
    out_csv = tmp_path / "issues.csv"
    code, out, err = run_cli("find-issues", "--multi-label", "--labels", d / f"labels.{fmt}",
                             "--pred-probs", d / "probs.npy", "--out", out_csv)
    assert code == 0, err
    ranked = _cleanlab_ranked(labels, p, return_indices_ranked_by="self_confidence")
    summary = json.loads(out)
    assert summary["multi_label"] is True and summary["num_issues"] == len(ranked) > 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [int(r["index"]) for r in rows] == ranked.tolist()
    from cleanlab.multilabel_classification.rank import get_label_quality_scores
    scores = get_label_quality_scores(labels, p)
    for r in rows:
        i = int(r["index"])
        assert r["given_labels"] == " ".join(map(str, labels[i]))
        assert float(r["quality_score"]) == pytest.approx(scores[i], rel=1e-7)


def test_shards_give_the_single_file_csv(files, tmp_path):
    # the ranked rows are in score order, not row order: reading their scores across two shards
    # once failed with an IndexError
    d, labels, p = files
    np.save(tmp_path / "a.npy", p[:250])
    np.save(tmp_path / "b.npy", p[250:])
    outs = []
    for probs in ([d / "probs.npy"], [tmp_path / "a.npy", tmp_path / "b.npy"]):
        out_csv = tmp_path / f"issues{len(probs)}.csv"
        code, out, err = run_cli("find-issues", "--multi-label", "--labels", d / "labels.json", "--pred-probs",
                                 *probs, "--out", out_csv)
        assert code == 0, err
        outs.append(out_csv.read_text())
    assert outs[0] == outs[1] and len(outs[0].splitlines()) > 10


def test_filter_by_and_stdout(files):
    d, labels, p = files
    code, out, err = run_cli("find-issues", "--multi-label", "--labels", d / "labels.json", "--pred-probs",
                             d / "probs.npy", "--filter-by", "confident_learning", "--rank-by", "normalized_margin")
    assert code == 0, err
    ranked = _cleanlab_ranked(labels, p, filter_by="confident_learning", return_indices_ranked_by="normalized_margin")
    rows = list(csv.DictReader(out.splitlines()))
    assert [int(r["index"]) for r in rows] == ranked.tolist()
    assert json.loads(err.strip().splitlines()[-1])["filter_by"] == "confident_learning"


def test_class_names_column(files, tmp_path):
    d, labels, p = files
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"c{i}" for i in range(p.shape[1])))
    code, out, err = run_cli("find-issues", "--multi-label", "--labels", d / "labels.npz", "--pred-probs",
                             d / "probs.npy", "--class-names", names)
    assert code == 0, err
    rows = list(csv.DictReader(out.splitlines()))
    assert rows
    for r in rows[:10]:
        assert r["given_label_names"] == "|".join(f"c{c}" for c in labels[int(r["index"])])


@pytest.mark.parametrize("content,ext,msg", [
    ("[[0, 1], 2]", "json", "list of lists"),
    ("[[0, 1.5]]", "json", "JSON integer"),
    ("[[0, 99]]", "json", "outside"),
    ("not json", "json", "not valid JSON"),
    ("0\n1\n", "csv", "--multi-label"),
    ("junk", "npz", "scipy.sparse.save_npz"),
])
def test_bad_labels_exit_2_no_output(files, tmp_path, content, ext, msg):
    d, labels, p = files
    if ext == "json" and content.startswith("[["):  # one bad row, then enough empty rows
        rows = json.loads(content)
        content = json.dumps(rows + [[]] * (len(labels) - len(rows)))
    bad = tmp_path / f"labels.{ext}"
    bad.write_text(content)
    out_csv = tmp_path / "issues.csv"
    code, out, err = run_cli("find-issues", "--multi-label", "--labels", bad, "--pred-probs", d / "probs.npy",
                             "--out", out_csv)
    assert code == 2
    assert err.startswith("labelsift: error:") and msg in err, err
    assert not out_csv.exists()


def test_wrong_shape_npz(files, tmp_path):
    d, labels, p = files
    bad = tmp_path / "labels.npz"
    scipy_sparse.save_npz(bad, scipy_sparse.csr_matrix(np.zeros((len(labels), p.shape[1] + 1), np.int8)))
    code, out, err = run_cli("find-issues", "--multi-label", "--labels", bad, "--pred-probs", d / "probs.npy")
    assert code == 2 and "shape" in err, err
