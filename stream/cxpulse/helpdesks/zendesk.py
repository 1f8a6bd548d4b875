"""Zendesk: event-subscription webhooks (`zen:event-type:ticket.*`) and incremental export.

Live path: a webhook subscribed to ticket events sends one delivery per event,
`{"type": "zen:event-type:ticket.comment_added", "id": <uuid>, "time": ...,
"detail": <the ticket>, "event": <the change>}`. Backfill (`cxpulse import zendesk`,
the poller): the incremental ticket-events export, whose `child_events` are the
same changes as audit events (`Create`, `Comment`, `Change` of `status`,
`assignee_id`, ...).

Ids: the delivery's uuid is not in the export, so ids come from what both paths
carry: the ticket id, the comment id (a comment's id is its audit event id in
both), and for a change its field, new value and the second it happened (the
webhook's `time` has nanoseconds, the export seconds). A redelivered webhook and
an export over the same hour give the same ids.

CSAT: Zendesk has no satisfaction event type to subscribe to; a trigger on
"Satisfaction changed" whose webhook body is (docs/helpdesks.md)
`{"type": "cxpulse:ticket.satisfaction", "ticket_id": "{{ticket.id}}",
"rating": "{{satisfaction.current_rating}}", "time": "{{ticket.updated_at_with_timestamp}}"}`
is mapped: `good` / `bad` to a `two_point` CSAT response, `offered` to `survey.offered`.
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

PREFIX = "zen:event-type:ticket."
STATUS = {"open": "open", "pending": "pending", "hold": "on_hold", "solved": "solved",
          "closed": "closed"}  # fmt: skip
PRIORITY = {"low": "low", "normal": "normal", "high": "high", "urgent": "urgent"}


def _priority(value: Any) -> str | None:
    return PRIORITY.get(str(value).lower()) if value is not None else None


def _status(mapping: Mapping, value: Any, custom: Any = None) -> str | None:
    """A standard status (NEW: none, the ticket is new until its first change), or a
    custom status id's category from the mapping file."""
    own = mapping.zendesk.statuses
    if ident(custom) is not None and ident(custom) in own:
        return own[str(ident(custom))]
    if value is None:
        return None
    return own.get(str(value)) or STATUS.get(str(value).lower())


def map_webhook(body: JSON, mapping: Mapping) -> Mapped:
    kind = body.get("type")
    if kind == "cxpulse:ticket.satisfaction":
        return _satisfaction(body, mapping)
    if not isinstance(kind, str) or not kind.startswith(PREFIX):
        raise Unmappable("unknown_event", "not a Zendesk ticket event (zen:event-type:ticket.*)")
    detail = body.get("detail")
    if not isinstance(detail, dict):
        raise Unmappable("missing_field", "no 'detail' (the ticket) in the delivery")
    ticket = require_id(detail.get("id"), "ticket id (detail.id)")
    ts = to_ms(body.get("time"), "time")
    event = obj_at(body, "event")
    name = kind.removeprefix(PREFIX)
    out = Mapped()
    if name == "created":
        _created(out, ticket, ts, detail, mapping)
    elif name == "comment_added":
        comment = obj_at(event, "comment")
        author = obj_at(comment, "author")
        _comment(out, ticket, ts, require_id(comment.get("id"), "comment id"),
                 ident(author.get("id")), bool(author.get("is_staff")),
                 comment.get("is_public", True) is not False, mapping)  # fmt: skip
    elif name in ("status_changed", "custom_status_changed"):
        current = event.get("current")
        custom = name == "custom_status_changed"
        status = _status(mapping, None if custom else current, current if custom else None)
        if status is None:
            out.ignored = "status_not_tracked"
        else:
            out.add(f"zd:{ticket}:status:{status}:{second(ts)}", "ticket.status_changed", ts,
                    ticket_id=ticket, status=status)  # fmt: skip
    elif name == "agent_assignment_changed":
        agent = ident(event.get("current"))
        if agent is None:
            out.ignored = "unassigned"  # the contract has no unassignment
        else:
            out.add(f"zd:{ticket}:assigned:{agent}:{second(ts)}", "ticket.assigned", ts,
                    ticket_id=ticket, agent_id=agent)  # fmt: skip
    elif name == "group_assignment_changed":
        agent = ident(detail.get("assignee_id"))
        group = ident(event.get("current"))
        if agent is None or group is None:
            out.ignored = "transfer_without_assignee"
        else:
            out.add(f"zd:{ticket}:assigned:{agent}:{second(ts)}", "ticket.assigned", ts,
                    ticket_id=ticket, agent_id=agent,
                    team=mapping.team("zendesk", group))  # fmt: skip
    else:
        out.ignored = f"event_{name}"[:64]
    return out


def _created(out: Mapped, ticket: str, ts: int, detail: JSON, mapping: Mapping
             ) -> None:  # fmt: skip
    requester, submitter = ident(detail.get("requester_id")), ident(detail.get("submitter_id"))
    out.add(f"zd:{ticket}:created", "ticket.created", ts, ticket_id=ticket,
            team=mapping.team("zendesk", ident(detail.get("group_id"))),
            channel=mapping.channel("zendesk", dig(detail, "via", "channel")),
            priority=_priority(detail.get("priority")),
            customer_id=requester,
            created_by="agent" if submitter and requester and submitter != requester
            else None)  # fmt: skip
    agent = ident(detail.get("assignee_id"))
    if agent is not None:
        out.add(f"zd:{ticket}:assigned:{agent}:{second(ts)}", "ticket.assigned", ts,
                ticket_id=ticket, agent_id=agent)  # fmt: skip
    # created already waiting or solved (an agent's ticket): that status, at creation;
    # created new or open: none (open is what `new` already means to the KPIs)
    status = _status(mapping, detail.get("status"),
                     detail.get("custom_status_id") or detail.get("custom_status"))
    if status not in (None, "open"):
        out.add(f"zd:{ticket}:status:{status}:{second(ts)}", "ticket.status_changed", ts,
                ticket_id=ticket, status=status)  # fmt: skip


