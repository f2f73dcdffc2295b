"""The command line as people use it: pipes, --help, --version, class names,
label files, permissions, progress bars, the summaries and the heat map."""
import csv
import io
import json
import os
import pickle
import re
import shlex
import stat
import subprocess
import sys

import numpy as np
import pytest

import labelsift
from labelsift import cli
from labelsift._common import arrays
from labelsift._common.names import FILTER_BY, SCORE_METHODS
from labelsift._common.output import atomic_write
from labelsift.cli import main
from labelsift.datasets import cifar10_test

COMMANDS = ("find-issues", "noise-matrix", "scores")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "LABELSIFT_PROGRESS"}
    env.update(extra)
    return env


def run_cli(*args, **env):
    p = subprocess.run([sys.executable, "-m", "labelsift", *map(str, args)], capture_output=True, text=True,
                       env=_env(**env))
    return p.returncode, p.stdout, p.stderr


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("labelsift: error:"), err
    return lines[0]


@pytest.fixture(autouse=True)
def _no_forced_progress(monkeypatch):
    monkeypatch.delenv("LABELSIFT_PROGRESS", raising=False)


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    d = tmp_path_factory.mktemp("usage")
    data = cifar10_test()
    P = data.pred_probs.astype(np.float32)
    np.save(d / "labels.npy", data.labels)
    np.save(d / "probs.npy", P)
    np.save(d / "p0.npy", P[:4321])
    np.save(d / "p1.npy", P[4321:])
    (d / "names.txt").write_text("\n".join(data.class_names) + "\n")
    (d / "names.json").write_text(json.dumps([n.upper() for n in data.class_names]))
    (d / "names9.txt").write_text("\n".join(data.class_names[:9]) + "\n")
    return d, data, P


def _args(d, *more):
    return ["--labels", str(d / "labels.npy"), "--pred-probs", str(d / "probs.npy"), *map(str, more)]


# ---------------------------------------------------------------------------
# --version, --help
# ---------------------------------------------------------------------------
def test_version():
    code, out, err = run_cli("--version")
    assert code == 0, err
    assert out.strip() == f"labelsift {labelsift.__version__}"


