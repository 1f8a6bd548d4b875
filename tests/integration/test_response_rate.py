"""The survey response rate (contract 1.1) on the team lead's dashboard and in its opt-in
ticket alert, run against a real Prometheus scraping two exporter replicas that serve
the same series: the panel's query gives the team's rate once (replicas collapsed),
and the alert names the team under the floor with offers enough, not the one under it
with too few offers nor the one above it."""

from __future__ import annotations

import time

import pytest
from cxpulse.core.targets import parse_targets
from cxpulse.mixin.alerts import alert_rules
from cxpulse.mixin.dashboards import teamlead

from tests.integration.test_exporter import StaticMetrics, prometheus, query

pytestmark = pytest.mark.prometheus

DIMS = 'channel="all",agent="all",touchpoint="all",window="24h"'
#: team -> (CSAT response ratio, CSAT offers) over 24 h
TEAMS = {"billing": (0.10, 50), "tech": (0.40, 60), "shipping": (0.05, 10), "all": (0.25, 120)}


def _text() -> bytes:
    lines = ["# TYPE cxpulse_csat_response_ratio gauge", "# TYPE cxpulse_csat_offers gauge"]
    for team, (rate, offers) in TEAMS.items():
        lines.append(f'cxpulse_csat_response_ratio{{team="{team}",{DIMS}}} {rate}')
        lines.append(f'cxpulse_csat_offers{{team="{team}",{DIMS}}} {offers}')
    return ("\n".join(lines) + "\n").encode()


def test_the_panel_shows_each_teams_rate_once_and_the_alert_names_the_low_team() -> None:
    replicas = [StaticMetrics(_text()), StaticMetrics(_text())]
    prom = prometheus({"cxpulse-exporter": [r.port for r in replicas]})
    try:
        deadline = time.monotonic() + 30
        while len(query(prom, "cxpulse_csat_offers")) < 2 * len(TEAMS):
            assert time.monotonic() < deadline, "both replicas scraped"
            time.sleep(0.5)
        targets = parse_targets({"min_sample": 30, "csat": {"response_rate_floor": 0.2}})
        panel = next(p for p in teamlead(targets)["panels"]
                     if p["title"] == "Survey response rate")
        assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == 0.2
        by_legend = {t["legendFormat"]: t["expr"] for t in panel["targets"]}
        for team, (rate, offers) in TEAMS.items():
            for legend, want in (("CSAT", rate), ("CSAT offers", offers)):
                expr = by_legend[legend].replace("$window", "24h").replace("$team", team)
                got = query(prom, expr)
                assert len(got) == 1, (expr, got)  # the two replicas collapsed into one
                assert float(got[0]["value"][1]) == want, (team, legend, got)
        for legend in ("NPS", "CES"):  # no offers of those kinds: no line, no error
            assert query(prom, by_legend[legend].replace("$window", "24h")
                         .replace("$team", "billing")) == []
        rules = [r for g in alert_rules(targets)["groups"] for r in g["rules"]
                 if r["alert"] == "CxpulseCSATResponseRateLow"]
        assert len(rules) == 1 and rules[0]["labels"]["severity"] == "ticket"
        fired = query(prom, rules[0]["expr"])
        assert {r["metric"]["team"] for r in fired} == {"billing"}, fired
        assert float(fired[0]["value"][1]) == 0.10
    finally:
        prom.stop()
        for r in replicas:
            r.close()
