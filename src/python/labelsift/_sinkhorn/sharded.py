"""The Sinkhorn passes over rows split between workers, with the single
process's bits.

One process cuts its N rows into chunks of ``chunk_rows(N)`` rows, adds each
chunk's rows in order into float64 column partials and adds the partials
chunk 0, 1, 2, ... (``src/cpp/sinkhorn/kernels.h``). Here every worker holds
consecutive rows [offset, offset + n) of the whole; it cuts them at the same
global chunk boundaries into *pieces* and runs the same row loop
(``sk_pass_pieces``). A chunk split between workers is continued exactly: the
worker holding its first rows sends its running partial to the next worker
holding rows (one K-vector per pass, forward only, so no cycle), which goes on
from there. Each chunk's finished partial is then gathered (at most 256 x K
doubles per pass in all) and the column sums are added in chunk order on
every worker; column maxima are order-free. The log-sum-exp of the first
column step goes the same way (``sk_col_lse_pieces`` / ``sk_lse_finish``),
and SeLa's criterion sums its per-row terms gathered in row order.

A communicator gives ``rank``, ``size``, ``allgather(obj) -> list``,
``send(dst, array)`` and ``recv(src, size) -> array`` (float64):
:class:`ThreadComm` runs the ranks as threads of one process (tests),
``labelsift.sinkhorn`` builds one over a torch.distributed group.
"""
from __future__ import annotations

import queue
import threading

import numpy as np

from .._common.backend import core
from .inputs import describe_bad_row


