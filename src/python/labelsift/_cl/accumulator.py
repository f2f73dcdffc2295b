"""The bookkeeping of the streaming accumulator (:mod:`labelsift.stream`):
batches, duplicate ids, merging, refined rows, checkpoints. The algebra of
the answer is in :mod:`.sketch`."""
from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from .._common.arrays import as_2d, as_ids, as_labels, kernel_dtype, row_sum_tolerance, PROB_HIGH, PROB_LOW
from .._common.backend import core, threads
from .._common.checks import raise_row_error
from .._common.options import resolve_ties
from . import adaptive
from .sketch import NoiseEstimate, Sketch, result, top_m

__all__ = ["ConfidentJointAccumulator", "NoiseEstimate"]

_STATE_VERSION = 1  # sketch="top_m"
_FIELDS = ("ids", "labels", "given", "top_classes", "top_values", "left_out_max")
_SCALARS = ("format_version", "num_classes", "top_m", "dtype_bits")
_ALL_KEYS = _SCALARS + _FIELDS + ("refined_ids", "refined_rows")
_STATE_VERSION_CSR = 2  # sketch="adaptive"
_FIELDS_CSR = ("ids", "labels", "given", "ptr", "classes", "values", "rest")
_SCALARS_CSR = ("format_version", "num_classes", "top_m", "avg_entries", "max_entries", "dtype_bits", "level")
_ALL_KEYS_CSR = _SCALARS_CSR + _FIELDS_CSR + ("refined_ids", "refined_rows")
_SKETCHES = ("adaptive", "top_m")


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


def _sort_parts(parts: list, ncols: int):
    cols = [np.concatenate([p[c] for p in parts]) for c in range(ncols)]
    order = np.argsort(cols[0], kind="stable")
    return tuple(c[order] for c in cols)


