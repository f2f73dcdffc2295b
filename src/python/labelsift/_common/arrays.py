"""The one place where user inputs become what the kernels read.

Every array a user hands to labelsift passes through this module, and
nothing else converts or validates the shape and dtype of an input:

* ``as_probs``: a NumPy array, a memmap, a ``.npy`` path or a list of
  ``.npy`` shard paths becomes a :class:`Probs`, a list of row segments
  read in blocks, with the device it lives on;
* ``as_labels`` (given labels), ``as_ids`` (example ids), ``as_square``
  (user-supplied K x K matrices), ``label_counts`` (labels to per-class
  counts);
* ``host_array``: the one check for arrays that live on a GPU
  (``__cuda_array_interface__``) where a function has no GPU path: they get
  a ``TypeError`` saying how to move them to the host. (The functions with
  a GPU path read CUDA arrays through ``cuda_arrays``.)

``Probs`` Native float16/float32/float64 arrays (C-ordered, Fortran,
strided, read-only, memmapped) are handed to the kernels as they are, with
their strides: never copied. Anything else that holds floats (big-endian,
longdouble) is converted block by block, so at most one block is ever held
twice. ``as_labels`` validates labels and returns them as int64 (O(N)).

Validation policy (documented in the README):

* probabilities must be finite and lie in [-1e-6, 1 + 1e-4]. cleanlab's
  bound is 1 + 1e-6; real dumps contain values like 1.00001 from float32
  softmax rounding, so labelsift accepts up to 1e-4 above 1 and uses such
  values unchanged (no clipping: results equal what cleanlab's arithmetic
  gives on the same numbers);
* every row must sum to 1 within 1e-3 (1e-2 for float16);
* NaN, inf, out-of-range values and rows that do not sum to 1 raise a
  ValueError naming the row and column.
"""
from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import numpy as np

PROB_LOW = -1e-6
PROB_HIGH = 1.0 + 1e-4
_SUM_TOL = {np.dtype(np.float16): 1e-2, np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-3}
KERNEL_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))

# Block size for the passes: big enough to amortise the call, small enough
# that a converted block stays cheap.
BLOCK_BYTES = 64 << 20


def row_sum_tolerance(dtype) -> float:
    return _SUM_TOL[np.dtype(dtype)]


def is_pathlike(x) -> bool:
    return isinstance(x, (str, bytes, os.PathLike))


def load_npy(path, what: str):
    """Memory-map a .npy file (never unpickles), after checking its header.

    Every way a file can be unreadable -- missing, a directory, empty, not a
    .npy (or an .npz archive), a header that does not parse, a negative or
    overflowing shape, an object dtype, fewer data bytes than the header
    declares -- is an error naming the file (FileNotFoundError and
    PermissionError stay OSErrors; the rest are ValueErrors)."""
    path = os.fsdecode(os.fspath(path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what}: no such file: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{what}: {path} is a directory, not a .npy file")
    try:
        with open(path, "rb") as fh:
            shape, fortran, dtype, offset = _npy_header(fh, path, what)
            size = os.fstat(fh.fileno()).st_size
    except PermissionError as exc:
        raise PermissionError(exc.errno, f"{what}: cannot read {path}: {exc.strerror}", path) from None
    except OSError as exc:
        raise ValueError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    count = 1
    for d in shape:
        count *= d
    nbytes = count * dtype.itemsize
    if size < offset + nbytes:
        raise ValueError(f"{what}: {path} is truncated: its header declares shape {shape} {dtype} "
                         f"({offset + nbytes} bytes) but the file has {size} bytes")
    if count == 0:
        return np.empty(shape, dtype, order="F" if fortran else "C")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, OverflowError, EOFError) as exc:  # pragma: no cover - checked above
        raise ValueError(f"{what}: cannot read {path} as a numeric .npy array ({exc})") from None


