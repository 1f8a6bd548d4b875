"""`cxpulse demo --speed 60`, driven as a user would: every part up, metrics moving,
the wall rendering the teams in Chromium, an injected incident paging its team (and
only it) through the built-in receiver, a dead part named with its own error, two
clones' demos side by side, and nothing left after SIGINT or `make demo-stop`.

Why the incident pages within minutes at speed 60: Prometheus evaluates rules on the
wall clock, so `CxpulseFrtSlaBurnRate1h` (5m and 1h windows, `for: 2m`) sees 5 and 60
simulated hours and must hold for two simulated hours; a stall (30x slower replies)
breaches nearly every deadline of the team from 15 simulated minutes after its start,
so the page reaches the receiver about 3-4 real minutes after the incident starts
(measured: 3 min). `CxpulseFrtStalled` (overdue tickets outnumbering the team's first
replies of 15 simulated minutes, `for: 1m`) may page first, a minute or two of real time
after the first deadlines pass. The predictive `CxpulseFrtAtRisk` compares with the
level of 15+ real minutes earlier and cannot fire in a demo this short.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_wall_browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.signals import default_sigint

pytestmark = [pytest.mark.prometheus, pytest.mark.kafka]
ROOT = Path(__file__).resolve().parents[2]
PAGE = re.compile(r"NOTIFY (\S+): FIRING (\w+) team=(\w+) severity=page")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    body = _get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _opens(name: str, url: str, timeout_s: float = 90) -> str:
    """The body of `url` once it answers 200 (an exporter answers 503 while it reads the
    changelog at start: it opens, a little later); fails naming the part otherwise."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return str(resp.read().decode(errors="replace"))
        except urllib.error.HTTPError as exc:
            last = f"{exc.code}"
            if exc.code == 404:
                break
        except OSError as exc:
            last = str(exc)
        time.sleep(1)
    raise AssertionError(f"{name}: {url} does not open ({last})")


class Console:
    """A demo process and its console, read by a thread: a wait never blocks on a
    demo that prints nothing, and every line stays available for later assertions."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=default_sigint,
                                     env=None if env is None else {**os.environ, **env})
        self.lines: list[str] = []
        self.children: set[int] = set()
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.lines.append("")  # end of output
            self._cond.notify_all()

    @property
    def text(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def wait(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """The first line matching `pattern` (already printed or to come)."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if line == "":
                        pytest.fail(f"demo ended before {pattern!r}:\n{''.join(self.lines)}")
                    if match := re.search(pattern, line):
                        return match
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no line matching {pattern!r} in {timeout_s:.0f}s:\n"
                                + "".join(self.lines))
                self._cond.wait(left)

    def running(self, timeout_s: float = 240) -> dict[str, str]:
        """Wait for the table of parts; name -> where (the first word of the row)."""
        self.wait(r"Ctrl-C stops everything", timeout_s)
        self.children = _descendants(self.proc.pid)
        rows = re.findall(r"^  (\S+)\s+(\S+)", self.text, re.M)
        return {name: where for name, where in rows}

    def finish(self, timeout_s: float = 90) -> int:
        rc = self.proc.wait(timeout_s)
        with self._cond:  # the reader has read the last lines
            self._cond.wait_for(lambda: self.lines[-1:] == [""], 10)
        return rc

    def left_running(self) -> list[int]:
        return [p for p in self.children if os.path.exists(f"/proc/{p}")
                and "zombie" not in _status(p)]

    def kill(self) -> None:
        """Only what this demo started (the children recorded while it ran)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "gone zombie"


def _mentioning(path: Path) -> list[str]:
    """Command lines of the processes that name `path` (a demo's directory: Kafka's
    config and logs, the workers' stores, Prometheus' TSDB are all under it)."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if str(path) in cmd and "zombie" not in _status(int(proc.name)):
                    out.append(cmd)
    return out


def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,sid="], capture_output=True, text=True)
    rows = [tuple(int(x) for x in ln.split()) for ln in out.stdout.splitlines() if ln.strip()]
    kids: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp, _ in rows if pp in frontier} - kids
        kids |= frontier
    return kids


