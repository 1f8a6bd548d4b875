"""What happens when the tickets stream time advances: breaches, survey releases,
ticket expiry, packing idle tickets, sealing and eviction of slices."""

from __future__ import annotations

import heapq

from cxpulse.core.engine.state import IDLE_BUCKET_MS, EngineState
from cxpulse.core.engine.stores import evict_before
from cxpulse.core.events import (
    TICKETS,
)
from cxpulse.core.slices import (
    Key,
    TicketAgg,
)
from cxpulse.core.tickets import (
    UNFILED,
    TicketState,
    TicketView,
    packed_expiry,
    packed_view,
)

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
            if not isinstance(state, TicketState) or state.pushed != d:
                continue  # gone, packed (nothing pending), or an old entry
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
        idle = self._idle_heap
        if idle and idle[0] * IDLE_BUCKET_MS + self._pack_lag <= st:
            self._pack_idle(st)
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
                    expiry = (
                        state.expiry if isinstance(state, TicketState) else packed_expiry(state)
                    )
                    if expiry // _EXPIRY_BUCKET_MS != bucket:
                        continue  # an old entry: filed under its current bucket too
                    if expiry < st:
                        self._drop(tid, state)
                    else:
                        self._schedule_expiry(tid, expiry)
                    continue
                tomb = self._tombs.get(tid)
                if tomb is not None and tomb[0] // _EXPIRY_BUCKET_MS == bucket:
                    if tomb[0] < st:
                        del self._tombs[tid]
                        self._dirty.add("t:" + tid)
                    else:
                        self._schedule_expiry(tid, tomb[0])

    def _drop(self, tid: str, state: TicketState | bytes) -> None:
        """Replace a finished ticket by a tombstone: enough to attribute its surveys
        and to recognise its stragglers, for one more retention period."""
        st = self._st[TICKETS]
        assert st is not None
        del self._tickets[tid]
        expiry = st + self.config.retention_ms
        self._tombs[tid] = (expiry, self._view(tid, state).attribution())
        self._schedule_expiry(tid, expiry)
        self._dirty.add("t:" + tid)

    # ------------------------------------------------------------- packing

    def _file_idle(self, tid: str, last_ts: int) -> None:
        """File `tid` to be packed once its newest event (`last_ts`) is `pack_idle_ms`
        old (`_pack_idle`). Called when a ticket's newest event time enters another
        bucket (`TicketEvents._apply_ticket`) and when a ticket is unpacked: an
        entry, not a membership, like `_schedule_expiry` (a ticket filed twice is
        looked at twice)."""
        bucket = last_ts // IDLE_BUCKET_MS
        members = self._idle_buckets.get(bucket)
        if members is None:
            members = self._idle_buckets[bucket] = []
            heapq.heappush(self._idle_heap, bucket)
        members.append(tid)

    def _pack_idle(self, st: int) -> None:
        """Pack the tickets filed under buckets now `pack_idle_ms` behind the stream time.

        A ticket that cannot be packed yet (a deadline pending, not derived yet) is
        filed again to be looked at once more after `pack_idle_ms`; one with late
        events never can (its derivation is not kept) and stays as it is. Packing
        changes no result and no changelog value (`TicketState.pack`)."""
        heap = self._idle_heap
        idle_ms = self.config.pack_idle_ms
        tickets = self._tickets
        lag = self._pack_lag
        while heap and heap[0] * IDLE_BUCKET_MS + lag <= st:
            for tid in self._idle_buckets.pop(heapq.heappop(heap)):
                state = tickets.get(tid)
                if not isinstance(state, TicketState):
                    continue  # gone, or packed already (filed twice)
                last_ts = state.last_ts
                assert last_ts is not None  # a live ticket has an event
                if last_ts + idle_ms > st:
                    continue  # a newer event: filed under its bucket too
                if state.packable():  # not stale either: no derivation kept
                    tickets[tid] = state.pack()
                elif not state.late:
                    self._file_idle(tid, st)

    def _live(self, tid: str, packed: bytes) -> TicketState:
        """Unpack a packed ticket (it is about to change) and file it to be packed again."""
        state = TicketState.unpack(tid, packed, self._params, self.guard.peek, self._st[TICKETS])
        self._tickets[tid] = state
        self._file_idle(tid, state.last_ts if state.last_ts is not None else 0)
        return state

    def _view(self, tid: str, state: TicketState | bytes) -> TicketView:
        """A live ticket's view; a packed one's derived without unpacking it."""
        if isinstance(state, TicketState):
            return state.view
        return packed_view(state, self._params)
