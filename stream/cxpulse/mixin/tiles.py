"""The wall's tiles, defined once from `targets.yaml`.

Why one definition: the same KPI appears on the Grafana wall
(`grafana/dashboards/wall.json`), on the web wall (`cxpulse wall`), in the
terminal (`cxpulse top`) and in the summary of `cxpulse report`. If each
kept its own query, threshold or colour rule, a changed target would
recolour one of them and not the others. Here each tile carries its PromQL
(per team and for the organisation), its unit, the sample-size query of
survey-like KPIs and the colour rule with per-team overrides; the renderers
only lay tiles out.

Colours are semantic (`ok`, `warn`, `bad`, `info`, `low_sample`, `no_data`);
each renderer maps them to its palette, so "amber" means the same number
everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from cxpulse import metric_names as m
from cxpulse.core.targets import Targets
from cxpulse.mixin.alerts import COLLAPSE_SEVERITY, COLLAPSE_TITLES, collapse_alert_name
from cxpulse.mixin.promql import one_replica

#: Label value of the organisation-wide roll-up series.
ORG = m.ALL

OK, WARN, BAD, INFO, LOW_SAMPLE, NO_DATA = "ok", "warn", "bad", "info", "low_sample", "no_data"

#: Ceiling KPIs turn amber at this share of their target: time to act before the breach.
AMBER_SHARE = 0.75

#: "At risk" tickets (unanswered past 75 % of their FRT target) are not a KPI with a
#: target in the catalogue; one such ticket is normal in a busy hour, a handful means the
#: queue is slipping. Amber / red from these counts (not at one ticket: issue 11). A
#: ticket past its deadline and still unanswered is counted too and turns the tile red at
#: once (issue 20: a fully breached queue read "At risk 0" in green).
AT_RISK_WARN = 5.0
AT_RISK_BAD = 15.0

#: Collapse evidence (`cxpulse_<kpi>_collapse_evidence_ratio`: the team's CUSUM over its
#: threshold, cxpulse.core.evidence) is red at 1, where the alert opens, and amber from
#: this share of it: half the evidence a page needs. With the default targets (CSAT 80 %,
#: collapse to 50 %, `false_alarm_days: 30`) a healthy team at 88 % satisfied goes amber
#: about once in 8-12 days at any volume, a team exactly at its target every 0.3-3 days
#: (it is near its limit), and after a fall to 50 % amber comes in about half the time the
#: page takes (100 answers a day: 2.8 h against 6.1 h). tests/unit/test_tiles.py computes
#: these figures from the exact run lengths (docs/alerts.md, "On the wall").
EVIDENCE_WARN = 0.5

#: How far back the sparkline reaches, and the comparison point of the trend.
SPARK_RANGE = "6h"
COMPARE_OFFSET = "1d"

TICKET_ROLLUP = 'channel="all",priority="all"'
SURVEY_ROLLUP = 'channel="all",agent="all",touchpoint="all"'


@dataclass(frozen=True)
class Step:
    """From `lower` (inclusive; None = minus infinity) upwards the tile is `colour`."""

    colour: str
    lower: float | None


@dataclass(frozen=True)
class Tile:
    """One KPI as the wall shows it; `{team}` in templates is a team name or `$team`."""

    key: str
    title: str
    description: str
    unit: str  # "seconds" | "ratio" | "score" | "count"
    kind: str  # "ceiling" (lower is better), "floor" (higher is better), "info"
    expr: str  # instant-vector PromQL with a `{team}` placeholder, replicas collapsed
    width: int  # Grafana grid units (24 per row)
    default_target: float | None = None
    team_targets: Mapping[str, float] = field(default_factory=dict)
    warn_at: float | None = None  # explicit amber level for targets that are not from the file
    n_expr: str | None = None  # sample size in the same window; None = not a sampled KPI
    min_n: int | None = None
    #: When set, `n_expr` is not a sample size but a count of tickets in crisis (past
    #: their deadline, unanswered), included in the value: red from this many of them.
    red_from_n: float | None = None
    #: The organisation's row shows the worst team (a series without `team="all"`: the
    #: collapse evidence is a per-team test; an organisation-wide one would hide a team).
    org_is_worst_team: bool = False
    #: The alert this tile's reading opens: the tile stays red while it is firing for the
    #: team (the collapse page holds until the evidence is back at 0, not just under 1).
    alert: str | None = None
    core_name: str = ""  # KPI (or gauge) name in `cxpulse.core` evaluations, for the report
    core_window: str | None = None
    core_labels: Mapping[str, str] = field(default_factory=dict)

    def query(self, team: str) -> str:
        return self.expr.replace("{team}", team)

    def n_query(self, team: str) -> str | None:
        return self.n_expr.replace("{team}", team) if self.n_expr else None

    def trend_query(self, team: str) -> str:
        """Now minus the same time yesterday."""
        return trend(self.query(team))

    def target(self, team: str = ORG) -> float | None:
        return self.team_targets.get(team, self.default_target)

    def steps(self, team: str = ORG) -> list[Step]:
        """Colour bands, lowest first (the Grafana thresholds and every other renderer)."""
        target = self.target(team)
        if self.kind == "info" or target is None:
            return [Step(INFO, None)]
        if self.kind == "floor":
            return [Step(BAD, None), Step(OK, target)]
        warn = self.warn_at if self.warn_at is not None else round(AMBER_SHARE * target, 6)
        return [Step(OK, None), Step(WARN, warn), Step(BAD, target)]

    def colour(self, value: float | None, n: float | None = None, team: str = ORG) -> str:
        """Semantic colour of a reading; below the minimum sample it is not judged."""
        if value is None or math.isnan(value):
            return NO_DATA
        if self.min_n is not None and (n is None or n < self.min_n):
            return LOW_SAMPLE
        if self.red_from_n is not None and n is not None and n >= self.red_from_n:
            return BAD
        colour = INFO
        for step in self.steps(team):
            if step.lower is None or value >= step.lower:
                colour = step.colour
        return colour

    def format(self, value: float | None) -> str:
        return format_value(self.unit, value)

    def format_change(self, delta: float | None) -> str:
        if delta is None or math.isnan(delta):
            return ""
        arrow = "▲" if delta > 0 else ("▼" if delta < 0 else "=")
        if self.unit == "ratio":
            text = f"{abs(delta) * 100:.0f} pt"
        elif self.unit == "score":
            # The arrow is the sign: `format_value` would give "▼ +5" for NPS 5 lower.
            text = f"{abs(delta):.0f}"
        else:
            text = format_value(self.unit, abs(delta))
        return f"{arrow} {text}"


def trend(query: str) -> str:
    """`query` now minus the same time yesterday."""
    return f"({query}) - ({_offset(query, COMPARE_OFFSET)})"


def _offset(expr: str, offset: str) -> str:
    """Put `offset` on every selector of a tile query (they are all `name{...}`)."""
    out = []
    depth = 0
    for ch in expr:
        out.append(ch)
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                out.append(f" offset {offset}")
    return "".join(out)


def human_duration(seconds: float) -> str:
    """`42m 17s`, `3h 05m`, `2d 04h`: two units, the way people read a wall or a report."""
    if math.isinf(seconds):
        return "∞"
    s = round(seconds)
    sign = "-" if s < 0 else ""
    s = abs(s)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    mi, se = divmod(rem, 60)
    if d:
        return f"{sign}{d}d {h:02d}h"
    if h:
        return f"{sign}{h}h {mi:02d}m"
    if mi:
        return f"{sign}{mi}m {se:02d}s"
    return f"{sign}{se}s"


def format_value(unit: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if unit == "seconds":
        return human_duration(value)
    if unit == "ratio":
        return f"{value * 100:.0f} %"
    if unit == "score":
        return f"{value:+.0f}" if value else "0"
    return f"{value:,.0f}".replace(",", " ")


def _sel(metric: str, *parts: str) -> str:
    return one_replica(f"{metric}{{{','.join(p for p in parts if p)}}}")


def tiles(t: Targets) -> list[Tile]:
    """The wall's tiles in reading order, every threshold from `t`."""
    frt = t.frt
    pct = f"{frt.quantile * 100:g}"
    team = 'team="{team}"'
    fw = f'window="{frt.window}"'
    overdue = _sel(m.BREACHED_UNANSWERED, team, TICKET_ROLLUP)
    at_risk = _sel(m.AT_RISK, team, TICKET_ROLLUP, f'threshold="{AMBER_SHARE:g}"')
    out = [
        Tile(
            "frt", f"First reply p{pct}", f"p{pct} first response time over {frt.window}; "
            f"target under {human_duration(frt.target_seconds)}",
            "seconds", "ceiling",
            _sel(m.FRT, fw, team, TICKET_ROLLUP, f'percentile="{pct}"'), 3,
            default_target=frt.target_seconds,
            n_expr=_sel(m.FRT_COUNT, fw, team, TICKET_ROLLUP), min_n=frt.min_count,
            core_name=f"frt_p{pct}_seconds", core_window=frt.window,
        ),
        Tile(
            "sla", "Within SLA", f"Share of tickets answered within "
            f"{human_duration(frt.target_seconds)} over {frt.window}; objective "
            f"{frt.objective:.0%}",
            "ratio", "floor", _sel(m.SLA_COMPLIANCE, fw, team, TICKET_ROLLUP), 3,
            default_target=frt.objective,
            n_expr=f"({_sel(m.SLA_MET, fw, team, TICKET_ROLLUP)}) + "
                   f"({_sel(m.SLA_BREACHED, fw, team, TICKET_ROLLUP)})",
            min_n=frt.min_count, core_name="frt_sla_compliance", core_window=frt.window,
        ),
        Tile(
            "backlog", "Backlog", "Open tickets (not solved or closed)", "count", "info",
            _sel(m.BACKLOG, team, TICKET_ROLLUP), 2, core_name="backlog_open",
        ),
        Tile(
            "oldest", "Oldest waiting", "Age of the oldest unanswered open ticket; amber at "
            f"{AMBER_SHARE:.0%} of the FRT target, red past it",
            "seconds", "ceiling", _sel(m.OLDEST_UNANSWERED, team, TICKET_ROLLUP), 3,
            default_target=frt.target_seconds, core_name="oldest_unanswered_age_seconds",
        ),
        Tile(
            "at_risk", "At risk", f"Unanswered tickets past {AMBER_SHARE:.0%} of their FRT "
            "target, those already past it included; red as soon as one is past it, else "
            f"amber from {AT_RISK_WARN:g}, red from {AT_RISK_BAD:g}",
            "count", "ceiling",
            f"{at_risk} + ignoring (threshold) {overdue}", 2,
            default_target=AT_RISK_BAD, warn_at=AT_RISK_WARN,
            n_expr=overdue, red_from_n=1,
            core_name="frt_at_risk", core_labels={"threshold": f"{AMBER_SHARE:g}"},
        ),
    ]
    survey = {
        "csat": ("CSAT", "share of survey responses scoring 4-5", "ratio", m.CSAT),
        "nps": ("NPS", "promoters % minus detractors %", "score", m.NPS),
        "ces": ("CES easy", "share of responses scoring 5-7", "ratio", m.CES),
    }
    for kpi, (title, what, unit, metric) in survey.items():
        w = f'window="{t.scores[kpi].window}"'
        out.append(Tile(
            kpi, title, f"{title}: {what} over {t.scores[kpi].window}; grey below "
            f"{t.min_sample} responses",
            unit, "floor", _sel(metric, w, team, SURVEY_ROLLUP), 3,
            default_target=t.score_for(kpi), team_targets=_overrides(t, kpi),
            n_expr=_sel(m.SURVEY_RESPONSES[kpi], w, team, SURVEY_ROLLUP), min_n=t.min_sample,
            core_name=kpi, core_window=t.scores[kpi].window,
        ))
    w = f'window="{t.scores["fcr"].window}"'
    out.append(Tile(
        "fcr", "FCR", f"First contact resolution over {t.scores['fcr'].window}; grey below "
        f"{t.min_sample} first solves",
        "ratio", "floor", _sel(m.FCR, w, team, TICKET_ROLLUP), 2,
        default_target=t.score_for("fcr"), team_targets=_overrides(t, "fcr"),
        n_expr=_sel(m.FIRST_SOLVES, w, team, TICKET_ROLLUP), min_n=t.min_sample,
        core_name="fcr", core_window=t.scores["fcr"].window,
    ))
    assert sum(tile.width for tile in out) == 24, "a team's tiles fill one Grafana row"
    return out