class ConfidentJointAccumulator:
    """Accumulate, batch by batch, the sketch confident learning needs.

    Parameters
    ----------
    num_classes : K (>= 2).
    top_m : every example keeps at least its ``top_m`` largest probabilities
        (default 8; ties: lower class first). With ``sketch="top_m"`` exactly
        those. ``top_m >= K`` keeps every probability (always exact).
    sketch : ``"adaptive"`` (default) or ``"top_m"``.

        * ``"adaptive"``: each example keeps its top-``top_m`` plus every
          class j other than its label with ``P[j] - P[y] >= level`` (the
          classes that can still win a prune selection), at most
          ``max(max_entries, top_m)`` entries, and ``rest``, the largest
          probability it left out other than ``P[y]``. ``level`` starts at 0
          (the classes at least as probable as the given label) and is
          raised whenever the accumulator would hold more than
          ``avg_entries`` entries per example on average: it then becomes
          the lowest level at which the examples held keep about
          ``0.75 * avg_entries`` on average, and every held example is
          trimmed to it (exactly what that level would have kept). So flat
          rows keep many classes, peaked rows about ``top_m``, and memory
          stays below ``N * (avg_entries * (itemsize + c) + 24 + 2 * itemsize)``
          bytes after every call (c = 2 bytes per class for K <= 65535, else
          4; the 24 are the id, twice, the label and the entry count), plus
          one batch's sketch while it is added. Rows added under
          different levels are fine: each row's ``rest`` bounds what it left
          out. Checkpoints are ``format_version`` 2.
        * ``"top_m"``: today's fixed sketch, exactly ``top_m`` entries per
          example and ``left_out_max`` (memory about
          ``N * (top_m * (itemsize + 2) + 20)`` bytes); checkpoints are
          ``format_version`` 1.
    avg_entries : the adaptive sketch's budget of entries per example on
        average (default 64; on flat K = 1000 rows it keeps ~47 and leaves
        0.2-0.3% of 128,000 examples undecided, none of 500,000, see
        bench/RESULTS.md).
    max_entries : the adaptive sketch's most entries per example (default
        1024; at least ``top_m`` are kept whatever it says).

    ``memory_bytes()`` and ``stats()`` report what is held.

    Example ids must be unique across all batches (``update`` and ``merge``
    raise ``ValueError`` on a repeat). Note that torch's
    ``DistributedSampler`` pads the last batch by repeating examples unless
    ``drop_last=True``: skip those repeats before ``update``.

    Threads: ``update``, ``refine``, ``merge``, ``state_dict``,
    ``load_state_dict`` and ``result`` may be called from several threads at
    once (an internal lock; the per-batch validation and top-m extraction run
    outside it, so feeding threads overlap). A repeated id is caught whatever
    the interleaving. The lock is not part of the pickled state.

    Checkpoints: ``load_state_dict``/``from_state_dict`` treat the state as
    untrusted input and check every field's type, dtype, shape and range and
    the invariants between the fields (see :meth:`load_state_dict`); a
    refused state leaves the accumulator as it was.
    """

    def __init__(self, num_classes: int, *, top_m: int = 8, sketch: str = "adaptive", avg_entries: int = 64,
                 max_entries: int = 1024):
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if isinstance(top_m, bool) or int(top_m) != top_m or top_m < 1:
            raise ValueError(f"top_m must be an integer >= 1, got {top_m!r}")
        if sketch not in _SKETCHES:
            raise ValueError(f"sketch must be one of {', '.join(map(repr, _SKETCHES))}, got {sketch!r}")
        for name, v in (("avg_entries", avg_entries), ("max_entries", max_entries)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        self._k = int(num_classes)
        self._top_m = int(top_m)
        self._m = min(self._top_m, self._k)
        self._kind = sketch
        self._avg = int(avg_entries)
        self._max = int(max_entries)
        self._cap = min(max(self._max, self._top_m), self._k)
        self._cls_dtype = np.dtype(np.uint16) if self._k <= 65535 else np.dtype(np.int32)
        self._lock = threading.RLock()
        self._clear()

    # the lock is not state: pickling and copying drop it, unpickling makes a new one
    def __getstate__(self):
        with self._lock:
            d = dict(self.__dict__)
            d["_parts"] = list(d["_parts"])
            d["_full"] = list(d["_full"])
        d.pop("_lock", None)
        return d

    def __setstate__(self, d):
        self.__dict__.update(d)
        self._lock = threading.RLock()

    def _clear(self):
        self._dtype: np.dtype | None = None
        self._parts: list[tuple] = []  # (ids, labels, given, top_cls, top_val, left_out_max)
        self._sorted = False  # _parts is a single part sorted by id
        self._ids = _IdRuns()
        self._full: list[tuple] = []  # (ids, rows) given to refine()
        self._full_ids = _IdRuns()
        self._level = 0.0  # the adaptive sketch's margin level for the next rows
        self._entries = 0  # entries held by the adaptive parts

    # -- properties ---------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self._k

    @property
    def top_m(self) -> int:
        return self._top_m

    @property
    def sketch(self) -> str:
        """``"adaptive"`` or ``"top_m"``."""
        return self._kind

    @property
    def avg_entries(self) -> int:
        return self._avg

    @property
    def max_entries(self) -> int:
        return self._max

    @property
    def level(self) -> float:
        """The adaptive sketch's margin level for the next rows (0 until the budget first binds; nan for top-m)."""
        return self._level if self._kind == "adaptive" else float("nan")

    @property
    def dtype(self):
        """The probabilities' dtype (None before the first non-empty batch)."""
        return self._dtype

    def memory_bytes(self) -> int:
        """Bytes of the arrays this accumulator holds: the sketch, the rows given
        to ``refine``, and the sorted ids it checks repeats against."""
        with self._lock:
            n = sum(a.nbytes for p in self._parts for a in p)
            n += sum(a.nbytes for p in self._full for a in p)
            n += sum(r.nbytes for r in self._ids.runs) + sum(r.nbytes for r in self._full_ids.runs)
            return int(n)

    def stats(self) -> dict:
        """What is held: ``examples``, ``entries`` (probabilities kept in the
        sketch), ``entries_per_row`` (mean), ``max_row_entries``,
        ``refined_rows``, ``memory_bytes`` and ``bytes_per_row`` (all of
        :meth:`memory_bytes` over the examples), ``sketch`` and ``level``."""
        with self._lock:
            n = sum(len(p[0]) for p in self._parts)
            if self._kind == "adaptive":
                e = sum(len(p[4]) for p in self._parts)
                mx = max((int(p[3].max()) for p in self._parts if len(p[3])), default=0)
            else:
                e, mx = n * self._m, (self._m if n else 0)
            nf = sum(len(p[0]) for p in self._full)
            mem = self.memory_bytes()
        return dict(examples=n, entries=int(e), entries_per_row=e / n if n else 0.0, max_row_entries=mx,
                    refined_rows=nf, memory_bytes=mem, bytes_per_row=mem / n if n else 0.0, sketch=self._kind,
                    level=self.level)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(p[0]) for p in self._parts)

    def __repr__(self) -> str:
        extra = (f", avg_entries={self._avg}, max_entries={self._max}" if self._kind == "adaptive" else "")
        return (f"ConfidentJointAccumulator(num_classes={self._k}, top_m={self._top_m}, sketch={self._kind!r}"
                f"{extra}, examples={len(self)}, dtype={self._dtype})")

    # -- feeding ------------------------------------------------------------
    def _batch(self, indices, pred_probs):
        """Checked (ids, probabilities in the kernel dtype) of a batch."""
        P = as_2d(pred_probs, "pred_probs")
        B, K = P.shape
        if K != self._k:
            raise ValueError(f"pred_probs has {K} columns, the accumulator has num_classes={self._k}")
        dt = kernel_dtype(P.dtype)
        if self._dtype is not None and dt != self._dtype:
            raise ValueError(
                f"pred_probs has dtype {P.dtype}, earlier batches had {self._dtype}; "
                "every batch must have the same dtype"
            )
        ids = as_ids(indices, B)
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
        with self._lock:
            self._check_new_ids(ids_sorted)  # fail fast, before the expensive part
            level = self._level
        P = np.ascontiguousarray(P, dtype=dt)  # no copy for a C-ordered native array
        self._validate(P, y, ids)
        if self._kind == "adaptive":
            cnt, cls, vals, rest, g = adaptive.sketch_batch(P, y, self._m, self._cap, level, self._cls_dtype)
            part = (ids, y.astype(np.int32), g, cnt, cls, vals, rest)
        else:
            g = P[np.arange(B), y]
            tc, tv, rm = top_m(P, self._m, self._cls_dtype)
            part = (ids, y.astype(np.int32), g, tc, tv, rm)
        with self._lock:  # check again and add, as one step: another thread may have added these ids meanwhile
            if self._dtype is not None and dt != self._dtype:
                raise ValueError(
                    f"pred_probs has dtype {P.dtype}, earlier batches had {self._dtype}; "
                    "every batch must have the same dtype"
                )
            self._check_new_ids(ids_sorted)
            self._dtype = dt
            self._parts.append(part)
            self._sorted = False
            self._ids.add(ids_sorted)
            if self._kind == "adaptive":
                self._entries += len(part[4])
                self._keep_budget()
        return self

    def _keep_budget(self) -> None:
        """Adaptive sketch over budget (more than avg_entries per example): raise
        the level to keep FILL of it and trim every held row to that level."""
        n = sum(len(p[0]) for p in self._parts)
        if self._entries <= self._avg * n:
            return
        t = adaptive.budget_level(self._parts, self._m, adaptive.FILL * self._avg * n, self._level)
        self._level = max(self._level, t)
        self._parts = [adaptive.trim(p, self._level, self._m) for p in self._parts]
        self._entries = sum(len(p[4]) for p in self._parts)

    def _check_new_ids(self, ids_sorted: np.ndarray) -> None:
        seen = self._ids.present(ids_sorted)
        if seen.any():
            raise ValueError(f"example id {int(ids_sorted[np.argmax(seen)])} was already added to this accumulator")

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
        with self._lock:
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
            if self._kind == "adaptive":
                ent = adaptive.gather_rows(st[3], pos)
                same = adaptive.full_row_agrees(P, y, st[2][pos], st[3][pos], st[4][ent], st[5][ent], st[6][pos],
                                                self._m, self._cls_dtype)
            else:
                tc, tv, rm = top_m(P, self._m, self._cls_dtype)
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
        return as_labels(labels, n, self._k, row_name=lambda i: f"label of example id {int(ids[i])}")

    @staticmethod
    def _validate(P, y, ids) -> None:
        tol = row_sum_tolerance(P.dtype)
        err = core().validate(P, y, PROB_LOW, PROB_HIGH, tol, threads(None))
        raise_row_error(P, err, lambda r: f"pred_probs row of example id {int(ids[r])}",
                        lambda r, c: f"pred_probs of example id {int(ids[r])}, column {c},", tol)

    # -- combining ----------------------------------------------------------
    def _check_compatible(self, other: "ConfidentJointAccumulator") -> None:
        if not isinstance(other, ConfidentJointAccumulator):
            raise TypeError(f"can only merge a ConfidentJointAccumulator, got {type(other).__name__}")
        if other._k != self._k:
            raise ValueError(f"cannot merge: num_classes {other._k} != {self._k}")
        if other._kind != self._kind:
            raise ValueError(f"cannot merge: sketch {other._kind!r} != {self._kind!r}")
        if other._top_m != self._top_m:
            raise ValueError(f"cannot merge: top_m {other._top_m} != {self._top_m}")
        if (other._avg, other._max) != (self._avg, self._max):
            raise ValueError(f"cannot merge: avg_entries, max_entries {other._avg}, {other._max} != "
                             f"{self._avg}, {self._max}")
        if self._dtype is not None and other._dtype is not None and other._dtype != self._dtype:
            raise ValueError(f"cannot merge: dtype {other._dtype} != {self._dtype}")

    def merge(self, other: "ConfidentJointAccumulator") -> "ConfidentJointAccumulator":
        """Add everything ``other`` holds (its example ids must be new here). Returns self."""
        self._check_compatible(other)
        if other is self:
            if len(self):
                raise ValueError("cannot merge an accumulator with itself (every id would repeat)")
            return self
        # a snapshot of other under its lock, then self under its own: never both locks at once (no deadlock
        # when two threads merge a into b and b into a)
        with other._lock:
            if not other._parts:
                return self
            theirs = other._ids.all_sorted()
            their_parts, their_full = list(other._parts), list(other._full)
            their_full_ids = other._full_ids.all_sorted()
            their_dtype = other._dtype
            their_level = other._level
        with self._lock:
            if self._dtype is not None and their_dtype is not None and their_dtype != self._dtype:
                raise ValueError(f"cannot merge: dtype {their_dtype} != {self._dtype}")
            seen = self._ids.present(theirs)
            if seen.any():
                raise ValueError(f"cannot merge: example id {int(theirs[np.argmax(seen)])} is in both accumulators")
            self._dtype = their_dtype
            self._parts.extend(their_parts)  # stored arrays are never modified in place
            self._sorted = False
            self._ids.add(theirs)
            self._full.extend(their_full)
            self._full_ids.add(their_full_ids)
            if self._kind == "adaptive":  # the higher level of the two from now on, and the budget kept
                self._level = max(self._level, their_level)
                self._entries += sum(len(p[4]) for p in their_parts)
                self._keep_budget()
        return self

    def _consolidated(self):
        """All parts as one tuple of arrays sorted by id (and kept that way)."""
        if not self._parts:
            return None
        if len(self._parts) > 1 or not self._sorted:
            self._parts = [adaptive.sort_parts(self._parts) if self._kind == "adaptive" else _sort_parts(self._parts, 6)]
            self._sorted = True
        return self._parts[0]

    def _refined(self):
        """(ids, rows) given to refine(), sorted by id."""
        if not self._full:
            return np.empty(0, np.int64), np.empty((0, self._k), self._dtype or np.float64)
        fid = self._full[0][0]
        if len(self._full) > 1 or (len(fid) > 1 and not (fid[1:] > fid[:-1]).all()):
            self._full = [_sort_parts(self._full, 2)]  # (state_dict promises arrays sorted by id)
        return self._full[0]

    # -- checkpoints --------------------------------------------------------
    def state_dict(self) -> dict:
        """A plain dict of NumPy arrays and ints (np.savez / torch.save friendly).

        Arrays are sorted by example id; ``load_state_dict`` of it restores an
        accumulator whose results are identical.
        """
        with self._lock:
            return self._state_dict()

    def _state_dict(self) -> dict:
        if self._kind == "adaptive":
            return self._state_dict_csr()
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

    def _state_dict_csr(self) -> dict:
        st = self._consolidated()
        bits = 0 if self._dtype is None else self._dtype.itemsize * 8
        if st is None:
            dt = np.float64
            st = (np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, dt), np.empty(0, np.int32),
                  np.empty(0, self._cls_dtype), np.empty(0, dt), np.empty(0, dt))
        ids, y, g, counts, cls, vals, rest = st
        out = {
            "format_version": _STATE_VERSION_CSR,
            "num_classes": self._k,
            "top_m": self._top_m,
            "avg_entries": self._avg,
            "max_entries": self._max,
            "dtype_bits": bits,
            "level": np.asarray(self._level, np.float64),
            "ids": ids.copy(), "labels": y.copy(), "given": g.copy(), "ptr": adaptive.ptr_of(counts),
            "classes": cls.copy(), "values": vals.copy(), "rest": rest.copy(),
        }
        fid, frows = self._refined()
        out["refined_ids"] = fid.copy()
        out["refined_rows"] = frows.copy()
        return out

    def load_state_dict(self, state) -> "ConfidentJointAccumulator":
        """Replace this accumulator's content by a ``state_dict()`` (an ``np.load``-ed .npz works too).

        A checkpoint is untrusted input: every field is checked and a bad one
        refused with a ``TypeError``/``ValueError`` naming it (the accumulator
        is left as it was):

        * the keys are exactly those of ``state_dict()``; ``format_version``,
          ``num_classes``, ``top_m`` and ``dtype_bits`` are integers (not bool,
          float or str) and match this accumulator;
        * ``ids``, ``labels``, ``top_classes``, ``refined_ids`` are integer
          arrays, ``given``, ``top_values``, ``left_out_max``, ``refined_rows``
          float arrays of the checkpoint's dtype, all of the right shapes;
        * ids and refined ids are unique, fit in int64, and every refined id is
          an id; labels and top classes are in ``0..K-1``, no class repeats in a
          row of ``top_classes``;
        * probabilities are finite and in [-1e-6, 1 + 1e-4] (``left_out_max`` is
          ``-inf`` exactly when ``top_m >= K``); the top values of a row are in
          descending order, equal values by lower class first, and
          ``left_out_max`` is at most the last of them; a row's top values plus
          its left-out bound can sum to 1 (within the row-sum tolerance);
        * ``given`` is the top value of the given label when the label is in
          the row's top classes, else at most ``left_out_max``;
        * every refined row is a valid probability row whose given-label
          value, top classes, top values and ``left_out_max`` are the ones the
          sketch holds (as ``refine`` checks).
        """
        _check_mapping(state)
        version = _state_int(state, "format_version")
        level = 0.0
        if version == _STATE_VERSION_CSR and self._kind == "adaptive":
            parts, full, dt, level = _checked_state_csr(state, self)
        elif version == _STATE_VERSION and self._kind == "top_m":
            parts, full, dt = _checked_state(state, self._k, self._top_m, self._m, self._cls_dtype)
        elif version in (_STATE_VERSION, _STATE_VERSION_CSR):
            theirs = "top_m" if version == _STATE_VERSION else "adaptive"
            raise ValueError(f"state dict format_version {version} is a sketch={theirs!r} checkpoint; this "
                             f"accumulator has sketch={self._kind!r} (from_state_dict picks the right one)")
        else:
            raise ValueError(f"unsupported state dict format_version {version} (expected {_STATE_VERSION} "
                             f"or {_STATE_VERSION_CSR})")
        with self._lock:
            self._clear()
            self._level = level
            if parts is None:
                return self
            self._dtype = dt
            if self._kind == "adaptive":
                self._entries = len(parts[4])
            self._parts = [parts]
            self._sorted = True
            self._ids.add(parts[0])
            if full is not None:
                self._full = [full]
                self._full_ids.add(full[0])
        return self

    @classmethod
    def from_state_dict(cls, state) -> "ConfidentJointAccumulator":
        """A new accumulator holding ``state`` (checked as :meth:`load_state_dict` does)."""
        _check_mapping(state)
        version = _state_int(state, "format_version")
        k = _state_int(state, "num_classes")
        m = _state_int(state, "top_m")
        if k < 2:
            raise ValueError(f"state dict field 'num_classes' must be >= 2, got {k}")
        if m < 1:
            raise ValueError(f"state dict field 'top_m' must be >= 1, got {m}")
        if k > _MAX_CLASSES:
            raise ValueError(f"state dict field 'num_classes' is {k}, more than {_MAX_CLASSES} classes")
        if version == _STATE_VERSION_CSR:
            avg, mx = _state_int(state, "avg_entries"), _state_int(state, "max_entries")
            for key, v in (("avg_entries", avg), ("max_entries", mx)):
                if not 1 <= v <= _MAX_CLASSES:
                    raise ValueError(f"state dict field {key!r} must be in 1..{_MAX_CLASSES}, got {v}")
            acc = cls(k, top_m=m, sketch="adaptive", avg_entries=avg, max_entries=mx)
        else:  # version 1, or a bad one that load_state_dict names
            acc = cls(k, top_m=m, sketch="top_m")
        return acc.load_state_dict(state)

    def _like(self) -> "ConfidentJointAccumulator":
        """A new empty accumulator with this one's parameters."""
        return ConfidentJointAccumulator(self._k, top_m=self._top_m, sketch=self._kind, avg_entries=self._avg,
                                         max_entries=self._max)

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
        total = self._like()
        for st in gathered:
            total.merge(ConfidentJointAccumulator.from_state_dict(st))
        with self._lock:
            self.__dict__.update({k: v for k, v in total.__dict__.items() if k != "_lock"})
        return self

    # -- the answer -----------------------------------------------------------
    def result(self, *, ties=None) -> NoiseEstimate:
        """Thresholds, counts, noise matrices, py and the label-issue mask (see the module docstring).

        ``ties`` (default: ``labelsift.options()["ties"]``) orders equal
        values as the in-memory call does. With ``"cleanlab"``, a prune
        selection whose cut falls on equal margins is decided only when
        every row of that class is known in full (cleanlab's order among
        equal values depends on the whole margin array): until then the
        class's rows are uncertain and in ``refine_ids``.
        """
        with self._lock:  # the arrays are never modified in place: compute outside the lock
            st = self._consolidated()
            if st is None:
                raise ValueError("the accumulator holds no examples")
            fid, frows = self._refined()
            dtype = self._dtype
        if self._kind == "adaptive":
            ids, y, g, counts, cls, vals, rest = st
            sk = Sketch(ids, y.astype(np.int64), g, adaptive.ptr_of(counts), cls.astype(np.int64), vals, rest,
                        np.isneginf(rest.astype(np.float64)), np.searchsorted(ids, fid), frows, self._k, dtype)
        else:
            sk = Sketch.build(st, fid, frows, self._k, dtype)
        return result(sk, resolve_ties(ties))




