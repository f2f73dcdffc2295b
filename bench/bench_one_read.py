"""One read against the two-pass plan on a .npy dump, page cache dropped
before each call (posix_fadvise DONTNEED): bytes actually read from the
file (/proc/self/io read_bytes), rows re-read, wall time, identical masks.

    python bench/bench_one_read.py --n 500000 --k 1000 --kind flat|peaked [--path /tmp/dump.npy]

The dump is generated block by block (never whole in memory).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import labelsift  # noqa: E402
from labelsift._common import trace  # noqa: E402
from bench_sketch import flat_dump  # noqa: E402


def read_bytes() -> int:
    with open("/proc/self/io") as fh:
        for line in fh:
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    return -1


def drop_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def disk_rate(path: str, nbytes: int, threads: int = 4) -> float:
    """GB/s of reading the file's first ``nbytes`` in 16 MB pieces, ``threads`` reads in flight
    (one read at a time understates a shared virtual disk 3x); page cache dropped before and after."""
    import threading

    drop_cache(path)
    fd = os.open(path, os.O_RDONLY)
    chunk = 16 << 20
    nxt = [0]
    lock = threading.Lock()

    def work():
        mv = memoryview(bytearray(chunk))
        while True:
            with lock:
                off = nxt[0]
                nxt[0] += chunk
            if off >= nbytes:
                return
            os.preadv(fd, [mv], off)

    t = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    dt = time.perf_counter() - t
    os.close(fd)
    drop_cache(path)
    return nbytes / 1e9 / dt


def write(path, n, k, kind, block=20000):
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, k))
    labels = np.empty(n, np.int64)
    for a in range(0, n, block):
        m = min(block, n - a)
        # peaked: softmax of N(0, 1) + 9 on the true class, 10 % uniform flips
        y, p = flat_dump(m, k, seed=a) if kind == "flat" else flat_dump(m, k, seed=a, bump=9.0, spread=1.0, noise=0.1)
        out[a:a + m] = p
        labels[a:a + m] = y
    out.flush()
    del out
    return labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--kind", choices=["flat", "peaked"], default="flat")
    ap.add_argument("--path", default="/tmp/labelsift_one_read.npy")
    ap.add_argument("--ties", default="lower_index")
    ap.add_argument("--reads", default="two,one", help="which plans to run, in order")
    ap.add_argument("--keep", action="store_true", help="keep the dump (and reuse one of the same shape)")
    ap.add_argument("--floor-gb", type=float, default=4.0,
                    help="before each plan, read this many GB of the file to measure the disk (0: skip)")
    a = ap.parse_args()
    lpath = a.path + ".labels.npy"
    if a.keep and os.path.exists(a.path) and os.path.exists(lpath) and \
            np.load(a.path, mmap_mode="r").shape == (a.n, a.k):
        labels = np.load(lpath)
    else:
        labels = write(a.path, a.n, a.k, a.kind)
        if a.keep:
            np.save(lpath, labels)
    size = os.path.getsize(a.path)
    res = {}
    times = {}
    for reads in a.reads.split(","):
        floor_s = None
        if a.floor_gb > 0:
            rate = disk_rate(a.path, int(a.floor_gb * 1e9))
            floor_s = size / 1e9 / rate
            print(f"disk: {rate:.2f} GB/s (first {a.floor_gb:g} GB, 4 reads in flight) -> one read of the file "
                  f"{floor_s:.1f} s")
        drop_cache(a.path)
        b0, t0 = read_bytes(), time.perf_counter()
        with labelsift.options(reads=reads), trace.recording() as stages:
            mask = labelsift.find_label_issues(labels, a.path, ties=a.ties)
        dt, rb = time.perf_counter() - t0, read_bytes() - b0
        if reads in res and not np.array_equal(res[reads], mask):
            print(f"reads={reads}: a repeated run gave another mask")
        res[reads] = mask
        extra = labelsift.read_report() if reads == "one" else {}
        print(f"reads={reads}: {dt:.2f} s, read {rb / 1e9:.2f} GB = {rb / size:.2f}x the file ({size / 1e9:.2f} GB), "
              f"flagged {int(mask.sum())}" + (f", rows re-read {extra['rows_reread']} in {extra['rounds']} rounds, "
                                              f"{extra['entries_per_row']:.1f} entries/row" if extra else ""))
        print("  stages:", ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
        if floor_s:
            print(f"  {dt / floor_s:.2f}x the floor measured just before")
        times.setdefault(reads, []).append(dt)
    if len(res) == 2:
        print("identical:", np.array_equal(res["one"], res["two"]))
        print(f"two / one: {np.mean(times['two']) / np.mean(times['one']):.2f}x (means over the runs above)")
    if not a.keep:
        os.unlink(a.path)


if __name__ == "__main__":
    main()
