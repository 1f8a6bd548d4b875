"""`cxpulse import` of Chatwoot, Freshdesk and Zammad API exports: the events of a ticket
equal, id for id and field for field, those the webhook path (`cxpulse map`) makes of
the same ticket (`tests/support/helpdesk_lifecycles.py`); what an export cannot date
(status history, assignments: `cxpulse.importer.exports`) is absent, not invented.

The exports are written here in the shapes of each vendor's REST API documentation:
Chatwoot `GET /api/v1/accounts/{a}/conversations` (`{"data": {"meta", "payload"}}`) and
`.../conversations/{id}/messages` (`{"meta", "payload"}`, message_type as integers,
unix-second times); Freshdesk `GET /api/v2/tickets?include=stats`, `/tickets/{id}/
conversations`, `/surveys/satisfaction_ratings` (arrays, ISO times, numeric codes);
Zammad `GET /api/v1/tickets/{id}?expand=true` and `/ticket_articles/by_ticket/{id}?
expand=true` (names instead of ids, `close_at`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cxpulse.cli import main
from cxpulse.helpdesks import load_mapping

from tests.support.helpdesk_lifecycles import AGENT, BOT, CUSTOMER, MAPPING_YAML, iso
from tests.support.helpdesk_lifecycles import chatwoot as chatwoot_webhooks
from tests.support.helpdesk_lifecycles import freshdesk as freshdesk_webhooks
from tests.support.helpdesk_lifecycles import zammad as zammad_webhooks
from tests.unit.test_helpdesks import map_all, report

T0 = 1_795_000_000.0


def chatwoot_export(conv: int, shift: int = 0, t0: float = T0) -> list[Any]:
    """`shift`: seconds after the change its activity message is dated (Chatwoot writes
    it from a background job)."""
    agent = {"id": AGENT, "name": "A", "available_name": "A", "type": "user"}
    customer = {"id": CUSTOMER, "name": "C", "type": "contact"}
    m = conv * 100

    def msg(at: int, mid: int, mtype: int, sender: dict[str, Any] | None,
            private: bool = False, **extra: Any) -> dict[str, Any]:  # fmt: skip
        return {"id": mid, "content": "...", "inbox_id": 3, "conversation_id": conv,
                "message_type": mtype, "content_type": "text", "content_attributes": {},
                "created_at": int(t0) + at, "updated_at": int(t0) + at, "private": private,
                "status": "sent", "source_id": None, "sender": sender, **extra}  # fmt: skip

    conversations = {"data": {"meta": {"mine_count": 1, "all_count": 1}, "payload": [{
        "id": conv, "account_id": 1, "inbox_id": 3, "status": "resolved", "priority": "high",
        "created_at": int(t0), "timestamp": int(t0) + 2400, "labels": [],
        "meta": {"sender": customer, "channel": "Channel::WebWidget", "assignee": agent,
                 "team": None, "hmac_verified": False},
        "messages": [], "unread_count": 0, "first_reply_created_at": int(t0) + 600}]}}
    csat = msg(2100, m + 8, 3, None, content_type="input_csat", updated_at=int(t0) + 2400,
               content_attributes={"submitted_values": {"csat_survey_response": {
                   "rating": 5, "feedback_message": "thanks"}}})  # fmt: skip
    def activity(at: int, mid: int, text: str) -> dict[str, Any]:
        """An activity message (message_type 2) in the words of Chatwoot's en locale."""
        return msg(at + shift, mid, 2, None, content=text)

    messages = {"meta": {"contact": {"id": CUSTOMER}}, "payload": [
        msg(60, m + 1, 1, agent, private=True), msg(120, m + 2, 1, {"id": 7, "type": "agent_bot"}),
        activity(300, m + 49, "Assigned to A by Admin"),  # A: the sender of m + 1
        msg(600, m + 3, 1, agent),
        activity(900, m + 50, "Conversation was snoozed by A"),
        msg(1200, m + 4, 0, customer),
        activity(1200, m + 51, "System reopened the conversation due to a new incoming message."),
        msg(1500, m + 5, 1, agent), activity(1500, m + 52, "Conversation was marked resolved by A"),
        msg(1800, m + 6, 0, customer),
        activity(1800, m + 53, "Conversation was reopened by A"),
        msg(2100, m + 7, 1, agent), activity(2100, m + 54, "Conversation was marked resolved by A"),
        activity(2100, m + 55, "A added billing"),  # a label: not a status
        csat]}
    return [conversations, messages]


