"""`max_events_per_ticket`: a ticket's state and cost stay bounded whatever a
producer sends, and every event beyond the cap is counted as a dead letter
(`ticket_event_cap`), by the worker and by `cxpulse report` alike."""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter

from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, encode
from cxpulse.core.engine import Outcome, PartitionEngine, evaluate
from cxpulse.core.engine.partition import TICKET_EVENT_CAP
from cxpulse.core.events import (
    TICKETS,
    Author,
    Event,
    TicketCreated,
    TicketEvent,
    TicketMessage,
    role_of,
)
from cxpulse.core.tickets import TicketState
from cxpulse.report.command import compute
from cxpulse.worker.shared import handle_message

T0 = 1_795_338_000_000


def ticket(n: int, reverse: bool = False) -> list[Event]:
    events: list[Event] = [TicketCreated("c", T0, "T", "tech", "email")]
    for i in range(1, n):
        author = Author.AGENT if i % 2 else Author.CUSTOMER
        agent = "a-1" if author is Author.AGENT else None
        events.append(TicketMessage(f"m{i}", T0 + 10 * i, "T", author, agent, True))
    return events[::-1] if reverse else events


def test_twenty_thousand_events_keep_one_thousand() -> None:
    eng = PartitionEngine(CoreConfig(), 0)
    calls = 0
    rederive, resume = eng._rederive, eng._resume

    def count_rederive(tid: str, state: TicketState, apply: bool = True) -> None:
        nonlocal calls
        calls += 1
        rederive(tid, state, apply)

    def count_resume(tid: str, state: TicketState, e: TicketEvent | None) -> None:
        nonlocal calls
        calls += 1
        resume(tid, state, e)

    eng._rederive = count_rederive  # type: ignore[method-assign]
    eng._resume = count_resume  # type: ignore[method-assign,assignment]
    events = ticket(20_000)
    tracemalloc.start()
    applied: list[Outcome | Rejection] = []
    codes: Counter[str] = Counter()
    for i, e in enumerate(events):
        outcome = eng.apply(role_of(e), e)
        if isinstance(outcome, Rejection):
            codes[outcome.code] += 1
        else:
            applied.append(outcome)
        if i == 999:
            held_at_cap, _ = tracemalloc.get_traced_memory()
    held_at_end, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert applied == [Outcome.APPLIED] * 1000
    assert codes == {TICKET_EVENT_CAP: 19_000}
    state = eng.ticket("T")
    assert state is not None and state.count() == 1000
    # the engine counts only what it applied; the shell counts the rejections
    assert eng.outcome_counts(TICKETS)[Outcome.APPLIED] == 1000
    assert sum(eng.outcome_counts(TICKETS).values()) == 1000
    # cost: no derivation work for a refused event; memory: nothing kept for it
    assert calls == 1000
    assert held_at_end - held_at_cap < 64 * 1024
    ev = evaluate([eng])
    assert ev.kpi("tickets_created", "1h").value == 1
    assert ev.kpi("frt_count", "1h").value == 1
    # a re-delivery of a kept event is still a duplicate, not a rejection
    assert eng.apply(TICKETS, events[5]) is Outcome.DUPLICATE


def test_the_cap_is_per_ticket_and_configurable() -> None:
    eng = PartitionEngine(CoreConfig(max_events_per_ticket=3), 0)
    out = [eng.apply(role_of(e), e) for e in ticket(5)]
    assert out[:3] == [Outcome.APPLIED] * 3
    assert all(isinstance(o, Rejection) for o in out[3:])
    other = TicketCreated("c2", T0, "U", "tech", "email")
    assert eng.apply(TICKETS, other) is Outcome.APPLIED


def _line(e: Event) -> bytes:
    return json.dumps(encode(e)).encode()  # type: ignore[arg-type]


def test_worker_and_report_count_the_cap_alike() -> None:
    cfg = CoreConfig(max_events_per_ticket=10)
    events = ticket(25, reverse=True)
    engine = PartitionEngine(cfg, 0)
    counts: dict[str, int] = {}
    dead = 0
    engine.begin_batch()
    for off, e in enumerate(events):
        record, _ = handle_message(
            engine, "tickets", "support.tickets", 0, off, b"T", _line(e), counts, T0 + 60_000
        )
        if record is not None:
            dead += 1
            reason = dict(record.headers)["cxpulse.reason"]
            assert reason == TICKET_EVENT_CAP.encode()
    engine.end_batch()
    assert counts == {
        "consumed:tickets": 25,
        "applied:tickets": 10,
        "deadletter:tickets:ticket_event_cap": 15,
    }
    assert dead == 15
    report = compute([_line(e) for e in events], cfg, received_ms=T0 + 60_000)
    assert report.rejected == {TICKET_EVENT_CAP: 15}
    assert report.evaluation == evaluate([engine])
