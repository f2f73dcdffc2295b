"""The adversarial suite's runner: every case in its own process.

A case is a few lines of Python (``code``) run in a fresh process forked
from a server that has imported NumPy and labelsift but never run a kernel
(so no OpenMP pool is inherited); the process is killed after ``timeout``
seconds.  What happened is classified as one of

* ``clear``   -- raised the expected exception type, with a message that
  matches ``match`` (which names the argument, the file, the row ...);
* ``handled`` -- returned, and ``check`` (an expression over the case's
  names) is true;
* ``crash``   -- the process died (a signal, or an exit without a report);
* ``hang``    -- it was still running after ``timeout`` seconds;
* ``silent``  -- returned although an error was expected, or ``check`` is
  false, or a required warning was not issued;
* ``unclear`` -- raised, but not the expected type or not a message that
  says what is wrong.

Cases expect ``clear`` (``error=...``) or ``handled`` (``check=...``); the
test asserts the outcome is the expected one.  Names a case's code can use:
``np``, ``os``, ``labelsift``, ``tmp`` (its own empty folder, also the
working directory), ``good(n, k, seed, dtype)`` -> ``(labels, pred_probs)``
of valid data, ``save(name, array)`` -> path of a new ``.npy``, and
``cli(*args)`` -> run ``python -m labelsift`` (raises ``CLIError`` for a
non-zero exit, with ``exit <rc>: <stderr>`` as its message; ``CLICrash``
when it died by a signal or printed a traceback).
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import tempfile
import traceback
import warnings

OUTCOMES = ("clear", "handled", "crash", "hang", "silent", "unclear")


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    code: str
    error: tuple = ()          # expected exception type names (any of them), for a "clear" case
    match: str = ""            # regex the error message must match
    check: str = ""            # expression that must be true, for a "handled" case
    warns: str = ""            # regex of a warning that must be issued
    timeout: float = 60.0
    slow: bool = False

    @property
    def expected(self) -> str:
        return "clear" if self.error else "handled"


def error(id, code, types, match, **kw) -> Case:
    if isinstance(types, str):
        types = tuple(types.split("|"))
    return Case(id=id, code=code, error=tuple(types), match=match, **kw)


def handled(id, code, check, **kw) -> Case:
    return Case(id=id, code=code, check=check, **kw)


def cli_error(id, args, match, setup="", rc=2, **kw) -> Case:
    """A CLI run that must exit with ``rc`` and one line on stderr matching ``match``."""
    code = f"{setup}\ncli({args})"
    return error(id, code, "CLIError", rf"^exit {rc}: (?!.*\n.)(?=[^\n]*(?:{match}))", **kw)


# --------------------------------------------------------------------------
# The case's process
# --------------------------------------------------------------------------
class CLIError(Exception):
    pass


class CLICrash(Exception):
    pass


def _prelude(tmp):
    import numpy as np

    import labelsift

    def good(n=200, k=5, seed=0, dtype=np.float64):
        rng = np.random.default_rng(seed)
        p = rng.dirichlet(np.full(k, 0.3), n)
        y = np.where(rng.random(n) < 0.8, p.argmax(1), rng.integers(0, k, n)).astype(np.int64)
        return y, p.astype(dtype)

    def save(name, arr):
        path = os.path.join(tmp, name)
        np.save(path, arr)
        return path

    def cli(*args, stdin=None, timeout=120, env=None):
        e = dict(os.environ)
        e.update(env or {})
        r = subprocess.run([sys.executable, "-m", "labelsift", *map(str, args)], input=stdin,
                           capture_output=True, text=True, timeout=timeout, cwd=tmp, env=e)
        if r.returncode < 0 or "Traceback (most recent call last)" in r.stderr:
            raise CLICrash(f"exit {r.returncode}: {r.stderr[-2000:]}")
        if r.returncode != 0:
            raise CLIError(f"exit {r.returncode}: {r.stderr.strip()}")
        return r

    return {"np": np, "os": os, "labelsift": labelsift, "tmp": tmp, "good": good, "save": save,
            "cli": cli, "CLIError": CLIError, "CLICrash": CLICrash, "subprocess": subprocess,
            "signal": signal, "sys": sys}


def _child(case: Case, tmp: str, conn) -> None:
    os.chdir(tmp)
    ns = _prelude(tmp)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            exec(compile(case.code, f"<case {case.id}>", "exec"), ns)
            ok = bool(eval(case.check, ns)) if case.check else True
            report = ("returned", ok, "")
        except BaseException as exc:  # noqa: BLE001 - classified by the parent
            names = [c.__name__ for c in type(exc).__mro__]
            report = ("raised", names, f"{exc}", traceback.format_exc(limit=3))
    texts = [str(w.message) for w in caught]
    conn.send((report, texts))
    conn.close()
    os._exit(0)


_CTX = None


def _context():
    global _CTX
    if _CTX is None:
        _CTX = mp.get_context("forkserver")
        _CTX.set_forkserver_preload(["numpy", "labelsift", "adversarial.harness"])
    return _CTX


def run(case: Case) -> tuple[str, str]:
    """Run ``case`` in its own process: ``(outcome, details)``."""
    ctx = _context()
    with tempfile.TemporaryDirectory(prefix="ls-adv-") as tmp:
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_child, args=(case, tmp, send))
        p.start()
        send.close()
        got = None
        if recv.poll(case.timeout):
            try:
                got = recv.recv()
            except EOFError:
                got = None
        else:
            p.kill()
            p.join()
            return "hang", f"still running after {case.timeout} s"
        p.join(30)
        if got is None:
            code = p.exitcode
            sig = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit {code}"
            return "crash", f"the process died ({sig}) without a report"
    return classify(case, *got)


def classify(case: Case, report, warned) -> tuple[str, str]:
    if report[0] == "raised":
        _, names, msg, tb = report
        if "CLICrash" in names:
            return "crash", msg
        if case.error and any(t in names for t in case.error) and re.search(case.match, msg, re.S):
            return "clear", f"{names[0]}: {msg}"
        return "unclear", f"{names[0]}: {msg}\n{tb}"
    _, ok, _ = report
    if case.error:
        return "silent", "returned; expected " + "/".join(case.error)
    if not ok:
        return "silent", f"check failed: {case.check}"
    if case.warns and not any(re.search(case.warns, w) for w in warned):
        return "silent", f"no warning matching {case.warns!r} (got {warned})"
    return "handled", "; ".join(warned)