def _npy_header(fh, path: str, what: str):
    """(shape, fortran_order, dtype, data offset) of an open .npy file, checked."""
    magic = fh.read(6)
    if magic[:4] == b"PK\x03\x04":
        raise ValueError(f"{what}: {path} is an .npz archive; pass one of its arrays (np.load(path)[name])")
    if magic != b"\x93NUMPY":
        why = "it is empty" if not magic else "no NumPy header"
        raise ValueError(f"{what}: {path} is not a .npy file ({why})")
    try:
        fh.seek(0)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            shape, fortran, dtype = np.lib.format._read_array_header(fh, version)  # noqa: SLF001
    except Exception as exc:  # noqa: BLE001 - any parse failure: the header is bad
        raise ValueError(f"{what}: {path} has a malformed .npy header ({type(exc).__name__}: {exc})") from None
    if not isinstance(shape, tuple) or any(not isinstance(d, int) or d < 0 for d in shape):
        raise ValueError(f"{what}: {path} declares an invalid shape {shape!r}")
    if dtype.hasobject:
        raise ValueError(f"{what}: {path} holds Python objects (a pickled array), not numbers")
    return shape, fortran, dtype, fh.tell()


def kernel_dtype(dt: np.dtype) -> np.dtype:
    """The dtype a segment is read in (its own when the kernels take it)."""
    if dt.kind != "f":
        raise TypeError(f"pred_probs must hold floating-point probabilities, got dtype {dt}")
    native = dt.newbyteorder("=")
    if native in KERNEL_DTYPES:
        return native
    return np.dtype(np.float64)  # longdouble etc.: read as float64, block by block


def _readable_in_place(a: np.ndarray) -> bool:
    return (
        a.dtype in KERNEL_DTYPES
        and a.dtype.isnative
        and a.strides[0] % a.itemsize == 0
        and a.strides[1] % a.itemsize == 0
    )


#: Where a host :class:`Probs` lives (CUDA arrays become
#: ``_cl.device.DeviceProbs``, whose ``device`` is ``"cuda:N"``).
HOST = "cpu"


