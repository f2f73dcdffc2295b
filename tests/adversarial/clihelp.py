"""Helpers for the CLI and signal cases (imported by a case's code in its own process).

* ``cli_as_user(tmp, *args)`` -- ``python -m labelsift`` subject to file permissions
  (for root: without CAP_DAC_OVERRIDE, so that a read-only folder is read-only);
  raises the harness's ``CLIError``/``CLICrash`` as ``cli()`` does;
* ``popen_cli(tmp, *args)`` -- a running CLI (stdout/stderr piped) for signal cases;
* ``wait_until(proc, cond)`` / ``mapped(proc, path)`` / ``temps(folder)`` -- what
  the signal cases wait for and check;
* ``finish(proc)`` -- ``(returncode, stderr)``, a ``CLICrash`` if it printed a
  traceback or died by a signal it did not handle;
* ``dead_pid()`` -- the pid of a process that has exited (for stale temp files);
* ``big_dump(tmp, n, k)`` -- an N x K float32 dump and labels big enough to take seconds.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from adversarial.harness import CLICrash, CLIError



def _env(extra=None):
    e = {k: v for k, v in os.environ.items() if k != "LABELSIFT_PROGRESS"}
    e.update(extra or {})
    return e


def _drop_dac():
    """In the child, as root: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so the
    exec-ed CLI is subject to file permissions (a 0o555 folder is read-only to it) while it can still
    run the interpreter, wherever that is installed."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            os.write(2, b"cannot drop CAP_DAC_OVERRIDE (needs CAP_SETPCAP)\n")
            os._exit(99)


def cli_as_user(tmp, *args, env=None, timeout=120):
    """The CLI subject to file permissions: as is for a normal user, without DAC override for root."""
    kw = {"preexec_fn": _drop_dac} if os.geteuid() == 0 else {}
    r = subprocess.run([sys.executable, "-m", "labelsift", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, cwd=tmp, env=_env(env), **kw)
    if r.returncode < 0 or "Traceback (most recent call last)" in r.stderr:
        raise CLICrash(f"exit {r.returncode}: {r.stderr[-2000:]}")
    if r.returncode != 0:
        raise CLIError(f"exit {r.returncode}: {r.stderr.strip()}")
    return r


def popen_cli(tmp, *args, stdout=subprocess.DEVNULL, env=None):
    return subprocess.Popen([sys.executable, "-m", "labelsift", *map(str, args)], stdout=stdout,
                            stderr=subprocess.PIPE, text=True, cwd=tmp, env=_env(env))


def temps(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(".labelsift-"))


def mapped(proc, path) -> bool:
    """Whether ``proc`` has ``path`` memory-mapped (it is reading its inputs)."""
    try:
        with open(f"/proc/{proc.pid}/maps") as f:
            return os.path.realpath(path) in f.read()
    except OSError:
        return False


def writing(folder) -> bool:
    """A temporary file with content in ``folder`` (the output is being written)."""
    for n in temps(folder):
        try:
            if os.path.getsize(os.path.join(folder, n)) > 0:
                return True
        except OSError:
            pass
    return False


def wait_until(proc, cond, timeout=30.0, step=0.002) -> None:
    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"the CLI ended (exit {proc.returncode}) before the moment to signal it: "
                                 f"{proc.stderr.read()[-500:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("the moment to signal never came")
        time.sleep(step)


def finish(proc, timeout=60):
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    if "Traceback (most recent call last)" in err or proc.returncode < 0:
        raise CLICrash(f"exit {proc.returncode}: {err[-2000:]}")
    return proc.returncode, err


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and err.startswith("labelsift: ")


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    try:
        os.kill(p.pid, 0)
    except ProcessLookupError:
        return p.pid
    raise AssertionError("pid reused at once")  # pragma: no cover


def big_dump(tmp, n=2_000_000, k=10):
    rng = np.random.default_rng(0)
    p = rng.random((n, k), dtype=np.float32)
    p /= p.sum(axis=1, keepdims=True)
    P = os.path.join(tmp, "p.npy")
    L = os.path.join(tmp, "y.npy")
    np.save(P, p)
    np.save(L, rng.integers(0, k, n))
    return L, P


def devnode(tmp, name):
    """A path to the null or full device that a buggy run can never destroy: as root (who could replace
    /dev/null with a regular file) a private device node in ``tmp``; otherwise /dev/<name>, which a
    normal user cannot replace."""
    import stat

    if os.geteuid() != 0:
        return f"/dev/{name}"
    path = os.path.join(tmp, f"dev-{name}")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, {"null": 3, "full": 7}[name]))
    return path
