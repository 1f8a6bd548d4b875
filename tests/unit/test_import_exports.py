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
from pathlib import Path
from typing import Any

import pytest
from cxpulse.cli import main
from cxpulse.helpdesks import load_mapping

from tests.support.helpdesk_lifecycles import AGENT, BOT, CUSTOMER, MAPPING_YAML, iso
from tests.support.helpdesk_lifecycles import chatwoot as chatwoot_webhooks
from tests.support.helpdesk_lifecycles import freshdesk as freshdesk_webhooks
from tests.support.helpdesk_lifecycles import zammad as zammad_webhooks
from tests.unit.test_helpdesks import map_all

T0 = 1_795_000_000.0


def chatwoot_export(conv: int) -> list[Any]:
    agent = {"id": AGENT, "name": "A", "available_name": "A", "type": "user"}
    customer = {"id": CUSTOMER, "name": "C", "type": "contact"}
    m = conv * 100

    def msg(at: int, mid: int, mtype: int, sender: dict[str, Any] | None,
            private: bool = False, **extra: Any) -> dict[str, Any]:  # fmt: skip
        return {"id": mid, "content": "...", "inbox_id": 3, "conversation_id": conv,
                "message_type": mtype, "content_type": "text", "content_attributes": {},
                "created_at": int(T0) + at, "updated_at": int(T0) + at, "private": private,
                "status": "sent", "source_id": None, "sender": sender, **extra}  # fmt: skip

    conversations = {"data": {"meta": {"mine_count": 1, "all_count": 1}, "payload": [{
        "id": conv, "account_id": 1, "inbox_id": 3, "status": "resolved", "priority": "high",
        "created_at": int(T0), "timestamp": int(T0) + 2400, "labels": [],
        "meta": {"sender": customer, "channel": "Channel::WebWidget", "assignee": agent,
                 "team": None, "hmac_verified": False},
        "messages": [], "unread_count": 0, "first_reply_created_at": int(T0) + 600}]}}
    csat = msg(2100, m + 8, 3, None, content_type="input_csat", updated_at=int(T0) + 2400,
               content_attributes={"submitted_values": {"csat_survey_response": {
                   "rating": 5, "feedback_message": "thanks"}}})  # fmt: skip
    messages = {"meta": {"contact": {"id": CUSTOMER}}, "payload": [
        msg(60, m + 1, 1, agent, private=True), msg(120, m + 2, 1, {"id": 7, "type": "agent_bot"}),
        msg(600, m + 3, 1, agent),
        msg(900, m + 50, 2, None, content="Conversation was snoozed"),  # activity: no message
        msg(1200, m + 4, 0, customer), msg(1500, m + 5, 1, agent),
        msg(1800, m + 6, 0, customer), msg(2100, m + 7, 1, agent), csat]}
    return [conversations, messages]


def freshdesk_export(ticket: int) -> list[Any]:
    c = ticket * 100
    tickets = [{"id": ticket, "group_id": 43000001, "source": 1, "priority": 3, "status": 4,
                "requester_id": CUSTOMER, "responder_id": AGENT, "type": None,
                "subject": "...", "created_at": iso(T0), "updated_at": iso(T0 + 2400),
                "stats": {"agent_responded_at": iso(T0 + 2100),
                          "first_responded_at": iso(T0 + 600), "resolved_at": iso(T0 + 2100),
                          "reopened_at": iso(T0 + 1800), "closed_at": None}}]  # fmt: skip

    def conv(at: int, cid: int, user: int, incoming: bool, private: bool = False,
             source: int = 0) -> dict[str, Any]:  # fmt: skip
        return {"id": cid, "ticket_id": ticket, "user_id": user, "incoming": incoming,
                "private": private, "source": source, "body_text": "...",
                "support_email": None, "to_emails": [], "created_at": iso(T0 + at),
                "updated_at": iso(T0 + at)}  # fmt: skip

    conversations = [conv(60, c + 1, AGENT, False, private=True, source=2),
                     conv(120, c + 2, BOT, False), conv(600, c + 3, AGENT, False),
                     conv(1200, c + 4, CUSTOMER, True), conv(1500, c + 5, AGENT, False),
                     conv(1800, c + 6, CUSTOMER, True), conv(2100, c + 7, AGENT, False),
                     conv(2400, c + 8, CUSTOMER, True, source=6)]  # fmt: skip
    ratings = [{"id": c + 9, "survey_id": 1, "user_id": CUSTOMER, "agent_id": AGENT,
                "group_id": 43000001, "ticket_id": ticket, "feedback": "thanks",
                "ratings": {"default_question": 103}, "created_at": iso(T0 + 2400),
                "updated_at": iso(T0 + 2400)}]  # fmt: skip
    return [tickets, conversations, ratings]


def zammad_export(ticket: int) -> list[Any]:
    a = ticket * 100
    tickets = [{"id": ticket, "number": f"31{ticket:03d}", "title": "...", "group": "Users",
                "group_id": 1, "state": "closed", "state_id": 4, "priority": "3 high",
                "priority_id": 3, "owner_id": AGENT, "owner": "agent@example.com",
                "customer_id": CUSTOMER, "customer": "customer@example.com",
                "create_article_type": "email", "created_at": iso(T0, 3),
                "updated_at": iso(T0 + 2100, 3), "first_response_at": iso(T0 + 600, 3),
                "close_at": iso(T0 + 1500, 3), "article_count": 8}]  # fmt: skip

    def art(at: int, aid: int, sender: str, by: int, internal: bool = False) -> dict[str, Any]:
        return {"id": aid, "ticket_id": ticket, "sender": sender, "sender_id": 2,
                "type": "email", "internal": internal, "created_by_id": by,
                "created_by": "someone@example.com", "created_at": iso(T0 + at, 3),
                "updated_at": iso(T0 + at, 3)}  # fmt: skip

    articles = [art(0, a + 1, "Customer", CUSTOMER), art(60, a + 2, "Agent", AGENT, True),
                art(120, a + 3, "Agent", BOT), art(600, a + 4, "Agent", AGENT),
                art(1200, a + 5, "Customer", CUSTOMER), art(1500, a + 6, "Agent", AGENT),
                art(1800, a + 7, "Customer", CUSTOMER), art(2100, a + 8, "Agent", AGENT),
                art(2101, a + 9, "System", 1)]  # fmt: skip
    return [tickets, articles]


#: vendor -> (export, webhook lifecycle, the id parts an export cannot date (module doc),
#: ids of the one status change an export dates)
CASES = {
    "chatwoot": (chatwoot_export, chatwoot_webhooks, (":assigned:", ":handoff:", ":status:"),
                 ()),
    "freshdesk": (freshdesk_export, freshdesk_webhooks, (":assigned:", ":status:"),
                  (f"fd:5:status:solved:{int(T0) + 2100}",)),
    "zammad": (zammad_export, zammad_webhooks, (":owner:", ":state:"),
               (f"zm:5:state:solved:{int(T0) + 1500}",)),
}  # fmt: skip


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_api_export_gives_the_webhook_paths_events(vendor: str, tmp_path: Path) -> None:
    export, webhooks, undated, dated = CASES[vendor]
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
    expected = {i for i in live if not any(part in i for part in undated)} | set(dated)
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
