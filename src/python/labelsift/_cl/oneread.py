"""One read of a file-backed dump for ``find_label_issues`` (default
``filter_by="prune_by_noise_rate"``): a single sweep builds the adaptive
sketch of every row (:func:`.sketch.sketch_rows`), the certificate of
:mod:`.sketch` decides what it can, and only the rows it names are read
again, in index order; at most three such rounds, then the two-pass plan.

Floors: the labels are known before the sweep, so for every class j the
final threshold t_j (the mean of P[i, y_i] over its n_j rows) is bounded
below, at any point of the sweep, by (sum seen + unseen * PROB_LOW) / n_j;
shrunk by a slack far above the rounding of the dtype's mean, minus the
1e-6 of the cut, that bound is a floor no class below it can pass, so a row
whose left-out classes are all below their floors has a proven guess.
The pair table (:class:`.sketch.PairTable`), filled in the same sweep,
holds the best three prune margins of every class and column (and the best
margin turned away, the runner-up), which settles the small selections whose
cut lands on tail margins no row sketch keeps, in both tie modes.
When more rows would have to be held in full than half the rows or 40 % of
the available memory allow, the two-pass plan runs instead.
``tau``: the margin level for prune selections, set from the first block so
that rows keep about ``avg`` entries on average, raised when they keep more.
"""
from __future__ import annotations

import mmap
import os

import numpy as np

from .._common.arrays import PROB_LOW, _available_memory, _mmap_of, _prefetch, file_rows, open_mapped_file
from .._common.backend import core
from .._common.options import current_reads
from .._common.trace import stage
from .passes import RowPass, cut_from_thresholds, thresholds_from_given
from .rules import confident_joint_from_guesses
from .sketch import PairTable, Sketch, _guesses, pair_slots, result, sketch_rows

MMIN, CAP, AVG = 2, 64, 16
MAX_ROUNDS = 3
SLICE_BYTES = 4 << 20  # 1M float32 values: enough work for the kernels to use every thread
#: the most rows held in full for re-reads, as a share of the rows and of the
#: memory available when the call starts (then the two-pass plan instead:
#: re-reading half the rows at random costs about what a second sweep does)
REREAD_FRAC, REREAD_MIN_ROWS, REREAD_MEMORY_FRAC = 0.5, 4096, 0.4
#: the pair table (:class:`.sketch.PairTable`): at most this many slots, in at
#: most this share of the available memory and this many bytes (else fewer
#: slots, or none: then only the rows' sketches and re-reads settle the
#: selections)
PAIR_SLOTS, PAIR_MEMORY_FRAC, PAIR_MAX_BYTES = 3, 0.1, 1 << 30

#: what the last one-read call did (``labelsift.read_report()``)
_LAST: dict = {}


def new_report(pb) -> dict:
    """A fresh report for a call over ``pb`` (it becomes the last one)."""
    _LAST.clear()
    _LAST.update(rows=pb.n, classes=pb.k, data_bytes=pb.n * pb.k * pb.dtype.itemsize, rows_reread=0,
                 reread_bytes=0, entries_per_row=0.0, pair_table_bytes=0, rounds=0, exact=False)
    return _LAST


def read_report() -> dict:
    """What the last one-read ``find_label_issues`` did: rows, classes,
    data_bytes (the N x K values), rows_reread and reread_bytes (the targeted
    re-reads), entries_per_row (the sketch's mean size), pair_table_bytes (the
    best margins of every class and column, 0 when not kept), rounds of re-reading,
    and exact (False: it fell back to the two-pass plan). Empty before any."""
    return dict(_LAST)


#: reads="auto" reads a file-backed dump once when its bytes exceed this share
#: of the memory available (the page cache cannot keep it for a second pass)
AUTO_MEMORY_FRAC = 0.5


def prefer_one_read(data_bytes: int | None = None, file_backed: bool = False) -> bool:
    """The ``reads`` option: "one" reads once, "two" runs the two-pass plan,
    "auto" reads once a file-backed dump (paths, shard lists, memmaps) larger
    than AUTO_MEMORY_FRAC of the available memory -- there every pass is a
    read from disk, and the two passes read the file about 3x -- and runs
    the two-pass plan otherwise (a dump the page cache holds is read from
    disk once either way, and the two-pass sweeps cost less CPU)."""
    reads = current_reads()
    if reads != "auto":
        return reads == "one"
    if not file_backed or data_bytes is None:
        return False
    return _beyond_page_cache(data_bytes)


def _beyond_page_cache(data_bytes: int) -> bool:
    """More bytes than AUTO_MEMORY_FRAC of the memory available: the page cache cannot keep them."""
    avail = _available_memory()
    return avail is not None and data_bytes > AUTO_MEMORY_FRAC * avail


