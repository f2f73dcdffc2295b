"""find_label_issues on file-backed dumps reads them once (issue 15): the
adaptive sketch of every row, the certificate, targeted re-reads of the rows
it names; the answer must equal the two-pass plan on the same data, which is
the oracle here (``labelsift.options(reads="two")``), in both tie modes."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import labelsift
import labelsift._common.arrays as arrays
from support.data import flat_rows, grouped_softmax, real_dump, tie_heavy

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from bench_sketch import flat_dump  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _data(name):
    if name == "flat_k200":
        return flat_dump(6000, 200, seed=1)
    if name == "flat_k10":
        return flat_rows(3000, 10, seed=2)
    if name == "peaked":
        return grouped_softmax(5000, 40, np.float32, seed=3, noise=0.1)
    if name == "ties":
        p, y = tie_heavy(4, 3000, 12, 2)
        return (y, p) if y.ndim == 1 else (p, y)
    if name == "float16":
        y, p = grouped_softmax(4000, 30, np.float32, seed=5, noise=0.2)
        return y, p.astype(np.float16)
    labels, probs = real_dump(name)
    return labels, probs


def _as(kind, P, tmp_path):
    path = str(tmp_path / "p.npy")
    np.save(path, P)
    if kind == "path":
        return path
    if kind == "memmap":
        return np.load(path, mmap_mode="r")
    cuts = [0, len(P) // 3, len(P) // 3, len(P)]  # an empty shard too
    paths = []
    for t in range(3):
        p = str(tmp_path / f"s{t}.npy")
        np.save(p, P[cuts[t] : cuts[t + 1]])
        paths.append(p)
    return paths


def _both(y, src, ties, **kw):
    with labelsift.options(reads="two"):
        want = labelsift.find_label_issues(y, src, ties=ties, **kw)
    with labelsift.options(reads="one"):
        got = labelsift.find_label_issues(y, src, ties=ties, **kw)
    return got, want


@pytest.mark.parametrize("name", ["flat_k200", "flat_k10", "peaked", "ties", "float16", "mnist"])
@pytest.mark.parametrize("kind", ["path", "memmap", "shards"])
@pytest.mark.parametrize("ties", ["cleanlab", "lower_index"])
def test_one_read_equals_two_passes(name, kind, ties, tmp_path, monkeypatch):
    y, P = _data(name)
    from labelsift._cl import oneread
    monkeypatch.setattr(arrays, "BLOCK_BYTES", 256 << 10)  # many blocks: running floors and levels move
    monkeypatch.setattr(oneread, "SLICE_BYTES", 48 << 10)  # several slices a block
    src = _as(kind, P, tmp_path)
    got, want = _both(y, src, ties)
    rep = labelsift.read_report()
    assert got.dtype == want.dtype and np.array_equal(got, want)
    assert rep["rows"] == len(y) and rep["exact"]
    assert rep["rows_reread"] <= len(y) * rep["rounds"]
    ranked, ranked_want = _both(y, src, ties, return_indices_ranked_by="normalized_margin")
    assert np.array_equal(ranked, ranked_want)
    # and the in-memory call (two passes) agrees
    assert np.array_equal(labelsift.find_label_issues(y, np.asarray(P), ties=ties), want)


def test_report_counts_the_reread_rows(tmp_path):
    y, P = flat_dump(4000, 150, seed=7)
    path = str(tmp_path / "p.npy")
    np.save(path, P)
    with labelsift.options(reads="one"):
        labelsift.find_label_issues(y, path, ties="lower_index")
    rep = labelsift.read_report()
    assert rep["data_bytes"] == P.nbytes
    assert rep["reread_bytes"] == rep["rows_reread"] * P.shape[1] * P.itemsize
    assert 2 <= rep["entries_per_row"] <= 64


def test_reads_option_is_checked_and_in_memory_arrays_can_ask_for_one_read():
    y, P = grouped_softmax(2000, 20, np.float32, seed=8)
    with pytest.raises(ValueError, match="reads"):
        labelsift.options(reads="three")
    with labelsift.options(reads="one"):
        got = labelsift.find_label_issues(y, P)
    assert labelsift.read_report()["rows"] == 2000
    with labelsift.options(reads="two"):
        assert np.array_equal(got, labelsift.find_label_issues(y, P))


def test_a_bad_value_is_named_on_the_one_read_path(tmp_path):
    y, P = grouped_softmax(3000, 20, np.float32, seed=9)
    P[2345, 7] = np.nan
    path = str(tmp_path / "p.npy")
    np.save(path, P)
    with pytest.raises(ValueError, match="2345"), labelsift.options(reads="one"):
        labelsift.find_label_issues(y, path)


def test_auto_reads_once_only_file_backed_dumps_larger_than_memory_allows(tmp_path, monkeypatch):
    from labelsift._cl import oneread
    assert not oneread.prefer_one_read()
    assert not oneread.prefer_one_read(10**6, file_backed=True)  # the page cache holds it: two passes
    assert not oneread.prefer_one_read(10**18, file_backed=False)  # in memory: nothing to re-read from disk
    assert oneread.prefer_one_read(10**18, file_backed=True)
    with labelsift.options(reads="one"):
        assert oneread.prefer_one_read()
    with labelsift.options(reads="two"):
        assert not oneread.prefer_one_read(10**18, file_backed=True)
    y, P = flat_dump(3000, 50, seed=12)
    path = str(tmp_path / "p.npy")
    np.save(path, P)
    with labelsift.options(reads="two"):
        want = labelsift.find_label_issues(y, path)
    oneread._LAST.clear()
    assert np.array_equal(labelsift.find_label_issues(y, path), want)
    assert labelsift.read_report() == {}  # a small file: the two-pass plan
    monkeypatch.setattr(oneread, "AUTO_MEMORY_FRAC", 1e-9)  # as if the file were larger than memory
    assert np.array_equal(labelsift.find_label_issues(y, path), want)
    assert labelsift.read_report()["exact"] and labelsift.read_report()["rows"] == 3000
    oneread._LAST.clear()
    labelsift.find_label_issues(y, P)  # an in-memory array: two passes still
    assert labelsift.read_report() == {}


@pytest.mark.parametrize("kind", ["path", "shards"])
def test_rereads_in_small_batches_and_the_memory_fallback(tmp_path, monkeypatch, kind):
    """Re-reads fetch the named rows in batches (each next batch asked for
    ahead, no read-around); a re-read that would hold more rows than the
    memory share allows falls back to the two-pass plan -- same mask."""
    from labelsift._cl import oneread
    y, P = flat_dump(6000, 200, seed=11)
    src = _as(kind, P, tmp_path)
    monkeypatch.setattr(oneread, "REREAD_BATCH", 7)
    monkeypatch.setattr(oneread, "PAIR_SLOTS", 0)  # no pair table: the tail selections need re-reads
    with labelsift.options(reads="two"):
        want = labelsift.find_label_issues(y, src)
    with labelsift.options(reads="one"):
        got = labelsift.find_label_issues(y, src)
    rep = labelsift.read_report()
    assert rep["rows_reread"] > 7 and rep["exact"]
    assert np.array_equal(got, want)
    monkeypatch.setattr(oneread, "REREAD_MIN_ROWS", 1)
    monkeypatch.setattr(oneread, "REREAD_FRAC", 1e-9)
    with labelsift.options(reads="one"):
        got = labelsift.find_label_issues(y, src)
    assert not labelsift.read_report()["exact"] and np.array_equal(got, want)


@pytest.mark.parametrize("name", ["flat_k200", "peaked", "ties", "float16"])
@pytest.mark.parametrize("kind", ["path", "memmap", "shards"])
def test_confident_joint_and_latent_from_one_read(name, kind, tmp_path):
    """compute_confident_joint (raw and calibrated, with the off-diagonal
    rows) and the latent estimates read the dump once (plus re-reads of the
    rows whose confident guess the sketch cannot prove): the two-pass
    plan's results, bit for bit."""
    y, P = _data(name)
    src = _as(kind, P, tmp_path)
    for ties in ("cleanlab", "lower_index"):
        for calibrate in (False, True):
            with labelsift.options(reads="two"):
                want = labelsift.compute_confident_joint(y, src, calibrate=calibrate, ties=ties,
                                                         return_indices_of_off_diagonals=True)
            with labelsift.options(reads="one"):
                got = labelsift.compute_confident_joint(y, src, calibrate=calibrate, ties=ties,
                                                        return_indices_of_off_diagonals=True)
            assert labelsift.read_report()["exact"]
            for a, b in zip(got, want):
                assert a.dtype == b.dtype and a.flags.f_contiguous == b.flags.f_contiguous
                assert np.array_equal(a, b)
        with labelsift.options(reads="two"):
            want = labelsift.estimate_py_and_noise_matrices_from_probabilities(y, src, ties=ties)
        with labelsift.options(reads="one"):
            got = labelsift.estimate_py_and_noise_matrices_from_probabilities(y, src, ties=ties)
        assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_confident_joint_one_read_rereads_open_guesses(tmp_path, monkeypatch):
    """Flat rows leave guesses the floors cannot prove early in the sweep:
    those rows are read again, and a cap too small for them falls back."""
    from labelsift._cl import oneread
    y, P = flat_dump(3000, 1000, seed=1)  # few rows per class: weak floors early in the sweep
    src = _as("path", P, tmp_path)
    with labelsift.options(reads="two"):
        want = labelsift.compute_confident_joint(y, src, calibrate=False)
    with labelsift.options(reads="one"):
        got = labelsift.compute_confident_joint(y, src, calibrate=False)
    rep = labelsift.read_report()
    assert rep["exact"] and rep["rows_reread"] > 0 and np.array_equal(got, want)
    monkeypatch.setattr(oneread, "REREAD_MIN_ROWS", 1)
    monkeypatch.setattr(oneread, "REREAD_FRAC", 1e-9)
    with labelsift.options(reads="one"):
        got = labelsift.compute_confident_joint(y, src, calibrate=False)
    assert not labelsift.read_report()["exact"] and np.array_equal(got, want)


