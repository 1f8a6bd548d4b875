"""The web wall in a real headless Chromium against a real Prometheus 2.42.

Screenshots (1920x1080) land in tests/artifacts/: wall-normal.png,
wall-incident.png (the README's docs/img/wall-incident.png is a copy of it),
wall-stale.png. Prometheus starts with 26 h of backfilled history
(tests/support/wallhistory.py). Asserted: every team row is visible without
scrolling, tiles are coloured by the targets, every tile has a sparkline of the
last 6 h and the change against yesterday that the backfilled data implies, the
incident team's sparkline ends at its high, firing pages show, and the stale
banner appears once Prometheus stops.

A second feed serves 12 teams (no history: it is not what that test is about):
they do not fit one screen at a readable size, so the wall shows them in
rotating pages (`--rotate 1s`); wall-many-teams.png is one of them.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cxpulse.core.targets import DEFAULT_TARGETS
from cxpulse.mixin import tiles as tl

from tests.support.ports import free_port
from tests.support.wallfeed import TEAMS, FedPrometheus
from tests.support.wallhistory import TILE_KEYS

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
    system = FedPrometheus(history=True).start()
    try:
        yield system
    finally:
        system.stop()


@contextlib.contextmanager
def _wall(fed: FedPrometheus, *extra: str) -> Iterator[str]:
    """`cxpulse wall` on a free port against `fed`, until the block ends."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxpulse.cli", "wall", "--prometheus-url", fed.url,
         "--port", str(port), "--refresh", "1s", "--targets", str(ROOT / "targets.yaml"),
         *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
def chromium() -> Iterator[Any]:
    """One headless Chromium for the module (one Playwright per thread)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def _page(chromium: Any, url: str) -> Iterator[Any]:
    """A 1920x1080 page showing `url`."""
    pg = chromium.new_page(viewport={"width": 1920, "height": 1080})
    try:
        pg.goto(url)
        yield pg
    finally:
        pg.close()


@pytest.fixture(scope="module")
def wall_url(fed: FedPrometheus) -> Iterator[str]:
    with _wall(fed) as url:
        yield url


@pytest.fixture(scope="module")
def page(chromium: Any, wall_url: str) -> Iterator[Any]:
    with _page(chromium, wall_url) as pg:
        yield pg


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
    # The page redraws every second: a tile replaced between finding and reading it is
    # detached and has no computed style (''); read the new one.
    colour = ""
    for _ in range(10):
        colour = _tile(page, team, key).evaluate("e => getComputedStyle(e).backgroundColor")
        if colour:
            break
        time.sleep(0.1)
    return str(colour)


#: One atomic read of every tile's sparkline and change text (the page redraws each second).
_SPARKS_JS = """() => Array.from(document.querySelectorAll('.tile')).map(e => {
    const svg = e.querySelector('svg'), line = e.querySelector('svg polyline');
    const s = svg ? svg.getBoundingClientRect() : null, t = e.getBoundingClientRect();
    return [e.dataset.team, e.dataset.key,
            line ? line.getAttribute('points').trim().split(/\\s+/)
                           .map(p => p.split(',').map(Number)) : [],
            e.querySelector('.chg') ? e.querySelector('.chg').textContent : null,
            s ? [s.x - t.x, s.y - t.y, t.right - s.right, t.bottom - s.bottom, s.width, s.height]
              : null]; })"""


def _sparks(page: Any) -> dict[tuple[str, str], tuple[list[list[float]], str, list[float]]]:
    return {(team, key): (pts, chg, box) for team, key, pts, chg, box in page.evaluate(_SPARKS_JS)}


def _expected_change(fed: FedPrometheus, team: str, key: str) -> str:
    """The change text for today's live value against the backfilled yesterday."""
    assert fed.history is not None
    tile = next(t for t in tl.wall_tiles(DEFAULT_TARGETS) if t.key == key)
    delta = fed.feed.shown(team, key) - fed.history.yesterday(team, key)
    return tile.format_change(delta)


