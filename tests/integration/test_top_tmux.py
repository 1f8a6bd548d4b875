"""`cxpulse top` in a real terminal (tmux), read back with capture-pane.

Prometheus starts with 26 h of backfilled history (tests/support/wallhistory.py), so
each cell's second line shows the change against the same time yesterday.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cxpulse.core.targets import DEFAULT_TARGETS
from cxpulse.mixin import tiles as tl

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


def test_top_shows_every_team_and_follows_an_incident() -> None:
    assert shutil.which("tmux"), ".ci/run installs tmux"
    fed = FedPrometheus(history=True).start()
    session = f"cxpulse-top-{uuid.uuid4().hex[:8]}"
    cmd = (f"{sys.executable} -m cxpulse.cli top --prometheus-url {fed.url} --refresh 1s "
           f"--targets {ROOT / 'targets.yaml'}")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "40",
                    "-c", str(ROOT)], check=True)
    # Detached sessions keep tmux's default 80x24 unless sized explicitly; size the
    # window first, then type the command as a person would.
    subprocess.run(["tmux", "resize-window", "-t", session, "-x", "160", "-y", "40"],
                   check=True)
    subprocess.run(["tmux", "send-keys", "-t", session, cmd, "Enter"], check=True)
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
            for tile in tl.tiles(DEFAULT_TARGETS):
                delta = fed.feed.values[team][tile.key] - fed.history.yesterday(team, tile.key)
                at = below.find(tile.format_change(delta), at)
                assert at >= 0, (team, tile.key, tile.format_change(delta), below)
        assert "▼ 1m 30s" in lines[lines.index(line_of(screen, "Organisation")) + 1]
        assert [t.key for t in tl.tiles(DEFAULT_TARGETS)] == list(TILE_KEYS)
        target = DEFAULT_TARGETS.frt.target_seconds
        fed.feed.set("tech", frt=target * 3.5)
        screen = _wait_for(session, lambda s: "52m 30s!!" in line_of(s, "tech"))
        assert "CxpulseTestFrtPage (tech)" in _wait_for(
            session, lambda s: "CxpulseTestFrtPage" in s)
        # shipping's two waiting tickets are both past their deadline: none is "at risk"
        # any more, and the team is in crisis: red (!!), never a green "At risk 0"
        fed.feed.set("shipping", at_risk=0, overdue=2)
        _wait_for(session, lambda s: " 2!!" in line_of(s, "shipping"))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "top.txt").write_text(_screen(session))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
        fed.stop()
