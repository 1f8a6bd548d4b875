"""The generated rules page on incidents, before the breach, and on nothing else.

Each scenario of the simulator is replayed at event-time speed through the KPI
core, the exporter's renderer and Prometheus' own rule evaluator (`promtool
test rules`, rules evaluated every 30 s over 1-minute scrapes; see
tests/support/alert_days.py). The acceptance of issue #11 is asserted on what
fired. Runs are cut to the hours that matter so the module stays within CI's
budget (about 2-3 minutes); bench/bench_alerts.py runs full days, 7 normal
days for 3 seeds, with the figures in docs/alerts.md.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from cxpulse import metric_names as m
from cxpulse.mixin.command import load_targets
from cxpulse.sim import params as p

from tests.support.alert_days import DayAlerts, Minutes, replay

ROOT = Path(__file__).resolve().parents[2]
TARGETS = load_targets(ROOT / "targets.yaml")
TEAMS = tuple(p.TEAMS)

pytestmark = pytest.mark.prometheus


@cache
def run(scenario: str, start_hour: int, hours: int) -> tuple[list[DayAlerts], Minutes]:
    _, days, minutes = replay(TARGETS, scenario, seed=1, hours=hours, start_hour=start_hour,
                              keep_minutes=True)
    return days, minutes


def first_breach_counted(minutes: Minutes, team: str, after_s: float) -> float:
    """Seconds into the run at which the team's breach counter first grows after `after_s`
    (what the burn-rate rules and the dashboards count as a breach)."""
    per_minute = [0.0] * minutes.n
    for series, slots in minutes.values.items():
        if series.startswith(m.SLA_BREACHED_TOTAL + "{") and f'team="{team}"' in series:
            for i, v in enumerate(slots):
                per_minute[i] += v or 0.0
    start = int(after_s // 60)
    for i in range(start + 1, minutes.n):
        if per_minute[i] > per_minute[start]:
            return (i + 1) * 60.0  # sample i is the state at the end of minute i
    return float("inf")


def test_incident_pages_its_team_once_before_the_first_breach_and_resets() -> None:
    start_hour = 6
    days, minutes = run("incident", start_hour, 8)
    onset = p.INCIDENT.start_after / 1000 - start_hour * 3600
    recovery = onset + p.INCIDENT.length / 1000
    page = days[0].pages.get(p.INCIDENT.team)
    assert page is not None, days
    assert page["episodes"] == 1, page  # one pager incident, no flapping
    assert onset < page["first"] <= onset + 10 * 60, (page["first"] - onset) / 60
    assert page["first"] < first_breach_counted(minutes, p.INCIDENT.team, onset)
    # `last` is the last instant seen firing: resolved one evaluation later
    assert page["last"] + 30 <= recovery + 15 * 60, (page["last"] - recovery) / 60
    assert days[0].page_count(exclude_teams=(p.INCIDENT.team,)) == 0, days[0].pages


def test_overwhelming_surge_pages_and_absorbed_surge_does_not() -> None:
    surge = p.SCENARIO_TABLE["surge-overload"].surges[0]
    start_hour = 11
    days, _ = run("surge-overload", start_hour, 7)
    onset = surge.start_after / 1000 - start_hour * 3600
    page = days[0].pages.get(surge.team)
    assert page is not None and page["episodes"] == 1, days[0].pages
    assert onset < page["first"] < onset + surge.length / 1000  # during the surge
    assert days[0].page_count(exclude_teams=(surge.team,)) == 0

    absorbed, _ = run("surge", start_hour, 7)
    assert absorbed[0].page_count() == 0, absorbed[0].pages


def test_chronic_miss_is_a_ticket_for_its_team_not_a_page() -> None:
    """Billing runs at 0.62 satisfied from a cold start. Within a day that is the same
    evidence as a collapse (issue 20, docs/alerts.md "Collapse evidence": only history
    tells a chronic miss from a fall, and a cold start has none), so the CSAT collapse
    page may open once for billing; no FRT page and no other team's page may."""
    days, _ = run("chronic", 0, 16)
    team = next(iter(p.SCENARIO_TABLE["chronic"].chronic or {}))
    pages = {(a, t) for (a, t, s) in days[0].per_alert if s == "page"}
    assert pages <= {("CxpulseCSATCollapse", team)}, pages
    assert days[0].page_count(exclude_teams=(team,)) == 0, days[0].pages
    assert days[0].pages.get(team, {}).get("episodes", 0) <= 1, days[0].pages
    tickets = days[0].fired("ticket")
    assert ("CxpulseCSATBelowTarget", team) in tickets, tickets
    # tickets only where a target is really missed: no other team gets one
    assert {t for _, t in tickets} == {team}, tickets
    csat = days[0].per_alert[("CxpulseCSATBelowTarget", team, "ticket")]
    assert csat["episodes"] == 1  # hysteresis: opened once, held


def test_quiet_day_is_silent() -> None:
    days, _ = run("quiet", 0, 24)
    assert days[0].page_count() == 0, days[0].pages
    assert not days[0].fired("ticket"), days[0].per_alert


def test_no_alert_matches_the_organisation_roll_up() -> None:
    for scenario, start, hours in (("incident", 6, 8), ("chronic", 0, 16)):
        days, _ = run(scenario, start, hours)
        for day in days:
            assert "all" not in {t for (_, t, _) in day.per_alert}
            assert "all" not in day.pages


def test_watchdog_fires_all_the_time() -> None:
    days, minutes = run("quiet", 0, 24)
    watchdog = days[0].per_alert[("CxpulseWatchdog", "", "none")]
    assert watchdog["episodes"] == 1
    assert watchdog["first"] <= 60 and watchdog["last"] >= minutes.n * 60 - 120
