"""The ``labelsift`` command line.

    labelsift --version
    labelsift example                       confident learning on the embedded CIFAR-10 test set
    labelsift find-issues --labels L --pred-probs P.npy [P2.npy ...] [--filter-by ...] [--out issues.csv]
    labelsift find-issues --multi-label --labels L.npz|L.json --pred-probs P.npy [...]   (multi-label)
    labelsift noise-matrix --labels L --pred-probs P.npy [...] [--out noise.json] [--plot noise.png]
    labelsift noise-matrix --labels L --features X.npy [--rounds 50 --seed 0 ...]   (HOC, no model needed)
    labelsift scores --labels L --pred-probs P.npy [...] [--method ...] [--out scores.csv]
    labelsift knn-issues --features X.npy --labels y.npy [--out issues.csv] [--k 10] [--metric cosine|l2]
                         [--progress]
    labelsift self-label --scores S.npy [--kind logits|log_probs|probs] [--lam 25]
                         [--prior py.json | --prior-from-labels L.npy] --out labels.npy

What goes where: ``find-issues`` without ``--out`` writes its ranked CSV to
stdout and the one-line JSON summary to stderr (so ``| head`` works; a pipe
closed early ends quietly with exit 0); every other case prints the JSON
summary on stdout. Progress bars (one per pass over the data) go to stderr.
Output files are checked and their temporary files created before any
computation, then written all-or-none (atomically, with normal permissions,
through symbolic links; never over an input: see
:mod:`labelsift._common.output`). Bad input, and any file or argument error,
exits with code 2 and one line ``labelsift: error: ...`` on stderr; SIGINT
exits 130, SIGTERM 143 and SIGHUP 129, with one line and no temporary or
partial file left.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import sys
import tokenize

import numpy as np

from . import __version__

_LABEL_FORMATS = "accepted: a .npy integer array, or a .csv/.txt file with one integer per line"
_PROBS_FORMATS = "accepted: .npy arrays of float probabilities (one file or its row shards)"
_NPY_MAGIC = b"\x93NUMPY"
_INT_LINE = re.compile(r"[+-]?[0-9]+")


class UsageError(ValueError):
    """Bad input or options: the command exits with code 2 and this one-line message."""


# ---------------------------------------------------------------------------
# Input files
# ---------------------------------------------------------------------------
def _is_npy(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(len(_NPY_MAGIC)) == _NPY_MAGIC


# What np.load raises on a damaged .npy header (an empty file, a truncated or
# garbled header, a shape like (300, -5)): all mean "not a valid .npy file".
_BAD_NPY = (ValueError, EOFError, OverflowError, SyntaxError, TypeError, KeyError, tokenize.TokenError)


def _check_file(path: str, what: str) -> None:
    """UsageError unless ``path`` is an existing regular file we can read."""
    if not os.path.lexists(path):
        raise UsageError(f"{what}: no such file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"{what}: {path} is a directory, not a file")
    if not os.path.exists(path):
        raise UsageError(f"{what}: {path} is a broken symbolic link")


def _check_numeric_npy(path: str, what: str, formats: str) -> None:
    """UsageError unless ``path`` is a .npy file holding numbers (a pickled one never is unpickled)."""
    _check_file(path, what)
    if not _is_npy(path):
        raise UsageError(f"{what}: {path} is not a .npy file ({formats})")
    from ._common.arrays import load_npy

    try:
        load_npy(path, what)  # the header, the dtype and the size, checked
    except ValueError as exc:
        raise UsageError(f"{exc} ({formats})") from None
    except _BAD_NPY as exc:  # anything else NumPy's header parser raises
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{what}: {path} is not a valid .npy file ({detail}) ({formats})") from None


def _read_text(path: str, what: str, formats: str) -> str:
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{what}: {path} is not a UTF-8 text file ({formats})") from None


def _read_int_lines(path: str, what: str) -> np.ndarray:
    """One integer per line; empty lines ignored; anything else names the file and line."""
    values = []
    for lineno, line in enumerate(_read_text(path, what, _LABEL_FORMATS).splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if not _INT_LINE.fullmatch(s):
            shown = s if len(s) <= 40 else s[:37] + "..."
            raise UsageError(f"{what}: {path} line {lineno}: {shown!r} is not an integer (expected one integer "
                             "class index per line)")
        values.append(int(s))
    if not values:
        raise UsageError(f"{what}: {path} holds no labels")
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        raise UsageError(f"{what}: {path} holds an integer too large to be a class index") from None


def load_labels(path) -> np.ndarray:
    """Labels from a .npy integer array or a .csv/.txt file (one integer per line)."""
    path = os.fspath(path)
    _check_file(path, "labels")
    if os.path.splitext(path)[1].lower() in (".csv", ".txt"):
        return _read_int_lines(path, "labels")
    _check_numeric_npy(path, "labels", _LABEL_FORMATS)
    from ._common.arrays import load_npy

    return load_npy(path, "labels")


def load_class_names(path, k: int) -> list:
    """Class names from a file: one name per line, or a JSON list of strings; exactly K of them."""
    path = os.fspath(path)
    formats = "accepted: one name per line, or a JSON list of strings"
    _check_file(path, "class names")
    text = _read_text(path, "class names", formats)
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"class names: {path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UsageError(f"class names: {path} must hold a JSON list of strings")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != k:
        raise UsageError(f"class names: {path} has {len(names)} names but pred_probs has {k} classes")
    return names


# ---------------------------------------------------------------------------
# Progress: one bar per pass over the data
# ---------------------------------------------------------------------------
def passes_for(args) -> int:
    """How many passes over the data the command makes (what the bars announce).

    The engine does not report it; tests/cli/test_cli_usage.py checks, for every
    command and every --filter-by / --method, that it equals the passes
    observed through ``Probs.on_block``. (``prune_by_noise_rate`` and
    ``both`` skip their third pass when no class has anything to prune; the
    last bar then never opens.)
    """
    one = _one_read_for(args)
    if args.command == "find-issues":
        if args.filter_by == "prune_by_noise_rate" and one:
            return 1  # one read (the targeted re-reads are not passes; a fallback to two passes shows as extra)
        # thresholds (given-label values) + the row sweep; the noise-rate prune sweeps once more
        return 3 if args.filter_by in ("prune_by_noise_rate", "both") else 2
    if args.command == "noise-matrix":
        return 1 if one else 2  # (one read, or) thresholds + the row sweep
    if args.command == "scores":
        return 1  # every block: validation, given-label values and the method's sweep while it is in memory
    raise AssertionError(args.command)  # pragma: no cover


def _one_read_for(args) -> bool:
    """Whether the engine reads these .npy files once: the engine's own rule on the same memory maps."""
    from ._cl.oneread import prefer_for_segments, prefer_one_read
    paths = getattr(args, "pred_probs", None) or []
    try:
        segs = [np.load(p, mmap_mode="r") for p in paths]
    except (OSError, ValueError):  # the engine reports the bad file; count as the option alone says
        return prefer_one_read()
    return prefer_for_segments(segs)


