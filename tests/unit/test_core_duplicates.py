"""Conflicting duplicates: the same winner in any arrival order."""

from __future__ import annotations

import itertools
from functools import reduce

import pytest
from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import decode
from cxpulse.core.duplicates import Verdict, canonical, resolve, winner_of
from cxpulse.core.engine import PartitionEngine
from cxpulse.core.events import (
    TICKETS,
    Author,
    Event,
    Priority,
    SurveyKind,
    SurveyResponse,
    TicketAssigned,
    TicketCreated,
    TicketMessage,
)
from cxpulse.core.outcome import Outcome
from hypothesis import given
from hypothesis import strategies as st

T0 = 1_700_000_000_000


def _created(priority: Priority, ts: int = T0, team: str = "tech") -> TicketCreated:
    return TicketCreated("e-1", ts, "t-1", team, "email", priority, None)


def _fold(copies: list[Event]) -> tuple[Event, int]:
    conflicts = 0

    def step(kept: Event, arriving: Event) -> Event:
        nonlocal conflicts
        r = resolve(kept, arriving)
        conflicts += r.conflict
        return r.winner

    return reduce(step, copies[1:], copies[0]), conflicts


def test_the_issue_example_is_order_free() -> None:
    low, urgent = _created(Priority.LOW), _created(Priority.URGENT)
    assert _fold([low, urgent])[0] == _fold([urgent, low])[0] == winner_of([low, urgent])
    csat1 = SurveyResponse("s-1", T0, SurveyKind.CSAT, 1, "t-1", None, None, None, None, None)
    csat5 = SurveyResponse("s-1", T0, SurveyKind.CSAT, 5, "t-1", None, None, None, None, None)
    assert _fold([csat1, csat5])[0] == _fold([csat5, csat1])[0]


def test_verdicts_and_counting() -> None:
    low, urgent = _created(Priority.LOW), _created(Priority.URGENT)
    small, big = sorted([low, urgent], key=canonical)
    assert resolve(small, big).verdict is Verdict.KEEP
    assert resolve(big, small).verdict is Verdict.REPLACE
    assert resolve(low, _created(Priority.LOW)).verdict is Verdict.SAME
    assert not resolve(low, low).conflict and resolve(low, urgent).conflict
    with pytest.raises(ValueError):
        resolve(low, TicketCreated("e-2", T0, "t-1", "tech", "email"))


def test_copies_written_differently_are_the_same_event() -> None:
    a = decode(b'{"event_id":"e-1","type":"ticket.created","ts":"2026-11-02T08:00:00Z",'
               b'"ticket_id":"t-1","team":"tech","channel":"email"}')  # fmt: skip
    b = decode(b'{"channel":"email","team":"tech","ticket_id":"t-1",'
               b'"ts":"2026-11-02T09:00:00.000+01:00","type":"ticket.created","event_id":"e-1"}')
    assert isinstance(a, TicketCreated) and isinstance(b, TicketCreated)
    assert resolve(a, b).verdict is Verdict.SAME


@given(
    st.lists(
        st.tuples(st.sampled_from(list(Priority)), st.integers(0, 3), st.sampled_from(["a", "b"])),
        min_size=1,
        max_size=5,
    )
)
def test_any_arrival_order_keeps_the_same_winner(specs: list[tuple[Priority, int, str]]) -> None:
    copies: list[Event] = [_created(p, T0 + dt, team) for p, dt, team in specs]
    expected = winner_of(copies)
    for order in itertools.islice(itertools.permutations(copies), 120):
        # re-deliveries of any copy (the list repeated) change nothing either
        assert _fold([*order, *order])[0] == expected


def test_an_id_seen_only_as_another_field_of_the_ticket_is_not_a_duplicate() -> None:
    """A ticket keeps its events as JSON and finds a kept id by searching it
    (`TicketState.find`): an id standing elsewhere in that JSON, as an agent,
    a ticket or a customer id, or with characters JSON escapes, is no match."""
    odd = 'x","a-1",["c'
    eng = PartitionEngine(CoreConfig(), 0)
    first: list[Event] = [
        TicketCreated("c-1", T0, "t-1", "tech", "email", Priority.NORMAL, "m-1"),
        TicketAssigned(odd, T0 + 1, "t-1", "a-1"),
        TicketMessage("m-2", T0 + 2, "t-1", Author.AGENT, "t-1"),
    ]
    for e in first:
        assert eng.apply(TICKETS, e) is Outcome.APPLIED
    eng.drain_dirty()  # the events are now JSON only
    for eid in ("m-1", "a-1", "t-1", "x", "c"):
        e = TicketMessage(eid, T0 + 3, "t-1", Author.CUSTOMER)
        assert eng.apply(TICKETS, e) is Outcome.APPLIED, eid
        eng.drain_dirty()
    assert eng.apply(TICKETS, TicketAssigned(odd, T0 + 1, "t-1", "a-1")) is Outcome.DUPLICATE
    assert eng.apply(TICKETS, first[0]) is Outcome.DUPLICATE
    state = eng.ticket("t-1")
    assert state is not None and state.count() == 8
