"""One NCCL rank on the lent GPU (world size 1, or torchrun for more): the
labelsift.distributed calls and Sinkhorn with group= over NCCL give the
single-process results. Writes JSON to --out.

    python bench/nccl_check.py --out $OUT/nccl.json
"""
import argparse
import json
import os
import socket
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend", default="nccl", help="gloo: the same check on the CPU")
    args = ap.parse_args()
    res = {"ok": False}
    try:
        import torch
        import torch.distributed as dist

        import labelsift
        import labelsift.distributed as ld
        from labelsift import sinkhorn
        if "RANK" not in os.environ:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            dist.init_process_group(args.backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
        else:
            dist.init_process_group(args.backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        if args.backend == "nccl":
            torch.cuda.set_device(rank % torch.cuda.device_count())
        rng = np.random.default_rng(0)
        n, k = 200_000, 100
        P = rng.dirichlet(np.ones(k) * 0.2, n).astype(np.float32)
        y = np.where(rng.random(n) < 0.8, P.argmax(1), rng.integers(0, k, n))
        lo, hi = n * rank // world, n * (rank + 1) // world
        t = time.perf_counter()
        mask = ld.find_label_issues(y[lo:hi], P[lo:hi])
        sec = time.perf_counter() - t
        want = labelsift.find_label_issues(y, P)[lo:hi]
        S = rng.normal(size=(50_000, 300)).astype(np.float32)
        labs = sinkhorn.self_label(S, n_iter=5, group=True) if world == 1 else None
        sk_ok = bool(np.array_equal(labs, sinkhorn.self_label(S, n_iter=5))) if labs is not None else None
        res = {"ok": bool(np.array_equal(mask, want)) and sk_ok is not False, "backend": dist.get_backend(),
               "world": world, "find_label_issues_identical": bool(np.array_equal(mask, want)),
               "find_label_issues_s": sec, "sinkhorn_identical": sk_ok, "comm": ld.comm_report(),
               "device": torch.cuda.get_device_name() if args.backend == "nccl" else "cpu"}
        dist.destroy_process_group()
    except Exception as exc:  # noqa: BLE001 - the report says what failed
        res["error"] = f"{type(exc).__name__}: {exc}"
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
