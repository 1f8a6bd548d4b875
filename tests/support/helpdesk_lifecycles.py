"""One ticket's life as each helpdesk sends it: our own fixtures, in the vendors' shapes
(../shared/notes/helpdesk-shapes.md; field names and codes from the vendors' docs).

The same story for every vendor, in seconds after the creation at `t0`:

      0  created by the customer
     60  internal note by agent 200 (not a first response)
    120  a bot's public message (not a first response)
    300  assigned to agent 200
    600  agent 200 replies in public                  -> first response 600 s
    900  waiting on the customer (pending / snoozed)
   1200  the customer replies; the ticket is open again
   1500  agent replies and solves in one update      -> first resolution 1,500 s
   1800  the customer writes back; open again        -> one reopen
   2100  agent replies and solves again
   2400  the customer rates it: satisfied

What each vendor itself reports for this ticket (their definitions, calendar time;
docs/helpdesks.md): first reply time 600 s (Zendesk "first reply time", Chatwoot
"first response time" without a bot handoff, Freshdesk "first response time",
Zammad "first response"), first resolution time 1,500 s (Zendesk "first resolution
time"; Freshdesk and Zammad report the first close/resolve), 1 reopen, CSAT
satisfied (Zammad has no built-in survey: none).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

FRT_S, RESOLUTION_S, REOPENS = 600.0, 1500.0, 1
AGENT, CUSTOMER, BOT = 200, 100, 999
#: a mapping file for these fixtures (the group ids and the bot are the deployment's)
MAPPING_YAML = """\
default_team: elsewhere
zendesk: {teams: {"360001": billing}, bots: ["999"]}
chatwoot: {teams: {"3": chat}}
freshdesk: {teams: {"43000001": frontline}, bots: ["999"]}
zammad: {teams: {Users: support}, bots: ["999"]}
"""
TEAM = {"zendesk": "billing", "chatwoot": "chat", "freshdesk": "frontline", "zammad": "support"}


def iso(t: float, digits: int = 0) -> str:
    dt = datetime.fromtimestamp(t, UTC)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        frac = f"{t % 1:.9f}"[2:2 + digits]
        return f"{base}.{frac}Z"
    return base + "Z"


# ------------------------------------------------------------------------------- Zendesk


def zendesk(ticket: int, t0: float) -> list[dict[str, Any]]:
    tid = str(ticket)
    detail = {"id": tid, "group_id": "360001", "requester_id": str(CUSTOMER),
              "submitter_id": str(CUSTOMER), "priority": "HIGH", "status": "NEW",
              "via": {"channel": "mail"}, "assignee_id": None}  # fmt: skip

    def ev(kind: str, at: float, event: dict[str, Any], **changes: Any) -> dict[str, Any]:
        return {"account_id": 1, "id": str(uuid.uuid4()), "type": f"zen:event-type:ticket.{kind}",
                "subject": f"zen:ticket:{tid}", "time": iso(t0 + at, 9),
                "zendesk_event_version": "2022-11-06", "detail": {**detail, **changes},
                "event": event}  # fmt: skip

    def comment(at: float, cid: int, author: int, public: bool, staff: bool) -> dict[str, Any]:
        return ev("comment_added", at, {"comment": {
            "id": str(cid), "body": "...", "is_public": public,
            "author": {"id": str(author), "is_staff": staff, "name": "x"}}})  # fmt: skip

    def status(at: float, prev: str, cur: str) -> dict[str, Any]:
        return ev("status_changed", at, {"previous": prev, "current": cur}, status=cur)

    c = ticket * 100
    return [
        ev("created", 0, {}),
        comment(60, c + 1, AGENT, False, True),
        comment(120, c + 2, BOT, True, True),
        ev("agent_assignment_changed", 300, {"previous": None, "current": AGENT}),
        comment(600, c + 3, AGENT, True, True),
        status(900, "OPEN", "PENDING"),
        comment(1200, c + 4, CUSTOMER, True, False), status(1200, "PENDING", "OPEN"),
        comment(1500, c + 5, AGENT, True, True), status(1500, "OPEN", "SOLVED"),
        comment(1800, c + 6, CUSTOMER, True, False), status(1800, "SOLVED", "OPEN"),
        comment(2100, c + 7, AGENT, True, True), status(2100, "OPEN", "SOLVED"),
        # the trigger body docs/helpdesks.md gives for "satisfaction changed"
        {"type": "cxpulse:ticket.satisfaction", "ticket_id": tid, "rating": "good",
         "time": iso(t0 + 2400)},
    ]  # fmt: skip


def export_items(ticket: int, t0: float) -> list[dict[str, Any]]:
    """The lifecycle of helpdesk_lifecycles.zendesk as the incremental ticket-events
    export reports it (child events name the changed field as their key)."""
    c = ticket * 100

    def item(at: float, *children: dict[str, Any], updater: int = AGENT) -> dict[str, Any]:
        return {"id": int(at) + 1, "ticket_id": ticket, "timestamp": int(t0 + at),
                "created_at": iso(t0 + at), "updater_id": updater, "via": {"channel": "mail"},
                "child_events": list(children)}  # fmt: skip

    def comment(cid: int, author: int, public: bool = True) -> dict[str, Any]:
        return {"id": cid, "event_type": "Comment", "author_id": author, "public": public,
                "body": "..."}  # fmt: skip

    def change(**field: Any) -> dict[str, Any]:
        return {"id": 1, "event_type": "Change", **field}

    return [
        item(0, {"event_type": "Create", "status": "new"},
             {"event_type": "Create", "group_id": 360001},
             {"event_type": "Create", "priority": "high"},
             {"event_type": "Create", "requester_id": CUSTOMER}, updater=CUSTOMER),
        item(60, comment(c + 1, AGENT, public=False)),
        item(120, comment(c + 2, BOT), updater=BOT),
        item(300, change(assignee_id=AGENT, previous_value=None)),
        item(600, comment(c + 3, AGENT)),
        item(900, change(status="pending", previous_value="open")),
        item(1200, comment(c + 4, CUSTOMER), change(status="open"), updater=CUSTOMER),
        item(1500, comment(c + 5, AGENT), change(status="solved")),
        item(1800, comment(c + 6, CUSTOMER), change(status="open"), updater=CUSTOMER),
        item(2100, comment(c + 7, AGENT), change(status="solved")),
        item(2400, change(satisfaction_score="good"), updater=CUSTOMER),
    ]  # fmt: skip



# ------------------------------------------------------------------------------ Chatwoot


def chatwoot(conv: int, t0: float) -> list[dict[str, Any]]:
    meta = {"sender": {"id": CUSTOMER, "type": "contact"}, "assignee": None, "team": None}

    def conversation(event: str, at: float, status: str, **extra: Any) -> dict[str, Any]:
        return {"event": event, "id": conv, "inbox_id": 3, "channel": "Channel::WebWidget",
                "status": status, "priority": "high", "created_at": int(t0),
                "updated_at": t0 + at, "timestamp": int(t0 + at), "meta": meta,
                **extra}  # fmt: skip

    def message(at: float, mid: int, mtype: str, sender: dict[str, Any] | None,
                private: bool = False, **extra: Any) -> dict[str, Any]:  # fmt: skip
        return {"event": "message_created", "id": mid, "content": "...", "message_type": mtype,
                "private": private, "created_at": iso(t0 + at, 3), "sender": sender,
                "content_type": "text", "content_attributes": {},
                "conversation": {"id": conv, "inbox_id": 3, "channel": "Channel::WebWidget"},
                **extra}  # fmt: skip

    agent = {"id": AGENT, "name": "A", "type": "user"}
    customer = {"id": CUSTOMER, "name": "C", "type": "contact"}
    bot = {"id": 7, "name": "Captain", "type": "agent_bot"}
    m = conv * 100
    csat = message(2100, m + 8, "template", None, content_type="input_csat")
    rated = {**csat, "event": "message_updated", "updated_at": iso(t0 + 2400, 3),
             "content_attributes": {"submitted_values": {"csat_survey_response": {
                 "rating": 5, "feedback_message": "thanks"}}}}  # fmt: skip
    change = {"assignee_id": {"previous_value": None, "current_value": AGENT}}
    assigned = conversation("conversation_updated", 300, "open", changed_attributes=[change])
    assigned["meta"] = {**meta, "assignee": agent}
    return [
        conversation("conversation_created", 0, "open"),
        message(60, m + 1, "outgoing", agent, private=True),
        message(120, m + 2, "outgoing", bot),
        assigned,
        message(600, m + 3, "outgoing", agent),
        conversation("conversation_status_changed", 900, "snoozed"),
        message(1200, m + 4, "incoming", customer),
        conversation("conversation_status_changed", 1200, "open"),
        message(1500, m + 5, "outgoing", agent),
        conversation("conversation_status_changed", 1500, "resolved"),
        message(1800, m + 6, "incoming", customer),
        conversation("conversation_status_changed", 1800, "open"),
        message(2100, m + 7, "outgoing", agent),
        conversation("conversation_status_changed", 2100, "resolved"),
        csat, rated,
    ]  # fmt: skip


# ----------------------------------------------------------------------------- Freshdesk


def freshdesk(ticket: int, t0: float) -> list[dict[str, Any]]:
    base = {"id": ticket, "group_id": 43000001, "source": 1, "priority": 3, "status": 2,
            "requester_id": CUSTOMER, "responder_id": None, "created_at": iso(t0)}  # fmt: skip

    def update(at: float, **changes: Any) -> dict[str, Any]:
        t = {**base, "updated_at": iso(t0 + at)}
        for name, (_, new) in changes.items():
            t[name] = new
        return {"event": "onTicketUpdate", "timestamp": int((t0 + at) * 1000),
                "data": {"ticket": {**t, "changes": changes}}}  # fmt: skip

    def conv(at: float, cid: int, user: int, incoming: bool, private: bool = False,
             source: int = 0) -> dict[str, Any]:  # fmt: skip
        return {"event": "onConversationCreate", "timestamp": int((t0 + at) * 1000),
                "data": {"conversation": {"id": cid, "ticket_id": ticket, "user_id": user,
                                          "incoming": incoming, "private": private,
                                          "source": source, "body_text": "...",
                                          "created_at": iso(t0 + at)}}}  # fmt: skip

    c = ticket * 100
    return [
        {"event": "onTicketCreate", "timestamp": int(t0 * 1000), "data": {"ticket": base}},
        conv(60, c + 1, AGENT, False, private=True, source=2),
        conv(120, c + 2, BOT, False),
        update(300, responder_id=[None, AGENT]),
        conv(600, c + 3, AGENT, False),
        update(900, status=[2, 3]),
        conv(1200, c + 4, CUSTOMER, True), update(1200, status=[3, 2]),
        conv(1500, c + 5, AGENT, False), update(1500, status=[2, 4]),
        conv(1800, c + 6, CUSTOMER, True), update(1800, status=[4, 2]),
        conv(2100, c + 7, AGENT, False), update(2100, status=[2, 4]),
        # the survey's comment arrives as an incoming conversation (source 6): not a reply
        conv(2400, c + 8, CUSTOMER, True, source=6),
        {"satisfaction_rating": {"id": c + 9, "ticket_id": ticket, "agent_id": AGENT,
                                 "group_id": 43000001, "ratings": {"default_question": 103},
                                 "created_at": iso(t0 + 2400)}},
    ]  # fmt: skip


# -------------------------------------------------------------------------------- Zammad


def zammad(ticket: int, t0: float) -> list[dict[str, Any]]:
    def snap(at: float, state: str, owner: int, article: dict[str, Any] | None
             ) -> dict[str, Any]:  # fmt: skip
        return {"ticket": {"id": ticket, "number": f"31{ticket:03d}", "title": "...",
                           "group": {"name": "Users"}, "state": state,
                           "priority": {"name": "3 high"}, "owner_id": owner,
                           "customer_id": CUSTOMER, "create_article_type": "email",
                           "created_at": iso(t0), "updated_at": iso(t0 + at, 3)},
                "article": article}  # fmt: skip

    def art(at: float, aid: int, sender: str, by: int, internal: bool = False
            ) -> dict[str, Any]:  # fmt: skip
        return {"id": aid, "ticket_id": ticket, "sender": sender, "internal": internal,
                "type": "email", "created_by_id": by, "created_at": iso(t0 + at, 3)}

    a = ticket * 100
    return [
        snap(0, "new", 1, art(0, a + 1, "Customer", CUSTOMER)),
        snap(60, "new", 1, art(60, a + 2, "Agent", AGENT, internal=True)),
        snap(120, "new", 1, art(120, a + 3, "Agent", BOT)),
        snap(300, "new", AGENT, None),
        snap(600, "open", AGENT, art(600, a + 4, "Agent", AGENT)),
        snap(900, "pending reminder", AGENT, None),
        snap(1200, "open", AGENT, art(1200, a + 5, "Customer", CUSTOMER)),
        snap(1500, "closed", AGENT, art(1500, a + 6, "Agent", AGENT)),
        snap(1800, "open", AGENT, art(1800, a + 7, "Customer", CUSTOMER)),
        snap(2100, "closed", AGENT, art(2100, a + 8, "Agent", AGENT)),
    ]


LIFECYCLES = {"zendesk": zendesk, "chatwoot": chatwoot, "freshdesk": freshdesk,
              "zammad": zammad}  # fmt: skip
#: CSAT each vendor's lifecycle ends with: (scale, score) as mapped, or None
CSAT = {"zendesk": ("two_point", 1), "chatwoot": ("five_point", 5),
        "freshdesk": ("three_point", 103), "zammad": None}  # fmt: skip
