"""Grafana dashboards generated from the targets file, one per audience.

* `wall`: a TV across the room. Few numbers, huge, coloured against their
  targets; no variables, nothing to click.
* `oncall`: is the pipeline healthy, which alert is burning, since when.
* `teamlead`: one team (variable), its KPIs over time and its agents.

Thresholds come from `Targets`, never typed by hand, so a changed target
recolours the wall the moment `cxpulse generate` runs. The wall's tiles (and
the team lead's KPI stats) come from `cxpulse.mixin.tiles`, the definition the
web wall and `cxpulse top` use too. Every KPI query collapses exporter
replicas with `cxpulse.mixin.promql.one_replica`.
"""

from __future__ import annotations

from cxpulse import metric_names as m
from cxpulse.core.targets import Targets
from cxpulse.jsontypes import JSON
from cxpulse.mixin import tiles as tl
from cxpulse.mixin.promql import one_replica, one_replica_increase

DS = {"type": "prometheus", "uid": "${datasource}"}
GREEN, AMBER, RED = "green", "orange", "red"
GREY, BLUE = "#8e8e8e", "blue"
#: Semantic tile colour -> Grafana colour.
PALETTE = {tl.OK: GREEN, tl.WARN: AMBER, tl.BAD: RED, tl.INFO: BLUE, tl.LOW_SAMPLE: GREY,
           tl.NO_DATA: GREY}
TEAM_TICKETS = 'team="$team",channel="all",priority="all"'
TEAM_SURVEYS = 'team="$team",channel="all",agent="all",touchpoint="all"'


def _floor_steps(target: float) -> list[JSON]:
    """Red below the target, green at or above it."""
    return [{"color": RED, "value": None}, {"color": GREEN, "value": target}]


def _ceiling_steps(target: float) -> list[JSON]:
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


def _target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> JSON:
    t: JSON = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend}
    if instant:
        t["instant"] = True
    return t


def _timeseries(lay: _Layout, title: str, targets: list[JSON], unit: str,
                steps: list[JSON] | None = None, w: int = 12, h: int = 8,
                description: str = "") -> JSON:
    defaults: JSON = {"unit": unit, "custom": {"lineWidth": 2, "fillOpacity": 5}}
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


def _table(lay: _Layout, title: str, targets: list[JSON], w: int = 24,
           h: int = 10, description: str = "", unit: str = "none") -> JSON:
    return {
        "id": lay.id(), "type": "table", "title": title, "description": description,
        "datasource": DS, "gridPos": lay.place(w, h), "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"showHeader": True},
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
    }


def _datasource_var() -> JSON:
    return {"name": "datasource", "type": "datasource", "query": "prometheus",
            "label": "Data source", "current": {}, "hide": 0}


def _dashboard(uid: str, title: str, panels: list[JSON], variables: list[JSON],
               refresh: str, tags: list[str]) -> JSON:
    return {
        "uid": uid, "title": title, "tags": ["cxpulse", *tags], "timezone": "browser",
        "editable": False, "refresh": refresh, "schemaVersion": 39, "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [_datasource_var(), *variables]},
        "annotations": {"list": []}, "panels": panels,
    }


def _steps(tile: tl.Tile, team: str) -> list[JSON]:
    return [{"color": PALETTE[s.colour], "value": s.lower} for s in tile.steps(team)]


def _fixed(name: str, color: str, unit: str | None = None) -> JSON:
    """Field override: series `name` in a fixed colour (not judged by the thresholds)."""
    props: list[JSON] = [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}]
    if unit is not None:
        props.append({"id": "unit", "value": unit})
        props.append({"id": "decimals", "value": 0})
    return {"matcher": {"id": "byName", "options": name}, "properties": props}


_GRAFANA_UNIT = {"seconds": "s", "ratio": "percentunit", "score": "none", "count": "none"}


