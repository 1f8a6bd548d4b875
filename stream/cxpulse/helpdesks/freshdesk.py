"""Freshdesk: product-event payloads (`onTicketCreate`, `onTicketUpdate`,
`onConversationCreate`) and satisfaction ratings.

Freshdesk's automation webhooks carry only what their JSON template names, so the
gateway expects the shape of Freshdesk's product events (what a Freshworks app's
`server.js` receives, and what the templates in docs/helpdesks.md produce):
`{"event": "onTicketUpdate", "timestamp": <epoch ms>, "data": {"ticket": {...,
"changes": {"status": [2, 4]}}}}`. Codes: status 2 open, 3 pending, 4 resolved,
5 closed (others: `statuses` of the mapping file); priority 1-4; `source` is
the channel. A conversation with `incoming: true` is the customer's, except
`source` 6 (the survey's feedback comment: counted as a reply it would reopen the
ticket and distort the wait time), which is ignored. CSAT: a
`satisfaction_rating` object whose `ratings.default_question` is Freshdesk's
3-point code (103 / 100 / -103), sent unchanged on the `three_point` scale.
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

STATUS = {"2": "open", "3": "pending", "4": "solved", "5": "closed"}
#: the same statuses by the names the activities export uses (`cxpulse import`)
STATUS_NAMES = {"open": "open", "pending": "pending", "resolved": "solved", "closed": "closed"}
PRIORITY = {"1": "low", "2": "normal", "3": "high", "4": "urgent"}
THREE_POINT = (103, 100, -103)


def _status(mapping: Mapping, code: Any) -> str | None:
    key = ident(code)
    if key is None:
        return None
    return (mapping.freshdesk.statuses.get(key) or STATUS.get(key)
            or STATUS_NAMES.get(key.lower()))  # fmt: skip


def map_webhook(body: JSON, mapping: Mapping) -> Mapped:
    event = body.get("event")
    data = obj_at(body, "data") or body
    out = Mapped()
    rating = obj_at(body, "satisfaction_rating") or obj_at(data, "satisfaction_rating")
    if rating:
        _rating(out, rating)
        return out
    if event == "onTicketCreate":
        _created(out, _ticket(data), mapping, body.get("timestamp"))
    elif event == "onTicketUpdate":
        _updated(out, _ticket(data), mapping, body.get("timestamp"))
    elif event == "onConversationCreate":
        conv = data.get("conversation")
        if not isinstance(conv, dict):
            raise Unmappable("missing_field", "no 'data.conversation' in the delivery")
        _conversation(out, conv, mapping)
    else:
        raise Unmappable("unknown_event", "not a Freshdesk ticket event "
                         "(onTicketCreate, onTicketUpdate, onConversationCreate)")  # fmt: skip
    return out


def _ticket(data: JSON) -> JSON:
    ticket = data.get("ticket")
    if not isinstance(ticket, dict):
        raise Unmappable("missing_field", "no 'data.ticket' in the delivery")
    return ticket


def _created(out: Mapped, t: JSON, mapping: Mapping, fallback: Any) -> None:
    ticket = require_id(t.get("id"), "ticket id")
    ts = to_ms(t.get("created_at") or fallback, "created_at")
    requester = ident(t.get("requester_id"))
    out.add(f"fd:{ticket}:created", "ticket.created", ts, ticket_id=ticket,
            team=mapping.team("freshdesk", ident(t.get("group_id")), None),
            channel=mapping.channel("freshdesk", ident(t.get("source"))),
            priority=PRIORITY.get(str(t.get("priority"))), customer_id=requester)  # fmt: skip
    agent = ident(t.get("responder_id"))
    if agent is not None:
        out.add(f"fd:{ticket}:assigned:{agent}:{second(ts)}", "ticket.assigned", ts,
                ticket_id=ticket, agent_id=agent)  # fmt: skip
    status = _status(mapping, t.get("status"))
    if status not in (None, "open"):
        out.add(f"fd:{ticket}:status:{status}:{second(ts)}", "ticket.status_changed", ts,
                ticket_id=ticket, status=status)  # fmt: skip


def _updated(out: Mapped, t: JSON, mapping: Mapping, fallback: Any) -> None:
    ticket = require_id(t.get("id"), "ticket id")
    ts = to_ms(t.get("updated_at") or fallback, "updated_at")
    changes = obj_at(t, "changes")
    if "status" in changes:
        new = changes["status"][-1] if isinstance(changes["status"], list) else changes["status"]
        status = _status(mapping, new)
        if status is not None:
            out.add(f"fd:{ticket}:status:{status}:{second(ts)}", "ticket.status_changed", ts,
                    ticket_id=ticket, status=status)  # fmt: skip
    if "responder_id" in changes or "group_id" in changes:
        agent = ident(t.get("responder_id"))
        if agent is not None:
            team = (mapping.team("freshdesk", ident(t.get("group_id")), None)
                    if "group_id" in changes else None)  # fmt: skip
            out.add(f"fd:{ticket}:assigned:{agent}:{second(ts)}", "ticket.assigned", ts,
                    ticket_id=ticket, agent_id=agent, team=team)  # fmt: skip
    if not out.events:
        out.ignored = "ticket_change_not_tracked"


def _conversation(out: Mapped, c: JSON, mapping: Mapping) -> None:
    ticket = require_id(c.get("ticket_id"), "ticket_id")
    conv = require_id(c.get("id"), "conversation id")
    ts = to_ms(c.get("created_at"), "created_at")
    if c.get("source") == 6:
        out.ignored = "survey_feedback_comment"
        return
    user = ident(c.get("user_id"))
    if c.get("incoming") is True:
        author = "customer"
    else:
        author = "bot" if mapping.is_bot("freshdesk", user) else "agent"
    out.add(f"fd:{ticket}:conv:{conv}", "ticket.message", ts, ticket_id=ticket, author=author,
            agent_id=user if author == "agent" else None,
            public=c.get("private") is not True)  # fmt: skip


def _rating(out: Mapped, r: JSON) -> None:
    ticket = require_id(r.get("ticket_id"), "ticket_id")
    rid = require_id(r.get("id"), "satisfaction rating id")
    score = dig(r, "ratings", "default_question")
    if score not in THREE_POINT or isinstance(score, bool):
        raise Unmappable("bad_rating", "ratings.default_question is not 103, 100 or -103")
    ts = to_ms(r.get("created_at"), "created_at")
    out.add(f"fd:{ticket}:csat:{rid}", "survey.response", ts, survey="csat",
            scale="three_point", score=score, ticket_id=ticket,
            agent_id=ident(r.get("agent_id")))  # fmt: skip
