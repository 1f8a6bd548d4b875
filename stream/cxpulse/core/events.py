"""The event model of contract v1 (../shared/spec/events.md).

Event time is kept as integer milliseconds since the Unix epoch (UTC), never
as floats or datetimes: durations and their sums stay exact integers, so the
batch report and the live pipeline agree to the last digit whatever order
they add things in. Seconds appear only at the edges (metrics, display).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Creator(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"


class Author(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    BOT = "bot"


class Status(StrEnum):
    """Statuses an event may set. `new` is only the state a ticket starts in."""

    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    CLOSED = "closed"


class SurveyKind(StrEnum):
    CSAT = "csat"
    NPS = "nps"
    CES = "ces"


#: Inclusive score range of each survey scale (fixed by the contract).
SCALES: dict[SurveyKind, tuple[int, int]] = {
    SurveyKind.CSAT: (1, 5),
    SurveyKind.NPS: (0, 10),
    SurveyKind.CES: (1, 7),
}


@dataclass(frozen=True, slots=True)
class TicketCreated:
    event_id: str
    ts: int  # epoch milliseconds
    ticket_id: str
    team: str
    channel: str
    priority: Priority = Priority.NORMAL
    customer_id: str | None = None
    created_by: Creator = Creator.CUSTOMER


@dataclass(frozen=True, slots=True)
class TicketAssigned:
    event_id: str
    ts: int
    ticket_id: str
    agent_id: str
    team: str | None = None


@dataclass(frozen=True, slots=True)
class TicketMessage:
    event_id: str
    ts: int
    ticket_id: str
    author: Author
    agent_id: str | None = None
    public: bool = True


@dataclass(frozen=True, slots=True)
class StatusChanged:
    event_id: str
    ts: int
    ticket_id: str
    status: Status


@dataclass(frozen=True, slots=True)
class SurveyResponse:
    event_id: str
    ts: int
    survey: SurveyKind
    score: int
    ticket_id: str | None = None
    customer_id: str | None = None
    team: str | None = None
    agent_id: str | None = None
    channel: str | None = None
    touchpoint: str | None = None


TicketEvent = TicketCreated | TicketAssigned | TicketMessage | StatusChanged
Event = TicketEvent | SurveyResponse

#: Wire `type` of each event class, and back.
TYPE_NAMES: dict[type, str] = {
    TicketCreated: "ticket.created",
    TicketAssigned: "ticket.assigned",
    TicketMessage: "ticket.message",
    StatusChanged: "ticket.status_changed",
    SurveyResponse: "survey.response",
}
EVENT_TYPES: dict[str, type] = {name: cls for cls, name in TYPE_NAMES.items()}

#: Topic roles; the real topic names come from configuration.
TICKETS = "tickets"
SURVEYS = "surveys"


def role_of(event: Event) -> str:
    """Which topic role an event belongs on."""
    return SURVEYS if isinstance(event, SurveyResponse) else TICKETS


def key_of(event: Event) -> str:
    """The Kafka key the contract prescribes: ticket id, else the event id."""
    return event.ticket_id or event.event_id


def ts_seconds(ts_ms: int) -> float:
    return ts_ms / 1000.0
