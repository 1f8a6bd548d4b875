"""Chatwoot: account webhooks (`conversation_created`, `conversation_status_changed`,
`conversation_updated`, `message_created`, `message_updated`).

Chatwoot's statuses are not the contract's: `pending` means *a bot owns the
conversation* (not "waiting on the customer"), `snoozed` is parked until a time,
`resolved` is solved. So a conversation created `pending` is `bot: true`, and its
move to `open` is the bot handoff (`ticket.handoff`): first response is measured
from there, as Chatwoot's own first-response report does. `snoozed` maps to
`on_hold`. Outgoing messages by an `agent_bot` sender (or listed in `bots`), and
template messages, are bot messages; activity messages ("Conversation was
resolved by ...") are not messages at all. CSAT: the `input_csat` template
message is the offer, its update with a rating the response (1 to 5).

The websocket shape of the Chatwoot SDKs (`{"message": {"event": "message.created",
"data": {...}}}`) is accepted too: same objects, dotted event names.
"""

from __future__ import annotations

from typing import Any

from cxpulse.helpdesks.common import (
    Mapped,
    Unmappable,
    dig,
    ident,
    obj_at,
    require_id,
    second,
    to_ms,
)
from cxpulse.helpdesks.mapping import Mapping
from cxpulse.jsontypes import JSON

STATUS = {"open": "open", "resolved": "solved", "snoozed": "on_hold"}
PRIORITY = {"low": "low", "medium": "normal", "high": "high", "urgent": "urgent"}
MESSAGE_TYPES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}


def _unwrap(body: JSON) -> tuple[str, JSON]:
    event = body.get("event")
    if isinstance(event, str):
        return event.replace(".", "_"), body
    inner = body.get("message")
    if isinstance(inner, dict) and isinstance(inner.get("event"), str):
        data = inner.get("data")
        if isinstance(data, dict):
            return str(inner["event"]).replace(".", "_"), data
    if isinstance(body.get("csat_survey_response"), dict):
        return "csat_survey_response", body
    raise Unmappable("unknown_event", "no Chatwoot event name ('event') in the delivery")


def map_webhook(body: JSON, mapping: Mapping) -> Mapped:
    event, data = _unwrap(body)
    out = Mapped()
    if event == "conversation_created":
        _created(out, data, mapping)
    elif event in ("conversation_status_changed", "conversation_updated"):
        conv = require_id(data.get("id"), "conversation id")
        ts = to_ms(data.get("updated_at") or data.get("timestamp"), "updated_at")
        changed = data.get("changed_attributes")
        changed_names = _changed_names(changed)
        if event == "conversation_status_changed" or "status" in changed_names:
            _status(out, conv, ts, str(data.get("status")))
        if "assignee_id" in changed_names or "team_id" in changed_names:
            # one event per update: an assignment through a team changes both, and two
            # events under one id would be conflicting copies
            agent = ident(dig(data, "meta", "assignee", "id"))
            team = dig(data, "meta", "team", "name") if "team_id" in changed_names else None
            if agent is not None and (team or "assignee_id" in changed_names):
                team = (mapping.team("chatwoot", ident(data.get("inbox_id")), str(team))
                        if team else None)  # fmt: skip
                out.add(f"cw:{conv}:assigned:{agent}:{second(ts)}", "ticket.assigned", ts,
                        ticket_id=conv, agent_id=agent, team=team)  # fmt: skip
        if not out.events:
            out.ignored = "conversation_change_not_tracked"
    elif event in ("message_created", "message_updated"):
        _message(out, event, data, mapping)
    elif event == "csat_survey_response":
        r = data["csat_survey_response"]
        conv = require_id(r.get("conversation_id"), "conversation_id")
        _csat(out, conv, require_id(r.get("message_id") or data.get("id"), "message id"),
              r.get("rating"), to_ms(r.get("updated_at") or r.get("created_at"), "created_at"),
              ident(r.get("assigned_agent_id")))  # fmt: skip
    else:
        out.ignored = f"event_{event}"[:64]
    return out


