"""`cxpulse demo --vendor zendesk`'s rendering, checked through the real Zendesk mapper:
a simulated day rendered as webhooks and mapped back with the demo's mapping file gives
the simulator's own events (type, time, team, channel, status, author, public, CSAT
verdict), with Zendesk's numbers for ids; a duplicate renders as the same delivery."""

from __future__ import annotations

import json
from pathlib import Path

from cxpulse.core.events import Scale, SurveyKind
from cxpulse.core.kpis import GOOD_SCORES, SATISFIED_OTHER
from cxpulse.demo.zendesk import ZendeskRenderer, mapping_yaml
from cxpulse.helpdesks import load_mapping
from cxpulse.helpdesks.common import to_ms
from cxpulse.helpdesks.zendesk import map_webhook
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig


def test_a_simulated_day_maps_back_to_the_simulators_events(tmp_path: Path) -> None:
    (tmp_path / "mapping.yaml").write_text(mapping_yaml())
    mapping = load_mapping(str(tmp_path / "mapping.yaml"))
    cfg = SimConfig(seed=3, start_ms=1_796_000_000_000, duration_ms=86_400_000,
                    tickets_per_day=1500, scenario="normal")
    renderer = ZendeskRenderer()
    seen_bodies: dict[str, str] = {}  # contract event_id -> rendered body
    checked = {"ticket.created": 0, "ticket.message": 0, "ticket.status_changed": 0,
               "ticket.assigned": 0, "survey.response": 0}
    for record in generate(cfg):
        rendered = renderer.render(record.value)
        if rendered is None:
            continue
        number, body = rendered
        src = json.loads(record.value)
        text = json.dumps(body, sort_keys=True)
        if src["event_id"] in seen_bodies:  # the simulator's duplicate: the same delivery
            assert seen_bodies[src["event_id"]] == text
            continue
        seen_bodies[src["event_id"]] = text
        out = map_webhook(json.loads(json.dumps(body)), mapping)
        assert out.events, (src, body, out.ignored)
        got = out.events[0]
        assert got["type"] == src["type"], (src, got)
        assert to_ms(got["ts"]) == to_ms(src["ts"])
        assert got["ticket_id"] == number == str(int("".join(c for c in src["ticket_id"]
                                                              if c.isdigit())))
        kind = src["type"]
        if kind == "ticket.created":
            assert (got["team"], got["channel"], got["priority"]) == (
                src["team"], src["channel"], src.get("priority", "normal"))
        elif kind == "ticket.message":
            assert got["author"] == src["author"]
            assert got.get("public", True) == src.get("public", True)
            if src["author"] == "agent":  # the agent's Zendesk number, the same each time
                assert got["agent_id"] == renderer.agents[src["agent_id"]]
        elif kind == "ticket.status_changed":
            assert got["status"] == src["status"]
        elif kind == "ticket.assigned":
            assert got["agent_id"] == renderer.agents[src["agent_id"]]
            assert got.get("team") == src.get("team")
        elif kind == "survey.response":
            scale = src.get("scale") or "five_point"
            good = (src["score"] in GOOD_SCORES[SurveyKind.CSAT] if scale == "five_point"
                    else src["score"] in SATISFIED_OTHER[Scale(scale)])
            assert (got["scale"], got["score"]) == ("two_point", 1 if good else 0)
        checked[kind] = checked.get(kind, 0) + 1
    assert all(n > 0 for n in checked.values()), checked
    assert renderer.skipped > 0  # NPS/CES and ticketless surveys: Zendesk sends none
