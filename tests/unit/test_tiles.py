"""The one tile definition (cxpulse.mixin.tiles) and the dashboards generated from it."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from cxpulse.core import evidence as ev
from cxpulse.core.targets import parse_targets
from cxpulse.mixin import tiles as tl
from cxpulse.mixin.dashboards import oncall, teamlead, wall

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = parse_targets({})
VIP = parse_targets({"teams": {"vip": {"csat": 0.95, "nps": 50}}})


def _tile(t: Any, key: str) -> tl.Tile:
    return next(x for x in tl.tiles(t) if x.key == key)


def test_human_duration_reads_like_a_person_writes() -> None:
    assert tl.human_duration(2537.0381) == "42m 17s"
    assert tl.human_duration(59.6) == "1m 00s"
    assert tl.human_duration(7 * 3600 + 5 * 60) == "7h 05m"
    assert tl.human_duration(2 * 86400 + 3600 * 4 + 9) == "2d 04h"
    assert tl.human_duration(3) == "3s"


def test_ceiling_tile_is_amber_from_three_quarters_and_red_over_the_target() -> None:
    frt = _tile(DEFAULT, "frt")
    target = DEFAULT.frt.target_seconds
    n = DEFAULT.frt.min_count
    assert frt.colour(0.5 * target, n) == tl.OK
    assert frt.colour(0.8 * target, n) == tl.WARN
    assert frt.colour(target + 1, n) == tl.BAD
    # Too few first responses in the window: shown, but not judged.
    assert frt.colour(10 * target, n - 1) == tl.LOW_SAMPLE
    assert frt.colour(None, n) == tl.NO_DATA


def test_at_risk_is_not_amber_at_one_ticket() -> None:
    risk = _tile(DEFAULT, "at_risk")
    assert risk.colour(1) == tl.OK
    assert risk.colour(tl.AT_RISK_WARN) == tl.WARN
    assert risk.colour(tl.AT_RISK_BAD) == tl.BAD


def test_a_ticket_past_its_deadline_unanswered_makes_at_risk_red() -> None:
    risk = _tile(DEFAULT, "at_risk")
    # n is the overdue count (part of the value): one overdue ticket is a crisis
    assert risk.colour(1, 1) == tl.BAD
    assert risk.colour(1, 0) == tl.OK
    assert risk.colour(0, 0) == tl.OK  # an empty queue stays green
    q = risk.query("tech")
    assert "cxpulse_frt_breached_unanswered_tickets" in q and "threshold=\"0.75\"" in q
    assert risk.n_query("tech") is not None and "breached_unanswered" in str(risk.n_query("tech"))


def test_survey_tiles_are_grey_below_min_sample_and_use_team_overrides() -> None:
    csat = _tile(VIP, "csat")
    ok_n = VIP.min_sample
    assert csat.n_query("billing") is not None
    assert csat.colour(0.9, ok_n, "billing") == tl.OK  # default target 0.80
    assert csat.colour(0.9, ok_n, "vip") == tl.BAD  # vip's own target 0.95
    assert csat.colour(0.2, ok_n - 1, "billing") == tl.LOW_SAMPLE
    nps = _tile(VIP, "nps")
    assert nps.target("vip") == 50 and nps.target("billing") == 70


def test_every_kpi_query_collapses_exporter_replicas_and_selects_one_team() -> None:
    for tile in tl.tiles(DEFAULT):
        q = tile.query("tech")
        assert q.startswith("max without (instance) ("), q
        assert 'team="tech"' in q and "{team}" not in q
        selectors = q.count('team="tech"')  # the at-risk tile adds the overdue gauge
        assert q.count("max without (instance) (") == selectors
        trend = tile.trend_query("tech")
        assert trend.count("offset 1d") == selectors
        assert trend.count('team="tech"') == 2 * selectors


def test_change_text_carries_its_sign_in_the_arrow_only() -> None:
    by_key = {t.key: t for t in tl.tiles(DEFAULT)}
    assert by_key["nps"].format_change(-5.0) == "▼ 5"  # was "▼ +5": up or down?
    assert by_key["nps"].format_change(10.0) == "▲ 10"
    assert by_key["frt"].format_change(-90.0) == "▼ 1m 30s"
    assert by_key["sla"].format_change(0.03) == "▲ 3 pt"
    assert by_key["backlog"].format_change(0.0) == "= 0"
    assert by_key["csat"].format_change(None) == ""


def test_tiles_fill_one_grafana_row() -> None:
    assert sum(t.width for t in tl.tiles(DEFAULT)) == 24


def _stats(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] == "stat"]


def test_wall_has_org_row_repeated_team_rows_and_own_rows_for_overridden_teams() -> None:
    model = wall(VIP)
    rows = [p for p in model["panels"] if p["type"] == "row"]
    assert [r["title"] for r in rows] == ["Organisation", "vip", "$team"]
    assert rows[-1]["repeat"] == "team"
    team_var = next(v for v in model["templating"]["list"] if v["name"] == "team")
    assert "vip" in team_var["regex"] and "all" in team_var["regex"]
    vip_csat = next(p for p in _stats(model) if p["title"] == "CSAT"
                    and 'team="vip"' in p["targets"][0]["expr"])
    assert vip_csat["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.95
    org_csat = next(p for p in _stats(model) if p["title"] == "CSAT"
                    and 'team="all"' in p["targets"][0]["expr"])
    assert org_csat["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.80


def test_wall_grid_fits_a_1080p_screen() -> None:
    # Grafana rows are 30 px each plus 8 px gaps; the header bar takes about 60 px.
    model = wall(DEFAULT)
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in model["panels"])
    teams = 4  # the repeated row expands once per team
    rows_per_team = 1 + 4
    height_units = bottom + (teams - 1) * rows_per_team
    assert height_units * 30 + 60 <= 1080


def test_survey_panels_carry_n_and_grey_below_min_sample() -> None:
    for model in (wall(DEFAULT), teamlead(DEFAULT)):
        for p in _stats(model):
            if p["title"] in ("CSAT", "NPS", "CES easy", "FCR"):
                legends = {t["legendFormat"] for t in p["targets"]}
                assert "n" in legends, p["title"]
                assert f"n < {DEFAULT.min_sample}" in legends
                assert any(f">= {DEFAULT.min_sample}" in t["expr"] for t in p["targets"])


def test_teamlead_agents_table_follows_team_and_frt_panel_shows_only_frt() -> None:
    model = teamlead(DEFAULT)
    agents = next(p for p in model["panels"] if p["title"] == "Agents")
    for t in agents["targets"]:
        assert 'team="$team"' in t["expr"] and '"$agent"' in t["expr"]
    frt = next(p for p in model["panels"] if p["title"] == "First reply time")
    exprs = " ".join(t["expr"] for t in frt["targets"])
    assert "resolution" not in exprs and "wait" not in exprs
    names = {v["name"] for v in model["templating"]["list"]}
    assert {"team", "agent", "window"} <= names


def test_oncall_breach_share_turns_red_where_the_burn_rate_alert_fires() -> None:
    model = oncall(DEFAULT)
    budget = 1 - DEFAULT.frt.objective
    for burn in DEFAULT.frt.burn_rates:
        panel = next(p for p in model["panels"] if p["title"].startswith(
            f"SLA breach share, {burn.long} and {burn.short}"))
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[-1]["color"] == "red"
        assert abs(steps[-1]["value"] - burn.factor * budget) < 1e-9
        exprs = [t["expr"] for t in panel["targets"]]
        assert any(f"[{burn.long}]" in e for e in exprs)
        assert any(f"[{burn.short}]" in e for e in exprs)


def test_collapse_tile_is_red_where_the_generated_page_fires_amber_from_half() -> None:
    tile = next(t for t in tl.wall_tiles(DEFAULT) if t.key == "csat_collapse")
    assert [t.key for t in tl.wall_tiles(DEFAULT)] == [
        *(t.key for t in tl.tiles(DEFAULT)), "csat_collapse"]
    # The generated rule (alerts/cxpulse-rules.yml, not this module) pages at `>= 1` of the
    # same series the tile reads; the tile turns red exactly there.
    rules = yaml.safe_load((ROOT / "alerts" / "cxpulse-rules.yml").read_text())
    page = next(r for g in rules["groups"] for r in g["rules"]
                if r.get("alert") == tile.alert)
    assert page["labels"]["severity"] == "page"
    fire = re.search(r"\((cxpulse_csat_collapse_evidence_ratio)\{[^}]*\}\) >= ([0-9.]+)",
                     page["expr"])
    assert fire is not None, page["expr"]
    assert fire.group(1) in tile.query("tech") and 'team="tech"' in tile.query("tech")
    red = float(fire.group(2))
    assert tile.colour(red) == tl.BAD and tile.colour(red - 1e-9) == tl.WARN
    assert tile.colour(tl.EVIDENCE_WARN) == tl.WARN
    assert tile.colour(tl.EVIDENCE_WARN - 1e-9) == tl.OK
    assert tile.colour(0.0) == tl.OK and tile.colour(None) == tl.NO_DATA
    assert tile.format(0.6) == "60 %"
    # CES and FCR collapses are tickets: no column (the wall has no room for two more)
    assert not any(t.key in ("ces_collapse", "fcr_collapse") for t in tl.wall_tiles(DEFAULT))


def test_collapse_amber_share_has_the_consequences_the_comment_states() -> None:
    """tiles.EVIDENCE_WARN's comment (and docs/alerts.md): with the default targets a team
    at 88 % goes amber about once in 8-12 days at any volume, one exactly at its target
    every 0.3-3 days, and after a fall to 50 % amber comes in about half the page's time."""
    spec = next(s for s in DEFAULT.evidence() if s.kpi == "csat")
    up, down = ev.weights(spec.target, spec.collapse)
    for per_day in (20, 50, 100, 200, 500, 1000, 5000):
        h = ev.threshold(spec.target, spec.collapse, spec.false_alarm_days, per_day)
        amber = math.ceil(tl.EVIDENCE_WARN * h)  # the statistic is an integer
        healthy_days = ev.arl(0.88, up, down, amber) / per_day
        at_target_days = ev.arl(spec.target, up, down, amber) / per_day
        to_amber = ev.arl(spec.collapse, up, down, amber)
        to_red = ev.arl(spec.collapse, up, down, h)
        assert 8.0 <= healthy_days <= 12.5, (per_day, healthy_days)
        assert 0.3 <= at_target_days <= 3.0, (per_day, at_target_days)
        assert 0.4 <= to_amber / to_red <= 0.6, (per_day, to_amber / to_red)
        if per_day == 100:
            assert round(to_amber / per_day * 24, 1) == 2.8
            assert round(to_red / per_day * 24, 1) == 6.1
