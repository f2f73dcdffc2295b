"""Input validation of the public confident-learning API.

Bad input must raise a clear ValueError / TypeError (FileNotFoundError for a
missing path) whose message names the offending row / column / label index;
the accepted edge cases (values a hair above 1, odd layouts, big-endian,
float16, uint64 labels) must work and give the same results as the reference.

The rule (the validation policy in ``labelsift/_common/arrays.py``): where
cleanlab 2.9.0 raises (non-array probabilities, mismatched lengths, 1-D
probabilities, labels >= K or < 0, non-integer or string labels, values
outside [-1e-6, 1 + 1e-4], fewer than 2 classes), and also where it silently
accepts NaN probabilities and rows that do not sum to 1 (within 1e-3), or
leaks an unrelated error (IndexError on float labels, errors on empty
arrays), labelsift raises a clear ``ValueError`` or ``TypeError`` naming the
offending row / column / label index.  Any integer label dtype is accepted.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import cleanlab.count

import labelsift
import labelsift.reference as reference
from support.constants import FILTER_BY, SCORE_METHODS
from support.data import valid_data

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

N, K = 30, 4
BAD_ROW = 7
LABEL_COL = 1  # y[BAD_ROW]
OTHER_COL = 3


def make_data(dtype=np.float64, n=N, k=K, seed=0):
    """Valid (labels, pred_probs); row BAD_ROW is labelled LABEL_COL."""
    return valid_data(dtype, n, k, seed, labelled_row=BAD_ROW, label=LABEL_COL)


CJ = np.array([[10, 1, 0, 1], [1, 8, 1, 0], [0, 2, 9, 0], [1, 0, 0, 6]], dtype=np.int64)


# Every public entry point, as f(labels, pred_probs, **kw).
def _calls():
    ls = labelsift
    calls = {
        "get_confident_thresholds": lambda y, p, **kw: ls.get_confident_thresholds(y, p, **kw),
        "compute_confident_joint": lambda y, p, **kw: ls.compute_confident_joint(y, p, **kw),
        "compute_confident_joint(calibrate=False, return_indices_of_off_diagonals=True)": (
            lambda y, p, **kw: ls.compute_confident_joint(y, p, calibrate=False,
                                                          return_indices_of_off_diagonals=True, **kw)),
        "estimate_joint": lambda y, p, **kw: ls.estimate_joint(y, p, **kw),
        "estimate_py_and_noise_matrices_from_probabilities": (
            lambda y, p, **kw: ls.estimate_py_and_noise_matrices_from_probabilities(y, p, **kw)),
        "num_label_issues(off_diagonal)": lambda y, p, **kw: ls.num_label_issues(y, p, **kw),
        "num_label_issues(off_diagonal_calibrated)": (
            lambda y, p, **kw: ls.num_label_issues(y, p, estimation_method="off_diagonal_calibrated", **kw)),
        "num_label_issues(off_diagonal_custom)": (
            lambda y, p, **kw: ls.num_label_issues(y, p, confident_joint=CJ,
                                                   estimation_method="off_diagonal_custom", **kw)),
        "find_label_issues(confident_joint=CJ)": (
            lambda y, p, **kw: ls.find_label_issues(y, p, confident_joint=CJ, **kw)),
        "find_label_issues(ranked)": (
            lambda y, p, **kw: ls.find_label_issues(y, p, return_indices_ranked_by="normalized_margin", **kw)),
        "get_label_quality_scores(adjust_pred_probs=True)": (
            lambda y, p, **kw: ls.get_label_quality_scores(y, p, adjust_pred_probs=True, **kw)),
    }
    for fb in FILTER_BY:
        calls[f"find_label_issues({fb})"] = (
            lambda y, p, fb=fb, **kw: labelsift.find_label_issues(y, p, filter_by=fb, **kw))
    for m in SCORE_METHODS:
        calls[f"get_label_quality_scores({m})"] = (
            lambda y, p, m=m, **kw: labelsift.get_label_quality_scores(y, p, method=m, **kw))
        calls[f"order_label_issues({m})"] = (
            lambda y, p, m=m, **kw: labelsift.order_label_issues(np.ones(len(y), bool), y, p, rank_by=m, **kw))
    return calls


CALLS = _calls()
CALL_IDS = sorted(CALLS)

def _cell(r, c):
    return rf"pred_probs\[{r}, {c}\]"


# ---------------------------------------------------------------------------
# Bad values in pred_probs: every entry point names the row and column
# ---------------------------------------------------------------------------
def _nan_params():
    out = []
    for name in CALL_IDS:
        for col in (LABEL_COL, OTHER_COL):
            out.append(pytest.param(name, col, id=f"{name}-col{'=label' if col == LABEL_COL else col}"))
    return out


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name, col", _nan_params())
def test_nan_named(name, col, dtype):
    """A NaN is named by row and column in every entry point, also in the given
    label's own column (which reaches the per-class thresholds before the value
    sweep: the library validates first)."""
    y, p = make_data(dtype)
    p[BAD_ROW, col] = np.nan
    with pytest.raises(ValueError) as info:
        CALLS[name](y, p)
    msg = str(info.value)
    assert re.search(_cell(BAD_ROW, col), msg) and "NaN" in msg, f"message does not name [{BAD_ROW}, {col}]: {msg!r}"


# Every entry point with the bad value off the label column; the label column
# (which feeds the thresholds) through the four main ones.
_VALUE_CALLS = [pytest.param(name, OTHER_COL, id=f"{name}-col{OTHER_COL}") for name in CALL_IDS] + [
    pytest.param(name, LABEL_COL, id=f"{name}-col=label")
    for name in ("get_confident_thresholds", "compute_confident_joint", "find_label_issues(prune_by_noise_rate)",
                 "get_label_quality_scores(normalized_margin)")
]


@pytest.mark.parametrize("value, words", [
    (np.inf, "infinite"),
    (-np.inf, "infinite"),
    (1.5, "outside"),
    (-0.1, "outside"),
    (1.0 + 2e-4, "outside"),  # just above the accepted 1 + 1e-4
    (-2e-6, "outside"),  # just below the accepted -1e-6
])
@pytest.mark.parametrize("name, col", _VALUE_CALLS)
def test_bad_value_named(name, col, value, words):
    y, p = make_data()
    p[BAD_ROW, col] = value
    with pytest.raises(ValueError, match=_cell(BAD_ROW, col)) as info:
        CALLS[name](y, p)
    assert words in str(info.value)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", CALL_IDS)
def test_row_not_summing_to_one_named(name, dtype):
    y, p = make_data(np.float64)
    p[BAD_ROW] *= 0.5
    p = p.astype(dtype)
    with pytest.raises(ValueError, match=rf"row {BAD_ROW} sums to 0\.5"):
        CALLS[name](y, p)


@pytest.mark.parametrize("name", ["find_label_issues(prune_by_noise_rate)", "get_confident_thresholds",
                                  "get_label_quality_scores(self_confidence)"])
def test_logits_rejected(name):
    y, _ = make_data()
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(N, K)) * 3
    logits[0] = [2.0, -1.0, 0.5, 0.1]
    with pytest.raises(ValueError, match=_cell(0, 0)):
        CALLS[name](y, logits)
    # Scores in [0, 1] that are not probabilities (e.g. per-class sigmoids).
    scores = 1 / (1 + np.exp(-logits))
    with pytest.raises(ValueError, match=r"row 0 sums to"):
        CALLS[name](y, scores)
    # Only one row of scores among probabilities: that row is named.
    _, p = make_data()
    p[BAD_ROW] = scores[BAD_ROW]
    with pytest.raises(ValueError, match=rf"row {BAD_ROW} sums to"):
        CALLS[name](y, p)


@pytest.mark.parametrize("n_jobs", [1, 2, 3])
def test_first_bad_row_is_named(n_jobs):
    y, p = make_data(n=400)
    p[311, 2] = np.nan
    p[150, 0] = 1.5
    p[390] *= 0.5
    with pytest.raises(ValueError, match=_cell(150, 0)):
        labelsift.get_label_quality_scores(y, p, n_jobs=n_jobs)
    with pytest.raises(ValueError, match=_cell(150, 0)):
        labelsift.find_label_issues(y, p, filter_by="predicted_neq_given", n_jobs=n_jobs)


def test_bad_row_in_shard_is_named_by_global_index(tmp_path):
    y, p = make_data(n=50)
    q = p.copy()
    q[23, OTHER_COL] = np.inf  # in shard 1 (rows 20..34), local row 3
    paths = []
    for i, (a, b) in enumerate([(0, 20), (20, 35), (35, 50)]):
        paths.append(tmp_path / f"s{i}.npy")
        np.save(paths[-1], q[a:b])
    with pytest.raises(ValueError, match=_cell(23, OTHER_COL)):
        labelsift.find_label_issues(y, paths)
    with pytest.raises(ValueError, match=_cell(23, OTHER_COL)):
        labelsift.get_label_quality_scores(y, [str(x) for x in paths])


def test_nan_outside_a_strided_view_is_ignored():
    y, p = make_data()
    wide = np.full((N, 2 * K), np.nan)
    wide[:, ::2] = p
    view = wide[:, ::2]
    np.testing.assert_array_equal(labelsift.find_label_issues(y, view), labelsift.find_label_issues(y, p))


# ---------------------------------------------------------------------------
# Bad labels
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad_label", [K, K + 5, -1])
@pytest.mark.parametrize("name", CALL_IDS)
def test_label_out_of_range_named(name, bad_label):
    y, p = make_data()
    y[BAD_ROW] = bad_label
    with pytest.raises(ValueError, match=rf"labels\[{BAD_ROW}\] = {bad_label}\b"):
        CALLS[name](y, p)


@pytest.mark.parametrize("label_dtype", [np.int8, np.int16, np.int32, np.int64])
def test_negative_label_any_dtype(label_dtype):
    y, p = make_data()
    y = y.astype(label_dtype)
    y[BAD_ROW] = -3
    with pytest.raises(ValueError, match=rf"labels\[{BAD_ROW}\]"):
        labelsift.find_label_issues(y, p)


@pytest.mark.parametrize("label_dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_unsigned_label_too_large(label_dtype):
    y, p = make_data()
    y = y.astype(label_dtype)
    y[BAD_ROW] = np.iinfo(label_dtype).max
    with pytest.raises(ValueError, match=rf"labels\[{BAD_ROW}\]"):
        labelsift.find_label_issues(y, p)


@pytest.mark.parametrize("name", CALL_IDS)
def test_float_labels_type_error(name):
    y, p = make_data()
    with pytest.raises(TypeError, match="integer"):
        CALLS[name](y.astype(np.float64), p)


@pytest.mark.parametrize("labels", [
    pytest.param(lambda y: y.astype(str), id="str-array"),
    pytest.param(lambda y: [str(v) for v in y], id="str-list"),
    pytest.param(lambda y: y.astype(object), id="object-array"),
    pytest.param(lambda y: np.array([int(v) for v in y[:-1]] + [None], dtype=object), id="object-with-None"),
])
@pytest.mark.parametrize("name", ["find_label_issues(prune_by_noise_rate)", "get_confident_thresholds",
                                  "get_label_quality_scores(self_confidence)", "compute_confident_joint"])
def test_string_or_object_labels_type_error(name, labels):
    y, p = make_data()
    with pytest.raises(TypeError, match="labels"):
        CALLS[name](labels(y), p)


def test_2d_labels_rejected():
    y, p = make_data()
    with pytest.raises(ValueError, match="1-D"):
        labelsift.find_label_issues(y[:, None], p)


# ---------------------------------------------------------------------------
# Bad shapes and dtypes of pred_probs
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["find_label_issues(prune_by_noise_rate)", "get_confident_thresholds",
                                  "compute_confident_joint", "get_label_quality_scores(normalized_margin)"])
class TestShapes:
    def test_object_pred_probs(self, name):
        y, p = make_data()
        with pytest.raises(TypeError, match="pred_probs"):
            CALLS[name](y, p.astype(object))

    def test_string_pred_probs(self, name):
        y, p = make_data()
        with pytest.raises(TypeError, match="pred_probs"):
            CALLS[name](y, p.astype(str))

    @pytest.mark.parametrize("int_dtype", [np.int64, np.uint8, bool])
    def test_integer_pred_probs(self, name, int_dtype):
        y, p = make_data()
        onehot = np.eye(K)[y].astype(int_dtype)
        with pytest.raises(TypeError, match="floating"):
            CALLS[name](y, onehot)

    def test_1d_pred_probs(self, name):
        y, p = make_data()
        with pytest.raises(ValueError, match=r"2-D.*\(30,\)"):
            CALLS[name](y, p[:, 0])

    def test_3d_pred_probs(self, name):
        y, p = make_data()
        with pytest.raises(ValueError, match=r"2-D.*\(1, 30, 4\)"):
            CALLS[name](y, p[None])

    @pytest.mark.parametrize("n_labels", [N - 1, N + 1])
    def test_mismatched_lengths(self, name, n_labels):
        y, p = make_data()
        y = np.resize(y, n_labels)
        with pytest.raises(ValueError, match=rf"{n_labels}.*{N}"):
            CALLS[name](y, p)

    def test_empty(self, name):
        with pytest.raises(ValueError, match="empty"):
            CALLS[name](np.zeros(0, np.int64), np.zeros((0, K)))

    def test_one_class(self, name):
        with pytest.raises(ValueError, match="at least 2 classes"):
            CALLS[name](np.zeros(N, np.int64), np.ones((N, 1)))

    def test_not_an_array(self, name):
        y, _ = make_data()
        with pytest.raises(TypeError, match="pred_probs"):
            CALLS[name](y, {"a": 1})


# ---------------------------------------------------------------------------
# Paths and shards
# ---------------------------------------------------------------------------
def test_missing_file(tmp_path):
    y, p = make_data()
    missing = tmp_path / "nope.npy"
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        labelsift.find_label_issues(y, missing)
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        labelsift.get_confident_thresholds(y, str(missing))
    np.save(tmp_path / "a.npy", p[:10])
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        labelsift.find_label_issues(y, [tmp_path / "a.npy", missing])
    np.save(tmp_path / "p.npy", p)
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        labelsift.find_label_issues(missing, tmp_path / "p.npy")


def test_pickled_object_npy_is_never_unpickled(tmp_path):
    canary, marker = tmp_path / "canary-ran", tmp_path / "unpickled"

    class Boom:
        def __init__(self, path):
            self.path = path

        def __reduce__(self):  # unpickling creates the file
            return (open, (str(self.path), "w"))

    # The canary proves that unpickling the file would leave a trace.
    np.save(tmp_path / "canary.npy", np.array([Boom(canary)], dtype=object), allow_pickle=True)
    np.load(tmp_path / "canary.npy", allow_pickle=True)
    assert canary.exists()

    path = tmp_path / "evil.npy"
    np.save(path, np.array([[Boom(marker), Boom(marker)]] * N, dtype=object), allow_pickle=True)
    y, p = make_data()
    with pytest.raises(ValueError, match="evil.npy"):
        labelsift.find_label_issues(y, path)
    with pytest.raises(ValueError, match="evil.npy"):
        labelsift.get_label_quality_scores(y, [str(path)])
    np.save(tmp_path / "ok.npy", p)
    lpath = tmp_path / "evil_labels.npy"
    np.save(lpath, np.array([Boom(marker)] * N, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="evil_labels.npy"):
        labelsift.find_label_issues(lpath, tmp_path / "ok.npy")
    assert not marker.exists(), "a pickled .npy was unpickled"


def test_shards_with_different_k(tmp_path):
    y, p = make_data()
    np.save(tmp_path / "a.npy", p[:10])
    np.save(tmp_path / "b.npy", np.full((N - 10, K + 1), 1.0 / (K + 1)))
    with pytest.raises(ValueError, match=r"shard 1 has 5 columns, shard 0 has 4"):
        labelsift.find_label_issues(y, [tmp_path / "a.npy", tmp_path / "b.npy"])


def test_shards_with_different_dtypes(tmp_path):
    y, p = make_data()
    np.save(tmp_path / "a.npy", p[:10])
    np.save(tmp_path / "b.npy", p[10:].astype(np.float32))
    with pytest.raises(TypeError, match="shard 1"):
        labelsift.find_label_issues(y, [tmp_path / "a.npy", tmp_path / "b.npy"])


# ---------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cj", [np.ones((K + 1, K + 1), np.int64), np.ones((K, K + 1), np.int64),
                                np.ones(K, np.int64)], ids=["5x5", "4x5", "1-D"])
def test_confident_joint_wrong_shape(cj):
    y, p = make_data()
    for fb in ("prune_by_noise_rate", "prune_by_class", "both"):
        with pytest.raises(ValueError, match=r"confident_joint must have shape \(4, 4\)"):
            labelsift.find_label_issues(y, p, filter_by=fb, confident_joint=cj)
    with pytest.raises(ValueError, match=r"confident_joint must have shape \(4, 4\)"):
        labelsift.num_label_issues(y, p, confident_joint=cj, estimation_method="off_diagonal_custom")


def test_confident_joint_bad_values():
    y, p = make_data()
    cj = CJ.copy()
    cj[2, 1] = -1
    with pytest.raises(ValueError, match=r"confident_joint\[2, 1\]"):
        labelsift.find_label_issues(y, p, confident_joint=cj)
    cjf = CJ.astype(float)
    cjf[0, 3] = np.nan
    with pytest.raises(ValueError, match=r"confident_joint\[0, 3\]"):
        labelsift.find_label_issues(y, p, confident_joint=cjf)


def test_bad_filter_by():
    y, p = make_data()
    with pytest.raises(ValueError, match="filter_by"):
        labelsift.find_label_issues(y, p, filter_by="prune_by_magic")


def test_bad_method():
    y, p = make_data()
    with pytest.raises(ValueError, match="entropy_v2"):
        labelsift.get_label_quality_scores(y, p, method="entropy_v2")
    with pytest.raises(ValueError, match="entropy_v2"):
        labelsift.order_label_issues(np.ones(N, bool), y, p, rank_by="entropy_v2")
    with pytest.raises(ValueError, match="entropy_v2"):
        labelsift.find_label_issues(y, p, return_indices_ranked_by="entropy_v2")
    with pytest.raises(ValueError, match="estimation"):
        labelsift.num_label_issues(y, p, estimation_method="entropy_v2")


def test_adjust_pred_probs_with_entropy():
    y, p = make_data()
    with pytest.raises(ValueError, match="adjust_pred_probs"):
        labelsift.get_label_quality_scores(y, p, method="confidence_weighted_entropy", adjust_pred_probs=True)
    with pytest.raises(ValueError, match="adjust_pred_probs"):
        labelsift.find_label_issues(y, p, return_indices_ranked_by="confidence_weighted_entropy",
                                    rank_by_kwargs={"adjust_pred_probs": True})


@pytest.mark.parametrize("n_jobs", [0, -1])
@pytest.mark.parametrize("name", CALL_IDS)
def test_bad_n_jobs(name, n_jobs):
    y, p = make_data()
    with pytest.raises(ValueError, match="n_jobs"):
        CALLS[name](y, p, n_jobs=n_jobs)


def test_order_label_issues_bad_mask():
    y, p = make_data()
    with pytest.raises(ValueError, match="label_issues_mask"):
        labelsift.order_label_issues(np.ones(N - 1, bool), y, p)


# ---------------------------------------------------------------------------
# Accepted edge cases
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_slightly_above_one_used_unchanged(dtype):
    y, p = make_data(dtype)
    over = dtype(1.00001)
    for r, c in ((BAD_ROW, LABEL_COL), (11, int(y[11])), (12, (int(y[12]) + 1) % K)):
        p[r] = 0
        p[r, c] = over
    p[13] = 0
    p[13, 0] = dtype(1 + 1e-4)  # the very edge
    p[14] = 0
    p[14, 2] = dtype(-1e-6) if dtype == np.float64 else dtype(0)
    p[14, 1] = 1
    assert (p > 1).sum() >= 3
    t = labelsift.get_confident_thresholds(y, p)
    want = np.array([np.mean(p[y == k, k]) for k in range(K)])
    assert t.dtype == dtype
    np.testing.assert_array_equal(t, np.clip(want, 2e-6, None).astype(dtype))
    assert t[LABEL_COL] == np.mean(p[y == LABEL_COL, LABEL_COL])  # includes 1.00001, unclipped
    np.testing.assert_array_equal(t, reference.get_confident_thresholds(y, p), strict=True)
    np.testing.assert_array_equal(t, cleanlab.count.get_confident_thresholds(y, p), strict=True)
    np.testing.assert_array_equal(labelsift.compute_confident_joint(y, p), reference.compute_confident_joint(y, p))
    _assert_issues_and_scores_match_reference(y, p)
    assert labelsift.get_label_quality_scores(y, p)[BAD_ROW] == over


def _assert_issues_and_scores_match_reference(y, p):
    for fb in FILTER_BY:
        np.testing.assert_array_equal(labelsift.find_label_issues(y, p, filter_by=fb),
                                      reference.find_label_issues(y, p, filter_by=fb), err_msg=fb)
    for m in SCORE_METHODS:
        np.testing.assert_array_equal(labelsift.get_label_quality_scores(y, p, method=m),
                                      reference.get_label_quality_scores(y, p, method=m), err_msg=m, strict=True)


def _bundle(y, p):
    out = [labelsift.get_confident_thresholds(y, p), labelsift.compute_confident_joint(y, p),
           labelsift.num_label_issues(y, p)]
    out += [labelsift.find_label_issues(y, p, filter_by=fb) for fb in FILTER_BY]
    out += [labelsift.find_label_issues(y, p, return_indices_ranked_by=m) for m in SCORE_METHODS]
    out += [labelsift.get_label_quality_scores(y, p, method=m) for m in SCORE_METHODS]
    out += [labelsift.get_label_quality_scores(y, p, method="normalized_margin", adjust_pred_probs=True)]
    return out


def _assert_bundle_equal(got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, w, err_msg=f"item {i}", strict=not np.isscalar(w))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_non_contiguous_and_read_only(dtype):
    y, p = make_data(dtype)
    want = _bundle(y, p)
    wide = np.full((2 * N, 3 * K), np.nan, dtype=dtype)
    wide[::2, ::3] = p
    view = wide[::2, ::3]
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    _assert_bundle_equal(_bundle(y, view), want)
    ro = p.copy()
    ro.setflags(write=False)
    _assert_bundle_equal(_bundle(y, ro), want)
    view.setflags(write=False)
    _assert_bundle_equal(_bundle(y, view), want)
    _assert_bundle_equal(_bundle(y, np.asfortranarray(p)), want)
    yro = y.copy()
    yro.setflags(write=False)
    _assert_bundle_equal(_bundle(yro, ro), want)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_big_endian_equals_native(dtype):
    y, p = make_data(dtype)
    big = p.astype(np.dtype(dtype).newbyteorder(">"))
    assert not big.dtype.isnative
    _assert_bundle_equal(_bundle(y, big), _bundle(y, p))
    _assert_bundle_equal(_bundle(y, big[:, ::-1][:, ::-1]), _bundle(y, p))


def test_big_endian_error_still_named():
    y, p = make_data(np.float32)
    p[BAD_ROW, OTHER_COL] = np.nan
    with pytest.raises(ValueError, match=_cell(BAD_ROW, OTHER_COL)):
        labelsift.get_label_quality_scores(y, p.astype(">f4"))


def test_float16_matches_reference():
    y, p = make_data(np.float16, n=200)
    np.testing.assert_array_equal(labelsift.get_confident_thresholds(y, p), reference.get_confident_thresholds(y, p),
                                  strict=True)
    _assert_issues_and_scores_match_reference(y, p)


@pytest.mark.parametrize("label_dtype", [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32])
def test_integer_label_dtypes(label_dtype):
    y, p = make_data()
    _assert_bundle_equal(_bundle(y.astype(label_dtype), p), _bundle(y, p))


def test_labels_as_list_and_path(tmp_path):
    y, p = make_data()
    _assert_bundle_equal(_bundle(y.tolist(), p), _bundle(y, p))
    np.save(tmp_path / "y.npy", y.astype(np.uint16))
    np.save(tmp_path / "p.npy", p)
    _assert_bundle_equal(_bundle(tmp_path / "y.npy", str(tmp_path / "p.npy")), _bundle(y, p))


def test_longdouble_accepted():
    y, p = make_data()
    ld = p.astype(np.longdouble)
    if ld.dtype == np.float64:
        pytest.skip("longdouble is float64 here")
    _assert_bundle_equal(_bundle(y, ld), _bundle(y, p))


def test_tiny_negative_and_row_sum_tolerance_accepted():
    y, p = make_data()
    q = p.copy()
    q[BAD_ROW, 0] += q[BAD_ROW, OTHER_COL] + 1e-6
    q[BAD_ROW, OTHER_COL] = -1e-6  # the lower bound itself
    q[BAD_ROW + 1] *= 1 + 9e-4  # within the 1e-3 row-sum tolerance
    # accepted, and used as given: the reference's answer on the same values
    np.testing.assert_array_equal(labelsift.find_label_issues(y, q), reference.find_label_issues(y, q))
    q[BAD_ROW + 1] = p[BAD_ROW + 1] * (1 + 2e-3)
    with pytest.raises(ValueError, match=rf"row {BAD_ROW + 1} sums to"):
        labelsift.find_label_issues(y, q)
