"""Deferred re-derivation: one re-derivation per touched ticket per batch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Self

from cxpulse.core.engine.state import EngineState
from cxpulse.core.events import (
    Status,
    StatusChanged,
    TicketAssigned,
    TicketCreated,
    TicketEvent,
    TicketMessage,
)
from cxpulse.core.tickets import (
    TicketState,
)


class Deferral(EngineState):
    """`begin_batch` ... `end_batch`: when a stale ticket must be re-derived, and why
    that is exact."""

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
        it is not admitted. No label of any KPI of the batch differs. But the
        guards then hold a different number of values, so a cap reached in a
        later batch can send a different newcomer to `other` (totals unchanged):
        which one depends on where the batches were cut. Known and not fixed
        (reproduced by an xfail test in tests/unit/test_core_deferred.py): making
        admissions independent of batching would need the skipped intermediate
        derivations, or labels released when no KPI uses them any more.

        Evaluating an engine between `begin_batch` and `end_batch` is a
        caller error (the slices may lack a stale ticket's change)."""
        self._deferring = True

    def end_batch(self) -> None:
        """Re-derive every stale ticket and stop deferring (see `begin_batch`)."""
        self.settle()
        self._deferring = False

    @contextmanager
    def batch(self) -> Iterator[Self]:
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
            cost = 2 * state.count()
            if self._label_cost + cost > self._label_room:
                cost = self._unseen_labels(state.event_list())
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
