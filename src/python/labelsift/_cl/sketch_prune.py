"""prune_by_noise_rate on the streaming sketch, with proofs.

For given class k and true class j with c = pcm[j, k] > 0, the selection is
the c rows of class k with the largest margin P[j] - P[k] (in the dtype;
ties by lower row = lower id). A margin is known when j is in the row's
sketch (or the row was refined); otherwise it lies in
[floor - P[k], left_out_max - P[k]] (both rounded in the dtype, which keeps
them bounds). A row is definitely selected when fewer than c other rows can
beat its lowest possible margin, definitely not when c rows certainly beat
its highest one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._common.backend import core, threads
from .rules import active_pairs

# A value below every accepted probability (the validation floor is -1e-6),
# still below it after rounding to float16.
_FLOOR = -2e-6


@dataclass
class Selection:
    """Row masks of the sketch's prune_by_noise_rate."""

    definite: np.ndarray  # certainly selected
    maybe: np.ndarray  # possibly selected (not certainly)
    best: np.ndarray  # the best answer
    competing: np.ndarray  # an unknown margin competing in an undecided selection


@dataclass
class _Known:
    """Known (row, pair, margin) entries, sorted by pair, margin descending, id ascending."""

    rows: np.ndarray
    pair: np.ndarray
    margin: np.ndarray
    start: np.ndarray  # (npairs + 1,) where each pair's entries begin

    @property
    def rank(self) -> np.ndarray:
        return np.arange(len(self.rows)) - self.start[self.pair]


def count_better(A, Q, ids):
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


def _known_entries(sk, active, pair_keys, pstart, pj, refined) -> _Known:
    """Margins the sketch knows: the classes in each row's sketch, every active pair of a refined row.
    ``active(k, j)``: whether the pairs (given class, column) are active (bool array)."""
    K = sk.k
    er = sk.er
    ye = sk.y[er]
    valid = np.flatnonzero((sk.ec != ye) & active(ye, sk.ec) & ~refined[er])
    ei = er[valid]
    ep = np.searchsorted(pair_keys, ye[valid] * K + sk.ec[valid])
    em = (sk.ev[valid] - sk.g[ei]).astype(np.float64)  # P[j] - P[k] in the dtype
    if len(sk.fpos):
        yf = sk.y[sk.fpos]
        npf = pstart[yf + 1] - pstart[yf]
        local = np.repeat(np.arange(len(sk.fpos)), npf)
        offs = np.arange(len(local)) - np.repeat(np.cumsum(npf) - npf, npf)
        fp = pstart[yf][local] + offs
        fm = (sk.frows[local, pj[fp]] - sk.g[sk.fpos[local]]).astype(np.float64)
        ei, ep, em = np.concatenate([ei, sk.fpos[local]]), np.concatenate([ep, fp]), np.concatenate([em, fm])
    # by pair, margin descending, id ascending (np.lexsort((ei, -em, ep)); each (pair, row) once)
    o, start = core().group_sort_desc(np.ascontiguousarray(ep, dtype=np.int64), np.ascontiguousarray(em),
                                      np.ascontiguousarray(ei, dtype=np.int64), len(pair_keys), threads(None))
    return _Known(ei[o], ep[o], em[o], start)


def _by_class_then_desc(y, v, k: int) -> np.ndarray:
    """``np.lexsort((arange(n), -v, y))`` -- rows by class, then v descending, then id -- as two
    stable sorts (the second a radix sort of the classes when they fit 16 bits): the same order."""
    o = np.argsort(-v, kind="stable")
    yo = y[o]
    if k <= np.iinfo(np.int16).max:
        yo = yo.astype(np.int16)
    return o[np.argsort(yo, kind="stable")]


