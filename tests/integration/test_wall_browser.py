"""The web wall in a real headless Chromium against a real Prometheus 2.42.

Screenshots (1920x1080) land in tests/artifacts/: wall-normal.png,
wall-incident.png, wall-stale.png. Asserted: every team row is visible without
scrolling, tiles are coloured by the targets, firing pages show, and the stale
banner appears once Prometheus stops.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.core.targets import DEFAULT_TARGETS
from stream.mixin import tiles as tl
from tests.support.prom import free_port
from tests.support.wallfeed import TEAMS, FedPrometheus

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: The CSS colours of wall.css, as the browser computes them.
RGB = {tl.OK: "rgb(23, 128, 61)", tl.WARN: "rgb(194, 120, 3)", tl.BAD: "rgb(200, 30, 30)",
       tl.LOW_SAMPLE: "rgb(90, 95, 102)", tl.INFO: "rgb(44, 79, 134)"}


@pytest.fixture(scope="module")
def fed() -> Iterator[FedPrometheus]:
    system = FedPrometheus().start()
    try:
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="module")
def wall_url(fed: FedPrometheus) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "wall", "--prometheus-url", fed.url,
         "--port", str(port), "--refresh", "1s", "--targets", str(ROOT / "targets.yaml")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "wall did not start"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def page(wall_url: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1920, "height": 1080})
        pg.goto(wall_url)
        yield pg
        browser.close()


def _tile(page: Any, team: str, key: str) -> Any:
    return page.locator(f'.tile[data-team="{team}"][data-key="{key}"]')


def _wait_colour(page: Any, team: str, key: str, colour: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        loc = _tile(page, team, key)
        if loc.count() and loc.get_attribute("data-colour") == colour:
            return
        time.sleep(0.3)
    got = _tile(page, team, key).get_attribute("data-colour") if _tile(page, team, key).count() \
        else "missing"
    pytest.fail(f"{team}/{key} never turned {colour} (is {got})")


def _css_colour(page: Any, team: str, key: str) -> str:
    colour: str = _tile(page, team, key).evaluate("e => getComputedStyle(e).backgroundColor")
    return colour


def test_wall_normal_incident_and_stale(fed: FedPrometheus, page: Any) -> None:
    # -- normal: every team healthy, one team with too few CSAT responses -----------------
    fed.feed.set("accounts", csat=0.2, csat_n=DEFAULT_TARGETS.min_sample - 5)
    _wait_colour(page, "accounts", "csat", tl.LOW_SAMPLE)
    # One atomic read of the layout (the page redraws every second).
    boxes = page.evaluate("""() => Array.from(document.querySelectorAll('.tile, .row-label'))
        .map(e => { const r = e.getBoundingClientRect();
                    return [e.dataset.team, e.dataset.key || 'label', r.x, r.y, r.right,
                            r.bottom, e.querySelector('.v') ?
                            e.querySelector('.v').scrollWidth <= e.querySelector('.v').clientWidth
                            : true]; })""")
    seen = {(team, key): rest for team, key, *rest in boxes}
    for team in (tl.ORG, *TEAMS):
        for key in ("label", *(t.key for t in tl.tiles(DEFAULT_TARGETS))):
            x, y, right, bottom, fits = seen[(team, key)]
            # Entirely inside the 1920x1080 viewport: nothing needs scrolling.
            assert x >= 0 and y >= 0 and right <= 1920 and bottom <= 1080, (team, key, x, y)
            assert fits, f"{team}/{key}: value text clipped"
    scroll = page.evaluate("[document.documentElement.scrollWidth, "
                           "document.documentElement.scrollHeight]")
    assert scroll[0] <= 1920 and scroll[1] <= 1080, scroll
    # Healthy values are green by their targets; backlog has no target (info).
    for team in TEAMS:
        assert _tile(page, team, "frt").get_attribute("data-colour") == tl.OK
        assert _tile(page, team, "nps").get_attribute("data-colour") == tl.OK
        assert _tile(page, team, "backlog").get_attribute("data-colour") == tl.INFO
    assert _css_colour(page, "tech", "frt") == RGB[tl.OK]
    assert _css_colour(page, "accounts", "csat") == RGB[tl.LOW_SAMPLE]
    assert "n=25" in _tile(page, "accounts", "csat").inner_text()
    assert "none" in page.locator("#pages").inner_text()
    assert page.locator("#banner").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "wall-normal.png"))

    # -- incident on tech: FRT over the target, SLA below the objective, queue at risk ----
    target = DEFAULT_TARGETS.frt.target_seconds
    fed.feed.set("tech", frt=target * 3.5, sla=0.55, at_risk=tl.AT_RISK_BAD + 4,
                 oldest=target * 2)
    fed.feed.set("billing", frt=target * 0.8)  # near the limit, not over it
    _wait_colour(page, "tech", "frt", tl.BAD)
    _wait_colour(page, "billing", "frt", tl.WARN)
    assert _tile(page, "tech", "sla").get_attribute("data-colour") == tl.BAD
    assert _tile(page, "tech", "at_risk").get_attribute("data-colour") == tl.BAD
    assert _tile(page, "shipping", "frt").get_attribute("data-colour") == tl.OK
    assert _css_colour(page, "tech", "frt") == RGB[tl.BAD]
    assert _css_colour(page, "billing", "frt") == RGB[tl.WARN]
    assert "52m 30s" in _tile(page, "tech", "frt").inner_text()  # 3150 s, human-readable
    deadline = time.monotonic() + 30
    while "CxpulseTestFrtPage (tech)" not in page.locator("#pages").inner_text():
        assert time.monotonic() < deadline, page.locator("#pages").inner_text()
        time.sleep(0.5)
    page.screenshot(path=str(ARTIFACTS / "wall-incident.png"))

    # -- stale: Prometheus stops; the wall says so instead of showing old numbers as live --
    fed.prom.stop()
    banner = page.locator("#banner")
    banner.wait_for(state="visible", timeout=20_000)
    assert "STALE" in banner.inner_text() and "unreachable" in banner.inner_text()
    assert banner.get_attribute("data-state") == "unreachable"
    page.screenshot(path=str(ARTIFACTS / "wall-stale.png"))
