"""Alert rules and dashboards: generated from targets.yaml, valid, and firing when they should.

The alert behaviour is checked with `promtool test rules` (Prometheus' own
rule evaluator) on series placed just either side of each target read from
the targets file, so a wrong operator, a missing sample guard or a stale
threshold fails here, not at 3 a.m.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cxpulse import metric_names as m
from cxpulse.core.targets import parse_targets
from cxpulse.mixin.command import load_targets, render

ROOT = Path(__file__).resolve().parents[2]
TARGETS = load_targets(ROOT / "targets.yaml")


def test_checked_in_files_are_not_stale() -> None:
    for rel, content in render(TARGETS).items():
        assert (ROOT / rel).read_text() == content, f"{rel} is stale: run `cxpulse generate`"


def test_generate_check_detects_a_stale_file(tmp_path: Path) -> None:
    (tmp_path / "targets.yaml").write_text((ROOT / "targets.yaml").read_text())
    cmd = [str(Path(sys.executable).parent / "cxpulse"), "generate",
           "--targets", str(tmp_path / "targets.yaml"), "--out", str(tmp_path)]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert subprocess.run([*cmd, "--check"], capture_output=True).returncode == 0
    (tmp_path / "targets.yaml").write_text(
        (ROOT / "targets.yaml").read_text().replace("target: 0.80", "target: 0.81", 1)
    )
    assert subprocess.run([*cmd, "--check"], capture_output=True).returncode == 1


@pytest.mark.prometheus
def test_rules_pass_promtool_check() -> None:
    # --lint=all --lint-fatal: duplicate rules and the like fail the check, not just warn
    out = subprocess.run(["promtool", "check", "rules", "--lint=all", "--lint-fatal",
                          str(ROOT / "alerts/cxpulse-rules.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.prometheus
def test_alertmanager_config_is_valid() -> None:
    out = subprocess.run(["amtool", "check-config", str(ROOT / "alerts/alertmanager.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in kv.items()) + "}"


def _survey_series(kpi: str, team: str, value: float, n: int) -> list[dict[str, str]]:
    """Served by two exporter replicas (identical but `instance`): one alert, not two."""
    window = TARGETS.scores[kpi].window
    margin = 20.0 if kpi == "nps" else 0.2
    out = []
    for inst in ("e1", "e2"):
        lab = _labels(window=window, team=team, channel="all", agent="all", touchpoint="all",
                      instance=inst)
        out += [
            {"series": f"{m.SURVEY_VALUE[kpi]}{lab}", "values": f"{value}x60"},
            {"series": f"{m.SURVEY_RESPONSES[kpi]}{lab}", "values": f"{n}x60"},
            # an interval that clears the target only for the `unsure` team
            {"series": f"{m.SURVEY_CI_UPPER[kpi]}{lab}",
             "values": f"{value + (margin if team == 'unsure' else margin / 100)}x60"},
        ]
    return out


def _score_case(kpi: str, title: str) -> dict[str, Any]:
    """Team `low` is under target with enough samples (fires); `small` is under target
    with too few (must not fire); `ok` sits exactly on the target (must not fire);
    `unsure` is under target but its interval reaches it (must not fire); `all` is the
    organisation, which no rule may match."""
    target = TARGETS.score_for(kpi)
    step = 5.0 if kpi == "nps" else 0.05
    n_ok, n_small = TARGETS.min_sample, TARGETS.min_sample - 1
    if kpi == "fcr":
        series = []
        # FCR's interval comes from n in the rule: 1,000 first solves make 5 points clear,
        # 30 do not (the `unsure` case of the surveys)
        for team, value, n in (("low", target - step, 1000), ("small", target - step, n_small),
                               ("ok", target, 1000), ("unsure", target - step, n_ok),
                               ("all", target - step, 1000)):
            lab = _labels(window=TARGETS.scores["fcr"].window, team=team, channel="all",
                          priority="all")
            series += [{"series": f"{m.FCR}{lab}", "values": f"{value}x60"},
                       {"series": f"{m.FIRST_SOLVES}{lab}", "values": f"{n}x60"}]
    else:
        series = (_survey_series(kpi, "low", target - step, n_ok)
                  + _survey_series(kpi, "small", target - step, n_small)
                  + _survey_series(kpi, "ok", target, n_ok)
                  + _survey_series(kpi, "unsure", target - step, n_ok)
                  + _survey_series(kpi, "all", target - step, n_ok))
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": f"Cxpulse{title}BelowTarget", "exp_alerts": []},
            {"eval_time": "45m", "alertname": f"Cxpulse{title}BelowTarget",
             "exp_alerts": [{"exp_labels": {
                 "severity": "ticket", "component": "kpi", "team": "low",
                 "window": TARGETS.scores[kpi].window, "channel": "all",
                 **({"priority": "all"} if kpi == "fcr" else {"agent": "all", "touchpoint": "all"}),
             }}]},
        ],
    }


def _frt_case() -> dict[str, Any]:
    frt = TARGETS.frt
    q = f"{frt.quantile * 100:g}"
    series = []
    for team, value, n in (("slow", frt.target_seconds + 60, TARGETS.min_sample),
                           ("quiet", frt.target_seconds + 60, TARGETS.min_sample - 1),
                           ("fast", frt.target_seconds - 60, TARGETS.min_sample)):
        base = {"window": frt.ticket_window, "team": team, "channel": "all", "priority": "all"}
        series += [
            {"series": f"{m.FRT}{_labels(**base, percentile=q)}", "values": f"{value}x90"},
            {"series": f"{m.FRT_COUNT}{_labels(**base)}", "values": f"{n}x90"},
        ]
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "30m", "alertname": "CxpulseFirstResponseTimeHigh", "exp_alerts": []},
            {"eval_time": "75m", "alertname": "CxpulseFirstResponseTimeHigh",
             "exp_alerts": [{"exp_labels": {"severity": "ticket", "component": "kpi",
                                            "team": "slow", "window": frt.ticket_window,
                                            "channel": "all", "priority": "all",
                                            "percentile": q}}]},
        ],
    }


def _burn_case() -> dict[str, Any]:
    """Team `burning` breaches half its tickets (over 4x the 10 % budget), team `fine` 5 %."""
    page = next(b for b in TARGETS.frt.burn_rates if b.severity == "page")
    share = page.factor * (1 - TARGETS.frt.objective)
    lab = {"channel": "email", "priority": "normal"}
    per_min = 20
    def counter(share_breached: float) -> tuple[str, str]:
        b = round(per_min * share_breached)
        return f"0+{b}x180", f"0+{per_min - b}x180"
    burning = counter(min(0.95, share + 0.1))
    fine = counter(0.05)
    return {
        "interval": "1m",
        "input_series": [
            {"series": f"{m.SLA_BREACHED_TOTAL}{_labels(team='burning', **lab)}",
             "values": burning[0]},
            {"series": f"{m.SLA_MET_TOTAL}{_labels(team='burning', **lab)}", "values": burning[1]},
            {"series": f"{m.SLA_BREACHED_TOTAL}{_labels(team='fine', **lab)}", "values": fine[0]},
            {"series": f"{m.SLA_MET_TOTAL}{_labels(team='fine', **lab)}", "values": fine[1]},
        ],
        "alert_rule_test": [
            {"eval_time": "90m", "alertname": f"CxpulseFrtSlaBurnRate{page.long}",
             "exp_alerts": [{"exp_labels": {"severity": "page", "component": "kpi",
                                            "team": "burning"}}]},
        ],
    }


#: Overdue tickets of a team that keeps answering (the at-risk page's look-alike).
SLOW = 2


def _at_risk_case() -> dict[str, Any]:
    """From minute 70 the teams hold 3x `min_unanswered` unanswered tickets (usual level 1,
    few arrivals): `breached` has every one of them past its deadline and none in the
    at-risk band (a fully breached queue: it must page, issue 20), `risky` has them in the
    band (they breach at minute 90), `calm` has neither (it must not page: nothing is even
    half-way to its target). `recovered` is `breached` whose team sends `catch_up_replies`
    first replies per overdue ticket from minute 100 while its queue is still long: the
    page closes (it used to hold on the long queue alone, 16-17 min after a big team's
    recovery). `slow` has a long queue of fresh tickets and `SLOW` old overdue ones while
    the team sends more first replies than that: slow tickets, not a stalling queue, no
    page (it paged a healthy 720-ticket-a-day team). `declining` sends `catch_up_replies`
    first replies for its one overdue ticket but tickets arrive twice as fast (a decline,
    its queue still growing): the page holds."""
    a = TARGETS.paging.at_risk
    many = 3 * a.min_unanswered
    caught_up = TARGETS.paging.stall.catch_up_replies * many
    caught_one = TARGETS.paging.stall.catch_up_replies
    series = []
    for team, band, breached in (("breached", "0x120", f"0x70 {many}x50"),
                                 ("risky", f"0x70 {many}x19 0x30", f"0x90 {many}x30"),
                                 ("calm", "0x120", "0x120"),
                                 ("cold", f"0x70 {many}x50", "0x120"),
                                 ("recovered", "0x120", f"0x70 {many}x50"),
                                 ("slow", "0x120", f"0x70 {SLOW}x50"),
                                 ("declining", f"0x70 {many}x50", "0x90 1x30")):
        lab = _labels(team=team, channel="all", priority="all")
        risk = _labels(team=team, channel="all", priority="all", threshold=f"{a.threshold:g}")
        created = _labels(window="15m", team=team, channel="all", priority="all")
        day = _labels(window="24h", team=team, channel="all", priority="all")
        # `cold`: Prometheus holds the team's series only from minute 20 (a cold start), so
        # at minute 80 its usual level (the hour ending 15 min ago) is not known yet
        history = "_x19 30x100" if team == "cold" else "30x120"
        series += [
            {"series": f"{m.UNANSWERED}{lab}", "values": f"1x70 {many}x50"},
            {"series": f"{m.AT_RISK}{risk}", "values": band},
            {"series": f"{m.BREACHED_UNANSWERED}{lab}", "values": breached},
            {"series": f"{m.CREATED}{created}",
             "values": f"{2 * caught_one}x120" if team == "declining" else "2x120"},
            {"series": f"{m.CREATED}{day}", "values": history},
        ]
        replies = _labels(window="15m", team=team, channel="all", priority="all")
        if team == "recovered":
            series.append({"series": f"{m.FRT_COUNT}{replies}",
                           "values": f"0x100 {caught_up}x20"})
        if team == "declining":
            series.append({"series": f"{m.FRT_COUNT}{replies}", "values": f"{caught_one}x120"})
        if team == "slow":
            series.append({"series": f"{m.FRT_COUNT}{replies}", "values": f"{SLOW + 1}x120"})

    def firing(*teams: str) -> list[dict[str, Any]]:
        return [{"exp_labels": {"severity": "page", "component": "kpi", "team": t,
                                "channel": "all", "priority": "all"}} for t in teams]
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "65m", "alertname": "CxpulseFrtAtRisk", "exp_alerts": []},
            {"eval_time": "80m", "alertname": "CxpulseFrtAtRisk",
             "exp_alerts": firing("breached", "risky", "recovered", "declining")},
            # once the team's history covers the baseline hour, `cold` pages too;
            # `recovered` caught up at minute 100: closed after keep_firing_for (3m)
            {"eval_time": "105m", "alertname": "CxpulseFrtAtRisk",
             "exp_alerts": firing("breached", "risky", "cold", "declining")},
            # 50 minutes on, the stalled level is the usual one (from minute 114): the page
            # holds while the team has not caught up with its overdue tickets
            {"eval_time": "120m", "alertname": "CxpulseFrtAtRisk",
             "exp_alerts": firing("breached", "risky", "cold", "declining")},
        ],
    }


def _forecast_case() -> dict[str, Any]:
    """The breach-forecast page (issue 20). `behind`: from minute 20 the queue forecasts
    `min_tickets` + 1 breaches, then 1, then none while two tickets wait past their
    deadline, then none overdue: it pages, holds through the 1 and the overdue tickets,
    and resolves. `below`: always one breach short of `min_tickets`; `spike`: the
    forecast for a single evaluation (shorter than `for:`): neither pages. `cold`: its
    series (and the core's 15 min pace window) begin at minute 19, a cold start: its
    forecast from minute 20 pages only once its history is 15 minutes deep."""
    f = TARGETS.paging.forecast
    lab = {"channel": "all", "priority": "all"}

    def values(*runs: tuple[float, int]) -> str:
        return " ".join(str(v) for v, n in runs for _ in range(n))

    series = [
        {"series": f"{m.FORECAST_BREACHES}{_labels(team='behind', **lab)}",
         "values": values((0, 20), (f.min_tickets + 1, 15), (1, 10), (0, 25))},
        {"series": f"{m.BREACHED_UNANSWERED}{_labels(team='behind', **lab)}",
         "values": values((0, 45), (2, 10), (0, 15))},
        {"series": f"{m.FORECAST_BREACHES}{_labels(team='below', **lab)}",
         "values": values((f.min_tickets - 1, 70))},
        {"series": f"{m.FORECAST_BREACHES}{_labels(team='spike', **lab)}",
         "values": values((0, 30), (3 * f.min_tickets, 1), (0, 39))},
        {"series": f"{m.FORECAST_BREACHES}{_labels(team='cold', **lab)}",
         "values": "_x19 " + values((0, 1), (f.min_tickets, 50))},
    ]
    for team in ("behind", "below", "spike"):
        series.append({"series": f"{m.CREATED}{_labels(window='24h', team=team, **lab)}",
                       "values": values((30, 70))})
    series.append({"series": f"{m.CREATED}{_labels(window='24h', team='cold', **lab)}",
                   "values": "_x19 " + values((30, 51))})

    def firing(*teams: str) -> list[dict[str, Any]]:
        return [{"exp_labels": {"severity": "page", "component": "kpi", "team": t, **lab}}
                for t in teams]

    name = "CxpulseFrtBreachForecast"
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "19m", "alertname": name, "exp_alerts": []},
            {"eval_time": "23m", "alertname": name, "exp_alerts": firing("behind")},
            {"eval_time": "32m", "alertname": name, "exp_alerts": firing("behind")},
            {"eval_time": "40m", "alertname": name, "exp_alerts": firing("behind", "cold")},
            # held by the two overdue tickets alone
            {"eval_time": "52m", "alertname": name, "exp_alerts": firing("behind", "cold")},
            # nothing forecast nor overdue from minute 55: closed after keep_firing_for (3m)
            {"eval_time": "62m", "alertname": name, "exp_alerts": firing("cold")},
        ],
    }


def _burn_guard_case() -> dict[str, Any]:
    """The burn-rate page's short-window guard and its hold (issue 20). `sparse` breaches
    every deadline, one every 4 minutes: 15 in the hour but at most 2 in 5 minutes, no
    evidence that it is burning now: never opens. `stalled` burns for an hour, then its
    counters stop (a night with no new deadlines) while 5 tickets wait past theirs: the
    page stays open; once they are answered (minute 100) it resolves."""
    page = next(b for b in TARGETS.frt.burn_rates if b.severity == "page")
    lab = {"channel": "email", "priority": "normal"}
    rollup = {"channel": "all", "priority": "all"}
    sparse = " ".join(str(i // 4) for i in range(130))
    stalled_b = " ".join(str(15 * min(i, 60)) for i in range(130))
    stalled_m = " ".join(str(5 * min(i, 60)) for i in range(130))
    return {
        "interval": "1m",
        "input_series": [
            {"series": f"{m.SLA_BREACHED_TOTAL}{_labels(team='sparse', **lab)}",
             "values": sparse},
            {"series": f"{m.SLA_MET_TOTAL}{_labels(team='sparse', **lab)}", "values": "0x130"},
            {"series": f"{m.BREACHED_UNANSWERED}{_labels(team='sparse', **rollup)}",
             "values": "1x130"},
            {"series": f"{m.SLA_BREACHED_TOTAL}{_labels(team='stalled', **lab)}",
             "values": stalled_b},
            {"series": f"{m.SLA_MET_TOTAL}{_labels(team='stalled', **lab)}",
             "values": stalled_m},
            {"series": f"{m.BREACHED_UNANSWERED}{_labels(team='stalled', **rollup)}",
             "values": "5x100 0x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "55m", "alertname": f"CxpulseFrtSlaBurnRate{page.long}",
             "exp_alerts": [{"exp_labels": {"severity": "page", "component": "kpi",
                                            "team": "stalled"}}]},
            # 30 minutes without a deadline: still open (the stall goes on)
            {"eval_time": "90m", "alertname": f"CxpulseFrtSlaBurnRate{page.long}",
             "exp_alerts": [{"exp_labels": {"severity": "page", "component": "kpi",
                                            "team": "stalled"}}]},
            # answered at minute 100; closed within keep_firing_for (3m) and a few minutes
            {"eval_time": "110m", "alertname": f"CxpulseFrtSlaBurnRate{page.long}",
             "exp_alerts": []},
        ],
    }


def _quiet_shift_case() -> dict[str, Any]:
    """The stall page on a thin night shift (issue 20): one ticket past its deadline and
    few arrivals, so neither the two-overdue nor the silent-arrivals clause can open it.
    `stalled` has a second customer past the quiet band, no first reply in 15 minutes and
    a thin hour (`quiet_max_arrivals` tickets): it pages. `slow` has only the overdue ticket
    (three others are half-way, below the quiet band): one slow ticket, no page.
    `answering` has the second customer too but sent a first reply in the window: no page.
    `lull` is `stalled` on a day shift (one ticket more in the hour than a thin shift
    brings): a small team's lull, no page (the old rule paged it). `replied` has two
    overdue tickets and sent one first reply (the old rule's "more overdue than replies"
    paged it; now it takes `overdue_per_reply` per reply), `silent` the same two with no
    reply: it pages. From minute 40 `stalled` is answered."""
    s = TARGETS.paging.stall
    other = 0.5 if s.quiet_band != 0.5 else 0.75
    thin, day = s.quiet_max_arrivals, s.quiet_max_arrivals + 1
    two = f"0x10 {s.min_breached}x50"
    series = []
    for team, band, half, replies, overdue, hour in (
            ("stalled", f"0x10 {s.quiet_min_waiting - 1}x50", "0x60", None, "0x10 1x30 0x20",
             thin),
            ("slow", "0x60", "0x10 3x50", None, "0x10 1x50", thin),
            ("answering", f"0x10 {s.quiet_min_waiting - 1}x50", "0x60", "1x60", "0x10 1x50",
             thin),
            ("lull", f"0x10 {s.quiet_min_waiting - 1}x50", "0x60", None, "0x10 1x50", day),
            ("replied", "0x60", "0x60", f"0x10 {s.min_breached // s.overdue_per_reply}x50",
             two, day),
            ("silent", "0x60", "0x60", "0x60", two, day)):
        lab = {"team": team, "channel": "all", "priority": "all"}
        series += [
            {"series": f"{m.BREACHED_UNANSWERED}{_labels(**lab)}", "values": overdue},
            {"series": f"{m.AT_RISK}{_labels(threshold=f'{s.quiet_band:g}', **lab)}",
             "values": band},
            {"series": f"{m.AT_RISK}{_labels(threshold=f'{other:g}', **lab)}", "values": half},
            {"series": f"{m.CREATED}{_labels(window='15m', **lab)}", "values": "1x60"},
            {"series": f"{m.CREATED}{_labels(window='1h', **lab)}", "values": f"{hour}x60"},
        ]
        if replies is not None:
            series.append({"series": f"{m.FRT_COUNT}{_labels(window='15m', **lab)}",
                           "values": replies})

    def firing(*teams: str) -> list[dict[str, Any]]:
        return [{"exp_labels": {"severity": "page", "component": "kpi", "team": t,
                                "channel": "all", "priority": "all"}} for t in teams]

    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "9m", "alertname": "CxpulseFrtStalled", "exp_alerts": []},
            {"eval_time": "15m", "alertname": "CxpulseFrtStalled",
             "exp_alerts": firing("stalled", "silent")},
            {"eval_time": "35m", "alertname": "CxpulseFrtStalled",
             "exp_alerts": firing("stalled", "silent")},
            # answered at minute 40: closed once keep_firing_for (3m) has run out
            {"eval_time": "50m", "alertname": "CxpulseFrtStalled",
             "exp_alerts": firing("silent")},
        ],
    }


def _pipeline_case() -> dict[str, Any]:
    """WorkerDown pages within 2 minutes of the first failed scrape (1 m for: + 30 s
    evaluation); the exporters all down fires KpisUnavailable, one down only a ticket;
    a worker whose credentials the broker refuses pages KafkaAuthFailing (1 m for:)."""
    return {
        "interval": "30s",
        "input_series": [
            {"series": 'up{job="cxpulse-worker",instance="w1"}', "values": "1x20 0x20"},
            {"series": 'up{job="cxpulse-worker",instance="w2"}', "values": "1x40"},
            {"series": 'up{job="cxpulse-exporter",instance="e1"}', "values": "1x20 0x20"},
            {"series": 'up{job="cxpulse-exporter",instance="e2"}', "values": "1x30 0x10"},
            # the broker refuses w1's credentials from minute 10 (a rotated password)
            {"series": f'{m.KAFKA_AUTH_FAILING}{{job="cxpulse-worker",instance="w1"}}',
             "values": "0x20 1x20"},
            {"series": f'{m.KAFKA_AUTH_FAILING}{{job="cxpulse-worker",instance="w2"}}',
             "values": "0x40"},
        ],
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "CxpulseWorkerDown", "exp_alerts": []},
            {"eval_time": "12m", "alertname": "CxpulseWorkerDown",
             "exp_alerts": [{"exp_labels": {"severity": "page", "component": "pipeline",
                                            "job": "cxpulse-worker", "instance": "w1"}}]},
            {"eval_time": "10m", "alertname": "CxpulseKafkaAuthFailing", "exp_alerts": []},
            {"eval_time": "12m", "alertname": "CxpulseKafkaAuthFailing",
             "exp_alerts": [{"exp_labels": {"severity": "page", "component": "pipeline",
                                            "job": "cxpulse-worker", "instance": "w1"}}]},
            {"eval_time": "15m", "alertname": "CxpulseKpisUnavailable", "exp_alerts": []},
            {"eval_time": "17m", "alertname": "CxpulseKpisUnavailable",
             "exp_alerts": [{"exp_labels": {"severity": "page", "component": "pipeline"}}]},
            {"eval_time": "5m", "alertname": "CxpulseWatchdog",
             "exp_alerts": [{"exp_labels": {"severity": "none", "component": "pipeline"}}]},
        ],
    }


def _collapse_case(kpi: str, title: str, severity: str) -> dict[str, Any]:
    """`collapsed` reaches the evidence ratio 1 at minute 20, falls back to 0.6 (held: the
    alert waits for as much evidence of recovery as opened it) and reaches 0 at minute 60;
    `close` hovers at 0.95 (never fires); `all` (the organisation) is never matched."""
    series = []
    for team, values in (("collapsed", "0x9 0.5x9 1x9 0.6x20 0x30"),
                         ("close", "0.95x79"), ("all", "1x79")):
        for inst in ("e1", "e2"):
            series.append({"series": f"{m.COLLAPSE_EVIDENCE[kpi]}"
                                     f"{_labels(team=team, instance=inst)}",
                           "values": values})
    if severity == "page":
        # `explained`: the same evidence an hour after an FRT page of the team (its cause);
        # `known`: the evidence completes while the team's CSAT ticket is already open.
        for team in ("explained", "known"):
            for inst in ("e1", "e2"):
                series.append({"series": f"{m.COLLAPSE_EVIDENCE[kpi]}"
                                         f"{_labels(team=team, instance=inst)}",
                               "values": "0x9 1x70"})
        series += [
            {"series": 'ALERTS{alertname="CxpulseFrtStalled",alertstate="firing",'
                       'severity="page",component="kpi",team="explained"}',
             "values": "1x5 stale"},
            {"series": f'ALERTS{{alertname="Cxpulse{title}BelowTarget",alertstate="firing",'
                       'severity="ticket",component="kpi",team="known",window="24h"}',
             "values": "1x79"},
        ]
    firing = [{"exp_labels": {"severity": severity, "component": "kpi", "team": "collapsed"}}]
    name = f"Cxpulse{title}Collapse"
    tests: list[dict[str, Any]] = [
        {"eval_time": "15m", "alertname": name, "exp_alerts": []},
        {"eval_time": "21m", "alertname": name, "exp_alerts": firing},
        {"eval_time": "45m", "alertname": name, "exp_alerts": firing},
    ]
    if severity == "page":  # closed within keep_firing_for (3m) of the ratio's return to 0
        tests.append({"eval_time": "65m", "alertname": name, "exp_alerts": []})
    return {"interval": "1m", "input_series": series, "alert_rule_test": tests}


def _growing_queue_case() -> dict[str, Any]:
    """From minute 70 each team holds 14 unanswered tickets after a quiet hour, 21 created
    in the last 15 minutes (above the demand bar of 2 x 21 x 4.5 / 15 = 12.6) and tickets
    in the at-risk band. `absorbing` sent 18 first replies in those 15 minutes (0.86 of
    the arrivals: a 5,000-ticket-a-day shipping team's busy morning that paged, docs/
    alerts.md "A 5,000/day normal week"): its queue is worked off, no page. `slowing` sent
    12 (0.57: the 2,000-a-day incident 7 min after its onset) and `silent` none (no
    series at all): their queues grow, both page. Expected from `max_reply_share` (0.75 x
    21 = 15.75), not from a run."""
    a = TARGETS.paging.at_risk
    series = []
    for team, replies in (("absorbing", 18), ("slowing", 12), ("silent", None)):
        labels = {"team": team, "channel": "all", "priority": "all"}
        series += [
            {"series": f"{m.UNANSWERED}{_labels(**labels)}", "values": "1x70 14x30"},
            {"series": f"{m.AT_RISK}{_labels(threshold=f'{a.threshold:g}', **labels)}",
             "values": "0x70 2x30"},
            {"series": f"{m.CREATED}{_labels(window='15m', **labels)}", "values": "2x70 21x30"},
            {"series": f"{m.CREATED}{_labels(window='24h', **labels)}", "values": "100x100"},
        ]
        if replies is not None:
            series.append({"series": f"{m.FRT_COUNT}{_labels(window='15m', **labels)}",
                           "values": f"2x70 {replies}x30"})
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "80m", "alertname": "CxpulseFrtAtRisk",
             "exp_alerts": [{"exp_labels": {"severity": "page", "component": "kpi",
                                            "team": t, "channel": "all", "priority": "all"}}
                            for t in ("slowing", "silent")]},
        ],
    }


@pytest.mark.prometheus
def test_alerts_fire_on_the_right_side_of_each_target(tmp_path: Path) -> None:
    tests = [_frt_case(), _burn_case(), _pipeline_case(), _at_risk_case(),
             _growing_queue_case(), _burn_guard_case(), _quiet_shift_case(), _forecast_case()]
    tests += [_collapse_case("csat", "CSAT", "page"), _collapse_case("ces", "CES", "ticket"),
              _collapse_case("fcr", "FCR", "ticket")]
    tests += [_score_case(k, t) for k, t in (("csat", "CSAT"), ("nps", "NPS"), ("ces", "CES"),
                                               ("fcr", "FCR"))]
    # promtool compares annotations too; the behaviour under test is expr/for/labels, so
    # the test evaluates a copy of the generated rules without their prose.
    rules = yaml.safe_load((ROOT / "alerts/cxpulse-rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    spec = {"rule_files": [str(tmp_path / "rules.yml")],
            "evaluation_interval": "1m", "tests": tests}
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_team_override_gets_its_own_rule_and_is_excluded_from_the_default() -> None:
    from cxpulse.mixin.alerts import alert_rules

    t = parse_targets({"teams": {"vip": {"csat": 0.95}}})
    rules = [r for g in alert_rules(t)["groups"] for r in g["rules"]]
    csat = [r for r in rules if r["alert"].startswith("CxpulseCSATBelowTarget")]
    assert len(csat) == 2
    assert any('team!~"vip"' in r["expr"] and "< 0.8\n" in r["expr"] for r in csat)
    assert any('team="vip"' in r["expr"] and "< 0.95\n" in r["expr"] for r in csat)


def test_every_alert_has_an_owner_a_severity_and_an_absolute_runbook() -> None:
    from cxpulse.mixin.alerts import alert_rules

    t = parse_targets({"runbook_base_url": "https://wiki.example.com/cxpulse/runbook"})
    rules = [r for g in alert_rules(t)["groups"] for r in g["rules"]]
    runbook = (ROOT / "docs/runbook.md").read_text()
    for r in rules:
        assert r["labels"]["severity"] in ("page", "ticket", "none"), r["alert"]
        url = r["annotations"]["runbook_url"]
        assert url == f"https://wiki.example.com/cxpulse/runbook#{r['alert'].lower()}"
        assert f"## {r['alert']}\n" in runbook, f"docs/runbook.md lacks {r['alert']}"
        if r["labels"].get("component") == "kpi":
            assert "keep_firing_for" in r, r["alert"]  # no false RESOLVED on stale series
            # one owner: never the organisation roll-up (every selector excludes it)
            for sel in re.findall(r"cxpulse_[a-z_]+\{([^}]*)\}", r["expr"]):
                assert 'team!="all"' in sel or 'team="' in sel, (r["alert"], sel)
            # every KPI selector goes through the replica dedup
            assert r["expr"].count("max without (instance)") >= r["expr"].count("cxpulse_")


def test_runbook_base_url_must_be_absolute() -> None:
    from cxpulse.core.targets import TargetsError

    with pytest.raises(TargetsError, match="runbook_base_url"):
        parse_targets({"runbook_base_url": "docs/runbook.md"})


def _panels() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name in ("wall", "oncall", "teamlead"):
        model = json.loads((ROOT / f"grafana/dashboards/{name}.json").read_text())
        out += [(name, p) for p in model["panels"]]
    return out


def test_dashboards_are_well_formed() -> None:
    for name in ("wall", "oncall", "teamlead"):
        model = json.loads((ROOT / f"grafana/dashboards/{name}.json").read_text())
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids)), name
        assert model["uid"].startswith("cxpulse-")
        for p in model["panels"]:
            g = p["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, (name, p["title"])
            assert p["title"]
            for t in p.get("targets", []):
                assert t["datasource"]["uid"] == "${datasource}"


def test_wall_thresholds_come_from_targets() -> None:
    wall = [p for n, p in _panels() if n == "wall" and p["type"] == "stat"]
    csat = next(p for p in wall if p["title"] == "CSAT")
    steps = csat["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == TARGETS.score_for("csat")
    frt = next(p for p in wall if p["title"].startswith("First reply"))
    steps = frt["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == TARGETS.frt.target_seconds
    # The wall is read from across the room: big values, no variables to pick.
    for p in wall:
        assert p["options"]["text"]["valueSize"] >= 64


def panel_queries() -> list[str]:
    """Every PromQL expression of every panel, with template variables filled in."""
    exprs = []
    for _, p in _panels():
        for t in p.get("targets", []):
            exprs.append(t["expr"].replace("$window", "24h").replace("$team", "all")
                         .replace("$agent", ".+").replace("$__rate_interval", "1m"))
    return exprs
