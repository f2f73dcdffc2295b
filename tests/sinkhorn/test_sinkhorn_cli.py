"""``labelsift self-label``: files in, labels and the JSON summary out."""
import json

import numpy as np
import pytest

from labelsift import sinkhorn
from labelsift.cli import main
from support.sinkhorn import logits, softmax


@pytest.fixture
def scores(tmp_path):
    x = logits(600, 6, seed=1, scale=0.5, skew=1.0).astype(np.float32)
    np.save(tmp_path / "s.npy", x)
    return tmp_path, x


def _summary(capsys):
    cap = capsys.readouterr()
    return json.loads(cap.out.strip().splitlines()[-1]), cap.err


def test_self_label_writes_the_api_labels(scores, capsys):
    d, x = scores
    assert main(["self-label", "--scores", str(d / "s.npy"), "--out", str(d / "l.npy"), "--quiet"]) == 0
    s, err = _summary(capsys)
    want = sinkhorn.self_label(x, return_info=True)
    np.testing.assert_array_equal(np.load(d / "l.npy"), want.labels)
    assert s["iterations"] == want.n_iter and s["converged"] is True
    assert s["column_error"] <= 1e-3
    assert s["class_sizes"] == np.bincount(want.labels, minlength=6).tolist() and sum(s["class_sizes"]) == 600
    assert err == ""


def test_prior_json_and_from_labels(scores, tmp_path, capsys):
    d, x = scores
    py = [0.3, 0.3, 0.1, 0.1, 0.1, 0.1]
    (tmp_path / "py.json").write_text(json.dumps({"py": py}))
    assert main(["self-label", "--scores", str(d / "s.npy"), "--prior", str(tmp_path / "py.json"), "--lam", "10",
                 "--kind", "log_probs", "--out", str(d / "l.npy"), "--quiet"]) == 0
    s, _ = _summary(capsys)
    want = sinkhorn.self_label(x, kind="log_probs", lam=10, marginals=py)
    np.testing.assert_array_equal(np.load(d / "l.npy"), want)
    y = np.repeat(np.arange(6), [180, 180, 60, 60, 60, 60])
    np.save(tmp_path / "y.npy", y)
    assert main(["self-label", "--scores", str(d / "s.npy"), "--prior-from-labels", str(tmp_path / "y.npy"),
                 "--lam", "10", "--kind", "log_probs", "--out", str(d / "l2.npy"), "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(d / "l2.npy"), want)


def test_progress_goes_to_stderr(scores, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    d, _ = scores
    assert main(["self-label", "--scores", str(d / "s.npy"), "--out", str(d / "l.npy"), "--progress"]) == 0
    s, err = _summary(capsys)
    assert "sinkhorn" in err and "pass" in err


@pytest.mark.parametrize("extra,msg", [
    (["--prior", "MISSING"], "no such file"),
    (["--kind", "probs"], "negative"),
    (["--lam", "-1"], "lam"),
])
def test_bad_input_exits_2(scores, extra, msg, capsys):
    d, _ = scores
    extra = [str(d / "nope.json") if e == "MISSING" else e for e in extra]
    assert main(["self-label", "--scores", str(d / "s.npy"), "--out", str(d / "l.npy"), "--quiet", *extra]) == 2
    cap = capsys.readouterr()
    assert msg in cap.err and cap.err.count("\n") == 1 and cap.out == ""


def test_bad_prior_exits_2(scores, tmp_path, capsys):
    d, _ = scores
    (tmp_path / "p.json").write_text("[0.5, 0.5]")
    assert main(["self-label", "--scores", str(d / "s.npy"), "--prior", str(tmp_path / "p.json"),
                 "--out", str(d / "l.npy"), "--quiet"]) == 2
    assert "marginals has 2 entries, expected 6" in capsys.readouterr().err


def test_not_converging_is_a_warning(scores, capsys):
    d, _ = scores
    assert main(["self-label", "--scores", str(d / "s.npy"), "--out", str(d / "l.npy"), "--quiet", "--tol", "1e-14",
                 "--max-iter", "2"]) == 0
    s, err = _summary(capsys)
    assert s["converged"] is False and s["iterations"] == 2 and "did not converge" in err


def test_help_states_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        main(["self-label", "--help"])
    text = capsys.readouterr().out
    for opt in ("--kind", "--lam", "--tol", "--mode", "--max-iter"):
        assert opt in text
    assert "(default: 25.0)" in text and "(default: logits)" in text and "stdout" in text and "stderr" in text
