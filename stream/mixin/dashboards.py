"""Grafana dashboards generated from the targets file, one per audience.

* `wall`: a TV across the room. Few numbers, huge, coloured against their
  targets; no variables, nothing to click.
* `oncall`: is the pipeline healthy, which alert is burning, since when.
* `teamlead`: one team (variable), its KPIs over time and its agents.

Thresholds come from `Targets`, never typed by hand, so a changed target
recolours the wall the moment `cxpulse generate` runs.
"""

from __future__ import annotations

from typing import Any

from stream import metric_names as m
from stream.core.targets import Targets

DS = {"type": "prometheus", "uid": "${datasource}"}
GREEN, AMBER, RED = "green", "orange", "red"
ORG_TICKETS = 'team="all",channel="all",priority="all"'
ORG_SURVEYS = 'team="all",channel="all",agent="all",touchpoint="all"'
TEAM_TICKETS = 'team="$team",channel="all",priority="all"'
TEAM_SURVEYS = 'team="$team",channel="all",agent="all",touchpoint="all"'


def _floor_steps(target: float) -> list[dict[str, Any]]:
    """Red below the target, green at or above it."""
    return [{"color": RED, "value": None}, {"color": GREEN, "value": target}]


def _ceiling_steps(target: float) -> list[dict[str, Any]]:
    """Green under the target, amber from 75 % of it, red over it."""
    return [
        {"color": GREEN, "value": None},
        {"color": AMBER, "value": round(0.75 * target, 3)},
        {"color": RED, "value": target},
    ]


class _Layout:
    """Hands out panel ids and grid positions left to right, top to bottom."""

    def __init__(self) -> None:
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_h = 0

    def place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend}
    if instant:
        t["instant"] = True
    return t


def _stat(lay: _Layout, title: str, expr: str, unit: str, steps: list[dict[str, Any]],
          w: int = 6, h: int = 7, decimals: int | None = None,
          description: str = "") -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit,
        "color": {"mode": "thresholds"},
        "thresholds": {"mode": "absolute", "steps": steps},
        "noValue": "no data",
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "id": lay.id(), "type": "stat", "title": title, "description": description,
        "datasource": DS, "gridPos": lay.place(w, h),
        "targets": [_target(expr, instant=True)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "colorMode": "background", "graphMode": "none", "justifyMode": "center",
            "textMode": "value", "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                                     "values": False},
            "text": {"valueSize": 96, "titleSize": 28},
        },
    }


def _timeseries(lay: _Layout, title: str, targets: list[dict[str, Any]], unit: str,
                steps: list[dict[str, Any]] | None = None, w: int = 12, h: int = 8,
                description: str = "") -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "custom": {"lineWidth": 2, "fillOpacity": 5}}
    if steps:
        defaults["thresholds"] = {"mode": "absolute", "steps": steps}
        defaults["custom"]["thresholdsStyle"] = {"mode": "dashed"}
    return {
        "id": lay.id(), "type": "timeseries", "title": title, "description": description,
        "datasource": DS, "gridPos": lay.place(w, h), "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom",
                               "calcs": ["lastNotNull"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }


def _table(lay: _Layout, title: str, targets: list[dict[str, Any]], w: int = 24,
           h: int = 10, description: str = "") -> dict[str, Any]:
    return {
        "id": lay.id(), "type": "table", "title": title, "description": description,
        "datasource": DS, "gridPos": lay.place(w, h), "targets": targets,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True},
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
    }


def _datasource_var() -> dict[str, Any]:
    return {"name": "datasource", "type": "datasource", "query": "prometheus",
            "label": "Data source", "current": {}, "hide": 0}


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]], variables: list[dict[str, Any]],
               refresh: str, tags: list[str]) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "tags": ["cxpulse", *tags], "timezone": "browser",
        "editable": False, "refresh": refresh, "schemaVersion": 39, "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [_datasource_var(), *variables]},
        "annotations": {"list": []}, "panels": panels,
    }