def _comment(out: Mapped, ticket: str, ts: int, comment_id: str, author: str | None,
             staff: bool, public: bool, mapping: Mapping) -> None:  # fmt: skip
    who = "bot" if mapping.is_bot("zendesk", author) else "agent" if staff else "customer"
    out.add(f"zd:{ticket}:comment:{comment_id}", "ticket.message", ts, ticket_id=ticket,
            author=who, agent_id=author if who == "agent" else None, public=public)  # fmt: skip


def _satisfaction(body: JSON, mapping: Mapping) -> Mapped:
    ticket = require_id(body.get("ticket_id"), "ticket_id")
    ts = to_ms(body.get("time"), "time")
    rating = str(body.get("rating", "")).strip().lower()
    out = Mapped()
    if rating in ("good", "bad"):
        out.add(f"zd:{ticket}:csat:{rating}:{second(ts)}", "survey.response", ts,
                survey="csat", scale="two_point", score=1 if rating == "good" else 0,
                ticket_id=ticket)  # fmt: skip
    elif rating == "offered":
        out.add(f"zd:{ticket}:csat-offered:{second(ts)}", "survey.offered", ts, survey="csat",
                scale="two_point", ticket_id=ticket)  # fmt: skip
    elif rating == "unoffered":
        out.ignored = "survey_unoffered"
    else:
        raise Unmappable("bad_rating", "rating is not good, bad, offered or unoffered")
    return out


# --- backfill: the incremental ticket-events export ----------------------------------------


def map_export_event(item: JSON, mapping: Mapping, staff_by_user: dict[str, bool],
                     requesters: dict[str, str] | None = None) -> Mapped:  # fmt: skip
    """One `ticket_events` item of `/api/v2/incremental/ticket_events?include=comment_events`.

    `staff_by_user`: user id -> is staff (the export does not say; the caller
    passes the `users` side-load when it has it: an author not in it who is not the
    ticket's requester counts as staff). `requesters`: ticket -> requester id, kept by
    the caller across items (only the creation names the requester)."""
    requesters = {} if requesters is None else requesters
    ticket = require_id(item.get("ticket_id"), "ticket_id")
    ts = to_ms(item.get("created_at"), "created_at")
    updater = ident(item.get("updater_id"))
    out = Mapped()
    children = item.get("child_events") or []
    snapshot: JSON = {}
    for child in children:
        if isinstance(child, dict) and child.get("event_type") == "Create":
            snapshot.update(_fields(child))
    if ident(snapshot.get("requester_id")) is not None:
        requesters[ticket] = str(ident(snapshot.get("requester_id")))
    for child in children:
        if not isinstance(child, dict):
            continue
        etype = child.get("event_type")
        if etype == "Create" and "status" in snapshot and not any(
            e["type"] == "ticket.created" for e in out.events
        ):
            detail = {"group_id": snapshot.get("group_id"), "priority": snapshot.get("priority"),
                      "requester_id": snapshot.get("requester_id"), "submitter_id": updater,
                      "assignee_id": snapshot.get("assignee_id"), "status": snapshot.get("status"),
                      "via": {"channel": dig(item, "via", "channel")}}  # fmt: skip
            _created(out, ticket, ts, detail, mapping)
        elif etype == "Comment":
            author = ident(child.get("author_id")) or updater
            staff = staff_by_user.get(author or "", author != requesters.get(ticket))
            _comment(out, ticket, ts, require_id(child.get("id"), "comment id"), author,
                     staff, child.get("public", True) is not False, mapping)  # fmt: skip
            continue
        changed = _fields(child) if etype == "Change" else {}
        if "status" in changed:
            status = _status(mapping, changed["status"])
            if status is not None:
                out.add(f"zd:{ticket}:status:{status}:{second(ts)}", "ticket.status_changed",
                        ts, ticket_id=ticket, status=status)  # fmt: skip
        if "assignee_id" in changed:
            agent = ident(changed["assignee_id"])
            if agent is not None:
                out.add(f"zd:{ticket}:assigned:{agent}:{second(ts)}", "ticket.assigned", ts,
                        ticket_id=ticket, agent_id=agent)  # fmt: skip
        if "satisfaction_score" in changed:
            rating = str(changed["satisfaction_score"]).lower()
            if rating in ("good", "bad"):
                out.add(f"zd:{ticket}:csat:{rating}:{second(ts)}", "survey.response", ts,
                        survey="csat", scale="two_point", score=1 if rating == "good" else 0,
                        ticket_id=ticket)  # fmt: skip
            elif rating == "offered":
                out.add(f"zd:{ticket}:csat-offered:{second(ts)}", "survey.offered", ts,
                        survey="csat", scale="two_point", ticket_id=ticket)  # fmt: skip
    if not out.events:
        out.ignored = "no_tracked_change"
    return out


#: ticket fields a child event may carry (the export names the field as the key;
#: audits as `field_name` / `value`)
_FIELDS = ("status", "assignee_id", "group_id", "priority", "requester_id",
           "satisfaction_score", "custom_status_id")  # fmt: skip


def _fields(child: JSON) -> JSON:
    if "field_name" in child:
        return {str(child["field_name"]): child.get("value")}
    return {name: child[name] for name in _FIELDS if name in child}