def _segment_bytes(segs) -> int:
    return sum(int(getattr(s, "nbytes", 0)) for s in segs)


def prefer_for(pb) -> bool:
    """:func:`prefer_one_read` for a problem's rows."""
    return prefer_for_segments(pb.probs.segments)


def prefer_for_segments(segs) -> bool:
    """:func:`prefer_one_read` for these row segments (the arrays a dump is read from)."""
    return prefer_one_read(_segment_bytes(segs), any(_mmap_of(s) is not None for s in segs))


def _floors(sums, seen, counts, dtype):
    slack = 1e-2 if dtype == np.float16 else 1e-4
    with np.errstate(divide="ignore", invalid="ignore"):
        lb = (sums + (counts - seen) * PROB_LOW) / counts
    lb = np.where(counts > 0, np.maximum(lb, 2e-6), 2.0)
    return lb * (1 - slack) - 1e-6 - 1e-7


def _sweep(pb, margins: bool = True, stats=None) -> Sketch:
    """The one sweep: validation and the adaptive sketch of every row
    (``margins=False``: no margin entries, for the counts alone)."""
    counts = pb.label_counts().astype(np.float64)
    sums = np.zeros(pb.k)
    seen = np.zeros(pb.k)
    lo, hi, tol = pb.bounds()
    tau = -np.inf if margins else np.inf
    sub = max(1, SLICE_BYTES // max(1, pb.k * pb.dtype.itemsize))
    parts = []
    kept = 0
    table = _pair_table(pb) if margins else None
    with stage("one_read_sketch"):
        for row0, block in pb.probs.blocks(drop_behind=_outgrows_memory(pb)):
            floor = _floors(sums, seen, counts, pb.dtype)
            given = []
            # every kernel reads a slice right after the previous one did: the pages are read from the file
            # once even when the page cache keeps nothing (a dump larger than memory evicts as it goes)
            for a in range(0, len(block), sub):
                sb = block[a : a + sub]
                m = len(sb)
                y = pb.labels[row0 + a : row0 + a + m]
                pb.raise_row_error(sb, row0 + a, core().validate(sb, y, lo, hi, tol, pb.nthreads))
                if tau == -np.inf:  # the margin level from the first rows
                    lp, _, lv, _, _, lg = sketch_rows(sb, y, MMIN, CAP, floor, -np.inf)
                    tau = _level(lp, lv, lg, np.inf)
                part = sketch_rows(sb, y, MMIN, CAP, floor, tau)
                if table is not None:
                    table.update(sb, y, row0 + a, part)
                parts.append(part)
                given.append(part[5])
                kept += len(part[1])
            yb = pb.labels[row0 : row0 + len(block)]
            sums += np.bincount(yb, weights=np.concatenate(given).astype(np.float64), minlength=pb.k)
            seen += np.bincount(yb, minlength=pb.k)
            if margins and kept > 1.5 * AVG * (row0 + len(block)):  # over budget: raise the level from here on
                ptr, _, vals, _, _, g = parts[-1]
                tau = max(tau, _level(ptr, vals, g, tau))
    pb.validated = True
    sk = _assemble(pb, parts)
    sk.pairs = table
    if stats is not None:
        stats["entries_per_row"] = len(sk.ec) / max(1, pb.n)
        stats["pair_table_bytes"] = 0 if table is None else table.nbytes
    return sk


def _outgrows_memory(pb) -> bool:
    """Whether the dump is larger than the page cache can keep for later
    (AUTO_MEMORY_FRAC of the memory available): then the sweep drops the
    pages it has read (:class:`..._common.arrays.DropBehind`), as nothing
    but a few targeted rows is read again."""
    return _beyond_page_cache(_segment_bytes(pb.probs.segments))


def _pair_table(pb) -> PairTable | None:
    avail = _available_memory()
    budget = PAIR_MAX_BYTES if avail is None else min(PAIR_MAX_BYTES, int(PAIR_MEMORY_FRAC * avail))
    slots = pair_slots(pb.k, pb.dtype, pb.n, budget, PAIR_SLOTS)
    return PairTable(pb.k, slots, pb.dtype, pb.n) if slots > 0 else None


def _refine(pb, sk: Sketch, rows: np.ndarray, stats=None) -> bool:
    """Re-read ``rows`` in full into the sketch; False (nothing read) when
    that would hold more full rows than allowed."""
    if len(sk.fpos) + len(rows) > _max_held_rows(pb):
        return False
    rows = np.asarray(rows, np.int64)
    # one buffer of all the held rows, in index order, read into in place (a fresh
    # allocation of gigabytes costs seconds where the page cache must be reclaimed)
    fpos = np.union1d(sk.fpos, rows) if len(sk.fpos) else rows
    frows = np.empty((len(fpos), pb.k), pb.dtype)
    if len(sk.fpos):
        frows[np.searchsorted(fpos, sk.fpos)] = sk.frows
    at = np.searchsorted(fpos, rows)
    with stage("one_read_reread"), _random_access(pb):
        for pos, block, local in pb.probs.rows(rows):
            if not _pread_rows(block, local, frows, at[pos]):
                _reread(block, local, frows, at[pos])
    if stats is not None:
        stats["rows_reread"] += len(rows)
        stats["reread_bytes"] += len(rows) * pb.k * pb.dtype.itemsize
        stats["rounds"] += 1
    sk.fpos, sk.frows = fpos, frows
    return True


def find(pb, ties: str, stats=None):
    """(mask, Found-like pieces) from one read, or None when the certificate
    still leaves rows open after MAX_ROUNDS re-reads (the caller then runs
    the two-pass plan)."""
    sk = _sweep(pb, True, stats)
    memo: dict = {}
    for round_ in range(MAX_ROUNDS + 1):
        est = result(sk, ties, with_latent=False, memo=memo)
        if est.exact:
            if stats is not None:
                stats["exact"] = True
            return _found(pb, sk, est)
        rows = np.flatnonzero(est.to_refine)
        if len(rows) == 0 or round_ == MAX_ROUNDS or not _refine(pb, sk, rows, stats):
            return None  # too much left open: the two-pass plan reads less and holds no full rows
    return None


def joint(pb, stats=None):
    """(raw confident joint, ascending off-diagonal rows, thresholds) from
    one read -- compute_confident_joint's counts need only the confident
    guesses, so the sketch keeps no margin entries -- or None (then the
    two-pass plan)."""
    sk = _sweep(pb, False, stats)
    thresholds = thresholds_from_given(sk.g, sk.y, sk.k, pb.nthreads)  # the two-pass plan's, exactly
    cut = cut_from_thresholds(thresholds, sk.k, sk.dtype).astype(np.float64)
    for round_ in range(MAX_ROUNDS + 1):
        guess, decided = _guesses(sk, cut)
        if decided.all():
            if stats is not None:
                stats["exact"] = True
            cj, off = confident_joint_from_guesses(sk.y, guess.astype(np.int32), sk.k)
            return cj, off, thresholds
        rows = np.flatnonzero(~decided)
        if round_ == MAX_ROUNDS or not _refine(pb, sk, rows, stats):
            return None
    return None


def _max_held_rows(pb) -> int:
    """How many full rows the re-reads may hold: a share of the rows, and of
    the memory available now (after the sweep the page cache holding the
    dump is reclaimable, so it counts as available)."""
    most = int(max(REREAD_MIN_ROWS, REREAD_FRAC * pb.n))
    avail = _available_memory()
    if avail is None:
        return most
    return min(most, max(REREAD_MIN_ROWS, int(REREAD_MEMORY_FRAC * avail) // (pb.k * pb.dtype.itemsize)))


class _random_access:
    """While re-reading scattered rows of memory-mapped segments, no
    read-around: a page fault reads that page, not the ~128 KB around it
    (which would read most of the file again for rows a few pages long)."""

    def __init__(self, pb):
        self.maps = [m for m in (_mmap_of(s) for s in pb.probs.segments) if m is not None and hasattr(m, "madvise")]

    def _advise(self, how):
        for m in self.maps:
            try:
                m.madvise(how)
            except (OSError, ValueError):  # pragma: no cover - only a hint
                pass

    def __enter__(self):
        self._advise(mmap.MADV_RANDOM)
        return self

    def __exit__(self, *exc):
        self._advise(mmap.MADV_NORMAL)
        return False


REREAD_BATCH = 1024
#: threads reading a file's rows at once (the queue depth a shared disk needs), and the most bytes per read
REREAD_THREADS, REREAD_RUN_BYTES = 32, 4 << 20


def _pread_rows(block, local, out, pos) -> bool:
    """out[pos] = block[local] read from the file with positioned reads: runs of consecutive rows
    (landing in consecutive rows of out) as one read each, REREAD_THREADS reads in flight (os.preadv
    releases the GIL). False (nothing read) when the rows are not plain rows of a file."""
    fr = file_rows(block)
    if fr is None or not out.flags.c_contiguous or out.strides[0] != fr[3] or out.dtype != block.dtype:
        return False
    path, ident, off0, rb = fr
    fd = open_mapped_file(path, ident)
    if fd is None:
        return False  # gone, or the path names another file now: read through the mapping
    try:
        if hasattr(os, "posix_fadvise"):  # no readahead on this descriptor: read just the rows' pages
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        local = np.asarray(local, np.int64)
        pos = np.asarray(pos, np.int64)
        brk = np.flatnonzero((np.diff(local) != 1) | (np.diff(pos) != 1)) + 1
        starts = np.concatenate(([0], brk)).astype(np.int64)
        ends = np.concatenate((brk, [len(local)])).astype(np.int64)
        per = max(1, REREAD_RUN_BYTES // rb)  # long runs in pieces
        pieces = [(a, min(a + per, e)) for s_, e in zip(starts.tolist(), ends.tolist()) for a in range(s_, e, per)]
        dst = memoryview(out.reshape(-1).view(np.uint8))
        lrows, prows = local.tolist(), pos.tolist()
        failed = []

        def work(t):
            try:
                for a, e in pieces[t::REREAD_THREADS]:
                    n = (e - a) * rb
                    d0 = prows[a] * rb
                    off = off0 + lrows[a] * rb
                    got = 0
                    while got < n:
                        r = os.preadv(fd, [dst[d0 + got : d0 + n]], off + got)
                        if r <= 0:
                            raise ValueError(f"{path} ended at byte {off + got} while re-reading rows; "
                                             "was it truncated while in use?")
                        got += r
            except (OSError, ValueError) as exc:
                failed.append(exc)

        import threading

        ts = [threading.Thread(target=work, args=(t,)) for t in range(min(REREAD_THREADS, len(pieces)))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if failed:
            raise failed[0] if isinstance(failed[0], ValueError) else ValueError(f"re-reading {path}: {failed[0]}")
        return True
    finally:
        os.close(fd)


def _reread(block, local, out, pos) -> None:
    """out[pos] = block[local], asking the OS for each next batch of rows
    while this one is copied (async reads of just those rows' pages: many
    requests in flight instead of one page fault at a time)."""
    def ask(lo):
        for r in local[lo : lo + REREAD_BATCH]:
            _prefetch(block[r : r + 1])
    ask(0)
    for a in range(0, len(local), REREAD_BATCH):
        ask(a + REREAD_BATCH)
        out[pos[a : a + REREAD_BATCH]] = block[local[a : a + REREAD_BATCH]]


def _level(ptr, vals, g, default) -> float:
    """The margin P[j] - P[y] above which the rows of a block keep about AVG entries on average."""
    er = np.repeat(np.arange(len(g)), np.diff(ptr))
    margins = vals.astype(np.float64) - g[er].astype(np.float64)
    want = AVG * len(g)
    if len(margins) <= want:
        return default
    return float(np.partition(margins, len(margins) - 1 - want)[len(margins) - 1 - want])


def _assemble(pb, parts) -> Sketch:
    n = pb.n
    ptr = np.zeros(n + 1, np.int64)
    counts = np.concatenate([np.diff(p[0]) for p in parts]) if parts else np.zeros(0, np.int64)
    np.cumsum(counts, out=ptr[1:])
    cat = (lambda i, dt=None: np.concatenate([p[i] for p in parts]).astype(dt) if parts else np.empty(0, dt))
    return Sketch(np.arange(n, dtype=np.int64), pb.labels, cat(5, pb.dtype), ptr, cat(1, np.int64),
                  cat(2, pb.dtype), cat(3, pb.dtype), cat(4, bool), np.empty(0, np.int64),
                  np.empty((0, pb.k), pb.dtype), pb.k, pb.dtype)


def _found(pb, sk: Sketch, est):
    """(mask, g, thresholds, RowPass with argmax and max_other) from an exact sketch (the mask already
    holds the unflagging test)."""
    er = sk.er
    other = sk.ec != sk.y[er]
    mo = np.full(sk.n, -np.inf)
    np.maximum.at(mo, er[other], sk.ev[other].astype(np.float64))  # the top-2 are always kept: exact
    if len(sk.fpos):  # max over the other classes of the full rows, copying only rows whose label is a maximum
        fr = sk.frows
        yf = sk.y[sk.fpos]
        top = fr.max(axis=1)
        at_y = fr[np.arange(len(fr)), yf] == top
        out = top.astype(np.float64)
        if at_y.any():
            sub = fr[at_y].copy()
            sub[np.arange(len(sub)), yf[at_y]] = -np.inf
            out[at_y] = sub.max(axis=1)
        mo[sk.fpos] = out
    rp = RowPass(argmax=sk.ec[sk.ptr[:-1]].astype(np.int32), max_other=mo)
    return est.label_issues, sk.g, est.thresholds, rp
