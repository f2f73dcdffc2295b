"""The ``labelsift`` command line.

    labelsift example                       confident learning on the embedded CIFAR-10 test set
    labelsift find-issues --labels L.npy --pred-probs P.npy [P2.npy ...] [--filter-by ...] [--out issues.csv]
    labelsift noise-matrix --labels L.npy --pred-probs P.npy [...] [--out noise.json]
    labelsift scores --labels L.npy --pred-probs P.npy [...] [--method ...] [--out scores.csv]

A JSON summary goes to stdout; files are written atomically (temporary file,
then rename). Bad input exits with code 2 and a one-line message on stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np


def _atomic_write(path: str, write) -> None:
    d = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".labelsift-", dir=d)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_write_bytes(path: str, data: bytes) -> None:
    d = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".labelsift-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _format_matrix(m: np.ndarray, names) -> str:
    width = max(6, *(len(n) for n in names)) + 1
    head = " " * width + "".join(f"{n[:7]:>8}" for n in names)
    rows = [f"{names[i]:<{width}}" + "".join(f"{v:8.3f}" for v in m[i]) for i in range(len(m))]
    return "\n".join([head, *rows])


def _example(args) -> int:
    import labelsift as ls
    from labelsift.datasets import cifar10_test

    d = cifar10_test()
    ranked = ls.find_label_issues(d.labels, d.pred_probs, return_indices_ranked_by="self_confidence")
    py, noise, _inv, _cj = ls.estimate_py_and_noise_matrices_from_probabilities(d.labels, d.pred_probs)
    names = d.class_names
    found = set(ranked.tolist())
    confirmed = set(d.confirmed_errors.tolist())
    print(f"labelsift {ls.__version__} on the CIFAR-10 test set: {len(d.labels)} examples, {len(names)} classes")
    print(f"label issues found: {len(ranked)} (filter_by='prune_by_noise_rate')")
    print(
        f"humans confirmed {len(confirmed & found)} of the {len(confirmed)} confirmed label errors "
        f"among the issues found"
    )
    print("\n10 most likely label errors (index, given -> suggested, self-confidence):")
    suggested = d.pred_probs.argmax(axis=1)
    for i in ranked[:10]:
        print(
            f"  {i:>5}  {names[d.labels[i]]:>10} -> {names[suggested[i]]:<10}  {d.pred_probs[i, d.labels[i]]:.4f}"
            + ("  (human-confirmed error)" if i in confirmed else "")
        )
    print("\nestimated noise matrix P(given label | true label), rows = given, columns = true:")
    print(_format_matrix(noise, names))
    print("\nestimated prior of the true labels:", np.array2string(py, precision=3))
    return 0


def _progress(probs, quiet: bool):
    """A tqdm bar counting rows read over all passes (none if tqdm is missing or --quiet)."""
    if quiet or not sys.stderr.isatty() and not os.environ.get("LABELSIFT_PROGRESS"):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bar = tqdm(total=None, unit=" rows", unit_scale=True, desc="labelsift", file=sys.stderr, leave=False)
    probs.on_block = bar.update
    return bar


def _load_inputs(args):
    from ._common.arrays import as_labels, as_probs, load_npy

    probs = as_probs(args.pred_probs if len(args.pred_probs) > 1 else args.pred_probs[0])
    labels = load_npy(args.labels, "labels")
    as_labels(labels, probs.n, probs.k)  # validate before any pass, for a clean message
    args._bar = _progress(probs, getattr(args, "quiet", False))
    return labels, probs


def _find_issues(args) -> int:
    from ._cl.find import issue_table

    labels, probs = _load_inputs(args)
    ranked, scores, suggested, y, n, k = issue_table(labels, probs, filter_by=args.filter_by, rank_by=args.rank_by,
                                                     n_jobs=args.jobs)
    if args.out:
        def write(f):
            f.write("index,given_label,suggested_label,quality_score\n")
            for i, s, g in zip(ranked.tolist(), scores.tolist(), suggested.tolist()):
                f.write(f"{i},{y[i]},{g},{s:.9g}\n")

        _atomic_write(args.out, write)
    summary = {
        "num_examples": n,
        "num_classes": k,
        "filter_by": args.filter_by,
        "num_issues": int(len(ranked)),
        "out": args.out,
        "top_issues": ranked[:10].tolist(),
    }
    print(json.dumps(summary))
    return 0


def _noise_matrix(args) -> int:
    import labelsift as ls

    labels, probs = _load_inputs(args)
    py, noise, inv, cj = ls.estimate_py_and_noise_matrices_from_probabilities(labels, probs, n_jobs=args.jobs)
    result = {
        "num_examples": probs.n,
        "num_classes": probs.k,
        "noise_matrix": noise.tolist(),
        "inverse_noise_matrix": inv.tolist(),
        "py": py.tolist(),
        "confident_joint": np.asarray(cj).tolist(),
    }
    if args.out:
        _atomic_write(args.out, lambda f: json.dump(result, f))
    if args.plot:
        from ._png import heatmap_png

        png = heatmap_png(noise)
        _atomic_write_bytes(args.plot, png)
    summary = {k: v for k, v in result.items() if k not in ("inverse_noise_matrix", "confident_joint")}
    print(json.dumps(summary | {"out": args.out, "plot": args.plot}))
    return 0


def _scores(args) -> int:
    import labelsift as ls

    labels, probs = _load_inputs(args)
    s = ls.get_label_quality_scores(labels, probs, method=args.method, n_jobs=args.jobs)
    if args.out:
        def write(f):
            f.write(f"index,{args.method}\n")
            for i, v in enumerate(s.tolist()):
                f.write(f"{i},{v:.9g}\n")

        _atomic_write(args.out, write)
    print(
        json.dumps(
            {
                "num_examples": probs.n,
                "method": args.method,
                "mean": float(np.mean(s, dtype=np.float64)),
                "lowest": np.argsort(s, kind="stable")[:10].tolist(),
                "out": args.out,
            }
        )
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    from ._common.names import FILTER_BY, SCORE_METHODS

    p = argparse.ArgumentParser(prog="labelsift", description="Find label issues and estimate label noise.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("example", help="run confident learning on the embedded CIFAR-10 test-set predictions")

    def common(sp):
        sp.add_argument("--labels", required=True, help=".npy file of integer labels")
        sp.add_argument("--pred-probs", required=True, nargs="+", help=".npy file(s): one dump or its row shards")
        sp.add_argument("--out", default=None, help="output file (written atomically)")
        sp.add_argument("--jobs", type=int, default=None, help="CPU threads (default: all)")
        sp.add_argument("--quiet", action="store_true", help="no progress bar")

    f = sub.add_parser("find-issues", help="flag likely label errors")
    common(f)
    f.add_argument("--filter-by", default="prune_by_noise_rate", choices=FILTER_BY)
    f.add_argument("--rank-by", default="self_confidence", choices=SCORE_METHODS)
    nm = sub.add_parser("noise-matrix", help="estimate the noise matrix, inverse and prior (JSON)")
    common(nm)
    nm.add_argument("--plot", default=None, help="also write a heat map of the noise matrix (PNG)")
    sc = sub.add_parser("scores", help="label quality score of every example (CSV)")
    common(sc)
    sc.add_argument("--method", default="self_confidence", choices=SCORE_METHODS)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    run = {"example": _example, "find-issues": _find_issues, "noise-matrix": _noise_matrix, "scores": _scores}
    try:
        code = run[args.command](args)
        bar = getattr(args, "_bar", None)
        if bar is not None:
            bar.close()
        return code
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise_msg = str(exc)
        else:
            raise_msg = f"{exc.strerror or exc}: {exc.filename or ''}".strip()
        print(f"labelsift: error: {raise_msg}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"labelsift: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