class ShardRows:
    """One worker's rows: the piece layout and the exact sharded reductions."""

    def __init__(self, comm, n_local: int):
        self.comm = comm
        sizes = [int(s) for s in comm.allgather(int(n_local))]
        self.sizes = sizes
        self.n_total = int(sum(sizes))
        if self.n_total == 0:
            raise ValueError("scores is empty (0 rows on every rank)")
        self.offset = int(sum(sizes[: comm.rank]))
        self.n = int(n_local)
        rpc = int(core().sk_chunk_rows(self.n_total))
        self.rpc = rpc
        self.nch = (self.n_total + rpc - 1) // rpc
        lo, hi = self.offset, self.offset + self.n
        if self.n:
            first, last = lo // rpc, (hi - 1) // rpc
            self.chunks = np.arange(first, last + 1, dtype=np.int64)
            bounds = np.clip(self.chunks * rpc, lo, hi) - lo
            self.starts = np.ascontiguousarray(np.concatenate([bounds, [self.n]]), dtype=np.int64)
        else:
            self.chunks = np.empty(0, np.int64)
            self.starts = np.zeros(1, np.int64)
        # the chunk of my first row began on an earlier rank: its partial arrives from the previous holder
        self.prev = self._holder(-1) if self.n and lo % rpc else None
        # my last chunk goes on past my rows: the next holder continues it
        last_end = min(self.n_total, (int(self.chunks[-1]) + 1) * rpc) if self.n else 0
        self.next = self._holder(+1) if self.n and last_end > hi else None

    def _holder(self, step: int):
        r = self.comm.rank + step
        while 0 <= r < self.comm.size and self.sizes[r] == 0:
            r += step
        return r

    # -- one pass -----------------------------------------------------------
    def _chain(self, run, width: int, init):
        """Run the pieces -- the first one continued from the previous
        holder's partial when its chunk began there -- and hand the last one
        on when its chunk goes on; returns (the partials of the chunks that
        end here, their chunk ids, the first bad local row or -1)."""
        npc = len(self.chunks)
        part = np.empty((npc, width))
        part[:] = init
        bad = -1
        lead = 1 if self.prev is not None else 0
        if npc > lead:  # the pieces that start here (the last one among them)
            bad = _first_bad(bad, run(self.starts[lead:], part[lead:]))
            if self.next is not None:
                self.comm.send(self.next, part[-1])
        if lead:
            part[0] = self.comm.recv(self.prev, width)
            bad = _first_bad(bad, run(self.starts[:2], part[:1]))
            if self.next is not None and npc == 1:
                self.comm.send(self.next, part[0])
        done = npc - (1 if self.next is not None else 0)
        return part[:done], self.chunks[:done], bad

    def pass_(self, pb, f, lam, labels, g, plan, unit_rows, check):
        """(colsum, colmax) of all workers' rows, exactly as one process; a
        non-finite value on any worker raises its error on every worker."""
        k = pb.k
        cmx = np.full((max(1, len(self.chunks)), k), -np.inf)

        def run(starts, acc):
            m = len(starts) - 1
            c = np.full((m, k), -np.inf)
            bad = core().sk_pass_pieces(pb.X, lam, f, pb.b, pb.b0, np.ascontiguousarray(starts), acc.reshape(-1), c.reshape(-1), labels, g,
                                        plan, unit_rows, check, pb.isa, pb.nthreads)
            cmx[0] = np.maximum(cmx[0], c.max(axis=0)) if m else cmx[0]
            return bad

        acc, ids, bad = self._chain(run, k, 0.0) if self.n else (np.empty((0, k)), self.chunks, -1)
        msg = describe_bad_row(pb.X, bad, lam, row_offset=self.offset) if check and bad >= 0 else None
        got = self.comm.allgather((ids, acc, cmx[0], msg))
        for _, _, _, m in got:
            if m is not None:
                raise ValueError(m)
        colsum = np.zeros(k)
        parts = {}
        for ids_r, acc_r, _, _ in got:
            for c, row in zip(ids_r, acc_r):
                parts[int(c)] = row
        for c in range(self.nch):  # the fixed order: chunk 0, 1, 2, ...
            colsum = colsum + parts[c]
        colmax = np.max(np.stack([m for _, _, m, _ in got]), axis=0)
        return colsum, colmax

    def col_lse(self, pb, lam, lb, lb0):
        k = pb.k

        def run(starts, ms):
            M = np.ascontiguousarray(ms[:, :k])
            S = np.ascontiguousarray(ms[:, k:])
            core().sk_col_lse_pieces(pb.X, lam, lb, lb0, np.ascontiguousarray(starts), M.reshape(-1), S.reshape(-1),
                                     pb.nthreads)
            ms[:, :k], ms[:, k:] = M, S
            return -1

        init = np.concatenate([np.full(k, -np.inf), np.zeros(k)])
        ms, ids, _ = self._chain(run, 2 * k, init) if self.n else (np.empty((0, 2 * k)), self.chunks, -1)
        got = self.comm.allgather((ids, ms))
        parts = {}
        for ids_r, ms_r in got:
            for c, row in zip(ids_r, ms_r):
                parts[int(c)] = row
        allp = np.stack([parts[c] for c in range(self.nch)])
        return core().sk_lse_finish(np.ascontiguousarray(allp[:, :k]).reshape(-1),
                                    np.ascontiguousarray(allp[:, k:]).reshape(-1), self.nch, k)

    def nansum(self, values: np.ndarray) -> float:
        """np.nansum of a per-row array over all workers' rows, in row order."""
        return float(np.nansum(np.concatenate(self.comm.allgather(np.asarray(values)))))


def _first_bad(a: int, b: int) -> int:
    if a < 0:
        return b
    return a if b < 0 else min(a, b)


class ThreadComm:
    """``size`` ranks as threads of one process (for tests): ``ThreadComm.run(size, fn)``
    calls ``fn(comm)`` on every rank and returns their results in rank order."""

    def __init__(self, rank, shared):
        self.rank, self._s = rank, shared
        self.size = shared["size"]

    @staticmethod
    def run(size, fn):
        # no abort when a rank raises (the others may still be waking from the
        # last wait); a rank left waiting for a collective times out instead
        shared = {"size": size, "barrier": threading.Barrier(size, timeout=60), "slots": [None] * size,
                  "queues": {(a, b): queue.Queue() for a in range(size) for b in range(size)}}
        results, errors = [None] * size, [None] * size

        def body(r):
            try:
                results[r] = fn(ThreadComm(r, shared))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                errors[r] = exc

        ts = [threading.Thread(target=body, args=(r,)) for r in range(size)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        return results, errors

    def allgather(self, obj):
        s = self._s
        s["barrier"].wait()
        s["slots"][self.rank] = obj
        s["barrier"].wait()
        out = list(s["slots"])
        s["barrier"].wait()
        return out

    def send(self, dst, arr):
        self._s["queues"][(self.rank, dst)].put(np.array(arr, dtype=np.float64, copy=True))

    def recv(self, src, size):
        return self._s["queues"][(src, self.rank)].get(timeout=60)
