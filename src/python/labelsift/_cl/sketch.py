"""The streaming sketch of confident learning: what is kept per example, and
the in-memory algorithm run on it with proofs (see :mod:`labelsift.stream`
for the guarantees).

Per example: its id, given label ``y``, ``g = P[y]`` (input dtype), the
``m`` largest probabilities with their classes (:func:`top_m`), and
``left_out_max``, the largest probability outside them.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .._common.backend import core, threads
from . import latent
from .passes import calibrate, cut_from_thresholds, prune_counts, thresholds_from_given
from .rules import confident_guess, confident_joint_from_guesses, eligible, given_beaten
from .sketch_prune import select_by_noise_rate

# Rows per chunk of the NumPy top-m definition (bounds the temporaries).
_CHUNK_ELEMS = 1 << 18


# ---------------------------------------------------------------------------
# Top-m extraction
# ---------------------------------------------------------------------------
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


def top_m(P: np.ndarray, m: int, cls_dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(classes (B, m), values (B, m), left_out_max (B,)) of each row: the C++
    kernel ``top_m_rows`` (one pass over each row, any strides); the NumPy
    :func:`top_m_numpy` is its definition and test oracle."""
    B, K = P.shape
    if m >= K:
        return top_m_numpy(P, m, cls_dtype)
    cls = np.empty((B, m), np.int32)
    vals = np.empty((B, m), P.dtype)
    rest = np.empty(B, P.dtype)
    core().top_m_rows(P, m, cls, vals, rest, threads(None))
    return cls.astype(cls_dtype, copy=False), vals, rest