def freshdesk_export(ticket: int, shift: int = 0, t0: float = T0) -> list[Any]:
    """`shift`: seconds after the change its activity is dated."""
    c = ticket * 100
    tickets = [{"id": ticket, "group_id": 43000001, "source": 1, "priority": 3, "status": 4,
                "requester_id": CUSTOMER, "responder_id": AGENT, "type": None,
                "subject": "...", "created_at": iso(t0), "updated_at": iso(t0 + 2400),
                "stats": {"agent_responded_at": iso(t0 + 2100),
                          "first_responded_at": iso(t0 + 600), "resolved_at": iso(t0 + 2100),
                          "reopened_at": iso(t0 + 1800), "closed_at": None}}]  # fmt: skip

    def conv(at: int, cid: int, user: int, incoming: bool, private: bool = False,
             source: int = 0) -> dict[str, Any]:  # fmt: skip
        return {"id": cid, "ticket_id": ticket, "user_id": user, "incoming": incoming,
                "private": private, "source": source, "body_text": "...",
                "support_email": None, "to_emails": [], "created_at": iso(t0 + at),
                "updated_at": iso(t0 + at)}  # fmt: skip

    conversations = [conv(60, c + 1, AGENT, False, private=True, source=2),
                     conv(120, c + 2, BOT, False), conv(600, c + 3, AGENT, False),
                     conv(1200, c + 4, CUSTOMER, True), conv(1500, c + 5, AGENT, False),
                     conv(1800, c + 6, CUSTOMER, True), conv(2100, c + 7, AGENT, False),
                     conv(2400, c + 8, CUSTOMER, True, source=6)]  # fmt: skip
    ratings = [{"id": c + 9, "survey_id": 1, "user_id": CUSTOMER, "agent_id": AGENT,
                "group_id": 43000001, "ticket_id": ticket, "feedback": "thanks",
                "ratings": {"default_question": 103}, "created_at": iso(t0 + 2400),
                "updated_at": iso(t0 + 2400)}]  # fmt: skip

    def activity(at: int, performer: int = AGENT, **change: Any) -> dict[str, Any]:
        when = datetime.fromtimestamp(t0 + at + shift, UTC).strftime("%d-%m-%Y %H:%M:%S +0000")
        return {"performer_type": "user", "performer_id": performer, "ticket_id": ticket,
                "performed_at": when, "activity": change}  # fmt: skip

    # the activities export file of the day (`GET /api/v2/export/ticket_activities`)
    activities = {"activities_data": [
        activity(0, CUSTOMER, new_ticket=True, status="Open", priority=3, source=1),
        activity(60, note={"id": c + 1, "type": 2}),
        activity(300, agent_id=AGENT),
        activity(900, status="Pending"),
        activity(1200, CUSTOMER, status="Open"),
        activity(1500, status="Resolved"),
        activity(1800, CUSTOMER, status="Open"),
        activity(2100, status="Resolved"),
        activity(2400, CUSTOMER, priority=4),  # not tracked
    ]}  # fmt: skip
    return [tickets, conversations, ratings, activities]


def zammad_export(ticket: int, shift: int = 0, t0: float = T0) -> list[Any]:
    """`shift`: seconds after the trigger's snapshot the history dates a change."""
    a = ticket * 100
    tickets = [{"id": ticket, "number": f"31{ticket:03d}", "title": "...", "group": "Users",
                "group_id": 1, "state": "closed", "state_id": 4, "priority": "3 high",
                "priority_id": 3, "owner_id": AGENT, "owner": "agent@example.com",
                "customer_id": CUSTOMER, "customer": "customer@example.com",
                "create_article_type": "email", "created_at": iso(t0, 3),
                "updated_at": iso(t0 + 2100, 3), "first_response_at": iso(t0 + 600, 3),
                "close_at": iso(t0 + 1500, 3), "article_count": 8}]  # fmt: skip

    def art(at: int, aid: int, sender: str, by: int, internal: bool = False) -> dict[str, Any]:
        return {"id": aid, "ticket_id": ticket, "sender": sender, "sender_id": 2,
                "type": "email", "internal": internal, "created_by_id": by,
                "created_by": "someone@example.com", "created_at": iso(t0 + at, 3),
                "updated_at": iso(t0 + at, 3)}  # fmt: skip

    articles = [art(0, a + 1, "Customer", CUSTOMER), art(60, a + 2, "Agent", AGENT, True),
                art(120, a + 3, "Agent", BOT), art(600, a + 4, "Agent", AGENT),
                art(1200, a + 5, "Customer", CUSTOMER), art(1500, a + 6, "Agent", AGENT),
                art(1800, a + 7, "Customer", CUSTOMER), art(2100, a + 8, "Agent", AGENT),
                art(2101, a + 9, "System", 1)]  # fmt: skip

    def entry(at: int, hid: int, attribute: str, before: Any, after: Any,
              ids: tuple[int, int] | None = None) -> dict[str, Any]:  # fmt: skip
        e = {"id": hid, "o_id": ticket, "object": "Ticket", "type": "updated",
             "attribute": attribute, "value_from": before, "value_to": after,
             "created_by_id": AGENT, "created_at": iso(t0 + at + shift, 3)}  # fmt: skip
        if ids is not None:
            e["id_from"], e["id_to"] = ids
        return e

    # `GET /api/v1/ticket_history/{id}` (entries of the ticket and of its articles)
    history = {"history": [
        {"id": 1, "o_id": ticket, "object": "Ticket", "type": "created",
         "created_by_id": CUSTOMER, "created_at": iso(t0, 3)},
        {"id": 2, "o_id": a + 1, "object": "Ticket::Article", "type": "created",
         "related_o_id": ticket, "related_object": "Ticket", "created_by_id": CUSTOMER,
         "created_at": iso(t0, 3)},
        entry(300, 3, "owner", "-", "Agent A", (1, AGENT)),
        entry(600, 4, "state", "new", "open", (1, 2)),
        entry(900, 5, "state", "open", "pending reminder", (2, 3)),
        entry(900, 6, "pending_time", None, iso(t0 + 90000)),  # not tracked
        entry(1200, 7, "state", "pending reminder", "open", (3, 2)),
        entry(1500, 8, "state", "open", "closed", (2, 4)),
        entry(1800, 9, "state", "closed", "open", (4, 2)),
        entry(2100, 10, "state", "open", "closed", (2, 4)),
    ], "assets": {}}  # fmt: skip
    return [tickets, articles, history]


