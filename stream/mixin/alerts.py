"""Prometheus alert rules generated from the targets file.

Why generated: the same target must drive in-stream SLA counting, alerts and
dashboard thresholds; a hand-edited rule file drifts the first time someone
changes a target. `cxpulse generate` writes `alerts/cxpulse-rules.yml`, and a
test fails while the checked-in file differs from what this module produces.

Paging philosophy (on-call judges us by "pages at the right time and not
otherwise"): every KPI alert requires a minimum sample in the same window, a
`for:` duration longer than a scrape hiccup, and is evaluated on the roll-up
(`all`) series per team, so one agent's bad hour never pages anybody.
"""

from __future__ import annotations

from typing import Any

from stream import metric_names as m
from stream.core.targets import Targets

#: The runbook shipped with the rules (docs/runbook.md has one section per alert).
RUNBOOK = "docs/runbook.md"

# Per-team series of the roll-up over the other ticket dimensions.
TEAM_TICKETS = 'channel="all",priority="all"'
TEAM_SURVEYS = 'channel="all",agent="all",touchpoint="all"'


def _alert(
    name: str, expr: str, for_: str, severity: str, summary: str, description: str,
    **labels: str,
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, **labels},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{RUNBOOK}#{name.lower()}",
        },
    }


def _team_clause(targets: Targets, kpi: str) -> tuple[str, list[str]]:
    """Teams with their own target get their own rule; the default rule excludes them."""
    overridden = sorted(t for t, o in targets.teams.items() if kpi in o)
    if not overridden:
        return "", []
    return ',team!~"' + "|".join(overridden) + '"', overridden


def _score_alerts(targets: Targets) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    pct = "{{ $value | humanizePercentage }}"
    score = '{{ $value | printf "%.0f" }}'
    spec = {
        "csat": ("CSAT", m.CSAT, m.SURVEY_RESPONSES["csat"], TEAM_SURVEYS, pct),
        "ces": ("CES", m.CES, m.SURVEY_RESPONSES["ces"], TEAM_SURVEYS, pct),
        "nps": ("NPS", m.NPS, m.SURVEY_RESPONSES["nps"], TEAM_SURVEYS, score),
        "fcr": ("FCR", m.FCR, m.FIRST_SOLVES, TEAM_TICKETS, pct),
    }
    for kpi, (title, value_metric, sample_metric, rollup, shown) in spec.items():
        window = targets.scores[kpi].window
        exclude, overridden = _team_clause(targets, kpi)
        groups = [(targets.score_for(kpi), exclude, "")]
        groups += [(targets.score_for(kpi, t), f',team="{t}"', t) for t in overridden]
        for target, team_sel, team in groups:
            sel = f'window="{window}",{rollup}{team_sel}'
            expr = (
                f"{value_metric}{{{sel}}} < {target:g}\n"
                f"and {sample_metric}{{{sel}}} >= {targets.min_sample}"
            )
            unit = "" if kpi == "nps" else " (ratio)"
            rules.append(_alert(
                f"Cxpulse{title}BelowTarget" + (f"_{team}" if team else ""),
                expr, "30m", "ticket",
                f"{title} of team {{{{ $labels.team }}}} is {shown}, below target",
                f"{title}{unit} over the last {window} is below its target {target:g} "
                f"with at least {targets.min_sample} samples in the window.",
            ))
    return rules


