"""Zammad: trigger webhooks, which send a *snapshot* of the ticket (and the article
that fired the trigger), not an event. Events are the difference with the previous
snapshot of the same ticket, which the caller keeps (`cxpulse map`: per ticket, in a
compacted topic, on the partition's owner) and passes in.

    no previous snapshot   -> ticket.created (+ assigned, + status when not new/open)
    state changed          -> ticket.status_changed
    owner changed          -> ticket.assigned (group changed too: a transfer)
    an article             -> ticket.message (Customer / Agent; System ignored)

States: new, open -> open; pending reminder, pending close -> pending; closed ->
solved (Zammad has no "solved": a customer reply re-opens a closed ticket, which
is what the contract calls a reopen); merged, removed -> closed. Owner id 1 is
Zammad's system user "-" (nobody).

Ids are content ids (ticket id, article id, the state or owner and the snapshot's
`updated_at`), not `X-Zammad-Delivery`: a snapshot redelivered, or diffed again
after the stage lost its position, gives the same ids, so the worker counts each
change once. A snapshot older than the kept one (deliveries overtaking each
other) yields its article only, and does not replace the kept one.
"""

from __future__ import annotations

from typing import Any

from cxpulse.helpdesks.common import Mapped, Unmappable, dig, ident, require_id, second, to_ms
from cxpulse.helpdesks.mapping import Mapping
from cxpulse.jsontypes import JSON

STATE = {"new": None, "open": "open", "pending reminder": "pending",
         "pending close": "pending", "closed": "solved", "merged": "closed",
         "removed": "closed"}  # fmt: skip
PRIORITY = {"1 low": "low", "2 normal": "normal", "3 high": "high"}
NOBODY = "1"


def _name(value: Any) -> str | None:
    """Zammad sends some fields as names (`state: "open"`), some as objects."""
    if isinstance(value, dict):
        value = value.get("name")
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def snapshot_of(ticket: JSON) -> JSON:
    """What is kept for the next diff: small, no customer data."""
    return {
        "state": _name(ticket.get("state")),
        "owner": ident(ticket.get("owner_id")) or ident(dig(ticket, "owner", "id")),
        "group": _name(ticket.get("group")),
        "updated_at": to_ms(ticket.get("updated_at"), "ticket.updated_at"),
    }


def map_webhook(body: JSON, mapping: Mapping, previous: JSON | None
                ) -> Mapped:  # fmt: skip
    ticket = body.get("ticket")
    if not isinstance(ticket, dict):
        raise Unmappable("missing_field", "no 'ticket' snapshot in the delivery")
    tid = require_id(ticket.get("id"), "ticket.id")
    now = snapshot_of(ticket)
    ts = now["updated_at"]
    out = Mapped()
    owner = now["owner"] if now["owner"] != NOBODY else None
    if previous is None:
        created = to_ms(ticket.get("created_at"), "ticket.created_at")
        out.add(f"zm:{tid}:created", "ticket.created", created, ticket_id=tid,
                team=mapping.team("zammad", now["group"], now["group"]),
                channel=mapping.channel("zammad", _name(ticket.get("create_article_type"))),
                priority=PRIORITY.get(str(_name(ticket.get("priority")))),
                customer_id=ident(ticket.get("customer_id")))  # fmt: skip
        if owner is not None:
            out.add(f"zm:{tid}:owner:{owner}:{second(ts)}", "ticket.assigned", ts,
                    ticket_id=tid, agent_id=owner)  # fmt: skip
        status = _state(mapping, now["state"])
        if status not in (None, "open"):
            out.add(f"zm:{tid}:state:{status}:{second(ts)}", "ticket.status_changed", ts,
                    ticket_id=tid, status=status)  # fmt: skip
        out.snapshot = now
    elif ts >= previous.get("updated_at", 0):
        if now["state"] != previous.get("state"):
            status = _state(mapping, now["state"])
            if status is not None:
                out.add(f"zm:{tid}:state:{status}:{second(ts)}", "ticket.status_changed", ts,
                        ticket_id=tid, status=status)  # fmt: skip
        moved = now["group"] != previous.get("group")
        if owner is not None and (now["owner"] != previous.get("owner") or moved):
            team = mapping.team("zammad", now["group"], now["group"]) if moved else None
            out.add(f"zm:{tid}:owner:{owner}:{second(ts)}", "ticket.assigned", ts,
                    ticket_id=tid, agent_id=owner, team=team)  # fmt: skip
        out.snapshot = now if now != previous else None
    article = body.get("article")
    if isinstance(article, dict) and article:
        _article(out, tid, article, mapping)
    if not out.events:
        out.ignored = "no_tracked_change"
    return out


def _state(mapping: Mapping, state: str | None) -> str | None:
    if state is None:
        return None
    return mapping.zammad.statuses.get(state) or STATE.get(state)


def _article(out: Mapped, tid: str, a: JSON, mapping: Mapping) -> None:
    aid = require_id(a.get("id"), "article.id")
    sender = _name(a.get("sender"))
    author_id = ident(a.get("created_by_id")) or ident(dig(a, "created_by", "id"))
    if sender == "Customer":
        author = "customer"
    elif sender == "Agent":
        author = "bot" if mapping.is_bot("zammad", author_id) else "agent"
    else:
        return  # System articles (auto replies, notifications) are not conversation
    out.add(f"zm:{tid}:article:{aid}", "ticket.message", to_ms(a.get("created_at"),
            "article.created_at"), ticket_id=tid, author=author,
            agent_id=author_id if author == "agent" else None,
            public=a.get("internal") is not True)  # fmt: skip