@dataclass
class Probs:
    """Predicted probabilities as a list of row segments (N x K in all)."""

    segments: list
    n: int
    k: int
    dtype: np.dtype
    names: list = field(default_factory=list)
    device: str = HOST
    #: called with the number of rows after each block is processed (progress bars)
    on_block: Optional[Callable[[int], None]] = None
    #: per segment: the mapped file it reads (see _mapped_file), or None
    files: list = field(default_factory=list)

    def _check_segment(self, i: int) -> None:
        if i < len(self.files) and self.files[i] is not None:
            what = "pred_probs" if len(self.segments) == 1 else f"pred_probs shard {i}"
            check_mapped(self.files[i], what)

    def block_rows(self, block_bytes: int | None = None) -> int:
        """Rows per block: about ``block_bytes`` (default BLOCK_BYTES) of input, whatever K is."""
        block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
        return max(1, block_bytes // max(1, self.k * self.dtype.itemsize))

    def blocks(self, block_bytes: int | None = None, drop_behind: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first_row, block) over all rows in order.

        * In-memory arrays the kernels can read are yielded whole (one
          parallel sweep with their own strides, no copy).
        * Memory-mapped ones (memmaps, ``.npy`` paths, shards) are yielded as
          row views of about ``block_bytes``; while the kernels work on one
          block, the kernel is asked to read the next one ahead
          (``madvise(MADV_WILLNEED)``), so reading overlaps compute. Their
          pages belong to the page cache, not to the process's anonymous
          memory, so a dump larger than RAM works.
        * Segments that need a dtype conversion are converted block by block.
        * ``drop_behind`` (one sweep over a file larger than the page cache):
          the rows of a plain .npy file are read with O_DIRECT into a ring of
          buffers (:class:`DirectBlocks`: no page cache, no page faults; a
          block is valid until the next one is asked for); where that cannot
          be done, once the caller asks for the next block the previous one's
          pages of a read-only mapping are unmapped and dropped from the page
          cache (:class:`DropBehind`), so reading ahead never waits for the
          kernel to reclaim pages of a file that will not be read again.
        """
        for row0, block in self._blocks(block_bytes, drop_behind):
            yield row0, block
            if self.on_block is not None:
                self.on_block(len(block))

    def _blocks(self, block_bytes, drop_behind=False):
        step = self.block_rows(block_bytes)
        row0 = 0
        for i, seg in enumerate(self.segments):
            if _readable_in_place(seg) and _mmap_of(seg) is None:
                if len(seg):
                    yield row0, seg
            elif _readable_in_place(seg) and drop_behind and (direct := DirectBlocks.of(seg, step)) is not None:
                with direct:
                    for a, block in direct:
                        self._check_segment(i)
                        yield row0 + a, block
            elif _readable_in_place(seg):
                drop = DropBehind.of(seg) if drop_behind else None
                io = IOWorker()
                try:
                    for a in range(0, len(seg), step):
                        self._check_segment(i)
                        # the blocks up to PREFETCH_AHEAD ahead are asked for, the one done dropped, off this thread
                        ahead = range(0, (PREFETCH_AHEAD + 1) * step, step) if a == 0 else (a + PREFETCH_AHEAD * step,)
                        for b in ahead:
                            if b < len(seg):
                                io.submit(_prefetch, seg[b : b + step])
                        yield row0 + a, seg[a : a + step]
                        if drop is not None:
                            io.submit(drop, seg[a : a + step])
                finally:
                    io.close()
                    if drop is not None:
                        drop.close()
            else:
                for a in range(0, len(seg), step):
                    self._check_segment(i)
                    yield row0 + a, np.asarray(seg[a : a + step], dtype=self.dtype)
            row0 += len(seg)

    def rows(self, idx: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """For sorted global row indices, yield (positions in idx, block, local rows)."""
        idx = np.asarray(idx, dtype=np.int64)
        row0 = 0
        for i, seg in enumerate(self.segments):
            lo, hi = np.searchsorted(idx, [row0, row0 + len(seg)])
            if hi > lo:
                self._check_segment(i)
                local = idx[lo:hi] - row0
                if _readable_in_place(seg):
                    yield np.arange(lo, hi), seg, local
                else:  # gather just these rows, converted
                    block = np.asarray(seg[local], dtype=self.dtype)
                    yield np.arange(lo, hi), block, np.arange(len(local), dtype=np.int64)
            row0 += len(seg)


class OverProbs:
    """``n``, ``k`` and ``dtype`` of the :class:`Probs` a problem reads
    (``self.probs``), for the per-method Problem dataclasses."""

    @property
    def n(self) -> int:
        return self.probs.n

    @property
    def k(self) -> int:
        return self.probs.k

    @property
    def dtype(self) -> np.dtype:
        return self.probs.dtype


def _mapped_file(a):
    """(path, bytes the mapping needs, (st_dev, st_ino)) for an array backed by
    a file-mapped np.memmap (also a view of one), else None."""
    base = a
    for _ in range(64):
        if isinstance(base, np.memmap) and getattr(base, "filename", None) and _mmap_of(base) is not None:
            mm = _mmap_of(base)
            start = base.offset - base.offset % mmap.ALLOCATIONGRANULARITY
            ident = _mapped_inode(np.frombuffer(mm, dtype=np.uint8).ctypes.data if len(mm) else 0)
            if ident is None:  # no /proc: the file the path names now
                try:
                    st = os.stat(base.filename)
                except OSError:
                    return None
                ident = (st.st_dev, st.st_ino)
            return base.filename, start + len(mm), ident
        nxt = getattr(base, "base", None)
        if nxt is None or nxt is base:
            return None
        base = nxt
    return None


def _mapped_inode(addr: int):
    """(st_dev, st_ino) of the file mapped at address ``addr`` (from
    /proc/self/maps: the file really mapped, even if its path now names
    another), or None where that is not available."""
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                span, _perms, _off, dev, inode = line.split(None, 5)[:5]
                lo, hi = (int(x, 16) for x in span.split("-"))
                if lo <= addr < hi:
                    major, minor = (int(x, 16) for x in dev.split(":"))
                    return os.makedev(major, minor), int(inode)
    except (OSError, ValueError):
        pass
    return None


def check_mapped(info, what: str) -> None:
    """Refuse to read a mapped file that has shrunk since it was mapped
    (reading past its new end would kill the process with SIGBUS).  A file
    replaced by another (a new inode) is not checked: the mapping still
    holds the old one's pages."""
    if info is None:
        return
    path, need, ident = info
    try:
        st = os.stat(path)
    except OSError:
        return  # deleted: the mapping keeps the old file alive
    if (st.st_dev, st.st_ino) == ident and st.st_size < need:
        raise ValueError(f"{what}: {path} shrank to {st.st_size} bytes after it was opened (the mapping needs "
                         f"{need}); was it truncated or rewritten while in use?")


def _mmap_of(a):
    """The mmap.mmap an array's memory belongs to, or None."""
    base = a
    for _ in range(64):
        if isinstance(base, mmap.mmap):
            return base
        nxt = getattr(base, "base", None)
        if nxt is None or nxt is base:
            return None
        base = nxt
    return None


_PAGE = mmap.PAGESIZE
#: bytes asked for per madvise(WILLNEED) call (a multiple of the page size)
PREFETCH_PIECE = 512 << 10
#: blocks of a mapped segment asked for ahead of the one being read
PREFETCH_AHEAD = 2


def _libc_madvise():
    """libc's madvise through ctypes (which releases the GIL around the call), or None."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.madvise
        fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        fn.restype = ctypes.c_int
        return fn
    except (OSError, AttributeError):  # pragma: no cover - not a POSIX libc
        return None


_MADVISE = _libc_madvise()


def _madvise(mm, lo: int, length: int, advice: int) -> None:
    """``mm.madvise(advice, lo, length)`` without holding the GIL when libc's is at hand
    (the kernel may block in it: readahead waits for the device queue, and dropping pages
    takes time), so the sweep's own thread and kernels go on meanwhile."""
    if _MADVISE is not None:
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
        if _MADVISE(base + lo, length, advice) == 0:
            return
    mm.madvise(advice, lo, length)


def _prefetch(block: np.ndarray) -> None:
    """Ask the OS to start reading a memory-mapped block (best effort, async)."""
    mm = _mmap_of(block)
    if mm is None or block.size == 0 or not hasattr(mm, "madvise"):
        return
    try:
        start = np.frombuffer(mm, dtype=np.uint8).ctypes.data
        lo = block.__array_interface__["data"][0] - start
        span = (block.shape[0] - 1) * abs(block.strides[0]) + (block.shape[1] - 1) * abs(block.strides[1])
        span += block.itemsize
        if block.strides[0] < 0 or block.strides[1] < 0:
            return
        a = (lo // _PAGE) * _PAGE
        end = min(len(mm), lo + span)
        # in pieces: Linux reads at most max(readahead, largest I/O) -- a few MB or less -- per call
        for s in range(a, end, PREFETCH_PIECE):
            _madvise(mm, s, min(PREFETCH_PIECE, end - s), mmap.MADV_WILLNEED)
    except (ValueError, OSError, BufferError):  # pragma: no cover - prefetch is only a hint
        pass


class IOWorker:
    """One background thread for one sweep over a mapped segment: the
    prefetches of the blocks ahead and the drop-behind of the blocks done
    run there, in submission order, so the sweep never waits in those
    calls. Hints only: an error in one is ignored. ``close`` waits for the
    queued ones (the blocks they name are kept alive until then)."""

    def __init__(self):
        import queue
        import threading

        self.q = queue.SimpleQueue()
        self.t = threading.Thread(target=self._run, name="labelsift-io", daemon=True)
        self.t.start()

    def submit(self, fn, *args) -> None:
        self.q.put((fn, args))

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - a hint that failed changes no result  # pragma: no cover
                pass

    def close(self) -> None:
        self.q.put(None)
        self.t.join()


def file_rows(block):
    """(path, (st_dev, st_ino), file offset of row 0, row bytes) of the rows of a C-contiguous 2-D
    np.memmap (a .npy path's, a shard's), or None when they are not plain rows of a file."""
    if not isinstance(block, np.memmap) or block.ndim != 2 or not block.flags.c_contiguous or block.size == 0:
        return None
    mm = _mmap_of(block)
    info = _mapped_file(block)
    if mm is None or info is None:
        return None
    base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    file_start = block.offset - block.offset % mmap.ALLOCATIONGRANULARITY
    return info[0], info[2], file_start + (block.ctypes.data - base), block.strides[0]


def open_mapped_file(path: str, ident, flags: int = os.O_RDONLY):
    """A descriptor of ``path`` opened with ``flags`` if it is still the file (st_dev, st_ino) = ``ident``
    that a mapping holds, else None."""
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != ident:
        os.close(fd)
        return None
    return fd


#: O_DIRECT: reads in flight and bytes per read
DIRECT_THREADS, DIRECT_PIECE = 4, 16 << 20
_ALIGN = 4096


class DirectBlocks:
    """The rows of a plain .npy segment read with O_DIRECT, ``step`` rows a
    block, PREFETCH_AHEAD blocks ahead, into a ring of PREFETCH_AHEAD + 1
    page-aligned buffers: the disk's data lands in this process's buffers
    without the page cache (no page faults, no pages to reclaim or drop:
    on a 2-core VM a mapped sweep spent ~0.55 s of CPU per GB on those, a
    direct one 0.06). Iterating yields (first row, block view); a block's
    buffer is reused once the next block is asked for. DIRECT_THREADS reads
    of DIRECT_PIECE bytes are in flight."""

    def __init__(self, seg, fd: int, off0: int, rb: int, step: int):
        from concurrent.futures import ThreadPoolExecutor

        self.seg, self.fd, self.off0, self.rb, self.step = seg, fd, off0, rb, step
        self.n = len(seg)
        span = step * rb + 2 * _ALIGN
        self.bufs = [mmap.mmap(-1, span) for _ in range(PREFETCH_AHEAD + 1)]
        self.pool = ThreadPoolExecutor(DIRECT_THREADS, thread_name_prefix="labelsift-direct")
        self.pending: dict[int, list] = {}

    @classmethod
    def of(cls, seg, step: int):
        """A direct reader for ``seg``, or None (not a plain file's rows, or no O_DIRECT here)."""
        fr = file_rows(seg)
        if fr is None or not hasattr(os, "O_DIRECT"):
            return None
        path, ident, off0, rb = fr
        fd = open_mapped_file(path, ident, os.O_RDONLY | os.O_DIRECT)
        if fd is None:
            return None
        probe = mmap.mmap(-1, _ALIGN)
        try:  # some file systems accept O_DIRECT at open and refuse the reads (alignment): try one
            ok = os.preadv(fd, [memoryview(probe)], 0) >= 0
        except OSError:
            ok = False
        finally:
            probe.close()
        if not ok:
            os.close(fd)
            return None
        return cls(seg, fd, off0, rb, step)

    def _span(self, a: int):
        m = min(self.step, self.n - a)
        start = self.off0 + a * self.rb
        end = start + m * self.rb
        lo = start // _ALIGN * _ALIGN
        return m, start, end, lo

    def _read(self, buf, lo: int, rel: int, length: int, need_end: int) -> None:
        """buf[rel : rel + length] = the file's bytes at lo + rel (a short read past need_end is fine)."""
        mv = memoryview(buf)
        got = 0
        while got < length:
            r = os.preadv(self.fd, [mv[rel + got : rel + length]], lo + rel + got)
            if r <= 0:
                break
            got += r
            if got % _ALIGN:  # the end of the file (O_DIRECT reads whole sectors otherwise)
                break
        if lo + rel + got < min(need_end, lo + rel + length):
            raise ValueError(f"pred_probs: the file ended at byte {lo + rel + got} while reading rows; "
                             "was it truncated while in use?")

    def _submit(self, b: int) -> None:
        a = b * self.step
        if a >= self.n or b in self.pending:
            return
        m, start, end, lo = self._span(a)
        hi = -(-end // _ALIGN) * _ALIGN
        buf = self.bufs[b % len(self.bufs)]
        self.pending[b] = [self.pool.submit(self._read, buf, lo, r, min(DIRECT_PIECE, hi - lo - r), end)
                           for r in range(0, hi - lo, DIRECT_PIECE)]

    def __iter__(self):
        nblocks = -(-self.n // self.step)
        for b in range(min(nblocks, PREFETCH_AHEAD)):
            self._submit(b)
        for b in range(nblocks):
            self._submit(b + PREFETCH_AHEAD)  # into the buffer of block b - 1, which the caller is done with
            for f in self.pending.pop(b):
                f.result()
            m, start, _, lo = self._span(b * self.step)
            k = self.seg.shape[1]
            yield b * self.step, np.frombuffer(self.bufs[b % len(self.bufs)], dtype=self.seg.dtype, count=m * k,
                                               offset=start - lo).reshape(m, k)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        for fs in self.pending.values():
            for f in fs:
                try:
                    f.result()
                except ValueError:
                    pass
        self.pending.clear()
        self.pool.shutdown(wait=True)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class DropBehind:
    """Drops rows already read from a read-only file mapping: their pages
    are unmapped (``madvise(MADV_DONTNEED)``: a read-only shared mapping
    loses nothing, a later access reads the file again) and dropped from
    the page cache (``posix_fadvise(POSIX_FADV_DONTNEED)``). For one sweep
    over a file larger than memory: the kernel then never has to reclaim
    the file's mapped pages to make room for the pages read ahead (on a
    VM with 2 cores, a 20 GB sweep went from 0.41 to 1.13 GB/s, the disk's
    rate). Only whole pages strictly inside a block are dropped."""

    def __init__(self, mm, fd: int, file_start: int):
        self.mm, self.fd, self.file_start = mm, fd, file_start
        self.base = np.frombuffer(mm, dtype=np.uint8).ctypes.data if len(mm) else 0

    @classmethod
    def of(cls, seg: np.ndarray):
        """A dropper for the read-only np.memmap behind ``seg``, else None."""
        base = seg
        for _ in range(64):
            if isinstance(base, np.memmap):
                break
            base = getattr(base, "base", None)
            if base is None:
                return None
        else:
            return None
        mm = _mmap_of(base)
        if mm is None or getattr(base, "mode", None) != "r" or not getattr(base, "filename", None) \
                or not hasattr(mm, "madvise") or not hasattr(os, "posix_fadvise"):
            return None
        info = _mapped_file(base)
        fd = None if info is None else open_mapped_file(base.filename, info[2])
        if fd is None:  # gone, or the path names another file now: nothing to drop through it
            return None
        return cls(mm, fd, base.offset - base.offset % mmap.ALLOCATIONGRANULARITY)

    def __call__(self, block: np.ndarray) -> None:
        if block.size == 0 or block.strides[0] <= 0 or block.strides[1] < 0:
            return
        lo = block.__array_interface__["data"][0] - self.base
        hi = lo + (block.shape[0] - 1) * block.strides[0] + (block.shape[1] - 1) * block.strides[1] + block.itemsize
        lo = -(-lo // _PAGE) * _PAGE  # whole pages inside the block
        hi = min(hi, len(self.mm)) // _PAGE * _PAGE
        if hi <= lo:
            return
        try:
            _madvise(self.mm, lo, hi - lo, mmap.MADV_DONTNEED)
            os.posix_fadvise(self.fd, self.file_start + lo, hi - lo, os.POSIX_FADV_DONTNEED)
        except (ValueError, OSError):  # pragma: no cover - only a hint
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def host_array(a, what: str):
    """``a`` unchanged, unless it lives on a GPU (the one check for that)."""
    if hasattr(a, "__cuda_array_interface__"):
        raise TypeError(
            f"{what} is a CUDA array; this function has no GPU path yet (find_label_issues, "
            "compute_confident_joint and get_confident_thresholds have one): "
            "pass a NumPy array (cupy.asnumpy(x) or tensor.cpu().numpy())"
        )
    return a


def as_2d(a, what: str = "pred_probs") -> np.ndarray:
    """A 2-D array of floats as it is (no copy for a NumPy array)."""
    host_array(a, what)
    if not isinstance(a, np.ndarray):
        if isinstance(a, (list, tuple)) or hasattr(a, "__array__") or hasattr(a, "__array_interface__"):
            try:
                a = np.asarray(a)
            except (ValueError, TypeError) as exc:
                raise TypeError(f"{what} must be a 2-D array of probabilities (N x K); "
                                f"cannot make one of this {type(a).__name__}: {exc}") from None
        else:
            raise TypeError(f"{what} must be an array, a .npy path or a list of .npy paths, got {type(a).__name__}")
    if a.dtype == object or a.dtype.kind in "USV":
        raise TypeError(f"{what} must hold floating-point probabilities, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{what} must be 2-D (num_examples x num_classes), got shape {a.shape}")
    return a


def as_probs(pred_probs, what: str = "pred_probs") -> Probs:
    """Wrap pred_probs (array, memmap, .npy path, list of .npy shard paths)."""
    if isinstance(pred_probs, Probs):
        return pred_probs
    if is_pathlike(pred_probs):
        segs, names = [as_2d(load_npy(pred_probs, what), what)], [os.fsdecode(os.fspath(pred_probs))]
    elif _is_shard_list(pred_probs):
        segs, names = [], []
        for i, p in enumerate(pred_probs):
            if is_pathlike(p):
                names.append(os.fsdecode(os.fspath(p)))
                segs.append(as_2d(load_npy(p, f"{what} shard {i}"), f"{what} shard {i} ({names[-1]})"))
            elif isinstance(p, np.ndarray) and p.ndim == 2:
                names.append(f"<array {i}>")
                segs.append(as_2d(p, f"{what} shard {i}"))
            else:
                raise TypeError(f"{what} shard {i} must be a .npy path or a 2-D array, got "
                                f"{type(p).__name__}" + (f" of shape {p.shape}" if hasattr(p, "shape") else ""))
    else:
        segs, names = [as_2d(pred_probs, what)], []
    k = segs[0].shape[1]
    dt = kernel_dtype(segs[0].dtype)
    for i, s in enumerate(segs[1:], 1):
        if s.shape[1] != k:
            raise ValueError(f"{what} shard {i} has {s.shape[1]} columns, shard 0 has {k}")
        if kernel_dtype(s.dtype) != dt:
            raise TypeError(f"{what} shard {i} has dtype {s.dtype}, shard 0 has {segs[0].dtype}")
    n = int(sum(len(s) for s in segs))
    if n == 0:
        raise ValueError(f"{what} is empty (0 rows)")
    if k < 2:
        raise ValueError(f"{what} has {k} column(s); confident learning needs at least 2 classes")
    files = [_mapped_file(sg) for sg in segs]
    for i, info in enumerate(files):
        check_mapped(info, what if len(segs) == 1 else f"{what} shard {i}")
    return Probs(segs, n, k, dt, names, files=files)


def _is_shard_list(x) -> bool:
    """A list of row shards: a list/tuple holding a path or a 2-D array (a
    nested list of numbers is one 2-D array instead)."""
    return (isinstance(x, (list, tuple)) and len(x) > 0
            and any(is_pathlike(p) or (isinstance(p, np.ndarray) and p.ndim == 2) for p in x))


def as_labels(labels, n: int, k: int, what: str = "labels", row_name=None) -> np.ndarray:
    """Validate labels against N rows and K classes; return int64 (a copy, O(N)).

    ``row_name(i)`` names entry i in errors (default ``labels[i]``; the
    streaming accumulator names the example id).
    """
    if is_pathlike(labels):
        labels = load_npy(labels, what)
    host_array(labels, what)
    if isinstance(labels, np.ndarray):
        y = labels
    elif isinstance(labels, (list, tuple, range)) or hasattr(labels, "__array__"):
        y = np.asarray(labels)
    else:
        raise TypeError(f"{what} must be an integer array, got {type(labels).__name__}")
    if y.dtype.kind not in "iu":
        if y.dtype.kind in "USO":
            raise TypeError(f"{what} must be integers 0..K-1, got dtype {y.dtype} (strings or objects)")
        raise TypeError(
            f"{what} must have an integer dtype, got {y.dtype}"
            + (" (cast whole-number floats with labels.astype(int))" if y.dtype.kind == "f" else "")
        )
    if y.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"{what} has {len(y)} entries but pred_probs has {n} rows")
    if n == 0:
        return np.empty(0, np.int64)
    name = row_name or (lambda i: f"{what}[{i}]")
    if y.dtype == np.uint64:
        too_big = np.flatnonzero(y > np.iinfo(np.int64).max)
        if len(too_big):
            i = int(too_big[0])
            raise ValueError(f"{name(i)} = {y[i]} is not a class index")
    y64 = np.ascontiguousarray(y, dtype=np.int64)
    bad = np.flatnonzero((y64 < 0) | (y64 >= k))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{name(i)} = {y[i]} is not a class index in 0..{k - 1} (pred_probs has {k} columns)")
    return y64


def label_counts(labels, k: int) -> np.ndarray:
    """Per-class counts of labels (an array, a list or a ``.npy`` path), validated."""
    if is_pathlike(labels):
        labels = load_npy(labels, "labels")
    if not hasattr(labels, "__len__"):
        raise TypeError(f"labels must be an integer array, got {type(labels).__name__}")
    if len(labels) == 0:
        raise ValueError("labels is empty")
    y = as_labels(labels, len(labels), k)
    return np.bincount(y, minlength=k).astype(np.int64)


def as_ids(indices, n: int) -> np.ndarray:
    """Example ids as a fresh int64 array (never a view of the caller's)."""
    host_array(indices, "indices")
    a = np.asarray(indices)
    if a.dtype.kind not in "iu":
        raise TypeError(f"indices must be integer example ids, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"indices must be 1-D, got shape {a.shape}")
    if len(a) != n:
        raise ValueError(f"indices has {len(a)} entries but pred_probs has {n} rows")
    if a.dtype == np.uint64 and n and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"example id {int(a.max())} does not fit in int64")
    return np.array(a, dtype=np.int64, copy=True)


#: The largest count accepted in a user-supplied count matrix: counts are
#: integers that float64 holds exactly, and sums of K of them fit in int64.
MAX_COUNT = 2 ** 53


def as_counts(matrix, k: int | None, what: str) -> np.ndarray:
    """A user-supplied K x K count matrix (a confident joint): as_square, and
    every entry at most MAX_COUNT (1e300 is not a count)."""
    m = as_square(matrix, k, what)
    check_kxk_memory(m.shape[0], what)
    if m.size and m.max() > MAX_COUNT:
        i, j = np.argwhere(m > MAX_COUNT)[0]
        raise ValueError(f"{what}[{i}, {j}] = {m[i, j]!r} is too large for a count (at most 2**53)")
    return m


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


#: K x K float64 matrices a confident-learning call holds at its peak (the
#: joint, its calibration and rounding, the prune counts, the latent
#: estimates and NumPy's temporaries), for the up-front memory check:
#: find_label_issues at N = 10 peaked at 4.9-5.0 x K x K x 8 bytes above the
#: start for K = 3000 and 6000 (ru_maxrss); 6 leaves a margin.
KXK_COPIES = 6


def check_kxk_memory(k: int, what: str = "pred_probs") -> None:
    """MemoryError up front, stating the size, when the K x K matrices of
    confident learning cannot fit in the memory available."""
    need = KXK_COPIES * 8 * k * k
    avail = _available_memory()
    if avail is not None and need > avail:
        raise MemoryError(
            f"{what} has K = {k} classes: confident learning's K x K matrices need about "
            f"{need / 2**30:.1f} GiB ({KXK_COPIES} x {k} x {k} float64), more than the "
            f"{avail / 2**30:.1f} GiB of memory available")


def as_square(matrix, k: int | None, what: str) -> np.ndarray:
    """A user-supplied K x K count or probability matrix: numeric, finite,
    non-negative. ``k=None`` takes K from the matrix."""
    if matrix is None or isinstance(matrix, (str, bytes, dict, set)):
        raise TypeError(f"{what} must be a K x K array of numbers, got {type(matrix).__name__}")
    try:
        m = np.asarray(host_array(matrix, what))
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{what} must be a K x K array of numbers ({exc})") from None
    if k is None:
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"{what} must be a square K x K matrix, got shape {m.shape}")
        k = m.shape[0]
    if m.shape != (k, k):
        raise ValueError(f"{what} must have shape ({k}, {k}), got {m.shape}")
    if m.dtype.kind not in "iuf":
        raise TypeError(f"{what} must hold real numbers, got dtype {m.dtype}")
    if not np.isfinite(m).all():
        i, j = np.argwhere(~np.isfinite(m))[0]
        raise ValueError(f"{what}[{i}, {j}] is not finite")
    if (m < 0).any():
        i, j = np.argwhere(m < 0)[0]
        raise ValueError(f"{what}[{i}, {j}] = {m[i, j]} is negative")
    return m