def wall(t: Targets) -> dict[str, Any]:
    lay = _Layout()
    frt = t.frt
    q = f"{frt.quantile * 100:g}"
    panels = [
        _stat(lay, f"First reply p{int(frt.quantile * 100)} ({frt.window})",
              f'{m.FRT}{{window="{frt.window}",{ORG_TICKETS},percentile="{q}"}}', "s",
              _ceiling_steps(frt.target_seconds), w=8,
              description=f"Target under {frt.target_seconds:g} s"),
        _stat(lay, "Replied within SLA (24h)",
              f'{m.SLA_COMPLIANCE}{{window="24h",{ORG_TICKETS}}}', "percentunit",
              _floor_steps(frt.objective), w=8, decimals=0),
        _stat(lay, "Waiting for a first reply",
              f"{m.UNANSWERED}{{{ORG_TICKETS}}}", "none",
              [{"color": GREEN, "value": None}], w=8),
        _stat(lay, f"CSAT ({t.scores['csat'].window})",
              f'{m.CSAT}{{window="{t.scores["csat"].window}",{ORG_SURVEYS}}}', "percentunit",
              _floor_steps(t.score_for("csat")), decimals=0),
        _stat(lay, f"NPS ({t.scores['nps'].window})",
              f'{m.NPS}{{window="{t.scores["nps"].window}",{ORG_SURVEYS}}}', "none",
              _floor_steps(t.score_for("nps")), decimals=0),
        _stat(lay, f"CES easy ({t.scores['ces'].window})",
              f'{m.CES}{{window="{t.scores["ces"].window}",{ORG_SURVEYS}}}', "percentunit",
              _floor_steps(t.score_for("ces")), decimals=0),
        _stat(lay, f"First contact resolution ({t.scores['fcr'].window})",
              f'{m.FCR}{{window="{t.scores["fcr"].window}",{ORG_TICKETS}}}', "percentunit",
              _floor_steps(t.score_for("fcr")), decimals=0),
        _stat(lay, "Oldest unanswered",
              f"{m.OLDEST_UNANSWERED}{{{ORG_TICKETS}}}", "s",
              _ceiling_steps(frt.target_seconds), w=8),
        _stat(lay, "At risk (>75 % of FRT target)",
              f'{m.AT_RISK}{{{ORG_TICKETS},threshold="0.75"}}', "none",
              [{"color": GREEN, "value": None}, {"color": AMBER, "value": 1}], w=8),
        _stat(lay, "Open backlog", f"{m.BACKLOG}{{{ORG_TICKETS}}}", "none",
              [{"color": GREEN, "value": None}], w=8),
    ]
    return _dashboard("cxpulse-wall", "cxpulse / Wall", panels, [], "30s", ["wall"])


def oncall(t: Targets) -> dict[str, Any]:
    lay = _Layout()
    p = t.pipeline
    frt = t.frt
    q = f"{frt.quantile * 100:g}"
    panels = [
        {"id": lay.id(), "type": "alertlist", "title": "Firing cxpulse alerts",
         "gridPos": lay.place(24, 6),
         "options": {"alertName": "Cxpulse", "stateFilter": {"firing": True, "pending": True},
                     "maxItems": 20, "sortOrder": 1}},
        _timeseries(lay, "Processing delay (now - event time of last applied event)",
                    [_target(f"{m.PROCESSING_DELAY}", "{{instance}}")], "s",
                    _ceiling_steps(p.max_processing_delay_seconds)),
        _timeseries(lay, "Consumer lag",
                    [_target(f"sum by (instance, topic) ({m.CONSUMER_LAG})",
                             "{{instance}} {{topic}}")], "none",
                    _ceiling_steps(p.max_consumer_lag)),
        _timeseries(lay, "Events by outcome",
                    [_target(f"sum by (outcome) (rate({m.EVENTS_TOTAL}[5m]))", "{{outcome}}"),
                     _target(f"sum by (reason) (rate({m.DEADLETTER_TOTAL}[5m]))",
                             "dead-letter {{reason}}", "B")], "ops"),
        _timeseries(lay, "Workers up", [_target('up{job="cxpulse"}', "{{instance}}")],
                    "none"),
        _timeseries(lay, f"First reply p{int(frt.quantile * 100)} by team ({frt.window})",
                    [_target(f'{m.FRT}{{window="{frt.window}",team!="all",channel="all",'
                             f'priority="all",percentile="{q}"}}', "{{team}}")], "s",
                    _ceiling_steps(frt.target_seconds)),
        _timeseries(lay, "FRT SLA breach share (1h, from counters)",
                    [_target(f"sum by (team) (increase({m.SLA_BREACHED_TOTAL}[1h])) / "
                             f"clamp_min(sum by (team) (increase({m.SLA_BREACHED_TOTAL}[1h])) + "
                             f"sum by (team) (increase({m.SLA_MET_TOTAL}[1h])), 1)", "{{team}}")],
                    "percentunit", _ceiling_steps(1 - frt.objective)),
    ]
    return _dashboard("cxpulse-oncall", "cxpulse / On-call", panels, [], "30s", ["oncall"])


