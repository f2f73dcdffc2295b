"""Writing output files: atomically, all or none, with the permissions a normal file gets.

:class:`Outputs` is the one way labelsift writes files (CSV, JSON, PNG);
:func:`atomic_write` is the one-file shorthand.

* **Checked up front.** :meth:`Outputs.reserve` resolves the target and
  creates its temporary file in the target's folder *before* any
  computation, so a missing folder, a read-only folder, a directory as the
  target or an output that is one of the inputs (:func:`refuse_inputs`)
  fails at once, naming the target (never the temporary file).
* **All or none.** Every requested output is written to its temporary file,
  flushed and ``fsync``-ed first; only when all of them are complete are they
  renamed over their targets (``os.replace``), so a reader never sees a
  half-written file and a failed or interrupted run leaves the old files (or
  none) in place. Limit: the renames are one system call each, not one
  transaction; a rename that fails after another one succeeded (which needs
  the folder to change under us) leaves the first one done. Signals that the
  caller defers (:func:`deferring`) wait until all renames are done.
* **Errors name the target**: ``ENOSPC``, ``EFBIG``, ``EIO`` ... while
  writing become :class:`OutputError` (an ``OSError``) whose message is
  ``"<what>: cannot write <path>: <reason>"``.
* **Modes**: a new file gets ``0o666 & ~umask`` (0644 under umask 022), as
  ``open()`` would give it -- not the 0600 of ``tempfile.mkstemp``; an
  existing file keeps its mode (and, where allowed, its owner and group).
* **Symbolic links** are followed: the file a link points to is replaced
  (atomically, in *its* folder) and the link stays a link. A dangling link
  creates its target, as ``open()`` would.
* **Special files** (an existing character device, FIFO or socket such as
  ``/dev/null`` or ``/dev/stdout``) are written in place, not replaced: there
  is nothing to rename over.
* **Temporary files** are named ``.labelsift-<host>-<pid>-<random>.tmp``. They
  are removed on any error and, by :func:`remove_live_temps`, from a signal
  handler; ``kill -9`` cannot be caught, so the next write into the same
  folder removes the temporary files of this host whose process is gone
  (:func:`remove_stale_temps`). Files of live processes, of other hosts and
  anything not named like that are never touched.
"""
from __future__ import annotations

import contextlib
import errno as _errno
import hashlib
import os
import re
import secrets
import signal
import socket
import stat
import threading
from typing import Callable, Union

Content = Union[str, bytes, Callable]

TEMP_PREFIX = ".labelsift-"
TEMP_SUFFIX = ".tmp"
_TEMP_RE = re.compile(r"\.labelsift-([0-9a-f]{8})-([0-9]+)-[0-9a-f]+\.tmp\Z")

_live: set = set()          # temporary files this process holds open
_lock = threading.RLock()


class OutputError(OSError):
    """An output that cannot be written; ``str()`` is the one-line message naming the target."""

    def __init__(self, err: int, message: str, target: str):
        super().__init__(err, message)
        self.target = target

    def __str__(self) -> str:
        return self.strerror


