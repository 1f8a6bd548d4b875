"""What every vendor mapper returns, and the small conversions they share.

A mapper turns one vendor delivery (parsed JSON) into contract events (docs/contract.md
v1.1) or says why it cannot (`Unmappable`: the delivery is dead-lettered with its
bytes and that reason). A delivery about something the contract does not track (a
contact update, a priority change) is *ignored*: no events, counted, not an error.

Event ids are built from the vendor's own ids and the content of the change, never
from the delivery's arrival: the same change seen twice (a redelivered webhook, a
retried produce, `cxpulse import` of a period the webhooks covered) gets the same
`event_id`, so the worker counts it once. Each id starts with the vendor's prefix
(`zd:`, `cw:`, `fd:`, `zm:`) and the ticket id, so ids of two vendors never meet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cxpulse.core.decode import format_ts
from cxpulse.jsontypes import JSON

TICKETS, SURVEYS = "tickets", "surveys"
STATUSES = ("open", "pending", "on_hold", "solved", "closed")


class Unmappable(ValueError):
    """A delivery that cannot become contract events: `code` (counters), message (humans)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Mapped:
    """Events of one delivery (in order), or nothing with the reason it was ignored."""

    events: list[JSON] = field(default_factory=list)
    ignored: str | None = None
    #: Zammad: the ticket's snapshot to keep for the next delivery's diff (None: unchanged)
    snapshot: JSON | None = None

    def add(self, event_id: str, type_: str, ts_ms: int, **fields: Any) -> None:
        event = {"event_id": event_id[:128], "type": type_, "ts": format_ts(ts_ms)}
        event.update({k: v for k, v in fields.items() if v is not None})
        self.events.append(event)


def role_and_key(event: JSON) -> tuple[str, bytes]:
    """The contract's topic role and Kafka key of an event we built."""
    role = SURVEYS if event["type"].startswith("survey.") else TICKETS
    key = event.get("ticket_id") or event["event_id"]
    return role, str(key).encode()


def obj_at(body: JSON, name: str) -> JSON:
    """`body[name]` when it is an object, else an empty one (vendors send null)."""
    value = body.get(name)
    return value if isinstance(value, dict) else {}


def dig(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def ident(value: Any) -> str | None:
    """An id as text (vendors send ids as numbers or strings); None when absent."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        text = str(value).strip()
        return text[:128] or None
    return None


def require_id(value: Any, what: str) -> str:
    found = ident(value)
    if found is None:
        raise Unmappable("missing_id", f"no {what} in the delivery")
    return found


def to_ms(value: Any, what: str = "time") -> int:
    """Vendor times: ISO 8601 with offset (any fraction), unix seconds (int/float), unix ms.

    A time without an offset (Chatwoot's old `2020-03-03 13:05:57 UTC` style is accepted:
    it names UTC) is refused rather than guessed."""
    if isinstance(value, bool) or value is None:
        raise Unmappable("missing_time", f"no {what} in the delivery")
    if isinstance(value, int | float):
        v = float(value)
        return int(v) if v > 1e11 else round(v * 1000)  # ms vs seconds
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return to_ms(float(text), what)
        if text.endswith(" UTC"):
            text = text[:-4].replace(" ", "T") + "Z"
        head, dot, rest = text.partition(".")
        if dot:  # fractions beyond microseconds (Zendesk sends nanoseconds)
            digits = len(rest) - len(rest.lstrip("0123456789"))
            text = f"{head}.{rest[:digits][:6]}{rest[digits:]}"
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise Unmappable("bad_time", f"{what} is not a date-time") from None
        if dt.tzinfo is None:
            raise Unmappable("bad_time", f"{what} has no UTC offset")
        return int(dt.astimezone(UTC).timestamp() * 1000)
    raise Unmappable("bad_time", f"{what} is not a date-time")


def second(ts_ms: int) -> str:
    """The second of a time, for ids: vendors' APIs keep seconds, webhooks more digits."""
    return str(ts_ms // 1000)
