"""Exact k-NN on embeddings already on the GPU (issue 12): labelsift's
device search against a PyTorch baseline (float32 ``mm`` + ``topk`` over
tiles) and against the tensor-core floor, measured in the same run.

    python bench/bench_gpu_knn.py --out gpu_knn.json [--n 1281167 --d 512 --k 10] [--budget 150]

* X: N x d float32 clustered embeddings (1000 centres + noise, rows
  normalised) built on the device with torch;
* ``bf16_tflops``: the measured bf16 matrix-product rate (torch.mm,
  8192 x 8192 x d products, best of 5); ``tc_floor_s`` = 2 N^2 d / that rate;
* ``tile_sweep``: labelsift's search on the first --sweep-n rows for a few
  tiles (seconds each), to pick the default;
* ``labelsift[gram]``: the whole search (``knn.search(X, k, metric=
  "cosine")``) for gram in --grams: seconds, fallback rows, the ratio to
  the floor;
* ``torch_baseline_s``: float32 mm + topk(k + 1) over tiles of 8192 query
  rows x 131072 database rows, merged per query block, timed on
  --baseline-frac of the query blocks and scaled to all of them;
* ``exact_rows``: for --check rows sampled at random, labelsift's indices
  against labelsift's exhaustive float64 CPU kernel on a host copy
  (np.array_equal per row).

Writes JSON (and prints it) after each stage; stages are skipped when the
budget is spent.
"""
from __future__ import annotations

import argparse
import json
import time

