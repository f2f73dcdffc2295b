"""labelsift.stream: the one-pass accumulator against the in-memory API.

The in-memory functions (get_confident_thresholds, compute_confident_joint,
estimate_py_and_noise_matrices_from_probabilities, find_label_issues) on the
rows sorted by example id are the ground truth. Every comparison is exact
(array_equal, dtypes included).
"""
from __future__ import annotations

import io
import os
import socket
import sys
import warnings

import numpy as np
import pytest

import labelsift
from labelsift.datasets import cifar10_test
from labelsift.stream import ConfidentJointAccumulator, NoiseEstimate
from support.constants import HAVE_TORCH
from support.data import flat_rows, grouped_softmax

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: the two sketches (adaptive: the default, checkpoints format 2; top_m: fixed width, format 1)
SKETCHES = ["adaptive", "top_m"]

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def in_memory(labels, pred_probs):
    t = labelsift.get_confident_thresholds(labels, pred_probs)
    cj = labelsift.compute_confident_joint(labels, pred_probs)
    joint = labelsift.estimate_joint(labels, pred_probs)
    py, nm, inv, cj2 = labelsift.estimate_py_and_noise_matrices_from_probabilities(labels, pred_probs)
    assert np.array_equal(cj, cj2)
    mask = labelsift.find_label_issues(labels, pred_probs)
    return dict(thresholds=t, confident_joint=cj, joint=joint, py=py, noise_matrix=nm,
                inverse_noise_matrix=inv, label_issues=mask)


def assert_counts_equal(res: NoiseEstimate, ref):
    for name in ("thresholds", "confident_joint", "joint", "py", "noise_matrix", "inverse_noise_matrix"):
        got, want = getattr(res, name), ref[name]
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


def assert_all_equal(res: NoiseEstimate, ref):
    assert res.exact and res.num_uncertain == 0 and res.counts_exact
    assert not res.uncertain.any() and not res.to_refine.any()
    assert_counts_equal(res, ref)
    assert res.label_issues.dtype == bool
    np.testing.assert_array_equal(res.label_issues, ref["label_issues"])


def feed(acc, ids, labels, probs, rng, nbatches=7):
    """Shuffled batches of uneven sizes."""
    perm = rng.permutation(len(ids))
    cuts = np.sort(rng.choice(np.arange(1, len(ids)), nbatches - 1, replace=False))
    for part in np.split(perm, cuts):
        acc.update(ids[part], labels[part], probs[part])
    return acc


def sparse_ids(n, rng):
    """Unique, non-contiguous ids of mixed sign, in random order."""
    return rng.choice(np.arange(-5 * n, 5 * n), n, replace=False)


def by_id(ids, *arrays):
    order = np.argsort(ids)
    return (ids[order],) + tuple(a[order] for a in arrays)


# ---------------------------------------------------------------------------
# Equality with the in-memory API
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_cifar10_shuffled_batches_equal_in_memory(dtype):
    data = cifar10_test()
    rng = np.random.default_rng(1)
    probs = data.pred_probs.astype(dtype)
    labels = data.labels  # uint16
    ids = sparse_ids(len(labels), rng).astype(np.int32)
    acc = feed(ConfidentJointAccumulator(10), ids, labels, probs, rng)
    res = acc.result()
    sids, slabels, sprobs = by_id(ids, labels, probs)
    np.testing.assert_array_equal(res.indices, sids)
    assert res.indices.dtype == np.int64
    assert_all_equal(res, in_memory(slabels, sprobs))
    np.testing.assert_array_equal(res.issue_ids, sids[res.label_issues])