def _umask() -> int:
    # The only portable way to read the umask is to set it and put it back.
    with _lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode(path: str) -> int:
    """The mode the written file gets: the existing file's, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


# ---------------------------------------------------------------------------
# Temporary files: names, stale ones, cleanup from a signal handler
# ---------------------------------------------------------------------------
def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def temp_name(pid: int | None = None) -> str:
    """A fresh temporary file name: ``.labelsift-<host>-<pid>-<random>.tmp``."""
    return f"{TEMP_PREFIX}{_host_tag()}-{os.getpid() if pid is None else int(pid)}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists (someone else's), or cannot tell: keep its files
    return True


def remove_stale_temps(folder: str) -> list:
    """Remove, in ``folder``, the temporary files of this host whose process is gone; returns their paths."""
    removed = []
    host, me = _host_tag(), os.getpid()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP_RE.match(e.name)
        if not m or m.group(1) != host:
            continue
        pid = int(m.group(2))
        if pid == me or _pid_alive(pid):
            continue
        try:
            if not e.is_file(follow_symlinks=False):
                continue
            os.unlink(e.path)
            removed.append(e.path)
        except OSError:
            pass
    return removed


def remove_live_temps() -> None:
    """Unlink every temporary file this process holds (safe to call from a signal handler, twice)."""
    for path in list(_live):
        try:
            os.unlink(path)
        except OSError:
            pass
        _live.discard(path)


_defer = {"depth": 0, "pending": []}


def deferring(signum: int) -> bool:
    """For a signal handler: True (and the signal remembered) while outputs are being renamed.

    The signal is raised again once the renames are done, so an interrupted
    run ends with all of its outputs or none of them.
    """
    if _defer["depth"] > 0:
        _defer["pending"].append(signum)
        return True
    return False


@contextlib.contextmanager
def _signals_deferred():
    _defer["depth"] += 1
    try:
        yield
    finally:
        _defer["depth"] -= 1
        if _defer["depth"] == 0 and _defer["pending"]:
            pending, _defer["pending"] = _defer["pending"], []
            signal.raise_signal(pending[0])


# ---------------------------------------------------------------------------
# Inputs are never outputs
# ---------------------------------------------------------------------------
def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        try:
            return os.path.realpath(a) == os.path.realpath(b)
        except (OSError, ValueError):
            return False


def refuse_inputs(outputs: dict, inputs: dict) -> None:
    """ValueError if an output is one of the inputs, or two outputs are the same file.

    ``outputs`` and ``inputs`` map a name (``"--out"``, ``"--labels"`` ...) to a
    path (or a list of paths, or None).
    """
    def flat(d):
        for what, p in d.items():
            for q in (p if isinstance(p, (list, tuple)) else [p]):
                if q is not None and os.fspath(q) != "":
                    yield what, os.fspath(q)

    outs, ins = list(flat(outputs)), list(flat(inputs))
    for what, p in outs:
        for iwhat, q in ins:
            if _same_file(p, q):
                raise ValueError(f"{what} {p} is the input {iwhat} {q}: refusing to overwrite an input "
                                 "(choose another output path)")
    for i, (what, p) in enumerate(outs):
        for what2, q in outs[i + 1:]:
            if os.path.realpath(p) == os.path.realpath(q) or _same_file(p, q):
                raise ValueError(f"{what} and {what2} are the same file ({p}): each output needs its own path")


# ---------------------------------------------------------------------------
# The transaction
# ---------------------------------------------------------------------------
class _Pending:
    __slots__ = ("what", "path", "target", "folder", "tmp", "fd", "mode", "special", "owner", "written")


def _fail(err: int, what: str, path: str, target: str, reason: str):
    shown = path if os.path.abspath(path) == target else f"{path} (-> {target})"
    return OutputError(err, f"{what}: cannot write {shown}: {reason}", target)


class Outputs:
    """A set of output files written all-or-none (see the module docstring).

    ::

        with Outputs() as outs:
            outs.reserve(path_a, "--out")       # before computing: checks and creates the temp file
            outs.reserve(path_b, "--plot")
            ...compute...
            outs.write("--out", text)
            outs.write("--plot", png_bytes)
            outs.commit()                       # rename all
        # an exception before commit() removes every temporary file
    """

    def __init__(self):
        self._items: dict = {}
        self._done = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self._done:
            self.abort()
        return False

    def __contains__(self, what) -> bool:
        return what in self._items

    # -- reserve ------------------------------------------------------------
    def reserve(self, path, what: str = "output") -> str:
        """Check ``path`` can be written and create its temporary file; returns the resolved target."""
        if what in self._items:
            raise ValueError(f"{what} is reserved twice")
        try:
            path = os.fspath(path)
        except TypeError:
            raise TypeError(f"{what} must be a path, got {type(path).__name__}") from None
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if path == "":
            raise ValueError(f"{what}: the output path is empty")
        if "\x00" in path:
            raise ValueError(f"{what}: the output path contains a NUL character")
        try:
            target = os.path.realpath(path)
        except OSError as exc:  # pragma: no cover - realpath(strict=False) rarely raises
            raise _fail(exc.errno or _errno.EINVAL, what, path, path, exc.strerror or str(exc)) from None
        for other in self._items.values():
            if other.target == target:
                raise ValueError(f"{what} and {other.what} are the same file ({path}): each output needs its own path")
        item = _Pending()
        item.what, item.path, item.target = what, path, target
        item.folder = os.path.dirname(target) or "."
        item.tmp, item.fd, item.special, item.owner, item.written = None, None, False, None, False
        try:
            st = os.stat(target)
        except FileNotFoundError:
            st = None
        except OSError as exc:  # ELOOP, EACCES, ENOTDIR ...
            raise _fail(exc.errno, what, path, target, exc.strerror) from None
        if not os.path.isdir(item.folder):
            reason = (f"the folder {item.folder} does not exist" if not os.path.lexists(item.folder)
                      else f"{item.folder} is not a folder")
            raise _fail(_errno.ENOENT, what, path, target, reason)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise _fail(_errno.EISDIR, what, path, target, "it is a directory")
        if st is not None and not stat.S_ISREG(st.st_mode):
            # /dev/null, /dev/stdout, a FIFO: written in place (nothing to rename over)
            if not os.access(target, os.W_OK):
                raise _fail(_errno.EACCES, what, path, target, "Permission denied")
            item.special, item.mode = True, None
            self._items[what] = item
            return target
        item.mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
        if st is not None:
            item.owner = (st.st_uid, st.st_gid)
        remove_stale_temps(item.folder)
        for _ in range(16):
            tmp = os.path.join(item.folder, temp_name())
            try:
                with _lock:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
                    _live.add(tmp)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise _fail(exc.errno, what, path, target, exc.strerror) from None
        else:  # pragma: no cover
            raise _fail(_errno.EEXIST, what, path, target, "cannot create a temporary file")
        item.tmp, item.fd = tmp, fd
        self._items[what] = item
        try:
            os.fchmod(fd, item.mode)
            if item.owner is not None and item.owner != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fd, *item.owner)
                except OSError:
                    pass
        except OSError as exc:
            raise _fail(exc.errno, what, path, target, exc.strerror) from None
        return target

    # -- write --------------------------------------------------------------
    def write(self, what: str, content: Content, *, binary: bool = False, encoding: str = "utf-8") -> None:
        """Write the whole content of a reserved output into its temporary file (flushed and fsync-ed).

        ``content`` is a ``str``, ``bytes``, or a callable ``write(f)`` (text mode
        with ``newline=""``, or binary mode with ``binary=True``).
        """
        item = self._items[what]
        if item.written:
            raise ValueError(f"{what} is written twice")
        if isinstance(content, bytes):
            binary = True
        try:
            if item.special:
                f = open(item.target, "wb" if binary else "w", **({} if binary else
                                                                  {"encoding": encoding, "newline": ""}))
            else:
                fd, item.fd = item.fd, None
                f = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding=encoding, newline="")
            with f:
                if callable(content):
                    content(f)
                else:
                    f.write(content)
                f.flush()
                if not item.special:
                    os.fsync(f.fileno())
        except OSError as exc:
            if isinstance(exc, OutputError) or exc.errno is None:
                raise
            raise _fail(exc.errno, what, item.path, item.target, exc.strerror or str(exc)) from None
        item.written = True

    # -- commit / abort -----------------------------------------------------
    def commit(self) -> None:
        """Rename every temporary file over its target (all must have been written)."""
        missing = [w for w, it in self._items.items() if not it.written]
        if missing:
            raise ValueError(f"outputs reserved but never written: {', '.join(missing)}")
        folders = []
        with _signals_deferred():
            for item in self._items.values():
                if item.special:
                    continue
                try:
                    os.replace(item.tmp, item.target)
                except OSError as exc:
                    raise _fail(exc.errno, item.what, item.path, item.target, exc.strerror) from None
                _live.discard(item.tmp)
                item.tmp = None
                if item.folder not in folders:
                    folders.append(item.folder)
            self._done = True
        for folder in folders:
            _fsync_folder(folder)

    def abort(self) -> None:
        """Remove every temporary file (safe to call more than once)."""
        for item in self._items.values():
            if item.fd is not None:
                try:
                    os.close(item.fd)
                except OSError:
                    pass
                item.fd = None
            if item.tmp is not None:
                try:
                    os.unlink(item.tmp)
                except OSError:
                    pass
                _live.discard(item.tmp)
                item.tmp = None
        self._done = True


def atomic_write(path, content: Content, *, binary: bool = False, encoding: str = "utf-8", what: str = "output") -> None:
    """Write ``content`` to ``path`` atomically (see :class:`Outputs`).

    ``content`` is a ``str`` (written as ``encoding``), ``bytes``, or a
    callable ``write(f)`` that writes into the open temporary file (text
    mode with ``newline=""``, or binary mode with ``binary=True``).
    """
    with Outputs() as outs:
        outs.reserve(path, what)
        outs.write(what, content, binary=binary, encoding=encoding)
        outs.commit()


def _fsync_folder(folder: str) -> None:
    """Make the rename durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


__all__ = ["Outputs", "OutputError", "atomic_write", "new_file_mode", "refuse_inputs", "remove_live_temps",
           "remove_stale_temps", "deferring", "temp_name", "TEMP_PREFIX"]
