"""API export records of Chatwoot, Freshdesk and Zammad -> the webhook bodies the live path maps.

Why re-shape instead of mapping exports directly: the events then come out of the
very mapper `cxpulse map` runs (`cxpulse.helpdesks`), so their ids and fields are the
live path's by construction, and history imported over a period the webhooks
covered is a duplicate, not a second count.

An export is the ticket's state *now*, not its history, so only what it dates
is re-shaped: the ticket's creation (team, channel, priority, customer as
exported), every message/conversation/article with its own id and time, and:

* Chatwoot (`GET .../conversations` -> `{"data": {"payload": [...]}}`, `GET
  .../conversations/{id}/messages` -> `{"payload": [...]}`): messages, and an
  answered CSAT (`input_csat` message with `submitted_values`) as its offer and
  its response. Not in the export: status changes (resolutions, the bot
  handoff) and assignments; a conversation's current `status` is not its
  status at creation, so `bot` is not set from it.
* Freshdesk (`GET /api/v2/tickets?include=stats`, `GET /api/v2/tickets/{id}/
  conversations`, `GET /api/v2/surveys/satisfaction_ratings`): conversations,
  ratings, and the resolution at `stats.resolved_at`
  (the webhook's id is the second of the resolving update's `updated_at`,
  which is the time Freshdesk records as `resolved_at`).
* Zammad (`GET /api/v1/tickets/{id}?expand=true`, `GET /api/v1/ticket_articles/
  by_ticket/{id}?expand=true`): articles, and the close at `close_at` (the
  webhook's id is the second of the closing snapshot's `updated_at`).

Assignments, pending/on-hold periods, reopens and the other status changes
need each vendor's history API (Chatwoot activity messages, Freshdesk's
activities export, Zammad's ticket_history): not imported (docs/helpdesks.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def unwrap(vendor: str, record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The objects of an API page (`payload` / `data.payload` lists) or the record itself."""
    if vendor == "chatwoot":
        data = record.get("data")
        payload = data.get("payload") if isinstance(data, dict) else record.get("payload")
        if isinstance(payload, list) and "event" not in record:
            yield from (p for p in payload if isinstance(p, dict))
            return
    yield record


def is_export(vendor: str, obj: dict[str, Any]) -> bool:
    """An API object rather than a webhook body (which names its event or wraps a ticket)."""
    if vendor == "chatwoot":
        return "event" not in obj and "csat_survey_response" not in obj and (
            "message_type" in obj or "inbox_id" in obj)  # fmt: skip
    if vendor == "freshdesk":
        return "event" not in obj and "satisfaction_rating" not in obj and (
            "requester_id" in obj or "incoming" in obj or "ratings" in obj)  # fmt: skip
    if vendor == "zammad":
        return "ticket" not in obj and ("number" in obj or "sender" in obj
                                        or "sender_id" in obj)  # fmt: skip
    return False


Body = dict[str, Any]


def as_webhooks(vendor: str, obj: Body) -> list[tuple[Body, Body | None]]:
    """The webhook bodies that carry what this export object dates (see the module doc),
    each with the previous Zammad snapshot to diff it against (None: the first)."""
    if vendor == "chatwoot":
        return [(b, None) for b in _chatwoot(obj)]
    if vendor == "freshdesk":
        return [(b, None) for b in _freshdesk(obj)]
    if vendor == "zammad":
        return _zammad(obj)
    return []


def _chatwoot(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if "message_type" in obj:
        bodies = [{**obj, "event": "message_created"}]
        submitted = (obj.get("content_attributes") or {}).get("submitted_values")
        if obj.get("content_type") == "input_csat" and submitted:
            bodies.append({**obj, "event": "message_updated"})
        return bodies
    meta = obj.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    # the creation only: today's assignee and status are not the ones at creation; the
    # API has the inbox's channel in meta, the webhook at the top
    conv = {k: v for k, v in obj.items() if k not in ("status", "messages")}
    conv.setdefault("channel", meta.get("channel"))
    return [{**conv, "event": "conversation_created",
             "meta": {k: v for k, v in meta.items() if k != "assignee"}}]  # fmt: skip


def _freshdesk(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if "incoming" in obj:
        return [{"event": "onConversationCreate", "data": {"conversation": obj}}]
    if "ratings" in obj:  # GET /api/v2/surveys/satisfaction_ratings: the webhook's object
        return [{"satisfaction_rating": obj}]
    created = {k: v for k, v in obj.items() if k not in ("status", "responder_id")}
    bodies: list[dict[str, Any]] = [{"event": "onTicketCreate", "data": {"ticket": created}}]
    resolved = (obj.get("stats") or {}).get("resolved_at")
    if resolved:
        update = {"id": obj.get("id"), "updated_at": resolved, "changes": {"status": [2, 4]}}
        bodies.append({"event": "onTicketUpdate", "data": {"ticket": update}})
    return bodies


def _zammad(obj: Body) -> list[tuple[Body, Body | None]]:
    from cxpulse.helpdesks.zammad import snapshot_of

    if "number" not in obj:  # an article, against a snapshot it does not change
        carrier = {"id": obj.get("ticket_id"), "updated_at": obj.get("created_at")}
        return [({"ticket": carrier, "article": obj}, snapshot_of(carrier))]
    # the creation (the first snapshot: state "new", nobody owns it yet), then the close
    created = {**obj, "state": "new", "owner_id": 1, "updated_at": obj.get("created_at")}
    created.pop("owner", None)
    bodies: list[tuple[Body, Body | None]] = [({"ticket": created}, None)]
    if obj.get("close_at"):
        closed = {**created, "state": "closed", "updated_at": obj["close_at"]}
        bodies.append(({"ticket": closed}, snapshot_of(created)))
    return bodies
