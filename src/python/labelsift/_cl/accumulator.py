"""The bookkeeping of the streaming accumulator (:mod:`labelsift.stream`):
batches, duplicate ids, merging, refined rows, checkpoints. The algebra of
the answer is in :mod:`.sketch`."""
from __future__ import annotations

import numpy as np

from .._common.arrays import as_2d, as_ids, as_labels, kernel_dtype, row_sum_tolerance, PROB_HIGH, PROB_LOW
from .._common.backend import core, threads
from .._common.checks import raise_row_error
from .._common.options import resolve_ties
from .sketch import NoiseEstimate, Sketch, result, top_m

__all__ = ["ConfidentJointAccumulator", "NoiseEstimate"]

_STATE_VERSION = 1
_FIELDS = ("ids", "labels", "given", "top_classes", "top_values", "left_out_max")


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
        seen = self._ids.present(ids_sorted)
        if seen.any():
            raise ValueError(f"example id {int(ids_sorted[np.argmax(seen)])} was already added to this accumulator")
        P = np.ascontiguousarray(P, dtype=dt)  # no copy for a C-ordered native array
        self._validate(P, y, ids)
        g = P[np.arange(B), y]
        tc, tv, rm = top_m(P, self._m, self._cls_dtype)
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
    def result(self, *, ties=None) -> NoiseEstimate:
        """Thresholds, counts, noise matrices, py and the label-issue mask (see the module docstring).

        ``ties`` (default: ``labelsift.options()["ties"]``) orders equal
        values as the in-memory call does. With ``"cleanlab"``, a prune
        selection whose cut falls on equal margins is decided only when
        every row of that class is known in full (cleanlab's order among
        equal values depends on the whole margin array): until then the
        class's rows are uncertain and in ``refine_ids``.
        """
        st = self._consolidated()
        if st is None:
            raise ValueError("the accumulator holds no examples")
        fid, frows = self._refined()
        return result(Sketch.build(st, fid, frows, self._k, self._dtype), resolve_ties(ties))