def tile_panel(lay: _Layout, tile: tl.Tile, team: str, h: int, title: str = "",
               trend: bool = True) -> JSON:
    """A wall tile as a Grafana stat: the value coloured by its target (grey while the
    sample is below the minimum), a sparkline, n, and the change since yesterday."""
    q = tile.query(team)
    n = tile.n_query(team)
    min_n = tile.min_n
    overrides: list[JSON] = []
    if n is not None and min_n is not None:
        enough = f"({n}) >= {min_n}"
        low = f"n < {min_n}"
        targets = [
            _target(f"{q} and on (team) {enough}", tile.title, "A"),
            _target(f"{q} unless on (team) {enough}", low, "L"),
            _target(n, "n", "N"),
        ]
        overrides += [_fixed(low, GREY), _fixed("n", GREY, "none")]
    elif n is not None and tile.red_from_n is not None:
        # tickets past their deadline: red whatever the count (the thresholds judge the rest)
        crisis = f"({n}) >= {tile.red_from_n:g}"
        overdue = "past deadline"
        targets = [
            _target(f"{q} unless on (team) {crisis}", tile.title, "A"),
            _target(f"{q} and on (team) {crisis}", overdue, "R"),
        ]
        overrides.append(_fixed(overdue, PALETTE[tl.BAD]))
    else:
        targets = [_target(q, tile.title, "A")]
    if trend:
        targets.append(_target(tile.trend_query(team), "vs yesterday", "T"))
        overrides.append(_fixed("vs yesterday", "text"))
    unit = _GRAFANA_UNIT[tile.unit]
    return {
        "id": lay.id(), "type": "stat", "title": title or tile.title,
        "description": tile.description, "datasource": DS, "gridPos": lay.place(tile.width, h),
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit, "decimals": 0, "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": _steps(tile, team)},
                "noValue": "no data",
            },
            "overrides": overrides,
        },
        "options": {
            "colorMode": "background", "graphMode": "area", "justifyMode": "center",
            "textMode": "value_and_name", "orientation": "vertical",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "text": {"valueSize": 64, "titleSize": 16},
        },
    }


def _row(lay: _Layout, title: str, repeat: str | None = None) -> JSON:
    row: JSON = {"id": lay.id(), "type": "row", "title": title, "collapsed": False,
                           "gridPos": lay.place(24, 1), "panels": []}
    if repeat:
        row["repeat"] = repeat
    return row


def _team_var(name: str, exclude: list[str], hide: int, multi: bool) -> JSON:
    """Teams present in the data; `exclude` (org roll-up, teams with own thresholds) left out."""
    regex = "/^(?!(" + "|".join(sorted(exclude)) + ")$).+$/"
    query = f'label_values({m.BACKLOG}{{channel="all",priority="all"}}, team)'
    var: JSON = {
        "name": name, "type": "query", "datasource": DS, "label": "Team",
        "query": {"query": query, "refId": name}, "definition": query, "regex": regex,
        "refresh": 2, "sort": 1, "hide": hide, "multi": multi, "includeAll": multi,
    }
    var["current"] = ({"text": ["All"], "value": ["$__all"]} if multi else {})
    return var


def wall(t: Targets) -> JSON:
    """One row of tiles per team (small multiples) plus the organisation, under a header
    with data freshness and the firing pages. Fits 1920x1080 for up to four team rows
    besides the organisation and the teams with their own targets."""
    lay = _Layout()
    h = 4
    fresh = tl.freshness_tile(t)
    panels: list[JSON] = [
        {
            "id": lay.id(), "type": "stat", "title": "Data age", "description":
            fresh.description, "datasource": DS, "gridPos": lay.place(4, 3),
            "targets": [_target(fresh.query(tl.ORG), "data age", instant=True)],
            "fieldConfig": {"defaults": {
                "unit": "s", "decimals": 0, "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": _steps(fresh, tl.ORG)},
                "noValue": "no data"}, "overrides": []},
            "options": {"colorMode": "background", "graphMode": "none", "textMode": "value",
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                          "values": False},
                        "text": {"valueSize": 64}},
        },
        {
            "id": lay.id(), "type": "stat", "title": "Pages firing", "datasource": DS,
            "description": "Alerts of severity page firing now, over every team: red from one.",
            "gridPos": lay.place(4, 3),
            "targets": [_target(f"count({tl.PAGES_EXPR}) or vector(0)", "pages", instant=True)],
            "fieldConfig": {"defaults": {
                "unit": "none", "decimals": 0, "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": [
                    {"color": GREEN, "value": None}, {"color": RED, "value": 1}]}},
                "overrides": []},
            "options": {"colorMode": "background", "graphMode": "none", "textMode": "value",
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                          "values": False},
                        "text": {"valueSize": 64}},
        },
        {
            "id": lay.id(), "type": "table", "title": "Firing pages", "datasource": DS,
            "description": "Which page fires for which team (alert name and team).",
            "gridPos": lay.place(16, 3),
            "targets": [{**_target(tl.PAGES_EXPR, instant=True), "format": "table"}],
            "fieldConfig": {"defaults": {"unit": "none"}, "overrides": []},
            "options": {"showHeader": False},
            "transformations": [{"id": "organize", "options": {
                "includeByName": {"alertname": True, "team": True}}}],
        },
    ]
    panels.append(_row(lay, "Organisation"))
    for tile in tl.tiles(t):
        panels.append(tile_panel(lay, tile, tl.ORG, h))
    own = tl.overridden_teams(t)
    for team in own:  # their thresholds differ, so they cannot share the repeated row
        panels.append(_row(lay, team))
        for tile in tl.tiles(t):
            panels.append(tile_panel(lay, tile, team, h))
    panels.append(_row(lay, "$team", repeat="team"))
    for tile in tl.tiles(t):
        panels.append(tile_panel(lay, tile, "$team", h))
    team_var = _team_var("team", [tl.ORG, *own], hide=2, multi=True)
    model = _dashboard("cxpulse-wall", "cxpulse / Wall", panels, [team_var], "30s", ["wall"])
    model["time"] = {"from": f"now-{tl.SPARK_RANGE}", "to": "now"}
    return model


