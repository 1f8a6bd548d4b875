"""Conflicting duplicates of ticket and survey events: one rule, any arrival order.

The same event_id with different content (a producer bug) used to count as
whichever copy arrived first. The engine now keeps the copy with the
byte-wise smallest canonical encoding (`cxpulse.core.duplicates`) and counts
the conflict (`duplicate_conflicts_total{role}`); the brute-force reference
applies the same rule, and both arrival orders give identical evaluations.
"""

from __future__ import annotations

import dataclasses

from cxpulse.core.config import CoreConfig
from cxpulse.core.duplicates import winner_of
from cxpulse.core.engine import Outcome, PartitionEngine, evaluate
from cxpulse.core.evaluation.model import Evaluation
from cxpulse.core.events import (
    SCALES,
    SURVEYS,
    TICKETS,
    Author,
    Event,
    Priority,
    Status,
    StatusChanged,
    SurveyKind,
    SurveyResponse,
    TicketAssigned,
    TicketCreated,
    TicketMessage,
    role_of,
)
from cxpulse.core.replica import PartitionReplica
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.unit.core_helpers import at, created, msg, status
from tests.unit.kpi_reference import accept, reference
from tests.unit.test_core_reference import (
    CFG,
    MIN,
    arrivals,
    check_backlog,
    check_surveys,
    check_tickets,
)


def _run(events: list[Event], batched: bool = False, restore_at: int = -1) -> PartitionEngine:
    eng = PartitionEngine(CoreConfig(), 0)
    store: dict[str, bytes] = {}
    if batched:
        eng.begin_batch()
    for i, e in enumerate(events):
        if i == restore_at:  # the kept copies survive a restore
            if batched:
                eng.end_batch()
            for k, v in eng.drain_dirty().items():
                if v is None:
                    store.pop(k, None)
                else:
                    store[k] = v
            eng = PartitionEngine.restore(CoreConfig(), 0, store.items())
            if batched:
                eng.begin_batch()
        eng.apply(role_of(e), e)
    if batched:
        eng.end_batch()
    return eng


def test_survey_copies_in_both_orders() -> None:
    """CSAT 1 one way, CSAT 5 the other: now the same, attributed or parked."""
    c = created("T", "10:00:00")
    s1 = SurveyResponse("s", at("10:30:00"), SurveyKind.CSAT, 1, "T", None, None, None, None,
                        None)  # fmt: skip
    s5 = dataclasses.replace(s1, score=5, ts=at("10:30:30"))
    later = created("U", "10:40:00")  # releases the parked surveys
    one: list[Event] = [c, s1, s5, later]
    two: list[Event] = [c, s5, s1, later]
    ev1, ev2 = evaluate([_run(one)]), evaluate([_run(two)])
    assert ev1 == ev2
    assert ev1.sample("counter", "duplicate_conflicts_total", role=SURVEYS) == 1
    winner = winner_of([s1, s5])
    assert ev1.kpi("csat_mean", "1h").value == float(winner.score)
    assert ev1.kpi("csat", "1h").n == 1
    # not parked (team, agent, channel given): replaced in its slice
    full = [dataclasses.replace(s, team="x", agent_id="a", channel="web") for s in (s1, s5)]
    assert evaluate([_run([c, *full])]) == evaluate([_run([c, *full[::-1]])])
    for restore_at in range(1, 4):
        assert evaluate([_run(one, restore_at=restore_at)]) == ev1


def test_the_issue_example_in_both_orders() -> None:
    """priority low / no first response one way, urgent / FRT the other: now the
    same winner in both orders, counted once, worker and replica alike."""
    c = created("T", "10:00:00")
    low = dataclasses.replace(c, priority=Priority.LOW)
    urgent = dataclasses.replace(c, priority=Priority.URGENT)
    reply = msg("T", "10:04:53.7", agent="a-1")
    internal = dataclasses.replace(reply, public=False)
    one: list[Event] = [low, internal, urgent, reply]
    two: list[Event] = [urgent, reply, low, internal]
    e1, e2 = _run(one), _run(two)
    ev1, ev2 = evaluate([e1]), evaluate([e2])
    assert ev1 == ev2
    assert ev1.sample("counter", "duplicate_conflicts_total", role=TICKETS) == 2
    assert ev1.sample("counter", "duplicate_conflicts_total", role=SURVEYS) == 0
    assert ev1.sample("counter", "events_total", role=TICKETS, outcome="duplicate") == 2
    winner = winner_of([low, urgent])
    assert ev1.kpi("tickets_created", "1h", priority=winner.priority.value).value == 1
    frt = winner_of([reply, internal])
    assert ev1.kpi("frt_count", "1h").value == (1 if frt.public else 0)
    # the count survives a restore and reaches the changelog replica
    values = e1.drain_dirty()
    restored = PartitionEngine.restore(CoreConfig(), 0, [(k, v) for k, v in values.items() if v])
    assert evaluate([restored]) == ev1
    replica = PartitionReplica(CoreConfig(), 0)
    for k, v in values.items():
        replica.apply(k, v)
    assert evaluate([replica]) == ev1
    # batched (deferred re-derivation) alike
    assert evaluate([_run(two, batched=True)]) == ev1


