"""API export records of Chatwoot, Freshdesk and Zammad -> the webhook bodies the live path maps.

Why re-shape instead of mapping exports directly: the events then come out of the
very mapper `cxpulse map` runs (`cxpulse.helpdesks`), so their ids and fields are the
live path's by construction, and history imported over a period the webhooks
covered is a duplicate, not a second count.

An export is the ticket's state *now*; its history is a separate request per
vendor. What is re-shaped:

* Chatwoot (`GET .../conversations` -> `{"data": {"payload": [...]}}`, `GET
  .../conversations/{id}/messages` -> `{"payload": [...]}`): the creation,
  messages, an answered CSAT (`input_csat` message with `submitted_values`) as
  its offer and its response, and the status history from the activity messages
  (message_type 2) among the messages: "Conversation was marked resolved by ..."
  (and the other texts of `CHATWOOT_ACTIVITY`, Chatwoot's `en` locale) become the
  `conversation_status_changed` body of that change at the message's time, and
  an agent's assignment ("Assigned to A by B", "... via TEAM by B", "A
  self-assigned ...") the `conversation_updated` body, the agent's id found by
  name (`learn_names`: `GET .../agents`, message senders, assignees). Not
  imported: a team change alone, unassignments, agents not found by name, and
  `bot` on the creation (the export's `status` is today's).
* Freshdesk (`GET /api/v2/tickets?include=stats`, `GET /api/v2/tickets/{id}/
  conversations`, `GET /api/v2/surveys/satisfaction_ratings`, and the ticket
  activities export `GET /api/v2/export/ticket_activities?created_at=DAY`, whose
  file holds `{"activities_data": [...]}`): conversations, ratings, the resolution
  at `stats.resolved_at`, and from the activities every status change (by name)
  and agent or group change as the `onTicketUpdate` body of that update.
* Zammad (`GET /api/v1/tickets/{id}?expand=true`, `GET /api/v1/ticket_articles/
  by_ticket/{id}?expand=true`, `GET /api/v1/ticket_history/{id}`): articles, the
  close at `close_at`, and from the history every state, owner and group change,
  one snapshot per update diffed against the one before it, as the live stage
  diffs the trigger's snapshots.

Ids: a status change's id carries the second it happened (`common.second`). The
history's second is the webhook's when the vendor writes both in the same second
(Freshdesk's activity and the update, Zammad's history entry and the ticket's
`updated_at`: same transaction), so those are the live path's ids; Chatwoot's
activity message is written by a background job after the change, and may be
dated a second or more later: then the same change has two ids. What that does
on overlap (webhooks and an import of the same period) is in docs/helpdesks.md:
the core treats a change to the status a ticket already has as no transition,
so each ticket's KPIs change once (tests/unit/test_import_exports.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cxpulse.jsontypes import JSON


def unwrap(vendor: str, record: JSON) -> Iterator[JSON]:
    """The objects of an API page (`payload` / `data.payload` lists) or the record itself."""
    if vendor == "chatwoot":
        data = record.get("data")
        payload = data.get("payload") if isinstance(data, dict) else record.get("payload")
        if isinstance(payload, list) and "event" not in record:
            yield from (p for p in payload if isinstance(p, dict))
            return
    yield record


def is_export(vendor: str, obj: JSON) -> bool:
    """An API object rather than a webhook body (which names its event or wraps a ticket)."""
    if vendor == "zammad" and isinstance(obj.get("history"), list):
        return True  # GET /api/v1/ticket_history/{id}
    if vendor == "freshdesk" and isinstance(obj.get("activities_data"), list):
        return True  # the ticket activities export file
    if vendor == "chatwoot":
        return "event" not in obj and "csat_survey_response" not in obj and (
            "message_type" in obj or "inbox_id" in obj or is_chatwoot_agent(obj))  # fmt: skip
    if vendor == "freshdesk":
        return "event" not in obj and "satisfaction_rating" not in obj and (
            "requester_id" in obj or "incoming" in obj or "ratings" in obj)  # fmt: skip
    if vendor == "zammad":
        return "ticket" not in obj and ("number" in obj or "sender" in obj
                                        or "sender_id" in obj)  # fmt: skip
    return False


Body = JSON


def is_chatwoot_agent(obj: Body) -> bool:
    """An agent of `GET /api/v1/accounts/{a}/agents` (a user, not a message or conversation)."""
    return "role" in obj and "name" in obj and "message_type" not in obj and "inbox_id" not in obj


def learn_names(vendor: str, obj: Body, names: dict[str, str]) -> None:
    """Chatwoot: agent name -> id, from an agents list entry, a message's user sender or a
    conversation's assignee (activity messages name agents, the events need ids)."""
    if vendor != "chatwoot":
        return
    people = [obj] if is_chatwoot_agent(obj) else []
    sender = obj.get("sender")
    if isinstance(sender, dict) and sender.get("type") == "user":
        people.append(sender)
    meta = obj.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("assignee"), dict):
        people.append(meta["assignee"])
    for person in people:
        pid = person.get("id")
        for key in ("name", "available_name"):
            name = person.get(key)
            if isinstance(name, str) and name and pid is not None:
                names.setdefault(name, str(pid))


