"""`cxpulse demo`: the whole system live on one machine, in one command.

Starts, on free loopback ports: a real Kafka broker, the worker(s), a real
Prometheus loading the generated rules, a real Alertmanager with the
project's routing (its webhooks rewritten to a receiver built into this
process, which prints every notification), the simulator producing events
at the current time (`--speed N` compresses N seconds of support activity
into one) with an incident on one team every so often (`--incident-*`), and
the wall.

Why a supervisor rather than a shell script: every part is a child this
process owns, so if one dies the demo says which, with that part's own last
log lines, and stops the others; Ctrl-C (or SIGTERM) stops everything, and
nothing is left running. All state (broker data, worker stores, TSDB, logs)
lives under `--dir` (default `var/demo` in the clone), never in a directory
shared between clones; a lock there refuses a second demo on the same
directory, and `cxpulse demo --stop` (`scripts/demo stop`, `make demo-stop`)
stops the demo of that directory only.

Time: the simulator compresses time, Prometheus does not. Rule windows and
`for:` run on the wall clock, so at `--speed 60` the burn-rate page's 5m/1h
windows cover 5h/60h of simulated time and its `for: 2m` two simulated hours;
the predictive page compares with the level 15+ wall minutes earlier, so it
cannot fire in a demo's first 15 minutes. An injected incident (a stall of
`INCIDENT_FACTOR`) therefore pages through `CxpulseFrtSlaBurnRate1h` at
speed 60, about 3-4 minutes after it starts (docs/alerts.md, "In the demo"),
provided the team has tickets enough: faster than real time the first incident
is put at 10:00 UTC of the simulated day (`simulated_span`).

Adding a process (e.g. `cxpulse exporter`) is one entry in `parts()`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import yaml

from stream import cliargs

EXIT_PART_DIED = 1
EXIT_USAGE = 2
STATE_NAME = "demo.json"  # under the demo's directory: its pid and its parts' pids
LOCK_NAME = "demo.lock"  # held (flock) for the life of a demo
#: how much slower the incident team works: a stall (a tool outage, the team pulled into
#: an escalation), so almost every ticket of the incident breaches and the page is clear
INCIDENT_FACTOR = 30.0
INCIDENT_CSAT_SHARE = 0.45  # satisfied share of the tickets the incident delayed
WATCHDOG = "CxpulseWatchdog"
TOPICS = ("support.tickets", "support.surveys")
DEADLETTER = "support.deadletter"
PY = [sys.executable, "-m", "stream.cli"]


#: Faster than real time the simulated hour of day is free to choose, and the demo puts
#: the first incident at this hour (UTC) of its simulated day (see `simulated_span`).
INCIDENT_HOUR = 10
_DAY_MS = 86_400_000


def simulated_span(now_ms: int, duration_ms: int, speed: float,
                   incident: IncidentPlan | None) -> tuple[int, int]:
    """(start, duration) in epoch ms of the simulation the demo produces.

    Faster than real time the simulation starts in the past so that its clock
    reaches the wall clock when it ends (events are never stamped ahead of the
    time they are sent). That fixes the end, not the hour of day at which the
    first incident falls: left to the wall clock (start = now - duration *
    (1 - 1/speed)), an evening demo put it in a simulated night, when a team
    gets well under 1% of a day's tickets an hour, and the burn-rate page's
    minimum of 10 deadlines came only as the stall ended: no page, a demo that
    seemed broken. So the simulation is made longer (by less than a simulated
    day, about 24 real minutes at speed 60) until the first incident starts at
    `INCIDENT_HOUR`:00 UTC of its simulated day. At speed 1 (or slower) the
    simulation is the present and nothing moves."""
    if speed <= 1:
        return now_ms - int(duration_ms * (1 - 1 / speed)), duration_ms
    k = 1 - 1 / speed
    if incident is not None:
        first = now_ms - duration_ms * k + incident.after_ms
        back = (first - INCIDENT_HOUR * 3_600_000) % _DAY_MS  # simulated ms to move it back
        duration_ms += int(back / k)
    return now_ms - int(duration_ms * k), duration_ms


#: Where the demo's parts listen: below the kernel's ephemeral range (32768-60999 on
#: Linux) and below the blocks the test suite takes its ports from (tests/support/ports.py).
DEMO_PORTS = range(10_000, 20_000)


def free_port() -> int:
    """A loopback port for a part, free when chosen, at random in `DEMO_PORTS`.

    Why not `bind(0)`: that hands out a port of the ephemeral range, and so does
    every outgoing connection (each Kafka client of the demo opens several). A
    part binds its port seconds after the demo chose it, and once Alertmanager
    found its port taken in between ("bind: address already in use"), which
    stopped the demo. Ports outside that range are only ever taken on purpose."""
    for _ in range(100):
        port = random.choice(DEMO_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise DemoError(f"no free port in {DEMO_PORTS.start}-{DEMO_PORTS.stop - 1}")


class DemoError(Exception):
    """A part could not start or died; the message names the part and its error."""


@dataclass(frozen=True)
class IncidentPlan:
    """When the simulated team stalls, in simulated time from the simulation's start.

    Why offsets from the start rather than clock times (like the `incident`
    scenario's 09:00): the demo's simulation starts whenever it is run, and an
    incident fixed to a time of day may fall before its start and never
    happen. `every_ms == 0`: a single incident."""

    team: str
    after_ms: int
    length_ms: int
    every_ms: int

    def spans(self, start_ms: int, duration_ms: int) -> list[tuple[int, int]]:
        """(begin, end) epoch ms of every incident inside [start, start + duration)."""
        out: list[tuple[int, int]] = []
        at = self.after_ms
        while at < duration_ms:
            out.append((start_ms + at, start_ms + min(at + self.length_ms, duration_ms)))
            if self.every_ms <= 0:
                break
            at += self.every_ms
        return out

    def slowdowns(self, start_ms: int, duration_ms: int) -> tuple[Any, ...]:
        from stream.sim.model import first_midnight
        from stream.sim.params import Slowdown

        midnight = first_midnight(start_ms)
        return tuple(
            Slowdown(self.team, begin - midnight, end - begin, factor=INCIDENT_FACTOR,
                     csat_share=INCIDENT_CSAT_SHARE)
            for begin, end in self.spans(start_ms, duration_ms))


@dataclass
class Part:
    """One child process of the demo.

    `scrape_job` set: Prometheus scrapes `metrics_port` under that job name.
    `ready_url`: polled until it answers before the next part starts.
    `finishes`: a clean exit (code 0) is the end of its work, not a failure.
    """

    name: str
    argv: list[str]
    ready_url: str | None = None
    metrics_port: int | None = None
    scrape_job: str | None = None
    finishes: bool = False
    where: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log: Path | None = None

    def tail(self, lines: int = 12) -> str:
        if self.log is None or not self.log.exists():
            return ""
        text = self.log.read_text(errors="replace").strip().splitlines()
        return "\n".join("    " + ln for ln in text[-lines:])


@dataclass
class Demo:
    args: argparse.Namespace
    root: Path
    dir: Path
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    started: list[Part] = field(default_factory=list)
    broker: Any = None
    receiver: ThreadingHTTPServer | None = None
    stop_requested: bool = False
    #: the simulation's first instant (epoch ms), fixed before the simulator starts so the
    #: console can say when each incident happens
    sim_start_ms: int = 0
    sim_duration_ms: int = 0  # --duration, made longer by `simulated_span` if need be
    lock_fd: int | None = None

    # -- output -------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(f"demo: {text}", file=self.out, flush=True)

    # -- the parts ----------------------------------------------------------------------
    def parts(self, bootstrap: str, am_port: int, prom_port: int) -> list[Part]:
        """Every process after Kafka, in start order: the wall first (its port may be the
        user's `--wall-port`: a taken port ends the demo in seconds, not after a minute of
        starting the rest; it shows "Prometheus unreachable" until Prometheus is up), the
        workers (job `cxpulse-worker`, their health), one exporter (job
        `cxpulse-exporter`, every KPI of all partitions), then Alertmanager, Prometheus and
        the simulator."""
        a = self.args
        targets = str(self.root / a.targets)
        out: list[Part] = []
        wall_port = a.wall_port or free_port()
        out.append(Part(
            "wall",
            [*PY, "wall", "--prometheus-url", f"http://127.0.0.1:{prom_port}",
             "--port", str(wall_port), "--refresh", "5s", "--targets", targets],
            ready_url=f"http://127.0.0.1:{wall_port}/healthz",
            where=f"http://127.0.0.1:{wall_port}/"))
        for i in range(a.workers):
            port = free_port()
            out.append(Part(
                f"worker-{i + 1}",
                [*PY, "worker", "--bootstrap-servers", bootstrap,
                 "--group-id", "cxpulse-demo", "--metrics-host", "127.0.0.1",
                 "--metrics-port", str(port), "--datadir", str(self.dir / f"worker-{i + 1}"),
                 "--set", f"targets_file={targets}"],
                ready_url=f"http://127.0.0.1:{port}/healthz", metrics_port=port,
                scrape_job="cxpulse-worker", where=f"http://127.0.0.1:{port}/metrics"))
        port = free_port()
        out.append(Part(
            "exporter",
            [*PY, "exporter", "--bootstrap-servers", bootstrap,
             "--group-id", "cxpulse-demo", "--metrics-host", "127.0.0.1",
             "--metrics-port", str(port), "--set", f"targets_file={targets}"],
            ready_url=f"http://127.0.0.1:{port}/healthz", metrics_port=port,
            scrape_job="cxpulse-exporter", where=f"http://127.0.0.1:{port}/metrics"))
        out.append(Part(
            "alertmanager",
            ["prometheus-alertmanager", f"--config.file={self.dir / 'alertmanager.yml'}",
             f"--web.listen-address=127.0.0.1:{am_port}",
             f"--storage.path={self.dir / 'alertmanager'}", "--cluster.listen-address="],
            ready_url=f"http://127.0.0.1:{am_port}/-/ready",
            where=f"http://127.0.0.1:{am_port}/"))
        out.append(Part(
            "prometheus",
            ["prometheus", f"--config.file={self.dir / 'prometheus.yml'}",
             f"--web.listen-address=127.0.0.1:{prom_port}",
             f"--storage.tsdb.path={self.dir / 'prometheus'}"],
            ready_url=f"http://127.0.0.1:{prom_port}/-/ready",
            where=f"http://127.0.0.1:{prom_port}/alerts"))
        incident = ([] if a.incident is None else
                    ["--incident", json.dumps(asdict(a.incident))])
        started = datetime.fromtimestamp(self.sim_start_ms / 1000, UTC)
        out.append(Part(
            "simulator",
            [sys.executable, "-m", "stream.demo", "--produce", bootstrap,
             "--speed", str(a.speed), "--scenario", a.scenario, "--seed", str(a.seed),
             "--tickets-per-day", str(a.tickets_per_day),
             "--duration-ms", str(self.sim_duration_ms),
             "--start-ms", str(self.sim_start_ms), *incident],
            finishes=True, where=f"{a.scenario} scenario at {a.speed:g}x real time, "
            f"simulated clock from {started:%Y-%m-%d %H:%M} UTC"))
        return out

    def prometheus_config(self, parts: list[Part], am_port: int) -> str:
        jobs: dict[str, list[str]] = {}
        for p in parts:
            if p.scrape_job and p.metrics_port:
                jobs.setdefault(p.scrape_job, []).append(f"127.0.0.1:{p.metrics_port}")
        config = {
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "rule_files": [str(self.root / "alerts" / "cxpulse-rules.yml")],
            "alerting": {"alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": t}]}
                               for job, t in jobs.items()],
        }
        return yaml.safe_dump(config, sort_keys=False)

    def alertmanager_config(self, receiver_port: int) -> str:
        """The project's routing, unchanged, except that every webhook goes to the demo's
        receiver (the path keeps the receiver's name, so the console says who is paged)."""
        config = yaml.safe_load((self.root / "alerts" / "alertmanager.yml").read_text())
        for rec in config.get("receivers", []):
            for hook in rec.get("webhook_configs", []):
                hook["url"] = f"http://127.0.0.1:{receiver_port}/{rec['name']}"
        config.setdefault("route", {})["group_wait"] = "10s"
        return yaml.safe_dump(config, sort_keys=False)

    # -- lifecycle ----------------------------------------------------------------------
    def start_receiver(self) -> int:
        """The webhook receiver every Alertmanager receiver is pointed at: one console line
        per alert of each notification (`NOTIFY <receiver>: FIRING <alertname> team=...`).
        The Watchdog (a dead man's switch, sent every minute) is printed once."""
        demo = self
        watchdog_seen = threading.Event()

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                for alert in body.get("alerts", []):
                    labels = alert.get("labels", {})
                    if labels.get("alertname") == WATCHDOG:
                        if watchdog_seen.is_set():
                            continue
                        watchdog_seen.set()
                        demo.say(f"NOTIFY {self.path.strip('/')}: {WATCHDOG} (the dead man's "
                                 "switch: Alertmanager resends it every minute, printed once)")
                        continue
                    summary = alert.get("annotations", {}).get("summary", "")
                    team = f" team={labels['team']}" if "team" in labels else ""
                    demo.say(f"NOTIFY {self.path.strip('/')}: {alert.get('status', '?').upper()} "
                             f"{labels.get('alertname', '?')}{team} "
                             f"severity={labels.get('severity', '?')}: {summary}")
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.receiver = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=self.receiver.serve_forever, daemon=True).start()
        port: int = self.receiver.server_address[1]
        return port

    def start_part(self, part: Part, timeout_s: float = 90.0) -> None:
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        part.log = logs / f"{part.name}.log"
        with part.log.open("ab") as log:
            try:
                part.proc = subprocess.Popen(part.argv, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=self.root,
                                             start_new_session=True)
            except OSError as exc:
                raise DemoError(f"{part.name} cannot start: {exc.strerror}: {part.argv[0]}") \
                    from None
        self.started.append(part)
        self.write_state()
        if part.ready_url is None:
            return
        deadline = time.monotonic() + timeout_s
        while True:
            self.check(part)
            try:
                with urllib.request.urlopen(part.ready_url, timeout=2):  # noqa: S310 - http://127.0.0.1
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise DemoError(f"{part.name} not ready after {timeout_s:.0f}s "
                                f"(log {part.log}):\n{part.tail()}")
            if self.stop_requested:
                raise KeyboardInterrupt
            time.sleep(0.3)

    def write_state(self) -> None:
        """`demo.json`: this demo's pid and every part's (each leads its own process
        group), for `cxpulse demo --stop` of this directory, which also cleans up the
        parts of a demo that was killed (kill -9) before it could stop them."""
        parts = [{"name": p.name, "pid": p.proc.pid, "argv": p.argv}
                 for p in self.started if p.proc is not None]
        if self.broker is not None and self.broker.proc is not None:
            parts.append({"name": "kafka", "pid": self.broker.proc.pid,
                          "argv": [str(x) for x in self.broker.proc.args]})
        tmp = self.dir / (STATE_NAME + ".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "parts": parts}))
        tmp.replace(self.dir / STATE_NAME)

    def check(self, part: Part) -> None:
        assert part.proc is not None
        rc = part.proc.poll()
        if rc is None or (rc == 0 and part.finishes):
            return
        raise DemoError(f"{part.name} exited with code {rc} (log {part.log}):\n{part.tail()}")

    def start_broker(self) -> str:
        sys.path.insert(0, str(self.root / "scripts"))
        from kafka_broker import KafkaBroker, create_topics

        kafka_dir = self.dir / "kafka"
        shutil.rmtree(kafka_dir, ignore_errors=True)  # a demo starts from an empty broker
        self.broker = KafkaBroker(workdir=kafka_dir, port=free_port(),
                                  controller_port=free_port())
        try:
            self.broker.start()
        except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
            raise DemoError(f"kafka cannot start: {exc} (log {kafka_dir / 'server.log'})") \
                from None
        finally:
            self.write_state()
        bootstrap: str = self.broker.bootstrap
        asyncio.run(create_topics(bootstrap, list(TOPICS), 4))
        asyncio.run(create_topics(bootstrap, [DEADLETTER], 1))
        return bootstrap

    def stop_all(self) -> None:
        for part in reversed(self.started):
            if part.proc is not None and part.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(part.proc.pid, signal.SIGTERM)
        for part in reversed(self.started):
            if part.proc is None:
                continue
            try:
                part.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(part.proc.pid, signal.SIGKILL)
                part.proc.wait(10)
        if self.broker is not None:
            self.broker.stop()
        if self.receiver is not None:
            self.receiver.shutdown()
            self.receiver.server_close()

    def lock(self) -> bool:
        """Hold `demo.lock` in the directory for the life of this process (the kernel
        releases it however the process ends). False: another demo holds it."""
        fd = os.open(self.dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.lock_fd = fd
        return True

    def incident_schedule(self, launched: float) -> list[tuple[float, str]]:
        """(wall time, console line) of each incident's start and end: the simulator
        produces simulated instant t at about `launched + (t - start) / speed`."""
        a = self.args
        if a.incident is None:
            return []
        out: list[tuple[float, str]] = []
        for begin, end in a.incident.spans(self.sim_start_ms, self.sim_duration_ms):
            at = launched + (begin - self.sim_start_ms) / 1000 / a.speed
            until = launched + (end - self.sim_start_ms) / 1000 / a.speed
            sim = datetime.fromtimestamp(begin / 1000, UTC)
            out.append((at, f"incident: team {a.incident.team} stalls now (replies "
                        f"{INCIDENT_FACTOR:g}x slower; simulated {sim:%a %H:%M} UTC, for "
                        f"{_human(end - begin)} of simulated time, {_human((until - at) * 1000)} "
                        "real)"))
            out.append((until, f"incident: team {a.incident.team} is back to normal"))
        return out

    def run(self) -> int:
        def on_signal(signum: int, _: Any) -> None:
            self.stop_requested = True
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGHUP, on_signal)  # terminal closed: stop, leave nothing
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.lock():
            pid = _state_pid(self.dir)
            print(f"cxpulse demo: a demo already runs in {self.dir}"
                  f"{f' (pid {pid})' if pid else ''}: stop it with `cxpulse demo --stop"
                  f"{'' if self.args.dir is None else ' --dir ' + str(self.dir)}` "
                  "(scripts/demo stop) or give another --dir", file=sys.stderr)
            return EXIT_USAGE
        code = 0
        try:
            for stale in ("prometheus", "alertmanager", "logs",
                          *(f"worker-{i + 1}" for i in range(16))):
                shutil.rmtree(self.dir / stale, ignore_errors=True)
            self.write_state()
            self.say(f"state and logs under {self.dir}")
            self.say("starting Kafka ...")
            bootstrap = self.start_broker()
            receiver_port = self.start_receiver()
            am_port, prom_port = free_port(), free_port()
            a = self.args
            self.sim_start_ms, self.sim_duration_ms = simulated_span(
                int(time.time() * 1000), a.duration, a.speed, a.incident)
            parts = self.parts(bootstrap, am_port, prom_port)
            (self.dir / "prometheus.yml").write_text(self.prometheus_config(parts, am_port))
            (self.dir / "alertmanager.yml").write_text(self.alertmanager_config(receiver_port))
            for part in parts:
                self.say(f"starting {part.name} ...")
                self.start_part(part)
            schedule = self.incident_schedule(time.time())
            self.say("running:")
            by_name = {p.name: p for p in parts}
            order = [n for n in by_name if n != "wall"] + ["wall"]
            rows = [("kafka", bootstrap),
                    ("receiver", f"http://127.0.0.1:{receiver_port}/ (notifications below)")]
            rows += [(n, by_name[n].where) for n in order]
            if a.incident is not None:
                first = schedule[0][0] if schedule else None
                when = ("none within the simulated --duration" if first is None else
                        f"first at {datetime.fromtimestamp(first, UTC).astimezone():%H:%M:%S} "
                        f"(in {_human((first - time.time()) * 1000)})")
                every = (f", every {_human(a.incident.every_ms)}" if a.incident.every_ms
                         else "")
                rows.append(("incidents", f"team {a.incident.team} stalls for "
                             f"{_human(a.incident.length_ms)}{every} (simulated); {when}"))
            for name, where in rows:
                print(f"  {name:<14} {where}", file=self.out, flush=True)
            self.say("Ctrl-C stops everything")
            done: set[str] = set()
            while True:
                for part in parts:
                    self.check(part)
                    assert part.proc is not None
                    if part.finishes and part.proc.poll() == 0 and part.name not in done:
                        done.add(part.name)
                        self.say(f"{part.name} finished; the rest keeps running")
                while schedule and schedule[0][0] <= time.time():
                    self.say(schedule.pop(0)[1])
                time.sleep(0.5)
        except DemoError as exc:
            self.say(f"ERROR {exc}")
            self.say("stopping the other parts")
            code = EXIT_PART_DIED
        except KeyboardInterrupt:
            self.say("stopping ...")
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop_all()
            with contextlib.suppress(OSError):
                (self.dir / STATE_NAME).unlink()
            self.say("stopped")
        return code


def _human(ms: float) -> str:
    """`3h`, `2m 30s`, `45s`: for the console."""
    from stream.mixin.tiles import human_duration

    return human_duration(ms / 1000)


# -- `cxpulse demo --stop`: the demo of one directory --------------------------------------
def _state_pid(directory: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return int(json.loads((directory / STATE_NAME).read_text())["pid"])
    return None


def _runs(part: dict[str, Any]) -> bool:
    """The part's pid is alive and still runs the part's command line (not a recycled
    pid: only what this directory's demo started is ever signalled)."""
    pid = int(part["pid"])
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    if "\nState:\tZ" in status:
        return False
    return [a.decode(errors="replace") for a in cmdline] == [str(a) for a in part["argv"]]


def stop_demo(directory: Path, timeout_s: float = 120.0) -> int:
    """Stop the demo running in `directory` (SIGTERM: it stops its parts itself), then any
    part a killed demo left behind. Other directories' (other clones') demos are not
    touched: everything is found through this directory's lock and `demo.json`."""
    lock = directory / LOCK_NAME
    if not lock.exists():
        print(f"cxpulse demo: no demo running in {directory}")
        return 0
    def read_state() -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            state: dict[str, Any] = json.loads((directory / STATE_NAME).read_text())
            return state
        return {}

    state = read_state()
    fd = os.open(lock, os.O_RDWR)
    try:
        stopped_pid: int | None = None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break  # no demo (any more) holds it
            except BlockingIOError:
                state = state or read_state()  # a demo that is just starting writes it
                pid = int(state.get("pid", 0))
                if stopped_pid is None and pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                    stopped_pid = pid
                    print(f"cxpulse demo: stopping the demo in {directory} (pid {pid}) ...",
                          flush=True)
                if time.monotonic() > deadline:
                    if pid:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    deadline = time.monotonic() + 10
                time.sleep(0.2)
        state = read_state() or state  # still there: the demo died before its clean-up
        left = [p for p in state.get("parts", []) if _runs(p)]
        for p in left:  # each part leads its own process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(p["pid"]), signal.SIGTERM)
        end = time.monotonic() + 30
        while any(_runs(p) for p in left):
            if time.monotonic() > end:
                for p in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(int(p["pid"]), signal.SIGKILL)
                break
            time.sleep(0.2)
        with contextlib.suppress(OSError):
            (directory / STATE_NAME).unlink()
    finally:
        os.close(fd)
    if stopped_pid is None and not left:
        print(f"cxpulse demo: no demo running in {directory}")
    else:
        extra = f" and {len(left)} part(s) it left: {', '.join(p['name'] for p in left)}" \
            if left else ""
        print(f"cxpulse demo: stopped the demo in {directory}{extra}")
    return 0


# -- the simulator part: produces at the current time ------------------------------------
def produce_live(bootstrap: str, speed: float, scenario: str, seed: int,
                 tickets_per_day: float, duration_ms: int, start_ms: int | None = None,
                 incident: IncidentPlan | None = None) -> int:
    """Simulate and produce each event when its time comes (at `speed`x).

    At speed 1 the simulation starts now. Faster, it starts in the past so that
    its clock reaches the wall clock when it ends: events are never stamped
    ahead of the time they are sent (workers dead-letter events more than
    `max_event_ahead` after their Kafka timestamp, `stream.core.timeguard`).
    The demo passes `start_ms` (computed so, a moment before this starts)
    so that it can announce the incidents at the right time."""
    from stream.core.events import SURVEYS, TICKETS
    from stream.replay import plan, produce
    from stream.sim.dirt import generate
    from stream.sim.model import SimConfig

    if start_ms is None:
        start_ms = int(time.time() * 1000) - int(duration_ms * (1 - 1 / speed))
    slowdowns = () if incident is None else incident.slowdowns(start_ms, duration_ms)
    cfg = SimConfig(seed=seed, start_ms=start_ms, duration_ms=duration_ms,
                    tickets_per_day=tickets_per_day, scenario=scenario, slowdowns=slowdowns)
    topics = {TICKETS: TOPICS[0], SURVEYS: TOPICS[1]}
    outgoing = plan((r.value for r in generate(cfg)), topics, speed)
    n = asyncio.run(produce(bootstrap, outgoing))
    print(f"simulator: {n} messages produced", flush=True)
    return 0


def incident_plan(args: argparse.Namespace) -> IncidentPlan | str | None:
    """The `--incident-*` flags as a plan; a string is the one-line usage error."""
    from stream.sim import params

    if args.incident_team == "none":
        return None
    if args.incident_team not in params.TEAMS:
        return (f"--incident-team: {args.incident_team!r} is not a team; choose from "
                f"{', '.join(params.TEAMS)} or none")
    if args.incident_every and args.incident_every < args.incident_length:
        return "--incident-every: shorter than --incident-length (incidents would overlap)"
    return IncidentPlan(args.incident_team, args.incident_after, args.incident_length,
                        args.incident_every)


def run(args: argparse.Namespace) -> int:
    root = Path.cwd()
    directory = Path(args.dir).resolve() if args.dir else root / "var" / "demo"
    if args.stop:
        return stop_demo(directory)
    if not (root / args.targets).is_file() or not (root / "alerts" / "alertmanager.yml").is_file():
        print("cxpulse demo: run it from the cxpulse clone (targets.yaml and alerts/ not found "
              f"in {root})", file=sys.stderr)
        return EXIT_USAGE
    from stream.sim import params
    from stream.wall.server import load_targets_or_exit

    if args.scenario not in params.SCENARIOS:
        print(f"cxpulse demo: --scenario: choose from {', '.join(params.SCENARIOS)}",
              file=sys.stderr)
        return EXIT_USAGE
    plan = incident_plan(args)
    if isinstance(plan, str):
        print(f"cxpulse demo: {plan}", file=sys.stderr)
        return EXIT_USAGE
    args.incident = plan
    if load_targets_or_exit(str(root / args.targets), "cxpulse demo") is None:
        return EXIT_USAGE
    missing = [b for b in ("java", "prometheus", "prometheus-alertmanager") if not shutil.which(b)]
    if missing:
        print(f"cxpulse demo: missing {', '.join(missing)} (.ci/run installs them)",
              file=sys.stderr)
        return EXIT_USAGE
    return Demo(args, root, directory).run()


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="run the whole system live: Kafka, workers, Prometheus, Alertmanager, "
        "simulator and the wall",
        description="Start every part on free loopback ports and print where each is. If a "
        "part dies the demo names it with its error and stops the rest; Ctrl-C stops "
        "everything. A healthy operation with an incident on one team every so often "
        "(--incident-*: simulated time from the simulation's start; each pages the team's "
        "on-call through the built-in receiver, at --speed 60 about 3-4 minutes after it "
        f"starts; faster than real time the first one falls at {INCIDENT_HOUR}:00 UTC of the "
        "simulated day, when a team has tickets enough to page). State, logs and a lock "
        "live under --dir: one demo per directory, two "
        "clones run theirs side by side. Exit codes: 0 stopped by Ctrl-C/SIGTERM (or --stop "
        "done), 1 a part died, 2 usage or a demo already runs in --dir.",
        epilog="examples: cxpulse demo   |   cxpulse demo --speed 60 --workers 2 "
        "--dir /tmp/demo   |   cxpulse demo --speed 60 --incident-team billing "
        "--incident-after 30m   |   cxpulse demo --stop",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dir", default=None, metavar="DIR",
                   help="state and logs (default: var/demo in the clone)")
    p.add_argument("--stop", action="store_true",
                   help="stop the demo running in --dir (and any part a killed demo left)")
    p.add_argument("--workers", type=int, default=1, choices=range(1, 5), metavar="N",
                   help="worker processes (1-4)")
    p.add_argument("--speed", type=cliargs.positive, default=1.0, metavar="N",
                   help="simulated seconds per real second (60: an hour a minute)")
    p.add_argument("--scenario", default="normal",
                   help="simulator scenario under the incidents (normal, incident, ...: "
                   "`cxpulse simulate -h`)")
    p.add_argument("--incident-team", default="tech", metavar="TEAM",
                   help="the team that stalls (replies 30x slower) in each incident; "
                   "none: no incidents")
    p.add_argument("--incident-after", type=cliargs.duration_ms, default="1h", metavar="DURATION",
                   help="simulated time from the simulation's start to the first incident")
    p.add_argument("--incident-length", type=cliargs.duration_ms, default="3h", metavar="DURATION",
                   help="simulated length of each incident")
    p.add_argument("--incident-every", type=cliargs.duration_ms_or_zero, default="12h",
                   metavar="DURATION", help="simulated time between incident starts (0: a "
                   "single incident)")
    p.add_argument("--seed", type=int, default=1, help="simulator seed")
    p.add_argument("--tickets-per-day", type=cliargs.positive, default=2000.0,
                   help="weekday volume")
    p.add_argument("--duration", type=cliargs.duration_ms, default="7d", metavar="DURATION",
                   help="simulated time to produce (at --speed N it ends N times sooner; "
                   "faster than real time up to a day more, see above)")
    p.add_argument("--wall-port", type=int, default=0, help="wall port (0: a free one)")
    p.add_argument("--targets", default="targets.yaml", help="targets file in the clone")
    p.set_defaults(func=run)


def _main(argv: list[str]) -> int:
    """`python -m stream.demo --produce BOOTSTRAP ...`: the simulator part's entry point."""
    p = argparse.ArgumentParser(prog="cxpulse demo (simulator)")
    p.add_argument("--produce", required=True, metavar="BOOTSTRAP")
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--scenario", default="normal")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tickets-per-day", type=float, default=2000.0)
    p.add_argument("--duration-ms", type=int, default=7 * 86_400_000)
    p.add_argument("--start-ms", type=int, default=None)
    p.add_argument("--incident", default=None, help="an IncidentPlan as JSON")
    a = p.parse_args(argv)
    incident = IncidentPlan(**json.loads(a.incident)) if a.incident else None
    with contextlib.suppress(KeyboardInterrupt):
        return produce_live(a.produce, a.speed, a.scenario, a.seed, a.tickets_per_day,
                            a.duration_ms,
                            a.start_ms, incident)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
