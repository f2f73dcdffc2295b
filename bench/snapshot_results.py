#!/usr/bin/env python
"""Record every public result on fixed inputs, or compare with a recording.

A refactoring must not change one bit of any result. This script calls every
public confident-learning function (every ``filter_by``, ranking, score,
``adjust_pred_probs``, the streaming accumulator) on the embedded CIFAR-10
dump and on seeded generated dumps (float16/32/64, K up to 1000, absent and
singleton classes, tie-heavy rows), and writes all outputs to an ``.npz``::

    python bench/snapshot_results.py --write before.npz     # on the old commit
    python bench/snapshot_results.py --compare before.npz   # on the new one

``--compare`` exits 1 and lists the differing outputs unless every array is
bit-identical (``np.array_equal`` with the same dtype and shape).
"""
from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np


def _dumps():
    from labelsift.datasets import cifar10_test

    d = cifar10_test()
    yield "cifar10", d.labels, d.pred_probs
    for seed, (n, k, dtype, absent, ties) in enumerate([
        (3000, 10, np.float32, 0, False),
        (3000, 10, np.float64, 1, False),
        (4000, 37, np.float16, 2, False),
        (5000, 100, np.float32, 0, True),
        (20000, 1000, np.float32, 3, False),
        (2000, 5, np.float64, 0, True),
    ]):
        rng = np.random.default_rng(100 + seed)
        present = np.setdiff1d(np.arange(k), rng.choice(k, absent, replace=False))
        true = rng.choice(present, n)
        logits = rng.normal(0, 1.5, (n, k))
        logits[np.arange(n), true] += rng.normal(4, 2, n)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        if ties:  # rounded probabilities: many exactly equal values and margins
            p = np.round(p, 2)
            p[:, 0] += 1 - p.sum(1)
            p = np.clip(p, 0, 1)
            p /= p.sum(1, keepdims=True)
            p[n // 2 :] = p[: n - n // 2]  # duplicated rows
        y = true.copy()
        flip = rng.random(n) < 0.15
        y[flip] = rng.choice(present, int(flip.sum()))
        if k > 2:  # a singleton class
            y[0] = present[-1]
            y[y == present[-1]] = present[-2]
            y[0] = present[-1]
        yield f"gen{seed}_n{n}_k{k}_{np.dtype(dtype).name}", y, p.astype(dtype)


def results() -> dict:
    import labelsift as L
    from labelsift.stream import ConfidentJointAccumulator

    out = {}
    warnings.simplefilter("ignore")
    for name, y, p in _dumps():
        r = {}
        r["thresholds"] = L.get_confident_thresholds(y, p)
        r["cj"] = L.compute_confident_joint(y, p)
        r["cj_raw"], r["cj_off"] = L.compute_confident_joint(y, p, calibrate=False,
                                                              return_indices_of_off_diagonals=True)
        r["joint"] = L.estimate_joint(y, p)
        for conv in (False, True):
            for m in ("cnt", "eqn", "marginal", "marginal_ps"):
                try:
                    a = L.estimate_py_and_noise_matrices_from_probabilities(
                        y, p, converge_latent_estimates=conv, py_method=m)
                except np.linalg.LinAlgError as exc:  # "eqn" with a singular noise matrix
                    a = [np.array(f"LinAlgError: {exc}")]
                for i, arr in enumerate(a):
                    r[f"latent_{m}_{conv}_{i}"] = arr
        for m in ("off_diagonal", "off_diagonal_calibrated"):
            r[f"num_{m}"] = np.array(L.num_label_issues(y, p, estimation_method=m))
        for fb in ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
                   "predicted_neq_given", "low_normalized_margin", "low_self_confidence"):
            r[f"mask_{fb}"] = L.find_label_issues(y, p, filter_by=fb)
            r[f"mask_{fb}_m5_f05"] = L.find_label_issues(y, p, filter_by=fb, min_examples_per_class=5,
                                                         frac_noise=0.5) if fb in (
                "prune_by_noise_rate", "prune_by_class", "both") else r[f"mask_{fb}"]
        r["mask_given_cj"] = L.find_label_issues(y, p, confident_joint=r["cj"])
        r["mask_remove"] = L.find_label_issues(y, p, filter_by="prune_by_class",
                                               num_to_remove_per_class=np.arange(p.shape[1]) % 4)
        for rb in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
            r[f"ranked_{rb}"] = L.find_label_issues(y, p, return_indices_ranked_by=rb)
            for adj in (False, True):
                if adj and rb == "confidence_weighted_entropy":
                    continue
                r[f"scores_{rb}_{adj}"] = L.get_label_quality_scores(y, p, method=rb, adjust_pred_probs=adj)
        r["ranked_adj"] = L.find_label_issues(y, p, return_indices_ranked_by="normalized_margin",
                                              rank_by_kwargs={"adjust_pred_probs": True})
        r["order"] = L.order_label_issues(r["mask_both"], y, p, rank_by="normalized_margin")
        acc = ConfidentJointAccumulator(p.shape[1], top_m=4)
        perm = np.random.default_rng(0).permutation(len(y))
        for b in np.array_split(perm, 3):
            acc.update(b, y[b], p[b])
        est = acc.result()
        for f in ("thresholds", "confident_joint", "noise_matrix", "py", "label_issues", "uncertain", "to_refine"):
            r[f"stream_{f}"] = getattr(est, f)
        r["stream_exact"] = np.array([est.exact, est.counts_exact, est.num_uncertain])
        for key, v in r.items():
            out[f"{name}/{key}"] = np.asarray(v)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", metavar="NPZ")
    g.add_argument("--compare", metavar="NPZ")
    a = ap.parse_args(argv)
    res = results()
    if a.write:
        np.savez_compressed(a.write, **res)
        print(f"wrote {len(res)} arrays to {a.write}")
        return 0
    old = dict(np.load(a.compare))
    bad = sorted(set(old) ^ set(res))
    for key in sorted(set(old) & set(res)):
        o, n = old[key], res[key]
        if o.dtype != n.dtype or o.shape != n.shape or not np.array_equal(o, n, equal_nan=o.dtype.kind == "f"):
            bad.append(key)
    for key in bad:
        print(f"DIFFERS: {key}")
    print(f"{len(res)} arrays compared, {len(bad)} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