def _decided_fast(sk, kn: _Known, pk, cap, label_counts, ub, ties):
    """(pairs decided without looking at every row, pairs selecting their
    whole class).

    Decided: the cap-th best known margin beats every unknown upper bound
    (or nothing is unknown, or the whole class is selected). The best
    unknown of a pair is the first row of its class, in upper-bound order,
    not known for the pair; the known ones before it form a prefix of that
    order. With ``ties="cleanlab"`` a tie at the cut is never decided here
    (cleanlab's order among equal margins depends on the whole margin
    array): the cap-th known margin must beat both the next known one and
    every unknown bound strictly, unless every margin is known.
    """
    n, npairs = sk.n, len(pk)
    n_k = label_counts[pk]
    by_ub = _by_class_then_desc(sk.y, ub, sk.k)  # class, ub descending, id ascending
    cstart = np.zeros(sk.k + 1, np.int64)
    np.cumsum(label_counts, out=cstart[1:])
    pos_in_class = np.empty(n, np.int64)
    pos_in_class[by_ub] = np.arange(n) - cstart[sk.y[by_ub]]
    epos = pos_in_class[kn.rows]
    # np.lexsort((epos, kn.pair)): by pair, then position in ub order (unique within a pair)
    o2, _ = core().group_sort_desc(np.ascontiguousarray(kn.pair, dtype=np.int64), -epos.astype(np.float64),
                                   np.arange(len(epos), dtype=np.int64), npairs, threads(None))
    t_idx = np.arange(len(kn.rows)) - kn.start[kn.pair[o2]]
    prefix = np.bincount(kn.pair[o2], weights=(epos[o2] == t_idx), minlength=npairs).astype(np.int64)
    best_unknown = by_ub[cstart[pk] + np.minimum(prefix, n_k - 1)]
    has_kappa = (kn.start[1:] - kn.start[:-1]) >= cap
    kpos = np.where(has_kappa, kn.start[:-1] + cap - 1, 0)
    if len(kn.rows):
        k_m, k_i = kn.margin[kpos], kn.rows[kpos]
    else:
        k_m, k_i = np.full(npairs, -np.inf), np.zeros(npairs, np.int64)
    u_m = ub[best_unknown]
    full = cap >= n_k
    all_known = prefix >= n_k
    if ties == "cleanlab":
        cnt = kn.start[1:] - kn.start[:-1]
        nxt = np.where(cnt > cap, kn.margin[np.minimum(kn.start[:-1] + cap, max(len(kn.rows) - 1, 0))], -np.inf) \
            if len(kn.rows) else np.full(npairs, -np.inf)
        beats = (k_m > u_m) & (k_m > nxt)
        return full | (~all_known & has_kappa & beats), full
    beats = (k_m > u_m) | ((k_m == u_m) & (k_i < best_unknown))
    return full | all_known | (has_kappa & beats), full


@dataclass
class _Bounds:
    """One pair's margins over the rows of its class (``members``, ascending
    ids): known margins exact, unknown ones as [lo, hi] with ``best`` the
    best-answer estimate."""

    hi: np.ndarray
    lo: np.ndarray
    best: np.ndarray
    unknown: np.ndarray  # bool

    @classmethod
    def of(cls, members, kn: _Known, p, ub, lb, est) -> "_Bounds":
        s, e = kn.start[p], kn.start[p + 1]
        loc = np.searchsorted(members, kn.rows[s:e])
        hi, lo, best = ub[members], lb[members], est[members]
        hi[loc] = lo[loc] = best[loc] = kn.margin[s:e]
        unknown = np.ones(len(members), bool)
        unknown[loc] = False
        return cls(hi, lo, best, unknown)

    def mark_best(self, sel: Selection, members, cp) -> np.ndarray:
        """The best answer: the cp best estimates, ties by id (the rows marked)."""
        chosen = members[np.lexsort((members, -self.best))[:cp]]
        sel.best[chosen] = True
        return chosen


def _settle_pair(sel: Selection, members, b: _Bounds, cp) -> np.ndarray | None:
    """An undecided pair: bound every row of the class, mark what is proven.
    The rows of its best answer when no row is left open, else None."""
    d_sel = count_better(b.hi, b.lo, members) < cp  # too few rows can beat its lowest margin
    d_not = count_better(b.lo, b.hi, members) >= cp  # cp rows surely beat its highest margin
    sel.definite[members[d_sel]] = True
    maybe = ~d_sel & ~d_not
    if maybe.any():
        sel.maybe[members[maybe]] = True
        sel.competing[members[b.unknown & ~d_not]] = True
    chosen = b.mark_best(sel, members, cp)
    return None if maybe.any() else chosen