def test_a_copy_past_the_lateness_changes_nothing_but_the_count() -> None:
    c = created("T", "10:00:00")
    smaller = min([dataclasses.replace(c, priority=p) for p in Priority], key=lambda x: x.priority)
    later = created("U", "10:06:00")  # stream time 10:06: the creation is older than 10:01
    eng = _run([c, later])
    ev = evaluate([eng])
    for copy in [dataclasses.replace(c, priority=p) for p in Priority]:
        assert eng.apply(TICKETS, copy) is Outcome.DUPLICATE
    ev2 = evaluate([eng])
    assert ev2.kpis == ev.kpis
    assert ev2.sample("counter", "duplicate_conflicts_total", role=TICKETS) == 3
    assert smaller.priority is not None


@st.composite
def conflicting(draw: st.DrawFn, e: Event) -> Event:
    """Another copy of `e`: same event_id and ticket, different content."""
    dt = draw(st.integers(-2 * MIN, 2 * MIN))
    if isinstance(e, TicketCreated):
        return dataclasses.replace(
            e, ts=e.ts + dt, priority=draw(st.sampled_from(list(Priority))),
            team=draw(st.sampled_from(["billing", "tech"])),
        )  # fmt: skip
    if isinstance(e, TicketMessage):
        author = draw(st.sampled_from(list(Author)))
        return dataclasses.replace(
            e, ts=e.ts + dt, author=author, public=draw(st.booleans()),
            agent_id=draw(st.sampled_from([None, "a-1", "a-2"])) if author is Author.AGENT
            else None,
        )  # fmt: skip
    if isinstance(e, TicketAssigned):
        return dataclasses.replace(e, ts=e.ts + dt, agent_id=draw(st.sampled_from(["a-1", "a-3"])))
    if isinstance(e, SurveyResponse):
        lo, hi = SCALES[e.survey]
        return dataclasses.replace(
            e, ts=e.ts + dt, score=draw(st.integers(lo, hi)),
            team=draw(st.sampled_from([None, "billing", "tech"])),
            agent_id=draw(st.sampled_from([None, "a-1"])),
        )  # fmt: skip
    assert isinstance(e, StatusChanged)
    return dataclasses.replace(e, ts=e.ts + dt, status=draw(st.sampled_from(list(Status))))


@st.composite
def with_conflicts(draw: st.DrawFn) -> list[tuple[str, Event]]:
    """Generated arrivals (disorder within the lateness, duplicates) where some
    ticket events get a conflicting copy arriving somewhere later."""
    events = list(draw(arrivals()))
    for i in range(len(events) - 1, -1, -1):
        role, e = events[i]
        if draw(st.integers(0, 3)) > 0:
            continue
        copy = draw(conflicting(e))
        j = draw(st.integers(i + 1, min(len(events), i + 6)))
        events.insert(j, (role, copy))
    return events


def _released_before_late_creation() -> list[tuple[str, Event]]:
    """A survey needing its ticket's team is released (its ticket partition is past
    its ts + lateness) before the ticket's creation arrives, late: an on-time
    conflicting copy of a status moved the stream time past the creation.

    Found by Hypothesis (reduced by hand): the reference attributed the survey
    from the creation that arrived after its release, the engine, as documented
    (docs/kpis.md, parking rule), from what the ticket held at the release."""
    c = created("T", "10:00:00", team="billing")
    survey = SurveyResponse("s", at("10:00:30"), SurveyKind.CES, 7, "T", None, None, None,
                            "web", None)  # fmt: skip
    solved = status("T", "10:04:00", "solved")
    copy = dataclasses.replace(solved, ts=at("10:05:40"), status=Status.OPEN)
    return [(SURVEYS, survey), (TICKETS, solved), (TICKETS, copy), (TICKETS, c)]