# ---------------------------------------------------------------------------
# Checkpoints are a trust boundary: every field checked, by name
# ---------------------------------------------------------------------------
_MAX_CLASSES = 1 << 31


def _no_unknown_keys(keys, allowed) -> None:
    extra = sorted(str(key) for key in keys - set(allowed))
    if extra:
        raise ValueError(f"state dict has unknown field(s) {', '.join(map(repr, extra))} "
                         f"(expected exactly: {', '.join(allowed)})")


def _state_dtype(bits: int, n: int):
    """The probabilities' dtype of a state of n examples (None when empty)."""
    if bits not in (0, 16, 32, 64) or (bits == 0) != (n == 0):
        raise ValueError(f"state dict has a bad dtype_bits={bits} for {n} examples "
                         "(expected 16, 32 or 64, or 0 when it holds no example)")
    return None if bits == 0 else np.dtype(f"float{bits}")


def _check_shapes(shapes: dict) -> None:
    for key, (a, shape) in shapes.items():
        if a.shape != shape:
            raise ValueError(f"state dict field {key!r} has shape {a.shape}, expected {shape}")


def _checked_refined(ids, labels, fid, frows, dt):
    """(positions of the refined ids among ``ids``, the rows in ``dt``, their labels), the rows validated
    like any batch; errors name the example id."""
    n = len(ids)
    pos = np.minimum(np.searchsorted(ids, fid), n - 1)
    missing = ids[pos] != fid
    if missing.any():
        raise ValueError(f"state dict field 'refined_ids' holds id {int(fid[np.argmax(missing)])}, "
                         "which is not among its ids")
    bad_val = ~np.isfinite(frows)
    if bad_val.any():
        raise ValueError(f"state dict field 'refined_rows' holds a non-finite value at {_first_bad(bad_val, fid)}")
    rows = np.array(frows, dtype=dt, order="C", copy=True)
    fy = labels[pos].astype(np.int64)
    err = core().validate(rows, fy, PROB_LOW, PROB_HIGH, row_sum_tolerance(dt), threads(None))
    raise_row_error(rows, err, lambda r: f"state dict field 'refined_rows', row of example id {int(fid[r])},",
                    lambda r, c: f"state dict field 'refined_rows', example id {int(fid[r])}, column {c},",
                    row_sum_tolerance(dt))
    return pos, rows, fy