def _changed_names(changed: Any) -> set[str]:
    """`changed_attributes` is a list of one-key objects (or one object)."""
    names: set[str] = set()
    items = changed if isinstance(changed, list) else [changed]
    for item in items:
        if isinstance(item, dict):
            names |= {str(k) for k in item}
    return names


def _created(out: Mapped, data: JSON, mapping: Mapping) -> None:
    conv = require_id(data.get("id"), "conversation id")
    ts = to_ms(data.get("created_at") or data.get("timestamp"), "created_at")
    team_name = dig(data, "meta", "team", "name")
    out.add(f"cw:{conv}:created", "ticket.created", ts, ticket_id=conv,
            team=mapping.team("chatwoot", ident(data.get("inbox_id")),
                              str(team_name) if team_name else None),
            channel=mapping.channel("chatwoot", data.get("channel")),
            priority=PRIORITY.get(str(data.get("priority"))),
            customer_id=ident(dig(data, "meta", "sender", "id")),
            bot=True if data.get("status") == "pending" else None)  # fmt: skip
    agent = ident(dig(data, "meta", "assignee", "id"))
    if agent is not None:
        out.add(f"cw:{conv}:assigned:{agent}:{second(ts)}", "ticket.assigned", ts,
                ticket_id=conv, agent_id=agent)  # fmt: skip


def _status(out: Mapped, conv: str, ts: int, status: str) -> None:
    if status == "open":  # out of the bot's hands (or reopened): the first one is the handoff
        out.add(f"cw:{conv}:handoff:{second(ts)}", "ticket.handoff", ts, ticket_id=conv)
    mapped = STATUS.get(status)
    if mapped is not None:
        out.add(f"cw:{conv}:status:{mapped}:{second(ts)}", "ticket.status_changed", ts,
                ticket_id=conv, status=mapped)  # fmt: skip


def _message(out: Mapped, event: str, data: JSON, mapping: Mapping) -> None:
    msg_id = require_id(data.get("id"), "message id")
    conv = require_id(ident(dig(data, "conversation", "id")) or data.get("conversation_id"),
                      "conversation id")  # fmt: skip
    mtype = data.get("message_type")
    mtype = MESSAGE_TYPES.get(mtype, mtype) if isinstance(mtype, int) else mtype
    ts = to_ms(data.get("created_at"), "created_at")
    if data.get("content_type") == "input_csat":
        rating = dig(data, "content_attributes", "submitted_values", "csat_survey_response",
                     "rating")  # fmt: skip
        if event == "message_updated" and rating is not None:
            rated_at = to_ms(data.get("updated_at") or data.get("created_at"), "updated_at")
            _csat(out, conv, msg_id, rating, rated_at, None)
        elif event == "message_created":
            out.add(f"cw:{conv}:csat-offered:{msg_id}", "survey.offered", ts, survey="csat",
                    ticket_id=conv)  # fmt: skip
        else:
            out.ignored = "csat_not_answered"
        return
    if event == "message_updated":
        out.ignored = "message_edit"  # an edit is not a new message
        return
    sender = obj_at(data, "sender")
    sender_id, sender_type = ident(sender.get("id")), str(sender.get("type", "")).lower()
    if mtype == "incoming":
        author = "customer"
    elif mtype == "outgoing":
        bot = sender_type == "agent_bot" or not sender or mapping.is_bot("chatwoot", sender_id)
        author = "bot" if bot else "agent"
    elif mtype == "template":
        author = "bot"
    else:
        out.ignored = "activity_message"
        return
    out.add(f"cw:{conv}:msg:{msg_id}", "ticket.message", ts, ticket_id=conv, author=author,
            agent_id=sender_id if author == "agent" else None,
            public=data.get("private") is not True)  # fmt: skip


def _csat(out: Mapped, conv: str, msg_id: str, rating: Any, ts: int, agent: str | None) -> None:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise Unmappable("bad_rating", "CSAT rating is not an integer 1 to 5")
    out.add(f"cw:{conv}:csat:{msg_id}", "survey.response", ts, survey="csat", score=rating,
            ticket_id=conv, agent_id=agent)  # fmt: skip
