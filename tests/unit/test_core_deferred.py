"""Deferred re-derivation (`PartitionEngine.begin_batch`) is invisible.

The shells apply a batch of messages between `begin_batch` and `end_batch`;
a ticket touched out of order (or carrying late events) is then re-derived
once at the end of the batch instead of once per event. Whatever the batch
boundaries, the result must be what applying every event on its own gives:
the same evaluation, the same ticket states, slice totals, outcomes, tombstones
and persisted values. The label guard may only lack values that an
intermediate eager derivation admitted and the final one does not use
(`begin_batch` explains why that never changes a label).
"""

from __future__ import annotations

import pytest
from cxpulse.core.config import CoreConfig
from cxpulse.core.engine import Outcome, PartitionEngine, evaluate
from cxpulse.core.events import (
    Author,
    Creator,
    Event,
    Priority,
    SurveyKind,
    SurveyResponse,
    TicketCreated,
    TicketEvent,
    TicketMessage,
    role_of,
)
from cxpulse.core.tickets import TicketState
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.core_helpers import assigned, created, live_tickets, msg, status
from tests.unit.test_core_incremental import slice_totals, ticket_arrivals
from tests.unit.test_core_reference import BASE, MIN, arrivals

_COMPARED = ("t", "m", "D", "P")


def _state(eng: PartitionEngine, s: TicketState) -> tuple[object, ...]:
    return (s.event_list(), set(s.late), s.view, eng._applied(s), s.base, s.pending, s.expiry)


def assert_same(eager: PartitionEngine, batched: PartitionEngine) -> None:
    assert evaluate([batched]) == evaluate([eager])
    assert batched._tickets.keys() == eager._tickets.keys()
    eager_live, batched_live = live_tickets(eager), live_tickets(batched)
    for tid, s in eager_live.items():
        assert _state(batched, batched_live[tid]) == _state(eager, s), tid
    assert batched._tombs == eager._tombs
    assert {t for t, s in batched_live.items() if s.view.is_open} == {
        t for t, s in eager_live.items() if s.view.is_open
    }
    assert slice_totals(batched) == slice_totals(eager)
    assert batched._outcomes == eager._outcomes
    assert batched.dropped_contributions == eager.dropped_contributions == 0
    for dim, values in batched.guard.seen.items():
        assert values <= eager.guard.seen[dim]


def drained(eng: PartitionEngine) -> dict[str, bytes | None]:
    return {k: v for k, v in eng.drain_dirty().items() if k[0] in _COMPARED}


def run_both(events: list[tuple[str, Event]], cfg: CoreConfig, cuts: set[int]) -> None:
    eager, batched = PartitionEngine(cfg, 0), PartitionEngine(cfg, 0)
    batched.begin_batch()
    for i, (role, e) in enumerate(events):
        assert batched.apply(role, e) == eager.apply(role, e)
        if i + 1 in cuts:
            batched.end_batch()
            assert_same(eager, batched)
            assert drained(batched) == drained(eager)
            batched.begin_batch()
    batched.end_batch()
    assert_same(eager, batched)
    assert drained(batched) == drained(eager)
    for eng in (eager, batched):
        eng.end_of_stream()
    assert evaluate([batched]) == evaluate([eager])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ticket_arrivals(),
    st.sampled_from([5 * MIN, 30 * MIN]),
    st.sampled_from([1, 3, 10_000]),
    st.data(),
)
def test_batches_equal_one_event_at_a_time_tickets(
    events: list[TicketEvent], lateness: int, max_labels: int, data: st.DataObject
) -> None:
    """Out of order, duplicated and very late ticket events; tiny label caps too."""
    cfg = CoreConfig(lateness_ms=lateness, max_label_values=max_labels)
    cuts = set(data.draw(st.lists(st.integers(1, max(1, len(events))), max_size=4)))
    run_both([(role_of(e), e) for e in events], cfg, cuts)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals(), st.sampled_from([2, 10_000]), st.data())
def test_batches_equal_one_event_at_a_time_with_surveys(
    events: list[tuple[str, Event]], max_labels: int, data: st.DataObject
) -> None:
    """Tickets and surveys interleaved (survey attribution reads ticket state)."""
    cfg = CoreConfig(max_label_values=max_labels)
    cuts = set(data.draw(st.lists(st.integers(1, max(1, len(events))), max_size=4)))
    run_both(events, cfg, cuts)


def reversed_ticket(n: int) -> list[TicketEvent]:
    """One ticket's n events stamped 100 ms apart, newest first (all within lateness)."""
    out: list[TicketEvent] = [TicketCreated("T-0", BASE, "T", "billing", "email")]
    for i in range(1, n):
        author = Author.AGENT if i % 2 else Author.CUSTOMER
        agent = f"a-{i % 3}" if author is Author.AGENT else None
        out.append(TicketMessage(f"T-{i}", BASE + 100 * i, "T", author, agent, True))
    return out[::-1]


