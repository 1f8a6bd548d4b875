"""The per-partition KPI engine: the input (`apply`) and the read model.

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
from collections.abc import Iterator, Mapping, Sequence

from cxpulse.core.decode import Rejection
from cxpulse.core.engine.deferral import Deferral
from cxpulse.core.engine.snapshot import Snapshot
from cxpulse.core.engine.surveys import SurveyEvents
from cxpulse.core.engine.ticket_events import TICKET_EVENT_CAP, TicketEvents
from cxpulse.core.engine.upkeep import StreamTimeUpkeep
from cxpulse.core.evaluation.view import OpenTicket, open_ticket
from cxpulse.core.events import (
    SURVEYS,
    TICKETS,
    Event,
    SurveyOffered,
    SurveyResponse,
)
from cxpulse.core.outcome import Outcome
from cxpulse.core.slices import (
    Key,
    TicketAgg,
)
from cxpulse.core.tickets import TicketState, packed_expiry, packed_open, packed_view

__all__ = ["TICKET_EVENT_CAP", "PartitionEngine"]


class PartitionEngine(TicketEvents, Deferral, StreamTimeUpkeep, SurveyEvents, Snapshot):
    """All state of source partition number p: tickets partition p + surveys partition p
    (co-partitioned by key).

    The state is `state.EngineState`; each job lives in its own module, a mixin
    over that state (the table in `cxpulse.core.engine`'s docstring)."""

    def stream_time(self, role: str) -> int | None:
        return self._st[role]

    def apply(self, role: str, event: Event) -> Outcome | Rejection:
        """Apply one valid event: its outcome, or a `Rejection` when the event
        must be dead-lettered instead (`TICKET_EVENT_CAP`): the engine then
        changed nothing and counted nothing, the caller counts the rejection."""
        if role == TICKETS:
            if isinstance(event, (SurveyResponse, SurveyOffered)):
                raise ValueError("a survey event on the tickets role")
            ticket_outcome = self._apply_ticket(event)
            if isinstance(ticket_outcome, Rejection):
                return ticket_outcome
            outcome = ticket_outcome
        elif role == SURVEYS:
            if not isinstance(event, (SurveyResponse, SurveyOffered)):
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

    # ------------------------------------------------------------- read model
    # The evaluation (`cxpulse.core.evaluation`) reads a partition only through
    # these methods and the public stores/guard, the `PartitionView` protocol,
    # so a read-only replica built from the changelog can stand in for it.

    def outcome_counts(self, role: str) -> Mapping[str, int]:
        return self._outcomes[role]

    def open_tickets(self, at_ms: int) -> Iterator[OpenTicket]:
        """Open tickets still live at `at_ms` (raw label values, not yet capped).

        All live tickets are looked at, not a set of the open ones kept aside:
        that set cost 84 bytes per open ticket (issue 22), the look a few
        milliseconds per evaluation per 100k live tickets. Order is not a
        result (a set's order never was either)."""
        for state in self._tickets.values():
            if isinstance(state, TicketState):
                if state.expiry < at_ms or not state.view.is_open:
                    continue  # closed or solved, or stale, only not swept yet
                yield open_ticket(state.view)
            elif packed_open(state) and packed_expiry(state) >= at_ms:
                # its view from the packed loop state, not unpacked: an evaluation
                # changes nothing (the worker's own /metrics/partitions, `cxpulse report`)
                yield open_ticket(packed_view(state, self._params))

    def cumulative_tickets(self) -> Mapping[Key, TicketAgg]:
        return self._cum_tickets

    def cumulative_surveys(self) -> Mapping[str, Sequence[int]]:
        return self._cum_surveys

    def parked_surveys(self) -> int:
        return len(self._parked)

    def tickets_tracked(self) -> int:
        return len(self._tickets)

    def ticket(self, tid: str) -> TicketState | None:
        """A live ticket's state, unpacked if it was packed (tests, benchmarks)."""
        state = self._tickets.get(tid)
        return self._live(tid, state) if isinstance(state, bytes) else state