def as_webhooks(vendor: str, obj: Body, names: dict[str, str] | None = None
                ) -> list[tuple[Body, Body | None]]:  # fmt: skip
    """The webhook bodies that carry what this export object dates (see the module doc),
    each with the previous Zammad snapshot to diff it against (None: the first).
    `names`: Chatwoot's agent names -> ids (`learn_names`)."""
    if vendor == "chatwoot":
        if is_chatwoot_agent(obj):
            return []
        return [(b, None) for b in _chatwoot(obj, names or {})]
    if vendor == "freshdesk":
        if "activities_data" in obj:
            return [(b, None) for b in _freshdesk_activities(obj["activities_data"])]
        return [(b, None) for b in _freshdesk(obj)]
    if vendor == "zammad":
        if "history" in obj:
            return _zammad_history(obj["history"])
        return _zammad(obj)
    return []


#: Chatwoot's activity messages of a status change (its `en` locale,
#: `conversations.activity.status.*`, `captain.*`, `agent_bot.*`): text start -> status
CHATWOOT_ACTIVITY = (
    ("Conversation was marked resolved by", "resolved"),
    ("Conversation was resolved by", "resolved"),
    ("Conversation was reopened by", "open"),
    ("Conversation was marked open", "open"),
    ("System reopened the conversation", "open"),
    ("Conversation was snoozed by", "snoozed"),
)


def _chatwoot_activity(obj: JSON, names: dict[str, str]) -> list[JSON]:
    """An activity message (message_type 2) that says a status changed or an agent was
    assigned -> the `conversation_status_changed` / `conversation_updated` body of that
    change, at the message's time."""
    content = obj.get("content")
    if not isinstance(content, str):
        return []
    conv, at = obj.get("conversation_id"), obj.get("created_at")
    for start, status in CHATWOOT_ACTIVITY:
        if content.startswith(start):
            return [{"event": "conversation_status_changed", "id": conv, "status": status,
                     "updated_at": at}]  # fmt: skip
    agent, team = _chatwoot_assignee(content, names)
    if agent is None:
        return []
    changed: list[JSON] = [{"assignee_id": {"current_value": agent}}]
    meta: JSON = {"assignee": {"id": agent}}
    if team is not None:
        changed.append({"team_id": {"current_value": team}})
        meta["team"] = {"name": team}
    return [{"event": "conversation_updated", "id": conv, "inbox_id": obj.get("inbox_id"),
             "updated_at": at, "changed_attributes": changed, "meta": meta}]  # fmt: skip


def _chatwoot_assignee(content: str, names: dict[str, str]) -> tuple[str | None, str | None]:
    """(agent id, team name) of an assignment's activity text (Chatwoot's `en` locale,
    `conversations.activity.assignee.*` / `team.assigned_with_assignee`): "Assigned to
    {agent} by {user}", "Assigned to {agent} via {team} by {user}", "{user} self-assigned
    this conversation". An agent whose name is not known, or "Assigned to {team} by
    {user}" (a team alone), gives nothing."""
    self_assigned = " self-assigned this conversation"
    if content.endswith(self_assigned):
        return names.get(content.removesuffix(self_assigned)), None
    if not content.startswith("Assigned to ") or " by " not in content:
        return None, None
    target = content.removeprefix("Assigned to ").rsplit(" by ", 1)[0]
    if target in names:
        return names[target], None
    agent, via, team = target.partition(" via ")
    if via and agent in names:
        return names[agent], team
    return None, None


def _chatwoot(obj: JSON, names: dict[str, str]) -> list[JSON]:
    if "message_type" in obj:
        if obj.get("message_type") in (2, "activity"):
            # not a message; a status change or assignment when its text says so
            return _chatwoot_activity(obj, names) or [{**obj, "event": "message_created"}]
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


def _freshdesk(obj: JSON) -> list[JSON]:
    if "incoming" in obj:
        return [{"event": "onConversationCreate", "data": {"conversation": obj}}]
    if "ratings" in obj:  # GET /api/v2/surveys/satisfaction_ratings: the webhook's object
        return [{"satisfaction_rating": obj}]
    created = {k: v for k, v in obj.items() if k not in ("status", "responder_id")}
    bodies: list[JSON] = [{"event": "onTicketCreate", "data": {"ticket": created}}]
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


#: the attributes of Zammad's ticket history the live diff looks at (`snapshot_of`)
ZAMMAD_TRACKED = ("state", "owner", "group")