class Progress:
    """tqdm bars 'pass i/P' over N rows each, fed with ``Probs.on_block(nrows)``.

    A pass is complete when the rows seen in it reach N; ``completed`` counts
    the passes observed.
    """

    def __init__(self, n: int, passes: int, tqdm):
        self.n, self.passes, self._tqdm = n, passes, tqdm
        self.completed = 0
        self._rows = 0
        self._bar = None
        self._open()

    def _open(self) -> None:
        i = self.completed + 1
        desc = f"pass {i}/{self.passes}" if i <= self.passes else f"pass {i} (of {self.passes} announced)"
        self._bar = self._tqdm(total=self.n, desc=desc, unit=" rows", unit_scale=True, file=sys.stderr,
                               leave=False, dynamic_ncols=True)

    def __call__(self, nrows: int) -> None:
        while nrows > 0:
            if self._bar is None:
                self._open()
            step = min(nrows, self.n - self._rows)
            self._bar.update(step)
            self._rows += step
            nrows -= step
            if self._rows >= self.n:
                self._bar.close()
                self._bar = None
                self._rows = 0
                self.completed += 1
                if self.completed < self.passes:
                    self._open()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _progress_wanted(args) -> bool:
    if args.progress is not None:
        return args.progress
    env = os.environ.get("LABELSIFT_PROGRESS", "").strip().lower()
    if env:
        return env not in ("0", "false", "no", "off")
    return sys.stderr.isatty()


def _tqdm_wanted(args):
    """tqdm when progress bars are wanted and it is installed (a note when they were asked for), else None."""
    if not _progress_wanted(args):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        if args.progress:
            print('labelsift: note: progress bars need tqdm: pip install "labelsift[cli]"', file=sys.stderr)
        return None
    return tqdm


def _attach_progress(args, probs):
    tqdm = _tqdm_wanted(args)
    if tqdm is None:
        return None
    bar = Progress(probs.n, passes_for(args), tqdm)
    probs.on_block = bar
    return bar


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------
def _write_csv(f, header, rows) -> None:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)


def _emit_csv(outs, header, rows) -> None:
    """The CSV to the reserved ``--out`` (written, renamed at commit) or, without one, to stdout."""
    if "--out" in outs:
        outs.write("--out", lambda f: _write_csv(f, header, rows))
    else:
        _require_stdout()
        with _stream_errors("stdout"):
            _write_csv(sys.stdout, header, rows)
            sys.stdout.flush()