def top_m_numpy(P: np.ndarray, m: int, cls_dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


# ---------------------------------------------------------------------------
# The adaptive row sketch (groundwork of the one-read path)
# ---------------------------------------------------------------------------
def sketch_rows(P: np.ndarray, labels: np.ndarray, mmin: int, cap: int, floor=None, tau: float = np.inf):
    """The adaptive sketch of each row, by the C++ kernel ``sketch_rows``
    (any strides, no copy); :func:`sketch_rows_numpy` is its definition.

    Returns ``(ptr, classes, values, rest, certified, given)``: row i keeps
    ``classes[ptr[i]:ptr[i+1]]`` with their values (input dtype), in stable
    descending order; ``rest`` the largest value of a class left out other
    than the given label (-inf when none); ``certified`` whether every such
    class is below its ``floor``; ``given`` is P[i, y_i] (input dtype), read
    in the same sweep.
    """
    B, K = P.shape
    cp = min(int(cap), K)
    y = np.ascontiguousarray(labels, dtype=np.int64)
    cls = np.empty((B, cp), np.int32)
    vals = np.empty((B, cp), P.dtype)
    count = np.empty(B, np.int32)
    rest = np.empty(B, P.dtype)
    cert = np.empty(B, np.uint8)
    given = np.empty(B, P.dtype)
    fl = None if floor is None else np.ascontiguousarray(floor, dtype=np.float64)
    core().sketch_rows(P, y, int(mmin), int(cap), fl, float(tau), cls, vals, count, rest, cert, given, threads(None))
    keep = np.arange(cp)[None, :] < count[:, None]
    ptr = np.zeros(B + 1, np.int64)
    np.cumsum(count, out=ptr[1:])
    return ptr, cls[keep], vals[keep], rest, cert.view(bool), given


def sketch_rows_numpy(P: np.ndarray, labels: np.ndarray, mmin: int, cap: int, floor=None, tau: float = np.inf):
    """Definition of :func:`sketch_rows`, row by row.

    Kept: the first ``mmin`` classes of a stable descending sort of the row,
    plus every class j != y that is *wanted* (``P[j] >= floor[j]`` or
    ``P[j] - P[y] >= tau``, in float64), then only the first ``cap`` of
    those in that order. Without floors no left-out class is certified.
    """
    B, K = P.shape
    y = np.asarray(labels, dtype=np.int64)
    fl = np.full(K, np.inf) if floor is None else np.asarray(floor, dtype=np.float64)
    ptr, cls, vals = [0], [], []
    rest = np.full(B, -np.inf, dtype=P.dtype)
    cert = np.ones(B, bool)
    for i in range(B):
        row = P[i]
        v = row.astype(np.float64)
        order = np.argsort(-v, kind="stable")
        wanted = (v >= fl) | (v - v[y[i]] >= tau)
        wanted[y[i]] = False
        sel = np.zeros(K, bool)
        sel[order[:mmin]] = True
        sel |= wanted
        kept = order[sel[order]][:cap]
        cls.extend(kept.tolist())
        vals.extend(row[kept].tolist())
        ptr.append(ptr[-1] + len(kept))
        out = np.ones(K, bool)
        out[kept] = False
        out[y[i]] = False
        if out.any():
            rest[i] = row[out].max()
            cert[i] = floor is not None and bool((v[out] < fl[out]).all())
    return (np.asarray(ptr, np.int64), np.asarray(cls, np.int32), np.asarray(vals, dtype=P.dtype), rest, cert,
            P[np.arange(B), y])


# ---------------------------------------------------------------------------
# The pair table: the best few prune margins of every (given class, column)
# ---------------------------------------------------------------------------
class PairTable:
    """For every given class k and column j != k, the ``slots`` rows of class
    k with the best prune margin ``P[j] - P[k]`` (in the input dtype; better
    = larger, then lower row id), best first: ``vals[k, s, j]`` (the margins,
    -inf in an empty slot) and ``ids[k, s, j]`` (the row ids, -1 when empty).
    ``runner[k, j]``: the best margin of a row offered to the column and not
    held (-inf: none), at most the best margin outside the slots and equal to
    the worst slot's exactly when a row outside the slots ties it -- so
    ``vals[k, -1, j] > runner[k, j]`` says the worst slot strictly beats every
    other row of the class (a cut no order among equal margins can move).

    It settles every prune selection of at most ``slots`` rows exactly, in one
    pass, whatever the rows' sketches keep -- the selections whose cut lands
    on tail margins (flat rows) that no per-row budget can. K * K * slots
    entries: :func:`pair_slots` fits that to a memory budget.
    """

    def __init__(self, k: int, slots: int, dtype, n_rows: int):
        vdt, idt = self.dtypes(dtype, n_rows)
        self.k, self.slots = int(k), int(slots)
        self.vals = np.full((k, slots, k), -np.inf, vdt)
        self.ids = np.full((k, slots, k), -1, idt)
        self.runner = np.full((k, k), -np.inf, vdt)
        self.low = np.full(k, -np.inf, vdt)  # per class, a lower bound of its worst-slot margins

    @staticmethod
    def dtypes(dtype, n_rows: int):
        """(margin dtype: the kernels' arithmetic type, row-id dtype) for rows of ``dtype``."""
        return (np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32),
                np.dtype(np.int32) if n_rows < 2**31 - 1 else np.dtype(np.int64))

    @staticmethod
    def entry_bytes(dtype, n_rows: int) -> int:
        vdt, idt = PairTable.dtypes(dtype, n_rows)
        return vdt.itemsize + idt.itemsize

    @property
    def nbytes(self) -> int:
        return self.vals.nbytes + self.ids.nbytes + self.runner.nbytes + self.low.nbytes

    def update(self, P: np.ndarray, labels: np.ndarray, row0: int, sketch=None) -> None:
        """Feed rows ``row0 .. row0 + len(P)`` (valid rows, any strides).
        ``sketch``: their :func:`sketch_rows` output, which lets the kernel
        skip the rows whose every left-out margin is below their class's
        worst slots (it then offers only their kept classes)."""
        y = np.ascontiguousarray(labels, dtype=np.int64)
        if sketch is None:
            core().pair_top_update(P, y, int(row0), self.slots, self.vals, self.ids, self.low, nthreads=threads(None),
                                   runner=self.runner)
        else:
            ptr, cls, _, rest = sketch[:4]
            core().pair_top_update(P, y, int(row0), self.slots, self.vals, self.ids, self.low, rest, ptr,
                                   np.ascontiguousarray(cls, dtype=np.int32), threads(None), self.runner)

    def update_numpy(self, P: np.ndarray, labels: np.ndarray, row0: int) -> None:
        """Definition of :meth:`update`: merge each class's rows into its slots by the full key."""
        y = np.asarray(labels, dtype=np.int64)
        for k in np.unique(y):
            rows = np.flatnonzero(y == k)
            m = (P[rows] - P[rows, k][:, None]).astype(self.vals.dtype)  # in the dtype, then exact
            ids = np.broadcast_to((row0 + rows)[:, None], m.shape)
            allm = np.concatenate([self.vals[k], m])
            alli = np.concatenate([self.ids[k].astype(np.int64), ids])
            empty = alli < 0
            # order per column: filled before empty, margin descending, id ascending
            key_id = np.where(empty, np.iinfo(np.int64).max, alli)
            full = np.lexsort((key_id, -np.where(empty, -np.inf, allm), empty), axis=0)
            order = full[: self.slots]
            self.vals[k] = np.take_along_axis(allm, order, axis=0)
            self.ids[k] = np.take_along_axis(alli, order, axis=0)
            if len(full) > self.slots:  # the best row left out: the exact runner-up
                out = full[self.slots]
                cols = np.arange(self.k)
                filled = alli[out, cols] >= 0
                self.runner[k] = np.maximum(self.runner[k], np.where(filled, allm[out, cols], -np.inf))
            self.vals[k][:, k] = -np.inf
            self.ids[k][:, k] = -1
            self.runner[k, k] = -np.inf