@pytest.mark.parametrize("sketch", SKETCHES)
@pytest.mark.parametrize("top_m", [1, 2, 3])
def test_cifar10_small_sketch_still_exact(top_m, sketch):
    data = cifar10_test()
    rng = np.random.default_rng(top_m)
    ids = rng.permutation(len(data.labels))
    acc = feed(ConfidentJointAccumulator(10, top_m=top_m, sketch=sketch), ids, data.labels, data.pred_probs, rng, 3)
    sids, slabels, sprobs = by_id(ids, data.labels, data.pred_probs)
    assert_all_equal(acc.result(), in_memory(slabels, sprobs))


@pytest.mark.parametrize("sketch", SKETCHES)
@pytest.mark.parametrize(
    "k,n,dtype",
    [(10, 3000, np.float16), (100, 3000, np.float32), (100, 5000, np.float64), (1000, 8000, np.float32)],
)
def test_realistic_exact(k, n, dtype, sketch):
    labels, probs = grouped_softmax(n, k, dtype, seed=k)
    rng = np.random.default_rng(k + 1)
    ids = sparse_ids(n, rng)
    acc = feed(ConfidentJointAccumulator(k, sketch=sketch), ids, labels.astype(np.int16), probs, rng, 5)
    res = acc.result()
    sids, slabels, sprobs = by_id(ids, labels, probs)
    np.testing.assert_array_equal(res.indices, sids)
    ref = in_memory(slabels, sprobs)
    assert ref["label_issues"].sum() > 0
    assert_all_equal(res, ref)


def test_top_m_at_least_k_is_always_exact():
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 3, (400, 4)).astype(np.float64) + 1e-12  # many exact ties
    probs = (raw / raw.sum(axis=1, keepdims=True)).astype(np.float32)
    labels = rng.integers(0, 4, 400)
    acc = ConfidentJointAccumulator(4, top_m=10)
    acc.update(np.arange(400)[::-1], labels[::-1], probs[::-1])
    assert_all_equal(acc.result(), in_memory(labels, probs))


def test_absent_class_and_singleton():
    labels, probs = grouped_softmax(600, 10, np.float32, seed=5)
    labels = np.where(labels == 3, 4, labels)  # class 3 absent: thresholds become float64
    labels[np.flatnonzero(labels == 7)[1:]] = 8  # class 7 a singleton
    acc = ConfidentJointAccumulator(10, top_m=4)
    rng = np.random.default_rng(6)
    feed(acc, np.arange(600), labels, probs, rng, 4)
    res = acc.result()
    assert res.thresholds.dtype == np.float64 and res.thresholds[3] == 2.0
    ref = in_memory(labels, probs)
    np.testing.assert_array_equal(res.thresholds, ref["thresholds"])
    # the singleton's threshold is its one (mislabelled) example's tiny
    # probability: rows whose sketch lacks class 7 cannot rule it out
    decided = ~res.uncertain
    np.testing.assert_array_equal(res.label_issues[decided], ref["label_issues"][decided])
    assert_all_equal(refine_until_exact(acc, np.arange(600), probs, res), ref)


# ---------------------------------------------------------------------------
# Merge, checkpoints
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("sketch", SKETCHES)
def test_merge_disjoint_halves_equals_one_accumulator(sketch):
    labels, probs = grouped_softmax(2000, 100, np.float32, seed=7)
    rng = np.random.default_rng(8)
    ids = sparse_ids(2000, rng)
    half = rng.permutation(2000)
    a, b = half[:900], half[900:]
    acc_a = feed(ConfidentJointAccumulator(100, sketch=sketch), ids[a], labels[a], probs[a], rng, 3)
    acc_b = feed(ConfidentJointAccumulator(100, sketch=sketch), ids[b], labels[b], probs[b], rng, 4)
    whole = feed(ConfidentJointAccumulator(100, sketch=sketch), ids, labels, probs, rng, 2).result()
    merged = acc_a.merge(acc_b).result()
    assert len(acc_a) == 2000
    for f in ("thresholds", "confident_joint", "joint", "py", "noise_matrix", "inverse_noise_matrix",
              "label_issues", "indices", "uncertain"):
        np.testing.assert_array_equal(getattr(merged, f), getattr(whole, f), err_msg=f)
    _, slabels, sprobs = by_id(ids, labels, probs)
    assert_all_equal(merged, in_memory(slabels, sprobs))