def _cleanlab_exact(sel: Selection, members, kn: _Known, p, cp, dtype) -> np.ndarray:
    """A pair whose every margin is known: cleanlab's own selection, the
    first cp of ``np.argsort(-margin)`` over the class's rows in id order,
    in the input dtype (the rows chosen)."""
    s, e = kn.start[p], kn.start[p + 1]
    margin = np.empty(len(members), dtype)
    margin[np.searchsorted(members, kn.rows[s:e])] = kn.margin[s:e]
    chosen = members[np.argsort(-margin)[:cp]]
    sel.definite[chosen] = True
    sel.best[chosen] = True
    return chosen


def _strict_cut(sel: Selection, members, b: _Bounds, cp) -> np.ndarray | None:
    """``ties="cleanlab"``, some margin unknown: decided when the cp rows with
    the highest lower bounds all strictly beat the upper bound of every other
    row -- then no order among equal margins can change the set (the rows
    chosen; None when not decided)."""
    if cp >= len(members):
        return None
    order = np.argsort(-b.lo, kind="stable")
    chosen, rest = order[:cp], order[cp:]
    if not b.lo[chosen].min() > b.hi[rest].max():
        return None
    sel.definite[members[chosen]] = True
    sel.best[members[chosen]] = True
    return members[chosen]


def _cleanlab_open(sel: Selection, members, b: _Bounds, cp) -> bool:
    """``ties="cleanlab"``, no strict cut yet: only the rows whose upper bound
    reaches the cp-th highest lower bound stay open (every other row is beaten
    by cp rows whatever the tie order), and the unknown ones among them are
    the rows to read in full. False when every open row is already known
    (equal margins at the cut: cleanlab's order needs the whole class)."""
    thr = np.partition(b.lo, len(b.lo) - cp)[len(b.lo) - cp]
    open_ = b.hi >= thr
    if not (open_ & b.unknown).any():
        return False
    sel.maybe[members[open_]] = True
    sel.competing[members[open_ & b.unknown]] = True
    b.mark_best(sel, members, cp)
    return True


def _unsettled(sel: Selection, members, b: _Bounds, cp) -> None:
    """``ties="cleanlab"``, some margin unknown and no strict cut: every row of
    the class stays open (their full rows settle it), best answer by id."""
    sel.maybe[members] = True
    sel.competing[members] = True
    b.mark_best(sel, members, cp)


def _table_pairs(sel: Selection, table, pk, pj, cap, label_counts, ties, dtype, wanted) -> np.ndarray:
    """The pairs the pair table settles, their rows marked selected (definite
    and best); a bool per pair. The table holds the best ``slots`` rows of
    the class by (margin, id): the first c of them are the selection when
    c <= slots (``"lower_index"``); with ``ties="cleanlab"`` only when the
    c-th margin strictly beats the next row's (the next slot, or for
    c == slots the table's runner-up; then no order among equal margins
    can change the set) or the class has at most ``slots`` rows
    (every margin known: cleanlab's own argsort on them, in ``dtype``).
    Only the ``wanted`` pairs are looked at."""
    npairs = len(pk)
    if table is None or npairs == 0:
        return np.zeros(npairs, bool)
    S = table.slots
    vals = table.vals[pk, :, pj].astype(np.float64)  # (npairs, S)
    ids = table.ids[pk, :, pj].astype(np.int64)
    n_k = label_counts[pk]
    filled = np.count_nonzero(ids >= 0, axis=1)
    c = np.minimum(cap, n_k)
    ok = wanted & (c <= S) & (filled >= c)
    if ties == "cleanlab":
        whole = ok & (n_k <= S) & (filled == n_k)
        # the next row's margin: the slot after the cut, or for c == S a bound that ties the worst slot
        # exactly when a row outside the slots does (the runner-up)
        after = np.where(c < filled, vals[np.arange(npairs), np.minimum(c, S - 1)], -np.inf)  # none: no tie
        nxt = np.where(c < S, after, table.runner[pk, pj].astype(np.float64))
        strict = ok & ~whole & (vals[np.arange(npairs), np.clip(c - 1, 0, S - 1)] > nxt)
        for p in np.flatnonzero(whole):  # the whole class: cleanlab's order among equal margins
            order = np.argsort(ids[p, : n_k[p]], kind="stable")
            m_by_id = vals[p, : n_k[p]][order].astype(dtype)
            chosen = ids[p, : n_k[p]][order][np.argsort(-m_by_id)[: c[p]]]
            sel.definite[chosen] = True
        ok = whole | strict
        take = strict
    else:
        take = ok
    slot = np.arange(S)[None, :] < c[:, None]
    chosen = ids[take][slot[take]]
    sel.definite[chosen] = True
    return ok


