"""labelsift.distributed over 2-4 gloo processes on this machine: every
result equals the single-process call on the concatenated rows (masks and
scores concatenated over ranks; K x K results, counts and index arrays the
same on every rank), with uneven shards, an empty shard and a class that only
one rank holds, in both tie modes."""
import os
import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest

import labelsift
from labelsift.stream import ConfidentJointAccumulator

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.distributed

WORKER = os.path.join(os.path.dirname(__file__), "_worker.py")
FILTERS = ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
           "low_normalized_margin", "low_self_confidence"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(rng, n, k, dtype, coarse=False):
    """Noisy labels whose last class sits only at the end (one rank's rows)."""
    true = np.sort(rng.integers(0, k, n))
    logits = rng.normal(size=(n, k)) * 2
    logits[np.arange(n), true] += 2.5
    P = np.exp(logits)
    P /= P.sum(1, keepdims=True)
    if coarse:  # many equal values and margins: the tie rules matter
        P = np.round(P * 8) + 1e-3
        P /= P.sum(1, keepdims=True)
    labels = true.copy()
    flip = rng.random(n) < 0.25
    labels[flip] = rng.integers(0, k - 1, flip.sum())  # never the last class: it stays on the last rank
    return labels.astype(rng.choice([np.int64, np.int32, np.uint8])), P.astype(dtype)


