"""One-pass, mergeable confident learning: :class:`ConfidentJointAccumulator`.

Feed batches of ``(example ids, given labels, predicted probabilities)`` in any
order, from any number of workers; merge the accumulators (or
``all_reduce`` them over ``torch.distributed``); call :meth:`result`. The
result equals what the in-memory API returns on the same data with the rows
sorted by example id -- ``get_confident_thresholds``,
``compute_confident_joint``, ``estimate_joint``,
``estimate_py_and_noise_matrices_from_probabilities`` and
``find_label_issues`` (default ``filter_by="prune_by_noise_rate"``) -- and it
*says* whether it could prove that (``exact``, ``num_uncertain``).

What is kept per example (memory O(N * top_m), independent of K)
-------------------------------------------------------------------
* its id and given label ``y``;
* ``g = P[y]``, in the input dtype;
* the ``top_m`` largest probabilities with their classes: the first ``top_m``
  entries of a stable descending sort of the row (ties: lower class first);
* ``left_out_max``: the largest probability among the classes *not* in the
  top-m (the given label included if it was left out); ``-inf`` when
  ``top_m >= K``.

What is proven at :meth:`result`
---------------------------------
Rows are ordered by id (the row order of the in-memory call), then:

* thresholds are always exact (they only need ``g``: summed per class in id
  order with NumPy's pairwise scheme, by the kernel the in-memory path uses);
* the argmax is always exact (the first entry of the top-m);
* a row's confident guess is decided when no left-out class can pass its
  cut (``left_out_max`` below the smallest cut among the classes the sketch
  of that row does not know), or when the known classes already fix it (two
  or more known classes pass: the argmax; exactly one passes and it is the
  argmax);
* the final unflagging test ("the given label is the argmax after adding
  1e-6 to P[y]") is decided unless ``left_out_max`` equals the nudged
  ``P[y]`` exactly;
* ``prune_by_noise_rate`` (for given class k and true class j with
  ``c = pcm[j, k] > 0``: the c rows of class k with the largest margin
  ``P[j] - P[k]`` in the dtype, ties by lower id): a margin is known when j is
  in the row's top-m; otherwise it lies between ``-2e-6 - P[k]`` (the
  validation floor) and ``left_out_max - P[k]`` (both rounded in the dtype,
  which keeps them bounds). A row is definitely selected when fewer than c
  other rows can beat its lowest possible margin, definitely not selected
  when c rows certainly beat its highest one.

If every confident guess is decided (``counts_exact``), the confident joint
and everything computed from it -- calibrated joint, noise matrices, ``py``
-- are exact. A row whose guess or whose final flag cannot be decided is
*uncertain*; ``num_uncertain`` counts them and ``exact`` is
``num_uncertain == 0``: then every field equals the in-memory result. While
some guess is undecided the counts may be off, so a flag is only reported as
decided when it does not depend on the counts at all (the given label wins
the unflagging test, or the class is too small to be pruned).

When the sketch cannot decide
-----------------------------
Calibration can round a prune count ``pcm[j, k]`` above the number of class-k
rows that clearly lean towards j; the last picks then go to rows where both
``P[j]`` and ``P[k]`` are tail values -- an order the sketch does not hold.
This is typical of uniformly random label noise with K in the hundreds.
:meth:`ConfidentJointAccumulator.refine` takes the full rows of the uncertain
examples it names (``result().refine_ids``), e.g. from a second pass over
just those; after it, ``result()`` decides them exactly. Two rounds at most:
when some confident guess is undecided, the first round settles the counts,
the second the selections those counts imply.

Best answer for undecided rows (``label_issues`` is always a full mask): the
in-memory algorithm run on the sketch with every left-out probability taken
as ``min(left_out_max, 0)`` -- so a left-out class never passes its threshold
and never wins a margin it is not proven to win -- and an unbreakable tie in
the unflagging test resolved in favour of the given label (row kept).

Ties: as everywhere in labelsift, exact ties are broken by the lower row
index, which here is the lower example id.

Kernels: per batch, validation (C++ ``validate``) and the top-m extraction
(C++ ``top_m_rows``, one pass per row; :func:`_top_m_numpy` is its NumPy
definition and test oracle); at the end, the per-class means use the C++
``class_means`` kernel, exactly as the in-memory path does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _cl, _latent
from ._arrays import PROB_HIGH, PROB_LOW, Probs, _as_2d, _kernel_dtype, row_sum_tolerance
from ._backend import core, threads

__all__ = ["ConfidentJointAccumulator", "NoiseEstimate"]

_STATE_VERSION = 1
# Rows per chunk of the per-batch top-m extraction (bounds the temporaries).
_CHUNK_ELEMS = 1 << 18
# A value below every accepted probability (the validation floor is -1e-6),
# still below it after rounding to float16.
_FLOOR = -2e-6
_FIELDS = ("ids", "labels", "given", "top_classes", "top_values", "left_out_max")


@dataclass
class NoiseEstimate:
    """What :meth:`ConfidentJointAccumulator.result` returns.

    Arrays over examples are ordered by example id (``indices``).

    Attributes
    ----------
    thresholds : (K,) per-class thresholds, as ``get_confident_thresholds``.
    confident_joint : (K, K) int64 calibrated confident joint, as
        ``compute_confident_joint`` (rows = given, columns = guessed true).
    joint : (K, K) ``confident_joint / sum``, as ``estimate_joint``.
    noise_matrix : (K, K) ``P(given | true)``, as
        ``estimate_py_and_noise_matrices_from_probabilities`` (defaults:
        ``converge_latent_estimates=True``, ``py_method="cnt"``).
    inverse_noise_matrix : (K, K) ``P(true | given)``, idem.
    py : (K,) latent prior, idem.
    label_issues : (N,) bool mask, as ``find_label_issues`` with
        ``filter_by="prune_by_noise_rate"`` (best answer where uncertain).
    indices : (N,) int64 sorted example ids the mask refers to.
    exact : True when every field is proven equal to the in-memory result.
    num_uncertain : number of examples the sketch could not decide.
    uncertain : (N,) bool, the examples counted in ``num_uncertain``.
    counts_exact : True when every confident guess was decided, so
        ``confident_joint``, ``joint``, ``noise_matrix``,
        ``inverse_noise_matrix`` and ``py`` are exact even if a flag is not.
    to_refine : (N,) bool, the examples whose full rows
        ``ConfidentJointAccumulator.refine`` needs to settle every open
        question (``refine_ids``): the undecided guesses while the counts are
        not exact, else the undecided unflagging tests plus the rows whose
        unknown margin competes for an undecided selection (not always
        themselves uncertain). Empty when ``exact``.
    """

    thresholds: np.ndarray
    confident_joint: np.ndarray
    joint: np.ndarray
    noise_matrix: np.ndarray
    inverse_noise_matrix: np.ndarray
    py: np.ndarray
    label_issues: np.ndarray
    indices: np.ndarray
    exact: bool
    num_uncertain: int
    uncertain: np.ndarray
    counts_exact: bool
    to_refine: np.ndarray

    @property
    def issue_ids(self) -> np.ndarray:
        """Example ids flagged as label issues (ascending)."""
        return self.indices[self.label_issues]

    @property
    def uncertain_ids(self) -> np.ndarray:
        """Example ids the sketch could not decide."""
        return self.indices[self.uncertain]

    @property
    def refine_ids(self) -> np.ndarray:
        """Example ids whose full rows ``refine`` needs (see ``to_refine``)."""
        return self.indices[self.to_refine]


# ---------------------------------------------------------------------------
# Duplicate detection: sorted runs of ids, merged when of similar size
# (amortised O(N log N) in all, O(B log^2 N) per membership query).
# ---------------------------------------------------------------------------
class _IdRuns:
    def __init__(self):
        self.runs: list[np.ndarray] = []

    def present(self, ids_sorted: np.ndarray) -> np.ndarray:
        hit = np.zeros(len(ids_sorted), bool)
        for run in self.runs:
            pos = np.minimum(np.searchsorted(run, ids_sorted), len(run) - 1)
            hit |= run[pos] == ids_sorted
        return hit

    def add(self, ids_sorted: np.ndarray) -> None:
        if len(ids_sorted) == 0:
            return
        self.runs.append(ids_sorted)
        while len(self.runs) >= 2 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            b = self.runs.pop()
            a = self.runs.pop()
            self.runs.append(np.sort(np.concatenate([a, b]), kind="stable"))

    def all_sorted(self) -> np.ndarray:
        if not self.runs:
            return np.empty(0, np.int64)
        if len(self.runs) > 1:
            self.runs = [np.sort(np.concatenate(self.runs), kind="stable")]
        return self.runs[0]


def _as_ids(indices, n: int) -> np.ndarray:
    """Example ids as a fresh int64 array (never a view of the caller's)."""
    if hasattr(indices, "__cuda_array_interface__"):
        raise TypeError("indices is a CUDA array; pass a NumPy array")
    a = np.asarray(indices)
    if a.dtype.kind not in "iu" or a.dtype == np.bool_:
        raise TypeError(f"indices must be integer example ids, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"indices must be 1-D, got shape {a.shape}")
    if len(a) != n:
        raise ValueError(f"indices has {len(a)} entries but pred_probs has {n} rows")
    if a.dtype == np.uint64 and n and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"example id {int(a.max())} does not fit in int64")
    return np.array(a, dtype=np.int64, copy=True)


def _half_keys(block: np.ndarray) -> np.ndarray:
    """uint16 keys ordered as the float16 values (-0.0 and +0.0 equal; no NaN)."""
    bits = block.view(np.uint16)
    key = (bits.view(np.int16) >> 15).view(np.uint16)  # 0xffff for negatives, else 0
    key |= 0x8000
    key ^= bits  # negatives: ~bits, others: bits | 0x8000
    key += key == 0x7FFF  # -0.0 -> the key of +0.0
    return key


def _half_from_key(key: np.ndarray) -> np.ndarray:
    bits = np.where(key >= 0x8000, key ^ np.uint16(0x8000), ~key)
    return bits.astype(np.uint16).view(np.float16)


def _top_m(P: np.ndarray, m: int, cls_dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(classes (B, m), values (B, m), left_out_max (B,)) of each row: the C++
    kernel ``top_m_rows`` (one pass over each row, any strides); the NumPy
    :func:`_top_m_numpy` is its definition and test oracle."""
    B, K = P.shape
    if m >= K:
        return _top_m_numpy(P, m, cls_dtype)
    cls = np.empty((B, m), np.int32)
    vals = np.empty((B, m), P.dtype)
    rest = np.empty(B, P.dtype)
    core().top_m_rows(P, m, cls, vals, rest, threads(None))
    return cls.astype(cls_dtype, copy=False), vals, rest


def _top_m_numpy(P: np.ndarray, m: int, cls_dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(classes (B, m), values (B, m), left_out_max (B,)) of each row.

    The top-m are the first m entries of a stable descending sort of the row
    (ties: lower class first), in that order; left_out_max is the largest
    value outside them (the (m+1)-th order statistic), -inf when m == K.
    Computed as m successive first-index argmaxes (exactly that order) over
    cache-sized row chunks; float16 rows through order-preserving integer keys
    (NumPy's float16 argmax and conversions are slow).
    """
    B, K = P.shape
    dt = P.dtype
    if m >= K:
        cls = np.argsort(-P, axis=1, kind="stable")
        vals = np.take_along_axis(P, cls, axis=1)
        return cls.astype(cls_dtype), vals, np.full(B, -np.inf, dtype=dt)
    P = np.ascontiguousarray(P)
    half = dt == np.float16
    cls_out = np.empty((B, m), cls_dtype)
    rest_out = np.empty(B, dt)
    step = max(1, _CHUNK_ELEMS // K)
    for a in range(0, B, step):
        block = P[a : a + step]
        n = len(block)
        W = _half_keys(block) if half else block.copy()
        removed = 0 if half else -np.inf  # below every key / value
        rows = np.arange(n)
        for s in range(m):
            c = np.argmax(W, axis=1)
            cls_out[a : a + n, s] = c
            W[rows, c] = removed
        rest = W.max(axis=1)
        rest_out[a : a + n] = _half_from_key(rest) if half else rest
    val_out = np.take_along_axis(P, cls_out.astype(np.intp), axis=1)
    return cls_out, val_out, rest_out


def _sort_parts(parts: list, ncols: int):
    cols = [np.concatenate([p[c] for p in parts]) for c in range(ncols)]
    order = np.argsort(cols[0], kind="stable")
    return tuple(c[order] for c in cols)


class ConfidentJointAccumulator:
    """Accumulate, batch by batch, the sketch confident learning needs.

    Parameters
    ----------
    num_classes : K (>= 2).
    top_m : how many of the largest probabilities to keep per example
        (default 8). Memory is about ``N * (top_m * (itemsize + 2) + 20)``
        bytes whatever K is. ``top_m >= K`` keeps every probability (always
        exact).

    Example ids must be unique across all batches (``update`` and ``merge``
    raise ``ValueError`` on a repeat). Note that torch's
    ``DistributedSampler`` pads the last batch by repeating examples unless
    ``drop_last=True``: skip those repeats before ``update``.
    """

    def __init__(self, num_classes: int, *, top_m: int = 8):
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if isinstance(top_m, bool) or int(top_m) != top_m or top_m < 1:
            raise ValueError(f"top_m must be an integer >= 1, got {top_m!r}")
        self._k = int(num_classes)
        self._top_m = int(top_m)
        self._m = min(self._top_m, self._k)
        self._cls_dtype = np.dtype(np.uint16) if self._k <= 65535 else np.dtype(np.int32)
        self._clear()

    def _clear(self):
        self._dtype: np.dtype | None = None
        self._parts: list[tuple] = []  # (ids, labels, given, top_cls, top_val, left_out_max)
        self._sorted = False  # _parts is a single part sorted by id
        self._ids = _IdRuns()
        self._full: list[tuple] = []  # (ids, rows) given to refine()
        self._full_ids = _IdRuns()

    # -- properties ---------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self._k

    @property
    def top_m(self) -> int:
        return self._top_m

    @property
    def dtype(self):
        """The probabilities' dtype (None before the first non-empty batch)."""
        return self._dtype

    def __len__(self) -> int:
        return sum(len(p[0]) for p in self._parts)

    def __repr__(self) -> str:
        return (f"ConfidentJointAccumulator(num_classes={self._k}, top_m={self._top_m}, "
                f"examples={len(self)}, dtype={self._dtype})")

    # -- feeding ------------------------------------------------------------
    def _batch(self, indices, pred_probs):
        """Checked (ids, probabilities in the kernel dtype) of a batch."""
        P = _as_2d(pred_probs, "pred_probs")
        B, K = P.shape
        if K != self._k:
            raise ValueError(f"pred_probs has {K} columns, the accumulator has num_classes={self._k}")
        dt = _kernel_dtype(P.dtype)
        if self._dtype is not None and dt != self._dtype:
            raise ValueError(
                f"pred_probs has dtype {P.dtype}, earlier batches had {self._dtype}; "
                "every batch must have the same dtype"
            )
        ids = _as_ids(indices, B)
        return ids, P, dt

    @staticmethod
    def _sorted_unique(ids: np.ndarray) -> np.ndarray:
        ids_sorted = np.sort(ids, kind="stable")
        dup = np.flatnonzero(ids_sorted[1:] == ids_sorted[:-1])
        if len(dup):
            raise ValueError(f"duplicate example id {int(ids_sorted[dup[0]])} within this batch")
        return ids_sorted

    def update(self, indices, labels, pred_probs) -> "ConfidentJointAccumulator":
        """Add one batch: example ids (B,), given labels (B,), probabilities (B, K).

        Validated like the in-memory API (finite, in [-1e-6, 1 + 1e-4], rows
        summing to 1, labels in 0..K-1); errors name the example id. Returns self.
        """
        ids, P, dt = self._batch(indices, pred_probs)
        B = len(ids)
        y = self._check_labels(labels, B, ids)
        if B == 0:
            return self
        ids_sorted = self._sorted_unique(ids)
        seen = self._ids.present(ids_sorted)
        if seen.any():
            raise ValueError(f"example id {int(ids_sorted[np.argmax(seen)])} was already added to this accumulator")
        P = np.ascontiguousarray(P, dtype=dt)  # no copy for a C-ordered native array
        self._validate(P, y, ids)
        g = P[np.arange(B), y]
        tc, tv, rm = _top_m(P, self._m, self._cls_dtype)
        self._dtype = dt
        self._parts.append((ids, y.astype(np.int32), g, tc, tv, rm))
        self._sorted = False
        self._ids.add(ids_sorted)
        return self

    def refine(self, indices, pred_probs) -> "ConfidentJointAccumulator":
        """Give the full rows of examples already added, so ``result()`` decides them exactly.

        Meant for ``result().refine_ids`` (a second pass over just those
        rows; at most two rounds make the result exact). The rows must be the ones given to ``update`` (checked against
        the sketch). Costs ``len(indices) * K`` values of memory. Returns self.
        """
        ids, P, dt = self._batch(indices, pred_probs)
        B = len(ids)
        if B == 0:
            return self
        st = self._consolidated()
        if st is None:
            raise ValueError("refine: the accumulator holds no examples yet")
        ids_sorted = self._sorted_unique(ids)
        again = self._full_ids.present(ids_sorted)
        if again.any():
            raise ValueError(f"example id {int(ids_sorted[np.argmax(again)])} was already refined")
        pos = np.minimum(np.searchsorted(st[0], ids), len(st[0]) - 1)
        missing = st[0][pos] != ids
        if missing.any():
            raise ValueError(
                f"example id {int(ids[np.argmax(missing)])} was never added with update(); "
                "refine only takes examples the accumulator holds"
            )
        y = st[1][pos].astype(np.int64)
        P = np.array(P, dtype=dt, order="C", copy=True)
        self._validate(P, y, ids)
        tc, tv, rm = _top_m(P, self._m, self._cls_dtype)
        same = ((P[np.arange(B), y] == st[2][pos]) & (tc == st[3][pos]).all(axis=1)
                & (tv == st[4][pos]).all(axis=1) & (rm == st[5][pos]))
        if not same.all():
            raise ValueError(
                f"pred_probs of example id {int(ids[np.argmin(same)])} differ from the ones given to update()"
            )
        self._full.append((ids, P))
        self._full_ids.add(ids_sorted)
        return self

    def _check_labels(self, labels, n: int, ids: np.ndarray) -> np.ndarray:
        if hasattr(labels, "__cuda_array_interface__"):
            raise TypeError("labels is a CUDA array; pass a NumPy array")
        y = np.asarray(labels)
        if y.dtype.kind not in "iu" or y.dtype == np.bool_:
            if y.dtype.kind in "USO":
                raise TypeError(f"labels must be integers 0..K-1, got dtype {y.dtype} (strings or objects)")
            raise TypeError(f"labels must have an integer dtype, got {y.dtype}")
        if y.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {y.shape}")
        if len(y) != n:
            raise ValueError(f"labels has {len(y)} entries but pred_probs has {n} rows")
        bad = np.flatnonzero((y < 0) | (y >= self._k))
        if len(bad):
            i = int(bad[0])
            raise ValueError(
                f"label of example id {int(ids[i])} is {y[i]}, not a class index in 0..{self._k - 1}"
            )
        return np.ascontiguousarray(y, dtype=np.int64)

    @staticmethod
    def _validate(P, y, ids) -> None:
        err = core().validate(P, y, PROB_LOW, PROB_HIGH, row_sum_tolerance(P.dtype), threads(None))
        _cl.raise_row_error(
            P,
            err,
            lambda r: f"pred_probs row of example id {int(ids[r])}",
            lambda r, c: f"pred_probs of example id {int(ids[r])}, column {c},",
        )

    # -- combining ----------------------------------------------------------
    def _check_compatible(self, other: "ConfidentJointAccumulator") -> None:
        if not isinstance(other, ConfidentJointAccumulator):
            raise TypeError(f"can only merge a ConfidentJointAccumulator, got {type(other).__name__}")
        if other._k != self._k:
            raise ValueError(f"cannot merge: num_classes {other._k} != {self._k}")
        if other._top_m != self._top_m:
            raise ValueError(f"cannot merge: top_m {other._top_m} != {self._top_m}")
        if self._dtype is not None and other._dtype is not None and other._dtype != self._dtype:
            raise ValueError(f"cannot merge: dtype {other._dtype} != {self._dtype}")

    def merge(self, other: "ConfidentJointAccumulator") -> "ConfidentJointAccumulator":
        """Add everything ``other`` holds (its example ids must be new here). Returns self."""
        self._check_compatible(other)
        if other is self:
            if len(self):
                raise ValueError("cannot merge an accumulator with itself (every id would repeat)")
            return self
        if not len(other):
            return self
        theirs = other._ids.all_sorted()
        seen = self._ids.present(theirs)
        if seen.any():
            raise ValueError(f"cannot merge: example id {int(theirs[np.argmax(seen)])} is in both accumulators")
        self._dtype = other._dtype
        self._parts.extend(other._parts)  # stored arrays are never modified in place
        self._sorted = False
        self._ids.add(theirs)
        self._full.extend(other._full)
        self._full_ids.add(other._full_ids.all_sorted())
        return self

    def _consolidated(self):
        """All parts as one tuple of arrays sorted by id (and kept that way)."""
        if not self._parts:
            return None
        if len(self._parts) > 1 or not self._sorted:
            self._parts = [_sort_parts(self._parts, 6)]
            self._sorted = True
        return self._parts[0]

    def _refined(self):
        """(ids, rows) given to refine(), sorted by id."""
        if not self._full:
            return np.empty(0, np.int64), np.empty((0, self._k), self._dtype or np.float64)
        if len(self._full) > 1:
            self._full = [_sort_parts(self._full, 2)]
        return self._full[0]

    # -- checkpoints --------------------------------------------------------
    def state_dict(self) -> dict:
        """A plain dict of NumPy arrays and ints (np.savez / torch.save friendly).

        Arrays are sorted by example id; ``load_state_dict`` of it restores an
        accumulator whose results are identical.
        """
        st = self._consolidated()
        bits = 0 if self._dtype is None else self._dtype.itemsize * 8
        if st is None:
            dt = np.float64
            st = (np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, dt),
                  np.empty((0, self._m), self._cls_dtype), np.empty((0, self._m), dt), np.empty(0, dt))
        out = {
            "format_version": _STATE_VERSION,
            "num_classes": self._k,
            "top_m": self._top_m,
            "dtype_bits": bits,
        }
        for key, arr in zip(_FIELDS, st):
            out[key] = arr.copy()
        fid, frows = self._refined()
        out["refined_ids"] = fid.copy()
        out["refined_rows"] = frows.copy()
        return out

    def load_state_dict(self, state) -> "ConfidentJointAccumulator":
        """Replace this accumulator's content by a ``state_dict()`` (an ``np.load``-ed .npz works too)."""
        def scalar(key):
            if key not in state:
                raise ValueError(f"state dict has no {key!r}")
            return int(np.asarray(state[key]).item())

        version = scalar("format_version")
        if version != _STATE_VERSION:
            raise ValueError(f"unsupported state dict format_version {version} (expected {_STATE_VERSION})")
        k, top_m, bits = scalar("num_classes"), scalar("top_m"), scalar("dtype_bits")
        if k != self._k or top_m != self._top_m:
            raise ValueError(
                f"state dict is for num_classes={k}, top_m={top_m}; this accumulator has "
                f"num_classes={self._k}, top_m={self._top_m}"
            )
        arrays = {}
        for key in _FIELDS + ("refined_ids", "refined_rows"):
            if key not in state:
                raise ValueError(f"state dict has no {key!r}")
            arrays[key] = np.asarray(state[key])
        ids = np.array(arrays["ids"], dtype=np.int64, copy=True)
        n = len(ids)
        if bits not in (0, 16, 32, 64) or (bits == 0 and n):
            raise ValueError(f"state dict has a bad dtype_bits={bits}")
        dt = None if bits == 0 else np.dtype(f"float{bits}")
        nf = len(arrays["refined_ids"])
        shapes = {"labels": (n,), "given": (n,), "top_classes": (n, self._m), "top_values": (n, self._m),
                  "left_out_max": (n,), "refined_rows": (nf, self._k)}
        for key, shape in shapes.items():
            if arrays[key].shape != shape:
                raise ValueError(f"state dict {key!r} has shape {arrays[key].shape}, expected {shape}")
        y, tc = arrays["labels"], arrays["top_classes"]
        if y.dtype.kind not in "iu" or ((y < 0) | (y >= self._k)).any():
            raise ValueError("state dict has labels outside 0..K-1")
        if tc.dtype.kind not in "iu" or ((tc < 0) | (tc >= self._k)).any():
            raise ValueError("state dict has top_classes outside 0..K-1")
        if n:
            for key in ("given", "top_values", "left_out_max") + (("refined_rows",) if nf else ()):
                if arrays[key].dtype != dt:
                    raise ValueError(f"state dict {key!r} has dtype {arrays[key].dtype}, expected {dt}")
        ids_sorted = np.sort(ids, kind="stable")
        if (ids_sorted[1:] == ids_sorted[:-1]).any():
            raise ValueError("state dict has duplicate example ids")
        fid = np.array(arrays["refined_ids"], dtype=np.int64, copy=True)
        fid_sorted = np.sort(fid, kind="stable")
        if (fid_sorted[1:] == fid_sorted[:-1]).any():
            raise ValueError("state dict has duplicate refined ids")
        if nf and not np.isin(fid, ids).all():
            raise ValueError("state dict has refined ids that are not among its ids")

        self._clear()
        if n == 0:
            return self
        self._dtype = dt
        part = (ids, y.astype(np.int32), np.array(arrays["given"]), tc.astype(self._cls_dtype),
                np.array(arrays["top_values"]), np.array(arrays["left_out_max"]))
        self._parts = [_sort_parts([part], 6)]
        self._sorted = True
        self._ids.add(ids_sorted)
        if nf:
            self._full = [_sort_parts([(fid, np.array(arrays["refined_rows"]))], 2)]
            self._full_ids.add(fid_sorted)
        return self

    @classmethod
    def from_state_dict(cls, state) -> "ConfidentJointAccumulator":
        """A new accumulator holding ``state``."""
        acc = cls(int(np.asarray(state["num_classes"]).item()), top_m=int(np.asarray(state["top_m"]).item()))
        return acc.load_state_dict(state)

    def all_reduce(self, group=None) -> "ConfidentJointAccumulator":
        """Gather every rank's examples over ``torch.distributed`` so that every
        rank ends with the full state (ranks must hold disjoint ids). Returns self.

        Uses ``all_gather_object`` (pickled state dicts, O(N * top_m) bytes per
        rank); works with any backend, gloo included.
        """
        try:
            import torch.distributed as dist
        except ImportError as exc:
            raise ImportError(
                "ConfidentJointAccumulator.all_reduce needs PyTorch (torch.distributed), which is not "
                "installed; install torch, or exchange state_dict()s yourself and merge() them"
            ) from exc
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("all_reduce: torch.distributed is not initialised (call init_process_group first)")
        gathered = [None] * dist.get_world_size(group)
        dist.all_gather_object(gathered, self.state_dict(), group=group)
        total = ConfidentJointAccumulator(self._k, top_m=self._top_m)
        for st in gathered:
            total.merge(ConfidentJointAccumulator.from_state_dict(st))
        self.__dict__.update(total.__dict__)
        return self

    # -- the answer -----------------------------------------------------------
    def result(self) -> NoiseEstimate:
        """Thresholds, counts, noise matrices, py and the label-issue mask (see the module docstring)."""
        st = self._consolidated()
        if st is None:
            raise ValueError("the accumulator holds no examples")
        fid, frows = self._refined()
        return _result(*st, fid, frows, self._k, self._dtype)


# ---------------------------------------------------------------------------
# result(): the in-memory algorithm on the sketch, with proofs
# ---------------------------------------------------------------------------
def _result(ids, y32, g, tc, tv, rm, fid, frows, K, dtype) -> NoiseEstimate:
    N, m = tc.shape
    rows = np.arange(N, dtype=np.int64)
    y = y32.astype(np.int64)
    g = np.ascontiguousarray(g)
    fpos = np.searchsorted(ids, fid)  # rows given in full by refine()
    pb = _cl.Problem(y, Probs([], N, K, dtype), threads(None))
    label_counts = pb.label_counts()

    # thresholds (exact) and the cuts, compared exactly in float64
    thresholds = _cl.thresholds_from_given(pb, g)
    cut = _cl.cut_from_thresholds(thresholds, K, dtype).astype(np.float64)

    tc = tc.astype(np.int64)
    tv64 = tv.astype(np.float64)
    g64 = g.astype(np.float64)
    rm64 = rm.astype(np.float64)
    ycol = y[:, None]

    # -- confident guesses -------------------------------------------------
    pass_top = tv64 >= cut[tc]
    y_in_top = (tc == ycol).any(axis=1)
    pass_y = g64 >= cut[y]
    known_count = np.count_nonzero(pass_top, axis=1) + (pass_y & ~y_in_top)
    any_top = pass_top.any(axis=1)
    single = np.where(any_top, tc[rows, np.argmax(pass_top, axis=1)], y)
    amax = tc[:, 0]  # the first index of the row maximum, always exact
    guess = np.where(known_count == 0, -1, np.where(known_count == 1, single, amax))
    # smallest cut among the classes a row's sketch does not know (top-m and y)
    cut_order = np.argsort(cut, kind="stable")
    min_unknown_cut = np.full(N, np.inf)
    found = np.zeros(N, bool)
    for c in cut_order[: min(K, m + 2)]:
        new = ~found & ~((tc == c).any(axis=1) | (y == c))
        min_unknown_cut[new] = cut[c]
        found |= new
    guess_decided = (rm64 < min_unknown_cut) | (known_count >= 2) | ((known_count == 1) & (single == amax))

    # -- the unflagging test: y is the argmax after P[y] += 1e-6 -------------
    py_adj = (g + np.asarray(1e-6, dtype=dtype)).astype(np.float64)
    pa = py_adj[:, None]
    known_fail = (((tc < ycol) & (tv64 >= pa)) | ((tc > ycol) & (tv64 > pa))).any(axis=1)
    keep_decided = known_fail | (rm64 != py_adj)
    keep = ~known_fail & (rm64 <= py_adj)  # a tie with left_out_max: kept (best answer)

    if len(fpos):  # refined rows: everything is known
        R = frows.astype(np.float64)
        yf = y[fpos][:, None]
        passes = R >= cut
        n_pass = np.count_nonzero(passes, axis=1)
        guess[fpos] = np.where(n_pass == 0, -1, np.where(n_pass == 1, np.argmax(passes, axis=1), amax[fpos]))
        guess_decided[fpos] = True
        col = np.arange(K)
        paf = py_adj[fpos][:, None]
        keep[fpos] = ~(((col < yf) & (R >= paf)) | ((col > yf) & (R > paf))).any(axis=1)
        keep_decided[fpos] = True
    counts_exact = bool(guess_decided.all())

    cj_raw, _ = _cl.confident_joint_from_guesses(pb, guess.astype(np.int32))
    cj = _latent.calibrate_confident_joint(cj_raw, label_counts)
    joint = _latent.estimate_joint_from_calibrated(cj)
    py, noise_matrix, inverse_noise_matrix = _latent.estimate_latent(cj, label_counts, "cnt", True)

    # -- prune_by_noise_rate selections -------------------------------------
    pcm = _latent.keep_at_least_n_per_class(cj.T, 1)
    eligible = _cl._eligible(label_counts, 1)
    sel_def, sel_maybe, sel_best, competing = _prune_by_noise_rate(
        pcm, eligible, label_counts, y, g, tc, tv, rm, fpos, frows, K, dtype)

    mask = sel_best & ~keep
    kept_for_sure = keep_decided & keep
    if counts_exact:
        surely_not_selected = ~sel_def & ~sel_maybe
        flag_decided = kept_for_sure | surely_not_selected | (keep_decided & ~sel_maybe)
        to_refine = (~keep_decided & ~surely_not_selected) | competing
    else:  # the counts may be off: only count-independent answers are proven
        flag_decided = kept_for_sure | ~eligible[y]
        to_refine = ~guess_decided  # settle the counts first
    uncertain = ~flag_decided | ~guess_decided
    num_uncertain = int(np.count_nonzero(uncertain))
    if num_uncertain == 0:
        to_refine[:] = False  # open selections whose outcome no flag depends on
    return NoiseEstimate(
        thresholds=thresholds,
        confident_joint=cj,
        joint=joint,
        noise_matrix=noise_matrix,
        inverse_noise_matrix=inverse_noise_matrix,
        py=py,
        label_issues=mask,
        indices=ids.copy(),
        exact=num_uncertain == 0,
        num_uncertain=num_uncertain,
        uncertain=uncertain,
        counts_exact=counts_exact,
        to_refine=to_refine,
    )


def _count_better(A, Q, ids):
    """For each i: how many j != i have key (A[j], id j) better than (Q[i], id i).

    Better = larger margin, or equal margin and lower id (the selection order).
    """
    n = len(A)
    margins = np.concatenate([A, Q])
    idv = np.concatenate([ids, ids])
    is_a = np.concatenate([np.ones(n, np.int8), np.zeros(n, np.int8)])
    # on a complete tie (only i against itself) the query sorts first
    order = np.lexsort((is_a, idv, -margins))
    a_sorted = is_a[order].astype(np.int64)
    before = np.cumsum(a_sorted) - a_sorted
    out = np.empty(n, np.int64)
    q = a_sorted == 0
    out[order[q] - n] = before[q]
    return out - (A > Q)  # i's own A key, counted when strictly better than its Q key


def _prune_by_noise_rate(pcm, eligible, label_counts, y, g, tc, tv, rm, fpos, frows, K, dtype):
    """Row masks: (definitely selected, possibly selected, best-answer selected,
    unknown margin competing in an undecided selection).

    For given class k and true class j with c = pcm[j, k] > 0, the selection
    is the c rows of class k with the largest margin P[j] - P[k] (in the
    dtype; ties by lower row = lower id). Known margins: j in the row's top-m
    (or the row refined). Unknown ones lie in [floor - P[k], left_out_max - P[k]].
    """
    N, m = tc.shape
    sel_def = np.zeros(N, bool)
    sel_maybe = np.zeros(N, bool)
    c = np.array(pcm, dtype=np.int64, copy=True)  # [true j, given k]
    np.fill_diagonal(c, 0)
    c[:, ~eligible] = 0
    c[c < 0] = 0
    cbk = np.ascontiguousarray(c.T)  # [given k, true j]
    pk, pj = np.nonzero(cbk)  # pairs, sorted by (k, j)
    npairs = len(pk)
    competing = np.zeros(N, bool)
    if npairs == 0:
        return sel_def, sel_maybe, sel_def.copy(), competing
    n_k = label_counts[pk]
    cap = np.minimum(cbk[pk, pj], n_k)
    pair_keys = pk * K + pj
    pstart = np.zeros(K + 1, np.int64)
    np.cumsum(np.bincount(pk, minlength=K), out=pstart[1:])
    refined = np.zeros(N, bool)
    refined[fpos] = True

    # known entries (row, pair, margin): top-m classes of sketched rows ...
    ycol = y[:, None]
    valid = (tc != ycol) & (cbk[ycol, tc] > 0) & ~refined[:, None]
    ei, es = np.nonzero(valid)
    ep = np.searchsorted(pair_keys, y[ei] * K + tc[ei, es])
    em = (tv[ei, es] - g[ei]).astype(np.float64)  # P[j] - P[k] in the dtype
    if len(fpos):  # ... and every active pair of a refined row
        npf = pstart[y[fpos] + 1] - pstart[y[fpos]]
        local = np.repeat(np.arange(len(fpos)), npf)
        offs = np.arange(len(local)) - np.repeat(np.cumsum(npf) - npf, npf)
        fp = pstart[y[fpos]][local] + offs
        fm = (frows[local, pj[fp]] - g[fpos[local]]).astype(np.float64)
        ei, ep, em = np.concatenate([ei, fpos[local]]), np.concatenate([ep, fp]), np.concatenate([em, fm])
    o = np.lexsort((ei, -em, ep))  # by pair, margin descending, id ascending
    ei, ep, em = ei[o], ep[o], em[o]
    cnt = np.bincount(ep, minlength=npairs)
    start = np.zeros(npairs + 1, np.int64)
    np.cumsum(cnt, out=start[1:])
    rank = np.arange(len(ei)) - start[ep]

    # bounds of unknown margins (rounded in the dtype: rounding is monotone)
    ub = (rm - g).astype(np.float64)
    ub[refined] = -np.inf  # never unknown
    lb = (np.asarray(_FLOOR, dtype=dtype) - g).astype(np.float64)
    est = (np.minimum(rm, np.asarray(0, dtype=dtype)) - g).astype(np.float64)

    # fast path: the c-th best known margin beats every unknown upper bound.
    # The best unknown of a pair is the first row of its class, in upper-bound
    # order, that is not known for the pair; the known ones before it form a
    # prefix of that order.
    rows = np.arange(N, dtype=np.int64)
    by_ub = np.lexsort((rows, -ub, y))  # class, ub descending, id ascending
    cstart = np.zeros(K + 1, np.int64)
    np.cumsum(label_counts, out=cstart[1:])
    pos_in_class = np.empty(N, np.int64)
    pos_in_class[by_ub] = np.arange(N) - cstart[y[by_ub]]
    epos = pos_in_class[ei]
    o2 = np.lexsort((epos, ep))
    t_idx = np.arange(len(ei)) - start[ep[o2]]
    prefix = np.bincount(ep[o2], weights=(epos[o2] == t_idx), minlength=npairs).astype(np.int64)
    has_unknown = prefix < n_k
    best_unknown = by_ub[cstart[pk] + np.minimum(prefix, n_k - 1)]
    has_kappa = cnt >= cap
    kpos = np.where(has_kappa, start[:-1] + cap - 1, 0)
    if len(ei):
        k_m, k_i = em[kpos], ei[kpos]
    else:
        k_m, k_i = np.full(npairs, -np.inf), np.zeros(npairs, np.int64)
    u_m = ub[best_unknown]
    beats = (k_m > u_m) | ((k_m == u_m) & (k_i < best_unknown))
    full = cap >= n_k
    decided = full | ~has_unknown | (has_kappa & beats)

    take = decided[ep] & (rank < cap[ep])
    sel_def[ei[take]] = True
    full_class = np.zeros(K, bool)
    full_class[pk[full]] = True
    sel_def |= full_class[y]
    sel_best = sel_def.copy()

    # the other pairs: every row of the class, with both bounds
    und = np.flatnonzero(~decided)
    if len(und):
        by_class = np.argsort(y, kind="stable")
        for p in und:
            k, cp = pk[p], cap[p]
            members = by_class[cstart[k] : cstart[k + 1]]
            s, e = start[p], start[p + 1]
            loc = np.searchsorted(members, ei[s:e])
            hi, lo, best = ub[members], lb[members], est[members]
            hi[loc] = lo[loc] = best[loc] = em[s:e]
            d_sel = _count_better(hi, lo, members) < cp  # too few rows can beat its lowest margin
            d_not = _count_better(lo, hi, members) >= cp  # cp rows surely beat its highest margin
            sel_def[members[d_sel]] = True
            maybe = ~d_sel & ~d_not
            if maybe.any():
                sel_maybe[members[maybe]] = True
                unknown = np.ones(len(members), bool)
                unknown[loc] = False
                competing[members[unknown & ~d_not]] = True
            sel_best[members[np.lexsort((members, -best))[:cp]]] = True
    sel_maybe &= ~sel_def
    return sel_def, sel_maybe, sel_best, competing