def test_merge_with_empty_and_into_empty():
    labels, probs = grouped_softmax(300, 10, np.float64, seed=9)
    full = ConfidentJointAccumulator(10).update(np.arange(300), labels, probs)
    empty = ConfidentJointAccumulator(10)
    r1 = full.merge(ConfidentJointAccumulator(10)).result()
    r2 = empty.merge(full).result()
    np.testing.assert_array_equal(r1.label_issues, r2.label_issues)
    np.testing.assert_array_equal(r1.confident_joint, r2.confident_joint)


@pytest.mark.parametrize("sketch", SKETCHES)
@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_state_dict_round_trip(dtype, sketch, tmp_path):
    labels, probs = grouped_softmax(1500, 20, dtype, seed=11)
    rng = np.random.default_rng(12)
    ids = sparse_ids(1500, rng)
    first, rest = np.arange(1000), np.arange(1000, 1500)
    acc = feed(ConfidentJointAccumulator(20, top_m=3, sketch=sketch), ids[first], labels[first], probs[first], rng, 4)
    st = acc.state_dict()
    assert all(isinstance(v, (int, np.ndarray)) for v in st.values())
    # through np.savez / np.load (an NpzFile), and through a plain dict of it
    path = tmp_path / "acc.npz"
    np.savez(path, **st)
    with np.load(path) as z:
        restored = ConfidentJointAccumulator(20, top_m=3, sketch=sketch).load_state_dict(z)
    buf = io.BytesIO()
    np.savez_compressed(buf, **st)
    buf.seek(0)
    restored2 = ConfidentJointAccumulator.from_state_dict(dict(np.load(buf)))
    for other in (restored, restored2):
        st2 = other.state_dict()
        assert st2.keys() == st.keys()
        for key in st:
            np.testing.assert_array_equal(st2[key], st[key], err_msg=key)
            assert np.asarray(st2[key]).dtype == np.asarray(st[key]).dtype, key
    # both continue identically (checkpoint, then resume the stream)
    for a in (acc, restored):
        a.update(ids[rest], labels[rest], probs[rest])
    r, rr = acc.result(), restored.result()
    for f in ("thresholds", "confident_joint", "py", "noise_matrix", "label_issues", "indices", "uncertain"):
        np.testing.assert_array_equal(getattr(rr, f), getattr(r, f), err_msg=f)
    assert (rr.exact, rr.num_uncertain) == (r.exact, r.num_uncertain)
    _, slabels, sprobs = by_id(ids, labels, probs)
    ref = in_memory(slabels, sprobs)
    if r.counts_exact:
        assert_counts_equal(r, ref)
    np.testing.assert_array_equal(r.label_issues[~r.uncertain], ref["label_issues"][~r.uncertain])
    # duplicates are still caught after a reload
    with pytest.raises(ValueError, match=f"id {int(ids[0])}"):
        restored.update(ids[:1], labels[:1], probs[:1])


def test_state_dict_of_empty_accumulator():
    st = ConfidentJointAccumulator(5, top_m=2).state_dict()
    acc = ConfidentJointAccumulator.from_state_dict(st)
    assert len(acc) == 0 and acc.dtype is None
    with pytest.raises(ValueError, match="no examples"):
        acc.result()