def test_reverse_order_is_derived_once_per_batch() -> None:
    """The point of deferring: a ticket arriving newest-first is derived once per
    batch (not once per event), and the result equals eager application."""
    events = reversed_ticket(600)
    eager = PartitionEngine(CoreConfig(), 0)
    for e in events:
        eager.apply(role_of(e), e)
    batched = PartitionEngine(CoreConfig(), 0)
    derived: list[int] = []
    rederive = batched._rederive

    def spy(tid: str, state: TicketState, apply: bool = True) -> None:
        derived.append(state.count())
        rederive(tid, state, apply)

    batched._rederive = spy  # type: ignore[method-assign]
    for i in range(0, len(events), 200):
        with batched.batch():
            for e in events[i : i + 200]:
                assert batched.apply(role_of(e), e) is Outcome.APPLIED
    assert derived == [1, 200, 400, 600]  # the first event, then once per batch
    assert_same(eager, batched)
    ev = evaluate([batched])
    assert ev.kpi("frt_count", "1h").value == 1
    assert ev.kpi("frt_mean_seconds", "1h").value == 0.1


def _both(events: list[Event], cfg: CoreConfig) -> tuple[PartitionEngine, PartitionEngine]:
    eager, batched = PartitionEngine(cfg, 0), PartitionEngine(cfg, 0)
    for e in events:
        eager.apply(role_of(e), e)
    with batched.batch():
        for e in events:
            batched.apply(role_of(e), e)
    return eager, batched


def test_a_late_close_ends_the_ticket_as_eagerly() -> None:
    """A late close of a stale ticket makes it final at once: the next event of
    the ticket finds it expired (a tombstone), in a batch as one at a time."""
    events: list[Event] = [
        created("T", "10:00:00"),
        msg("T", "10:20:00", "customer"),
        msg("T", "10:19:00", agent="a-1"),  # out of order: T becomes stale
        created("U", "10:30:00"),  # stream time 10:30: 10:20 - 10:25 is late
        status("T", "10:01:00", "closed"),  # late close: expiry 10:06 < 10:30
        msg("T", "10:29:00", agent="a-1"),  # on time, but T is finished
    ]
    eager, batched = _both(events, CoreConfig())
    assert "T" in eager._tombs
    assert_same(eager, batched)


def test_label_cap_in_reach_is_handled_eagerly() -> None:
    """With the guard's cap in reach, deferring would change which newcomer gets
    `other`: the batch must then admit in the eager order."""
    events: list[Event] = [
        created("T", "10:00:00"),
        assigned("T", "10:02:00", "a-9"),
        msg("T", "10:03:00"),  # attributed to the assignee a-9
        assigned("T", "10:02:30", "a-8"),  # out of order: now a-8 replied (admitted)
        created("U", "10:00:30"),
        msg("U", "10:01:00", agent="a-7"),  # the cap (2) is reached: a-7 -> other
    ]
    cfg = CoreConfig(max_label_values=2)
    eager, batched = _both(events, cfg)
    assert eager.guard.seen["agent"] == {"a-9", "a-8"}
    assert_same(eager, batched)
    assert batched.guard.seen == eager.guard.seen


def test_a_deferred_ticket_is_derived_before_its_own_event_moves_the_stream_time() -> None:
    """Found by the property test above: a new ticket's first event was left stale
    although it moved the stream time, so the upkeep that follows (here: releasing a
    parked survey, which admits its channel) ran before the ticket's own labels were
    admitted; with a cap of 2 values, `web` took the place eager application gives
    `email`. Like a conflicting copy (`_duplicate`), such an event is derived at once."""
    ts = BASE
    c0 = TicketCreated("T-0-c", ts, "T-0", "billing", "chat", Priority.LOW,
                       created_by=Creator.AGENT)  # fmt: skip
    survey = SurveyResponse("S-0", ts, SurveyKind.CSAT, 1, "T-404", channel="web")
    c1 = TicketCreated("T-1-c", ts + 300_001, "T-1", "billing", "email", Priority.LOW,
                       created_by=Creator.AGENT)  # fmt: skip
    events: list[tuple[str, Event]] = [(role_of(c0), c0), (role_of(survey), survey),
                                       (role_of(c0), c0), (role_of(c1), c1)]  # fmt: skip
    run_both(events, CoreConfig(max_label_values=2), set())


@pytest.mark.xfail(strict=True, reason=(
    "known, not fixed (2026-12-07 review): once a label cap is reached, which newcomer"
    " becomes `other` can depend on where batches were cut (deferral.py, begin_batch)"))
def test_a_value_only_an_eager_intermediate_derivation_admitted_leaves_the_same_room() -> None:
    """Review finding: deferred, the label guard may lack a value that an eager
    intermediate derivation admitted (`begin_batch`: "the one visible difference").
    The room check keeps every label of *that* batch right, but afterwards the two
    guards hold a different number of values, so a cap reached later bites at a
    different newcomer: here, with a cap of 4, eager application admits X and Y
    (X by the derivation after the first out-of-order assignment, Y after the
    second), batched only Y; two agents new in the next batch are then Z1 and
    `other` eagerly, Z1 and Z2 batched."""
    events: list[Event] = [
        created("T", "10:00:00"),
        assigned("T", "10:01:00", "a-9"),  # in order: a-9 admitted in both
        msg("T", "10:03:00"),  # an agent reply, attributed to the assignee
        assigned("T", "10:02:10", "X"),  # out of order: eagerly the reply is X's
        assigned("T", "10:02:20", "Y"),  # out of order: eagerly (and finally) Y's
        created("U", "10:10:00"),
        msg("U", "10:10:30", agent="Z1"),
        created("V", "10:11:00"),
        msg("V", "10:11:30", agent="Z2"),
    ]
    run_both([(role_of(e), e) for e in events], CoreConfig(max_label_values=4), {5})
