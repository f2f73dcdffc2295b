"""The adaptive sketch of the streaming accumulator (``sketch="adaptive"``):
variable-length rows kept as CSR parts, the margin level that keeps them
within an entries budget, and the checks of what a checkpoint or a refined
row claims.

A part is ``(ids, labels int32, given, counts int32, classes, values, rest)``:
row r keeps ``counts[r]`` entries, the next ones of ``classes``/``values``.
Every row held is exactly ``sketch_rows(P, y, mm, cap, None, tau_r)`` of its
probabilities for the level ``tau_r`` in force when it was added (or a later,
higher one it was trimmed to): the stable top-``mm`` plus every other class
``j != y`` with ``P[j] - P[y] >= tau_r`` (float64), at most ``cap``, in
stable descending order; ``rest`` is the largest value left out other than
the given label's (-inf when none is).

Why a trim is exact: for a fixed row the kept classes are the first
entries of one order (the row's stable descending order, the given label
removed unless it is among the top-``mm``), and a higher level keeps a
shorter prefix of it. So the sketch at a higher level ``t`` is the first
``max(mm, 1 + last entry j != y with margin >= t)`` entries, and its
``rest`` is the larger of the old ``rest`` and the first entry dropped.
"""
from __future__ import annotations

import numpy as np

from .._common.arrays import PROB_LOW, row_sum_tolerance
from .sketch import sketch_rows

#: bytes of the (slice rows x cap) temporaries of one sketch_rows call
SLICE_BYTES = 32 << 20
#: after a raise the held rows keep about this share of the budget (room for
#: the next rows at the new level without raising again at once)
FILL = 0.75


def sketch_batch(P: np.ndarray, y: np.ndarray, mm: int, cap: int, tau: float, cls_dtype):
    """(counts, classes, values, rest, given) of every row of P (C-ordered,
    kernel dtype), by ``sketch_rows`` over row slices that bound the
    temporaries."""
    B, K = P.shape
    cp = min(cap, K)
    step = max(64, SLICE_BYTES // max(1, cp * (4 + P.dtype.itemsize)))
    out = []
    for a in range(0, B, step):
        ptr, c, v, rest, _, g = sketch_rows(P[a : a + step], y[a : a + step], mm, cp, None, tau)
        out.append((np.diff(ptr).astype(np.int32), c.astype(cls_dtype), v, rest, g))
    if len(out) == 1:
        return out[0]
    return tuple(np.concatenate([o[i] for o in out]) for i in range(5))


def ptr_of(counts: np.ndarray) -> np.ndarray:
    ptr = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row of each entry, position of each entry within its row)."""
    ptr = ptr_of(counts)
    er = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return er, np.arange(ptr[-1], dtype=np.int64) - ptr[er]


def gather_rows(counts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Entry indices of ``rows`` (in that order) in a CSR with these counts."""
    ptr = ptr_of(counts)
    c = counts[rows].astype(np.int64)
    starts = np.repeat(ptr[rows] - ptr_of(c)[:-1], c)
    return starts + np.arange(int(c.sum()), dtype=np.int64)


def sort_parts(parts: list) -> tuple:
    """All parts as one, rows sorted by id (stable)."""
    cat = [np.concatenate([p[i] for p in parts]) for i in range(7)]
    ids, y, g, counts, cls, vals, rest = cat
    order = np.argsort(ids, kind="stable")
    ent = gather_rows(counts, order)
    return ids[order], y[order], g[order], counts[order], cls[ent], vals[ent], rest[order]


def margins(part, mm: int):
    """(row, position, margin P[j] - P[y] in float64, is the given label) of every entry."""
    ids, y, g, counts, cls, vals, rest = part
    er, pos = positions(counts)
    m = vals.astype(np.float64) - g.astype(np.float64)[er]
    return er, pos, m, cls.astype(np.int64) == y[er]


def budget_level(parts: list, mm: int, target: float, floor: float) -> float:
    """The lowest level >= ``floor`` at which the rows of ``parts`` keep at
    most ``target`` entries in all (+inf when even the top-``mm`` of every
    row exceed it)."""
    base = 0
    ms = []
    for p in parts:
        base += int(np.minimum(p[3], mm).sum())
        er, pos, m, _ = margins(p, mm)
        ms.append(m[pos >= mm])  # beyond the top-mm every entry is a class j != y
    m = np.concatenate(ms) if ms else np.empty(0)
    want = int(target) - base
    if want < 0:
        return np.inf
    if len(m) <= want:
        return floor
    x = np.partition(m, len(m) - 1 - want)[len(m) - 1 - want]  # the (want + 1)-th largest margin
    return max(floor, float(np.nextafter(x, np.inf)))  # strictly above it: at most `want` remain