def _option_entries(help_text: str) -> dict:
    """{first option string: its whole help entry} from argparse's rendering."""
    entries, current = {}, None
    for line in help_text.splitlines():
        m = re.match(r"  (-{1,2}[\w-]+)", line)
        if m:
            current = m.group(1)
            entries[current] = line
        elif current and line.startswith("      "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


@pytest.mark.parametrize("command", [None, "example", *COMMANDS])
def test_help_shows_every_default(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exc:
        main(([command] if command else []) + ["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    entries = _option_entries(text)
    options = [o for o in entries if o not in ("-h", "--version")]
    if command is None:
        assert "--version" in entries
    else:
        assert options, text
    for opt in options:
        assert "default" in entries[opt] or "required" in entries[opt], (opt, entries[opt])
    if command == "find-issues":
        assert "(default: prune_by_noise_rate)" in entries["--filter-by"]
        assert "(default: self_confidence)" in entries["--rank-by"]
        assert "stdout" in entries["--out"]
        assert "--no-progress" in entries["--progress"] and "terminal" in entries["--progress"]
        # says what is written where
        assert "stdout" in text and "stderr" in text
    if command == "scores":
        assert "(default: self_confidence)" in entries["--method"]
    if command == "noise-matrix":
        assert "matplotlib" in text and "P(given | true)" in text


# ---------------------------------------------------------------------------
# find-issues to stdout, pipes
# ---------------------------------------------------------------------------
def _api_ranking(data, P, filter_by="prune_by_noise_rate", rank_by="self_confidence"):
    return labelsift.find_label_issues(data.labels, P, filter_by=filter_by, return_indices_ranked_by=rank_by)


def test_find_issues_without_out_writes_the_csv_to_stdout(dump):
    d, data, P = dump
    code, out, err = run_cli("find-issues", *_args(d))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    ranked = _api_ranking(data, P)
    assert [int(r["index"]) for r in rows] == ranked.tolist()
    assert [int(r["given_label"]) for r in rows] == data.labels[ranked].tolist()
    assert [int(r["suggested_label"]) for r in rows] == P[ranked].argmax(axis=1).tolist()
    np.testing.assert_allclose([float(r["quality_score"]) for r in rows], P[ranked, data.labels[ranked]],
                               rtol=1e-7)
    summary = json.loads(err)  # the summary moved to stderr
    assert summary["num_issues"] == len(ranked) and summary["out"] is None


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory):
    """Enough issues that the CSV (megabytes) cannot fit in a pipe's buffer."""
    d = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(3)
    n, k = 200_000, 4
    t = rng.integers(0, k, n)
    y = np.where(rng.random(n) < 0.35, rng.integers(0, k, n), t)
    z = rng.normal(0, 1, (n, k))
    z[np.arange(n), t] += 2.5
    P = np.exp(z)
    P /= P.sum(axis=1, keepdims=True)
    np.save(d / "labels.npy", y)
    np.save(d / "probs.npy", P.astype(np.float32))
    return d


def test_pipe_to_head_ends_quietly(big_dump):
    d = big_dump
    lab = shlex.quote(str(d / "labels.npy"))
    pp = shlex.quote(str(d / "probs.npy"))
    cmd = (f"set -o pipefail; {shlex.quote(sys.executable)} -m labelsift find-issues --labels {lab} "
           f"--pred-probs {pp} | head -n 3")
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=_env())
    assert p.returncode == 0, p.stderr  # pipefail: labelsift's own status
    assert p.stderr == ""  # no "Broken pipe", no traceback, no summary for a reader that left
    lines = p.stdout.splitlines()
    assert lines[0] == "index,given_label,suggested_label,quality_score" and len(lines) == 3
    # the pipe really was cut short: the full CSV is far bigger than what head read
    ranked = labelsift.find_label_issues(np.load(d / "labels.npy"), np.load(d / "probs.npy"),
                                         return_indices_ranked_by="self_confidence")
    assert len(ranked) > 20_000
    assert [int(line.split(",")[0]) for line in lines[1:]] == ranked[:2].tolist()


def test_closed_stdout_in_process_is_not_an_error(dump, monkeypatch, capsys):
    d, _, _ = dump

    class Closed(io.StringIO):
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["find-issues", *_args(d)]) == 0
    assert capsys.readouterr().err == ""


def test_with_out_the_summary_stays_on_stdout(dump, tmp_path):
    d, data, P = dump
    code, out, err = run_cli("find-issues", *_args(d, "--out", tmp_path / "i.csv"))
    assert code == 0, err
    assert json.loads(out)["num_issues"] == len(_api_ranking(data, P))
    assert err == ""


# ---------------------------------------------------------------------------
# permissions of written files
# ---------------------------------------------------------------------------
@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("command,out_name", [("find-issues", "i.csv"), ("noise-matrix", "n.json"),
                                              ("scores", "s.csv")])
def test_new_file_gets_0644_and_existing_keeps_its_mode(dump, tmp_path, umask022, command, out_name, capsys):
    d, _, _ = dump
    target = tmp_path / out_name
    assert main([command, *_args(d, "--out", target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    first = target.read_bytes()
    target.write_text("old")
    os.chmod(target, 0o640)
    assert main([command, *_args(d, "--out", target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [out_name]  # no temporary file left


def test_atomic_write_bytes_umask_and_symlink(tmp_path, umask022):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a.bin", b"\x00\x01")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    real = tmp_path / "real.txt"
    real.write_text("x")
    os.chmod(real, 0o600)
    (tmp_path / "link.txt").symlink_to(real)
    atomic_write(tmp_path / "link.txt", "new text")
    assert (tmp_path / "link.txt").is_symlink() and real.read_text() == "new text"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")

    def boom(f):
        f.write("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"]


# ---------------------------------------------------------------------------
# --class-names
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("names_file", ["names.txt", "names.json"])
def test_class_names_in_the_csv_and_json(dump, tmp_path, names_file, capsys):
    d, data, P = dump
    names = (json.loads((d / names_file).read_text()) if names_file.endswith(".json")
             else (d / names_file).read_text().split())
    out_csv = tmp_path / "i.csv"
    assert main(["find-issues", *_args(d, "--class-names", d / names_file, "--out", out_csv)]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == len(_api_ranking(data, P))
    for r in rows:
        assert r["given_label_name"] == names[int(r["given_label"])]
        assert r["suggested_label_name"] == names[int(r["suggested_label"])]
    top = summary["top_issues_labels"][0]
    assert top["given_label_name"] == names[data.labels[summary["top_issues"][0]]]

    out_json = tmp_path / "n.json"
    assert main(["noise-matrix", *_args(d, "--class-names", d / names_file, "--out", out_json)]) == 0
    summary = json.loads(capsys.readouterr().out)
    full = json.loads(out_json.read_text())
    assert full["class_names"] == names
    for e in summary["largest_noise_rates"]:
        assert e["given_name"] == names[e["given"]] and e["true_name"] == names[e["true"]]

    out_scores = tmp_path / "s.csv"
    assert main(["scores", *_args(d, "--class-names", d / names_file, "--out", out_scores)]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(out_scores.open()))
    assert [r["given_label_name"] for r in rows] == [names[y] for y in data.labels]
    assert summary["lowest_given_label_names"] == [names[data.labels[i]] for i in summary["lowest"]]


def test_no_class_names_no_name_columns(dump, tmp_path, capsys):
    d, _, _ = dump
    assert main(["find-issues", *_args(d, "--out", tmp_path / "i.csv")]) == 0
    assert (tmp_path / "i.csv").read_text().splitlines()[0] == "index,given_label,suggested_label,quality_score"
    assert main(["noise-matrix", *_args(d, "--out", tmp_path / "n.json")]) == 0
    assert "class_names" not in json.loads((tmp_path / "n.json").read_text())


def test_class_names_with_commas_and_quotes_stay_one_csv_field(dump, tmp_path, capsys):
    d, data, _ = dump
    names = [f'{n}, "the {i}"' for i, n in enumerate(data.class_names)]
    (tmp_path / "odd.json").write_text(json.dumps(names))
    assert main(["find-issues", *_args(d, "--class-names", tmp_path / "odd.json")]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert all(r["given_label_name"] == names[int(r["given_label"])] for r in rows)


@pytest.mark.parametrize("command", ["example", *COMMANDS])
def test_class_names_of_the_wrong_length_exit_2(dump, command, capsys):
    d, _, _ = dump
    argv = [command, "--class-names", str(d / "names9.txt")] + ([] if command == "example" else _args(d))
    assert main(argv) == 2
    cap = capsys.readouterr()
    line = one_error_line(cap.err)
    assert "9 names" in line and "10 classes" in line
    assert cap.out == ""


@pytest.mark.parametrize("content", ['["a", 3]', '{"a": 1}', "[not json"])
def test_bad_class_names_json_exit_2(dump, tmp_path, content, capsys):
    d, _, _ = dump
    (tmp_path / "n.json").write_text(content)
    assert main(["scores", *_args(d, "--class-names", tmp_path / "n.json")]) == 2
    assert "class names" in one_error_line(capsys.readouterr().err)


# ---------------------------------------------------------------------------
# label files
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_labels_from_text_files(dump, tmp_path, suffix, capsys):
    d, data, _ = dump
    lines = [str(v) for v in data.labels.tolist()]
    lines[5] = "  " + lines[5] + "  "
    text = "\r\n".join(lines[:100]) + "\n\n\n" + "\n".join(lines[100:]) + "\n\n"
    path = tmp_path / f"labels{suffix}"
    path.write_text(text)
    assert main(["find-issues", "--labels", str(path), "--pred-probs", str(d / "probs.npy")]) == 0
    from_text = capsys.readouterr().out
    assert main(["find-issues", *_args(d)]) == 0
    assert from_text == capsys.readouterr().out


def test_label_text_with_a_bad_line_names_file_and_line(dump, tmp_path, capsys):
    d, data, _ = dump
    lines = [str(v) for v in data.labels.tolist()]
    lines.insert(7, "")
    lines[41] = "cat"
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(lines) + "\n")
    assert main(["scores", "--labels", str(path), "--pred-probs", str(d / "probs.npy")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line and "line 42" in line and "'cat'" in line


@pytest.mark.parametrize("kind", ["pkl", "json", "pickled_npy", "npz"])
def test_other_label_formats_are_refused_with_the_accepted_ones(dump, tmp_path, kind, capsys):
    d, data, _ = dump
    if kind == "pkl":
        path = tmp_path / "labels.pkl"
        path.write_bytes(pickle.dumps(data.labels.tolist()))
    elif kind == "json":
        path = tmp_path / "labels.json"
        path.write_text(json.dumps(data.labels.tolist()))
    elif kind == "npz":
        path = tmp_path / "labels.npz"
        np.savez(path, labels=data.labels)
    else:
        path = tmp_path / "labels.npy"
        np.save(path, np.array([int(v) for v in data.labels], dtype=object), allow_pickle=True)
    assert main(["find-issues", "--labels", str(path), "--pred-probs", str(d / "probs.npy")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line
    assert ".npy integer array" in line and ".csv/.txt" in line and "one integer per line" in line
    assert "pickle" not in line.replace("a pickled array", "")  # never NumPy's allow_pickle text


@pytest.mark.parametrize("kind", ["pickled_npy", "csv"])
def test_other_pred_probs_formats_are_refused(dump, tmp_path, kind, capsys):
    d, data, _ = dump
    if kind == "csv":
        path = tmp_path / "p.csv"
        np.savetxt(path, data.pred_probs[:5], delimiter=",")
    else:
        path = tmp_path / "p.npy"
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert main(["noise-matrix", "--labels", str(d / "labels.npy"), "--pred-probs", str(path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line and ".npy" in line and "allow_pickle" not in line


# ---------------------------------------------------------------------------
# progress bars: the passes announced are the passes made
# ---------------------------------------------------------------------------
CASES = ([("find-issues", "--filter-by", f) for f in FILTER_BY]
         + [("find-issues", "--rank-by", r) for r in SCORE_METHODS]
         + [("noise-matrix",)]
         + [("scores", "--method", m) for m in SCORE_METHODS])


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_passes_announced_equal_passes_made(dump, tmp_path, monkeypatch, case, capsys):
    d, _, _ = dump
    bars = []

    class Recording(cli.Progress):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            bars.append(self)

    monkeypatch.setattr(cli, "Progress", Recording)
    monkeypatch.setattr(arrays, "BLOCK_BYTES", 40_000)  # 1000 rows a block: several blocks a pass
    monkeypatch.setenv("LABELSIFT_PROGRESS", "1")
    command, *opts = case
    argv = [command, "--labels", str(d / "labels.npy"), "--pred-probs", str(d / "p0.npy"), str(d / "p1.npy"),
            *opts, "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    (bar,) = bars
    announced = cli.passes_for(cli._parser().parse_args(argv))
    assert bar.passes == announced >= 1
    assert bar.completed == announced, f"{case}: {bar.completed} passes made, {announced} announced"
    assert bar.n == 10_000
    for i in range(1, announced + 1):
        assert f"pass {i}/{announced}" in err
    assert "%" in err and "rows" in err


@pytest.mark.parametrize("how", [["--no-progress"], ["--quiet"], []])
def test_no_progress_switches(dump, monkeypatch, how, capsys, tmp_path):
    d, _, _ = dump
    made = []
    monkeypatch.setattr(cli, "Progress", lambda *a, **k: made.append(1))
    if how:
        monkeypatch.setenv("LABELSIFT_PROGRESS", "1")  # the switch wins over the environment
    assert main(["noise-matrix", *_args(d), *how]) == 0  # [] : stderr is not a terminal here
    assert made == [] and "pass 1" not in capsys.readouterr().err


def test_progress_switch_forces_bars(dump, capsys):
    d, _, _ = dump
    assert main(["scores", *_args(d), "--progress"]) == 0
    assert "pass 1/1" in capsys.readouterr().err  # scores read each block once


# ---------------------------------------------------------------------------
# noise-matrix: short summary, stated axes, the estimate of issues
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wide_dump(tmp_path_factory):
    d = tmp_path_factory.mktemp("wide")
    rng = np.random.default_rng(5)
    n, k = 6000, 300
    t = rng.integers(0, k, n)
    y = np.where(rng.random(n) < 0.2, (t + 1) % k, t)
    z = rng.normal(0, 1, (n, k))
    z[np.arange(n), t] += 5
    P = np.exp(z)
    P /= P.sum(axis=1, keepdims=True)
    np.save(d / "labels.npy", y)
    np.save(d / "probs.npy", P)
    return d, y, P


def test_noise_matrix_summary_is_short_and_right(wide_dump, tmp_path, capsys):
    d, y, P = wide_dump
    k = P.shape[1]
    out_json = tmp_path / "n.json"
    assert main(["noise-matrix", *_args(d, "--out", out_json)]) == 0
    text = capsys.readouterr().out
    assert len(text) < 40 * k + 4000  # O(K), not K^2 numbers
    s = json.loads(text)
    py, noise, inv, cj = labelsift.estimate_py_and_noise_matrices_from_probabilities(y, P)
    assert s["num_examples"] == len(y) and s["num_classes"] == k
    assert s["estimated_num_label_issues"] == labelsift.num_label_issues(
        y, P, estimation_method="off_diagonal_calibrated")
    np.testing.assert_allclose(s["py"], py, rtol=1e-5)
    off = noise.copy()
    np.fill_diagonal(off, -1)
    want = np.sort(off.ravel())[::-1][:len(s["largest_noise_rates"])]
    assert len(s["largest_noise_rates"]) == 10
    got = [e["rate"] for e in s["largest_noise_rates"]]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for e in s["largest_noise_rates"]:
        assert e["given"] != e["true"]
        assert e["rate"] == pytest.approx(noise[e["given"], e["true"]], rel=1e-5)
    full = json.loads(out_json.read_text())
    assert full["axes"]["noise_matrix"].startswith("[given][true]")
    assert full["axes"]["inverse_noise_matrix"].startswith("[true][given]")
    assert full["axes"]["confident_joint"].startswith("[given][true]")
    np.testing.assert_array_equal(full["noise_matrix"], noise)
    np.testing.assert_array_equal(full["inverse_noise_matrix"], inv)
    np.testing.assert_array_equal(full["confident_joint"], cj)
    assert full["estimated_num_label_issues"] == s["estimated_num_label_issues"]


# ---------------------------------------------------------------------------
# the heat map
# ---------------------------------------------------------------------------
def _noise(P, y):
    return labelsift.estimate_py_and_noise_matrices_from_probabilities(y, P)[1]


def _float(text):
    return 0.0 if text == "0" else float(text)


def test_heat_map_figure_small_k(dump):
    pytest.importorskip("matplotlib")
    from labelsift._plot import noise_matrix_figure

    _, data, P = dump
    m = _noise(P, data.labels)
    fig = noise_matrix_figure(m, num_examples=10_000, num_issues=284, class_names=data.class_names)
    ax = fig.axes[0]
    assert "given" in ax.get_ylabel() and "true" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == list(data.class_names)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(data.class_names)
    (im,) = ax.images
    assert np.array_equal(np.asarray(im.get_array()), m)  # rows = given, columns = true, as computed
    assert im.colorbar is not None and "log" in im.colorbar.ax.get_ylabel()
    assert "P(given label | true label)" in im.colorbar.ax.get_ylabel()
    texts = ax.texts
    assert len(texts) == 100
    for t in texts:
        j, i = (int(round(v)) for v in t.get_position())
        v = _float(t.get_text())
        assert v == pytest.approx(m[i, j], rel=0.5 if m[i, j] < 1e-3 else 0.06, abs=0.0051 if v >= 0.1 else 5e-4)
    title = ax.get_title()
    assert "N = 10,000" in title and "K = 10" in title and "284" in title
    # the figure renders to a PNG of report size
    from labelsift._plot import png_bytes

    png = png_bytes(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("k", [30, 60])
def test_heat_map_figure_larger_k(k):
    pytest.importorskip("matplotlib")
    from labelsift._plot import noise_matrix_figure

    rng = np.random.default_rng(k)
    m = rng.dirichlet(np.ones(k) * 0.05, size=k).T  # columns sum to 1
    names = [f"class number {i}" for i in range(k)]
    fig = noise_matrix_figure(m, num_examples=123_456, num_issues=789, class_names=names)
    fig.canvas.draw()  # tick labels of a locator are formatted when drawn
    ax = fig.axes[0]
    lo, hi = sorted(ax.get_xlim())
    ticks = [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]
    if k <= 50:
        assert ticks == names
    else:  # class indices, a readable number of them
        assert 4 <= len(ticks) <= 12 and all(re.fullmatch(r"\d+", s) and int(s) < k for s in ticks), ticks
    assert len(ax.texts) == 0  # no cell values above K = 20
    assert "N = 123,456" in ax.get_title() and f"K = {k}" in ax.get_title()
    assert ax.images[0].colorbar.ax.get_ylabel()
    side = fig.axes[1]  # the largest off-diagonal rates
    assert len(side.patches) == 25
    off = m.copy()
    np.fill_diagonal(off, -1)
    np.testing.assert_allclose([p.get_width() for p in side.patches], np.sort(off.ravel())[::-1][:25])


def test_cli_plot_title_uses_the_calibrated_estimate(dump, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from labelsift import _plot

    d, data, P = dump
    figs = []
    real = _plot.noise_matrix_figure
    monkeypatch.setattr(_plot, "noise_matrix_figure", lambda *a, **k: figs.append(real(*a, **k)) or figs[-1])
    png = tmp_path / "m.png"
    assert main(["noise-matrix", *_args(d, "--plot", png, "--class-names", d / "names.txt")]) == 0
    want = labelsift.num_label_issues(data.labels, P, estimation_method="off_diagonal_calibrated")
    assert json.loads(capsys.readouterr().out)["estimated_num_label_issues"] == want
    (fig,) = figs
    assert f"estimated label issues: {want:,}" in fig.axes[0].get_title()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(data.class_names)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_matplotlib_is_one_line_before_any_work(dump, tmp_path, monkeypatch, capsys):
    d, _, _ = dump
    monkeypatch.setitem(sys.modules, "matplotlib", None)

    def boom(*a, **k):
        raise AssertionError("computed before checking for matplotlib")

    monkeypatch.setattr(labelsift, "estimate_py_and_noise_matrices_from_probabilities", boom)
    png = tmp_path / "m.png"
    # labels that do not exist: the matplotlib check comes first, before any input is read
    argv = ["noise-matrix", "--labels", str(tmp_path / "missing.npy"), "--pred-probs", str(d / "probs.npy"),
            "--plot", str(png)]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "matplotlib" in line and "labelsift[cli]" in line
    assert not png.exists()


def test_matplotlib_is_not_imported_by_the_cli():
    code = ("import sys, labelsift.cli, labelsift._plot; "
            "sys.exit(1 if 'matplotlib' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---------------------------------------------------------------------------
# example
# ---------------------------------------------------------------------------
def test_example_output_reads_right():
    code, out, err = run_cli("example")
    assert code == 0, err
    data = cifar10_test()
    ranked = labelsift.find_label_issues(data.labels, data.pred_probs, return_indices_ranked_by="self_confidence")
    confirmed = set(data.confirmed_errors.tolist())
    hit = len(confirmed & set(ranked.tolist()))
    assert f"{hit} of the {len(confirmed)} human-confirmed label errors were flagged" in out
    rows = [line for line in out.splitlines() if re.match(r"\s+\d+\s.*->", line)]
    assert len(rows) == 10
    for line, i in zip(rows, ranked[:10]):
        fields = line.split()
        assert int(fields[0]) == i
        score = float(fields[4])
        assert score == pytest.approx(data.pred_probs[i, data.labels[i]], rel=5e-3)
    assert len({line.split()[4] for line in rows}) > 1  # not all printed alike (no 0.0000s)
    header = out.split("rows = given, columns = true:\n")[1].splitlines()[0].split()
    assert header == list(data.class_names)  # full names, none cut to 7 characters


def test_ties_option_reaches_the_engine(tmp_path):
    """--ties lower_index gives the API's lower_index ranking; the default gives cleanlab's."""
    import labelsift

    rng = np.random.default_rng(5)
    p = np.round(rng.dirichlet(np.ones(6) * 0.5, 3000), 1)
    p[:, 0] += 1 - p.sum(1)
    p = np.clip(p, 0, 1)
    p /= p.sum(1, keepdims=True)
    y = rng.integers(0, 6, 3000)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "p.npy", p)
    got = {}
    for ties in ("cleanlab", "lower_index"):
        out = tmp_path / f"{ties}.csv"
        assert main(["find-issues", "--labels", str(tmp_path / "y.npy"), "--pred-probs", str(tmp_path / "p.npy"),
                     "--ties", ties, "--out", str(out), "--no-progress"]) == 0
        got[ties] = np.loadtxt(out, delimiter=",", skiprows=1, usecols=0, dtype=np.int64, ndmin=1)
        want = labelsift.find_label_issues(y, p, return_indices_ranked_by="self_confidence", ties=ties)
        np.testing.assert_array_equal(got[ties], want)
    assert not np.array_equal(got["cleanlab"], got["lower_index"])
