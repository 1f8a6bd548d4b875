"""The event model of contract v1.1 (docs/contract.md).

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


#: Inclusive score range of each survey kind's own scale (fixed by the contract).
SCALES: dict[SurveyKind, tuple[int, int]] = {
    SurveyKind.CSAT: (1, 5),
    SurveyKind.NPS: (0, 10),
    SurveyKind.CES: (1, 7),
}


class Scale(StrEnum):
    """The scale a survey was asked on (contract 1.1: it travels with the event).

    Each kind has its own default scale (the v1 one); CSAT may come on three
    others, which helpdesks use, and is judged satisfied / not on each.
    """

    FIVE_POINT = "five_point"
    SEVEN_POINT = "seven_point"
    ELEVEN_POINT = "eleven_point"
    THREE_POINT = "three_point"
    TWO_POINT = "two_point"


#: The scale a survey of each kind is on when it names none (the v1 scales).
DEFAULT_SCALE: dict[SurveyKind, Scale] = {
    SurveyKind.CSAT: Scale.FIVE_POINT,
    SurveyKind.NPS: Scale.ELEVEN_POINT,
    SurveyKind.CES: Scale.SEVEN_POINT,
}

#: Per kind, the scales it may name and the scores valid on each (in order).
SCALE_SCORES: dict[SurveyKind, dict[Scale, tuple[int, ...]]] = {
    SurveyKind.CSAT: {
        Scale.FIVE_POINT: (1, 2, 3, 4, 5),
        Scale.SEVEN_POINT: (1, 2, 3, 4, 5, 6, 7),
        Scale.THREE_POINT: (-103, 100, 103),  # Freshdesk: unhappy, neutral, happy
        Scale.TWO_POINT: (0, 1),  # Zendesk: bad, good
    },
    SurveyKind.NPS: {Scale.ELEVEN_POINT: tuple(range(11))},
    SurveyKind.CES: {Scale.SEVEN_POINT: tuple(range(1, 8))},
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
    #: (1.1) The ticket starts in a bot's hands: its FRT clock starts at the handoff.
    bot: bool = False


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
class TicketHandoff:
    """(1.1) A bot hands the ticket to the human agents."""

    event_id: str
    ts: int
    ticket_id: str


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
    #: (1.1) None: the kind's default scale (`DEFAULT_SCALE`).
    scale: Scale | None = None


@dataclass(frozen=True, slots=True)
class SurveyOffered:
    """(1.1) A survey was sent; it may never be answered (response rate)."""

    event_id: str
    ts: int
    survey: SurveyKind
    ticket_id: str | None = None
    customer_id: str | None = None
    team: str | None = None
    agent_id: str | None = None
    channel: str | None = None
    touchpoint: str | None = None
    scale: Scale | None = None


TicketEvent = TicketCreated | TicketAssigned | TicketHandoff | TicketMessage | StatusChanged
SurveyEvent = SurveyResponse | SurveyOffered
Event = TicketEvent | SurveyEvent

#: Wire `type` of each event class, and back.
TYPE_NAMES: dict[type, str] = {
    TicketCreated: "ticket.created",
    TicketAssigned: "ticket.assigned",
    TicketHandoff: "ticket.handoff",
    TicketMessage: "ticket.message",
    StatusChanged: "ticket.status_changed",
    SurveyResponse: "survey.response",
    SurveyOffered: "survey.offered",
}
EVENT_TYPES: dict[str, type] = {name: cls for cls, name in TYPE_NAMES.items()}

#: (1.1) Rank of each ticket event type among events of one ticket with the same
#: `ts` (docs/contract.md, "Order of events with the same timestamp"): one
#: helpdesk update creates, assigns, hands off, writes, and only then changes
#: the status, so a reply saved with a solve is before it (one-touch) and a
#: reply saved with `closed` still counts.
TYPE_RANK: dict[type, int] = {
    TicketCreated: 0,
    TicketAssigned: 1,
    TicketHandoff: 2,
    TicketMessage: 3,
    StatusChanged: 4,
}


def event_order(e: TicketEvent) -> tuple[int, int, str]:
    """Sort key of a ticket's events: time, then type rank, then event_id."""
    return (e.ts, TYPE_RANK[type(e)], e.event_id)

#: Topic roles; the real topic names come from configuration.
TICKETS = "tickets"
SURVEYS = "surveys"


def role_of(event: Event) -> str:
    """Which topic role an event belongs on.

    A tuple of classes, not `SurveyResponse | SurveyOffered`: a union written
    in a call builds a new `types.UnionType` each time, which cost more than
    the check (issue 22; so in the engine's `apply`)."""
    return SURVEYS if isinstance(event, (SurveyResponse, SurveyOffered)) else TICKETS


def scale_of(event: SurveyEvent) -> Scale:
    """The scale a survey event is on (its own, else its kind's default)."""
    return event.scale or DEFAULT_SCALE[event.survey]


def key_of(event: Event) -> str:
    """The Kafka key the contract prescribes: ticket id, else the event id."""
    return event.ticket_id or event.event_id


def ts_seconds(ts_ms: int) -> float:
    return ts_ms / 1000.0
