"""`cxpulse top` in a real terminal (tmux), read back with capture-pane.

Prometheus starts with 26 h of backfilled history (tests/support/wallhistory.py), so
each cell's second line shows the change against the same time yesterday.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cxpulse.core.targets import DEFAULT_TARGETS
from cxpulse.mixin import tiles as tl
from cxpulse.wall import top

from tests.support.wallfeed import TEAMS, FedPrometheus
from tests.support.wallhistory import TILE_KEYS

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


def _screen(session: str) -> str:
    out = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                         capture_output=True, text=True, check=True)
    return out.stdout


def _wait_for(session: str, predicate: object, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(session)
        if predicate(screen):  # type: ignore[operator]
            return screen
        time.sleep(0.5)
    pytest.fail(f"screen never matched:\n{screen}")


@pytest.fixture(scope="module")
def fed() -> Iterator[FedPrometheus]:
    """One fed Prometheus for the file (the 80x24 test runs first, on healthy values)."""
    assert shutil.which("tmux"), ".ci/run installs tmux"
    prom = FedPrometheus(history=True).start()
    try:
        yield prom
    finally:
        prom.stop()


def _start_top(fed: FedPrometheus, width: int, height: int) -> str:
    session = f"cxpulse-top-{uuid.uuid4().hex[:8]}"
    cmd = (f"{sys.executable} -m cxpulse.cli top --prometheus-url {fed.url} --refresh 1s "
           f"--targets {ROOT / 'targets.yaml'}")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y",
                    str(height), "-c", str(ROOT)], check=True)
    # Detached sessions keep tmux's default 80x24 unless sized explicitly; size the
    # window first, then type the command as a person would.
    subprocess.run(["tmux", "resize-window", "-t", session, "-x", str(width), "-y",
                    str(height)], check=True)
    subprocess.run(["tmux", "send-keys", "-t", session, cmd, "Enter"], check=True)
    return session


def test_top_at_80x24_drops_the_least_important_columns_and_says_so(
    fed: FedPrometheus,
) -> None:
    session = _start_top(fed, 80, 24)
    try:
        screen = _wait_for(session, lambda s: "tech " in s and "not shown" in s)
        # -J joins lines tmux wrapped: any joined line wider than the pane was split.
        joined = subprocess.run(["tmux", "capture-pane", "-p", "-J", "-t", session],
                                capture_output=True, text=True, check=True).stdout
        wide = [ln for ln in joined.splitlines()
                if len(ln.rstrip()) > 80 and "cxpulse.cli top" not in ln]  # the typed command
        assert not wide, wide
        notice = next(ln for ln in screen.splitlines() if "not shown" in ln)
        titles = {t.key: t.title for t in tl.wall_tiles(DEFAULT_TARGETS)}
        said = notice.split("not shown ", 1)[1].split(" (wider")[0].split(", ")
        hidden = [k for k, title in titles.items() if title in said]
        shown = [k for k in titles if k not in hidden]
        # Least important first: what is hidden is a prefix of the drop order, and the
        # first reply time and the SLA share are still there.
        assert hidden and set(hidden) == set(top.DROP_ORDER[: len(hidden)]), notice
        assert {"frt", "sla"} <= set(shown)
        lines = screen.splitlines()
        rule = next(i for i, ln in enumerate(lines) if ln.strip().startswith("───"))
        header = " ".join(lines[lines.index(notice) + 1: rule])
        for key in shown:  # every word of every shown header, whole
            for word in titles[key].split():
                assert re.search(rf"(^|\s){re.escape(word)}(\s|$)", header), (word, header)
        org = next(ln for ln in lines if ln.startswith("Organisation"))
        for text in ("5m 20s", "96 %"):  # healthy FRT p90 and SLA of the feed
            assert text in org, org
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "top-80x24.txt").write_text(screen)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def test_top_shows_every_team_and_follows_an_incident(fed: FedPrometheus) -> None:
    session = _start_top(fed, 160, 40)
    try:
        def line_of(screen: str, team: str) -> str:
            return next((ln for ln in screen.splitlines() if ln.strip().startswith(team)), "")

        screen = _wait_for(session, lambda s: all(line_of(s, t) for t in TEAMS))
        for team in ("Organisation", *TEAMS):
            row = line_of(screen, team)
            # FRT p90 320 s, SLA 96 %, backlog 42, CSAT 91 %, NPS +76: every KPI of the row.
            for text in ("5m 20s", "96 %", "42", "91 %", "+76"):
                assert text in row, (team, text, row)
        assert "data age" in screen and "none" in screen
        # Under each row: n and the change vs yesterday the backfilled history implies,
        # in column order (e.g. the organisation's FRT "▼ 1m 30s": 5m 20s now, 6m 50s then).
        assert fed.history is not None
        lines = screen.splitlines()
        for team, label in ((tl.ORG, "Organisation"), *((t, t) for t in TEAMS)):
            below = lines[lines.index(line_of(screen, label)) + 1]
            at = 0
            for tile in tl.wall_tiles(DEFAULT_TARGETS):
                delta = fed.feed.shown(team, tile.key) - fed.history.yesterday(team, tile.key)
                at = below.find(tile.format_change(delta), at)
                assert at >= 0, (team, tile.key, tile.format_change(delta), below)
        assert "▼ 1m 30s" in lines[lines.index(line_of(screen, "Organisation")) + 1]
        assert [t.key for t in tl.wall_tiles(DEFAULT_TARGETS)] == list(TILE_KEYS)
        target = DEFAULT_TARGETS.frt.target_seconds
        fed.feed.set("tech", frt=target * 3.5)
        screen = _wait_for(session, lambda s: "52m 30s!!" in line_of(s, "tech"))
        assert "CxpulseTestFrtPage (tech)" in _wait_for(
            session, lambda s: "CxpulseTestFrtPage" in s)
        # shipping's two waiting tickets are both past their deadline: none is "at risk"
        # any more, and the team is in crisis: red (!!), never a green "At risk 0"
        fed.feed.set("shipping", at_risk=0, overdue=2)
        _wait_for(session, lambda s: " 2!!" in line_of(s, "shipping"))
        # CSAT collapse evidence: "!" from half of what the page needs, "!!" at the page's
        # threshold; the organisation shows its worst team
        fed.feed.set("billing", csat_collapse=1.0)
        fed.feed.set("accounts", csat_collapse=tl.EVIDENCE_WARN + 0.1)
        screen = _wait_for(session, lambda s: "100 %!!" in line_of(s, "billing")
                           and re.search(r" 60 %!(?!!)", line_of(s, "accounts")) is not None)
        assert "100 %!!" in line_of(screen, "Organisation")
        assert "10 %!" not in line_of(screen, "shipping")  # its 10 % is plain: on target
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "top.txt").write_text(_screen(session))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