def oncall(t: Targets) -> JSON:
    lay = _Layout()
    p = t.pipeline
    frt = t.frt
    q = f"{frt.quantile * 100:g}"
    budget = 1.0 - frt.objective
    fresh = tl.freshness_tile(t)
    panels = [
        {"id": lay.id(), "type": "alertlist", "title": "Firing cxpulse alerts",
         "description": "Every cxpulse alert pending or firing; each has a runbook link.",
         "gridPos": lay.place(24, 6),
         "options": {"alertName": "Cxpulse", "stateFilter": {"firing": True, "pending": True},
                     "maxItems": 20, "sortOrder": 1}},
        _timeseries(lay, "Data age (how far the KPIs lag behind real time)",
                    [_target(fresh.query(tl.ORG), "data age")], "s",
                    _steps(fresh, tl.ORG), description=fresh.description),
        _timeseries(lay, "Consumer lag",
                    [_target(f"sum by (instance, topic) ({m.CONSUMER_LAG})",
                             "{{instance}} {{topic}}")], "none",
                    _ceiling_steps(p.max_consumer_lag),
                    description="Messages on the input topics not yet applied, per worker; "
                    "it grows while a worker is down or slower than the traffic."),
        _timeseries(lay, "Events by outcome",
                    [_target(f"sum by (outcome) (rate({m.EVENTS_TOTAL}[$__rate_interval]))",
                             "{{outcome}}")],
                    "ops", description="Valid events per second: applied, duplicate (a "
                    "redelivery, no effect) or late (outside every window)."),
        _timeseries(lay, "Dead letters by reason",
                    [_target(f"sum by (reason) (rate({m.DEADLETTER_TOTAL}[$__rate_interval]))",
                             "{{reason}}")], "ops",
                    description="Messages rejected to the dead-letter topic per second, by "
                    "reason (docs/contract.md); the bytes are kept there."),
        _timeseries(lay, "Processes up", [_target('up{job=~"cxpulse.*"}',
                                                  "{{job}} {{instance}}")], "none",
                    description="1 while Prometheus can scrape the worker or exporter."),
        _timeseries(lay, f"First reply p{int(frt.quantile * 100)} by team ({frt.window})",
                    [_target(one_replica(
                        f'{m.FRT}{{window="{frt.window}",team!="all",channel="all",'
                        f'priority="all",percentile="{q}"}}'), "{{team}}")], "s",
                    _ceiling_steps(frt.target_seconds),
                    description=f"Each team's p{int(frt.quantile * 100)} first reply time over "
                    f"the last {frt.window}, against the target."),
    ]

    def breach_share(window: str) -> str:
        breached = f"sum by (team) ({one_replica_increase(m.SLA_BREACHED_TOTAL, window)})"
        met = f"sum by (team) ({one_replica_increase(m.SLA_MET_TOTAL, window)})"
        return f"{breached} / clamp_min({breached} + {met}, 1)"

    for burn in frt.burn_rates:
        # The exact windows and threshold of the burn-rate alert: red where it fires.
        level = burn.factor * budget
        panels.append(_timeseries(
            lay, f"SLA breach share, {burn.long} and {burn.short} ({burn.severity} at "
            f"{level:.0%} in both)",
            [_target(breach_share(burn.long), f"{{{{team}}}} {burn.long}"),
             _target(breach_share(burn.short), f"{{{{team}}}} {burn.short}", "B")],
            "percentunit",
            [{"color": GREEN, "value": None}, {"color": RED, "value": round(level, 6)}],
            description=f"Share of first-reply deadlines breached, over the exact windows of "
            f"the {burn.severity} burn-rate alert: it fires when both lines are over the red "
            "line.",
        ))
    return _dashboard("cxpulse-oncall", "cxpulse / On-call", panels, [], "30s", ["oncall"])