def _check_mapping(state) -> None:
    if not isinstance(state, Mapping) and not (hasattr(state, "keys") and hasattr(state, "__getitem__")):
        raise TypeError(f"state must be a mapping (what state_dict() returns, or an np.load-ed .npz), "
                        f"got {type(state).__name__}")


def _state_int(state, key: str) -> int:
    if key not in state:
        raise ValueError(f"state dict has no {key!r}")
    v = state[key]
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"state dict field {key!r} must be an integer, got {v!r}")
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "iu":
        return int(v)
    if hasattr(v, "item") and hasattr(v, "dtype") and getattr(v, "shape", None) in ((), []) \
            and str(v.dtype).startswith(("torch.int", "torch.uint")):  # a 0-d torch integer tensor
        return int(v.item())
    shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
    raise TypeError(f"state dict field {key!r} must be an integer, got {type(v).__name__} {shown}")


def _state_array(state, key: str, kind: str, ndim: int) -> np.ndarray:
    v = state[key]
    if v is None or isinstance(v, (str, bytes, dict)):
        raise TypeError(f"state dict field {key!r} must be an array, got {type(v).__name__}")
    try:
        a = np.asarray(v)
    except Exception as exc:  # noqa: BLE001 - ragged lists, odd objects
        raise TypeError(f"state dict field {key!r} is not an array ({type(exc).__name__}: {exc})") from None
    want = {"i": "an integer", "f": "a floating-point"}[kind]
    if a.dtype.kind not in ("iu" if kind == "i" else "f"):
        raise TypeError(f"state dict field {key!r} must be {want} array, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"state dict field {key!r} must be {ndim}-D, got shape {a.shape}")
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def _ids_field(state, key: str) -> np.ndarray:
    a = _state_array(state, key, "i", 1)
    if a.dtype == np.uint64 and len(a) and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"state dict field {key!r} holds id {int(a.max())}, which does not fit in int64")
    ids = np.array(a, dtype=np.int64, copy=True)
    srt = np.sort(ids, kind="stable")
    dup = np.flatnonzero(srt[1:] == srt[:-1])
    if len(dup):
        raise ValueError(f"state dict field {key!r} repeats example id {int(srt[dup[0]])}")
    return ids


