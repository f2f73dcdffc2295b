"""Label issues of a sharded dump with torchrun: each rank reads only its rows.

    torchrun --nproc_per_node 4 examples/torchrun_find_issues.py \
        --labels labels.npy --pred-probs probs.npy [more shards.npy ...] --out issues.csv

The rows are split into consecutive, nearly equal ranges, one per rank (read
through memory maps: a rank touches only its own pages). Every rank gets the
same ranked list of label issues -- the single-process
``labelsift.find_label_issues(..., return_indices_ranked_by=...)`` -- and rank 0
writes the CSV atomically (index, given_label, suggested_label, quality_score,
the columns of ``labelsift find-issues``). ``--backend nccl`` on GPU nodes
(the rows are still read on the host), gloo otherwise.
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", required=True)
    ap.add_argument("--pred-probs", required=True, nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--filter-by", default="prune_by_noise_rate")
    ap.add_argument("--rank-by", default="self_confidence")
    ap.add_argument("--backend", default="gloo")
    args = ap.parse_args()

    import torch.distributed as dist

    import labelsift
    import labelsift.distributed as ld

    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    shards = [np.load(p, mmap_mode="r") for p in args.pred_probs]
    starts = np.cumsum([0] + [len(s) for s in shards])
    n = int(starts[-1])
    lo, hi = n * rank // world, n * (rank + 1) // world
    # this rank's rows, as a list of row views of the shards it overlaps (no copy)
    mine = [s[max(lo, a) - a: min(hi, b) - a] for s, a, b in zip(shards, starts[:-1], starts[1:]) if a < hi and b > lo]
    local = mine if len(mine) > 1 else (mine[0] if mine else shards[0][:0])
    labels = np.load(args.labels, mmap_mode="r")
    t0 = time.perf_counter()
    ranked = ld.find_label_issues(labels[lo:hi], local, filter_by=args.filter_by,
                                  return_indices_ranked_by=args.rank_by)
    seconds = time.perf_counter() - t0
    if rank == 0:
        def rows_of(idx):
            for i in idx:
                s = int(np.searchsorted(starts, i, side="right") - 1)
                yield shards[s][i - starts[s]]
        P = np.array(list(rows_of(ranked))) if len(ranked) else np.empty((0, shards[0].shape[1]))
        y = np.asarray(labels[ranked], dtype=np.int64)
        scores = labelsift.get_label_quality_scores(y, P, method=args.rank_by) if len(ranked) else np.empty(0)

        def write(f):
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["index", "given_label", "suggested_label", "quality_score"])
            for i, g, s, q in zip(ranked, y, P.argmax(1) if len(P) else [], scores):
                w.writerow([int(i), int(g), int(s), repr(float(q))])

        from labelsift._common.output import atomic_write
        atomic_write(args.out, write, what="--out")
        print(json.dumps({"rows": n, "ranks": world, "label_issues": int(len(ranked)), "seconds": round(seconds, 3),
                          "out": os.path.abspath(args.out), "bytes_received_rank0": ld.comm_report()["received_bytes"]}))
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