def trim(part, t: float, mm: int):
    """The sketch of every row of ``part`` at the higher level ``t`` (new arrays; see the module docstring)."""
    ids, y, g, counts, cls, vals, rest = part
    er, pos, m, is_y = margins(part, mm)
    flagged = ~is_y & (m >= t)
    last = np.zeros(len(counts), np.int64)
    np.maximum.at(last, er[flagged], pos[flagged] + 1)
    new = np.maximum(np.minimum(counts, mm), last).astype(np.int32)
    if np.array_equal(new, counts):
        return part
    keep = pos < new[er]
    shrunk = np.flatnonzero(new < counts)
    first_dropped = ptr_of(counts)[shrunk] + new[shrunk]
    new_rest = rest.copy()
    new_rest[shrunk] = np.maximum(rest[shrunk], vals[first_dropped])
    return ids, y, g, new, cls[keep], vals[keep], new_rest


def full_row_agrees(P: np.ndarray, y: np.ndarray, given, counts, cls, vals, rest, mm: int, cls_dtype) -> np.ndarray:
    """Per row: is (given, entries, rest) what the adaptive sketch of the full
    row P keeps at some level? The sketch at level -inf capped at the row's
    own count is the one prefix of the order every level's sketch is a
    prefix of, so it must be exactly the row's entries."""
    n, K = P.shape
    ok = np.ones(n, bool)
    if n == 0:
        return ok
    cmax = int(counts.max())
    c2, cls2, vals2, rest2, g2 = sketch_batch(P, y, mm, cmax, -np.inf, cls_dtype)
    ptr2 = ptr_of(c2)
    er2, pos2 = positions(c2)
    mine = pos2 < counts[er2]
    # the reference keeps min(cmax, K - (y outside its top-mm)) entries: a row claiming more is wrong
    ok &= c2 >= counts
    if not ok.all():
        return ok
    er, _ = positions(counts)
    same_ent = (cls2[mine] == cls) & (vals2[mine] == vals)
    bad = np.zeros(n, bool)
    bad[er[~same_ent]] = True
    ok &= ~bad
    # the largest left out: the reference's first entry past the row's count, else the reference's rest
    past = counts < c2
    want_rest = rest2.copy()
    want_rest[past] = np.maximum(rest2[past], vals2[ptr2[:-1][past] + counts[past]])
    ok &= (want_rest == rest) | (np.isneginf(want_rest.astype(np.float64)) & np.isneginf(rest.astype(np.float64)))
    ok &= g2 == given
    return ok