# ---------------------------------------------------------------------------
# When the sketch cannot decide
# ---------------------------------------------------------------------------
def refine_until_exact(acc, ids, probs, res, rounds=2):
    order = np.argsort(ids)
    for _ in range(rounds):
        if res.exact:
            break
        want = res.refine_ids
        assert len(want)
        acc.refine(want, probs[order][np.searchsorted(ids[order], want)])
        res = acc.result()
    return res


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adversarial_flat_rows_top1(seed):
    labels, probs = flat_rows(1500, 10, seed)
    rng = np.random.default_rng(seed)
    ids = sparse_ids(1500, rng)
    acc = feed(ConfidentJointAccumulator(10, top_m=1, sketch="top_m"), ids, labels, probs, rng, 3)
    res = acc.result()
    assert not res.exact and res.num_uncertain > 0
    assert res.num_uncertain == int(res.uncertain.sum())
    _, slabels, sprobs = by_id(ids, labels, probs)
    ref = in_memory(slabels, sprobs)
    # thresholds are always exact; the counts whenever every guess was decided
    np.testing.assert_array_equal(res.thresholds, ref["thresholds"])
    if res.counts_exact:
        assert_counts_equal(res, ref)
    decided = ~res.uncertain
    assert decided.any()
    np.testing.assert_array_equal(res.label_issues[decided], ref["label_issues"][decided])
    # a second pass over the rows it names makes it exact (two rounds at most)
    assert_all_equal(refine_until_exact(acc, ids, probs, res), ref)


def test_adversarial_counts_exact_but_selections_open():
    # uniformly random noise, K = 100: calibration rounds some prune counts up
    # and the extra picks are decided by tail probabilities the sketch lacks
    rng = np.random.default_rng(21)
    n, k = 3000, 100
    true = rng.integers(0, k, n)
    logits = rng.normal(0.0, 1.0, (n, k))
    logits[np.arange(n), true] += rng.normal(3.0, 1.5, n)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    labels = np.where(rng.random(n) < 0.2, rng.integers(0, k, n), true)
    acc = ConfidentJointAccumulator(k, sketch="top_m").update(np.arange(n), labels, probs)
    res = acc.result()
    ref = in_memory(labels, probs)
    assert res.counts_exact and not res.exact
    assert_counts_equal(res, ref)
    decided = ~res.uncertain
    np.testing.assert_array_equal(res.label_issues[decided], ref["label_issues"][decided])
    assert_all_equal(refine_until_exact(acc, np.arange(n), probs, res, rounds=1), ref)


@pytest.mark.parametrize("sketch", SKETCHES)
@pytest.mark.parametrize("seed", range(12))
def test_decided_part_always_agrees(seed, sketch):
    """Small random problems (ties, absent classes, float16): whatever the
    sketch decides equals the in-memory answer."""
    rng = np.random.default_rng(100 + seed)
    k = int(rng.choice([2, 3, 5, 12]))
    n = int(rng.integers(2, 250))
    if seed % 3 == 0:  # coarse grid: exact ties everywhere
        raw = rng.integers(0, 4, (n, k)).astype(np.float64) + 1e-9
        probs = raw / raw.sum(axis=1, keepdims=True)
    else:
        probs = rng.dirichlet(np.full(k, float(rng.choice([0.2, 1.0, 5.0]))), n)
    probs = probs.astype(rng.choice([np.float16, np.float32, np.float64]))
    labels = rng.integers(0, max(1, k - seed % 2), n)
    labels = np.where(rng.random(n) < 0.6, probs.argmax(axis=1), labels)
    ids = sparse_ids(n, rng)
    acc = ConfidentJointAccumulator(k, top_m=int(rng.choice([1, 2, 3])), sketch=sketch,
                                    avg_entries=int(rng.choice([1, 2, 64])), max_entries=int(rng.choice([1, 3, 64])))
    for part in np.array_split(rng.permutation(n), 3):
        acc.update(ids[part], labels[part], probs[part])
    _, slabels, sprobs = by_id(ids, labels, probs)
    ref = in_memory(slabels, sprobs)
    res = acc.result()
    np.testing.assert_array_equal(res.thresholds, ref["thresholds"])
    if res.counts_exact:
        assert_counts_equal(res, ref)
    decided = ~res.uncertain
    np.testing.assert_array_equal(res.label_issues[decided], ref["label_issues"][decided])
    assert_all_equal(refine_until_exact(acc, ids, probs, res), ref)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
