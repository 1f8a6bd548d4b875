"""Which rows the wall (and `cxpulse top`) shows, from what Prometheus answers.

`cxpulse.wall.data.snapshot` is fed canned query results here (a client that answers
by selector, no network): the organisation first, then every team that owns tickets
or appears in a tile, but `unknown` only when it owns tickets. Found in the demo: the
relationship NPS surveys (tied to no ticket) made an `unknown` row with nothing but
NPS, and with the four teams that was one row too many for a page, so `tech` rotated
onto a second one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cxpulse import metric_names as m
from cxpulse.core.targets import parse_targets
from cxpulse.mixin import tiles as tl
from cxpulse.wall.data import PromClient, snapshot


class CannedProm(PromClient):
    """Answers `TEAMS_EXPR` with the teams owning tickets and the NPS tile's queries
    with `nps_teams`; everything else is empty."""

    def __init__(self, ticket_teams: list[str], nps_teams: list[str],
                 evidence: dict[str, float] | None = None,
                 firing: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__("http://canned.invalid")
        self.ticket_teams, self.nps_teams = ticket_teams, nps_teams
        self.evidence, self.firing = evidence or {}, firing

    def _answer(self, expr: str) -> list[dict[str, Any]]:
        if expr == tl.TEAMS_EXPR:
            return [{"metric": {"team": t}, "value": [0, "1"]} for t in self.ticket_teams]
        if expr == tl.PAGES_EXPR:
            return [{"metric": {"alertname": a, "team": t, "severity": "page"},
                     "value": [0, "1"]} for a, t in self.firing]
        if expr.startswith(f"max without (instance) ({m.COLLAPSE_EVIDENCE['csat']}"):
            return [{"metric": {"team": t}, "value": [0, str(v)]}
                    for t, v in self.evidence.items()]
        if m.NPS in expr:
            return [{"metric": {"team": t}, "value": [0, "40"]} for t in self.nps_teams]
        return []

    async def query(self, session: Any, expr: str) -> list[dict[str, Any]]:
        return self._answer(expr)

    async def query_range(self, session: Any, expr: str, start: float, end: float,
                          step: float) -> list[dict[str, Any]]:
        return [{**r, "values": [r["value"]]} for r in self._answer(expr)]


def _rows(ticket_teams: list[str], nps_teams: list[str]) -> list[str]:
    snap = asyncio.run(snapshot(CannedProm(ticket_teams, nps_teams), parse_targets({})))
    return [r["team"] for r in snap["rows"]]


def test_surveys_tied_to_no_ticket_make_no_unknown_row() -> None:
    teams = ["accounts", "billing", "shipping", "tech"]
    assert _rows(teams, [tl.ORG, *teams, "unknown"]) == [tl.ORG, *teams]


def test_unknown_owning_tickets_has_its_row_and_a_survey_only_team_too() -> None:
    assert _rows(["billing", "unknown"], [tl.ORG, "billing", "vip"]) == [
        tl.ORG, "billing", "unknown", "vip"]


def _collapse(snap: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {r["team"]: next((c["text"], c["colour"]) for c in r["tiles"]
                            if c["key"] == "csat_collapse") for r in snap["rows"]}


def test_collapse_tile_stays_red_while_its_page_is_open() -> None:
    """The CSAT page holds until the evidence is back at 0: at 30 % with the page still
    firing the tile is red (a green tile beside an open page is a false green); the same
    30 % with no page is green, and another team's open page reddens the organisation."""
    teams = ["billing", "tech"]
    page = next(t.alert for t in tl.wall_tiles(parse_targets({})) if t.key == "csat_collapse")
    assert page == "CxpulseCSATCollapse"
    prom = CannedProm(teams, [], {"billing": 0.3, "tech": 0.3}, ((page, "billing"),))
    got = _collapse(asyncio.run(snapshot(prom, parse_targets({}))))
    assert got["billing"] == ("30 %", tl.BAD)
    assert got["tech"] == ("30 %", tl.OK)
    assert got[tl.ORG][1] == tl.BAD
    calm = _collapse(asyncio.run(snapshot(CannedProm(teams, [], {"billing": 0.3}),
                                          parse_targets({}))))
    assert calm["billing"] == ("30 %", tl.OK) and calm[tl.ORG][1] != tl.BAD
