"""Replay simulated days through the generated alert rules at event-time speed.

Why this exists: whether an alert design pages "on incidents and nothing
else" can only be judged on realistic days, and a live run takes a day per
day. Here a simulated stream is applied to the KPI core minute by minute, each
minute is rendered by the same exporter code that serves Prometheus
(`cxpulse.exposition.render.render`), and the minutes become the `input_series`
of a `promtool test rules` file (scrape interval 1 m, rule evaluation every
30 s). Prometheus' own rule evaluator then runs the generated rules, and the
`ALERTS` series it writes are summarised per day with PromQL subqueries:
firing episodes, first and last firing instant, per alert and team.

Nothing of the rules is re-implemented here: the summary queries only read
`ALERTS`, so a change to a rule, a `for:` or a `keep_firing_for:` shows up in
the figures. The pipeline's self-metrics (scrape `up`, KPI delay) are fed
as healthy constants: these days are about the KPI alerts.
"""

from __future__ import annotations

import copy
import operator
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cxpulse import metric_names as m
from cxpulse.core.config import CoreConfig
from cxpulse.core.engine import Evaluation, PartitionEngine, evaluate
from cxpulse.core.events import role_of
from cxpulse.core.targets import Targets
from cxpulse.exposition.render import COUNTER_FAMILIES, GAUGE_FAMILIES, KPI_FAMILIES, render
from cxpulse.mixin.alerts import alert_rules
from cxpulse.sim.model import SimConfig, Simulation
from cxpulse.sim.params import HOUR, MINUTE

EVAL_INTERVAL_S = 30
CHUNK_H = 3
STEP = f"{EVAL_INTERVAL_S}s"

#: The alert's identity in the summaries (other labels are the KPI's own dimensions).
KEY_LABELS = ("alertname", "team", "severity")


def rule_metric_names(rules: dict[str, Any]) -> set[str]:
    """Metric names the rules read: only these need to be fed to promtool."""
    names: set[str] = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            names.update(re.findall(r"\b(cxpulse_[a-z0-9_]+)", rule["expr"]))
    return names