def _response_rate_panel(lay: _Layout, t: Targets, ssel: str) -> JSON:
    """(contract 1.1) responses per survey offered, per kind, and the CSAT offers (its n,
    in plain numbers on the right axis)."""
    floor = t.scores["csat"].response_rate_floor
    panel = _timeseries(lay, "Survey response rate", [
        *(_target(one_replica(f"{m.SURVEY_RESPONSE_RATE[k]}{{{ssel}}}"), k.upper(), ref)
          for k, ref in (("csat", "A"), ("nps", "B"), ("ces", "C"))),
        _target(one_replica(f"{m.SURVEY_OFFERS['csat']}{{{ssel}}}"), "CSAT offers", "N"),
    ], "percentunit", None if floor is None else _floor_steps(floor),
        description="Responses per survey offered over the window (contract 1.1: only where "
        "the helpdesk reports offers; no line without them). A falling rate makes the survey "
        "KPIs rest on fewer, and less typical, answers. The threshold line: the CSAT floor "
        "of targets.yaml when set (csat.response_rate_floor; off by default).")
    offers = _fixed("CSAT offers", GREY, "none")
    offers["properties"].append({"id": "custom.axisPlacement", "value": "right"})
    panel["fieldConfig"]["overrides"].append(offers)
    return panel