#: The screens a wall meets: a laptop, the commonest cheap TV/monitor, full HD, 4K.
SIZES = ((1280, 720), (1366, 768), (1920, 1080), (3840, 2160))
#: Screenshots of each size, committed (the README links them; JPEG: the 4K PNG is 2 MB).
#: A test run writes them to tests/artifacts (ignored by git): the header clock changes
#: every run, so writing into docs/ left the tree dirty after every `make test`.
#: `CXPULSE_UPDATE_SCREENSHOTS=1` refreshes the committed copies after a layout change.
SIZES_DIR = (ROOT / "docs" / "img" / "wall-sizes"
             if os.environ.get("CXPULSE_UPDATE_SCREENSHOTS") == "1"
             else ROOT / "tests" / "artifacts" / "wall-sizes")

#: Every tile, label and header box, and every text in them, against the viewport and
#: its own box: nothing outside the screen, nothing cut by its tile or box.
_FIT_JS = """([w, h]) => {
    const out = [];
    const inside = (r) => r.left >= -0.5 && r.top >= -0.5 && r.right <= w + 0.5 &&
                          r.bottom <= h + 0.5;
    for (const e of document.querySelectorAll('.tile, .row-label, header > div')) {
        const r = e.getBoundingClientRect();
        const name = `${e.dataset.team || e.id || e.className}/${e.dataset.key || ''}`;
        if (!inside(r)) out.push(`${name} off screen`);
        for (const x of e.querySelectorAll('.t, .v, .sub, .sub span, .label, .list')) {
            const q = x.getBoundingClientRect();
            if (!x.textContent) continue;
            if (q.left < r.left - 0.5 || q.right > r.right + 0.5 || q.top < r.top - 0.5 ||
                q.bottom > r.bottom + 0.5 || x.scrollWidth > x.clientWidth + 1)
                out.push(`${name} .${x.className} "${x.textContent}" cut`);
        }
    }
    return {problems: out, tiles: document.querySelectorAll('.tile').length,
            scroll: [document.documentElement.scrollWidth,
                     document.documentElement.scrollHeight]}; }"""


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_wall_fits_every_screen_size(chromium: Any, wall_url: str, size: tuple[int, int]
                                     ) -> None:
    """At each size every row is on the screen, no tile clipped, no text cut; the PAGES
    tile reads "Pages" whole (it was clipped to "PA" at 1280x720)."""
    w, h = size
    pg = chromium.new_page(viewport={"width": w, "height": h})
    try:
        pg.goto(wall_url)
        pg.wait_for_function("document.querySelectorAll('.tile[data-team=\"tech\"]').length"
                             " > 0", timeout=30_000)
        got = pg.evaluate(_FIT_JS, [w, h])
        assert got["tiles"] == (len(TEAMS) + 1) * len(TILE_KEYS), got
        assert not got["problems"], got["problems"]
        assert got["scroll"][0] <= w and got["scroll"][1] <= h, got["scroll"]
        assert pg.locator("#pages .label").inner_text().strip().lower() == "pages"
        SIZES_DIR.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"wall-{w}x{h}.png"))
        pg.screenshot(path=str(SIZES_DIR / f"wall-{w}x{h}.jpg"), type="jpeg", quality=70)
    finally:
        pg.close()


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
        for key in ("label", *(t.key for t in tl.wall_tiles(DEFAULT_TARGETS))):
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
    # Everything fits one screen: no pages to rotate, no page indicator.
    assert page.locator("#pageno").is_hidden()
    assert page.evaluate("document.body.dataset.pages") == "1"
    # Sparklines and the change against yesterday, from the backfilled history.
    sparks = _sparks(page)
    for team in (tl.ORG, *TEAMS):
        for key in TILE_KEYS:
            pts, chg, box = sparks[(team, key)]
            # 6 h at the wall's 6 min step; without history only the live minute (<= 2).
            assert len(pts) >= 50, (team, key, len(pts))
            assert all(0 <= x <= 100 and 0 <= y <= 100 for x, y in pts), (team, key, pts)
            left, top, right, bottom, width, height = box
            assert min(left, top, right, bottom) >= 0 and width > 100 and height > 20, \
                (team, key, box)
            assert chg == _expected_change(fed, team, key), (team, key)
    # Every line of text in a tile is whole: not cut by the tile's edge (the change used to
    # share a line with the state word and lose its end), not wider than its box.
    cut = page.evaluate("""() => Array.from(document.querySelectorAll('.tile')).flatMap(e => {
        const t = e.getBoundingClientRect();
        return Array.from(e.querySelectorAll('.t, .v, .sub, .sub span')).filter(x => {
            const r = x.getBoundingClientRect();
            return x.textContent && (r.left < t.left || r.right > t.right + 0.5 ||
                r.top < t.top || r.bottom > t.bottom + 0.5 || x.scrollWidth > x.clientWidth + 1);
        }).map(x => `${e.dataset.team}/${e.dataset.key} .${x.className}: ${x.textContent}`); })""")
    assert not cut, cut
    # Spelled out for a reader: the organisation answered 1m 30s faster than yesterday.
    assert sparks[(tl.ORG, "frt")][1] == "▼ 1m 30s"
    assert sparks[("billing", "sla")][1] == "▼ 3 pt"
    assert sparks[("accounts", "nps")][1] == "▲ 10"
    # The organisation's collapse evidence is its worst team's (no organisation-wide test):
    # 10 % now, 30 % yesterday (accounts and tech).
    assert _tile(page, tl.ORG, "csat_collapse").locator(".v").inner_text() == "10 %"
    assert sparks[(tl.ORG, "csat_collapse")][1] == "▼ 20 pt"
    for team in (tl.ORG, *TEAMS):
        assert _tile(page, team, "csat_collapse").get_attribute("data-colour") == tl.OK
    assert "▲▼ vs same time yesterday" in page.locator("#legend").inner_text()
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
    sparks = _sparks(page)
    pts, chg, _ = sparks[("tech", "frt")]
    # The line climbs through the last hour (9 points 6 min apart, then the live one) and
    # ends at its top; SVG y grows downwards.
    ys = [y for _, y in pts]
    assert all(a > b for a, b in zip(ys[-10:], ys[-9:], strict=False)), ys[-10:]
    assert ys[-1] == min(ys), ys
    assert chg == _expected_change(fed, "tech", "frt") == "▲ 44m 10s"
    # shipping's two waiting tickets are both past their deadline, so neither is "at risk"
    # any more: the team is in crisis, red with the 2 counted, never a green "At risk 0"
    fed.feed.set("shipping", at_risk=0, overdue=2)
    _wait_colour(page, "shipping", "at_risk", tl.BAD)
    assert _tile(page, "shipping", "at_risk").locator(".v").inner_text() == "2"
    assert _css_colour(page, "shipping", "at_risk") == RGB[tl.BAD]
    # CSAT collapse evidence: amber from half of what the page needs, red at the page's
    # threshold (1); the organisation's row turns red with its worst team
    fed.feed.set("billing", csat_collapse=tl.EVIDENCE_WARN + 0.1)
    fed.feed.set("accounts", csat_collapse=1.0)
    _wait_colour(page, "accounts", "csat_collapse", tl.BAD)
    _wait_colour(page, "billing", "csat_collapse", tl.WARN)
    _wait_colour(page, tl.ORG, "csat_collapse", tl.BAD)
    assert _tile(page, "accounts", "csat_collapse").locator(".v").inner_text() == "100 %"
    assert _tile(page, "billing", "csat_collapse").locator(".v").inner_text() == "60 %"
    assert _css_colour(page, "billing", "csat_collapse") == RGB[tl.WARN]
    assert _tile(page, "shipping", "csat_collapse").get_attribute("data-colour") == tl.OK
    fit = page.evaluate(_FIT_JS, [1920, 1080])
    assert not fit["problems"], fit["problems"]
    page.screenshot(path=str(ARTIFACTS / "wall-incident.png"))

    # -- stale: the newest samples Prometheus has stop getting newer (a stuck or cut-off
    # source; Prometheus answers with them for 5 min as if live): after two evaluation
    # intervals every tile says so
    fed.feed.frozen_at = time.time()
    _wait_all(page, lambda tiles: all(t["note"] == "stale" for t in tiles), "stale tiles")
    banner = page.locator("#banner")
    assert banner.get_attribute("data-state") == "stale" and "no new data" in banner.inner_text()
    assert not _tiles(page, "ok"), "a stale tile still green"
    page.screenshot(path=str(ARTIFACTS / "wall-stale.png"))

    # -- Prometheus down: every tile grey "no data since HH:MM — Prometheus unreachable",
    # no exception text, pages unknown (not a green "none")
    fed.prom.stop()
    _wait_all(page, lambda tiles: all(t["note"] == "Prometheus unreachable" for t in tiles),
              "unreachable tiles")
    tiles = page.evaluate(_TILES_JS)
    assert all(t["colour"] == tl.NO_DATA for t in tiles)
    assert all(re.search(r"no data\s+since \d\d:\d\d\s+Prometheus unreachable", t["text"])
               for t in tiles), tiles[0]["text"]
    assert len({t["team"] for t in tiles}) == len(TEAMS) + 1  # the rows stay, greyed
    banner.wait_for(state="visible", timeout=20_000)
    assert banner.get_attribute("data-state") == "unreachable"
    assert re.fullmatch(r"no data since \d\d:\d\d — Prometheus unreachable",
                        banner.inner_text().strip()), banner.inner_text()
    body = page.locator("body").inner_text()
    assert "Error" not in body and "Connect" not in body and "127.0.0.1" not in body, body
    assert page.locator("#pages .list").inner_text() == "unknown"
    assert "unknown" in (page.locator("#pages").get_attribute("class") or "")
    assert page.locator("#freshness").get_attribute("class") == "fresh no_data"
    fit = page.evaluate(_FIT_JS, [1920, 1080])
    assert not fit["problems"], fit["problems"]
    page.screenshot(path=str(ARTIFACTS / "wall-prometheus-down.png"))
    SIZES_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SIZES_DIR / "wall-prometheus-down.jpg"), type="jpeg", quality=70)