#: vendor -> (export, webhook lifecycle, the id parts an export cannot date (module doc))
CASES: dict[str, tuple[Callable[..., Any], Callable[..., Any], tuple[str, ...]]] = {
    "chatwoot": (chatwoot_export, chatwoot_webhooks, ()),
    "freshdesk": (freshdesk_export, freshdesk_webhooks, ()),
    "zammad": (zammad_export, zammad_webhooks, ()),
}  # fmt: skip


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_api_export_gives_the_webhook_paths_events(vendor: str, tmp_path: Path) -> None:
    export, webhooks, undated = CASES[vendor]
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(MAPPING_YAML)
    files = []
    for i, doc in enumerate(export(5)):
        files.append(tmp_path / f"export-{i}.json")
        files[-1].write_text(json.dumps(doc))
    out = tmp_path / "events.jsonl"
    assert main(["import", vendor, *map(str, files), "--out", str(out),
                 "--mapping-file", str(mapping_file)]) == 0  # fmt: skip
    imported = {e["event_id"]: e for e in map(json.loads, out.read_text().splitlines())}
    live = {e["event_id"]: e for e in map_all(vendor, webhooks(5, T0),
                                              load_mapping(str(mapping_file)))}
    # every imported event is the live path's, field for field (same id: counted once)
    assert imported == {i: live[i] for i in imported if i in live}
    # and all of the live path's events an export dates are imported, nothing else
    expected = {i for i in live if not any(part in i for part in undated)}
    assert set(imported) == expected
    kinds = sorted(e["type"] for e in imported.values())
    assert kinds.count("ticket.created") == 1
    assert kinds.count("ticket.message") == (8 if vendor == "zammad" else 7)


def test_export_objects_are_refused_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:  # fmt: skip
    """One broken object of a page is counted refused; the rest of the page is imported."""
    page = {"payload": [{"id": 1, "conversation_id": 9, "message_type": 0,
                         "created_at": "yesterday", "sender": {"id": 3, "type": "contact"}},
                        {"id": 2, "conversation_id": 9, "message_type": 0,
                         "created_at": int(T0), "sender": {"id": 3, "type": "contact"}}]}
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(page))
    out = tmp_path / "events.jsonl"
    assert main(["import", "chatwoot", str(path), "--out", str(out)]) == 0
    assert [json.loads(x)["event_id"] for x in out.read_text().splitlines()] == ["cw:9:msg:2"]
    assert "refused:bad_time 1" in capsys.readouterr().err


