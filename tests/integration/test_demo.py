"""`cxpulse demo --speed 60`, driven as a user would: every part up, metrics moving,
the wall rendering the teams in Chromium, a dead part named, nothing left after SIGINT."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_wall_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.prometheus, pytest.mark.kafka]
ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    body = _get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _wait_line(proc: subprocess.Popen[str], pattern: str, lines: list[str],
               timeout_s: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            pytest.fail("demo ended early:\n" + "".join(lines))
        lines.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    pytest.fail(f"no line matching {pattern!r}:\n" + "".join(lines))


def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,sid="], capture_output=True, text=True)
    rows = [tuple(int(x) for x in ln.split()) for ln in out.stdout.splitlines() if ln.strip()]
    kids: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp, _ in rows if pp in frontier} - kids
        kids |= frontier
    return kids


def test_demo_runs_every_part_and_stops_clean(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "demo", "--speed", "60", "--dir",
         str(tmp_path / "demo")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    children: set[int] = set()
    try:
        _wait_line(proc, r"Ctrl-C stops everything", lines, 240)
        text = "".join(lines)
        prom = re.search(r"prometheus\s+(http://127\.0\.0\.1:\d+)", text)
        wall = re.search(r"wall\s+(http://127\.0\.0\.1:\d+/)", text)
        assert prom and wall, text
        children = _descendants(proc.pid)
        assert len(children) >= 5, children  # worker, AM, Prometheus, simulator, wall (+JVM)

        # Every scrape target up, and the consumed counter moving.
        deadline = time.monotonic() + 90
        consumed: list[float] = []
        while time.monotonic() < deadline:
            ups = _query(prom.group(1), "up")
            total = _query(prom.group(1), "sum(cxpulse_messages_consumed_total)")
            if ups and all(u["value"][1] == "1" for u in ups) and total:
                consumed.append(float(total[0]["value"][1]))
                if len(consumed) >= 2 and consumed[-1] > consumed[0] > 0:
                    break
            time.sleep(3)
        assert len(consumed) >= 2 and consumed[-1] > consumed[0] > 0, consumed
        rules = _get(f"{prom.group(1)}/api/v1/rules")["data"]["groups"]
        assert rules, "the generated rules are loaded"

        # The wall renders the teams of the live data in a real browser.
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(wall.group(1))
            # Teams appear as their first tickets arrive (the simulation starts now, maybe
            # at night): wait until every team has a row.
            want = {"all", "billing", "tech", "accounts", "shipping"}
            deadline = time.monotonic() + 150
            teams: list[str] = []
            while not want <= set(teams):
                assert time.monotonic() < deadline, teams
                time.sleep(2)
                teams = page.eval_on_selector_all(".row-label",
                                                  "es => es.map(e => e.dataset.team)")
            art = ROOT / "tests" / "artifacts"
            art.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(art / "demo-wall.png"))
            browser.close()

        proc.send_signal(signal.SIGINT)
        proc.wait(90)
        rest = proc.stdout.read() if proc.stdout else ""
        assert proc.returncode == 0, "".join(lines) + rest
        assert "demo: stopped" in rest
        alive = [p for p in children if os.path.exists(f"/proc/{p}")
                 and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()]
        assert not alive, f"left running: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        for pid in children:  # only what this demo started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