@pytest.fixture
def small():
    labels, probs = grouped_softmax(50, 5, np.float32, seed=30)
    return np.arange(100, 150), labels, probs


def test_duplicate_ids(small):
    ids, labels, probs = small
    acc = ConfidentJointAccumulator(5)
    dup = ids.copy()
    dup[7] = dup[3]
    with pytest.raises(ValueError, match=f"duplicate example id {dup[3]}"):
        acc.update(dup, labels, probs)
    assert len(acc) == 0  # a rejected batch leaves no trace
    acc.update(ids[:30], labels[:30], probs[:30])
    with pytest.raises(ValueError, match="id 129 was already added"):
        acc.update(ids[29:], labels[29:], probs[29:])
    other = ConfidentJointAccumulator(5).update(ids[25:], labels[25:], probs[25:])
    with pytest.raises(ValueError, match="in both accumulators"):
        acc.merge(other)
    with pytest.raises(ValueError, match="itself"):
        acc.merge(acc)


def test_wrong_shapes_and_dtypes(small):
    ids, labels, probs = small
    acc = ConfidentJointAccumulator(5)
    with pytest.raises(ValueError, match="6 columns"):
        acc.update(ids, labels, np.hstack([probs, np.zeros((50, 1), np.float32)]))
    with pytest.raises(ValueError, match="indices has 49 entries"):
        acc.update(ids[:-1], labels, probs)
    with pytest.raises(ValueError, match="labels has 49 entries"):
        acc.update(ids, labels[:-1], probs)
    with pytest.raises(TypeError, match="integer example ids"):
        acc.update(ids.astype(float), labels, probs)
    with pytest.raises(TypeError, match="integer dtype"):
        acc.update(ids, labels.astype(float), probs)
    with pytest.raises(ValueError, match="2-D"):
        acc.update(ids, labels, probs[:, 0])
    acc.update(ids[:10], labels[:10], probs[:10])
    with pytest.raises(ValueError, match="same dtype"):
        acc.update(ids[10:], labels[10:], probs[10:].astype(np.float64))
    with pytest.raises(ValueError, match="num_classes"):
        ConfidentJointAccumulator(1)
    with pytest.raises(ValueError, match="top_m"):
        ConfidentJointAccumulator(5, top_m=0)
    with pytest.raises(ValueError, match="num_classes 6"):
        acc.merge(ConfidentJointAccumulator(6))
    with pytest.raises(ValueError, match="top_m 3"):
        acc.merge(ConfidentJointAccumulator(5, top_m=3))
    with pytest.raises(ValueError, match="dtype"):
        acc.merge(ConfidentJointAccumulator(5).update(ids[10:], labels[10:], probs[10:].astype(np.float16)))
    with pytest.raises(ValueError, match="num_classes=5, top_m=8"):
        ConfidentJointAccumulator(6).load_state_dict(acc.state_dict())


def test_bad_values_name_the_example_id(small):
    ids, labels, probs = small
    acc = ConfidentJointAccumulator(5)
    bad = probs.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match=r"example id 117, column 2, = .*nan.* is NaN"):
        acc.update(ids, labels, bad)
    bad = probs.copy()
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match="example id 104, column 1.*infinite"):
        acc.update(ids, labels, bad)
    bad = probs.copy()
    bad[9] *= 0.5
    with pytest.raises(ValueError, match="example id 109 sums to"):
        acc.update(ids, labels, bad)
    bad = probs.copy()
    bad[5, 0] = -0.5
    with pytest.raises(ValueError, match="example id 105, column 0.*outside"):
        acc.update(ids, labels, bad)
    y = labels.copy()
    y[12] = 5
    with pytest.raises(ValueError, match="label of example id 112 = 5 is not a class index"):
        acc.update(ids, y, probs)
    assert len(acc) == 0
    with pytest.raises(ValueError, match="no examples"):
        acc.result()