def _resident_pages(mm_array) -> int:
    """How many pages of a mapped array are in memory (mincore through ctypes)."""
    import ctypes
    import mmap as _mmap

    libc = ctypes.CDLL(None, use_errno=True)
    base = mm_array._mmap
    addr = np.frombuffer(base, dtype=np.uint8).ctypes.data
    n = (len(base) + _mmap.PAGESIZE - 1) // _mmap.PAGESIZE
    vec = (ctypes.c_ubyte * n)()
    assert libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(len(base)), vec) == 0
    return sum(v & 1 for v in vec)


@pytest.mark.parametrize("kind", ["path", "memmap", "shards"])
@pytest.mark.parametrize("ties", ["cleanlab", "lower_index"])
def test_drop_behind_sweep_equals_two_passes(kind, ties, tmp_path, monkeypatch):
    """A dump larger than the page cache: the sweep drops the pages it has read (in the
    background thread, with the prefetches); the answer is unchanged."""
    from labelsift._cl import oneread
    monkeypatch.setattr(arrays, "BLOCK_BYTES", 256 << 10)
    monkeypatch.setattr(oneread, "_outgrows_memory", lambda pb: True)
    monkeypatch.setattr(arrays.DirectBlocks, "of", classmethod(lambda cls, seg, step: None))  # the mapped path
    dropped = []
    real = arrays.DropBehind.__call__
    monkeypatch.setattr(arrays.DropBehind, "__call__", lambda self, b: (dropped.append(len(b)), real(self, b)))
    y, P = flat_dump(5000, 120, seed=11)
    src = _as(kind, P, tmp_path)
    got, want = _both(y, src, ties)
    assert np.array_equal(got, want) and labelsift.read_report()["exact"]
    assert sum(dropped) >= len(y) - 2 * arrays.Probs.block_rows(
        arrays.as_probs(src), 256 << 10) * (3 if kind == "shards" else 1)


