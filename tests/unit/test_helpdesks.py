"""Vendor payloads -> contract events (`cxpulse.helpdesks`), judged by the KPIs they give.

Each vendor's lifecycle (tests/support/helpdesk_lifecycles.py) is mapped and fed to
`cxpulse report` (the same core as the worker): first response, first resolution
and reopens must equal what the vendor itself reports for that ticket. Mapping
twice gives the same event ids (a redelivery is a duplicate). Every published
payload in ../shared/helpdesk-payloads maps or is refused with a reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cxpulse.cli import main
from cxpulse.core.decode import Rejection, decode
from cxpulse.helpdesks import (
    Mapping,
    MappingError,
    Unmappable,
    load_mapping,
    map_delivery,
    parse,
)

from tests.support.helpdesk_lifecycles import (
    CSAT,
    FRT_S,
    LIFECYCLES,
    MAPPING_YAML,
    REOPENS,
    RESOLUTION_S,
    TEAM,
)

T0 = 1_795_000_000.0
#: ../shared of the checkout (a worktree's is further up): the published vendor payloads
SHARED = next((p / "shared" / "helpdesk-payloads" for p in Path(__file__).resolve().parents[2:]
               if (p / "shared" / "helpdesk-payloads").is_dir()), Path("/nonexistent"))


@pytest.fixture(scope="module")
def mapping(tmp_path_factory: pytest.TempPathFactory) -> Mapping:
    path = tmp_path_factory.mktemp("mapping") / "mapping.yaml"
    path.write_text(MAPPING_YAML)
    return load_mapping(str(path))


def map_all(vendor: str, deliveries: list[dict[str, Any]], mapping: Mapping
            ) -> list[dict[str, Any]]:  # fmt: skip
    """Map in order; Zammad's previous snapshot carried as `cxpulse map` keeps it."""
    kept: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    for body in deliveries:
        body = parse(json.dumps(body).encode())  # exactly what the stage reads
        tid = str(body.get("ticket", {}).get("id")) if vendor == "zammad" else ""
        mapped = map_delivery(vendor, body, mapping, kept.get(tid))
        if mapped.snapshot is not None:
            kept[tid] = mapped.snapshot
        events += mapped.events
    return events


def report(tmp_path: Path, events: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
           ) -> dict[tuple[str, str], Any]:  # fmt: skip
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["report", str(path), "--json", "--window", "24h", "--final"]) == 0
    out = json.loads(capsys.readouterr().out)
    return {(k["name"], json.dumps(k["labels"], sort_keys=True)): k for k in out["kpis"]
            if k["window"] == "24h"}  # fmt: skip