@contextlib.contextmanager
def demo(*args: str, cwd: Path = ROOT, argv0: list[str] | None = None,
         env: dict[str, str] | None = None) -> Iterator[Console]:
    console = Console([*(argv0 or [sys.executable, "-m", "cxpulse.cli", "demo"]), *args], cwd,
                      env)
    try:
        yield console
    finally:
        console.kill()


def _all_up(prom: str, timeout_s: float) -> list[dict[str, Any]]:
    """Every scrape target of this Prometheus up (at least a worker and an exporter)."""
    deadline = time.monotonic() + timeout_s
    ups: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            ups = _query(prom, "up")
            jobs = {u["metric"]["job"] for u in ups}
            if {"cxpulse-worker", "cxpulse-exporter"} <= jobs and all(
                    u["value"][1] == "1" for u in ups):
                return ups
        time.sleep(2)
    pytest.fail(f"not every target of {prom} up: {ups}")


@pytest.mark.timeout(900)  # its waits: start, scrapes, the wall, the page (`for:` 2m)
def test_demo_runs_every_part_pages_the_incident_team_and_stops_clean(tmp_path: Path) -> None:
    # One incident on billing, 30 simulated minutes (30 s) after the simulation starts,
    # which the demo puts at 10:00 UTC of the simulated day whatever the wall clock
    # (`cxpulse.demo.simulated_span`: a CI run at 22:06 UTC once put it in a simulated
    # night, too few tickets to reach the page's minimum before the stall ended).
    team = "billing"
    with demo("--speed", "60", "--dir", str(tmp_path / "demo"), "--incident-team", team,
              "--incident-after", "30m", "--incident-length", "3h", "--incident-every", "0",
              "--tickets-per-day", "4000") as con:
        where = con.running()
        prom, wall = where["prometheus"].removesuffix("/classic/alerts").removesuffix(
            "/alerts"), where["wall"]
        assert prom.startswith("http://127.0.0.1:") and wall.startswith("http://127.0.0.1:")
        # Every address the demo prints opens (Debian's Prometheus 2.42 has no React UI:
        # its alerts page is /classic/alerts; the receiver's GET lists notifications).
        for name, url in where.items():
            if url.startswith("http://"):
                body = _opens(name, url)
                if name == "prometheus":
                    assert "alert" in body.lower(), body[:300]
                if name == "receiver":
                    assert "Notifications Alertmanager sent" in body, body[:300]
        assert "incidents" in where and f"team {team} stalls for 3h" in con.text, con.text
        assert len(con.children) >= 6, con.children  # Kafka, worker, exporter, AM, Prom, ...

        # Every scrape target up, and the consumed counter moving.
        _all_up(prom, 90)
        deadline = time.monotonic() + 90
        consumed: list[float] = []
        while time.monotonic() < deadline:
            total = _query(prom, "sum(cxpulse_messages_consumed_total)")
            if total:
                consumed.append(float(total[0]["value"][1]))
                if len(consumed) >= 2 and consumed[-1] > consumed[0] > 0:
                    break
            time.sleep(3)
        assert len(consumed) >= 2 and consumed[-1] > consumed[0] > 0, consumed
        rules = _get(f"{prom}/api/v1/rules")["data"]["groups"]
        assert rules, "the generated rules are loaded"

        # The wall renders the teams of the live data in a real browser.
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(wall)
            # Teams appear as their first tickets arrive: wait until every team has had a
            # row (on one page with 4 teams; over the pages with more).
            want = {"all", "billing", "tech", "accounts", "shipping"}
            deadline = time.monotonic() + 150
            art = ROOT / "tests" / "artifacts"
            art.mkdir(parents=True, exist_ok=True)
            seen: set[str] = set()  # over every page, should the wall rotate pages
            while not want <= seen:
                if time.monotonic() > deadline:
                    page.screenshot(path=str(art / "demo-wall-missing-teams.png"))
                    state = page.evaluate("() => [document.body.dataset.page, "
                                          "document.body.dataset.pages, document.querySelector("
                                          "'.banner').textContent]")
                    pytest.fail(f"teams on the wall: {sorted(seen)}; page, pages, banner: "
                                f"{state}")
                time.sleep(2)
                seen |= set(page.eval_on_selector_all(".row-label",
                                                      "es => es.map(e => e.dataset.team)"))
            page.screenshot(path=str(art / "demo-wall.png"))
            browser.close()

        # The incident pages the team's on-call through the built-in receiver.
        stall = con.wait(rf"incident: team {team} stalls now .*simulated \w+ (\d\d:\d\d) UTC",
                         120)
        assert stall.group(1) in {"09:59", "10:00", "10:01"}, stall.group(0)
        paged = con.wait(PAGE.pattern, 360)
        assert paged.group(1) == "oncall", paged.group(0)
        assert paged.group(2) in {"CxpulseFrtSlaBurnRate1h", "CxpulseFrtAtRisk",
                                  "CxpulseFrtStalled"}
        assert paged.group(3) == team, paged.group(0)
        print(f"page: {paged.group(0)}")

        con.proc.send_signal(signal.SIGINT)
        assert con.finish() == 0, con.text
        assert "demo: stopped" in con.text
        assert "Traceback" not in con.text
        pages = PAGE.findall(con.text)
        assert {t for _, _, t in pages} == {team}, pages  # nobody else was paged
        assert not con.left_running(), f"left running: {con.left_running()}"
    assert not _mentioning(tmp_path / "demo")


