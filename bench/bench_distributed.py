"""labelsift.distributed (gloo ranks) and labelsift.dask (LocalCluster
workers) against the single-process call on the same .npy dump.

    python bench/bench_distributed.py --n 1281167 --k 1000 --ranks 4 --workers 2 [--path /tmp/dist.npy]
    python bench/bench_distributed.py --volume    # bytes per rank as N, K and ranks vary

Reports wall time of each, that the results are identical, and the bytes
each rank sent/received through labelsift's collectives
(``labelsift.distributed.comm_report``). The page cache is warm for every
run (the dump is read once first), so the times compare computation and
communication, not the disk.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_one_read import write as write_dump  # noqa: E402

RANK_SCRIPT = r'''
import json, sys, time, numpy as np, torch.distributed as dist, labelsift.distributed as ld
rank, world, port, path, labels = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
P = np.load(path, mmap_mode="r") if path.endswith(".npy") else None
y = np.load(labels, mmap_mode="r")
n = len(y)
lo, hi = n * rank // world, n * (rank + 1) // world
dist.barrier()
t = time.perf_counter()
mask = ld.find_label_issues(y[lo:hi], P[lo:hi])
dist.barrier()
sec = time.perf_counter() - t
np.save(sys.argv[6] + f".{rank}.npy", mask)
print(json.dumps({"rank": rank, "seconds": sec, **ld.comm_report()}))
dist.destroy_process_group()
'''


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path, lpath, n, k):
    np.save(lpath, write_dump(path, n, k, "peaked"))


def gloo(path, lpath, ranks, threads):
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "rank.py")
        with open(script, "w") as fh:
            fh.write(RANK_SCRIPT)
        port = _port()
        env = dict(os.environ, LABELSIFT_MAX_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        t = time.perf_counter()
        ps = [subprocess.Popen([sys.executable, script, str(r), str(ranks), str(port), path, lpath,
                                os.path.join(tmp, "mask")], env=env, stdout=subprocess.PIPE, text=True)
              for r in range(ranks)]
        outs = [json.loads(p.communicate(timeout=3600)[0].strip().splitlines()[-1]) for p in ps]
        wall = time.perf_counter() - t
        mask = np.concatenate([np.load(os.path.join(tmp, f"mask.{r}.npy")) for r in range(ranks)])
    return {"ranks": ranks, "call_seconds": max(o["seconds"] for o in outs), "wall_with_startup_s": wall,
            "per_rank": outs}, mask


def dask_run(path, lpath, workers, chunk_rows):
    import distributed

    import labelsift.dask as ldk
    y = np.load(lpath)
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=max(1, os.cpu_count() // workers),
                                  processes=True, dashboard_address=None) as cl, distributed.Client(cl):
        X = ldk.from_npy_shards([path], rows_per_chunk=chunk_rows)
        t = time.perf_counter()
        mask = ldk.find_label_issues(y, X).compute()
        sec = time.perf_counter() - t
    return {"workers": workers, "chunks": int(X.numblocks[0]), "seconds": sec}, mask


def volume():
    """Bytes per rank of find_label_issues for several N, K, ranks (in-memory rows, small runs)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, k, r in [(100_000, 100, 2), (200_000, 100, 2), (200_000, 400, 2), (200_000, 100, 4)]:
            path, lpath = os.path.join(tmp, "p.npy"), os.path.join(tmp, "y.npy")
            write(path, lpath, n, k)
            res, _ = gloo(path, lpath, r, 1)
            recv = [o["received_bytes"] for o in res["per_rank"]]
            sent = [o["sent_bytes"] for o in res["per_rank"]]
            rows.append({"n": n, "k": k, "ranks": r, "max_received_bytes": max(recv), "max_sent_bytes": max(sent),
                         "received_per_row": max(recv) / n, "values_bytes": n * k * 4})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_281_167)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--path", default=None)
    ap.add_argument("--volume", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import labelsift
    info = {"cpu": platform.processor() or "", "cores": os.cpu_count(), "labelsift": labelsift.__version__}
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if args.volume:
        res = {"machine": info, "volume": volume()}
    else:
        path = args.path or os.path.join(tempfile.gettempdir(), f"dist_{args.n}x{args.k}.npy")
        lpath = path[:-4] + "_labels.npy"
        if not (os.path.exists(path) and os.path.exists(lpath)):
            write(path, lpath, args.n, args.k)
        P = np.load(path, mmap_mode="r")
        y = np.load(lpath)
        for a in range(0, len(P), 65536):  # warm the page cache
            np.asarray(P[a:a + 65536]).sum()
        t = time.perf_counter()
        want = labelsift.find_label_issues(y, path)
        single = time.perf_counter() - t
        print(json.dumps({"single_process_s": single}), flush=True)
        g, gm = gloo(path, lpath, args.ranks, max(1, os.cpu_count() // args.ranks))
        print(json.dumps(g), flush=True)
        d, dm = dask_run(path, lpath, args.workers, 65536)
        print(json.dumps(d), flush=True)
        res = {"machine": info, "n": args.n, "k": args.k, "single_process_s": single, "gloo": g, "dask": d,
               "identical": {"gloo": bool(np.array_equal(gm, want)), "dask": bool(np.array_equal(dm, want))},
               "label_issues": int(want.sum())}
    print(json.dumps(res, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