def _first_bad(mask: np.ndarray, ids: np.ndarray) -> str:
    r = int(np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))[0])
    return f"example id {int(ids[r])}"


def _prob_field(a: np.ndarray, key: str, ids: np.ndarray, allow_neg_inf: bool = False) -> None:
    """Finite (or -inf where allowed) and within the validation bounds."""
    bad_val = ~np.isfinite(a)
    if allow_neg_inf:
        bad_val &= ~np.isneginf(a)
    if bad_val.any():
        raise ValueError(f"state dict field {key!r} holds a non-finite value ({a[bad_val].flat[0]}) at "
                         f"{_first_bad(bad_val, ids)}")
    fin = np.isfinite(a)
    out = fin & ((a < PROB_LOW) | (a > PROB_HIGH))
    if out.any():
        raise ValueError(f"state dict field {key!r} holds {a[out].flat[0]!r}, outside the probability range "
                         f"[{PROB_LOW}, {PROB_HIGH}], at {_first_bad(out, ids)}")


def _checked_state(state, k: int, top_m_: int, m: int, cls_dtype):
    """(parts sorted by id or None, (refined ids, rows) sorted or None, dtype) of a checked state dict."""
    _check_mapping(state)
    keys = set(state.keys())
    missing = [key for key in _ALL_KEYS if key not in keys]
    if missing:
        raise ValueError(f"state dict has no {missing[0]!r}")
    _no_unknown_keys(keys, _ALL_KEYS)
    version = _state_int(state, "format_version")
    if version != _STATE_VERSION:
        raise ValueError(f"unsupported state dict format_version {version} (expected {_STATE_VERSION})")
    sk, stop, bits = _state_int(state, "num_classes"), _state_int(state, "top_m"), _state_int(state, "dtype_bits")
    if sk != k or stop != top_m_:
        raise ValueError(f"state dict is for num_classes={sk}, top_m={stop}; this accumulator has "
                         f"num_classes={k}, top_m={top_m_}")
    ids = _ids_field(state, "ids")
    n = len(ids)
    dt = _state_dtype(bits, n)
    y = _state_array(state, "labels", "i", 1)
    given = _state_array(state, "given", "f", 1)
    tc = _state_array(state, "top_classes", "i", 2)
    tv = _state_array(state, "top_values", "f", 2)
    rm = _state_array(state, "left_out_max", "f", 1)
    fid = _ids_field(state, "refined_ids")
    frows = _state_array(state, "refined_rows", "f", 2)
    nf = len(fid)
    shapes = {"labels": (y, (n,)), "given": (given, (n,)), "top_classes": (tc, (n, m)),
              "top_values": (tv, (n, m)), "left_out_max": (rm, (n,)), "refined_rows": (frows, (nf, k))}
    _check_shapes(shapes)
    if n == 0:
        if nf:
            raise ValueError("state dict field 'refined_ids' holds ids but the state holds no example")
        return None, None, None
    for key, a in (("given", given), ("top_values", tv), ("left_out_max", rm), ("refined_rows", frows)):
        if (nf or key != "refined_rows") and a.dtype != dt:
            raise ValueError(f"state dict field {key!r} has dtype {a.dtype}, expected {dt} (dtype_bits={bits})")
    for key, a in (("labels", y), ("top_classes", tc)):
        out = (a < 0) | (a >= k)
        if out.any():
            raise ValueError(f"state dict field {key!r} holds {int(a[out].flat[0])}, outside 0..{k - 1}, at "
                             f"{_first_bad(out, ids)}")
    srt = np.sort(tc, axis=1)
    rep = srt[:, 1:] == srt[:, :-1]
    if rep.any():
        r = int(np.flatnonzero(rep.any(axis=1))[0])
        raise ValueError(f"state dict field 'top_classes' repeats class {int(srt[r][1:][rep[r]][0])} in the row of "
                         f"example id {int(ids[r])}")
    _prob_field(given, "given", ids)
    _prob_field(tv, "top_values", ids)
    _prob_field(rm, "left_out_max", ids, allow_neg_inf=True)
    if m >= k:
        if not np.isneginf(rm).all():
            raise ValueError(f"state dict field 'left_out_max' must be -inf everywhere when top_m >= K "
                             f"(got {rm[~np.isneginf(rm)][0]!r} at {_first_bad(~np.isneginf(rm), ids)})")
    elif np.isneginf(rm).any():
        raise ValueError(f"state dict field 'left_out_max' is -inf at {_first_bad(np.isneginf(rm), ids)}, "
                         f"but top_m < K leaves classes out")
    if m > 1:
        down = tv[:, 1:] > tv[:, :-1]
        # (zeros skipped: -0.0 == 0.0, but the float16 kernel orders them by sign)
        tie_order = (tv[:, 1:] == tv[:, :-1]) & (tv[:, 1:] != 0) & (tc[:, 1:] < tc[:, :-1])
        if down.any():
            raise ValueError(f"state dict field 'top_values' is not in descending order at {_first_bad(down, ids)}")
        if tie_order.any():
            raise ValueError("state dict fields 'top_values'/'top_classes': equal top values not ordered by the "
                             f"lower class first at {_first_bad(tie_order, ids)}")
    if m < k:
        above = rm > tv[:, -1]
        if above.any():
            raise ValueError(f"state dict field 'left_out_max' ({rm[above][0]!r}) exceeds the smallest top value "
                             f"at {_first_bad(above, ids)}")
    tol = row_sum_tolerance(dt) + k * 2e-6
    tv64 = tv.astype(np.float64)
    low_sum = tv64.sum(axis=1) + (np.maximum(rm.astype(np.float64), PROB_LOW) if m < k else 0.0)
    high_sum = tv64.sum(axis=1) + ((k - m) * rm.astype(np.float64) if m < k else 0.0)
    bad_sum = (low_sum > 1 + tol) | (high_sum < 1 - tol)
    if bad_sum.any():
        r = int(np.flatnonzero(bad_sum)[0])
        raise ValueError(f"state dict fields 'top_values'/'left_out_max' cannot be a probability row at example "
                         f"id {int(ids[r])} (top values sum to {tv64[r].sum():.6g}, left_out_max {rm[r]!r})")
    in_top = tc == y[:, None]
    has = in_top.any(axis=1)
    if m >= k and not has.all():  # pragma: no cover - a full row holds every class
        raise ValueError(f"state dict: the given label is missing from 'top_classes' at {_first_bad(~has, ids)}")
    g_top = tv[np.arange(n), np.argmax(in_top, axis=1)]
    wrong = (has & (given != g_top)) | (~has & (given > rm))
    if wrong.any():
        r = int(np.flatnonzero(wrong)[0])
        what = "the top value of its label" if has[r] else "its left_out_max"
        raise ValueError(f"state dict field 'given' ({given[r]!r}) contradicts {what} at example id {int(ids[r])}")

    order = np.argsort(ids, kind="stable")
    parts = (ids[order], y[order].astype(np.int32), np.array(given[order]), tc[order].astype(cls_dtype),
             np.array(tv[order]), np.array(rm[order]))
    if not nf:
        return parts, None, dt
    pos, rows, fy = _checked_refined(parts[0], parts[1], fid, frows, dt)
    ftc, ftv, frm = top_m(rows, m, cls_dtype)
    same = ((rows[np.arange(nf), fy] == parts[2][pos]) & (ftc == parts[3][pos]).all(axis=1)
            & (ftv == parts[4][pos]).all(axis=1) & (frm == parts[5][pos]))
    if not same.all():
        raise ValueError(f"state dict field 'refined_rows': the row of example id {int(fid[np.argmin(same)])} "
                         "contradicts the sketch (its given-label value, top classes, top values or left_out_max)")
    forder = np.argsort(fid, kind="stable")
    return parts, (fid[forder], rows[forder]), dt