def test_a_dead_part_is_named_with_its_own_error(tmp_path: Path) -> None:
    """The wall's port is taken: the demo names the wall, shows the wall's own line,
    stops what it had started (Kafka), exit 1, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with demo("--speed", "60", "--dir", str(tmp_path / "demo"),
                  "--wall-port", str(port)) as con:
            con.wait(r"starting wall", 120)
            con.children = _descendants(con.proc.pid)  # Kafka's JVM by now
            assert con.finish(120) == 1, con.text
    out = con.text
    assert re.search(r"demo: ERROR wall exited with code 2 \(log .*wall\.log\):", out), out
    assert f"cxpulse wall: cannot listen on 127.0.0.1:{port}: Address already in use" in out
    assert "demo: stopping the other parts" in out and "demo: stopped" in out
    assert "Traceback" not in out
    assert not con.left_running(), con.left_running()
    assert not _mentioning(tmp_path / "demo")  # Kafka (started first) was stopped


def _clone(dst: Path) -> Path:
    """A copy of this checkout as another clone would be (its own `var/`), sharing the
    venv (the package is installed editable, so `.venv/bin/cxpulse` runs this tree's
    code; the state goes where it is run from, the clone)."""
    shutil.copytree(ROOT, dst, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", "__pycache__", "*_cache", ".hypothesis", "artifacts",
        "*.egg-info"))
    (dst / ".venv").symlink_to(ROOT / ".venv")
    return dst


def _cache_with_jars_only(home: Path) -> Path:
    """An `XDG_CACHE_HOME` holding only the shared Kafka jars (a link to the real ones),
    so that anything else a demo writes into its cache is seen, whatever other
    processes of the machine do in the real one."""
    from cxpulse.kafka.broker import fetch_jars

    jars = fetch_jars().parent  # ~/.cache/cxpulse/kafka-<version>
    (home / "cxpulse").mkdir(parents=True)
    (home / "cxpulse" / jars.name).symlink_to(jars)
    return home


def test_two_clones_run_their_demos_side_by_side(tmp_path: Path) -> None:
    """`scripts/demo` in two clones at once: distinct ports, each Prometheus scrapes its
    own parts only, state under each clone, nothing per run in ~/.cache/cxpulse;
    `make demo-stop` in one stops that one only; SIGINT stops the other; nothing left."""
    if not (ROOT / ".venv" / "bin" / "cxpulse").exists():
        pytest.skip("needs the clone's venv (make setup)")
    cache = _cache_with_jars_only(tmp_path / "cache")
    (link,) = (cache / "cxpulse").iterdir()
    jars = sorted(p.name for p in link.glob("libs/*"))
    env = {"XDG_CACHE_HOME": str(cache)}
    a, b = _clone(tmp_path / "a"), _clone(tmp_path / "b")
    args = ("--speed", "60", "--duration", "1d", "--tickets-per-day", "1000",
            "--incident-team", "none")
    with demo(*args, cwd=a, argv0=["scripts/demo"], env=env) as con_a, \
            demo(*args, cwd=b, argv0=["scripts/demo"], env=env) as con_b:
        where_a, where_b = con_a.running(), con_b.running()
        assert f"state and logs under {a / 'var' / 'demo'}" in con_a.text
        assert f"state and logs under {b / 'var' / 'demo'}" in con_b.text

        def ports(where: dict[str, str]) -> set[str]:
            return {m for w in where.values() for m in re.findall(r"127\.0\.0\.1:(\d+)", w)}

        assert len(ports(where_a)) >= 7 and not ports(where_a) & ports(where_b)
        prom_a = where_a["prometheus"].removesuffix("/classic/alerts").removesuffix("/alerts")
        prom_b = where_b["prometheus"].removesuffix("/classic/alerts").removesuffix("/alerts")
        targets = []
        for prom, where in ((prom_a, where_a), (prom_b, where_b)):
            ups = _all_up(prom, 120)
            scraped = {u["metric"]["instance"].split(":")[1] for u in ups}
            assert scraped <= ports(where), (scraped, where)  # its own parts only
            targets.append(scraped)
        for clone in (a, b):
            state = json.loads((clone / "var" / "demo" / "demo.json").read_text())
            assert {p["name"] for p in state["parts"]} >= {"kafka", "worker-1", "prometheus"}
        # A second demo on the same clone is refused while the first runs.
        again = subprocess.run(["scripts/demo", *args], cwd=a, capture_output=True,
                               text=True, timeout=60)
        assert again.returncode == 2, again
        assert "a demo already runs in" in again.stderr and "Traceback" not in again.stderr

        # `make demo-stop` in clone a: a stops (exit 0, nothing of it left), b runs on.
        stop = subprocess.run(["make", "-s", "demo-stop"], cwd=a, capture_output=True,
                              text=True, timeout=180)
        assert stop.returncode == 0, stop
        assert f"stopped the demo in {a / 'var' / 'demo'}" in stop.stdout, stop.stdout
        assert con_a.finish(30) == 0, con_a.text
        assert "demo: stopped" in con_a.text
        assert not con_a.left_running(), con_a.left_running()
        assert con_b.proc.poll() is None, con_b.text
        assert not _mentioning(a) and _mentioning(b)
        assert not [p for p in con_b.children if not os.path.exists(f"/proc/{p}")]
        time.sleep(12)  # two scrape intervals after a's parts went away
        _all_up(prom_b, 30)

        con_b.proc.send_signal(signal.SIGINT)
        assert con_b.finish() == 0, con_b.text
        assert not con_b.left_running(), con_b.left_running()
    assert not _mentioning(tmp_path)
    # Nothing per run in the cache: only the jars, unchanged.
    assert sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) == \
        ["cxpulse", f"cxpulse/{link.name}"]
    assert sorted(p.name for p in link.glob("libs/*")) == jars
    stop = subprocess.run(["scripts/demo", "stop"], cwd=b, capture_output=True, text=True,
                          timeout=60)
    assert stop.returncode == 0 and "no demo running" in stop.stdout, stop


def test_stop_cleans_up_after_a_killed_demo(tmp_path: Path) -> None:
    """kill -9 of the demo leaves its parts (each in its own session) running;
    `cxpulse demo --stop --dir` stops them, found through the directory's demo.json."""
    directory = tmp_path / "demo"
    with demo("--speed", "60", "--dir", str(directory), "--incident-team", "none") as con:
        con.running()
        assert _mentioning(directory)
        con.proc.kill()
        con.proc.wait(30)
        assert _mentioning(directory)  # orphans: Kafka, worker, exporter, Prometheus, ...
        stop = subprocess.run([sys.executable, "-m", "cxpulse.cli", "demo", "--stop", "--dir",
                               str(directory)], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert stop.returncode == 0, stop
        assert re.search(r"and \d part\(s\) it left: wall, worker-1, exporter, "
                         r"alertmanager, prometheus, simulator, kafka", stop.stdout), stop
        assert not _mentioning(directory)


def _exporter_sum(url: str, name: str, **labels: str) -> float:
    """The sum of a family's samples (with these labels) on an exporter's /metrics, read
    directly: no Prometheus scrape interval between the count and the assertion."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.mark.timeout(600)
def test_vendor_zendesk_drives_the_pipeline_through_the_gateway(tmp_path: Path) -> None:
    """`--vendor zendesk`: the simulator's hour as signed Zendesk webhooks, posted to
    `cxpulse ingest` (every 50th twice, as a retrying Zendesk does), mapped by
    `cxpulse map`; every part up, and on the exporter each ticket created once: the
    count equals the tickets the simulator posted, and stays there."""
    with demo("--speed", "60", "--duration", "1h", "--incident-team", "none",
              "--tickets-per-day", "3000", "--vendor", "zendesk",
              "--dir", str(tmp_path / "demo")) as con:
        where = con.running()
        assert {"ingest", "map", "exporter", "simulator"} <= set(where), where
        prom = where["prometheus"].removesuffix("/classic/alerts").removesuffix("/alerts")
        deadline = time.monotonic() + 90
        while True:  # the gateway and the map stage scraped too
            ups = _all_up(prom, 90)
            if {"cxpulse-ingest", "cxpulse-map"} <= {u["metric"]["job"] for u in ups}:
                break
            assert time.monotonic() < deadline, ups
            time.sleep(2)
        # the simulator's summary, shown when it finishes (an hour at 60x: a minute)
        summary = con.wait(r"simulator finished.*simulator: (\d+) Zendesk webhooks posted to "
                           r"cxpulse ingest .*\((\d+) posted twice.*\), (\d+) tickets", 240)
        posted, twice, tickets = (int(g) for g in summary.groups())
        # the simulated hour is the hour of day the test runs in (the day's shape: a 21:00
        # hour has a third of a 10:00 one), so only its proportions are fixed
        assert tickets >= 5 and posted >= 2 * tickets and twice == posted // 50, summary.group(0)
        # tickets created in the last 24 h (the whole simulated hour): the window's gauge,
        # not `_total` (all-time counters fold sealed slices only: the last minutes of
        # event time stay open once the simulator has stopped)
        exporter = where["exporter"]
        day = {"team": "all", "channel": "all", "priority": "all", "window": "24h"}
        deadline = time.monotonic() + 120
        created = 0.0
        while time.monotonic() < deadline:
            created = _exporter_sum(exporter, "cxpulse_tickets_created", **day)
            if created >= tickets:
                break
            time.sleep(2)
        assert created == tickets, (created, tickets)
        ingest = where["ingest"].split(" ")[0].rstrip("/")
        accepted = _exporter_sum(f"{ingest}/metrics", "cxpulse_ingest_deliveries_total")
        assert accepted >= posted + twice, (accepted, posted, twice)  # all of them went in
        # KPIs beyond the count: first responses measured from the agents' comments
        assert _exporter_sum(exporter, "cxpulse_first_response_seconds_count") > 0
        assert _exporter_sum(exporter, "cxpulse_frt_sla_met", **day) > 0
        time.sleep(10)  # a redelivery or a replay would show as more, later
        assert _exporter_sum(exporter, "cxpulse_tickets_created", **day) == tickets
        con.proc.send_signal(signal.SIGINT)
        assert con.finish() == 0, con.text
        assert "Traceback" not in con.text
        assert not con.left_running(), f"left running: {con.left_running()}"