def teamlead(t: Targets) -> JSON:
    lay = _Layout()
    frt = t.frt
    team_var = {
        "name": "team", "type": "query", "datasource": DS, "label": "Team",
        "query": {"query": f'label_values({m.CREATED}{{window="24h"}}, team)',
                  "refId": "team"},
        "definition": f'label_values({m.CREATED}{{window="24h"}}, team)',
        "refresh": 2, "sort": 1, "current": {"text": "all", "value": "all"}, "hide": 0,
    }
    # Agents of the team: those with survey series under it (agent series carry no team).
    team_agents = (f'group by (agent) ({m.SURVEY_RESPONSES["csat"]}'
                   f'{{team="$team",agent!~"all|other"}})')
    agent_query = f'label_values({m.SURVEY_RESPONSES["csat"]}{{team="$team"}}, agent)'
    agent_var = {
        "name": "agent", "type": "query", "datasource": DS, "label": "Agent",
        "query": {"query": agent_query, "refId": "agent"}, "definition": agent_query,
        "regex": "/^(?!all$).+$/", "refresh": 2, "sort": 1, "multi": True,
        "includeAll": True, "allValue": ".+", "hide": 0,
        "current": {"text": ["All"], "value": ["$__all"]},
    }
    window_var = {
        "name": "window", "type": "custom", "label": "Window", "query": "15m,1h,24h",
        "current": {"text": "24h", "value": "24h"}, "hide": 0,
        "options": [{"text": w, "value": w, "selected": w == "24h"} for w in ("15m", "1h", "24h")],
    }
    sel = f'window="$window",{TEAM_TICKETS}'
    ssel = f'window="$window",{TEAM_SURVEYS}'
    q = f"{frt.quantile * 100:g}"
    frt_buckets = one_replica_increase(f"{m.FRT_HISTOGRAM}_bucket{{{TEAM_TICKETS}}}",
                                       "$__rate_interval")
    panels = [tile_panel(lay, tile, "$team", 6, trend=True) for tile in tl.tiles(t)]
    panels += [
        _timeseries(lay, "First reply time", [
            _target(one_replica(f'{m.FRT}{{{sel},percentile="50"}}'), "p50"),
            _target(one_replica(f'{m.FRT}{{{sel},percentile="{q}"}}'), f"p{q}", "B"),
        ], "s", _ceiling_steps(frt.target_seconds),
            description="Against the FRT target; resolution and wait are in their own panel"),
        _timeseries(lay, "Resolution and customer wait (means)", [
            _target(one_replica(f"{m.RESOLUTION_MEAN}{{{sel}}}"), "resolution mean"),
            _target(one_replica(f"{m.WAIT_MEAN}{{{sel}}}"), "customer wait mean", "B"),
        ], "s", description="Mean time to resolve, and mean time customers waited for "
            "replies, over the chosen window."),
        {
            "id": lay.id(), "type": "heatmap", "title": "First reply time distribution",
            "description": "How many first replies took how long: a tail growing up is a "
            "queue waiting.",
            "datasource": DS, "gridPos": lay.place(12, 8),
            "targets": [{**_target(f"sum by (le) ({frt_buckets})", "{{le}}"),
                         "format": "heatmap"}],
            "fieldConfig": {"defaults": {"unit": "s"}, "overrides": []},
            "options": {"calculate": False, "yAxis": {"unit": "s"},
                        "cellGap": 1, "color": {"scheme": "Oranges", "mode": "scheme"}},
        },
        _timeseries(lay, "CSAT with 95 % interval", [
            _target(one_replica(f"{m.CSAT}{{{ssel}}}"), "CSAT"),
            _target(one_replica(f"{m.SURVEY_CI_LOWER['csat']}{{{ssel}}}"), "lower", "B"),
            _target(one_replica(f"{m.SURVEY_CI_UPPER['csat']}{{{ssel}}}"), "upper", "C"),
            _target(one_replica(f"{m.SURVEY_RESPONSES['csat']}{{{ssel}}}"), "n", "N"),
        ], "percentunit", _floor_steps(t.score_for("csat")),
            description="Satisfied share of CSAT answers with its 95 % interval; a wide band "
            "means few answers (n)."),
        _response_rate_panel(lay, t, ssel),
        _timeseries(lay, "Volume and backlog", [
            _target(one_replica(f"{m.CREATED}{{{sel}}}"), "created in window"),
            _target(one_replica(f"{m.BACKLOG}{{{TEAM_TICKETS}}}"), "open backlog", "B"),
            _target(one_replica(f"{m.UNANSWERED}{{{TEAM_TICKETS}}}"), "unanswered", "C"),
        ], "none", description="Tickets created in the window, and open and unanswered "
            "tickets now."),
        _timeseries(lay, "Tickets per agent", [
            _target(one_replica(f'{m.TICKETS_PER_AGENT}{{window="$window",team="$team"}}'),
                    "solves/agent"),
        ], "none", description="Solves per active agent of the team over the window."),
        _table(lay, "Agents", [
            _target(one_replica(f'{m.AGENT_SOLVES}{{window="$window",agent=~"$agent"}}')
                    + f" and on (agent) {team_agents}", "", "A", instant=True),
            _target(one_replica(f'{m.AGENT_REPLIES}{{window="$window",agent=~"$agent"}}')
                    + f" and on (agent) {team_agents}", "", "B", instant=True),
            _target(one_replica(f'{m.AGENT_OPEN}{{agent=~"$agent"}}')
                    + f" and on (agent) {team_agents}", "", "C", instant=True),
        ], description="Agents of $team (those with survey responses under the team; agent "
                       "series carry no team label). Labels are capped to the configured "
                       "top-N; the rest is 'other'."),
    ]
    return _dashboard("cxpulse-teamlead", "cxpulse / Team lead", panels,
                      [team_var, agent_var, window_var], "1m", ["teamlead"])


def dashboards(targets: Targets) -> dict[str, JSON]:
    """File name -> dashboard JSON model."""
    return {
        "wall.json": wall(targets),
        "oncall.json": oncall(targets),
        "teamlead.json": teamlead(targets),
    }