def pair_slots(k: int, dtype, n_rows: int, budget_bytes: int, most: int = 3) -> int:
    """The most slots (<= ``most``) whose table (with its runner-up row per class) fits ``budget_bytes``; 0: none."""
    per_slot = k * k * PairTable.entry_bytes(dtype, n_rows)
    runner = k * k * PairTable.dtypes(dtype, n_rows)[0].itemsize
    return int(max(0, min(most, (budget_bytes - runner) // max(1, per_slot))))


# ---------------------------------------------------------------------------
# The answer
# ---------------------------------------------------------------------------
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


@dataclass
class Sketch:
    """All examples' sketches, sorted by id, as CSR entry lists, plus the rows given in full.

    Row i keeps the entries ``ptr[i]:ptr[i+1]`` of ``ec``/``ev`` (classes and
    values, stable descending order, the argmax first); ``rm`` bounds every
    value left out of it (other than the given label's, which ``g`` holds);
    ``cert[i]`` says every class left out is proven below its cut.
    """

    ids: np.ndarray  # (N,) int64, ascending
    y: np.ndarray  # (N,) int64 given labels
    g: np.ndarray  # (N,) P[y], input dtype
    ptr: np.ndarray  # (N + 1,) int64
    ec: np.ndarray  # (E,) int64 classes
    ev: np.ndarray  # (E,) values, input dtype
    rm: np.ndarray  # (N,) bound of the left-out values, input dtype
    cert: np.ndarray  # (N,) bool
    fpos: np.ndarray  # positions (in ids) of the rows refine() gave in full
    frows: np.ndarray  # (len(fpos), K) those rows
    k: int
    dtype: np.dtype
    pairs: "PairTable | None" = None  # the best margins of every (class, column), when kept

    @classmethod
    def build(cls, parts, fid, frows, k, dtype) -> "Sketch":
        """From the accumulator's top-m parts (every row m entries; left_out_max bounds the rest)."""
        ids, y32, g, tc, tv, rm = parts
        n, m = tc.shape
        return cls(ids, y32.astype(np.int64), np.ascontiguousarray(g), np.arange(n + 1, dtype=np.int64) * m,
                   tc.astype(np.int64).ravel(), tv.ravel(), rm, np.isneginf(rm.astype(np.float64)),
                   np.searchsorted(ids, fid), frows, k, dtype)

    @property
    def n(self) -> int:
        return len(self.ids)

    @cached_property
    def er(self) -> np.ndarray:
        """The row of each entry (``ptr`` never changes once built)."""
        return np.repeat(np.arange(self.n, dtype=np.int64), np.diff(self.ptr))

    def row_any(self, entry_mask: np.ndarray) -> np.ndarray:
        """Rows with at least one entry in ``entry_mask``."""
        out = np.zeros(self.n, bool)
        out[self.er[entry_mask]] = True
        return out


def _min_unknown_cut(sk: Sketch, rows: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """For the given rows: the smallest cut among the classes their sketch
    does not know (neither an entry nor the given label); inf when none."""
    if len(rows) == 0:
        return np.empty(0)
    rank = np.empty(sk.k, np.int64)
    order = np.argsort(cut, kind="stable")
    rank[order] = np.arange(sk.k)
    counts = sk.ptr[rows + 1] - sk.ptr[rows]
    local = np.repeat(np.arange(len(rows)), counts)
    starts = np.repeat(sk.ptr[rows], counts)
    ent = starts + (np.arange(len(local)) - np.repeat(np.cumsum(counts) - counts, counts))
    kr = np.concatenate([rank[sk.ec[ent]], rank[sk.y[rows]]])
    kl = np.concatenate([local, np.arange(len(rows))])
    o = np.lexsort((kr, kl))
    kr, kl = kr[o], kl[o]
    keep = np.ones(len(kr), bool)
    keep[1:] = (kr[1:] != kr[:-1]) | (kl[1:] != kl[:-1])  # a class may be both an entry and the label
    kr, kl = kr[keep], kl[keep]
    first = np.searchsorted(kl, np.arange(len(rows)))
    pos = np.arange(len(kr)) - first[kl]
    gap = kr != pos  # the first known rank that is not its position: the smallest unknown rank is that position
    mex = np.bincount(kl, minlength=len(rows)).astype(np.int64)  # no gap: every rank below the count is known
    gi = np.flatnonzero(gap)
    if len(gi):
        firstgap = np.full(len(rows), np.iinfo(np.int64).max)
        np.minimum.at(firstgap, kl[gi], pos[gi])
        mex = np.minimum(mex, firstgap)
    out = np.full(len(rows), np.inf)
    has = mex < sk.k
    out[has] = cut[order[mex[has]]]
    return out


def _guesses(sk: Sketch, cut: np.ndarray, full=None):
    """(confident guesses, which are proven) from the sketch; cut in float64.
    The C++ kernel ``sketch_guesses`` (one sweep of each row's entries);
    :func:`_guesses_numpy` is its definition. ``full``: :func:`_full_tests`
    of the refined rows with this cut, when already at hand."""
    cut = np.ascontiguousarray(cut, dtype=np.float64)
    guess = np.empty(sk.n, np.int64)
    decided = np.empty(sk.n, bool)
    if sk.n:
        core().sketch_guesses(sk.ptr, np.ascontiguousarray(sk.ec, dtype=np.int64), sk.ev, sk.g, sk.rm, sk.cert,
                              np.ascontiguousarray(sk.y, dtype=np.int64), cut,
                              np.argsort(cut, kind="stable").astype(np.int64), guess, decided.view(np.uint8),
                              threads(None))
    return _refined_guesses(sk, cut, guess, decided, fast=True, full=full)


def _nudged(sk: Sketch) -> np.ndarray:
    """P[y] + 1e-6 in the dtype, as float64: what the unflagging test compares against."""
    return (sk.g + np.asarray(1e-6, dtype=sk.dtype)).astype(np.float64)


def _full_tests(sk: Sketch, cut):
    """The C++ kernel ``full_rows_tests`` on the refined rows, one sweep of each:
    (unflagging test, passing count and first passing class with ``cut``)."""
    keep, npass, first = core().full_rows_tests(sk.frows, np.ascontiguousarray(sk.y[sk.fpos], dtype=np.int64),
                                                _nudged(sk)[sk.fpos], np.ascontiguousarray(cut, dtype=np.float64),
                                                threads(None))
    return keep.view(bool), npass, first


def _refined_guesses(sk: Sketch, cut, guess, decided, fast: bool = False, full=None):
    if len(sk.fpos):  # refined rows: everything is known
        amax = sk.ec[sk.ptr[sk.fpos]]
        if fast:  # one sweep of each row in C++
            _, npass, first = _full_tests(sk, cut) if full is None else full
        else:
            passes = sk.frows >= cut  # (float64 cut: the comparison promotes exactly, without a float64 copy)
            npass, first = np.count_nonzero(passes, axis=1), np.argmax(passes, axis=1)
        guess[sk.fpos] = confident_guess(npass, first, amax)
        decided[sk.fpos] = True
    return guess, decided


def _guesses_numpy(sk: Sketch, cut: np.ndarray):
    """Definition of :func:`_guesses` (NumPy over all entries at once)."""
    er = sk.er
    ev64, g64, rm64 = sk.ev.astype(np.float64), sk.g.astype(np.float64), sk.rm.astype(np.float64)
    pass_e = ev64 >= cut[sk.ec]
    y_in_top = sk.row_any(sk.ec == sk.y[er])
    pass_y = g64 >= cut[sk.y]
    known_count = np.bincount(er[pass_e], minlength=sk.n).astype(np.int64) + (pass_y & ~y_in_top)
    single = sk.y.copy()
    ip = np.flatnonzero(pass_e)
    if len(ip):
        rp = er[ip]
        first = ip[np.r_[True, rp[1:] != rp[:-1]]]  # entries are in descending order within a row
        single[er[first]] = sk.ec[first]
    amax = sk.ec[sk.ptr[:-1]]  # the first index of the row maximum, always exact
    guess = confident_guess(known_count, single, amax)
    decided = sk.cert | (known_count >= 2) | ((known_count == 1) & (single == amax))
    open_rows = np.flatnonzero(~decided)
    decided[open_rows] = rm64[open_rows] < _min_unknown_cut(sk, open_rows, cut)
    return _refined_guesses(sk, cut, guess.astype(np.int64), decided)


def _keeps(sk: Sketch, full=None):
    """(the unflagging test: given label still the argmax after + 1e-6, which are proven): the C++
    kernel ``sketch_keeps``, one sweep of each row's entries; :func:`_keeps_numpy` is its definition.
    ``full``: :func:`_full_tests` of the refined rows, when already at hand."""
    nudged = _nudged(sk)
    keep = np.empty(sk.n, bool)
    decided = np.empty(sk.n, bool)
    core().sketch_keeps(sk.ptr, np.ascontiguousarray(sk.ec, dtype=np.int64), sk.ev, sk.rm,
                        np.ascontiguousarray(sk.y, dtype=np.int64), nudged, keep.view(np.uint8),
                        decided.view(np.uint8), threads(None))
    if len(sk.fpos):  # refined rows: every class is known (one sweep of each row in C++)
        keep[sk.fpos] = (_full_tests(sk, np.full(sk.k, np.inf)) if full is None else full)[0]
        decided[sk.fpos] = True
    return keep, decided


def _keeps_numpy(sk: Sketch):
    """Definition of :func:`_keeps` (NumPy over all entries at once)."""
    nudged = _nudged(sk)
    rm64 = sk.rm.astype(np.float64)
    er = sk.er
    ye, pe, ev64 = sk.y[er], nudged[er], sk.ev.astype(np.float64)
    known_fail = sk.row_any(((sk.ec < ye) & (ev64 >= pe)) | ((sk.ec > ye) & (ev64 > pe)))
    decided = known_fail | (rm64 != nudged)
    keep = ~known_fail & (rm64 <= nudged)  # a tie with left_out_max: kept (best answer)
    if len(sk.fpos):  # refined rows: every class is known
        keep[sk.fpos] = ~given_beaten(np.arange(sk.k)[None, :], sk.frows, sk.y[sk.fpos],
                                      nudged[sk.fpos])
        decided[sk.fpos] = True
    return keep, decided


def _counts(sk: Sketch, guess, label_counts, ties: str, memo):
    """(calibrated confident joint, prune counts) of the guesses: K x K work
    (~3 s at K = 4000), reused from ``memo`` when the guesses are those of
    the last call (re-reads for the selections leave them as they were)."""
    if memo is not None and memo.get("ties") == ties and np.array_equal(memo.get("guess"), guess):
        return memo["cj"], memo["pcm"]
    cj_raw, _ = confident_joint_from_guesses(sk.y, guess.astype(np.int32), sk.k)
    cj = calibrate(cj_raw, label_counts, ties)
    pcm = prune_counts(cj.T, 1, ties)
    if memo is not None:
        memo.update(ties=ties, guess=guess.copy(), cj=cj, pcm=pcm)
    return cj, pcm


def result(sk: Sketch, ties: str, with_latent: bool = True, memo: dict | None = None) -> NoiseEstimate:
    """The in-memory algorithm on the sketch, with what is proven (see :mod:`labelsift.stream`).

    ``with_latent=False``: leave out py, the noise matrices and the joint
    (None), which the label-issue mask does not need -- K x K work that
    dominates at large K when the certificate runs more than once.
    ``memo``: a dict kept between the rounds of one call, so that the
    calibration and the prune counts are computed again only when the
    confident guesses changed."""
    label_counts = np.bincount(sk.y, minlength=sk.k).astype(np.int64)
    thresholds = thresholds_from_given(sk.g, sk.y, sk.k, threads(None))  # exact
    cut = cut_from_thresholds(thresholds, sk.k, sk.dtype).astype(np.float64)  # compared exactly in float64
    full = _full_tests(sk, cut) if len(sk.fpos) else None  # the refined rows' tests, one sweep for both
    guess, guess_decided = _guesses(sk, cut, full)
    keep, keep_decided = _keeps(sk, full)
    counts_exact = bool(guess_decided.all())

    cj, pcm = _counts(sk, guess, label_counts, ties, memo)
    py = noise_matrix = inverse_noise_matrix = joint = None
    if with_latent:
        py, noise_matrix, inverse_noise_matrix = latent.estimate_latent(cj, label_counts, "cnt", True)
        joint = latent.estimate_joint_from_calibrated(cj)
    sel = select_by_noise_rate(sk, pcm, label_counts, ties, memo)

    is_eligible = eligible(label_counts, 1)
    kept_for_sure = keep_decided & keep
    if counts_exact:
        surely_not_selected = ~sel.definite & ~sel.maybe
        flag_decided = kept_for_sure | surely_not_selected | (keep_decided & ~sel.maybe)
        to_refine = (~keep_decided & ~surely_not_selected) | sel.competing
    else:  # the counts may be off: only count-independent answers are proven
        flag_decided = kept_for_sure | ~is_eligible[sk.y]
        to_refine = ~guess_decided  # settle the counts first
    to_refine[sk.fpos] = False  # already given in full
    uncertain = ~flag_decided | ~guess_decided
    num_uncertain = int(np.count_nonzero(uncertain))
    if num_uncertain == 0:
        to_refine[:] = False  # open selections whose outcome no flag depends on
    return NoiseEstimate(
        thresholds=thresholds, confident_joint=cj, joint=joint,
        noise_matrix=noise_matrix, inverse_noise_matrix=inverse_noise_matrix, py=py,
        label_issues=sel.best & ~keep, indices=sk.ids.copy(), exact=num_uncertain == 0,
        num_uncertain=num_uncertain, uncertain=uncertain, counts_exact=counts_exact, to_refine=to_refine,
    )
