"""The stall page's evidence rule against an independent brute-force computation.

`CxpulseFrtStalled` (issue 20) is PromQL with hysteresis through `ALERTS`, a
`for:` and a `keep_firing_for:`; each of those can be subtly wrong (a label
that does not match, a team with no reply series read as "no data" instead of
0, a hold that never releases). Here random minute-by-minute queues for three
teams go through the generated rule under `promtool test rules`, and at every
minute the firing set must equal what a plain Python state machine computes
from the rule's statement in targets.yaml / docs/runbook.md and Prometheus'
documented alert life cycle (pending -> firing after `for`, held `keep_firing_for`
after the condition ends). Nothing of the PromQL is reused by the reference.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cxpulse import metric_names as m
from cxpulse.core.durations import parse_duration_ms
from cxpulse.mixin.command import load_targets

ROOT = Path(__file__).resolve().parents[2]
TARGETS = load_targets(ROOT / "targets.yaml")
NAME = "CxpulseFrtStalled"
MINUTES = 120
#: `quiet` never has a first-reply series (a team whose window holds no reply at all).
TEAMS = ("busy", "small", "quiet")
#: A thin shift's most arrivals in an hour (the quiet-shift clause's gate).
QUIET = TARGETS.paging.stall.quiet_max_arrivals


def _runs(rng: random.Random, choices: list[int]) -> list[int]:
    """Values that persist a few minutes each, as queues do."""
    out: list[int] = []
    while len(out) < MINUTES:
        out += [rng.choice(choices)] * rng.randint(1, 9)
    return out[:MINUTES]


def _queues(seed: int) -> dict[str, dict[str, list[int] | None]]:
    rng = random.Random(seed)
    out: dict[str, dict[str, list[int] | None]] = {}
    for team in TEAMS:
        out[team] = {
            "overdue": _runs(rng, [0, 0, 1, 1, 2, 3, 5]),
            "replies": None if team == "quiet" else _runs(rng, [0, 0, 1, 2, 3, 6, 12, 30]),
            "arrivals": _runs(rng, [0, 1, 3, 4, 5, 8]),
            # tickets past the quiet band but not yet overdue (the thin-shift clause)
            "band": _runs(rng, [0, 0, 0, 1, 1, 2]),
            # tickets created in the last hour (a thin shift has few)
            "hour": _runs(rng, [0, 2, QUIET - 1, QUIET, QUIET + 1, 12]),
        }
    return out


def reference(q: dict[str, list[int] | None]) -> list[bool]:
    """Firing at each evaluation (one a minute, at the minute's sample), by the rule's
    statement: open on `min_breached` overdue tickets, more than `overdue_per_reply` per
    first reply of the last 15 min, or on one overdue ticket with `silent_min_arrivals`
    arrivals and no reply at all, or on one overdue ticket with `quiet_min_waiting`
    tickets (it included) past `quiet_band` of their target, no reply at all and at most
    `quiet_max_arrivals` tickets created in the last hour; once firing, hold while one is
    overdue and the team sent fewer than `catch_up_replies` first replies per overdue
    ticket."""
    s = TARGETS.paging.stall
    hold_for = parse_duration_ms(s.for_) // 60_000
    keep = parse_duration_ms(TARGETS.paging.keep_firing_for) // 60_000
    overdue, arrivals, band, hour = q["overdue"], q["arrivals"], q["band"], q["hour"]
    assert overdue is not None and arrivals is not None and band is not None
    assert hour is not None
    replies = q["replies"] or [0] * MINUTES
    state, active_at, keep_since = "inactive", 0, None
    firing: list[bool] = []
    for i in range(MINUTES):
        ov, rep, arr, waiting = overdue[i], replies[i], arrivals[i], band[i] + overdue[i]
        was_firing = bool(firing) and firing[-1]  # ALERTS of the previous evaluation
        opens = (ov >= s.min_breached and ov > s.overdue_per_reply * rep) or (
            ov >= 1 and arr >= s.silent_min_arrivals and rep == 0) or (
            ov >= 1 and waiting >= s.quiet_min_waiting and rep == 0
            and hour[i] <= s.quiet_max_arrivals)
        holds = ov >= 1 and rep < s.catch_up_replies * ov and was_firing
        if opens or holds:
            keep_since = None
            if state == "inactive":
                state, active_at = "pending", i
            if state == "pending" and i - active_at >= hold_for:
                state = "firing"
        elif state == "pending":
            state = "inactive"
        elif state == "firing":
            keep_since = i if keep_since is None else keep_since
            if i - keep_since >= keep:
                state, keep_since = "inactive", None
        firing.append(state == "firing")
    return firing


def _series(queues: dict[str, dict[str, list[int] | None]]) -> list[dict[str, str]]:
    out = []
    for team, q in queues.items():
        rollup = f'channel="all",priority="all",team="{team}"'
        band = f'threshold="{TARGETS.paging.stall.quiet_band:g}",'
        for metric, key, extra in ((m.BREACHED_UNANSWERED, "overdue", ""),
                                   (m.FRT_COUNT, "replies", 'window="15m",'),
                                   (m.CREATED, "arrivals", 'window="15m",'),
                                   (m.AT_RISK, "band", band),
                                   (m.CREATED, "hour", 'window="1h",')):
            values = q[key]
            if values is None:
                continue
            out.append({"series": f"{metric}{{{extra}{rollup}}}",
                        "values": " ".join(str(v) for v in values)})
    return out


def _rule() -> dict[str, Any]:
    rules = yaml.safe_load((ROOT / "alerts/cxpulse-rules.yml").read_text())
    rule = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == NAME)
    rule.pop("annotations", None)
    return {"groups": [{"name": "stall", "rules": [rule]}]}


@pytest.mark.prometheus
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_stall_rule_fires_exactly_when_the_brute_force_says(seed: int, tmp_path: Path) -> None:
    queues = _queues(seed)
    expected = {team: reference(q) for team, q in queues.items()}
    assert any(any(v) for v in expected.values()), "a case where nothing fires proves little"
    assert any(not all(v) for v in expected.values())
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(_rule()))
    checks = []
    for i in range(1, MINUTES):
        alerts = [{"exp_labels": {"severity": "page", "component": "kpi", "team": team,
                                  "channel": "all", "priority": "all"}}
                  for team in TEAMS if expected[team][i]]
        checks.append({"eval_time": f"{i}m", "alertname": NAME, "exp_alerts": alerts})
    spec = {"rule_files": [str(tmp_path / "rules.yml")], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": _series(queues),
                       "alert_rule_test": checks}]}
    path = tmp_path / "stall_test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, width=1 << 20))
    out = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
