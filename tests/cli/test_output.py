"""labelsift._common.output: all-or-none outputs, temp-file names and cleanup, inputs never
overwritten, signals deferred while renaming; and the CLI's signal handling in-process."""
import os
import signal
import stat

import numpy as np
import pytest

from labelsift import cli
from labelsift._common import output
from labelsift._common.output import OutputError, Outputs, atomic_write, refuse_inputs, temp_name


def _temps(d):
    return sorted(p.name for p in d.iterdir() if p.name.startswith(output.TEMP_PREFIX))


def test_reserve_creates_the_temp_up_front_and_commit_renames_all(tmp_path):
    with Outputs() as outs:
        outs.reserve(tmp_path / "a.txt", "--a")
        outs.reserve(tmp_path / "b.bin", "--b")
        assert len(_temps(tmp_path)) == 2 and not (tmp_path / "a.txt").exists()
        outs.write("--a", "hello")
        outs.write("--b", b"\x00")
        assert not (tmp_path / "a.txt").exists()  # nothing visible before commit
        outs.commit()
    assert (tmp_path / "a.txt").read_text() == "hello" and (tmp_path / "b.bin").read_bytes() == b"\x00"
    assert _temps(tmp_path) == []


def test_an_error_before_commit_writes_nothing(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with Outputs() as outs:
            outs.reserve(tmp_path / "a.txt", "--a")
            outs.reserve(tmp_path / "b.txt", "--b")
            outs.write("--a", "new")
            raise RuntimeError("the second output failed")
    assert (tmp_path / "a.txt").read_text() == "old" and not (tmp_path / "b.txt").exists()
    assert _temps(tmp_path) == []


def test_commit_refuses_an_output_never_written(tmp_path):
    with pytest.raises(ValueError, match="never written: --b"):
        with Outputs() as outs:
            outs.reserve(tmp_path / "a", "--a")
            outs.reserve(tmp_path / "b", "--b")
            outs.write("--a", "x")
            outs.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_missing_folder_names_the_target_not_the_temp(tmp_path):
    with pytest.raises(OutputError, match=r"^--out: cannot write .*nope/x\.csv: the folder .*nope does not exist$"):
        atomic_write(tmp_path / "nope" / "x.csv", "x", what="--out")


def test_temp_names_carry_host_and_pid():
    name = temp_name(1234)
    assert name.startswith(".labelsift-") and name.endswith(".tmp") and "-1234-" in name
    assert output._TEMP_RE.match(name) and temp_name(1234) != name


def test_remove_stale_temps_only_dead_ones_of_this_host(tmp_path):
    import subprocess
    p = subprocess.Popen(["true"])
    p.wait()
    dead, live = temp_name(p.pid), temp_name(os.getpid())
    other_host = f".labelsift-00000000-{p.pid}-abcd.tmp"
    for n in (dead, live, other_host, ".labelsift-notes"):
        (tmp_path / n).write_text("x")
    assert output.remove_stale_temps(str(tmp_path)) == [str(tmp_path / dead)]
    assert _temps(tmp_path) == sorted([live, other_host, ".labelsift-notes"])


def test_refuse_inputs_same_file_links_and_outputs_pairwise(tmp_path):
    a = tmp_path / "a.npy"
    a.write_bytes(b"x")
    os.link(a, tmp_path / "hard")
    with pytest.raises(ValueError, match="is the input --pred-probs"):
        refuse_inputs({"--out": tmp_path / "hard"}, {"--pred-probs": [str(tmp_path / "z"), str(a)]})
    with pytest.raises(ValueError, match="--out and --plot are the same file"):
        refuse_inputs({"--out": tmp_path / "o", "--plot": tmp_path / "." / "o"}, {})
    refuse_inputs({"--out": tmp_path / "new.csv"}, {"--labels": a, "--class-names": None})


def test_a_signal_during_the_renames_waits_until_all_are_done(tmp_path, monkeypatch):
    seen = []

    def handler(signum, frame):
        if output.deferring(signum):
            return
        seen.append(sorted(p.name for p in tmp_path.iterdir()))

    real = os.replace
    calls = []

    def replace(a, b):
        if not calls:
            signal.raise_signal(signal.SIGUSR1)  # arrives between the two renames
        calls.append(b)
        real(a, b)

    old = signal.signal(signal.SIGUSR1, handler)
    monkeypatch.setattr(output.os, "replace", replace)
    try:
        with Outputs() as outs:
            outs.reserve(tmp_path / "a", "--a")
            outs.reserve(tmp_path / "b", "--b")
            outs.write("--a", "1")
            outs.write("--b", "2")
            outs.commit()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert len(calls) == 2 and seen == [["a", "b"]]


def test_special_files_are_written_in_place(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    import threading
    got = []
    t = threading.Thread(target=lambda: got.append(fifo.read_text()))
    t.start()
    atomic_write(fifo, "through the pipe")
    t.join(10)
    assert got == ["through the pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def _dump(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), 200)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", p.argmax(1))
    return ["--labels", str(tmp_path / "y.npy"), "--pred-probs", str(tmp_path / "p.npy")]


@pytest.mark.parametrize("sig, rc", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_cli_signal_one_line_exit_code_no_temp(tmp_path, monkeypatch, capsys, sig, rc):
    if signal.getsignal(sig) is signal.SIG_IGN:
        pytest.skip(f"{sig!r} is ignored in this process (nohup): the CLI rightly keeps it ignored")
    from labelsift._cl import find

    def interrupted(*a, **k):
        assert len(_temps(tmp_path)) == 1  # the output's temp file exists during the computation
        signal.raise_signal(sig)
        raise AssertionError("the handler did not stop the run")  # pragma: no cover

    monkeypatch.setattr(find, "issue_table", interrupted)
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    assert cli.main(["find-issues", *_dump(tmp_path), "--out", str(tmp_path / "o.csv")]) == rc
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and signal.Signals(sig).name in err and "Traceback" not in err
    assert _temps(tmp_path) == [] and not (tmp_path / "o.csv").exists()
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored


def test_cli_refuses_an_output_that_is_an_input(tmp_path, capsys):
    args = _dump(tmp_path)
    before = (tmp_path / "p.npy").read_bytes()
    assert cli.main(["scores", *args, "--out", args[3]]) == 2
    assert "is the input --pred-probs" in capsys.readouterr().err
    assert (tmp_path / "p.npy").read_bytes() == before


def test_cli_output_folder_checked_before_the_inputs(tmp_path, capsys):
    assert cli.main(["scores", "--labels", str(tmp_path / "missing.npy"), "--pred-probs", str(tmp_path / "m.npy"),
                     "--out", str(tmp_path / "nope" / "s.csv")]) == 2
    assert "--out: cannot write" in capsys.readouterr().err
