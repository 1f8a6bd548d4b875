"""What the wall shows, read from the Prometheus HTTP API with the tiles' own queries.

Why Prometheus and not the workers' /metrics: Prometheus is what the alerts
evaluate, so the wall shows exactly what paging sees, however many workers or
exporter replicas there are (the tile queries collapse them). The snapshot is
plain JSON-able data with colours already decided by `cxpulse.mixin.tiles`, so
the browser page and the terminal view (`cxpulse top`) only draw it.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import yaml

from cxpulse import metric_names as m
from cxpulse.core.dimensions import UNKNOWN
from cxpulse.core.durations import parse_duration_ms
from cxpulse.core.targets import Targets
from cxpulse.mixin import tiles as tl

#: Sparkline resolution: points over `tiles.SPARK_RANGE`.
SPARK_POINTS = 60
ALL_TEAMS = 'team!=""'


class PrometheusError(Exception):
    """Prometheus could not be reached or refused a query; the message says which."""


def _all_teams(expr: str) -> str:
    return expr.replace('team="{team}"', ALL_TEAMS)


def _tile_query(tile: tl.Tile) -> str:
    """The tile's value for every team in one query; for a per-team test (collapse
    evidence) the worst team's too, as a series without a team label (the organisation's
    row: `_by_team`)."""
    q = _all_teams(tile.expr)
    return f"{q} or max({q})" if tile.org_is_worst_team else q


@dataclass
class PromClient:
    """The two Prometheus API calls the wall needs, with a short timeout: a TV must
    show "unreachable" within seconds, not hang on a half-open socket."""

    url: str
    timeout_s: float = 5.0

    async def _get(self, session: aiohttp.ClientSession, path: str,
                   params: dict[str, str]) -> Any:
        try:
            async with session.get(self.url.rstrip("/") + path, params=params) as resp:
                body = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise PrometheusError(f"Prometheus at {self.url} unreachable: "
                                  f"{exc.__class__.__name__} {exc}".strip()) from None
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus refused a query: {body.get('error', body)}")
        return body["data"]["result"]

    async def evaluation_interval(self, session: aiohttp.ClientSession) -> float:
        """Prometheus' global evaluation interval (the larger of it and the scrape
        interval: a sample cannot be newer than the last scrape), in seconds."""
        try:
            async with session.get(self.url.rstrip("/") + "/api/v1/status/config") as resp:
                body = await resp.json(content_type=None)
            glob = (yaml.safe_load(body["data"]["yaml"]) or {}).get("global", {})
        except (TimeoutError, aiohttp.ClientError, ValueError, KeyError, yaml.YAMLError) as exc:
            raise PrometheusError(f"Prometheus at {self.url} unreachable: "
                                  f"{exc.__class__.__name__} {exc}".strip()) from None
        return max(parse_duration_ms(str(glob.get(k, "1m"))) / 1000.0
                   for k in ("evaluation_interval", "scrape_interval"))

    async def query(self, session: aiohttp.ClientSession, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._get(session, "/api/v1/query", {"query": expr})
        return result

    async def query_range(self, session: aiohttp.ClientSession, expr: str, start: float,
                          end: float, step: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._get(
            session, "/api/v1/query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"})
        return result


def _by_team(result: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for series in result:
        team = series["metric"].get("team", tl.ORG)
        value = float(series["value"][1])
        if not math.isnan(value):
            out[team] = value
    return out


def _spark_by_team(result: list[dict[str, Any]]) -> dict[str, list[float]]:
    return {s["metric"].get("team", tl.ORG): [float(v) for _, v in s["values"]] for s in result}


def _num(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


async def snapshot(client: PromClient, targets: Targets) -> dict[str, Any]:
    """Everything one refresh of the wall needs, or a status saying why it is missing."""
    tiles = tl.wall_tiles(targets)
    fresh = tl.freshness_tile(targets)
    end = time.time()
    span = parse_duration_ms(tl.SPARK_RANGE) // 1000
    step = max(span / SPARK_POINTS, 15)
    timeout = aiohttp.ClientTimeout(total=client.timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        jobs: list[Any] = [client.query(session, tl.TEAMS_EXPR),
                           client.query(session, fresh.query(tl.ORG)),
                           client.query(session, tl.PAGES_EXPR)]
        for tile in tiles:
            q = _tile_query(tile)
            n_q = _all_teams(tile.n_expr) if tile.n_expr else "vector(0)"
            trend = tl.trend(q)
            jobs += [client.query(session, q), client.query(session, n_q),
                     client.query(session, trend),
                     client.query_range(session, q, end - span, end, step)]
        results = await asyncio.gather(*jobs)
    teams_seen, fresh_res, pages_res = results[0], results[1], results[2]
    per_tile = [results[3 + 4 * i: 7 + 4 * i] for i in range(len(tiles))]

    # A row per team that owns tickets, and per team seen in any tile; but `unknown`
    # only when it owns tickets (tickets nobody is assigned to are worth a row): surveys
    # tied to no ticket (relationship NPS) are `unknown` too, and a row holding only
    # those would push the real teams onto a second page. They count in the organisation.
    teams: list[str] = sorted({s["metric"]["team"] for s in teams_seen})
    for first, *_ in per_tile:
        teams += sorted(set(_by_team(first)) - set(teams) - {tl.ORG, UNKNOWN})
    firing = {(p["metric"].get("alertname"), p["metric"].get("team", "")) for p in pages_res}
    rows: list[dict[str, Any]] = []
    for team in [tl.ORG, *teams]:
        cells = []
        for tile, (values, ns, trends, sparks) in zip(tiles, per_tile, strict=True):
            value = _num(_by_team(values).get(team))
            n: float | None = _num(_by_team(ns).get(team)) if tile.n_expr else None
            delta = _num(_by_team(trends).get(team))
            colour = tile.colour(value, n, team)
            if tile.alert and any(a == tile.alert and (t == team or team == tl.ORG)
                                  for a, t in firing):
                colour = tl.BAD  # the alert holds open until the evidence is back at 0
            cells.append({
                "key": tile.key, "title": tile.title, "description": tile.description,
                "value": value, "text": tile.format(value),
                "colour": colour,
                "target": tile.target(team), "kind": tile.kind,
                "target_text": _target_text(tile, team),
                "n": n, "min_n": tile.min_n,
                "change": delta, "change_text": tile.format_change(delta),
                "spark": _spark_by_team(sparks).get(team, []),
            })
        rows.append({"team": team, "label": "Organisation" if team == tl.ORG else team,
                     "tiles": cells})
    age = _num(next(iter(_by_team(fresh_res).values()), None))
    limit = fresh.target(tl.ORG) or 0.0
    if not any(c["value"] is not None for r in rows for c in r["tiles"]):
        status, message = "no_data", "No KPI data in Prometheus yet"
    elif age is None:
        status, message = "stale", "Data age unknown: no worker or exporter reports it"
    elif age > limit:
        status, message = "stale", f"Data is stale: KPIs are {tl.human_duration(age)} behind"
    else:
        status, message = "ok", ""
    pages = sorted(
        ({"alertname": p["metric"].get("alertname", "?"), "team": p["metric"].get("team", "")}
         for p in pages_res), key=lambda p: (p["team"], p["alertname"]))
    return {
        "status": status, "message": message, "generated_at": end,
        "freshness": {"value": age, "text": fresh.format(age) if age is not None else "?",
                      "colour": fresh.colour(age)},
        "pages": pages, "rows": rows,
        "columns": _columns(tiles),
    }


def _columns(tiles: list[tl.Tile]) -> list[dict[str, Any]]:
    """Column heads; `unit` lets the wall give the short counts narrower columns."""
    return [{"key": t.key, "title": t.title, "unit": t.unit} for t in tiles]


def _target_text(tile: tl.Tile, team: str) -> str:
    target = tile.target(team)
    if target is None or tile.kind == "info":
        return ""
    if tile.alert:  # collapse evidence: not a KPI target, the level that pages
        return f"page at {tile.format(target)}"
    sign = "≤" if tile.kind == "ceiling" else "≥"
    return f"{sign} {tile.format(target)}"


#: How Prometheus says which value is the newest: the sample time of the freshness series.
SAMPLE_AGE_EXPR = f"time() - max(timestamp({m.KPI_DELAY}))"
#: Data older than this many evaluation intervals is stale (Prometheus would still answer
#: with it for its 5 min lookback, so a dead exporter looked live: a false green).
STALE_INTERVALS = 2
#: Slack on top, for a scrape that is merely late (1 s intervals in tests, busy machines).
STALE_SLACK_S = 1.0
UNREACHABLE = "Prometheus unreachable"


async def safe_snapshot(client: PromClient, targets: Targets) -> dict[str, Any]:
    """`snapshot`, or the unreachable state (no previous data to grey out)."""
    return await WallSource(client, targets).get()


class WallSource:
    """Snapshots for the wall and `top`, never a false green.

    Prometheus away: the last good snapshot's rows come back with every tile grey
    ("no data since HH:MM — Prometheus unreachable"), pages unknown, and no exception
    text (it is logged once on stderr for the operator). Prometheus up but its newest
    KPI sample older than two evaluation intervals: every tile is marked stale."""

    def __init__(self, client: PromClient, targets: Targets) -> None:
        self.client, self.targets = client, targets
        self.last: dict[str, Any] | None = None
        self.interval_s: float | None = None
        self._logged = ""

    async def get(self) -> dict[str, Any]:
        try:
            snap = await snapshot(self.client, self.targets)
            age = await self._sample_age()
        except PrometheusError as exc:
            if str(exc) != self._logged:
                print(f"cxpulse wall: {exc}", file=sys.stderr, flush=True)
                self._logged = str(exc)
            return unreachable(self.last, self.targets)
        self._logged = ""
        if snap["status"] == "no_data":  # the series went away (exporter down?)
            if self.last is None:
                return snap
            gone = {**stale(self.last, time.time() - self.last["generated_at"]),
                    "message": "No KPI data in Prometheus any more (exporter down or not "
                               "scraped?)"}
            return gone
        limit = STALE_INTERVALS * (self.interval_s or 60.0) + STALE_SLACK_S
        if age is not None and age > limit:
            return stale(snap, age)
        self.last = snap
        return snap

    async def _sample_age(self) -> float | None:
        timeout = aiohttp.ClientTimeout(total=self.client.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            if self.interval_s is None:
                self.interval_s = await self.client.evaluation_interval(session)
            result = await self.client.query(session, SAMPLE_AGE_EXPR)
        return _num(float(result[0]["value"][1])) if result else None


def _grey(snap: dict[str, Any], word: str) -> list[dict[str, Any]]:
    rows = []
    for r in snap["rows"]:
        tiles = [{**c, "colour": tl.NO_DATA, "change": None, "change_text": "",
                  "note": word} for c in r["tiles"]]
        rows.append({**r, "tiles": tiles})
    return rows


def unreachable(last: dict[str, Any] | None, targets: Targets) -> dict[str, Any]:
    """Every tile grey, with when the last data came; nothing green anywhere."""
    base = last or _empty(targets)
    since = last["generated_at"] if last else None
    rows = _grey(base, UNREACHABLE)
    for r in rows:
        for c in r["tiles"]:
            c.update(value=None, text="no data", n=None, spark=[])
    return {**base, "status": "unreachable", "message": UNREACHABLE, "since": since,
            "generated_at": time.time(), "rows": rows, "pages": None,
            "freshness": {"value": None, "text": "?", "colour": tl.NO_DATA}}


def stale(snap: dict[str, Any], age: float) -> dict[str, Any]:
    """The last values, greyed and marked stale, with how old they are."""
    since = time.time() - age
    return {**snap, "status": "stale", "since": since,
            "message": f"Stale: no new data for {tl.human_duration(age)}",
            "rows": _grey(snap, "stale"),
            "freshness": {"value": age, "text": tl.human_duration(age), "colour": tl.BAD}}


def _empty(targets: Targets) -> dict[str, Any]:
    """The organisation's row with every tile and no value (before any data came)."""
    tiles = tl.wall_tiles(targets)
    return {"rows": [{"team": tl.ORG, "label": "Organisation", "tiles": [
        {"key": t.key, "title": t.title, "description": t.description, "value": None,
         "text": "no data", "colour": tl.NO_DATA, "target": None, "kind": t.kind,
         "target_text": "", "n": None, "min_n": None, "change": None, "change_text": "",
         "spark": []} for t in tiles]}],
        "columns": _columns(tiles), "pages": None}