def test_refine_checks(small):
    ids, labels, probs = small
    acc = ConfidentJointAccumulator(5, top_m=1).update(ids[:40], labels[:40], probs[:40])
    with pytest.raises(ValueError, match="id 145 was never added"):
        acc.refine(ids[45:46], probs[45:46])
    changed = probs[:1].copy()
    changed[0, [0, 1]] = changed[0, [1, 0]]
    with pytest.raises(ValueError, match="id 100 differ"):
        acc.refine(ids[:1], changed)
    acc.refine(ids[:2], probs[:2])
    with pytest.raises(ValueError, match="id 101 was already refined"):
        acc.refine(ids[1:3], probs[1:3])


# ---------------------------------------------------------------------------
# torch.distributed
# ---------------------------------------------------------------------------
def test_all_reduce_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "torch.distributed", None)
    with pytest.raises(ImportError, match="needs PyTorch"):
        ConfidentJointAccumulator(5).all_reduce()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _all_reduce_worker(rank, world, port, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        labels, probs = grouped_softmax(1200, 20, np.float32, seed=40)
        ids = np.random.default_rng(41).permutation(1200) * 3 + 1
        mine = np.arange(rank, 1200, world)  # interleaved shards
        acc = ConfidentJointAccumulator(20, top_m=4)
        for part in np.array_split(mine, 3):
            acc.update(ids[part], labels[part], probs[part])
        res = acc.all_reduce().result()
        np.savez(os.path.join(out_dir, f"rank{rank}.npz"), mask=res.label_issues, indices=res.indices,
                 cj=res.confident_joint, py=res.py, exact=res.exact)
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed (all_reduce needs torch.distributed)")
def test_all_reduce_gloo_two_processes(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # never fork a process that ran OpenMP
    port = _free_port()
    procs = [ctx.Process(target=_all_reduce_worker, args=(r, 2, port, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    labels, probs = grouped_softmax(1200, 20, np.float32, seed=40)
    ids = np.random.default_rng(41).permutation(1200) * 3 + 1
    sids, slabels, sprobs = by_id(ids, labels, probs)
    ref = in_memory(slabels, sprobs)
    for rank in range(2):
        with np.load(tmp_path / f"rank{rank}.npz") as z:
            assert bool(z["exact"])
            np.testing.assert_array_equal(z["indices"], sids)
            np.testing.assert_array_equal(z["mask"], ref["label_issues"])
            np.testing.assert_array_equal(z["cj"], ref["confident_joint"])
            np.testing.assert_array_equal(z["py"], ref["py"])


def test_no_warnings_from_result():
    labels, probs = grouped_softmax(500, 10, np.float32, seed=50)
    acc = ConfidentJointAccumulator(10).update(np.arange(500), labels, probs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = acc.result()
    # and the result is the in-memory one where the sketch decided
    ref = in_memory(labels, probs)
    np.testing.assert_array_equal(res.thresholds, ref["thresholds"])
    np.testing.assert_array_equal(res.label_issues[~res.uncertain], ref["label_issues"][~res.uncertain])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_top_m_kernel_equals_numpy_definition(dtype):
    """The C++ top-m (first m of a stable descending sort, left-out max) == the NumPy definition."""
    from labelsift._cl.sketch import top_m as _top_m, top_m_numpy as _top_m_numpy

    rng = np.random.default_rng(11)
    for trial in range(150):
        b, k = int(rng.integers(1, 60)), int(rng.integers(2, 50))
        m = int(rng.integers(1, k))
        P = rng.random((b, k))
        if trial % 2:
            P = np.round(P * 4) / 4  # many exact ties
        if trial % 3 == 0:
            P[:, ::3] = -0.0  # signed zeros compare equal to +0.0
        P = P.astype(dtype)
        if trial % 5 == 0:
            P = np.asfortranarray(P)
        want = _top_m_numpy(P, m, np.int32)
        got = _top_m(P, m, np.int32)
        for w, g, name in zip(want, got, ("classes", "values", "left_out_max")):
            np.testing.assert_array_equal(g, w, err_msg=f"{name}, trial {trial}", strict=True)


# ---------------------------------------------------------------------------
# Threads and checkpoints as a trust boundary
# ---------------------------------------------------------------------------
def test_same_ids_from_four_threads_are_added_once():
    import threading

    labels, probs = grouped_softmax(40000, 10, np.float32, seed=31)
    ids = np.arange(40000)
    acc = ConfidentJointAccumulator(10)
    errors = []

    def feed():
        try:
            acc.update(ids, labels, probs)
        except ValueError as exc:
            errors.append(str(exc))

    threads_ = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    assert len(acc) == 40000 and len(errors) == 3 and all("already added" in e for e in errors)
    assert len(ConfidentJointAccumulator.from_state_dict(acc.state_dict())) == 40000


def test_pickle_and_copy_drop_the_lock(small):
    import copy
    import pickle

    ids, labels, probs = small
    acc = ConfidentJointAccumulator(5).update(ids, labels, probs)
    for b in (pickle.loads(pickle.dumps(acc)), copy.deepcopy(acc)):
        assert "_lock" not in acc.__getstate__() and b._lock is not acc._lock
        b.update([1], labels[:1], probs[:1])
        assert len(b) == 51 and len(acc) == 50


def _tampered(small, key, fn):
    ids, labels, probs = small
    acc = ConfidentJointAccumulator(5, top_m=2, sketch="top_m").update(ids, labels, probs)
    acc.refine(ids[:3], probs[:3])
    st = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in acc.state_dict().items()}
    out = fn(st[key])
    if out is not None:
        st[key] = out
    return acc, st


def _set(i, v):
    def f(a):
        a[i] = v
    return f


@pytest.mark.parametrize("key, fn, exc, match", [
    ("given", _set(3, 5.0), ValueError, "'given'.*outside"),
    ("given", _set(3, -1.0), ValueError, "'given'.*outside"),
    ("given", _set(3, np.nan), ValueError, "'given'.*non-finite"),
    ("top_values", lambda a: a[:, ::-1].copy(), ValueError, "'top_values'.*descending"),
    ("top_values", _set((0, 0), np.nan), ValueError, "'top_values'.*non-finite"),
    ("left_out_max", _set(0, np.nan), ValueError, "'left_out_max'.*non-finite"),
    ("left_out_max", _set(0, 1.5), ValueError, "'left_out_max'.*outside"),
    ("refined_rows", _set((0, 0), np.nan), ValueError, "'refined_rows'.*non-finite"),
    ("refined_rows", lambda a: a[::-1].copy(), ValueError, "'refined_rows'.*contradicts the sketch"),
    ("top_classes", lambda a: np.repeat(a[:, :1], a.shape[1], axis=1), ValueError, "'top_classes' repeats"),
    ("format_version", lambda a: "x", TypeError, "'format_version'"),
    ("ids", lambda a: a.reshape(-1, 2), ValueError, "'ids'.*1-D"),
])
def test_tampered_checkpoints_are_refused_by_field(small, key, fn, exc, match):
    acc, st = _tampered(small, key, fn)
    before = acc.result().label_issues
    with pytest.raises(exc, match=match):
        ConfidentJointAccumulator.from_state_dict(st)
    with pytest.raises(exc, match=match):
        acc.load_state_dict(st)
    assert len(acc) == 50 and np.array_equal(acc.result().label_issues, before)  # left as it was


def test_from_state_dict_of_none_or_a_path():
    for bad in (None, "state.npz", [("ids", [])]):
        with pytest.raises(TypeError, match="state must be a mapping"):
            ConfidentJointAccumulator.from_state_dict(bad)
