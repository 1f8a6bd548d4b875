"""Small builders for hand-worked core tests: readable clock times, events, runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cxpulse.core.config import CoreConfig
from cxpulse.core.engine import Evaluation, PartitionEngine, evaluate
from cxpulse.core.events import (
    Author,
    Creator,
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
from cxpulse.core.tickets import TicketState

DAY = "2026-11-22"


def live_tickets(eng: PartitionEngine) -> dict[str, TicketState]:
    """Every live ticket of `eng`, a packed one unpacked (`PartitionEngine.ticket`)."""
    out: dict[str, TicketState] = {}
    for tid in list(eng._tickets):
        state = eng.ticket(tid)
        assert state is not None
        out[tid] = state
    return out


def at(clock: str) -> int:
    """Epoch ms of `HH:MM:SS[.fff]` on the test day (UTC)."""
    dt = datetime.fromisoformat(f"{DAY}T{clock}").replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


_n = 0


def _eid() -> str:
    global _n
    _n += 1
    return f"e{_n}"


def created(tid: str, clock: str, team: str = "billing", channel: str = "email",
            priority: str = "normal", by: str = "customer") -> TicketCreated:  # fmt: skip
    return TicketCreated(_eid(), at(clock), tid, team, channel, Priority(priority),
                         created_by=Creator(by))  # fmt: skip


def assigned(tid: str, clock: str, agent: str, team: str | None = None) -> TicketAssigned:
    return TicketAssigned(_eid(), at(clock), tid, agent, team)


def msg(tid: str, clock: str, author: str = "agent", agent: str | None = None,
        public: bool = True) -> TicketMessage:  # fmt: skip
    return TicketMessage(_eid(), at(clock), tid, Author(author), agent, public)


def status(tid: str, clock: str, value: str) -> StatusChanged:
    return StatusChanged(_eid(), at(clock), tid, Status(value))


def survey(clock: str, kind: str, score: int, ticket: str | None = None,
           **fields: Any) -> SurveyResponse:  # fmt: skip
    return SurveyResponse(_eid(), at(clock), SurveyKind(kind), score, ticket_id=ticket, **fields)


def run(events: list[Event], config: CoreConfig | None = None, at_clock: str | None = None,
        end: bool = True) -> tuple[PartitionEngine, Evaluation]:  # fmt: skip
    eng = PartitionEngine(config or CoreConfig(), 0)
    for e in events:
        eng.apply(role_of(e), e)
    if end:
        eng.end_of_stream()
    return eng, evaluate([eng], at(at_clock) if at_clock else None)