from gpu_bench_common import Run


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_281_167)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--grams", default="tf32,bf16")
    ap.add_argument("--sweep-n", type=int, default=200_000)
    ap.add_argument("--tiles", default="4096x16384,8192x32768,16384x65536")
    ap.add_argument("--baseline-frac", type=float, default=0.05)
    ap.add_argument("--check", type=int, default=32)
    ap.add_argument("--out", default="gpu_knn.json")
    ap.add_argument("--budget", type=float, default=150.0, help="seconds this script may take in all")
    args = ap.parse_args()
    run = Run(args.out, args.budget, n=args.n, d=args.d, k=args.k, metric="cosine")
    res, write, left = run.res, run.write, run.left

    import numpy as np

    import labelsift
    from labelsift import knn

    got = run.torch_device()
    if got is None:
        return 1
    torch, dev = got

    def sync():
        torch.cuda.synchronize(dev)

    def timed(fn):
        sync()
        s = time.perf_counter()
        out = fn()
        sync()
        return time.perf_counter() - s, out

    # ---- data --------------------------------------------------------------
    g = torch.Generator(device=dev).manual_seed(0)
    n, d, k = args.n, args.d, args.k
    C = torch.randn(1000, d, device=dev, generator=g)
    X = C[torch.randint(0, 1000, (n,), device=dev, generator=g)] + 0.5 * torch.randn(n, d, device=dev, generator=g)
    X /= X.norm(dim=1, keepdim=True)
    del C
    sync()

    # ---- the tensor-core floor --------------------------------------------
    a = torch.randn(8192, d, device=dev, dtype=torch.bfloat16)
    b = torch.randn(8192, d, device=dev, dtype=torch.bfloat16)
    for _ in range(3):
        torch.mm(a, b.T)
    ts = [timed(lambda: torch.mm(a, b.T))[0] for _ in range(5)]
    res["bf16_tflops"] = 2 * 8192 * 8192 * d / min(ts) / 1e12
    a2 = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    for _ in range(2):
        torch.mm(a2, a2)
    ts = [timed(lambda: torch.mm(a2, a2))[0] for _ in range(3)]
    res["bf16_tflops_8192_cubed"] = 2 * 8192 ** 3 / min(ts) / 1e12
    del a, b, a2
    res["tc_floor_s"] = 2.0 * n * n * d / (res["bf16_tflops"] * 1e12)
    write()

    # ---- tile sweep on a slice -----------------------------------------------
    sweep = []
    sn = min(args.sweep_n, n)
    Xs = X[:sn]
    for spec in args.tiles.split(","):
        if left() < 30:
            break
        bq, bc = (int(v) for v in spec.split("x"))
        try:
            knn.search(Xs[:4096], k=k, tile=(bq, bc))  # warm-up (kernels, cuBLAS handles)
            t, (_, _, info) = timed(lambda: knn.search(Xs, k=k, tile=(bq, bc), return_info=True))
            sweep.append({"tile": [bq, bc], "s": t, "fallback_rows": info.fallback_rows, "gram": info.gram,
                          "floor_s": 2.0 * sn * sn * d / (res["bf16_tflops"] * 1e12)})
        except Exception as exc:  # noqa: BLE001 -- record and go on
            sweep.append({"tile": [bq, bc], "error": f"{type(exc).__name__}: {exc}"})
        res["tile_sweep"] = {"n": sn, "runs": sweep}
        write()
    ok_runs = [r for r in sweep if "s" in r]
    tile = tuple(min(ok_runs, key=lambda r: r["s"])["tile"]) if ok_runs else None
    res["tile"] = tile

    # ---- the whole search ----------------------------------------------------
    results = {}
    for gram in args.grams.split(","):
        if left() < 20:
            results[gram] = {"skipped": "budget"}
            continue
        try:
            t, (idx, dist, info) = timed(lambda: knn.search(X, k=k, tile=tile, gram=gram, return_info=True))
            results[gram] = {"s": t, "fallback_rows": info.fallback_rows, "candidates": info.candidates,
                             "over_tc_floor": t / res["tc_floor_s"], "tile": list(info.tile)}
            res.setdefault("_idx", {})[gram] = idx
        except Exception as exc:  # noqa: BLE001
            results[gram] = {"error": f"{type(exc).__name__}: {exc}"}
        res["labelsift"] = results
        write_res = {kk: v for kk, v in res.items() if kk != "_idx"}
        with open(args.out, "w") as fh:
            json.dump(write_res, fh, indent=2)
    idxs = res.pop("_idx", {})
    write()

    # ---- PyTorch baseline: float32 mm + topk over tiles ------------------------
    if left() > 20:
        bq, bc = 8192, 131072
        nblocks = -(-n // bq)
        nb = max(1, int(round(args.baseline_frac * nblocks)))

        def baseline():
            for qb in range(nb):
                q0 = qb * bq
                Q = X[q0:q0 + bq]
                bestv = bestI = None
                for c0 in range(0, n, bc):
                    S = Q @ X[c0:c0 + bc].T
                    v, i = torch.topk(S, k + 1, dim=1)
                    i += c0
                    if bestv is None:
                        bestv, bestI = v, i
                    else:
                        v2 = torch.cat([bestv, v], 1)
                        i2 = torch.cat([bestI, i], 1)
                        bestv, pos = torch.topk(v2, k + 1, dim=1)
                        bestI = torch.gather(i2, 1, pos)
            return bestI

        from labelsift._knn.device import TorchOps

        with TorchOps(0)._fp32_mode(False):  # IEEE float32 products (TF32 off), through torch's own switch
            t, _ = timed(baseline)
        res["torch_baseline"] = {"blocks_timed": nb, "blocks": nblocks, "s_timed": t, "s": t * nblocks / nb,
                                 "tile": [bq, bc], "mm": "float32 (TF32 off)"}
        for gram, r in results.items():
            if "s" in r:
                r["speedup_vs_torch"] = res["torch_baseline"]["s"] / r["s"]
        write()

    # ---- exactness on sampled rows ----------------------------------------------
    if idxs and left() > 15:
        from labelsift._common.backend import core, threads
        from labelsift._knn.search import METRICS

        rng = np.random.default_rng(1)
        rows = np.sort(rng.choice(n, min(args.check, n), replace=False)).astype(np.int64)
        Xh = X.cpu().numpy()
        c = core()
        nt = threads(None)
        norms = c.knn_norms2(Xh, nt)
        t, (ri, _) = timed(lambda: c.knn_exhaustive(Xh, rows, rows, Xh, norms, norms, METRICS["cosine"], k, nt))
        res["exact_check"] = {"rows": len(rows), "cpu_exhaustive_s": t}
        for gram, idx in idxs.items():
            got = idx[torch.from_numpy(rows).to(dev)].cpu().numpy()
            res["exact_check"][gram] = int((got == ri).all(axis=1).sum())
        write()
    res["total_s"] = time.perf_counter() - run.t0
    write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