@pytest.mark.parametrize("vendor", sorted(LIFECYCLES))
def test_lifecycle_kpis_equal_the_vendors_own(
    vendor: str, mapping: Mapping, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = map_all(vendor, LIFECYCLES[vendor](7, T0), mapping)
    kpis = report(tmp_path, events, capsys)
    org = "{}"
    assert kpis[("frt_mean_seconds", org)]["value"] == FRT_S
    assert kpis[("frt_mean_seconds", org)]["n"] == 1
    assert kpis[("resolution_mean_seconds", org)]["value"] == RESOLUTION_S
    assert kpis[("reopens", org)]["value"] == REOPENS
    team = json.dumps({"team": TEAM[vendor]})
    assert kpis[("resolution_mean_seconds", team)]["n"] == 1  # the mapping file's team
    csat = CSAT[vendor]
    surveys = [e for e in events if e["type"] == "survey.response"]
    if csat is None:
        assert surveys == []
        return
    scale, score = csat
    assert [(e.get("scale", "five_point"), e["score"]) for e in surveys] == [(scale, score)]
    assert kpis[("csat", org)]["value"] == 1.0 and kpis[("csat", org)]["n"] == 1


@pytest.mark.parametrize("vendor", sorted(LIFECYCLES))
def test_ids_are_the_same_when_mapped_again_and_events_follow_the_contract(
    vendor: str, mapping: Mapping
) -> None:
    first = map_all(vendor, LIFECYCLES[vendor](7, T0), mapping)
    again = map_all(vendor, LIFECYCLES[vendor](7, T0), mapping)
    assert [e["event_id"] for e in first] == [e["event_id"] for e in again]
    assert len({e["event_id"] for e in first}) == len(first)
    for e in first:  # contract 1.1 (docs/contract.md), as the worker decodes it
        got = decode(json.dumps(e).encode())
        assert not isinstance(got, Rejection), (e, got)


def test_zendesk_redelivery_has_a_new_uuid_but_the_same_event_ids(mapping: Mapping) -> None:
    deliveries = LIFECYCLES["zendesk"](8, T0)
    redelivered = [{**d, "id": "another-uuid"} for d in deliveries]
    assert map_all("zendesk", deliveries, mapping) == map_all("zendesk", redelivered, mapping)


def test_chatwoot_bot_conversation_is_bot_and_its_opening_a_handoff(mapping: Mapping) -> None:
    created = {"event": "conversation_created", "id": 9, "inbox_id": 3, "status": "pending",
               "channel": "Channel::Api", "created_at": int(T0), "meta": {}}  # fmt: skip
    opened = {"event": "conversation_status_changed", "id": 9, "status": "open",
              "updated_at": T0 + 180.5}  # fmt: skip
    first = map_delivery("chatwoot", created, mapping).events
    assert first[0]["type"] == "ticket.created" and first[0]["bot"] is True
    assert first[0]["team"] == "chat" and first[0]["channel"] == "api"
    handoff = map_delivery("chatwoot", opened, mapping).events
    assert [e["type"] for e in handoff] == ["ticket.handoff", "ticket.status_changed"]
    assert handoff[0]["ts"].endswith(":40.500Z")  # float seconds kept to the ms


def test_zammad_older_snapshot_yields_its_article_only(mapping: Mapping) -> None:
    d = LIFECYCLES["zammad"](5, T0)
    newest = map_delivery("zammad", d[6], mapping, None)
    assert newest.snapshot is not None
    older = map_delivery("zammad", d[5], mapping, newest.snapshot)
    assert older.events == [] and older.snapshot is None and older.ignored == "no_tracked_change"
    late_article = map_delivery("zammad", d[4], mapping, newest.snapshot)
    assert [e["type"] for e in late_article.events] == ["ticket.message"]


@pytest.mark.parametrize(("vendor", "body", "code"), [
    ("zendesk", {"type": "zen:event-type:ticket.created", "time": "2026-01-01T00:00:00Z"},
     "missing_field"),
    ("zendesk", {"type": "zen:event-type:ticket.created", "detail": {"id": "1"},
                 "time": "2026-01-01 00:00:00"}, "bad_time"),
    ("zendesk", {"type": "zen:event-type:user.created"}, "unknown_event"),
    ("chatwoot", {"content": "no event name"}, "unknown_event"),
    ("chatwoot", {"event": "message_updated", "id": 1, "conversation": {"id": 2},
                  "content_type": "input_csat", "created_at": 1,
                  "content_attributes": {"submitted_values": {"csat_survey_response":
                                                              {"rating": 9}}}}, "bad_rating"),
    ("freshdesk", {"event": "onTicketCreate", "data": {}}, "missing_field"),
    ("freshdesk", {"satisfaction_rating": {"id": 1, "ticket_id": 2,
                                           "ratings": {"default_question": 4}}}, "bad_rating"),
    ("zammad", {"article": {}}, "missing_field"),
    ("zammad", {"ticket": {"id": 1, "updated_at": "yesterday"}}, "bad_time"),
    ("zammad", {"ticket": {"id": 1, "state": ["weird"], "updated_at": 5, "created_at": []}},
     "bad_time"),
])  # fmt: skip
def test_unmappable_deliveries_say_why(vendor: str, body: dict[str, Any], code: str,
                                       mapping: Mapping) -> None:  # fmt: skip
    with pytest.raises(Unmappable) as exc:
        map_delivery(vendor, body, mapping)
    assert exc.value.code == code


def test_not_json_and_not_object() -> None:
    for raw, code in ((b"{", "not_json"), (b"[1]", "not_object"), (b"\xff", "not_json")):
        with pytest.raises(Unmappable) as exc:
            parse(raw)
        assert exc.value.code == code


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/helpdesk-payloads not present")
def test_every_published_payload_maps_or_is_refused_with_a_reason(mapping: Mapping) -> None:
    seen = 0
    for path in sorted(SHARED.glob("*/*.json")):
        vendor = path.parent.name
        try:
            body = parse(path.read_bytes())
            mapped = map_delivery(vendor, body, mapping)
        except Unmappable as exc:
            assert exc.code and str(exc), path
        else:
            assert mapped.events or mapped.ignored, path
            for e in mapped.events:
                got = decode(json.dumps(e).encode())
                assert not isinstance(got, Rejection), (path, e, got)
        seen += 1
    assert seen >= 10


def test_mapping_file_errors_are_one_line(tmp_path: Path) -> None:
    cases = {
        "zendesk: {statuses: {'1': solvd}}": "zendesk.statuses.1",
        "zendesk: {teems: {}}": "zendesk.teems",
        "zendesk: {teams: {'1': ''}}": "zendesk.teams.1",
        "default_team: [a": "not valid YAML: line",
        "- a list": "must hold a mapping",
    }
    for text, expected in cases.items():
        path = tmp_path / "m.yaml"
        path.write_text(text)
        with pytest.raises(MappingError) as exc:
            load_mapping(str(path))
        message = str(exc.value)
        assert expected in message and "\n" not in message and message.startswith("mapping_file")


def test_chatwoot_bot_conversation_first_response_from_the_handoff(
    mapping: Mapping, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As Chatwoot reports it for a conversation a bot held: from the handoff (pending ->
    open) to the first agent reply, the bot's own replies not counted."""
    conv = {"id": 31, "inbox_id": 3, "channel": "Channel::WebWidget", "meta": {}}
    deliveries = [
        {**conv, "event": "conversation_created", "status": "pending", "created_at": int(T0)},
        {"event": "message_created", "id": 1, "message_type": "outgoing", "private": False,
         "created_at": int(T0) + 20, "conversation": {"id": 31},
         "sender": {"id": 7, "type": "agent_bot"}},
        {**conv, "event": "conversation_status_changed", "status": "open", "updated_at": T0 + 180},
        {"event": "message_created", "id": 2, "message_type": "outgoing", "private": False,
         "created_at": int(T0) + 600, "conversation": {"id": 31},
         "sender": {"id": 200, "type": "user"}},
    ]  # fmt: skip
    events = map_all("chatwoot", deliveries, mapping)
    kpis = report(tmp_path, events, capsys)
    assert kpis[("frt_mean_seconds", "{}")]["value"] == 600 - 180


def test_chatwoot_assignment_through_a_team_is_one_event() -> None:
    """Assigning through a team changes assignee and team in one update: one
    `ticket.assigned` with the team (two under one id would be conflicting copies)."""
    from cxpulse.helpdesks import Mapping

    body = {"event": "conversation_updated", "id": 8, "inbox_id": 3, "status": "open",
            "updated_at": 1_795_000_300.25,
            "changed_attributes": [{"assignee_id": {"previous_value": None, "current_value": 4}},
                                   {"team_id": {"previous_value": None, "current_value": 2}}],
            "meta": {"assignee": {"id": 4, "name": "A"}, "team": {"id": 2, "name": "Tier 2"}}}
    events = map_delivery("chatwoot", body, Mapping()).events
    assert events == [{"event_id": "cw:8:assigned:4:1795000300", "type": "ticket.assigned",
                       "ts": "2026-11-18T11:11:40.250Z", "ticket_id": "8", "agent_id": "4",
                       "team": "Tier 2"}]  # fmt: skip
    only_team = {**body, "changed_attributes": [{"team_id": {"current_value": 2}}]}
    assert map_delivery("chatwoot", only_team, Mapping()).events == events
    only_agent = {**body, "changed_attributes": [{"assignee_id": {"current_value": 4}}]}
    assert [e.get("team") for e in map_delivery("chatwoot", only_agent, Mapping()).events] == [
        None]
