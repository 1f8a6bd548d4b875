"""Ticket events: dedup and conflicts, lateness, the event cap, derivation and
the contribution diff applied to the slices."""

from __future__ import annotations

import heapq
from collections import Counter

from cxpulse.core.decode import Rejection
from cxpulse.core.dimensions import UNKNOWN
from cxpulse.core.duplicates import Verdict, resolve
from cxpulse.core.engine.state import IDLE_BUCKET_MS, EngineState
from cxpulse.core.events import (
    TICKETS,
    TicketAssigned,
    TicketCreated,
    TicketEvent,
)
from cxpulse.core.outcome import Outcome
from cxpulse.core.tickets import (
    AGENT_STORE,
    APPLIED,
    Contribution,
    Derivation,
    TicketState,
    TicketView,
    decode_events,
    derive_all,
)

#: Dead-letter reason of a ticket event beyond `CoreConfig.max_events_per_ticket`.
TICKET_EVENT_CAP = "ticket_event_cap"


class TicketEvents(EngineState):
    """How one ticket event changes the engine (`PartitionEngine.apply` calls `_apply_ticket`)."""

    def _apply_ticket(self, e: TicketEvent) -> Outcome | Rejection:
        cfg = self.config
        st = self._st[TICKETS]
        late = st is not None and e.ts < st - cfg.lateness_ms
        if self._stale:
            if not late and (st is None or e.ts > st):
                self.settle()  # the stream time is about to move
            else:
                self._label_cost += self._unseen_labels((e,))  # see `_defer`
                if self._label_cost > self._label_room:
                    self.settle()  # admit in the eager order from here on
        tid = e.ticket_id
        state = self._tickets.get(tid)
        if isinstance(state, bytes):
            state = self._live(tid, state)
        if state is not None and st is not None and state.expiry < st:
            if tid in self._stale:  # judged on its up-to-date expiry, as eagerly
                self._rederive(tid, state)
            if state.expiry < st:
                self._drop(tid, state)
                state = None
        if state is None:
            if tid in self._tombs:
                # A finished (closed or expired) ticket: nothing of it can change any
                # more, but an on-time event still moves the stream time.
                if late:
                    return Outcome.LATE
                if st is None or e.ts > st:
                    self._st[TICKETS] = e.ts
                    self._on_tickets_time()
                return Outcome.APPLIED
            if late and st is not None and st - e.ts > cfg.retention_ms:
                return Outcome.LATE
            state = self._tickets[tid] = TicketState(tid)
        elif (kept := state.find(e.event_id)) is not None:
            return self._duplicate(tid, state, kept, e, late)
        elif state.count() >= cfg.max_events_per_ticket:
            # Bounded state and cost whatever a producer sends; counted, never
            # silent: the caller dead-letters it (docs/kpis.md, the effect).
            return Rejection(
                TICKET_EVENT_CAP,
                f"the ticket already has max_events_per_ticket "
                f"({cfg.max_events_per_ticket}) events",
            )
        before = state.last_ts
        appended = state.insert(e, late)
        if state.last_ts is not before and (
            before is None or e.ts // IDLE_BUCKET_MS != before // IDLE_BUCKET_MS
        ):
            self._file_idle(tid, e.ts)  # its newest event in another bucket
        advanced = False
        if not late and (st is None or e.ts > st):
            self._st[TICKETS] = e.ts
            advanced = True
        d = state.derivation
        if (
            appended
            and d is not None
            and not state.late
            and (d.created_ts is not None or type(e) is not TicketCreated)
        ):
            self._resume(tid, state, e)
        # never stale across a stream-time advance (see `begin_batch`): the upkeep
        # below may admit labels (a released survey) before the ticket's own
        elif advanced or not (self._deferring and self._defer(tid, state, late, e)):
            self._rederive(tid, state)
        if advanced:
            self._on_tickets_time()
        return Outcome.LATE if late else Outcome.APPLIED

    def _duplicate(
        self, tid: str, state: TicketState, kept: TicketEvent, e: TicketEvent, late: bool
    ) -> Outcome:
        """A ticket event whose event_id the ticket holds already (`DUPLICATE`).

        Different content is a conflict (counted): of all copies the one with
        the byte-wise smallest canonical encoding counts
        (`cxpulse.core.duplicates`), so the result does not depend on arrival
        order, while every copy is within the lateness. Like any change it
        must land at or after stream time - lateness (sealing), so a late
        copy, or one replacing a copy now older than that or late itself,
        changes nothing but the count. An on-time conflicting copy moves the
        stream time like an applied event (either copy may arrive first and
        would have moved it)."""
        if kept == e:
            return Outcome.DUPLICATE
        verdict = resolve(kept, e).verdict
        if verdict is Verdict.SAME:
            return Outcome.DUPLICATE
        self.duplicate_conflicts[TICKETS] += 1
        st = self._st[TICKETS]
        assert st is not None  # the ticket holds an event
        if late:
            return Outcome.DUPLICATE
        advanced = e.ts > st
        if advanced:
            self._st[TICKETS] = e.ts
        if (
            verdict is Verdict.REPLACE
            and kept.event_id not in state.late
            and kept.ts >= st - self.config.lateness_ms
        ):
            state.replace(kept, e)
            # never stale across a stream-time advance (see `begin_batch`)
            if advanced or not (self._deferring and self._defer(tid, state, False, e)):
                self._rederive(tid, state)
        if advanced:
            self._on_tickets_time()
        return Outcome.DUPLICATE

    def _rederive(self, tid: str, state: TicketState, apply: bool = True) -> None:
        """Derive the ticket from all its events again (any change of its events)."""
        if self._stale:
            self._stale.pop(tid, None)
        st = self._st[TICKETS]
        admit = self.guard.admit
        events = state.event_list()
        if apply and not state.late:
            forked = self._forked(state, events)
            if forked is not None:
                d, old = forked
                tail, pending = d.finish(st, admit)
                self._apply_diff(old, [*d.contribs, *tail])
                d.contribs = APPLIED
                state.derivation = d
                state.tail, state.base = tail, None
                self._settle(tid, state, d.view, pending, apply, _labels(state.view))
                return
        old = self._applied(state) if apply else []
        if state.late:
            view = derive_all(events, self._params, None).view
            ontime = [e for e in events if e.event_id not in state.late]
            d = derive_all(ontime, self._params, admit)
            state.derivation = None
        else:
            d = derive_all(events, self._params, admit)
            view = d.view
            state.derivation = d
        tail, pending = d.finish(st, admit)
        if apply:
            self._apply_diff(old, [*d.contribs, *tail])
        d.contribs = APPLIED  # a resumed step only needs the ones it appends
        state.tail, state.base = tail, None
        self._settle(tid, state, view, pending, apply, _labels(state.view))

    def _forked(
        self, state: TicketState, events: list[TicketEvent]
    ) -> tuple[Derivation, list[Contribution]] | None:
        """The new derivation of an on-time ticket and the contributions in the
        slices (`_applied`), deriving the events both have in common once.

        Why: most re-derivations follow an event sorted before the last one
        (disorder), and the events before it are the same before and after.
        The loop state after them is forked (`Derivation.fork`): the copy is
        fed the old remaining events (with `peek`, as `_applied` does), the
        original the new ones (with `admit`, in the order a full derivation
        calls it, so caps are counted alike). The derive loop never looks
        ahead, so each side ends exactly where deriving its events from the
        start would. Only when both find their creation among the common
        events (or neither has one): the creation is searched among all
        events before the loop starts. None: derive both from scratch."""
        base = state.base
        if base is None:
            old_events: list[TicketEvent] = events
        elif base[1]:
            return None  # late events in what the slices hold: on-time ones only
        else:
            old_events = decode_events(base[0], state.tid)
        n = min(len(events), len(old_events))
        k = 0
        while k < n and (events[k] is old_events[k] or events[k] == old_events[k]):
            k += 1
        created = _first_creation(events)
        if created >= k and not (
            created == len(events) and _first_creation(old_events) == len(old_events)
        ):
            return None
        admit, peek = self.guard.admit, self.guard.peek
        d = Derivation(events, self._params, admit)
        step = d.step
        for i in range(k):
            step(events[i], admit)
        old_d = d.fork()
        for e in old_events[k:]:
            old_d.step(e, peek)
        for i in range(k, len(events)):
            step(events[i], admit)
        d.created = None  # as `derive_all`
        return d, [*old_d.contribs, *state.tail]

    def _applied(self, state: TicketState) -> list[Contribution]:
        """The contributions of the ticket the slices hold now.

        Why recomputed rather than kept: they were some 700 bytes per ticket
        (issue 22), and they are only needed when a ticket is re-derived (an
        event out of order, late, or a conflicting copy), to subtract them.
        They are what deriving the events of the last derivation gives
        (`TicketState.base`): a resumed derivation appends exactly what a
        full one would (`Derivation`), and every label value they use was
        admitted or refused then, so `peek` maps it as `admit` did (admission
        never changes a value's label, `LabelGuard`) without counting a cap
        again. The stream-time dependent `tail` is kept, not recomputed."""
        base = state.base
        if base is None:
            events, late = state.event_list(), state.late
        else:
            events, late = decode_events(base[0], state.tid), base[1]
        if late:
            events = [e for e in events if e.event_id not in late]
        if _first_creation(events) == len(events):
            # No creation among them: a derivation emits nothing without one
            # (`Derivation.key`). The usual case of a delayed creation, whose
            # arrival re-derives the ticket: no loop over the events before it.
            return [*state.tail]
        contribs = derive_all(events, self._params, self.guard.peek).contribs
        return [*contribs, *state.tail]

    def _resume(self, tid: str, state: TicketState, event: TicketEvent | None) -> None:
        """Feed `event` (None: the stream time moved) to the ticket's derivation.

        Only for a ticket without late events whose new event sorts after all
        others and is not its first creation; `_apply_ticket` checks."""
        d = state.derivation
        assert d is not None
        admit = self.guard.admit
        contribs = d.contribs = []
        n = 0
        was = None
        if event is not None:
            if type(event) is TicketAssigned:  # the one kind a step changes labels with
                was = _labels(d.view)  # `d.view` is `state.view`, changed in place
            d.step(event, admit)
        tail, pending = d.finish(self._st[TICKETS], admit)
        # The difference to apply: the contributions the step appended, and the
        # tail if it changed (a step never emits a breach, so nothing cancels).
        if tail != state.tail:
            for c in state.tail:
                self._add(c, -1)
            state.tail = tail
            for c in contribs[n:]:
                self._add(c, 1)
            for c in tail:
                self._add(c, 1)
        else:
            for c in contribs[n:]:
                self._add(c, 1)
        d.contribs = APPLIED  # see `_applied`
        state.base = None
        self._settle(tid, state, d.view, pending, True, was)

    def _settle(
        self,
        tid: str,
        state: TicketState,
        view: TicketView,
        pending: int | None,
        apply: bool,
        was: tuple[object, ...] | None,
    ) -> None:
        """Bookkeeping after a derivation: labels, deadline, backlog, expiry.

        `was`: the `_labels` of the ticket's view before (None: unchanged)."""
        if was is not None and was != _labels(view):
            # Admit the labels gauges will show (a late transfer adds no contribution).
            # Admitting a value again changes nothing, so unchanged labels are skipped
            # (compared with the view before rather than kept: 72 bytes per ticket).
            admit = self.guard.admit
            if view.created_ts is not None:
                admit("team", view.team or UNKNOWN)
                admit("channel", view.channel or UNKNOWN)
            if view.assignee is not None:
                admit("agent", view.assignee)
        state.view = view
        if apply:
            self._dirty.add("t:" + tid)
        state.pending = pending
        if pending is not None and state.pushed != pending:
            heapq.heappush(self._deadlines, (pending, tid))
            state.pushed = pending
        if view.closed_ts is not None and view.created_ts is not None:
            # Without its creation a close is not final yet: a creation stamped
            # after it may still arrive on time and move everything (clamping).
            expiry = view.closed_ts + self.config.lateness_ms
            if pending is not None:
                expiry = max(expiry, pending)
        else:
            expiry = view.last_ts + self.config.retention_ms
        if expiry != state.expiry:
            self._refile_expiry(tid, state, expiry)

    def _apply_diff(self, old: list[Contribution], new: list[Contribution]) -> None:
        if old == new:
            return
        n = len(old)
        if len(new) >= n and new[:n] == old:
            for c in new[n:]:
                self._add(c, 1)
            return
        before, after = Counter(old), Counter(new)
        for c in (before - after).elements():
            self._add(c, -1)
        for c in (after - before).elements():
            self._add(c, 1)

    def _add(self, c: Contribution, sign: int) -> None:
        store, start, key, fld, value = c
        target = self.agents_store if store == AGENT_STORE else self.tickets_store
        if not target.add(start, key, fld, value, sign):
            self.dropped_contributions += 1


def _first_creation(events: list[TicketEvent]) -> int:
    """The index of the first `TicketCreated` (the creation), else len(events)."""
    for i, e in enumerate(events):
        if type(e) is TicketCreated:
            return i
    return len(events)


def _labels(view: TicketView) -> tuple[object, ...]:
    """What decides the labels a ticket's gauges admit (`_settle`)."""
    return (view.created_ts is not None, view.team, view.channel, view.assignee)