def test_drop_behind_unmaps_and_evicts_only_read_only_mappings(tmp_path):
    P = np.random.default_rng(0).random((2048, 64), dtype=np.float32)  # 512 KiB: 128 pages
    path = str(tmp_path / "p.npy")
    np.save(path, P)
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())  # clean pages: the page cache may drop them
    m = np.load(path, mmap_mode="r")
    float(m.sum())  # every page read
    assert _resident_pages(m) > 100
    drop = arrays.DropBehind.of(m)
    assert drop is not None
    drop(m[: len(m) // 2])
    drop.close()
    left = _resident_pages(m)
    assert left <= 128 // 2 + 2, left  # the first half gone (the header page and the edge may stay)
    assert np.array_equal(m, P)  # a later read gets the file's values again
    # copy-on-write and writable mappings are never dropped (a private page would be lost)
    assert arrays.DropBehind.of(np.load(path, mmap_mode="c")) is None
    assert arrays.DropBehind.of(np.load(path, mmap_mode="r+")) is None
    assert arrays.DropBehind.of(np.asarray(P)) is None


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_positioned_rereads_equal_indexing(dtype, tmp_path, monkeypatch):
    """The targeted re-reads read the rows from the file (runs of consecutive rows as one read,
    long runs in pieces, many threads): the same values as indexing the mapping."""
    from labelsift._cl import oneread
    monkeypatch.setattr(oneread, "REREAD_RUN_BYTES", 3 * 37 * np.dtype(dtype).itemsize)  # runs cut in pieces
    rng = np.random.default_rng(3)
    P = rng.random((3000, 37)).astype(dtype)
    path = str(tmp_path / "p.npy")
    np.save(path, P)
    m = np.load(path, mmap_mode="r")
    local = np.unique(np.concatenate([rng.choice(3000, 400, replace=False), np.arange(100, 130), [2999]]))
    out = np.full((len(local) + 50, 37), -1, dtype)
    pos = np.sort(rng.choice(len(out), len(local), replace=False))
    assert oneread._pread_rows(m, local, out, pos)
    assert np.array_equal(out[pos], P[local])
    rest = np.setdiff1d(np.arange(len(out)), pos)
    assert (out[rest] == -1).all()
    # not plain rows of a file: the caller reads through the mapping instead
    assert not oneread._pread_rows(np.asarray(P), local, out, pos)
    assert not oneread._pread_rows(m[:, ::2], local, out[:, :19], pos)


def _direct_or_skip(m, step):
    d = arrays.DirectBlocks.of(m, step)
    if d is None:
        pytest.skip("no O_DIRECT on this file system (tmpfs?)")
    return d


@pytest.mark.parametrize("kind", ["path", "memmap", "shards"])
@pytest.mark.parametrize("ties", ["cleanlab", "lower_index"])
def test_direct_sweep_equals_two_passes(kind, ties, tmp_path, monkeypatch):
    """A dump larger than the page cache: the one-read sweep reads it with O_DIRECT (no page cache)
    into a ring of buffers; the answer is unchanged."""
    from labelsift._cl import oneread
    monkeypatch.setattr(arrays, "BLOCK_BYTES", 200 << 10)
    monkeypatch.setattr(arrays, "DIRECT_PIECE", 64 << 10)  # several reads a block
    monkeypatch.setattr(oneread, "_outgrows_memory", lambda pb: True)
    y, P = flat_dump(5000, 123, seed=12)  # 492-byte rows: blocks start off the 4 KB grid
    src = _as(kind, P, tmp_path)
    used = []
    real = arrays.DirectBlocks.of.__func__
    monkeypatch.setattr(arrays.DirectBlocks, "of", classmethod(lambda cls, seg, step: used.append(1) or real(cls, seg, step)))
    _direct_or_skip(np.load(str(tmp_path / "p.npy"), mmap_mode="r"), 10).close()
    got, want = _both(y, src, ties)
    assert used and np.array_equal(got, want) and labelsift.read_report()["exact"]


def test_direct_blocks_read_every_row_and_name_a_truncated_file(tmp_path, monkeypatch):
    monkeypatch.setattr(arrays, "DIRECT_PIECE", 8 << 10)
    P = np.random.default_rng(1).random((3001, 37)).astype(np.float32)
    path = str(tmp_path / "p.npy")
    np.save(path, P)
    m = np.load(path, mmap_mode="r")
    for step in (1, 7, 1000, 5000):
        with _direct_or_skip(m, step) as d:
            got = [(a, b.copy()) for a, b in d]
        assert [a for a, _ in got] == list(range(0, 3001, step))
        assert np.array_equal(np.concatenate([b for _, b in got]), P)
    d = _direct_or_skip(m, 500)
    os.truncate(path, os.path.getsize(path) - 3000)
    with pytest.raises(ValueError, match="truncated"):
        with d:
            for _ in d:
                pass


def test_direct_reads_refused_fall_back_to_the_mapping(tmp_path, monkeypatch):
    """A file system that opens with O_DIRECT but refuses the reads: no direct reader, and the
    one-read sweep still gives the two-pass answer through the mapping."""
    from labelsift._cl import oneread
    y, P = flat_dump(3000, 60, seed=13)
    src = _as("path", P, tmp_path)
    real = os.preadv

    def refuse(fd, bufs, off, *a):
        if os.get_blocking(fd) and (os.O_DIRECT & __import__("fcntl").fcntl(fd, __import__("fcntl").F_GETFL)):
            raise OSError(22, "Invalid argument")
        return real(fd, bufs, off, *a)
    monkeypatch.setattr(arrays.os, "preadv", refuse)
    assert arrays.DirectBlocks.of(np.load(src, mmap_mode="r"), 100) is None
    monkeypatch.setattr(oneread, "_outgrows_memory", lambda pb: True)
    got, want = _both(y, src, "lower_index")
    assert np.array_equal(got, want)


@pytest.mark.parametrize("name", ["flat_k200", "ties", "float16", "flat_k10"])
@pytest.mark.parametrize("ties", ["cleanlab", "lower_index"])
@pytest.mark.parametrize("slots,cap", [(0, 64), (3, 64), (0, 3)])
def test_later_rounds_look_again_only_at_open_pairs(name, ties, slots, cap, tmp_path, monkeypatch):
    """The rounds after a re-read start from the selections the last round
    settled (the memo): every round's answer -- mask, uncertain rows, rows to
    read -- equals a fresh computation on the same sketch."""
    from labelsift._cl import oneread, sketch
    y, P = _data(name)
    monkeypatch.setattr(oneread, "PAIR_SLOTS", slots)
    monkeypatch.setattr(oneread, "CAP", cap)  # small sketches: more rows read again, over more rounds
    monkeypatch.setattr(oneread, "AVG", min(cap, oneread.AVG))
    monkeypatch.setattr(oneread, "SLICE_BYTES", 48 << 10)
    path = _as("path", P, tmp_path)
    real = oneread.result
    seen = {"incremental": 0, "rounds": 0}

    def checked(sk, ties_, with_latent=True, memo=None):
        incremental = memo is not None and "select" in memo
        got = real(sk, ties_, with_latent=with_latent, memo=memo)
        fresh = real(sk, ties_, with_latent=with_latent, memo=None)
        for f in ("label_issues", "uncertain", "to_refine", "exact", "num_uncertain"):
            assert np.array_equal(getattr(got, f), getattr(fresh, f)), f
        seen["incremental"] += incremental
        seen["rounds"] += 1
        return got

    monkeypatch.setattr(oneread, "result", checked)
    monkeypatch.setattr(sketch, "result", checked)
    got, want = _both(y, path, ties)
    assert np.array_equal(got, want)
    if slots == 0 and name == "flat_k200":
        assert seen["rounds"] > 1, seen
    if seen["rounds"] > 1:
        assert seen["incremental"] == seen["rounds"] - 1, seen
