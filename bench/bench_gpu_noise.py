"""HOC on embeddings already on the GPU (issue 12): every round's in-sample
search, canonical distances and consensus counts on the device
(labelsift._noise.device) against the CPU path on a host copy, in the same
run, with the answers compared.

    python bench/bench_gpu_noise.py --out gpu_noise.json [--n 1281167 --d 512 --m 35000] [--budget 70]

* X: N x d float32 clustered embeddings (--classes centres + noise) built on
  the device with torch; labels: the centre, 20 % replaced at random;
* ``device_round_s``: ``noise.hoc(X_cuda, rounds=R, steps=1)`` over R
  rounds of m-row samples, per round (steps=1: the solver only evaluates);
* ``cpu_round_s``: the same call on the host copy with rounds=1 (the CPU
  path's exact search of one 35000-row sample), and ``speedup``;
* ``equal``: the one-round consensus (codes, values) and noise matrix of
  the two paths np.array_equal;
* ``tf32_tflops`` (torch.mm, 8192 x 8192 x d, best of 5) and
  ``round_floor_s`` = 2 m^2 d / that rate: the products one round needs.
"""
from __future__ import annotations

import argparse
import time

from gpu_bench_common import Run


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_281_167)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--m", type=int, default=35000)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--out", default="gpu_noise.json")
    ap.add_argument("--budget", type=float, default=70.0)
    args = ap.parse_args()
    run = Run(args.out, args.budget, n=args.n, d=args.d, m=args.m, classes=args.classes)
    res, write, left = run.res, run.write, run.left

    import numpy as np

    import labelsift
    from labelsift import noise

    got = run.torch_device()
    if got is None:
        return 1
    torch, dev = got
    g = torch.Generator(device=dev).manual_seed(0)
    K = args.classes
    centres = torch.randn(K, args.d, device=dev, generator=g)
    true = torch.randint(0, K, (args.n,), device=dev, generator=g)
    X = centres[true] + 0.7 * torch.randn(args.n, args.d, device=dev, generator=g)
    rng = np.random.default_rng(0)
    t = true.cpu().numpy()
    y = np.where(rng.random(args.n) < 0.2, rng.integers(0, K, args.n), t)
    torch.cuda.synchronize(dev)

    a = torch.randn(8192, args.d, device=dev)
    b = torch.randn(8192, args.d, device=dev)
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    best = float("inf")
    for _ in range(5):
        torch.cuda.synchronize(dev)
        s = time.perf_counter()
        a @ b.T
        torch.cuda.synchronize(dev)
        best = min(best, time.perf_counter() - s)
    torch.backends.cuda.matmul.allow_tf32 = prev
    res["tf32_tflops"] = 2 * 8192 * 8192 * args.d / best / 1e12
    res["round_floor_s"] = 2 * args.m ** 2 * args.d / (res["tf32_tflops"] * 1e12)
    write()

    kw = dict(sample_size=args.m, steps=1, seed=0)
    noise.hoc(X[:20000], y[:20000], K, rounds=1, **dict(kw, sample_size=5000))  # warm-up (kernels, cuBLAS)
    torch.cuda.synchronize(dev)
    s = time.perf_counter()
    dres = noise.hoc(X, y, K, rounds=args.rounds, **kw)
    torch.cuda.synchronize(dev)
    res["device_round_s"] = (time.perf_counter() - s) / args.rounds
    res["device_recomputed_rows"] = int(dres.recomputed_rows)
    write()

    if left() < 30:
        res["skipped"] = "cpu comparison: budget spent"
        write()
        return 0
    Xh = X.cpu().numpy()
    one_d = noise.hoc(X, y, K, rounds=1, **kw)
    s = time.perf_counter()
    one_c = noise.hoc(Xh, y, K, rounds=1, **kw)
    res["cpu_round_s"] = time.perf_counter() - s
    res["speedup"] = res["cpu_round_s"] / res["device_round_s"]
    res["equal"] = bool(np.array_equal(one_d.consensus.codes, one_c.consensus.codes)
                        and np.array_equal(one_d.consensus.values, one_c.consensus.values)
                        and np.array_equal(one_d.noise_matrix, one_c.noise_matrix))
    write()
    return 0 if res["equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