class _stream_errors:
    """An OSError writing stdout/stderr (a full disk behind ``> file``, EIO) names the stream."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError) \
                and not exc.filename and exc.errno:
            _silence_stdout() if self.name == "stdout" else None
            raise OSError(exc.errno, f"cannot write to {self.name}: {exc.strerror or exc}") from None
        return False


def _require_stdout() -> None:
    if sys.stdout is None:  # started with stdout closed (`>&-`)
        import errno

        raise OSError(errno.EBADF, "cannot write to stdout: it is closed")


def _print_json(obj, file=None) -> None:
    if file is None:
        _require_stdout()
    f = file or sys.stdout
    with _stream_errors("stderr" if f is sys.stderr else "stdout"):
        print(json.dumps(obj), file=f)
        f.flush()


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------
def _format_matrix(m: np.ndarray, names) -> str:
    width = max(6, max(len(n) for n in names)) + 1
    head = " " * width + "".join(f"{n:>{width}}" for n in names)
    rows = [f"{names[i]:<{width}}" + "".join(f"{v:>{width}.3f}" for v in m[i]) for i in range(len(m))]
    return "\n".join([head, *rows])


def _example(args, outs) -> int:
    import labelsift as ls
    from labelsift.datasets import cifar10_test

    d = cifar10_test()
    names = load_class_names(args.class_names, len(d.class_names)) if args.class_names else list(d.class_names)
    ranked = ls.find_label_issues(d.labels, d.pred_probs, return_indices_ranked_by="self_confidence")
    py, noise, _inv, _cj = ls.estimate_py_and_noise_matrices_from_probabilities(d.labels, d.pred_probs)
    found = set(ranked.tolist())
    confirmed = set(d.confirmed_errors.tolist())
    print(f"labelsift {ls.__version__} on the CIFAR-10 test set: {len(d.labels)} examples, {len(names)} classes")
    print(f"label issues found: {len(ranked)} (filter_by='prune_by_noise_rate')")
    print(f"{len(confirmed & found)} of the {len(confirmed)} human-confirmed label errors were flagged "
          "(crowd-sourced review, cleanlab/label-errors)")
    print("\n10 most likely label errors (index, given -> suggested, self-confidence = P(given label)):")
    suggested = d.pred_probs.argmax(axis=1)
    width = max(len(n) for n in names)
    for i in ranked[:10]:
        print(
            f"  {i:>5}  {names[d.labels[i]]:>{width}} -> {names[suggested[i]]:<{width}}  "
            f"{d.pred_probs[i, d.labels[i]]:.2e}" + ("  (human-confirmed error)" if i in confirmed else "")
        )
    print("\nestimated noise matrix P(given label | true label), rows = given, columns = true:")
    print(_format_matrix(noise, names))
    print("\nestimated prior of the true labels:", np.array2string(py, precision=3))
    return 0


def _load_inputs(args):
    """(labels, Probs, class names or None, progress or None), all checked before any pass."""
    from ._common.arrays import as_labels, as_probs

    for i, p in enumerate(args.pred_probs):
        what = "pred-probs" if len(args.pred_probs) == 1 else f"pred-probs shard {i}"
        _check_numeric_npy(p, what, _PROBS_FORMATS)
    probs = as_probs(args.pred_probs if len(args.pred_probs) > 1 else args.pred_probs[0])
    labels = load_labels(args.labels)
    as_labels(labels, probs.n, probs.k)  # validate before any pass, for a clean message
    names = load_class_names(args.class_names, probs.k) if args.class_names else None
    return labels, probs, names, _attach_progress(args, probs)


def load_multilabels(path):
    """Multi-label labels: a SciPy sparse .npz (``scipy.sparse.save_npz``, N x K 0/1) or a
    JSON list of per-example lists of class indices."""
    path = os.fspath(path)
    _check_file(path, "labels")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        try:
            import scipy.sparse
        except ImportError:  # pragma: no cover - depends on the environment
            raise UsageError("labels: reading a sparse .npz needs SciPy (pip install scipy)") from None
        try:
            return scipy.sparse.load_npz(path)
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"labels: {path} is not a SciPy sparse matrix saved by scipy.sparse.save_npz "
                             f"({_one_line(exc)}); {_MULTILABEL_FORMATS}") from None
    if ext == ".json":
        text = _read_text(path, "labels", _MULTILABEL_FORMATS)
        try:
            labels = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"labels: {path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(labels, list) or not all(isinstance(r, list) for r in labels):
            raise UsageError(f"labels: {path} must hold a JSON list of lists of class indices, e.g. [[0, 2], [1], []]")
        if not all(isinstance(v, int) and not isinstance(v, bool) for r in labels for v in r):
            raise UsageError(f"labels: {path}: every class index must be a JSON integer")
        return labels
    raise UsageError(f"labels: {path}: with --multi-label, {_MULTILABEL_FORMATS}")


_MULTILABEL_FORMATS = ("accepted: a .npz SciPy sparse N x K 0/1 matrix (scipy.sparse.save_npz) or a .json "
                       "list of per-example lists of class indices")


def _find_issues_multilabel(args, outs) -> int:
    from ._common.arrays import as_probs
    from ._multilabel import find as ml_find
    from ._multilabel.passes import prepare
    from ._multilabel.scores import row_scores

    for i, p in enumerate(args.pred_probs):
        what = "pred-probs" if len(args.pred_probs) == 1 else f"pred-probs shard {i}"
        _check_numeric_npy(p, what, _PROBS_FORMATS)
    probs = as_probs(args.pred_probs if len(args.pred_probs) > 1 else args.pred_probs[0])
    pb = prepare(load_multilabels(args.labels), probs, args.jobs)  # labels checked before any pass
    names = load_class_names(args.class_names, pb.k) if args.class_names else None
    ranked = ml_find.find_label_issues(pb.y, pb.probs, filter_by=args.filter_by,
                                       return_indices_ranked_by=args.rank_by, n_jobs=args.jobs)
    scores = row_scores(pb, ranked, args.rank_by)
    given = [pb.y.indices[a:b].tolist() for a, b in zip(pb.y.indptr[ranked].tolist(),
                                                         pb.y.indptr[ranked + 1].tolist())]
    header = ["index", "given_labels", "quality_score"]
    if names is None:
        rows = ((i, " ".join(map(str, g)), f"{q:.9g}") for i, g, q in zip(ranked.tolist(), given, scores.tolist()))
    else:
        header.append("given_label_names")
        rows = ((i, " ".join(map(str, g)), f"{q:.9g}", "|".join(names[c] for c in g))
                for i, g, q in zip(ranked.tolist(), given, scores.tolist()))
    summary = {
        "num_examples": pb.n,
        "num_classes": pb.k,
        "multi_label": True,
        "filter_by": args.filter_by,
        "rank_by": args.rank_by,
        "num_issues": int(len(ranked)),
        "out": args.out,
        "top_issues": ranked[:10].tolist(),
    }
    _emit_csv(outs, header, rows)
    outs.commit()
    _print_json(summary, file=None if args.out else sys.stderr)
    return 0


def _find_issues(args, outs) -> int:
    from ._cl.find import issue_table

    if getattr(args, "multi_label", False):
        return _find_issues_multilabel(args, outs)
    labels, probs, names, bar = _load_inputs(args)
    try:
        ranked, scores, suggested, y, n, k = issue_table(labels, probs, filter_by=args.filter_by,
                                                         rank_by=args.rank_by, n_jobs=args.jobs)
    finally:
        if bar is not None:
            bar.close()
    header = ["index", "given_label", "suggested_label", "quality_score"]
    given = y[ranked]
    if names is None:
        rows = ((i, g, s, f"{q:.9g}") for i, g, s, q in zip(ranked.tolist(), given.tolist(), suggested.tolist(),
                                                                scores.tolist()))
    else:
        header += ["given_label_name", "suggested_label_name"]
        rows = ((i, g, s, f"{q:.9g}", names[g], names[s])
                for i, g, s, q in zip(ranked.tolist(), given.tolist(), suggested.tolist(), scores.tolist()))
    summary = {
        "num_examples": n,
        "num_classes": k,
        "filter_by": args.filter_by,
        "rank_by": args.rank_by,
        "num_issues": int(len(ranked)),
        "out": args.out,
        "top_issues": ranked[:10].tolist(),
    }
    if names is not None:
        summary["top_issues_labels"] = [
            {"index": i, "given_label_name": names[g], "suggested_label_name": names[s]}
            for i, g, s in zip(ranked[:10].tolist(), given[:10].tolist(), suggested[:10].tolist())
        ]
    _emit_csv(outs, header, rows)
    outs.commit()
    _print_json(summary, file=None if args.out else sys.stderr)
    return 0


_AXES = {
    "noise_matrix": "[given][true] = P(given label | true label); columns sum to 1",
    "inverse_noise_matrix": "[true][given] = P(true label | given label); columns sum to 1",
    "confident_joint": "[given][true], calibrated counts; sums to num_examples",
    "py": "[true] = P(true label)",
}


def _largest_noise_rates(noise: np.ndarray, names, top: int = 10) -> list:
    from ._plot import largest_off_diagonal  # (no matplotlib needed)

    out = []
    for g, t, rate in largest_off_diagonal(noise, top):
        entry = {"given": g, "true": t, "rate": float(f"{rate:.6g}")}
        if names is not None:
            entry |= {"given_name": names[g], "true_name": names[t]}
        out.append(entry)
    return out


def _noise_matrix(args, outs) -> int:
    import labelsift as ls

    if (args.features is None) == (args.pred_probs is None):
        raise UsageError("noise-matrix: give exactly one of --pred-probs (confident learning) and --features (HOC)")
    if args.features is None:
        for opt in ("num_classes",):
            if getattr(args, opt) is not None:
                raise UsageError(f"--{opt.replace('_', '-')} needs --features")
    if args.features is not None:
        return _noise_matrix_hoc(args, outs)
    labels, probs, names, bar = _load_inputs(args)
    try:
        py, noise, inv, cj = ls.estimate_py_and_noise_matrices_from_probabilities(labels, probs, n_jobs=args.jobs)
    finally:
        if bar is not None:
            bar.close()
    joint = ls.estimate_joint(None, None, confident_joint=cj)  # cj is calibrated: joint = cj / sum(cj)
    # = num_label_issues(estimation_method="off_diagonal_calibrated"), from the joint already computed
    num_issues = int(np.rint((1.0 - joint.trace()) * probs.n))
    if args.out:
        result = {
            "num_examples": probs.n,
            "num_classes": probs.k,
            "axes": _AXES,
            **({"class_names": names} if names is not None else {}),
            "estimated_num_label_issues": num_issues,
            "py": py.tolist(),
            "noise_matrix": noise.tolist(),
            "inverse_noise_matrix": inv.tolist(),
            "confident_joint": np.asarray(cj).tolist(),
        }
        outs.write("--out", lambda f: json.dump(result, f))
    if args.plot:
        from ._plot import noise_matrix_figure, png_bytes

        outs.write("--plot", png_bytes(noise_matrix_figure(noise, num_examples=probs.n, num_issues=num_issues,
                                                           class_names=names)))
    outs.commit()  # all outputs or none
    _print_json({
        "num_examples": probs.n,
        "num_classes": probs.k,
        "estimated_num_label_issues": num_issues,
        "largest_noise_rates": _largest_noise_rates(noise, names),
        "py": [float(f"{v:.6g}") for v in py.tolist()],
        "out": args.out,
        "plot": args.plot,
    })
    return 0


_HOC_AXES = {
    "noise_matrix": "[given][true] = P(given label | true label); columns sum to 1",
    "transition_matrix": "[true][given] = HOC's T = noise_matrix transposed; rows sum to 1",
    "inverse_noise_matrix": "[true][given] = P(true label | given label); columns sum to 1",
    "py": "[true] = P(true label)",
}


class _RoundBar:
    """One tqdm bar per stage (HOC's rounds, the k-NN search's blocks of tiles), fed by the
    ``progress(stage, done, total)`` callbacks."""

    def __init__(self, tqdm):
        self._tqdm, self._bar, self._stage = tqdm, None, None

    def __call__(self, stage, done, total):
        if self._bar is None or stage != self._stage:
            self.close()
            self._stage = stage
            unit = " rounds" if "rounds" in stage else " steps"
            self._bar = self._tqdm(total=total, desc=stage, unit=unit, file=sys.stderr, leave=False,
                                   dynamic_ncols=True)
        self._bar.update(done - self._bar.n)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _stage_bar(args):
    """A _RoundBar when progress bars are wanted and tqdm is there, else None."""
    tqdm = _tqdm_wanted(args)
    return None if tqdm is None else _RoundBar(tqdm)


def _noise_matrix_hoc(args, outs) -> int:
    from ._common.arrays import load_npy
    from ._noise.hoc import estimate

    _check_numeric_npy(args.features, "features", "accepted: an N x d .npy float array")
    features = load_npy(args.features, "features")
    if features.dtype.kind != "f" or features.ndim != 2:
        raise UsageError(f"features: {args.features} holds a {features.ndim}-D {features.dtype} array; "
                         "expected N x d floats")
    labels = load_labels(args.labels)
    names = None
    bar = _stage_bar(args)
    try:
        r = estimate(features, labels, args.num_classes, rounds=args.rounds, sample_size=args.sample_size,
                     steps=args.steps, seed=args.seed, neighbours=args.neighbours, n_jobs=args.jobs,
                     progress=bar)
    finally:
        if bar is not None:
            bar.close()
    n, k = len(labels), r.noise_matrix.shape[0]
    if args.class_names:
        names = load_class_names(args.class_names, k)
    num_issues = int(np.rint(r.estimated_noise_rate * n))
    diagnostics = {"agreement_1nn": r.agreement_1nn, "agreement_2nn": r.agreement_2nn,
                   "duplicate_rate": r.duplicate_rate, "loss": r.loss, "step": r.step,
                   "rounds": r.rounds, "sample_size": r.sample_size, "seed": args.seed,
                   "neighbours": r.neighbours}
    if args.out:
        result = {
            "method": "hoc", "num_examples": n, "num_classes": k, "axes": _HOC_AXES,
            **({"class_names": names} if names is not None else {}),
            "estimated_num_label_issues": num_issues, "py": r.py.tolist(), "noise_matrix": r.noise_matrix.tolist(),
            "transition_matrix": r.transition_matrix.tolist(),
            "inverse_noise_matrix": r.inverse_noise_matrix.tolist(), "diagnostics": diagnostics,
        }
        outs.write("--out", lambda f: json.dump(result, f))
    if args.plot:
        from ._plot import noise_matrix_figure, png_bytes

        outs.write("--plot", png_bytes(noise_matrix_figure(r.noise_matrix, num_examples=n, num_issues=num_issues,
                                                           class_names=names)))
    outs.commit()  # all outputs or none
    _print_json({
        "method": "hoc", "num_examples": n, "num_classes": k, "estimated_num_label_issues": num_issues,
        "largest_noise_rates": _largest_noise_rates(r.noise_matrix, names),
        "py": [float(f"{v:.6g}") for v in r.py.tolist()],
        "agreement_1nn": float(f"{r.agreement_1nn:.6g}"), "duplicate_rate": r.duplicate_rate,
        "out": args.out, "plot": args.plot,
    })
    return 0


def _scores(args, outs) -> int:
    import labelsift as ls

    labels, probs, names, bar = _load_inputs(args)
    try:
        s = ls.get_label_quality_scores(labels, probs, method=args.method, n_jobs=args.jobs)
    finally:
        if bar is not None:
            bar.close()
    lowest = np.argsort(s, kind="stable")[:10]
    if args.out:
        header = ["index", args.method]
        if names is None:
            rows = ((i, f"{v:.9g}") for i, v in enumerate(s.tolist()))
        else:
            header.append("given_label_name")
            y = np.asarray(labels, dtype=np.int64).tolist()
            rows = ((i, f"{v:.9g}", names[g]) for i, (v, g) in enumerate(zip(s.tolist(), y)))
        _emit_csv(outs, header, rows)
    outs.commit()
    summary = {
        "num_examples": probs.n,
        "method": args.method,
        "mean": float(np.mean(s, dtype=np.float64)),
        "lowest": lowest.tolist(),
        "out": args.out,
    }
    if names is not None:
        summary["lowest_given_label_names"] = [names[int(labels[i])] for i in lowest.tolist()]
    _print_json(summary)
    return 0


def load_prior(path) -> np.ndarray:
    """A class prior from JSON: a list of K numbers, or an object with a "py"
    list (what ``noise-matrix --out`` writes)."""
    path = os.fspath(path)
    formats = 'accepted: a JSON list of K numbers, or an object with a "py" list (noise-matrix --out)'
    if not os.path.exists(path):
        raise UsageError(f"prior: no such file: {path}")
    try:
        obj = json.loads(_read_text(path, "prior", formats))
    except json.JSONDecodeError as exc:
        raise UsageError(f"prior: {path} is not valid JSON ({exc.msg}, line {exc.lineno}); {formats}") from None
    if isinstance(obj, dict):
        obj = obj.get("py")
    if not isinstance(obj, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj):
        raise UsageError(f"prior: {path} holds no list of numbers ({formats})")
    return np.asarray(obj, dtype=np.float64)


def _prior_from_labels(path, k: int) -> np.ndarray:
    from ._common.arrays import label_counts

    counts = label_counts(load_labels(path), k)
    if (counts == 0).any():
        raise UsageError(f"prior-from-labels: class {int(np.flatnonzero(counts == 0)[0])} has no label in {path}; "
                         "every class needs a positive share")
    return counts / counts.sum()


def _self_label(args, outs) -> int:
    from . import sinkhorn

    _check_numeric_npy(args.scores, "scores", "accepted: a .npy float array, N x K")
    scores = np.load(args.scores, mmap_mode="r", allow_pickle=False)
    k = scores.shape[1] if scores.ndim == 2 else 0
    prior = None
    if args.prior:
        prior = load_prior(args.prior)
    elif args.prior_from_labels:
        prior = _prior_from_labels(args.prior_from_labels, k)
    tqdm = _tqdm_wanted(args)
    bar = None if tqdm is None else tqdm(desc="sinkhorn", unit=" pass", file=sys.stderr, leave=False,
                                         dynamic_ncols=True)

    def on_pass(j, err):
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"error {err:.3g}")

    import warnings

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            res = sinkhorn.self_label(scores, kind=args.kind, lam=args.lam, marginals=prior, n_iter=args.n_iter,
                                      tol=args.tol, max_iter=args.max_iter, mode=args.mode, return_info=True,
                                      n_jobs=args.jobs, callback=on_pass)
    finally:
        if bar is not None:
            bar.close()
    for w in caught:
        print(f"labelsift: warning: {w.message}", file=sys.stderr)
    outs.write("--out", lambda f: np.save(f, res.labels), binary=True)
    outs.commit()
    sizes = res.class_sizes()
    _print_json({
        "num_examples": int(len(res.labels)),
        "num_classes": int(len(sizes)),
        "kind": args.kind,
        "lam": args.lam,
        "mode": args.mode,
        "iterations": int(res.n_iter),
        "converged": bool(res.converged),
        "column_error": float(f"{res.error:.6g}"),
        "class_sizes": sizes.tolist(),
        "class_size_min": int(sizes.min()),
        "class_size_max": int(sizes.max()),
        "out": args.out,
    })
    return 0


# ---------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------
class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' line breaks; adds "(default: ...)" to options whose help does not state one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or "required" in text or not action.option_strings
                or action.default in (None, argparse.SUPPRESS)):
            return text
        return text + " (default: %(default)s)"


_DATA_EPILOG = {
    "find-issues": [
        "output: without --out the ranked CSV goes to stdout and the one-line JSON summary to stderr, so "
        "`labelsift find-issues ... | head` works; with --out the CSV goes to the file and the summary to stdout.",
        "CSV columns: index, given_label, suggested_label (argmax), quality_score (the --rank-by score), plus "
        "given_label_name, suggested_label_name with --class-names; rows ranked by ascending score.",
    ],
    "noise-matrix": [
        "output: a one-line JSON summary on stdout (N, K, the estimated number of label issues, the largest "
        "off-diagonal noise rates, py). --out writes the full JSON: noise_matrix[given][true] = P(given | true), "
        "inverse_noise_matrix[true][given], confident_joint[given][true], py, \"axes\" stating these, and the "
        "class names. --plot writes a PNG heat map (needs matplotlib: pip install \"labelsift[cli]\").",
        "with --features instead of --pred-probs: HOC (Zhu, Song & Liu, ICML 2021) estimates the noise matrix from "
        "the labels of each row's two nearest neighbours (cosine, exact), with Docta's defaults, seeded; the JSON "
        "adds transition_matrix[true][given] (HOC's T) and diagnostics (2-NN label agreement, exact-duplicate "
        "rate, the solver's loss). One progress bar over the rounds.",
    ],
    "scores": [
        "output: a one-line JSON summary on stdout (mean, the 10 lowest-scoring rows); --out writes the CSV "
        "index,<method>[,given_label_name] for every row, in row order.",
    ],
}
_COMMON_EPILOG = [
    "inputs: --labels is a .npy integer array or a .csv/.txt file with one integer per line (empty lines "
    "ignored); --pred-probs are .npy float arrays (N x K, or row shards of it, concatenated in order); pickled "
    "files are never read.",
    "Files are written all-or-none and atomically (temporary files in the target's folder, created before any "
    "computation, then renamed), with normal permissions, through symbolic links, never over an input. "
    "Progress bars (one per pass over the data) go to stderr; LABELSIFT_PROGRESS=1 or 0 overrides the terminal "
    "check. Bad input exits with code 2 and one line on stderr.",
]


def _knn_issues(args, outs) -> int:
    from . import knn
    from ._common.arrays import load_npy

    feats = args.features
    if not os.path.exists(feats):
        raise FileNotFoundError(2, "No such file or directory", feats)
    labels = (np.asarray(load_npy(args.labels, "labels")) if _is_npy(args.labels)
              else _read_int_lines(args.labels, "labels"))
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels: {args.labels} must hold integers, got dtype {labels.dtype}")
    bar = _stage_bar(args)
    try:
        res = knn.find_issues(feats, labels, k=args.k, metric=args.metric, n_jobs=args.jobs, as_frame=False,
                              progress=bar)
    finally:
        if bar is not None:
            bar.close()
    summary = res.pop("summary")
    cols = list(res)
    header = ["index"] + cols
    n = len(res["is_label_issue"])

    def cell(c, i):
        v = res[c][i]
        if c == "near_duplicate_sets":
            return " ".join(str(int(j)) for j in v)
        if isinstance(v, (bool, np.bool_)):
            return "True" if v else "False"
        return repr(float(v))

    rows = ([i] + [cell(c, i) for c in cols] for i in range(n))
    _emit_csv(outs, header, rows)
    outs.commit()
    _print_json({"command": "knn-issues", "num_examples": n, **summary}, file=None if args.out else sys.stderr)
    return 0


def _paragraphs(texts) -> str:
    import textwrap

    return "\n\n".join(textwrap.fill(t, width=78, break_on_hyphens=False) for t in texts)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2), pointing at --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    try:
        n = int(text, 10)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return n


def _parser() -> argparse.ArgumentParser:
    from ._common.names import FILTER_BY, SCORE_METHODS

    p = _Parser(
        prog="labelsift", formatter_class=_HelpFormatter,
        description="Find label issues and estimate label noise (confident learning, cleanlab-compatible).",
        epilog="Run `labelsift COMMAND --help` for a command's options and what it writes where.",
    )
    p.add_argument("--version", action="version", version=f"labelsift {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ex = sub.add_parser("example", formatter_class=_HelpFormatter,
                        help="run confident learning on the embedded CIFAR-10 test-set predictions",
                        description="Run confident learning on the embedded CIFAR-10 test-set predictions and print "
                                    "the issues found,\nthe human verdicts on them and the noise matrix "
                                    "(all to stdout).")
    ex.add_argument("--class-names", metavar="FILE", default=None,
                    help="names to print instead of the CIFAR-10 ones: one per line or a JSON list, 10 of them "
                         "(default: the CIFAR-10 names)")

    def data_command(name, help_text, pred_probs_required=True):
        sp = sub.add_parser(name, help=help_text, formatter_class=_HelpFormatter,
                            description=help_text[0].upper() + help_text[1:] + ".",
                            epilog=_paragraphs(_DATA_EPILOG[name] + _COMMON_EPILOG))
        sp.add_argument("--labels", required=True, metavar="FILE",
                        help="given labels: .npy integer array, or .csv/.txt with one integer per line (required)")
        sp.add_argument("--pred-probs", required=pred_probs_required, nargs="+", metavar="NPY",
                        help=".npy file(s) of predicted probabilities: one N x K dump or its row shards in order "
                             + ("(required)" if pred_probs_required else "(this or --features is required)"))
        sp.add_argument("--class-names", metavar="FILE", default=None,
                        help="class names, one per line or a JSON list of K strings; added to the CSV and JSON "
                             "(and the plot) (default: none, classes are indices)")
        sp.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                        help="CPU threads, at most the CPUs available; results do not depend on it "
                             "(default: all cores)")
        sp.add_argument("--ties", default="cleanlab", choices=("cleanlab", "lower_index"),
                        help="how exactly equal values are ordered: as cleanlab 2.9.0 does on this machine, "
                             "or by the lower index (the same on every machine)")
        sp.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars on stderr, one per pass over the data "
                             "(default: on when stderr is a terminal)")
        sp.add_argument("--quiet", dest="progress", action="store_const", const=False,
                        help="same as --no-progress (default: off)")
        return sp

    f = data_command("find-issues", "flag likely label errors, ranked by label quality")
    f.add_argument("--out", metavar="CSV", default=None, help="write the ranked CSV here (default: stdout)")
    f.add_argument("--filter-by", default="prune_by_noise_rate", choices=FILTER_BY, metavar="METHOD",
                   help=f"cleanlab's filter_by method: {', '.join(FILTER_BY)}")
    f.add_argument("--rank-by", default="self_confidence", choices=SCORE_METHODS, metavar="SCORE",
                   help=f"score the issues are ranked by (ascending): {', '.join(SCORE_METHODS)}")
    f.add_argument("--multi-label", action="store_true",
                   help="multi-label data (cleanlab's multilabel_classification): --labels is a .npz SciPy sparse "
                        "N x K 0/1 matrix or a .json list of per-example label lists; --pred-probs hold one "
                        "independent probability per class; the CSV lists index, given_labels (space-separated), "
                        "quality_score (EMA of the per-class scores); no progress bars (default: off)")
    nm = data_command("noise-matrix", "estimate the noise matrix, its inverse, the confident joint and the prior",
                      pred_probs_required=False)
    nm.add_argument("--features", metavar="NPY", default=None,
                    help="N x d .npy float features instead of --pred-probs: HOC (2-NN label consensus) estimates "
                         "the noise matrix without a model (default: none)")
    nm.add_argument("--num-classes", type=_positive_int, default=None, metavar="K",
                    help="with --features: the number of classes (default: max label + 1)")
    nm.add_argument("--rounds", type=_positive_int, default=50, metavar="R", help="with --features: HOC's rounds")
    nm.add_argument("--sample-size", type=_positive_int, default=35000, metavar="M",
                    help="with --features: rows per round, at most 0.9 N")
    nm.add_argument("--steps", type=_positive_int, default=1501, metavar="S",
                    help="with --features: the solver's loop length (S - 1 Adam steps)")
    nm.add_argument("--seed", type=int, default=0, metavar="SEED", help="with --features: the random seed")
    nm.add_argument("--neighbours", default="sample", choices=("sample", "full"),
                    help="with --features: search each round's sample (Docta's) or the whole set")
    nm.add_argument("--out", metavar="JSON", default=None,
                    help="write all matrices as JSON here (default: none, only the summary)")
    nm.add_argument("--plot", metavar="PNG", default=None,
                    help="write a heat map of the noise matrix here (default: none)")
    sc = data_command("scores", "label quality score of every example")
    sc.add_argument("--out", metavar="CSV", default=None,
                    help="write every row's score as CSV here (default: none, only the summary)")
    sc.add_argument("--method", default="self_confidence", choices=SCORE_METHODS, metavar="SCORE",
                    help=f"cleanlab's label quality score: {', '.join(SCORE_METHODS)}")

    sl_help = "assign labels with class sizes following a prior (Sinkhorn self-labelling, SeLa)"
    sl = sub.add_parser("self-label", help=sl_help, formatter_class=_HelpFormatter,
                        description=sl_help[0].upper() + sl_help[1:] + ".",
                        epilog=_paragraphs([
                            "output: the labels (int64, N) go to --out as .npy; a one-line JSON summary goes to "
                            "stdout (iterations, converged, the final L1 column error, the class-size histogram). "
                            "A progress bar (one step per pass over the scores, with the current error) goes to "
                            "stderr; LABELSIFT_PROGRESS=1 or 0 overrides the terminal check. Bad input exits with "
                            "code 2 and one line on stderr; not converging is a warning on stderr, not an error."]))
    sl.add_argument("--scores", required=True, metavar="NPY", help="N x K .npy float array (required)")
    sl.add_argument("--out", required=True, metavar="NPY", help="write the labels here as .npy (required)")
    sl.add_argument("--kind", default="logits", choices=("logits", "log_probs", "probs"),
                    help="what the scores are")
    sl.add_argument("--lam", type=float, default=25.0, help="SeLa's lambda: the scores are multiplied by it")
    pri = sl.add_mutually_exclusive_group()
    pri.add_argument("--prior", metavar="JSON", default=None,
                     help='class proportions: a JSON list of K numbers or an object with a "py" list '
                          "(noise-matrix --out) (default: equal class sizes)")
    pri.add_argument("--prior-from-labels", metavar="FILE", default=None,
                     help="class proportions from given labels (.npy or one integer per line) "
                          "(default: equal class sizes)")
    sl.add_argument("--mode", default="fused", choices=("fused", "sela"),
                    help="fused: the L1 column error <= --tol; sela: SeLa's loop and stopping rule")
    sl.add_argument("--tol", type=float, default=1e-3, help="stop when the error is at most this")
    sl.add_argument("--n-iter", type=int, default=None, metavar="N",
                    help="a fixed number of iterations instead of --tol (default: none, stop at --tol)")
    sl.add_argument("--max-iter", type=int, default=1000, metavar="N", help="most iterations with --tol")
    sl.add_argument("--jobs", type=int, default=None, metavar="N",
                    help="CPU threads; results do not depend on it (default: all cores)")
    sl.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="progress on stderr, one step per pass (default: on when stderr is a terminal)")
    sl.add_argument("--quiet", dest="progress", action="store_const", const=False,
                    help="same as --no-progress (default: off)")
    kn_help = "Datalab's feature checks (label, outlier, near-duplicate, non-IID) from embeddings, exact k-NN"
    kn = sub.add_parser("knn-issues", help=kn_help, formatter_class=_HelpFormatter, description=kn_help + ".",
                        epilog=_paragraphs(["output: one CSV row per example with Datalab's issue columns "
                                            "(near_duplicate_sets space-separated) to --out, or to stdout with the "
                                            "JSON summary on stderr; with --out the JSON summary goes to stdout."]))
    kn.add_argument("--features", required=True, metavar="NPY", help="N x d .npy feature matrix (required)")
    kn.add_argument("--labels", required=True, metavar="FILE",
                    help="given labels: .npy integer array, or .csv/.txt with one integer per line (required)")
    kn.add_argument("--out", metavar="CSV", default=None, help="write the CSV here (default: stdout)")
    kn.add_argument("--k", type=_positive_int, default=10, metavar="K", help="neighbours per example")
    kn.add_argument("--metric", default=None, choices=("cosine", "l2"),
                    help="graph metric (default: Datalab's choice, cosine when d > 3)")
    kn.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                    help="CPU threads; results do not depend on it (default: all cores)")
    kn.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="progress bars on stderr, one over the k-NN search's tiles (default: on when stderr is "
                         "a terminal)")
    kn.add_argument("--quiet", dest="progress", action="store_const", const=False,
                    help="same as --no-progress (default: off)")
    return p


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at devnull so the exit-time flush cannot fail
    (the recipe of Python's documentation on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests)
        pass


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, OSError) and exc.strerror and type(exc).__str__ is OSError.__str__:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"labelsift: warning: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------
# Signals: SIGINT -> exit 130, SIGTERM -> 143, SIGHUP -> 129, one line, no
# temporary file left (the handler removes them, then unwinds the stack)
# ---------------------------------------------------------------------------
class Signalled(BaseException):
    """Raised by the CLI's signal handler (a BaseException, so no ``except Exception`` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_SIGNALS = {"SIGINT": "interrupted", "SIGTERM": "terminated", "SIGHUP": "hung up"}