def _softmax(S):
    e = np.exp(S - S.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(S.dtype)


def _bounds(n, world, rng):
    cuts = np.sort(rng.integers(0, n, world - 1))
    cuts[0] = cuts[0] // 3  # uneven
    b = [0, *cuts.tolist(), n]
    if world >= 3:
        b[2] = b[1]  # an empty shard
    return b


def _case_list(tmp_path, world):
    rng = np.random.default_rng(world)
    datasets = [
        _data(rng, 240, 4, np.float32),
        _data(rng, 300, 6, np.float64, coarse=True),
        _data(rng, 200, 3, np.float16, coarse=True),
    ]
    path = str(tmp_path / f"P{world}.npy")
    np.save(path, datasets[0][1])
    cases = []

    def add(d, fn, kind, path_=None, **kw):
        y, P = datasets[d]
        cases.append({"labels": y, "P": path_ or P, "full": P, "bounds": _bounds(len(y), world, rng), "fn": fn,
                      "kind": kind, "kwargs": kw})

    for d in range(len(datasets)):
        for ties in ("cleanlab", "lower_index"):
            for fb in FILTERS:
                add(d, "find_label_issues", "local", filter_by=fb, ties=ties)
            add(d, "find_label_issues", "replicated", return_indices_ranked_by="self_confidence", ties=ties)
            add(d, "find_label_issues", "replicated", return_indices_ranked_by="normalized_margin",
                filter_by="both", ties=ties)
            add(d, "compute_confident_joint", "replicated", return_indices_of_off_diagonals=True, ties=ties)
            add(d, "estimate_py_and_noise_matrices_from_probabilities", "replicated", ties=ties)
            add(d, "accumulator", "accumulator", ties=ties)
        add(d, "find_label_issues", "replicated", return_indices_ranked_by="confidence_weighted_entropy",
            filter_by="prune_by_class")
        add(d, "find_label_issues", "local", frac_noise=0.5, min_examples_per_class=3)
        add(d, "find_label_issues", "local", num_to_remove_per_class=[3] * datasets[d][1].shape[1])
        add(d, "get_confident_thresholds", "replicated")
        add(d, "compute_confident_joint", "replicated", calibrate=False)
        add(d, "estimate_joint", "replicated")
        for m in ("off_diagonal", "off_diagonal_calibrated"):
            add(d, "num_label_issues", "replicated", estimation_method=m)
        for m in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
            add(d, "get_label_quality_scores", "local", method=m)
        add(d, "get_label_quality_scores", "local", method="normalized_margin", adjust_pred_probs=True)
    add(0, "find_label_issues", "local", path_=path)  # each rank reads its rows of a memmap
    add(1, "find_label_issues", "local", filter_by="both")
    cases[-1]["torch"] = True
    add(1, "get_label_quality_scores", "local", method="normalized_margin")
    cases[-1]["torch"] = True
    # CUDA rows (the emulated device of tests/support/cuda_emu.py): on every rank, or on one
    # rank only (the others' on the host), C or Fortran order, labels on the host or the device
    for d, cuda in ((0, {"kind": "raw", "ranks": list(range(world)), "layout": "F", "labels": True}),
                    (1, {"kind": "torch", "ranks": list(range(world))}),
                    (1, {"kind": "raw", "ranks": [world - 1], "layout": "reversed"})):
        first = len(cases)
        for ties in ("cleanlab", "lower_index"):
            add(d, "find_label_issues", "local", ties=ties)
            add(d, "find_label_issues", "replicated", return_indices_ranked_by="normalized_margin",
                filter_by="both", ties=ties)
            add(d, "compute_confident_joint", "replicated", return_indices_of_off_diagonals=True, ties=ties)
        add(d, "find_label_issues", "local", filter_by="low_normalized_margin")
        add(d, "find_label_issues", "replicated", return_indices_ranked_by="confidence_weighted_entropy",
            filter_by="prune_by_class")
        add(d, "estimate_py_and_noise_matrices_from_probabilities", "replicated")
        add(d, "get_label_quality_scores", "local", method="confidence_weighted_entropy")
        add(d, "get_label_quality_scores", "local", method="self_confidence", adjust_pred_probs=True)
        for c in cases[first:]:
            c["cuda"] = cuda
    # Sinkhorn: labels (and SwAV's codes) of the rows, identical to one process's
    srng = np.random.default_rng(world + 10)
    S = srng.normal(size=(700, 9)).astype(np.float32)
    for kw in ({"n_iter": 7}, {"mode": "sela", "n_iter": 21}, {"tol": 1e-4, "max_iter": 200},
               {"kind": "probs", "lam": 10.0, "marginals": np.arange(1, 10) / 45.0, "n_iter": 4}):
        cases.append({"labels": np.zeros(700, np.int64), "P": S if kw.get("kind") != "probs" else _softmax(S),
                      "full": S if kw.get("kind") != "probs" else _softmax(S), "bounds": _bounds(700, world, rng),
                      "fn": "sinkhorn.self_label", "kind": "local", "kwargs": kw})
    cases.append({"labels": np.zeros(300, np.int64), "P": S[:300] / 4, "full": S[:300] / 4,
                  "bounds": _bounds(300, world, rng), "fn": "sinkhorn.swav_codes", "kind": "local", "kwargs": {}})
    # wide rows: what travels is O(N + K^2) per rank, far below the N x K values
    yw, Pw = _data(rng, 20000, 100, np.float32)
    cases.append({"labels": yw, "P": Pw, "full": Pw, "bounds": _bounds(20000, world, rng), "fn": "find_label_issues",
                  "kind": "local", "kwargs": {}, "volume": True})
    # a bad value on one rank: every rank raises the single process's error
    y, P = datasets[0]
    bad = P.copy()
    bad[len(P) - 3, 1] = np.nan
    cases.append({"labels": y, "P": bad, "full": bad, "bounds": _bounds(len(y), world, rng),
                  "fn": "find_label_issues", "kind": "error", "kwargs": {}})
    yb = y.astype(np.int64).copy()
    yb[len(y) - 2] = 9
    cases.append({"labels": yb, "P": P, "full": P, "bounds": _bounds(len(y), world, rng),
                  "fn": "compute_confident_joint", "kind": "error", "kwargs": {}})
    # a bad value in a rank's CUDA rows: every rank raises the single process's error
    cases.append({"labels": y, "P": bad, "full": bad, "bounds": _bounds(len(y), world, rng),
                  "fn": "find_label_issues", "kind": "error", "kwargs": {},
                  "cuda": {"kind": "raw", "ranks": list(range(world)), "layout": "F"}})
    return cases


def _expected(case):
    with labelsift.options(ties="cleanlab"):  # the workers' default (the suite pins lower_index here)
        return _expected_call(case)


def _expected_call(case):
    y, P, kw = case["labels"], case["full"], dict(case["kwargs"])
    if case["fn"] == "accumulator":
        acc = ConfidentJointAccumulator(P.shape[1])
        b = case["bounds"]
        for lo, hi in zip(b[:-1], b[1:]):
            if hi > lo:
                part = ConfidentJointAccumulator(P.shape[1])
                part.update(np.arange(lo, hi), y[lo:hi], P[lo:hi])
                acc.merge(part)
        res = acc.result(ties=kw.get("ties"))
        return res.label_issues, res.confident_joint, res.thresholds
    if case["fn"].startswith("sinkhorn."):
        import labelsift.sinkhorn as sk
        return getattr(sk, case["fn"].split(".")[1])(P, **kw)
    return getattr(labelsift, case["fn"])(y, P, **kw)


def _equal(a, b):
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def _run(tmp_path, world):
    cases = _case_list(tmp_path, world)
    cases_path = tmp_path / f"cases{world}.pkl"
    with open(cases_path, "wb") as fh:
        pickle.dump(cases, fh)
    out = tmp_path / f"out{world}"
    out.mkdir()
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", LABELSIFT_MAX_THREADS="2")
    procs = [subprocess.Popen([sys.executable, WORKER, str(r), str(world), str(port), str(cases_path), str(out)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for r in range(world)]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=300)[0].decode(errors="replace"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for r, p in enumerate(procs):
        assert p.returncode == 0, f"rank {r} exited with {p.returncode}:\n{logs[r][-3000:]}"
    ranks = []
    for r in range(world):
        with open(out / f"rank{r}.pkl", "rb") as fh:
            ranks.append(pickle.load(fh))
    return cases, ranks


@pytest.fixture(scope="module", params=[2, 3, 4])
def gloo_run(request, tmp_path_factory):
    return _run(tmp_path_factory.mktemp(f"gloo{request.param}"), request.param)


def test_every_result_equals_the_single_process_call(gloo_run):
    cases, ranks = gloo_run
    world = len(ranks)
    failures = []
    for i, case in enumerate(cases):
        got = [rk["results"][i] for rk in ranks]
        what = f"case {i}: {case['fn']}({case['kwargs']}) dtype {case['full'].dtype} bounds {case['bounds']}"
        if case["kind"] == "error":
            with pytest.raises(Exception) as exc_info:
                _expected(case)
            for tag, v in got:
                if tag != "err" or v[0] != type(exc_info.value).__name__ or v[1] != str(exc_info.value):
                    failures.append(f"{what}: expected {exc_info.value!r} on every rank, got {tag} {v!r}"[:800])
            continue
        errs = [v for tag, v in got if tag == "err"]
        if errs:
            failures.append(f"{what}: raised {errs[0][2]}")
            continue
        want = _expected(case)
        vals = [v for _, v in got]
        if case["kind"] == "local":
            if not _equal(np.concatenate([np.asarray(v) for v in vals]), np.asarray(want)):
                failures.append(f"{what}: concatenated local results differ")
        elif case["kind"] == "accumulator":
            for v in vals:
                if not _equal(tuple(v), tuple(want)):
                    failures.append(f"{what}: all_reduce differs from merge")
        else:
            for r, v in enumerate(vals):
                if not _equal(v if not isinstance(want, tuple) else tuple(v), want):
                    failures.append(f"{what}: rank {r} of {world} differs: {v!r} vs {want!r}"[:800])
    assert not failures, "\n".join(failures[:20])


def test_cases_exercise_ties_and_empty_shards(gloo_run, monkeypatch):
    """The cases hold what the scheme must get right (else the test could not
    fail): empty shards, and cleanlab-mode prune selections cut on equal
    margins (the gather of a class's whole margin column)."""
    from labelsift._cl import sharded
    cases, ranks = gloo_run
    assert any(c["bounds"][1] == c["bounds"][2] for c in cases) == (len(ranks) >= 3)
    calls = []
    real = sharded.step_tied_margins
    monkeypatch.setattr(sharded, "step_tied_margins", lambda *a: calls.append(1) or real(*a))
    for c in cases:
        if c["fn"] == "find_label_issues" and c["kwargs"] == {"filter_by": "prune_by_noise_rate", "ties": "cleanlab"}:
            b = c["bounds"]
            ex = sharded.LocalExecutor([(c["labels"][lo:hi], c["full"][lo:hi]) for lo, hi in zip(b[:-1], b[1:])])
            masks, _ = sharded.find(ex, sharded.place(ex), ties="cleanlab")
    assert calls


def test_communication_is_o_n_not_o_nk(gloo_run):
    cases, ranks = gloo_run
    (i, case), = [(i, c) for i, c in enumerate(cases) if c.get("volume")]
    n, k = case["full"].shape
    for rk in ranks:
        got = rk["report"][i]
        assert 0 < got["received_bytes"] < 0.2 * n * k * 4, got  # the other ranks' rows of P would be (1 - 1/R) n k 4
        assert got["sent_bytes"] < 0.2 * n * k * 4, got


def test_cuda_rows_ran_on_the_device(gloo_run):
    """The ranks whose rows were (emulated) CUDA arrays ran the device row pass
    once per call (their rows were not copied to the host for it), and the
    cases hold such ranks next to host ones."""
    cases, ranks = gloo_run
    world = len(ranks)
    seen = set()
    for i, c in enumerate(cases):
        if not c.get("cuda") or c["kind"] == "error" or c["fn"] == "get_label_quality_scores":
            continue
        for r, rk in enumerate(ranks):
            n_r = c["bounds"][r + 1] - c["bounds"][r]
            on = r in c["cuda"]["ranks"] and n_r > 0
            assert rk["report"][i]["device_row_passes"] == (1 if on else 0), (i, r, c["fn"], c["kwargs"])
            seen.add((c["cuda"]["kind"], len(c["cuda"]["ranks"]) == world))
    assert seen == {("raw", True), ("torch", True), ("raw", False)}