def test_a_released_survey_keeps_its_attribution() -> None:
    """The parking rule waits for the on-time ticket events only: a late creation
    arriving after the survey's release does not move the counted survey (a late
    event changes no windowed aggregate), but it attributes a survey released
    after it (a late event still updates the ticket's state)."""
    events = _released_before_late_creation()
    eng = _run([e for _, e in events])
    assert eng.outcome_counts(TICKETS)["late"] == 1  # the creation
    first = events[0][1]
    assert isinstance(first, SurveyResponse)
    again = dataclasses.replace(first, event_id="s2")  # attributed at once: no parking
    assert eng.apply(SURVEYS, again) is Outcome.APPLIED
    eng.end_of_stream()
    ev = evaluate([eng])
    assert ev.kpi("ces", "1h", team="unknown").n == 1
    assert ev.kpi("ces", "1h", team="billing").n == 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(with_conflicts(), st.booleans(), st.integers(-1, 40))
@example(_released_before_late_creation(), False, -1)
@example(_released_before_late_creation(), True, 3)
def test_engine_matches_reference_with_conflicts(
    events: list[tuple[str, Event]], batched: bool, restore_at: int
) -> None:
    if not events:
        return
    eng = _run([e for _, e in events], batched, restore_at)
    eng.end_of_stream()
    ev = evaluate([eng])
    ref = reference(events, CFG)
    check_tickets(ev, ref, CFG)
    check_backlog(ev, ref, CFG)
    check_surveys(ev, ref, CFG)
    acc = accept(events, CFG)
    assert ev.sample("counter", "duplicate_conflicts_total", role=SURVEYS) == acc.survey_conflicts
    conflicts = acc.conflicts
    counted = ev.sample("counter", "duplicate_conflicts_total", role=TICKETS)
    if eng._tombs:  # a finished ticket keeps no events: its stragglers are ignored
        assert counted <= conflicts
    else:
        assert counted == conflicts
    assert eng.dropped_contributions == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals(), st.data())
def test_both_arrival_orders_give_identical_evaluations(
    events: list[tuple[str, Event]], data: st.DataObject
) -> None:
    """Each conflicting pair arrives back to back (both within the lateness);
    swapping every pair's order changes no KPI, gauge or counter."""
    pairs: list[tuple[int, Event]] = []
    ids = [e.event_id for _, e in events]
    for i, (_, e) in enumerate(events):
        # one conflicting copy per event_id (with re-deliveries of both copies the
        # KPIs are still order-free, but how many arrivals found the other copy
        # kept, the conflict count, depends on the order of the repeats)
        if ids.count(e.event_id) == 1 and data.draw(st.integers(0, 2)) == 0:
            pairs.append((i, data.draw(conflicting(e))))
    one: list[Event] = []
    two: list[Event] = []
    extra = dict(pairs)
    for i, (_, e) in enumerate(events):
        one.append(e)
        two.append(extra.get(i, e))
        if i in extra:
            one.append(extra[i])
            two.append(e)
    # arrivals() keeps every event within the lateness; a copy up to 2 minutes
    # away can still arrive late in one order and not in the other: skip those
    e1, e2 = _run(one), _run(two)
    if any(e.outcome_counts(r)["late"] for e in (e1, e2) for r in (TICKETS, SURVEYS)):
        return
    for eng in (e1, e2):
        eng.end_of_stream()
    one_ev, two_ev = evaluate([e1]), evaluate([e2])
    if e1._tombs or e2._tombs:
        # A finished ticket keeps no events, so a copy arriving after it finished is a
        # straggler, counted as a duplicate whether or not it conflicts (the same
        # documented limit as `test_engine_matches_reference_with_conflicts`): only the
        # applied/duplicate split and the conflict count may depend on the order then.
        # Found by Hypothesis: two copies of a ticket's `closed` status in either order.
        # Nor may when a finished ticket's state is let go (`tickets_tracked`, memory,
        # not a KPI): a conflicting copy that replaces the one kept can bring the
        # ticket's expiry earlier without moving the stream time, and expired tickets
        # are swept when it moves (found by Hypothesis, 2026-12-08: a closed ticket's
        # assignment in two copies 5 min apart; 5 tickets held against 6, all else equal).
        def kpis(ev: Evaluation) -> Evaluation:
            return dataclasses.replace(ev, counters=(), gauges=tuple(
                g for g in ev.gauges if g.name != "tickets_tracked"))  # fmt: skip

        assert kpis(one_ev) == kpis(two_ev)

        def outcomes(ev: Evaluation) -> float:
            return sum(ev.sample("counter", "events_total", role=TICKETS, outcome=o)
                       for o in ("applied", "duplicate", "late"))

        assert outcomes(one_ev) == outcomes(two_ev)
        return
    assert one_ev == two_ev