def _zammad_history(entries: list[Any]) -> list[tuple[Body, Body | None]]:
    """`GET /api/v1/ticket_history/{id}` -> one (snapshot, previous snapshot) pair per update.

    Zammad records each changed attribute of an update as its own entry (`object`
    "Ticket", `type` "updated", `attribute`, `value_from`/`value_to`, `id_from`/`id_to`,
    `created_at`). The entries of one update (same ticket, same `created_at` second)
    become one snapshot, diffed against the one before it: what the live path's diff of
    the trigger's snapshots gives, with the same ids where the update's `created_at`
    and the webhook snapshot's `updated_at` fall in the same second. The state before
    the first change of an attribute is that change's `value_from` / `id_from`; an
    owner never changed is nobody (Zammad's user 1), as at a ticket's creation.
    """
    from cxpulse.helpdesks.zammad import NOBODY, snapshot_of

    changes = [e for e in entries if isinstance(e, dict) and e.get("object") == "Ticket"
               and e.get("type") == "updated" and e.get("attribute") in ZAMMAD_TRACKED
               and _second_of(e) is not None]  # fmt: skip
    changes.sort(key=lambda e: (str(e.get("created_at")), _int(e.get("id"))))
    running: dict[str, JSON] = {}
    for e in changes:  # each attribute's value before its first change
        ticket = running.setdefault(str(e.get("o_id")), {"owner_id": NOBODY})
        field, before = _zammad_value(e, "from")
        ticket.setdefault(field, before)
    out: list[tuple[Body, Body | None]] = []
    update: list[JSON] = []
    for i, e in enumerate(changes):
        update.append(e)
        nxt = changes[i + 1] if i + 1 < len(changes) else None
        if nxt is not None and (nxt.get("o_id"), _second_of(nxt)) == (e.get("o_id"),
                                                                      _second_of(e)):  # fmt: skip
            continue
        tid = str(e.get("o_id"))
        ticket = running[tid]
        before = snapshot_of({**ticket, "updated_at": e.get("created_at")})
        for change in update:
            field, value = _zammad_value(change, "to")
            ticket[field] = value
        now = {"id": e.get("o_id"), **ticket, "updated_at": e.get("created_at")}
        out.append(({"ticket": now}, before))
        update = []
    return out


def _zammad_value(entry: JSON, side: str) -> tuple[str, Any]:
    """(snapshot field, value) of one side of a history entry: state and group by name,
    the owner by id."""
    attribute = str(entry.get("attribute"))
    if attribute == "owner":
        return "owner_id", entry.get(f"id_{side}")
    return attribute, entry.get(f"value_{side}")


def _second_of(entry: JSON) -> int | None:
    from cxpulse.helpdesks import Unmappable
    from cxpulse.helpdesks.common import to_ms

    try:
        return to_ms(entry.get("created_at"), "history created_at") // 1000
    except Unmappable:
        return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _freshdesk_activities(activities: list[Any]) -> list[Body]:
    """The ticket activities export (`GET /api/v2/export/ticket_activities?created_at=DAY`
    names a file holding `{"activities_data": [...]}`) -> `onTicketUpdate` bodies.

    Each activity is one update of one ticket: `performed_at` ("DD-MM-YYYY HH:MM:SS
    +0000"), and in `activity` what changed: `status` by name ("Open", "Pending",
    "Resolved", "Closed", or a custom status's name), `agent_id`, `group` by name.
    The live mapper reads the body, so the ids are the webhook's (status and agent,
    and the second of the update). Not taken from here: the ticket's creation
    (`new_ticket`: the tickets export has its fields) and notes (the conversations
    export has them, with their ids).
    """
    out: list[Body] = []
    responder: JSON = {}  # ticket -> its agent so far (a group change keeps it)
    timed = [(_freshdesk_time(a.get("performed_at")), a) for a in activities
             if isinstance(a, dict)]  # fmt: skip
    timed.sort(key=lambda x: str(x[0]))
    for when, a in timed:
        change = a.get("activity")
        if not isinstance(change, dict):
            continue
        tid = str(a.get("ticket_id"))
        if change.get("agent_id") is not None:
            responder[tid] = change["agent_id"]
        if change.get("new_ticket"):
            continue
        changes: JSON = {}
        ticket: JSON = {"id": a.get("ticket_id"), "updated_at": when}
        if isinstance(change.get("status"), str):
            changes["status"] = [None, change["status"]]
        if change.get("agent_id") is not None:
            changes["responder_id"] = [None, change["agent_id"]]
            ticket["responder_id"] = change["agent_id"]
        if isinstance(change.get("group"), str):
            # the export names the group; the mapping file's `teams` may list it by name
            changes["group_id"] = [None, change["group"]]
            ticket["group_id"] = change["group"]
            ticket.setdefault("responder_id", responder.get(tid))
        if changes:
            ticket["changes"] = changes
            out.append({"event": "onTicketUpdate", "data": {"ticket": ticket}})
    return out


def _freshdesk_time(value: Any) -> Any:
    """"13-06-2019 10:33:53 +0000" (the activities export) -> ISO 8601; anything else as is
    (the mapper refuses what is not a time)."""
    from datetime import datetime

    if isinstance(value, str):
        try:
            return datetime.strptime(value.strip(), "%d-%m-%Y %H:%M:%S %z").isoformat()
        except ValueError:
            return value
    return value