def _state_level(state) -> float:
    v = state["level"]
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, np.ndarray) and v.dtype == bool):
        raise TypeError(f"state dict field 'level' must be a real number, got {v!r}")
    if isinstance(v, (int, float, np.integer, np.floating)):
        x = float(v)
    elif isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "iuf":
        x = float(v)
    else:
        shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
        raise TypeError(f"state dict field 'level' must be a real number, got {type(v).__name__} {shown}")
    if np.isnan(x):
        raise ValueError("state dict field 'level' is NaN")
    return x


def _checked_state_csr(state, acc: "ConfidentJointAccumulator"):
    """(parts sorted by id or None, (refined ids, rows) sorted or None, dtype, level) of a checked format-2
    state dict (``sketch="adaptive"``)."""
    k, m, cls_dtype = acc._k, acc._m, acc._cls_dtype
    keys = set(state.keys())
    missing = [key for key in _ALL_KEYS_CSR if key not in keys]
    if missing:
        raise ValueError(f"state dict has no {missing[0]!r}")
    _no_unknown_keys(keys, _ALL_KEYS_CSR)
    got = tuple(_state_int(state, key) for key in ("num_classes", "top_m", "avg_entries", "max_entries"))
    want = (k, acc._top_m, acc._avg, acc._max)
    if got != want:
        raise ValueError("state dict is for num_classes={}, top_m={}, avg_entries={}, max_entries={}; this "
                         "accumulator has num_classes={}, top_m={}, avg_entries={}, max_entries={}".format(*got, *want))
    bits = _state_int(state, "dtype_bits")
    level = _state_level(state)
    ids = _ids_field(state, "ids")
    n = len(ids)
    dt = _state_dtype(bits, n)
    y = _state_array(state, "labels", "i", 1)
    given = _state_array(state, "given", "f", 1)
    ptr = _state_array(state, "ptr", "i", 1)
    cls = _state_array(state, "classes", "i", 1)
    vals = _state_array(state, "values", "f", 1)
    rest = _state_array(state, "rest", "f", 1)
    fid = _ids_field(state, "refined_ids")
    frows = _state_array(state, "refined_rows", "f", 2)
    nf = len(fid)
    shapes = {"labels": (y, (n,)), "given": (given, (n,)), "ptr": (ptr, (n + 1,)), "rest": (rest, (n,)),
              "refined_rows": (frows, (nf, k))}
    _check_shapes(shapes)
    if n == 0:
        if nf:
            raise ValueError("state dict field 'refined_ids' holds ids but the state holds no example")
        if len(cls) or len(vals) or int(ptr[0]) != 0:
            raise ValueError("state dict fields 'ptr'/'classes'/'values' hold entries but the state holds no example")
        return None, None, None, level
    for key, a in (("given", given), ("values", vals), ("rest", rest), ("refined_rows", frows)):
        if (nf or key != "refined_rows") and a.dtype != dt:
            raise ValueError(f"state dict field {key!r} has dtype {a.dtype}, expected {dt} (dtype_bits={bits})")
    if ptr.dtype == np.uint64 and ptr.max() > np.iinfo(np.int64).max:
        raise ValueError("state dict field 'ptr' holds a value that does not fit in int64")
    ptr = ptr.astype(np.int64)
    out = (y < 0) | (y >= k)
    if out.any():
        raise ValueError(f"state dict field 'labels' holds {int(y[out][0])}, outside 0..{k - 1}, at "
                         f"{_first_bad(out, ids)}")
    _prob_field(given, "given", ids)
    if cls.dtype.kind == "u" and len(cls) and cls.max() >= k:  # (before a cast could wrap it)
        raise ValueError(f"state dict field 'classes' holds {int(cls.max())}, outside 0..{k - 1}")
    cls = cls.astype(np.int64)
    counts = adaptive.check_csr(ids, y, given, ptr, cls, vals, rest, k, m, acc._cap, _prob_field)

    order = np.argsort(ids, kind="stable")
    part = (ids, y.astype(np.int32), np.array(given), counts, cls.astype(cls_dtype), np.array(vals), np.array(rest))
    if not np.array_equal(order, np.arange(n)):
        part = adaptive.sort_parts([part])
    if not nf:
        return part, None, dt, level
    pos, rows, fy = _checked_refined(part[0], part[1], fid, frows, dt)
    ent = adaptive.gather_rows(part[3], pos)
    same = adaptive.full_row_agrees(rows, fy, part[2][pos], part[3][pos], part[4][ent], part[5][ent], part[6][pos],
                                    m, cls_dtype)
    if not same.all():
        raise ValueError(f"state dict field 'refined_rows': the row of example id {int(fid[np.argmin(same)])} "
                         "contradicts the sketch (its given-label value, kept classes and values, or rest)")
    forder = np.argsort(fid, kind="stable")
    return part, (fid[forder], rows[forder]), dt, level
