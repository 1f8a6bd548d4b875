"""The per-partition KPI engine and the evaluation of KPIs over engines.

One `PartitionEngine` owns all state of source partition number p: tickets
partition p and surveys partition p (co-partitioned by ticket id). It is pure:
no clock, no I/O; time is the stream time, the largest event time seen, kept
per role.

How an event flows:

* Ticket event: deduplicated by event_id within its ticket (a copy with
  other content: `_duplicate`, `cxpulse.core.duplicates`); judged late
  against the tickets stream time of the partition; inserted into the
  ticket's sorted events; the ticket is re-derived (`tickets.derive`) and the
  *difference* between its previous and new contributions is applied to the
  slice aggregates. Contributions are derived from the ticket's on-time
  events only, so a late event changes the ticket's state (backlog,
  attribution) but no windowed aggregate.
* Stream time advancing then: breaches whose deadline it passed are
  registered (a heap of deadlines), parked surveys whose ticket partition has
  caught up are attributed, expired tickets are dropped (hour buckets), and
  slices that can no longer change are sealed, folded into the cumulative
  counters and, beyond the longest window, evicted.
* Survey event: deduplicated by event_id (an event-time bounded set); judged
  late against the surveys stream time; added to its slice at once if it
  needs no enrichment, else *parked* until the tickets stream time of the same
  partition is past survey ts + lateness, so every on-time ticket event up to
  the survey has arrived whatever the interleaving of the two topics.

Why slices can be sealed: every change to a slice aggregate lands at an event
time >= stream time - lateness. An on-time event has ts >= stream time -
lateness, and it changes only contributions at or after its own (clamped)
time: the first response, the team at a moment, the wait time and one-touch
count of a later solve, the transitions after it, the breach at a later
deadline. A breach is registered when the stream time passes its deadline,
which lies at or after the stream time before that event. Surveys hold their
store's frontier back while parked. `dropped_contributions` counts any
violation (tests assert it stays 0).
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection
from cxpulse.core.dimensions import UNKNOWN, LabelGuard
from cxpulse.core.duplicates import Verdict, resolve
from cxpulse.core.evaluation.view import OpenTicket, open_ticket
from cxpulse.core.events import (
    SURVEYS,
    TICKETS,
    Event,
    Status,
    StatusChanged,
    SurveyEvent,
    SurveyOffered,
    SurveyResponse,
    TicketAssigned,
    TicketCreated,
    TicketEvent,
    TicketMessage,
)
from cxpulse.core.outcome import ROLES, Outcome
from cxpulse.core.sketch import LogMapping
from cxpulse.core.slices import (
    OFFERS_SLOT,
    AgentAgg,
    AggContext,
    Key,
    SliceStore,
    SurveyAgg,
    TicketAgg,
    survey_counts,
    survey_json,
    survey_slot,
)
from cxpulse.core.tickets import (
    AGENT_STORE,
    Attribution,
    Contribution,
    DeriveParams,
    TicketState,
    TicketView,
    decode_event,
    derive_all,
    dumps,
    encode_event,
)

#: Dead-letter reason of a ticket event beyond `CoreConfig.max_events_per_ticket`.
TICKET_EVENT_CAP = "ticket_event_cap"

_EXPIRY_BUCKET_MS = 3_600_000
#: Extra slices kept beyond the longest window so window caches can subtract
#: the slices that leave them instead of being rebuilt.
_EVICT_MARGIN_SLICES = 16


def _ticket_views(key: Key) -> tuple[Key, ...]:
    team, channel, priority = key
    return (("all",), ("team", team), ("channel", channel), ("priority", priority))


def _agent_views(key: Key) -> tuple[Key, ...]:
    team, agent = key
    return (("agent", agent), ("ta", team, agent))


def _survey_views(key: Key) -> tuple[Key, ...]:
    kind, team, channel, agent, touchpoint = key
    return (
        (kind, "all"),
        (kind, "team", team),
        (kind, "channel", channel),
        (kind, "agent", agent),
        (kind, "touchpoint", touchpoint),
    )


def _slot(e: SurveyEvent) -> int:
    """Where a survey event counts in its histogram (`slices.survey_slot`)."""
    if isinstance(e, SurveyOffered):
        return OFFERS_SLOT
    return survey_slot(e.survey, e.scale, e.score)


def slice_stores(
    config: CoreConfig,
) -> tuple[SliceStore[TicketAgg], SliceStore[AgentAgg], SliceStore[SurveyAgg]]:
    """The three empty slice stores of a partition (engine and replica alike)."""
    ctx = AggContext(
        LogMapping(config.sketch_relative_accuracy), tuple(config.histogram_buckets_ms)
    )
    nb = len(config.histogram_buckets_ms) + 1
    s = config.slice_ms
    return (
        SliceStore(s, ctx, lambda: TicketAgg(nb), lambda d: TicketAgg.from_json(d, nb),
                   _ticket_views),
        SliceStore(s, ctx, AgentAgg, AgentAgg.from_json, _agent_views),
        SliceStore(s, ctx, SurveyAgg, SurveyAgg.from_json, _survey_views),
    )  # fmt: skip


def evict_before(cfg: CoreConfig, st: int) -> int:
    """Slices starting before this may be evicted at stream time `st`."""
    return (
        cfg.slice_of(st) - cfg.longest_window_ms + cfg.slice_ms
        - _EVICT_MARGIN_SLICES * cfg.slice_ms
    )  # fmt: skip


def _key_json(key: Key | None) -> list[str] | None:
    return None if key is None else list(key)


def _dumps(obj: object) -> bytes:
    return dumps(obj).encode()


class PartitionEngine:
    """All state of source partition number p: tickets partition p + surveys partition p
    (co-partitioned by key)."""

    def __init__(self, config: CoreConfig, partition: int) -> None:
        self.config = config
        self.partition = partition
        self._params = DeriveParams(
            config.slice_ms, config.frt_target_ms, dict(config.frt_target_by_priority)
        )
        self.tickets_store: SliceStore[TicketAgg]
        self.agents_store: SliceStore[AgentAgg]
        self.surveys_store: SliceStore[SurveyAgg]
        self.tickets_store, self.agents_store, self.surveys_store = slice_stores(config)
        self.ctx = self.tickets_store.ctx
        nb = len(config.histogram_buckets_ms) + 1
        self._nb = nb
        self.guard = LabelGuard(config)
        self._st: dict[str, int | None] = {TICKETS: None, SURVEYS: None}
        self._outcomes: dict[str, dict[str, int]] = {r: {o: 0 for o in Outcome} for r in ROLES}
        self._tickets: dict[str, TicketState] = {}
        self._tombs: dict[str, tuple[int, Attribution]] = {}
        self._expiry_buckets: dict[int, set[str]] = {}
        self._expiry_heap: list[int] = []
        self._bucket_of: dict[str, int] = {}
        self._deadlines: list[tuple[int, str]] = []
        self._open: set[str] = set()
        self._dedup: dict[str, int] = {}
        self._dedup_slices: dict[int, set[str]] = {}
        self._dedup_heap: list[int] = []  # the keys of _dedup_slices, to evict the oldest
        self._dedup_evicted = -(2**62)
        self._parked: dict[str, SurveyEvent] = {}
        #: (ts, event_id) of parked surveys; an entry whose survey was released
        #: or replaced by a conflicting copy is skipped (`_parked_head`)
        self._park_heap: list[tuple[int, str]] = []
        #: Per survey event_id in `_dedup`: the copy kept and the slice key it
        #: was added under (None while parked), to resolve a conflicting copy.
        self._survey_kept: dict[str, tuple[SurveyEvent, Key | None]] = {}
        self._cum_tickets: dict[Key, TicketAgg] = {}
        self._cum_surveys: dict[str, list[int]] = {}
        self.dropped_contributions = 0
        #: Per role: copies of a kept event_id with different content (see
        #: `cxpulse.core.duplicates`); counted, the rule picks the copy that counts.
        self.duplicate_conflicts: dict[str, int] = dict.fromkeys(ROLES, 0)
        self._dirty: set[str] = {"m"}
        # Deferred re-derivation (see `begin_batch`): tickets whose derived state
        # lags their events, and the label budget of the current deferral period.
        self._deferring = False
        self._stale: dict[str, TicketState] = {}
        self._label_room = 0.0
        self._label_cost = 0

    # ------------------------------------------------------------------ input

    def stream_time(self, role: str) -> int | None:
        return self._st[role]

    def apply(self, role: str, event: Event) -> Outcome | Rejection:
        """Apply one valid event: its outcome, or a `Rejection` when the event
        must be dead-lettered instead (`TICKET_EVENT_CAP`): the engine then
        changed nothing and counted nothing, the caller counts the rejection."""
        if role == TICKETS:
            if isinstance(event, SurveyResponse | SurveyOffered):
                raise ValueError("a survey event on the tickets role")
            ticket_outcome = self._apply_ticket(event)
            if isinstance(ticket_outcome, Rejection):
                return ticket_outcome
            outcome = ticket_outcome
        elif role == SURVEYS:
            if not isinstance(event, SurveyResponse | SurveyOffered):
                raise ValueError("a ticket event on the surveys role")
            outcome = self._apply_survey(event)
        else:
            raise ValueError(f"unknown role {role!r}")
        self._outcomes[role][outcome] += 1
        self._dirty.add("m")
        return outcome

    def end_of_stream(self) -> None:
        """The input is complete (batch report): attribute every parked survey now.

        Not needed live, where the tickets stream keeps advancing."""
        self.settle()
        while self._parked_head() is not None:
            _, eid = heapq.heappop(self._park_heap)
            self._release(eid)
        self._seal_surveys()

    # -- deferred re-derivation --

    def begin_batch(self) -> None:
        """From now on, a ticket event that cannot resume its ticket's derivation
        (out of order, late, a first creation) may leave the ticket *stale*
        instead of re-deriving all its events at once; `end_batch` (or
        `settle`) re-derives every stale ticket once.

        Why: re-deriving per event costs O(events of the ticket) each, so a
        ticket whose n events arrive in reverse order cost O(n^2) (4,000
        events: 5.9 s). Deferred, it costs one derivation per batch.

        Why it is exact (`tests/unit/test_core_deferred.py` checks it against
        one event at a time): a ticket's derived state is a function of its
        events, the stream time and the labels admitted; the slices receive
        the *difference* of its contributions, and differences telescope. So
        a stale ticket only has to be re-derived before anything reads its
        derived state or could depend on it:

        * before the tickets stream time advances (deadlines, sealing,
          expiry sweeps and survey releases all happen then; while it stands
          still nothing is sealed, and every deferred change lands at or after
          stream time - lateness, like an eager one). With the stream time
          standing still, a stale ticket's expiry cannot pass it (it is
          checked anyway, on the up-to-date expiry);
        * before a survey event, `attribution_of`, `drain_dirty`,
          `end_of_stream`, `end_batch`;
        * a late creation or close is never deferred (it can end the ticket's
          life at once);
        * only while the label guard has room for every label value the
          deferred and the eager order could admit until the re-derivation
          (`_label_cost`: the values not admitted yet among the events
          involved), so first-come admission
          never reaches its cap in either order and every value maps to
          itself. Otherwise the engine re-derives everything stale and the
          event eagerly, in the eager order.

        The one visible difference: an eager intermediate derivation may have
        admitted a label value that the final derivation no longer uses (an
        assignee replaced by an earlier assignment arriving later); deferred,
        it is not admitted. No label of any KPI differs (none reached its cap).

        Evaluating an engine between `begin_batch` and `end_batch` is a
        caller error (the slices may lack a stale ticket's change)."""
        self._deferring = True

    def end_batch(self) -> None:
        """Re-derive every stale ticket and stop deferring (see `begin_batch`)."""
        self.settle()
        self._deferring = False

    @contextmanager
    def batch(self) -> Iterator[PartitionEngine]:
        """`begin_batch` ... `end_batch` around a block of `apply` calls."""
        self.begin_batch()
        try:
            yield self
        finally:
            self.end_batch()

    def settle(self) -> None:
        """Re-derive every stale ticket now (the end of a deferral period)."""
        stale = self._stale
        while stale:
            tid = next(iter(stale))
            self._rederive(tid, stale[tid])  # removes it from `stale`
        self._label_cost = 0

    def _defer(self, tid: str, state: TicketState, late: bool, e: TicketEvent) -> bool:
        """Leave the ticket stale instead of re-deriving it now, if that is exact
        (see `begin_batch`); False: the caller re-derives it now."""
        stale = self._stale
        if late and (
            type(e) is TicketCreated or (type(e) is StatusChanged and e.status is Status.CLOSED)
        ):
            self.settle()  # eagerly, and in the eager order of label admissions
            return False
        if tid in stale:
            cost = 0  # this event's values are counted by `_apply_ticket`
        else:
            if not stale:
                self._label_room = self.guard.room()
                self._label_cost = 0
            # any label value of the ticket's events may be admitted by some
            # derivation of it, in either order: at most two per event, or
            # exactly those not admitted yet (the cheap bound first)
            cost = 2 * len(state.events)
            if self._label_cost + cost > self._label_room:
                cost = self._unseen_labels(state.events)
        if self._label_cost + cost > self._label_room:
            self.settle()
            return False
        self._label_cost += cost
        state.derivation = None
        stale[tid] = state
        return True

    def _unseen_labels(self, events: Iterable[TicketEvent]) -> int:
        """Distinct label values in `events` that the guard has not admitted: an
        upper bound of what deriving them can newly admit (`_defer`)."""
        seen = self.guard.seen
        new: set[tuple[str, str]] = set()
        for e in events:
            if isinstance(e, TicketMessage):
                a = e.agent_id
                if a is not None and a not in seen["agent"]:
                    new.add(("agent", a))
            elif isinstance(e, TicketAssigned):
                if e.agent_id not in seen["agent"]:
                    new.add(("agent", e.agent_id))
                if e.team is not None and e.team not in seen["team"]:
                    new.add(("team", e.team))
            elif isinstance(e, TicketCreated):
                if e.team not in seen["team"]:
                    new.add(("team", e.team))
                if e.channel not in seen["channel"]:
                    new.add(("channel", e.channel))
        return len(new)

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
            state = self._tickets[tid] = TicketState()
        elif e.event_id in state.ids:
            return self._duplicate(tid, state, e, late)
        elif len(state.events) >= cfg.max_events_per_ticket:
            # Bounded state and cost whatever a producer sends; counted, never
            # silent: the caller dead-letters it (docs/kpis.md, the effect).
            return Rejection(
                TICKET_EVENT_CAP,
                f"the ticket already has max_events_per_ticket "
                f"({cfg.max_events_per_ticket}) events",
            )
        appended = state.insert(e, late)
        advanced = False
        if not late and (st is None or e.ts > st):
            self._st[TICKETS] = e.ts
            advanced = True
        d = state.derivation
        if (
            appended
            and d is not None
            and not state.late
            and (d.created is not None or type(e) is not TicketCreated)
        ):
            self._resume(tid, state, e)
        elif not (self._deferring and self._defer(tid, state, late, e)):
            self._rederive(tid, state)
        if advanced:
            self._on_tickets_time()
        return Outcome.LATE if late else Outcome.APPLIED

    def _duplicate(self, tid: str, state: TicketState, e: TicketEvent, late: bool) -> Outcome:
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
        kept = state.ids[e.event_id]
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
        if state.late:
            view = derive_all(state.events, self._params, None).view
            ontime = [e for e in state.events if e.event_id not in state.late]
            d = derive_all(ontime, self._params, admit)
            state.derivation = None
        else:
            d = derive_all(state.events, self._params, admit)
            view = d.view
            state.derivation = d
        tail, pending = d.finish(st, admit)
        if apply:
            self._apply_diff([*state.contribs, *state.tail], [*d.contribs, *tail])
        state.contribs, state.tail = d.contribs, tail
        self._settle(tid, state, view, pending, apply)

    def _resume(self, tid: str, state: TicketState, event: TicketEvent | None) -> None:
        """Feed `event` (None: the stream time moved) to the ticket's derivation.

        Only for a ticket without late events whose new event sorts after all
        others and is not its first creation; `_apply_ticket` checks."""
        d = state.derivation
        assert d is not None
        admit = self.guard.admit
        contribs = d.contribs
        n = len(contribs)
        if event is not None:
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
        self._settle(tid, state, d.view, pending, True)

    def _settle(
        self, tid: str, state: TicketState, view: TicketView, pending: int | None, apply: bool
    ) -> None:
        """Bookkeeping after a derivation: labels, deadline, backlog, expiry."""
        admitted = (view.created_ts is not None, view.team, view.channel, view.assignee)
        if admitted != state.admitted:
            # Admit the labels gauges will show (a late transfer adds no contribution).
            # Admitting a value again changes nothing, so unchanged labels are skipped.
            admit = self.guard.admit
            if view.created_ts is not None:
                admit("team", view.team or UNKNOWN)
                admit("channel", view.channel or UNKNOWN)
            if view.assignee is not None:
                admit("agent", view.assignee)
            state.admitted = admitted
        state.view = view
        if apply:
            self._dirty.add("t:" + tid)
        state.pending = pending
        if pending is not None and state.pushed != pending:
            heapq.heappush(self._deadlines, (pending, tid))
            state.pushed = pending
        if view.is_open:
            self._open.add(tid)
        else:
            self._open.discard(tid)
        if view.closed_ts is not None and view.created_ts is not None:
            # Without its creation a close is not final yet: a creation stamped
            # after it may still arrive on time and move everything (clamping).
            expiry = view.closed_ts + self.config.lateness_ms
            if pending is not None:
                expiry = max(expiry, pending)
        else:
            expiry = view.last_ts + self.config.retention_ms
        if expiry != state.expiry or tid not in self._bucket_of:
            state.expiry = expiry
            self._schedule_expiry(tid, expiry)

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
        heap = self._park_heap
        released = False
        while (head := self._parked_head()) is not None and head + cfg.lateness_ms < st:
            _, eid = heapq.heappop(heap)
            self._release(eid)
            released = True
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

    # -- ticket expiry --

    def _schedule_expiry(self, tid: str, expiry: int) -> None:
        bucket = expiry // _EXPIRY_BUCKET_MS
        old = self._bucket_of.get(tid)
        if old == bucket:
            return
        if old is not None:
            members = self._expiry_buckets.get(old)
            if members is not None:
                members.discard(tid)
        members = self._expiry_buckets.get(bucket)
        if members is None:
            members = self._expiry_buckets[bucket] = set()
            heapq.heappush(self._expiry_heap, bucket)
        members.add(tid)
        self._bucket_of[tid] = bucket

    def _sweep_expiry(self, st: int) -> None:
        heap = self._expiry_heap
        while heap and (heap[0] + 1) * _EXPIRY_BUCKET_MS <= st:
            bucket = heapq.heappop(heap)
            for tid in sorted(self._expiry_buckets.pop(bucket, ())):
                del self._bucket_of[tid]
                state = self._tickets.get(tid)
                if state is not None:
                    if state.expiry < st:
                        self._drop(tid, state)
                    else:
                        self._schedule_expiry(tid, state.expiry)
                    continue
                tomb = self._tombs.get(tid)
                if tomb is not None:
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
        self._open.discard(tid)
        expiry = st + self.config.retention_ms
        self._tombs[tid] = (expiry, state.view.attribution())
        self._bucket_of.pop(tid, None)
        self._schedule_expiry(tid, expiry)
        self._dirty.add("t:" + tid)

    # -- surveys --

    def _apply_survey(self, e: SurveyEvent) -> Outcome:
        cfg = self.config
        if self._stale:
            self.settle()  # attribution reads ticket state; releases admit labels
        if e.event_id in self._dedup:
            return self._survey_duplicate(e)
        st = self._st[SURVEYS]
        if st is not None and e.ts < st - cfg.lateness_ms:
            return Outcome.LATE
        self._accept_survey(e)
        return Outcome.APPLIED

    def _survey_duplicate(self, e: SurveyEvent) -> Outcome:
        """A survey whose event_id is known: the rule of `_duplicate` for surveys
        (the smallest canonical copy counts, within the lateness; conflicts
        counted). Replacing retracts the kept copy from its slice (or its parking
        place) and applies the winner as if it arrived alone."""
        eid = e.event_id
        entry = self._survey_kept.get(eid)
        if entry is None:  # restored from a value without the copy: cannot compare
            return Outcome.DUPLICATE
        kept, key = entry
        if kept == e:
            return Outcome.DUPLICATE
        verdict = resolve(kept, e).verdict
        if verdict is Verdict.SAME:
            return Outcome.DUPLICATE
        self.duplicate_conflicts[SURVEYS] += 1
        cfg = self.config
        st = self._st[SURVEYS]
        assert st is not None  # the kept copy was applied
        if e.ts < st - cfg.lateness_ms:
            return Outcome.DUPLICATE
        if verdict is Verdict.REPLACE and kept.ts >= st - cfg.lateness_ms:
            if key is None:
                del self._parked[eid]  # its heap entry is skipped from now on
                self._dirty.add("P:" + eid)
            elif not self.surveys_store.add(cfg.slice_of(kept.ts), key, _slot(kept), 1, -1):
                self.dropped_contributions += 1
            s = self._dedup.pop(eid)
            self._dedup_slices[s].discard(eid)
            self._dirty.add(f"D:{s}")
            del self._survey_kept[eid]
            self._accept_survey(e)
        elif e.ts > st:
            # either copy could have arrived first and moved the stream time
            self._st[SURVEYS] = e.ts
            self._survey_tail(e.ts)
        return Outcome.DUPLICATE

    def _accept_survey(self, e: SurveyEvent) -> None:
        """Record an on-time survey (dedup), move the stream time, park or
        attribute it."""
        cfg = self.config
        st = self._st[SURVEYS]
        s = cfg.slice_of(e.ts)
        self._dedup[e.event_id] = s
        ids = self._dedup_slices.get(s)
        if ids is None:
            ids = self._dedup_slices[s] = set()
            heapq.heappush(self._dedup_heap, s)
        ids.add(e.event_id)
        self._dirty.add(f"D:{s}")
        if st is None or e.ts > st:
            self._st[SURVEYS] = st = e.ts
        needs = e.ticket_id is not None and (
            e.team is None or e.agent_id is None or e.channel is None
        )
        st_t = self._st[TICKETS]
        if needs and (st_t is None or st_t <= e.ts + cfg.lateness_ms):
            self._parked[e.event_id] = e
            self._survey_kept[e.event_id] = (e, None)
            heapq.heappush(self._park_heap, (e.ts, e.event_id))
            self._dirty.add("P:" + e.event_id)
        else:
            self._attribute(e)
        self._survey_tail(st)

    def _survey_tail(self, st: int) -> None:
        """After the surveys stream time moved to `st`: release surveys parked too
        long, forget ids beyond the retention, seal."""
        cfg = self.config
        heap = self._park_heap
        while (head := self._parked_head()) is not None and st - head > cfg.survey_park_max_ms:
            _, eid = heapq.heappop(heap)
            self._release(eid)
        evict = cfg.slice_of(st - cfg.retention_ms)
        if evict > self._dedup_evicted:
            dedup_heap = self._dedup_heap
            while dedup_heap and dedup_heap[0] < evict:
                old = heapq.heappop(dedup_heap)
                for eid in self._dedup_slices.pop(old):
                    del self._dedup[eid]
                    self._survey_kept.pop(eid, None)
                self._dirty.add(f"D:{old}")
            self._dedup_evicted = evict
        self._seal_surveys()

    def _parked_head(self) -> int | None:
        """Time of the oldest parked survey, dropping heap entries of surveys no
        longer parked under that time (released, or replaced by a copy)."""
        heap = self._park_heap
        parked = self._parked
        while heap:
            ts, eid = heap[0]
            e = parked.get(eid)
            if e is not None and e.ts == ts:
                return ts
            heapq.heappop(heap)
        return None

    def _release(self, eid: str) -> None:
        e = self._parked.pop(eid)
        self._dirty.add("P:" + eid)
        self._attribute(e)

    def attribution_of(self, ticket_id: str) -> Attribution | None:
        state = self._tickets.get(ticket_id)
        if state is not None:
            if ticket_id in self._stale:
                self._rederive(ticket_id, state)
            return state.view.attribution()
        tomb = self._tombs.get(ticket_id)
        return tomb[1] if tomb is not None else None

    def _attribute(self, e: SurveyEvent) -> None:
        team, agent, channel = e.team, e.agent_id, e.channel
        if e.ticket_id is not None and (team is None or agent is None or channel is None):
            att = self.attribution_of(e.ticket_id)
            if att is not None:
                t2, a2, c2 = att.at(e.ts)
                team, agent, channel = team or t2, agent or a2, channel or c2
        admit = self.guard.admit
        key = (
            e.survey.value,
            admit("team", team or UNKNOWN),
            admit("channel", channel or UNKNOWN),
            admit("agent", agent or UNKNOWN),
            admit("touchpoint", e.touchpoint or UNKNOWN),
        )
        if not self.surveys_store.add(self.config.slice_of(e.ts), key, _slot(e), 1, 1):
            self.dropped_contributions += 1
        s = self._dedup.get(e.event_id)
        if s is not None:
            self._survey_kept[e.event_id] = (e, key)
            self._dirty.add(f"D:{s}")

    def _seal_surveys(self) -> None:
        st = self._st[SURVEYS]
        if st is None:
            return
        cfg = self.config
        frontier = st - cfg.lateness_ms
        head = self._parked_head()
        if head is not None:
            frontier = min(frontier, head)
        upto = cfg.slice_of(frontier)
        sealed = self.surveys_store.seal(upto)
        if sealed:
            for _, sl in sealed:
                for key, agg in sl.items():
                    cum = self._cum_surveys.setdefault(key[0], survey_counts(()))
                    for i, c in enumerate(agg.counts):
                        cum[i] += c
            self._dirty.add("c")
        self.surveys_store.evict(self._evict_before(st))

    # ------------------------------------------------------------ persistence

    def _meta_json(self) -> dict[str, Any]:
        return {
            "st": [self._st[TICKETS], self._st[SURVEYS]],
            "o": {r: [self._outcomes[r][o] for o in Outcome] for r in ROLES},
            "sealed": [self.tickets_store.sealed, self.surveys_store.sealed],
            "dd": self._dedup_evicted,
            "dropped": self.dropped_contributions,
            "dc": [self.duplicate_conflicts[r] for r in ROLES],
        }

    def _cum_json(self) -> dict[str, Any]:
        return {
            "t": [[list(k), a.to_json()] for k, a in sorted(self._cum_tickets.items())],
            "s": {k: survey_json(v) for k, v in sorted(self._cum_surveys.items())},
        }

    def _value(self, key: str) -> object | None:
        if key == "m":
            return self._meta_json()
        if key == "c":
            return self._cum_json()
        tag, _, rest = key.partition(":")
        if tag == "t":
            state = self._tickets.get(rest)
            if state is not None:
                return state.to_json()
            tomb = self._tombs.get(rest)
            return {"x": tomb[0], "a": tomb[1].to_json()} if tomb is not None else None
        if tag == "D":
            # [event_id, the copy kept, its slice key or None while parked]
            ids = self._dedup_slices.get(int(rest))
            if not ids:
                return None
            kept = self._survey_kept
            return [
                [eid, encode_event(kept[eid][0]), _key_json(kept[eid][1])]
                if eid in kept
                else eid
                for eid in sorted(ids)
            ]
        if tag == "P":
            e = self._parked.get(rest)
            return encode_event(e) if e is not None else None
        raise KeyError(key)

    def drain_dirty(self) -> dict[str, bytes | None]:
        """Serialized state keys changed since the last drain (None = deleted).

        Keys: `m` meta (stream times, outcome counts, frontiers), `c` cumulative
        counters, `l` admitted labels, `t:<ticket>` a ticket or its tombstone,
        `T:/A:/S:<slice start>` a slice of ticket / agent / survey aggregates,
        `D:<slice start>` survey ids seen in a slice (dedup) with the copy kept
        and its slice key, `P:<event>` a parked survey. Values are
        deterministic compact JSON."""
        self.settle()
        out: dict[str, bytes | None] = {}
        tickets = self._tickets
        for key in self._dirty:
            state = tickets.get(key[2:]) if key[0] == "t" else None
            if state is not None:
                out[key] = state.encoded()
                continue
            value = self._value(key)
            out[key] = None if value is None else _dumps(value)
        self._dirty.clear()
        for tag, store in (
            ("T", self.tickets_store),
            ("A", self.agents_store),
            ("S", self.surveys_store),
        ):
            for start in store.dirty:
                value = store.slice_json(start)
                out[f"{tag}:{start}"] = None if not value else _dumps(value)
            store.dirty.clear()
        if self.guard.dirty:
            out["l"] = _dumps(self.guard.to_json())
            self.guard.dirty = False
        return out

    @classmethod
    def restore(
        cls, config: CoreConfig, partition: int, items: Iterable[tuple[str, bytes]]
    ) -> PartitionEngine:
        """Rebuild the exact state from the latest value of every key."""
        eng = cls(config, partition)
        latest: dict[str, Any] = {}
        for key, raw in items:
            latest[key] = json.loads(raw)
        meta = latest.get("m")
        if meta is not None:
            eng._st[TICKETS], eng._st[SURVEYS] = meta["st"]
            for r in ROLES:
                eng._outcomes[r] = dict(zip(list(Outcome), meta["o"][r], strict=True))
            eng.tickets_store.sealed = eng.agents_store.sealed = meta["sealed"][0]
            eng.surveys_store.sealed = meta["sealed"][1]
            eng._dedup_evicted = meta["dd"]
            eng.dropped_contributions = meta["dropped"]
            eng.duplicate_conflicts = dict(zip(ROLES, meta.get("dc", (0, 0)), strict=True))
        if "l" in latest:
            eng.guard.load(latest["l"])
        if "c" in latest:
            for k, v in latest["c"]["t"]:
                eng._cum_tickets[tuple(k)] = TicketAgg.from_json(v, eng._nb, with_sketch=False)
            eng._cum_surveys = {k: survey_counts(v) for k, v in latest["c"]["s"].items()}
        stores: dict[str, SliceStore[Any]] = {
            "T": eng.tickets_store,
            "A": eng.agents_store,
            "S": eng.surveys_store,
        }
        for key, value in latest.items():
            tag, _, rest = key.partition(":")
            if tag in stores:
                stores[tag].load_slice(int(rest), value)
            elif tag == "D":
                s = int(rest)
                ids: set[str] = set()
                for item in value:
                    if isinstance(item, str):  # an id alone (values written before copies)
                        eid = item
                    else:
                        eid, raw, k = item
                        kept = decode_event(raw)
                        assert isinstance(kept, SurveyResponse | SurveyOffered)
                        eng._survey_kept[eid] = (kept, None if k is None else tuple(k))
                    ids.add(eid)
                    eng._dedup[eid] = s
                eng._dedup_slices[s] = ids
                eng._dedup_heap.append(s)
            elif tag == "P":
                e = decode_event(value)
                assert isinstance(e, SurveyResponse | SurveyOffered)
                eng._parked[e.event_id] = e
                eng._park_heap.append((e.ts, e.event_id))
        heapq.heapify(eng._park_heap)
        heapq.heapify(eng._dedup_heap)
        for key in sorted(k for k in latest if k.startswith("t:")):
            tid, value = key[2:], latest[key]
            if "x" in value:
                eng._tombs[tid] = (int(value["x"]), Attribution.from_json(value["a"]))
                eng._schedule_expiry(tid, int(value["x"]))
                continue
            state = eng._tickets[tid] = TicketState()
            late = set(value.get("l", ()))
            for raw in value["e"]:
                e = decode_event(raw)
                assert not isinstance(e, SurveyResponse | SurveyOffered)
                state.insert(e, e.event_id in late)
            eng._rederive(tid, state, apply=False)
        for store in (eng.tickets_store, eng.agents_store):
            st = eng._st[TICKETS]
            store.evicted = eng._evict_before(st) if st is not None else store.evicted
            store.dirty.clear()
        st_s = eng._st[SURVEYS]
        if st_s is not None:
            eng.surveys_store.evicted = eng._evict_before(st_s)
        eng.surveys_store.dirty.clear()
        eng._dirty.clear()
        eng.guard.dirty = False
        return eng

    # ------------------------------------------------------------- read model
    # The evaluation (`cxpulse.core.evaluation`) reads a partition only through
    # these methods and the public stores/guard, the `PartitionView` protocol,
    # so a read-only replica built from the changelog can stand in for it.

    def outcome_counts(self, role: str) -> Mapping[str, int]:
        return self._outcomes[role]

    def open_tickets(self, at_ms: int) -> Iterator[OpenTicket]:
        """Open tickets still live at `at_ms` (raw label values, not yet capped)."""
        for tid in self._open:
            state = self._tickets[tid]
            if state.expiry < at_ms:
                continue  # stale, only not swept yet
            yield open_ticket(state.view)

    def cumulative_tickets(self) -> Mapping[Key, TicketAgg]:
        return self._cum_tickets

    def cumulative_surveys(self) -> Mapping[str, Sequence[int]]:
        return self._cum_surveys

    def parked_surveys(self) -> int:
        return len(self._parked)

    def tickets_tracked(self) -> int:
        return len(self._tickets)