def collapse_tiles(t: Targets) -> list[Tile]:
    """The collapse evidence of each share KPI whose collapse pages (CSAT with the default
    alerts): 0 %..100 % of the evidence the page needs, per team. CES and FCR collapses are
    tickets, and the wall has no room for two more columns at a readable size."""
    out = []
    for spec in t.evidence():
        if COLLAPSE_SEVERITY[spec.kpi] != "page":
            continue
        title = COLLAPSE_TITLES[spec.kpi]
        out.append(Tile(
            f"{spec.kpi}_collapse", f"{title} collapse",
            f"Evidence that the team's {title} fell from its target to "
            f"{spec.collapse:.0%} (sequential test on its answers of the last day): "
            f"the page comes at 100 %; amber from {EVIDENCE_WARN:.0%}. Organisation: the "
            "worst team", "ratio", "ceiling",
            _sel(m.COLLAPSE_EVIDENCE[spec.kpi], 'team="{team}"'), 3,
            default_target=1.0, warn_at=EVIDENCE_WARN, org_is_worst_team=True,
            alert=collapse_alert_name(spec.kpi), core_name=f"{spec.kpi}_collapse_evidence",
        ))
    return out


def wall_tiles(t: Targets) -> list[Tile]:
    """What `cxpulse wall` and `cxpulse top` show: the tiles, then the collapse evidence
    (not on the Grafana wall, whose row of 24 units the tiles fill)."""
    return tiles(t) + collapse_tiles(t)


def _overrides(t: Targets, kpi: str) -> dict[str, float]:
    return {team: o[kpi] for team, o in sorted(t.teams.items()) if kpi in o}


# -- the wall's header: freshness and firing pages -------------------------------------

#: How far behind real time the KPIs are (the exporter's freshness; the worst replica).
FRESHNESS_EXPR = f"max({m.KPI_DELAY})"
PAGES_EXPR = 'ALERTS{alertstate="firing",severity="page"}'

#: Teams present in the data (label values of the backlog gauge); the org roll-up excluded.
TEAMS_EXPR = f'group by (team) ({m.BACKLOG}{{team!="{ORG}",{TICKET_ROLLUP}}})'


def freshness_tile(t: Targets) -> Tile:
    """Data age: green while within the pipeline's allowed delay, then amber and red."""
    limit = t.pipeline.max_kpi_delay_seconds
    return Tile(
        "freshness", "Data age", "How far the KPIs lag behind real time",
        "seconds", "ceiling", FRESHNESS_EXPR, 4, default_target=limit,
    )


def overridden_teams(t: Targets) -> list[str]:
    """Teams whose tiles need their own thresholds (they get explicit rows in Grafana)."""
    return sorted(t.teams)
