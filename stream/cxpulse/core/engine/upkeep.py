"""What happens when the tickets stream time advances: breaches, survey releases,
ticket expiry, sealing and eviction of slices."""

from __future__ import annotations

import heapq

from cxpulse.core.engine.state import EngineState
from cxpulse.core.engine.stores import evict_before
from cxpulse.core.events import (
    TICKETS,
)
from cxpulse.core.slices import (
    Key,
    TicketAgg,
)
from cxpulse.core.tickets import UNFILED, TicketState

_EXPIRY_BUCKET_MS = 3_600_000


class StreamTimeUpkeep(EngineState):
    """Upkeep at a new tickets stream time, and the expiry schedule of tickets."""

    def _on_tickets_time(self) -> None:
        st = self._st[TICKETS]
        assert st is not None
        cfg = self.config
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] < st:
            d, tid = heapq.heappop(deadlines)
            state = self._tickets.get(tid)
            if state is None or state.pushed != d:
                continue
            state.pushed = None
            if state.pending == d:
                if state.derivation is not None:
                    self._resume(tid, state, None)
                else:
                    self._rederive(tid, state)
        # Most advances of the stream time find nothing due: each job is
        # entered only when its own heap's head says so (calls cost, issue 22).
        heap = self._park_heap
        released = False
        while heap and (head := self._parked_head()) is not None and head + cfg.lateness_ms < st:
            _, eid = heapq.heappop(heap)
            self._release(eid)
            released = True
        expiring = self._expiry_heap
        if expiring and (expiring[0] + 1) * _EXPIRY_BUCKET_MS <= st:
            self._sweep_expiry(st)
        upto = cfg.slice_of(st - cfg.lateness_ms)
        if upto > self.tickets_store.sealed:
            self._fold_tickets(self.tickets_store.seal(upto))
            self.agents_store.seal(upto)
            evict = self._evict_before(st)
            self.tickets_store.evict(evict)
            self.agents_store.evict(evict)
        if released:
            self._seal_surveys()

    def _evict_before(self, st: int) -> int:
        return evict_before(self.config, st)

    def _fold_tickets(self, sealed: list[tuple[int, dict[Key, TicketAgg]]]) -> None:
        cum = self._cum_tickets
        for _, sl in sealed:
            for key, agg in sl.items():
                mine = cum.get(key)
                if mine is None:
                    mine = cum[key] = TicketAgg(self._nb, with_sketch=False)
                mine.merge(agg)
        if sealed:
            self._dirty.add("c")

    def _schedule_expiry(self, tid: str, expiry: int) -> None:
        """File `tid` under the hour bucket of `expiry` (a ticket: its `expiry`; a tombstone).

        An entry, not a membership: a ticket whose expiry moves to another
        bucket is filed there too and its old entry stays, to be skipped by the
        sweep (`_sweep_expiry` checks the bucket of the current expiry). Why:
        a set per bucket plus a dict of each ticket's bucket cost some 140
        bytes per open ticket (issue 22); a list entry costs 8, and a ticket's
        expiry changes bucket at most once per hour of its events."""
        bucket = expiry // _EXPIRY_BUCKET_MS
        members = self._expiry_buckets.get(bucket)
        if members is None:
            members = self._expiry_buckets[bucket] = []
            heapq.heappush(self._expiry_heap, bucket)
        members.append(tid)

    def _refile_expiry(self, tid: str, state: TicketState, expiry: int) -> None:
        """Set the ticket's expiry, filing it again if that changes its bucket."""
        old = state.expiry
        state.expiry = expiry
        if old == UNFILED or old // _EXPIRY_BUCKET_MS != expiry // _EXPIRY_BUCKET_MS:
            self._schedule_expiry(tid, expiry)

    def _sweep_expiry(self, st: int) -> None:
        heap = self._expiry_heap
        while heap and (heap[0] + 1) * _EXPIRY_BUCKET_MS <= st:
            bucket = heapq.heappop(heap)
            for tid in sorted(set(self._expiry_buckets.pop(bucket, ()))):
                state = self._tickets.get(tid)
                if state is not None:
                    if state.expiry // _EXPIRY_BUCKET_MS != bucket:
                        continue  # an old entry: filed under its current bucket too
                    if state.expiry < st:
                        self._drop(tid, state)
                    else:
                        self._schedule_expiry(tid, state.expiry)
                    continue
                tomb = self._tombs.get(tid)
                if tomb is not None and tomb[0] // _EXPIRY_BUCKET_MS == bucket:
                    if tomb[0] < st:
                        del self._tombs[tid]
                        self._dirty.add("t:" + tid)
                    else:
                        self._schedule_expiry(tid, tomb[0])

    def _drop(self, tid: str, state: TicketState) -> None:
        """Replace a finished ticket by a tombstone: enough to attribute its surveys
        and to recognise its stragglers, for one more retention period."""
        st = self._st[TICKETS]
        assert st is not None
        del self._tickets[tid]
        expiry = st + self.config.retention_ms
        self._tombs[tid] = (expiry, state.view.attribution())
        self._schedule_expiry(tid, expiry)
        self._dirty.add("t:" + tid)