_TILES_JS = """() => Array.from(document.querySelectorAll('.tile')).map(e => ({
    team: e.dataset.team, key: e.dataset.key, colour: e.dataset.colour,
    note: e.dataset.note || null, text: e.innerText.replace(/\\s+/g, ' ')}))"""


def _tiles(page: Any, colour: str) -> list[dict[str, Any]]:
    return [t for t in page.evaluate(_TILES_JS) if t["colour"] == colour]


def _wait_all(page: Any, pred: Any, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    tiles: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        tiles = page.evaluate(_TILES_JS)
        if tiles and pred(tiles):
            return
        time.sleep(0.3)
    pytest.fail(f"never {what}: {tiles[:3]}")


#: 12 teams: more than fit 1080 px at a readable size (real organisations have 6-15).
MANY_TEAMS = ("accounts", "billing", "claims", "delivery", "enterprise", "hardware",
              "onboarding", "payments", "returns", "shipping", "tech", "warranty")
#: The readable minimum of wall.css, per text: title, value, sub-line, row label.
MIN_PX = {"t": 22, "v": 60, "sub": 20, "team": 22}

#: One atomic read of what is on screen: the page, the rows, and every text that is cut,
#: outside the screen, or smaller than its readable minimum. A text may be smaller only
#: where it would not fit its tile's width even at the minimum (a long duration: the same
#: at 4 teams); a row too short for it never excuses it.
_SCREEN_JS = """(minPx) => {
    const out = [];
    const texts = Array.from(document.querySelectorAll('.tile .t, .tile .v, .tile .sub'));
    for (const x of [...texts, ...document.querySelectorAll('.row-label')]) {
        const cls = x.classList.contains('row-label') ? 'team' : x.classList[0];
        const tileEl = x.closest('.tile') || x, t = tileEl.getBoundingClientRect();
        const r = x.getBoundingClientRect(), name = `${tileEl.dataset.team}/` +
            `${tileEl.dataset.key || 'label'} .${cls} "${x.textContent}"`;
        if (r.left < 0 || r.top < 0 || r.right > 1920 || r.bottom > 1080)
            out.push(`${name} off screen`);
        if (!x.textContent) continue;
        if (r.left < t.left || r.right > t.right + 0.5 || r.top < t.top ||
            r.bottom > t.bottom + 0.5 || x.scrollWidth > x.clientWidth + 1 ||
            x.scrollHeight > x.clientHeight + 1) out.push(`${name} cut`);
        const size = parseFloat(getComputedStyle(x).fontSize);
        if (size < minPx[cls]) {
            const before = x.style.fontSize;
            x.style.fontSize = minPx[cls] + 'px';
            const tooWide = x.scrollWidth > x.clientWidth + 1;
            const tooLow = x.scrollHeight > x.clientHeight + 1;
            x.style.fontSize = before;
            if (!tooWide || tooLow) out.push(`${name} at ${size}px`);
        }
        if (cls === 'v' && r.height < minPx.v * 1.1 - 0.5)
            out.push(`${name} in a ${r.height}px box`);
    }
    const no = document.getElementById('pageno');
    return {page: document.body.dataset.page, pages: document.body.dataset.pages,
            pageno: no.hidden ? null : no.innerText,
            header: document.getElementById('pages').innerText,
            teams: Array.from(document.querySelectorAll('.row-label')).map(e => e.dataset.team),
            scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
            problems: out}; }"""


@pytest.fixture(scope="module")
def fed_many() -> Iterator[FedPrometheus]:
    system = FedPrometheus(teams=MANY_TEAMS).start()
    try:
        yield system
    finally:
        system.stop()


def test_wall_pages_rotate_when_teams_do_not_fit(chromium: Any, fed_many: FedPrometheus
                                                 ) -> None:
    # The last team pages (FRT over the page rule's 900 s): the header must say so
    # whichever page is on screen.
    late = MANY_TEAMS[-1]
    fed_many.feed.set(late, frt=DEFAULT_TARGETS.frt.target_seconds * 2)
    with _wall(fed_many, "--rotate", "1s") as url, _page(chromium, url) as pg:
        pg.wait_for_function("document.body.dataset.pages !== undefined", timeout=30_000)
        shown: dict[str, set[tuple[str, ...]]] = {}
        order: list[str] = []
        header_on_other_page = False
        deadline = time.monotonic() + 60
        # Two full rotations (and until the page rule fires), every screen checked as it
        # is at that moment.
        while len(order) < 7 or not header_on_other_page:
            assert time.monotonic() < deadline, (order, header_on_other_page)
            s = pg.evaluate(_SCREEN_JS, MIN_PX)
            assert not s["problems"], s["problems"]
            assert s["scroll"][0] <= 1920 and s["scroll"][1] <= 1080, s["scroll"]
            # The organisation row is on every page, first.
            assert s["teams"][0] == tl.ORG, s["teams"]
            pages = int(s["pages"])
            assert s["pageno"] is not None and s["pageno"].endswith(f"{s['page']}/{pages}"), s
            shown.setdefault(s["page"], set()).add(tuple(s["teams"][1:]))
            if not order or order[-1] != s["page"]:
                order.append(s["page"])
            if s["page"] != str(pages) and f"CxpulseTestFrtPage ({late})" in s["header"]:
                header_on_other_page = True
            time.sleep(0.1)
        pg.screenshot(path=str(ARTIFACTS / "wall-many-teams.png"))
    # 12 teams at 4 a page (the organisation plus 4 rows fit 1080 px): 3 pages, in order.
    assert pages == 3, pages
    start = order.index("1")
    assert order[start:start + 4] == ["1", "2", "3", "1"], order
    # Each page always shows the same teams; over one cycle every team appears exactly once.
    assert all(len(v) == 1 for v in shown.values()), shown
    cycle = [team for p in ("1", "2", "3") for team in next(iter(shown[p]))]
    assert sorted(cycle) == sorted(MANY_TEAMS), cycle
    assert [len(next(iter(shown[p]))) for p in ("1", "2", "3")] == [4, 4, 4]
