"""The people's part of `cxpulse report`: a table per team, per window, vs the previous period.

A support lead asks "how did this week go, compared with last week?" (the seeds'
"February 25 % fewer tickets than January"). So each asked window (`24h`, `7d`,
`30d`) ends at the report time and is put next to the window of the same length
just before it, read from the same engines evaluated one window earlier. Durations
are minutes or hours, shares are percentages with the sample they come from, and
the CSV carries exactly the numbers the table shows (rounded the same way), with
the unit in each column's name. Nothing here computes a KPI: the core did.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from cxpulse.core.engine import Evaluation

DAY_MS = 86_400_000
#: The organisation roll-up's row name (series without a `team` label).
ORG_ROW = "all teams"


@dataclass(frozen=True)
class Line:
    """One KPI line of the summary: core KPI name, how it is shown, and its sample size."""

    title: str
    kpi: str
    unit: str  # "count" | "minutes" | "percent" | "score"
    csv_name: str


def lines(frt_quantile: float) -> list[Line]:
    """The summary's KPIs, in reading order (volume, speed, quality, feedback)."""
    pct = f"{frt_quantile * 100:g}"
    return [
        Line("Tickets created", "tickets_created", "count", "tickets_created"),
        Line(f"First reply p{pct}", f"frt_p{pct}_seconds", "minutes", f"first_reply_p{pct}"),
        Line("Within FRT target", "frt_sla_compliance", "percent", "within_frt_target"),
        Line("Resolution median", "resolution_p50_seconds", "minutes", "resolution_median"),
        Line("First contact res.", "fcr", "percent", "fcr"),
        Line("Reopen rate", "reopen_rate", "percent", "reopen_rate"),
        Line("CSAT (4-5)", "csat", "percent", "csat"),
        Line("NPS", "nps", "score", "nps"),
        Line("CES easy (5-7)", "ces", "percent", "ces_easy"),
    ]


def window_text(ms: int) -> str:
    """`7d`, `30d`, `24h`, `90m`: how a person writes the window (the engine says `168h`)."""
    if ms % DAY_MS == 0 and ms > DAY_MS:
        return f"{ms // DAY_MS}d"
    if ms % 3_600_000 == 0:
        return f"{ms // 3_600_000}h"
    return f"{ms // 60_000}m"


# -- shown values: the text and the CSV use the same rounding ----------------------------