# ---------------------------------------------------------------------------
# Checks of a format-2 checkpoint's sketch fields (the caller checks ids,
# labels, given, the scalars and the refined rows)
# ---------------------------------------------------------------------------
def check_csr(ids, y, given, ptr, cls, vals, rest, k: int, mm: int, cap: int, prob_field):
    """Raise ValueError naming the field when the CSR fields cannot be an adaptive sketch."""
    n = len(ids)
    if ptr.shape != (n + 1,):
        raise ValueError(f"state dict field 'ptr' has shape {ptr.shape}, expected {(n + 1,)}")
    if cls.shape != vals.shape:
        raise ValueError(f"state dict fields 'classes' and 'values' have shapes {cls.shape} and {vals.shape}")
    if int(ptr[0]) != 0 or int(ptr[-1]) != len(cls):
        raise ValueError(f"state dict field 'ptr' must start at 0 and end at len(classes) = {len(cls)}, "
                         f"got {int(ptr[0])} .. {int(ptr[-1])}")
    counts = np.diff(ptr.astype(np.int64))
    lo_count = min(mm, k)
    bad = (counts < lo_count) | (counts > min(cap, k))
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        what = "decreases" if counts[r] < 0 else f"gives {int(counts[r])} entries"
        raise ValueError(f"state dict field 'ptr' {what} at example id {int(ids[r])} "
                         f"(each row keeps {lo_count} to {min(cap, k)})")
    counts = counts.astype(np.int32)
    er, pos = positions(counts)
    out = (cls < 0) | (cls >= k)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(f"state dict field 'classes' holds {int(cls[i])}, outside 0..{k - 1}, at example id "
                         f"{int(ids[er[i]])}")
    c64 = cls.astype(np.int64)
    o = np.lexsort((c64, er))
    rep = (er[o][1:] == er[o][:-1]) & (c64[o][1:] == c64[o][:-1])
    if rep.any():
        i = o[1:][rep][0]
        raise ValueError(f"state dict field 'classes' repeats class {int(cls[i])} in the row of example id "
                         f"{int(ids[er[i]])}")
    prob_field(vals, "values", ids[er])
    prob_field(rest, "rest", ids, allow_neg_inf=True)
    nxt = pos[1:] > 0  # consecutive entries of one row
    v0, v1, c0, c1 = vals[:-1][nxt], vals[1:][nxt], c64[:-1][nxt], c64[1:][nxt]
    rows1 = er[1:][nxt]
    down = v1 > v0
    if down.any():
        raise ValueError(f"state dict field 'values' is not in descending order in the row of example id "
                         f"{int(ids[rows1[np.argmax(down)]])}")
    tie = (v1 == v0) & (v1 != 0) & (c1 < c0)  # (zeros aside: -0.0 == 0.0)
    if tie.any():
        raise ValueError("state dict fields 'values'/'classes': equal values not ordered by the lower class first "
                         f"in the row of example id {int(ids[rows1[np.argmax(tie)]])}")
    is_y = c64 == y.astype(np.int64)[er]
    has_y = np.zeros(n, bool)
    has_y[er[is_y]] = True
    y_late = is_y & (pos >= lo_count)
    if y_late.any():
        raise ValueError(f"state dict field 'classes': the given label is kept past the top-{lo_count} (only the "
                         f"top-{lo_count} may hold it) at example id {int(ids[er[np.argmax(y_late)]])}")
    left = k - counts.astype(np.int64) - ~has_y  # classes left out, the label aside
    rest64 = rest.astype(np.float64)
    none_left = left == 0
    wrong_inf = none_left != np.isneginf(rest64)
    if wrong_inf.any():
        r = int(np.flatnonzero(wrong_inf)[0])
        raise ValueError(f"state dict field 'rest' must be -inf exactly when a row keeps every class but its "
                         f"label (got {rest[r]!r} at example id {int(ids[r])})")
    last = vals[ptr[1:] - 1].astype(np.float64)
    above = rest64 > last
    if above.any():
        r = int(np.flatnonzero(above)[0])
        raise ValueError(f"state dict field 'rest' ({rest[r]!r}) exceeds the row's smallest value at example id "
                         f"{int(ids[r])}")
    g64 = given.astype(np.float64)
    g_in = np.zeros(n)
    g_in[er[is_y]] = vals[is_y].astype(np.float64)
    wrong = has_y & (g64 != g_in)
    # a label left out is not among the top-mm: below the mm-th value (equal: a higher class)
    mth = ptr[:-1] + lo_count - 1
    v_m, c_m = vals[mth].astype(np.float64), c64[mth]
    wrong |= ~has_y & ((g64 > v_m) | ((g64 == v_m) & (g64 != 0) & (y.astype(np.int64) < c_m)))
    if wrong.any():
        r = int(np.flatnonzero(wrong)[0])
        what = "the value kept for its label" if has_y[r] else f"its label being left out of the top-{lo_count}"
        raise ValueError(f"state dict field 'given' ({given[r]!r}) contradicts {what} at example id {int(ids[r])}")
    dt = vals.dtype
    tol = row_sum_tolerance(dt) + k * 2e-6
    s = np.bincount(er, weights=vals.astype(np.float64), minlength=n) + np.where(has_y, 0.0, g64)
    fin = np.where(none_left, 0.0, rest64)
    low = s + np.where(none_left, 0.0, fin + (left - 1).clip(0) * PROB_LOW)
    high = s + left * fin
    bad_sum = (low > 1 + tol) | (high < 1 - tol)
    if bad_sum.any():
        r = int(np.flatnonzero(bad_sum)[0])
        raise ValueError(f"state dict fields 'values'/'rest' cannot be a probability row at example id "
                         f"{int(ids[r])} (kept values sum to {s[r]:.6g}, rest {rest[r]!r})")
    return counts
