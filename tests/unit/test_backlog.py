"""The backlog gauges read by bisection equal the per-ticket rule, at any instant.

`Backlog` keeps the open tickets by group, their FRT clock starts sorted, so an
incremental evaluation can keep it between evaluations and read ages, at-risk and
breached counts and the forecast's slacks at each instant. The reference here is
the rule written per ticket (age = max(0, now - clock start); at risk for fraction
f: f x target <= age <= target; breached: age > target; the forecast's slacks:
target - age for the unbreached ones from `forecast_from_fraction` of the target),
on random tickets at random instants and exactly on each boundary.
"""

from __future__ import annotations

from collections import defaultdict
from random import Random

import pytest
from cxpulse.core.config import CoreConfig
from cxpulse.core.evaluation.backlog import Backlog, forecast_breaches
from cxpulse.core.evaluation.caps import Caps
from cxpulse.core.evaluation.view import OpenTicket

CFGS = [
    CoreConfig(frt_target_by_priority={"urgent": 300_000, "low": 3_600_000},
               at_risk_fractions=(0.5, 0.75, 0.333), forecast_from_fraction=ff)
    for ff in (0.25, 0.0)  # 0: tickets whose clock starts later than now (age 0) count
]  # fmt: skip
TEAMS, CHANNELS, AGENTS = ("billing", "tech", "sales"), ("email", "chat"), ("a1", "a2", None)
PRIORITIES = ("urgent", "normal", "low")


def reference(cfg: CoreConfig, tickets: list[OpenTicket], at: int, caps: Caps,
              pace: dict[tuple[str, ...], float]) -> dict[tuple[str, tuple[str, ...]], float]:
    out: dict[tuple[str, tuple[str, ...]], float] = defaultdict(float)
    slack: dict[tuple[str, ...], list[int]] = defaultdict(list)
    views_seen: set[tuple[str, ...]] = {("all",)}
    for t in tickets:
        assert t.team is not None and t.channel is not None
        target = cfg.frt_target_for(t.priority)
        age = max(0, at - t.clock_ts)
        views: tuple[tuple[str, ...], ...] = (
            ("all",), ("team", caps("team", t.team)), ("channel", caps("channel", t.channel)),
            ("priority", t.priority),
        )  # fmt: skip
        for view in views:
            views_seen.add(view)
            out[("open", view)] += 1
            out[("unassigned", view)] += t.assignee is None
            if not t.unanswered:
                continue
            out[("unanswered", view)] += 1
            out[("oldest", view)] = max(out[("oldest", view)], age / 1000)
            out[("breached", view)] += age > target
            for f in cfg.at_risk_fractions:
                out[(f"risk{f:g}", view)] += f * target <= age <= target
            if cfg.forecast_from_fraction * target <= age <= target:
                slack[view].append(target - age)
    for view in views_seen:
        out[("forecast", view)] = forecast_breaches(slack[view], pace.get(view, 0.0))
    return out


NAMES = {"backlog_open": "open", "backlog_unassigned": "unassigned",
         "backlog_unanswered": "unanswered", "oldest_unanswered_age_seconds": "oldest",
         "frt_breached_unanswered": "breached", "frt_forecast_breaches": "forecast"}  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("cfg", CFGS)
def test_bisection_equals_the_per_ticket_rule(seed: int, cfg: CoreConfig) -> None:
    rng = Random(seed)
    now = 1_800_000_000_000
    tickets = [
        OpenTicket(rng.choice(TEAMS), rng.choice(CHANNELS), rng.choice(PRIORITIES),
                   now - 5_000_000, rng.choice(AGENTS), rng.random() < 0.8,
                   now - rng.randrange(-120_000, 5_000_000))
        for _ in range(rng.randrange(1, 80))
    ]  # fmt: skip
    b = Backlog()
    for t in tickets:
        b.add(t, t.team or "", t.channel or "", t.assignee, cfg.frt_target_for(t.priority))
    for t in tickets[::3]:  # counted out and in again: removal keeps the order
        b.add(t, t.team or "", t.channel or "", t.assignee, cfg.frt_target_for(t.priority), -1)
        b.add(t, t.team or "", t.channel or "", t.assignee, cfg.frt_target_for(t.priority))
    caps = Caps({"team": {"billing": "billing", "tech": "other", "sales": "other"}})
    # small enough that the forecasts are not all 0 (then the slacks count)
    pace = {("all",): rng.random() / 100_000, ("team", "other"): rng.random() / 500_000,
            ("priority", "normal"): rng.random() / 1_000_000}  # fmt: skip
    # on every boundary: a clock start plus a fraction of its target, and one ms either side
    instants = [now + rng.randrange(-60_000, 4_000_000) for _ in range(20)]
    for t in rng.sample(tickets, min(5, len(tickets))):
        target = cfg.frt_target_for(t.priority)
        for f in (*cfg.at_risk_fractions, cfg.forecast_from_fraction, 1.0, 0.0):
            edge = t.clock_ts + int(f * target)
            instants += [edge - 1, edge, edge + 1]
    for at in instants:
        ref = reference(cfg, tickets, at, caps, pace)
        got = b.samples(at, caps, cfg, pace)
        for s in got:
            if s.name == "agent_open_assigned":
                continue
            labels = {k: v for k, v in s.labels.items() if k != "threshold"}
            view = ("all",) if not labels else next(iter(labels.items()))
            name = f"risk{s.labels['threshold']}" if s.name == "frt_at_risk" else NAMES[s.name]
            assert s.value == ref[(name, view)], (at, s)
        assert {s.labels["agent"]: s.value for s in got if s.name == "agent_open_assigned"} == {
            a: float(sum(t.assignee == a for t in tickets)) for a in AGENTS if a is not None
            and any(t.assignee == a for t in tickets)
        }