_stopping = []  # the signal being handled (a second one while stopping is ignored)


def _on_signal(signum, frame):
    from ._common import output

    if _stopping:
        return
    if output.deferring(signum):  # renaming the outputs: all of them first
        return
    _stopping.append(signum)
    output.remove_live_temps()
    raise Signalled(signum)


def _install_signal_handlers() -> dict:
    """Our handler for SIGINT/SIGTERM/SIGHUP; returns the previous ones (empty outside the main thread)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    old = {}
    for name in _SIGNALS:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        prev = signal.getsignal(sig)
        if name != "SIGINT" and prev is signal.SIG_IGN:  # nohup: keep ignoring
            continue
        try:
            signal.signal(sig, _on_signal)
        except (OSError, ValueError):  # pragma: no cover
            continue
        old[sig] = prev
    return old


def _signal_exit(signum: int) -> int:
    name = signal.Signals(signum).name
    print(f"labelsift: {_SIGNALS.get(name, 'stopped')} ({name}); no partial output left", file=sys.stderr)
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return 128 + signum


# ---------------------------------------------------------------------------
# Outputs: checked and reserved before any computation
# ---------------------------------------------------------------------------
def _reserve_outputs(args, outs) -> None:
    from ._common.output import refuse_inputs

    wanted = {"--out": getattr(args, "out", None), "--plot": getattr(args, "plot", None)}
    wanted = {k: v for k, v in wanted.items() if v is not None}
    if not wanted:
        return
    if wanted.get("--plot") is not None:
        from ._plot import check_matplotlib

        try:
            check_matplotlib()
        except ImportError as exc:
            raise UsageError(str(exc)) from None
    inputs = {name: getattr(args, name[2:].replace("-", "_"), None)
              for name in ("--labels", "--pred-probs", "--class-names", "--scores", "--prior", "--prior-from-labels",
                           "--features")}
    refuse_inputs(wanted, inputs)
    for what, path in wanted.items():
        outs.reserve(path, what)


def main(argv=None) -> int:
    import warnings

    from ._common.output import Outputs

    _stopping.clear()
    if sys.stderr is None:  # started with stderr closed (`2>&-`): messages go nowhere, the exit code stays
        sys.stderr = open(os.devnull, "w")
    old_handlers = _install_signal_handlers()
    old_show = warnings.showwarning
    try:
        warnings.showwarning = _show_warning
        args = _parser().parse_args(argv)
        run = {"example": _example, "find-issues": _find_issues, "noise-matrix": _noise_matrix, "scores": _scores,
               "self-label": _self_label, "knn-issues": _knn_issues}
        from ._common.options import options

        try:
            with Outputs() as outs:
                _require_stdout()  # every command prints to stdout: fail before any work
                _reserve_outputs(args, outs)
                with options(ties=getattr(args, "ties", None)):
                    return run[args.command](args, outs)
        except BrokenPipeError:  # the reader went away (`| head`): not an error
            _silence_stdout()
            return 0
        except MemoryError as exc:
            print(f"labelsift: error: out of memory{': ' + _one_line(exc) if str(exc) else ''}", file=sys.stderr)
            return 2
        except (OSError, ValueError, TypeError) as exc:
            print(f"labelsift: error: {_one_line(exc)}", file=sys.stderr)
            return 2
    except Signalled as exc:
        return _signal_exit(exc.signum)
    except KeyboardInterrupt:
        return _signal_exit(signal.SIGINT)
    finally:
        warnings.showwarning = old_show
        for sig, prev in old_handlers.items():
            try:
                signal.signal(sig, prev)
            except (OSError, ValueError, TypeError):  # pragma: no cover
                pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