def _settle_undecided(sel: Selection, members, kn: _Known, p, cp, ub, lb, est, ties, dtype) -> np.ndarray | None:
    """One pair neither the fast test nor the pair table decided, marked into
    ``sel``: the rows it selects when it is settled (no row left open), else None."""
    if ties == "cleanlab" and kn.start[p + 1] - kn.start[p] >= len(members):  # every margin known
        return _cleanlab_exact(sel, members, kn, p, cp, dtype)
    b = _Bounds.of(members, kn, p, ub, lb, est)
    if ties != "cleanlab":
        return _settle_pair(sel, members, b, cp)
    chosen = _strict_cut(sel, members, b, cp)
    if chosen is None and not _cleanlab_open(sel, members, b, cp):
        _unsettled(sel, members, b, cp)
    return chosen


def _settle_pairs(sel: Selection, settled, pairs, pk, cap, kn: _Known, members_of, ub, lb, est, ties,
                  dtype) -> np.ndarray:
    """:func:`_settle_undecided` for each of ``pairs`` (indices into pk, cap and kn's pairs), the
    rows of those settled also marked in ``settled``; returns the ones left open."""
    left = []
    for p in pairs:
        chosen = _settle_undecided(sel, members_of(pk[p]), kn, p, cap[p], ub, lb, est, ties, dtype)
        if chosen is None:
            left.append(p)
        else:
            settled[chosen] = True
    return np.asarray(left, np.int64)


def _row_bounds(sk, refined):
    """(upper, lower, best-estimate) bounds of every row's unknown margins, in float64
    (rounded in the dtype first: rounding is monotone, so they stay bounds)."""
    ub = (sk.rm - sk.g).astype(np.float64)
    ub[refined] = -np.inf  # never unknown
    lb = (np.asarray(_FLOOR, dtype=sk.dtype) - sk.g).astype(np.float64)
    est = (np.minimum(sk.rm, np.asarray(0, dtype=sk.dtype)) - sk.g).astype(np.float64)
    return ub, lb, est


def _class_members(sk, label_counts):
    by_class = np.argsort(sk.y, kind="stable")
    cstart = np.zeros(sk.k + 1, np.int64)
    np.cumsum(label_counts, out=cstart[1:])
    return lambda k: by_class[cstart[k] : cstart[k + 1]]