def _frt_alerts(targets: Targets) -> list[dict[str, Any]]:
    frt = targets.frt
    q = f"{frt.quantile * 100:g}"
    rules = []
    # One rule on the team roll-up with the default target, plus one per priority override.
    cases: list[tuple[str, float, str]] = [
        (f'window="{frt.window}",{TEAM_TICKETS}', frt.target_seconds, "")
    ]
    for prio, secs in sorted(frt.by_priority.items()):
        cases.append((f'window="{frt.window}",channel="all",priority="{prio}"', secs, prio))
    for sel, target, prio in cases:
        name = "CxpulseFirstResponseTimeHigh" + (f"_{prio}" if prio else "")
        rules.append(_alert(
            name,
            f'{m.FRT}{{{sel},percentile="{q}"}} > {target:g}\n'
            f"and ignoring(percentile) {m.FRT_COUNT}{{{sel}}} >= {frt.min_count}",
            "10m", "page",
            f"p{int(frt.quantile * 100)} first response time of team {{{{ $labels.team }}}} "
            "is {{ $value | humanizeDuration }}",
            f"p{int(frt.quantile * 100)} FRT over the last {frt.window} exceeds the "
            f"{target:g}s target with at least {frt.min_count} first responses.",
        ))
    budget = 1.0 - frt.objective
    for burn in frt.burn_rates:
        def ratio(window: str) -> str:
            return (
                f"(sum by (team) (increase({m.SLA_BREACHED_TOTAL}[{window}]))\n"
                f"  / clamp_min(sum by (team) (increase({m.SLA_BREACHED_TOTAL}[{window}]))"
                f" + sum by (team) (increase({m.SLA_MET_TOTAL}[{window}])), 1))"
            )
        threshold = burn.factor * budget
        rules.append(_alert(
            f"CxpulseFrtSlaBurnRate{burn.long}",
            f"{ratio(burn.long)} > {threshold:g}\nand\n{ratio(burn.short)} > {threshold:g}",
            "2m" if burn.severity == "page" else "15m", burn.severity,
            f"Team {{{{ $labels.team }}}} burns its FRT SLA budget {burn.factor:g}x too fast",
            f"More than {threshold:.0%} of tickets breached the {frt.target_seconds:g}s "
            f"first-response target over both {burn.long} and {burn.short} "
            f"(objective {frt.objective:.0%}).",
        ))
    return rules


def _pipeline_alerts(targets: Targets) -> list[dict[str, Any]]:
    p = targets.pipeline
    return [
        _alert("CxpulseWorkerDown", 'up{job="cxpulse"} == 0', "2m", "page",
               "cxpulse worker {{ $labels.instance }} is down",
               "Prometheus cannot scrape the worker: KPIs and alerts are blind."),
        _alert("CxpulseProcessingDelayHigh",
               f"{m.PROCESSING_DELAY} > {p.max_processing_delay_seconds:g}", "5m", "page",
               "cxpulse is {{ $value | humanizeDuration }} behind event time",
               "Events are applied late (consumer lag, a stuck agent, or producers' clocks): "
               "the live KPIs show the past."),
        _alert("CxpulseConsumerLagHigh",
               f"sum by (instance) ({m.CONSUMER_LAG}) > {p.max_consumer_lag}", "10m", "ticket",
               "cxpulse worker {{ $labels.instance }} lags {{ $value }} messages",
               "The worker does not keep up with the topics; add a worker or partitions."),
        _alert("CxpulseNoEventsProcessed",
               f"time() - {m.LAST_PROCESSED} > 900", "5m", "ticket",
               "cxpulse has applied no event for 15 minutes",
               "Either the helpdesk stopped producing or the pipeline is stuck."),
        _alert("CxpulseDeadLetterRatioHigh",
               f"sum(rate({m.DEADLETTER_TOTAL}[10m]))\n"
               f"  / clamp_min(sum(rate({m.CONSUMED_TOTAL}[10m])), 1e-9) "
               f"> {p.max_deadletter_ratio:g}",
               "10m", "ticket",
               "{{ $value | humanizePercentage }} of messages are dead-lettered",
               "A producer sends events that break the contract; see the dead-letter topic "
               "and the reason label."),
        _alert("CxpulseLateEventRatioHigh",
               f'sum(rate({m.EVENTS_TOTAL}{{outcome="late"}}[10m]))\n'
               f"  / clamp_min(sum(rate({m.CONSUMED_TOTAL}[10m])), 1e-9) "
               f"> {p.max_late_ratio:g}",
               "10m", "ticket",
               "{{ $value | humanizePercentage }} of events arrive too late for the windows",
               "Producers deliver events later than the allowed lateness; windowed KPIs "
               "undercount. Raise the lateness or fix the producer."),
    ]


def alert_rules(targets: Targets) -> dict[str, Any]:
    """The whole rule file as a plain mapping (YAML-dumped by the caller)."""
    return {
        "groups": [
            {"name": "cxpulse-kpis", "rules": _frt_alerts(targets) + _score_alerts(targets)},
            {"name": "cxpulse-pipeline", "rules": _pipeline_alerts(targets)},
        ]
    }