def teamlead(t: Targets) -> dict[str, Any]:
    lay = _Layout()
    frt = t.frt
    team_var = {
        "name": "team", "type": "query", "datasource": DS, "label": "Team",
        "query": {"query": f'label_values({m.CREATED}{{window="24h"}}, team)',
                  "refId": "team"},
        "definition": f'label_values({m.CREATED}{{window="24h"}}, team)',
        "refresh": 2, "sort": 1, "current": {"text": "all", "value": "all"}, "hide": 0,
    }
    window_var = {
        "name": "window", "type": "custom", "label": "Window", "query": "15m,1h,24h",
        "current": {"text": "24h", "value": "24h"}, "hide": 0,
        "options": [{"text": w, "value": w, "selected": w == "24h"} for w in ("15m", "1h", "24h")],
    }
    sel = f'window="$window",{TEAM_TICKETS}'
    ssel = f'window="$window",{TEAM_SURVEYS}'
    panels = [
        _stat(lay, "First reply p90", f'{m.FRT}{{{sel},percentile="90"}}', "s",
              _ceiling_steps(frt.target_seconds), w=4, h=5),
        _stat(lay, "Replied within SLA", f"{m.SLA_COMPLIANCE}{{{sel}}}", "percentunit",
              _floor_steps(frt.objective), w=4, h=5, decimals=0),
        _stat(lay, "CSAT", f"{m.CSAT}{{{ssel}}}", "percentunit",
              _floor_steps(t.score_for("csat")), w=4, h=5, decimals=0),
        _stat(lay, "NPS", f"{m.NPS}{{{ssel}}}", "none", _floor_steps(t.score_for("nps")),
              w=4, h=5, decimals=0),
        _stat(lay, "CES easy", f"{m.CES}{{{ssel}}}", "percentunit",
              _floor_steps(t.score_for("ces")), w=4, h=5, decimals=0),
        _stat(lay, "FCR", f"{m.FCR}{{{sel}}}", "percentunit", _floor_steps(t.score_for("fcr")),
              w=4, h=5, decimals=0),
        _timeseries(lay, "First reply time", [
            _target(f'{m.FRT}{{{sel},percentile="50"}}', "p50"),
            _target(f'{m.FRT}{{{sel},percentile="90"}}', "p90", "B"),
            _target(f"{m.RESOLUTION_MEAN}{{{sel}}}", "resolution mean", "C"),
            _target(f"{m.WAIT_MEAN}{{{sel}}}", "customer wait mean", "D"),
        ], "s", _ceiling_steps(frt.target_seconds)),
        _timeseries(lay, "CSAT with 95 % interval", [
            _target(f"{m.CSAT}{{{ssel}}}", "CSAT"),
            _target(f"{m.SURVEY_CI_LOWER['csat']}{{{ssel}}}", "lower", "B"),
            _target(f"{m.SURVEY_CI_UPPER['csat']}{{{ssel}}}", "upper", "C"),
        ], "percentunit", _floor_steps(t.score_for("csat"))),
        _timeseries(lay, "Volume and backlog", [
            _target(f"{m.CREATED}{{{sel}}}", "created in window"),
            _target(f"{m.BACKLOG}{{{TEAM_TICKETS}}}", "open backlog", "B"),
            _target(f"{m.UNANSWERED}{{{TEAM_TICKETS}}}", "unanswered", "C"),
        ], "none"),
        _timeseries(lay, "Tickets per agent", [
            _target(f'{m.TICKETS_PER_AGENT}{{window="$window",team="$team"}}', "solves/agent"),
        ], "none"),
        _table(lay, "Agents", [
            _target(f'{m.AGENT_SOLVES}{{window="$window"}}', "", "A", instant=True),
            _target(f'{m.AGENT_REPLIES}{{window="$window"}}', "", "B", instant=True),
            _target(f"{m.AGENT_OPEN}", "", "C", instant=True),
        ], description="Agent labels are capped to the configured top-N; the rest is 'other'."),
    ]
    return _dashboard("cxpulse-teamlead", "cxpulse / Team lead", panels, [team_var, window_var],
                      "1m", ["teamlead"])


def dashboards(targets: Targets) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON model."""
    return {
        "wall.json": wall(targets),
        "oncall.json": oncall(targets),
        "teamlead.json": teamlead(targets),
    }