def shown(unit: str, value: float | None) -> float | None:
    """The number as the table shows it, in the unit of its CSV column.

    Durations: minutes with one decimal (the CSV column is `_min`); shares: percent
    with one decimal; scores and counts: whole numbers."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    if unit == "minutes":
        return round(value / 60.0, 1)
    if unit == "percent":
        return round(value * 100.0, 1)
    return float(round(value))


def csv_unit(unit: str) -> str:
    return {"minutes": "min", "percent": "pct", "score": "score", "count": "count"}[unit]


def _minutes_text(minutes: float, signed: bool = False) -> str:
    sign = "+" if signed and minutes > 0 else ""
    if abs(minutes) >= 120:
        return f"{sign}{minutes / 60:.1f} h"
    return f"{sign}{minutes:.1f} min"


def cell(unit: str, value: float | None, n: int | None) -> str:
    v = shown(unit, value)
    if v is None:
        return "-" if not n else f"- (n={n})"
    if unit == "minutes":
        text = _minutes_text(v)
    elif unit == "percent":
        text = f"{v:.1f} %"
    elif unit == "score":
        text = f"{v:+.0f}" if v else "0"
    else:
        text = f"{v:,.0f}".replace(",", " ")
    return text if unit == "count" or n is None else f"{text} (n={n})"


def change(unit: str, now: float | None, before: float | None) -> str:
    """`+3 (+10 %)`, `-1.5 min`, `+4.0 pt`: now minus the previous period, as shown."""
    a, b = shown(unit, now), shown(unit, before)
    if a is None or b is None:
        return "-"
    d = round(a - b, 1)
    if unit == "minutes":
        return "=" if d == 0 else _minutes_text(d, signed=True)
    if unit == "percent":
        return "=" if d == 0 else f"{d:+.1f} pt"
    if d == 0:
        return "="
    if unit == "count" and b:
        return f"{d:+.0f} ({(a - b) / b * 100:+.0f} %)"
    return f"{d:+.0f}"


# -- reading the evaluations -------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """The evaluation of a window ending at the report time and the one before it.

    `previous` is None when the input does not reach back to its start (a comparison
    with a half-empty period would read as a drop)."""

    window_ms: int
    label: str  # the engine's window label (`168h`)
    current: Evaluation
    previous: Evaluation | None
    covered: bool  # the input reaches back to the start of the current window


def value(ev: Evaluation, kpi: str, label: str, team: str) -> tuple[float | None, int | None]:
    labels = {} if team == ORG_ROW else {"team": team}
    for k in ev.kpis:
        if k.name == kpi and k.window == label and dict(k.labels) == labels:
            return k.value, k.n
    return None, None


def teams(ev: Evaluation) -> list[str]:
    """Teams that have a series in the evaluation (the `--team` choices)."""
    found = {dict(k.labels)["team"] for k in ev.kpis if set(k.labels) == {"team"}}
    found |= {dict(g.labels)["team"] for g in ev.gauges if set(g.labels) == {"team"}}
    return sorted(found)


# -- rendering ---------------------------------------------------------------------------


def render(periods: Sequence[Period], rows: Sequence[str], kpis: Sequence[Line],
           out: IO[str]) -> None:
    """One block per team: a KPI per line, for each window its value and the change."""
    head = ["", *(h for p in periods for h in (f"last {window_text(p.window_ms)}",
                                               f"vs prev {window_text(p.window_ms)}"))]
    title_w = max(len(k.title) for k in kpis) + 2
    for team in rows:
        table: list[list[str]] = []
        for k in kpis:
            row = [k.title]
            for p in periods:
                now, n = value(p.current, k.kpi, p.label, team)
                before = (value(p.previous, k.kpi, p.label, team)[0]
                          if p.previous is not None else None)
                row += [cell(k.unit, now, n) + ("" if p.covered else " *"),
                        change(k.unit, now, before)]
            table.append(row)
        widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
        widths[0] = title_w
        out.write(f"== {team} ==\n")
        for r in [head, *table]:
            out.write(f"{r[0]:<{widths[0]}}" + "".join(
                f"  {c:>{w}}" for c, w in zip(r[1:], widths[1:], strict=True)).rstrip() + "\n")
        out.write("\n")
    if any(not p.covered for p in periods):
        out.write("* the input starts inside this window: the value covers only part of it\n")
    if any(p.previous is None for p in periods):
        out.write("vs prev -: the input does not reach back to the start of the previous "
                  "period\n")


def write_csv(periods: Sequence[Period], rows: Sequence[str], kpis: Sequence[Line],
              out: IO[str]) -> None:
    """One row per team and window; every value exactly as the table shows it."""
    header = ["team", "window"]
    for k in kpis:
        u = csv_unit(k.unit)
        header += [f"{k.csv_name}_{u}", f"{k.csv_name}_{u}_prev"]
        if k.unit != "count":
            header += [f"{k.csv_name}_n", f"{k.csv_name}_n_prev"]
    header.append("window_complete")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)

    def num(unit: str, x: float | None) -> str:
        if x is None:
            return ""
        return f"{x:.1f}" if unit in ("minutes", "percent") else f"{x:.0f}"

    for team in rows:
        for p in periods:
            row = [team, window_text(p.window_ms)]
            for k in kpis:
                now, n = value(p.current, k.kpi, p.label, team)
                before, n_before = (value(p.previous, k.kpi, p.label, team)
                                    if p.previous is not None else (None, None))
                row += [num(k.unit, shown(k.unit, now)), num(k.unit, shown(k.unit, before))]
                if k.unit != "count":
                    row += ["" if n is None else str(n),
                            "" if n_before is None else str(n_before)]
            row.append("yes" if p.covered else "no")
            writer.writerow(row)