def _fmt(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def _series_text(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


@dataclass
class Minutes:
    """Per-series values, one slot per minute (None: not exported that minute)."""

    n: int = 0
    values: dict[str, list[float | None]] = field(default_factory=dict)

    def add(self, series: str, minute: int, value: float) -> None:
        slots = self.values.get(series)
        if slots is None:
            slots = self.values[series] = [None] * minute
        slots.extend([None] * (minute - len(slots)))
        slots.append(value)

    def encoded(self) -> Iterator[dict[str, str]]:
        """promtool `input_series`, run-length encoded; a series that disappears is
        marked stale at once, as a scrape that no longer returns it would."""
        for series, slots in self.values.items():
            slots = slots + [None] * (self.n - len(slots))
            parts: list[str] = []
            i = 0
            while i < len(slots):
                v = slots[i]
                j = i
                while j + 1 < len(slots) and slots[j + 1] == v:
                    j += 1
                run = j - i  # extra repetitions
                if v is None:
                    was_present = i > 0 and slots[i - 1] is not None
                    gap = ["stale"] if was_present else []
                    rest = run + 1 - len(gap)
                    if rest > 0:
                        gap.append("_" if rest == 1 else f"_x{rest}")
                    parts.extend(gap)
                else:
                    parts.append(_fmt(v) if run == 0 else f"{_fmt(v)}x{run}")
                i = j + 1
            yield {"series": series, "values": " ".join(parts)}


def _exported_names(core_name: str, table: dict[str, Any]) -> set[str]:
    fam = table.get(core_name)
    if fam is None:
        return set()
    names = {fam.name}
    if core_name in m.SURVEY_VALUE:  # the exporter adds n and interval bounds beside it
        names |= {m.SURVEY_RESPONSES[core_name], m.SURVEY_CI_LOWER[core_name],
                  m.SURVEY_CI_UPPER[core_name]}
    return names


def only_wanted(ev: Evaluation, wanted: set[str]) -> Evaluation:
    """The evaluation without the values no rule reads, before the exporter renders it.

    Only a speed-up (rendering every agent's series 1,440 times a day dominates
    the run); the values kept are the evaluation's own, rendered by the real code."""
    def keep(core_name: str, table: dict[str, Any]) -> bool:
        return bool(_exported_names(core_name, table) & wanted)

    def team_level(labels: Any) -> bool:  # rules read team roll-ups (and priorities)
        return not any(dim in labels for dim in ("channel", "agent", "touchpoint"))

    return Evaluation(
        ev.at_ms, ev.windows,
        tuple(k for k in ev.kpis if keep(k.name, KPI_FAMILIES) and team_level(k.labels)),
        tuple(g for g in ev.gauges if keep(g.name, GAUGE_FAMILIES) and team_level(g.labels)),
        tuple(c for c in ev.counters if keep(c.name, COUNTER_FAMILIES)),
        (),
    )


def record_minutes(cfg: SimConfig, wanted: set[str], core: CoreConfig | None = None) -> Minutes:
    """Apply the simulated stream to one engine and render it at the end of every minute."""
    engine = PartitionEngine(core or CoreConfig(), 0)
    out = Minutes()
    events = iter(Simulation(cfg).events())
    pending = next(events, None)
    minutes = cfg.duration_ms // MINUTE
    for minute in range(minutes):
        boundary = cfg.start_ms + (minute + 1) * MINUTE
        while pending is not None and pending.ts < boundary:
            engine.apply(role_of(pending), pending)
            pending = next(events, None)
        for family in render(only_wanted(evaluate([engine], at_ms=boundary - 1), wanted)):
            for sample in family.samples:
                if sample.name in wanted or family.name in wanted:
                    out.add(_series_text(sample.name, sample.labels), minute, sample.value)
        out.n = minute + 1
    return out


def healthy_pipeline(n: int) -> list[dict[str, str]]:
    """Scrape targets up and fresh KPIs for the whole run (both jobs, two exporters)."""
    last = n - 1
    series = [
        'up{job="cxpulse-worker",instance="w1"}',
        'up{job="cxpulse-exporter",instance="e1"}',
        'up{job="cxpulse-exporter",instance="e2"}',
    ]
    out = [{"series": s, "values": f"1x{last}"} for s in series]
    for inst in ("e1", "e2"):
        out.append({
            "series": f'cxpulse_kpi_delay_seconds{{job="cxpulse-exporter",instance="{inst}"}}',
            "values": f"15x{last}",
        })
    return out


def _exporters(series: Iterable[dict[str, str]], replicas: int) -> list[dict[str, str]]:
    """Every KPI series as served by `replicas` HA exporter replicas (identical but
    `instance`): with 2, the rules run against the duplicates they must tolerate."""
    out = []
    for s in series:
        name, rest = s["series"].split("{", 1)
        for inst in ("e1", "e2")[:replicas]:
            own = f'instance="{inst}",job="cxpulse-exporter"'
            labels = own + ("," + rest if rest != "}" else "}")
            out.append({"series": f"{name}{{{labels}", "values": s["values"]})
    return out


_FIRING = 'ALERTS{{alertstate="firing"}}'
_PAGING = 'ALERTS{{alertstate="firing",severity="page"}}'


def _summaries(by: str, selector: str) -> dict[str, str]:
    """Firing episodes (firing now, not one step before), first and last firing instant."""
    now = f"max by ({by}) ({selector})"
    before = f"max by ({by}) ({selector} offset {{step}})"
    return {
        "episodes": f"sum_over_time(({now} unless {before})[{{w}}:{{step}}])",
        "first": f"min_over_time((timestamp({now}))[{{w}}:{{step}}])",
        "last": f"max_over_time((timestamp({now}))[{{w}}:{{step}}])",
    }


SUMMARIES = {
    **_summaries("{k}", _FIRING),
    # the same for "a page is open for the team", whatever alert holds it open
    **{f"page_{k}": v for k, v in _summaries("team", _PAGING).items()},
}

_GOT = re.compile(r"(\{[^}]*\}) ([-+0-9.E]+)")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class DayAlerts:
    """What fired during one day (times are seconds since the start of the run)."""

    day: int
    per_alert: dict[tuple[str, str, str], dict[str, float]]  # (alertname, team, sev) -> summary
    pages: dict[str, dict[str, float]]  # team -> episodes / first / last

    def page_count(self, exclude_teams: tuple[str, ...] = ()) -> int:
        return sum(int(v["episodes"]) for t, v in self.pages.items() if t not in exclude_teams)

    def fired(self, severity: str) -> set[tuple[str, str]]:
        return {(a, t) for (a, t, s) in self.per_alert if s == severity}


#: How one day's summaries of two queries (or two teams' pages) combine.
_MERGE: dict[str, Callable[[float, float], float]] = {
    "episodes": operator.add, "first": min, "last": max,
}


def _parse(output: str, n_queries: int) -> list[list[tuple[dict[str, str], float]]]:
    """promtool prints `got:` for every expression whose result differs from the
    (deliberately empty) expectation; an expression with no output returned nothing."""
    results: list[list[tuple[dict[str, str], float]]] = [[] for _ in range(n_queries)]
    for line in output.splitlines():
        if line.strip().startswith("got:"):
            for text, value in _GOT.findall(line):
                labels = dict(_LABEL.findall(text))
                results[int(labels.pop("q"))].append((labels, float(value)))
    return results


def run_rules(
    rules: dict[str, Any], minutes: Minutes, workdir: Path | None = None, replicas: int = 1,
) -> list[DayAlerts]:
    """Evaluate the rules with promtool over the recorded minutes; summarise per day.
    Its input (tens of MB for a week) goes to `workdir`, kept for a look at what
    promtool read, or else to a temporary directory removed afterwards."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="cxpulse-alertdays-") as tmp:
            return run_rules(rules, minutes, Path(tmp), replicas)
    work = workdir
    rules = copy.deepcopy(rules)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (work / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    series = _exporters(minutes.encoded(), replicas) + healthy_pipeline(minutes.n)
    # (day, kind, expr, eval minute): summaries over CHUNK_H-hour chunks (one 24 h
    # subquery over every alert exceeds promtool's sample limit), merged below.
    queries: list[tuple[int, str, str, int]] = []
    key = ",".join(KEY_LABELS)
    total_h = minutes.n // 60
    for start_h in range(0, total_h, CHUNK_H):
        hours = min(CHUNK_H, total_h - start_h)
        for kind, template in SUMMARIES.items():
            expr = template.format(k=key, w=f"{hours}h", step=STEP)
            # a label `q` naming the query, to find its results in promtool's output
            tagged = f'label_replace({expr}, "q", "{len(queries)}", "", "")'
            queries.append((start_h // 24, kind, tagged, (start_h + hours) * 60 - 1))
    spec = {
        "rule_files": [str(work / "rules.yml")],
        "evaluation_interval": STEP,
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {"expr": q, "eval_time": f"{at}m", "exp_samples": []}
                for _, _, q, at in queries
            ],
        }],
    }
    path = work / "days_test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, width=1 << 20))
    out = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True)
    text = out.stdout + out.stderr
    if out.returncode not in (0, 1) or ", err:" in text or (
        out.returncode == 1 and "got:" not in text
    ):
        raise RuntimeError(f"promtool failed: {text[-3000:]}")
    parsed = _parse(text, len(queries))
    result = [DayAlerts(d, {}, {}) for d in range((total_h + 23) // 24)]
    for (d, query_kind, _, _), rows in zip(queries, parsed, strict=True):
        # (one name per query: the page summaries of a second team are page summaries too)
        kind = query_kind.removeprefix("page_")
        for labels, value in rows:
            if query_kind.startswith("page_"):
                summary = result[d].pages.setdefault(labels.get("team", ""), {})
            else:
                k = (labels.get("alertname", ""), labels.get("team", ""),
                     labels.get("severity", ""))
                summary = result[d].per_alert.setdefault(k, {})
            summary[kind] = _MERGE[kind](summary[kind], value) if kind in summary else value
    return result


def replay(
    targets: Targets, scenario: str, seed: int, hours: int = 24, start_hour: int = 0,
    workdir: Path | None = None, replicas: int = 1, keep_minutes: bool = False,
    tickets_per_day: float | None = None,
) -> Any:
    """Simulate `hours` of a scenario from `start_hour` of its first day and return what
    the generated rules fired each day (alert times in seconds since the run's start);
    with `keep_minutes`, also the recorded minutes; `tickets_per_day` scales the whole
    organisation (and its staff) from the simulator's default."""
    start = SimConfig().start_ms + start_hour * HOUR
    volume = SimConfig().tickets_per_day if tickets_per_day is None else tickets_per_day
    cfg = SimConfig(seed=seed, scenario=scenario, start_ms=start, duration_ms=hours * HOUR,
                    tickets_per_day=volume)
    rules = alert_rules(targets)
    wanted = rule_metric_names(rules) | {m.SLA_BREACHED_TOTAL}
    minutes = record_minutes(cfg, wanted, core_config(targets))
    days = run_rules(rules, minutes, workdir, replicas)
    return (cfg, days, minutes) if keep_minutes else (cfg, days)


def core_config(targets: Targets) -> CoreConfig:
    """The core's FRT targets from the same targets file as the rules."""
    return CoreConfig(
        frt_target_ms=int(targets.frt.target_seconds * 1000),
        frt_target_by_priority={
            k: int(v * 1000) for k, v in targets.frt.by_priority.items()
        },
        min_sample=targets.min_sample,
        evidence=targets.evidence(),
    )