def select_by_noise_rate(sk, pcm: np.ndarray, label_counts: np.ndarray, ties: str,
                         memo: dict | None = None) -> Selection:
    """The sketch's prune_by_noise_rate selections (min_examples_per_class=1).

    ``memo``: a dict kept between the rounds of one call. A later round with
    the same prune counts and more rows given in full (re-reads only add
    knowledge) starts from the rows of the pairs the last round settled (they
    are proven) and looks again only at the pairs it left open: the same
    selection as a fresh call."""
    n = sk.n
    state = None if memo is None else memo.get("select")
    if state is not None and state["ties"] == ties and np.array_equal(state["pcm"], pcm) \
            and np.isin(state["fpos"], sk.fpos, assume_unique=True).all():
        return _select_open_pairs(sk, state, label_counts, ties, memo)
    sel = Selection(np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool))
    by_given, pk, pj, cap = active_pairs(pcm, label_counts, 1)
    if len(pk) == 0:
        return sel
    pstart = np.zeros(sk.k + 1, np.int64)
    np.cumsum(np.bincount(pk, minlength=sk.k), out=pstart[1:])
    refined = np.zeros(n, bool)
    refined[sk.fpos] = True
    kn = _known_entries(sk, lambda a, b: by_given[a, b] > 0, pk * sk.k + pj, pstart, pj, refined)
    ub, lb, est = _row_bounds(sk, refined)

    decided, full = _decided_fast(sk, kn, pk, cap, label_counts, ub, ties)
    by_table = _table_pairs(sel, sk.pairs, pk, pj, cap, label_counts, ties, sk.dtype, ~decided & ~full)
    take = decided[kn.pair] & (kn.rank < cap[kn.pair])
    sel.definite[kn.rows[take]] = True
    full_class = np.zeros(sk.k, bool)
    full_class[pk[full]] = True
    sel.definite |= full_class[sk.y]
    sel.best[:] = sel.definite

    und = np.flatnonzero(~decided & ~by_table)
    settled = sel.best.copy()  # the rows of the pairs settled (for a later round)
    op = np.zeros(0, np.int64)
    if len(und):
        op = _settle_pairs(sel, settled, und, pk, cap, kn, _class_members(sk, label_counts), ub, lb, est, ties,
                           sk.dtype)
    sel.maybe &= ~sel.definite
    if memo is not None:
        memo["select"] = dict(ties=ties, pcm=pcm, fpos=np.array(sk.fpos, np.int64),  # pcm: never written to
                              settled=settled, pk=pk[op], pj=pj[op], cap=cap[op])
    return sel


@dataclass
class _RowsView:
    """The entries of some rows of a sketch (row ids stay global), for :func:`_known_entries`."""

    er: np.ndarray
    ec: np.ndarray
    ev: np.ndarray
    y: np.ndarray
    g: np.ndarray
    fpos: np.ndarray
    frows: np.ndarray
    k: int

    @classmethod
    def of(cls, sk, rows) -> "_RowsView":
        a, b = sk.ptr[rows], sk.ptr[rows + 1]
        cnt = b - a
        idx = np.repeat(a - (np.cumsum(cnt) - cnt), cnt) + np.arange(int(cnt.sum()))
        held = np.isin(sk.fpos, rows)
        return cls(np.repeat(rows, cnt), sk.ec[idx], sk.ev[idx], sk.y, sk.g, sk.fpos[held], sk.frows[held], sk.k)


def _select_open_pairs(sk, state, label_counts, ties, memo) -> Selection:
    """A later round: the settled pairs' rows from ``state`` (selected, certainly); the open
    pairs looked at again on the entries of their classes' rows alone."""
    n, K = sk.n, sk.k
    sel = Selection(state["settled"].copy(), np.zeros(n, bool), state["settled"].copy(), np.zeros(n, bool))
    pk, pj, cap = state["pk"], state["pj"], state["cap"]  # (k, j) order, as active_pairs gives them
    if len(pk) == 0:
        return sel
    members_of = _class_members(sk, label_counts)
    rows = np.sort(np.concatenate([members_of(k) for k in np.unique(pk)]))
    keys = pk * K + pj
    pstart = np.zeros(K + 1, np.int64)
    np.cumsum(np.bincount(pk, minlength=K), out=pstart[1:])
    refined = np.zeros(n, bool)
    refined[sk.fpos] = True
    kn = _known_entries(_RowsView.of(sk, rows), lambda a, b: np.isin(a * K + b, keys), keys, pstart, pj, refined)
    ub, lb, est = _row_bounds(sk, refined)
    settled = state["settled"].copy()
    still = _settle_pairs(sel, settled, range(len(pk)), pk, cap, kn, members_of, ub, lb, est, ties, sk.dtype)
    sel.maybe &= ~sel.definite
    memo["select"] = dict(state, fpos=np.array(sk.fpos, np.int64), settled=settled, pk=pk[still], pj=pj[still],
                          cap=cap[still])
    return sel