def import_events(vendor: str, docs: list[Any], tmp_path: Path, mapping_file: Path
                  ) -> list[dict[str, Any]]:  # fmt: skip
    files = []
    for i, doc in enumerate(docs):
        files.append(tmp_path / f"{vendor}-export-{i}.json")
        files[-1].write_text(json.dumps(doc))
    out = tmp_path / f"{vendor}-imported.jsonl"
    assert main(["import", vendor, *map(str, files), "--out", str(out),
                 "--mapping-file", str(mapping_file)]) == 0  # fmt: skip
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("shift", [0, 2])
@pytest.mark.parametrize("vendor", sorted(CASES))
def test_history_imported_over_the_webhooks_period_changes_kpis_once(
    vendor: str, shift: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Overlap: the webhooks and an import (with status history) of the same period.

    shift 0: the history dates each change in the webhook's second, so its events are
    the webhook's ids (duplicates). shift 2: the history dates them 2 s later (Chatwoot
    writes its activity messages from a background job; Zammad's history and the
    trigger's snapshot may straddle a second), so a status change or an assignment
    comes twice under two ids. The core then sees a status change to the status the
    ticket already has, which is no transition (docs/kpis.md), and an assignment to the
    assignee it has: the ticket's KPIs (first response, resolution, reopens, one-touch,
    CSAT, per team and agent) are those of the webhooks alone, whichever arrives first
    and also interleaved in time order."""
    export, webhooks, _ = CASES[vendor]
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(MAPPING_YAML)
    live = map_all(vendor, webhooks(5, T0), load_mapping(str(mapping_file)))
    imported = import_events(vendor, export(5, shift), tmp_path, mapping_file)
    changes = [e for e in imported if e["type"] in ("ticket.status_changed", "ticket.assigned")]
    live_ids = {e["event_id"] for e in live}
    if shift:  # the case the test is for: the same changes under other ids
        assert {e["event_id"] for e in changes} - live_ids
    else:
        assert changes and {e["event_id"] for e in changes} <= live_ids
    by_time = lambda e: e["ts"]  # noqa: E731 (one format: cxpulse.core.decode.format_ts)
    alone = report(tmp_path, live, capsys)
    assert any(k[0] == "reopens" and v["value"] == 1 for k, v in alone.items())
    for order in (sorted(live + imported, key=by_time),  # interleaved as they happened
                  live + imported):                      # the history imported afterwards
        assert report(tmp_path, order, capsys) == alone
    # the history first, the webhooks of the same period after it (delivered > lateness
    # late): the webhooks' copies are late events, which change no window, so the
    # history's on-time copies are the ones counted: still once (every count equal),
    # durations the history's (`shift` later at most)
    late = report(tmp_path, sorted(imported, key=by_time) + live, capsys)
    assert set(late) == set(alone)
    for key, kpi in alone.items():
        if key[0].endswith("_seconds"):
            assert kpi["n"] == late[key]["n"], key
            assert abs(kpi["value"] - late[key]["value"]) <= shift, key
        else:
            assert kpi == late[key], key


def test_chatwoot_assignments_are_found_by_the_agents_name(tmp_path: Path) -> None:
    """Activity messages name the agent: the id comes from the agents list
    (`GET /api/v1/accounts/{a}/agents`), given before the messages, or from the page's
    senders. A name nobody knows, a team alone, an unassignment: nothing."""
    agents = [{"id": 41, "name": "Bea Lind", "available_name": "Bea", "email": "b@example.com",
               "role": "agent", "confirmed": True, "availability_status": "online"},
              {"id": 42, "name": "Cy", "available_name": "Cy", "email": "c@example.com",
               "role": "administrator", "confirmed": True, "availability_status": "busy"}]

    def activity(mid: int, at: int, text: str) -> dict[str, Any]:
        return {"id": mid, "content": text, "inbox_id": 3, "conversation_id": 9,
                "message_type": 2, "content_type": "text", "content_attributes": {},
                "created_at": int(T0) + at, "private": False, "sender": None}  # fmt: skip

    page = {"payload": [
        activity(1, 10, "Assigned to Bea Lind by Cy"),
        activity(2, 20, "Assigned to Cy via Tier 2 by Automation System"),
        activity(3, 30, "Bea self-assigned this conversation"),
        activity(4, 40, "Assigned to Tier 2 by Cy"),       # a team alone
        activity(5, 50, "Assigned to Dee by Cy"),          # not an agent we know
        activity(6, 60, "Conversation unassigned by Cy"),
    ]}  # fmt: skip
    (tmp_path / "agents.json").write_text(json.dumps(agents))
    (tmp_path / "messages.json").write_text(json.dumps(page))
    out = tmp_path / "events.jsonl"
    assert main(["import", "chatwoot", str(tmp_path / "agents.json"),
                 str(tmp_path / "messages.json"), "--out", str(out)]) == 0  # fmt: skip
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["event_id"], e["agent_id"], e.get("team")) for e in events] == [
        (f"cw:9:assigned:41:{int(T0) + 10}", "41", None),
        (f"cw:9:assigned:42:{int(T0) + 20}", "42", "Tier 2"),
        (f"cw:9:assigned:41:{int(T0) + 30}", "41", None),
    ]
    # without the agents list nobody is known by name: the activities are ignored
    assert main(["import", "chatwoot", str(tmp_path / "messages.json"), "--out", str(out)]) == 3
