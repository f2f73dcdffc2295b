"""Writing output files: atomically, with the permissions a normal file gets.

:func:`atomic_write` is the one way labelsift writes a file (CSV, JSON, PNG):

* the content goes to a temporary file in the target's folder, is flushed
  and ``fsync``-ed, then renamed over the target (``os.replace``), so a
  reader never sees a half-written file and an interrupted run leaves the
  old file (or none) in place; the temporary file is removed on failure;
* a new file gets ``0o666 & ~umask`` (0644 under umask 022), as ``open()``
  would give it -- not the 0600 of ``tempfile.mkstemp``; an existing file
  keeps its mode;
* a symbolic link as the target is followed: the file it points to is
  replaced and the link stays.
"""
from __future__ import annotations

import os
import stat
import tempfile
from typing import Callable, Union

Content = Union[str, bytes, Callable]


def _umask() -> int:
    # The only portable way to read the umask is to set it and put it back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(path: str) -> int:
    """The mode the written file gets: the existing file's, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def atomic_write(path, content: Content, *, binary: bool = False, encoding: str = "utf-8") -> None:
    """Write ``content`` to ``path`` atomically.

    ``content`` is a ``str`` (written as ``encoding``), ``bytes``, or a
    callable ``write(f)`` that writes into the open temporary file (text
    mode with ``newline=""``, or binary mode with ``binary=True``).
    """
    target = os.path.realpath(os.fspath(path))
    folder = os.path.dirname(target) or "."
    mode = new_file_mode(target)
    if isinstance(content, bytes):
        binary = True
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding=encoding, newline="")) as f:
            os.fchmod(f.fileno(), mode)
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


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


__all__ = ["atomic_write", "new_file_mode"]
