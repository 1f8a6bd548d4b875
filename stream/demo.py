"""`cxpulse demo`: the whole system live on one machine, in one command.

Starts, on free loopback ports: a real Kafka broker, the worker(s), a real
Prometheus loading the generated rules, a real Alertmanager with the
project's routing (its webhooks rewritten to a receiver built into this
process, which prints every notification), the simulator producing events
at the current time (`--speed N` compresses N seconds of support activity
into one), and the wall.

Why a supervisor rather than a shell script: every part is a child this
process owns, so if one dies the demo says which, with that part's own last
log lines, and stops the others; Ctrl-C (or SIGTERM) stops everything, and
nothing is left running. All state (broker data, worker stores, TSDB, logs)
lives under `--dir` (default `var/demo` in the clone), never in a directory
shared between clones.

Adding a process (e.g. `cxpulse exporter`) is one entry in `parts()`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import yaml

EXIT_PART_DIED = 1
EXIT_USAGE = 2
TOPICS = ("support.tickets", "support.surveys")
DEADLETTER = "support.deadletter"
PY = [sys.executable, "-m", "stream.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class DemoError(Exception):
    """A part could not start or died; the message names the part and its error."""


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

    # -- output -------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(f"demo: {text}", file=self.out, flush=True)

    # -- the parts ----------------------------------------------------------------------
    def parts(self, bootstrap: str, am_port: int, prom_port: int) -> list[Part]:
        """Every process after Kafka, in start order: workers (job `cxpulse-worker`, their
        health), one exporter (job `cxpulse-exporter`, every KPI of all partitions), then
        Alertmanager, Prometheus, the simulator and the wall."""
        a = self.args
        targets = str(self.root / a.targets)
        out: list[Part] = []
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
        out.append(Part(
            "simulator",
            [sys.executable, "-m", "stream.demo", "--produce", bootstrap,
             "--speed", str(a.speed), "--scenario", a.scenario, "--seed", str(a.seed),
             "--tickets-per-day", str(a.tickets_per_day), "--days", str(a.days)],
            finishes=True, where=f"{a.scenario} scenario at {a.speed:g}x real time"))
        wall_port = a.wall_port or free_port()
        out.append(Part(
            "wall",
            [*PY, "wall", "--prometheus-url", f"http://127.0.0.1:{prom_port}",
             "--port", str(wall_port), "--refresh", "5", "--targets", targets],
            ready_url=f"http://127.0.0.1:{wall_port}/healthz",
            where=f"http://127.0.0.1:{wall_port}/"))
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
        demo = self

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                for alert in body.get("alerts", []):
                    labels = alert.get("labels", {})
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
        self.broker = KafkaBroker(workdir=kafka_dir)
        try:
            self.broker.start()
        except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
            raise DemoError(f"kafka cannot start: {exc} (log {kafka_dir / 'server.log'})") \
                from None
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

    def run(self) -> int:
        def on_signal(signum: int, _: Any) -> None:
            self.stop_requested = True
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_signal)
        code = 0
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            for stale in ("prometheus", "alertmanager", "logs",
                          *(f"worker-{i + 1}" for i in range(16))):
                shutil.rmtree(self.dir / stale, ignore_errors=True)
            self.say(f"state and logs under {self.dir}")
            self.say("starting Kafka ...")
            bootstrap = self.start_broker()
            receiver_port = self.start_receiver()
            am_port, prom_port = free_port(), free_port()
            parts = self.parts(bootstrap, am_port, prom_port)
            (self.dir / "prometheus.yml").write_text(self.prometheus_config(parts, am_port))
            (self.dir / "alertmanager.yml").write_text(self.alertmanager_config(receiver_port))
            for part in parts:
                self.say(f"starting {part.name} ...")
                self.start_part(part)
            self.say("running:")
            rows = [("kafka", bootstrap),
                    ("receiver", f"http://127.0.0.1:{receiver_port}/ (notifications below)")]
            rows += [(p.name, p.where) for p in parts]
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
                time.sleep(0.5)
        except DemoError as exc:
            self.say(f"ERROR {exc}")
            self.say("stopping the other parts")
            code = EXIT_PART_DIED
        except KeyboardInterrupt:
            self.say("stopping ...")
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan
            self.stop_all()
            self.say("stopped")
        return code


# -- the simulator part: produces at the current time ------------------------------------
def produce_live(bootstrap: str, speed: float, scenario: str, seed: int,
                 tickets_per_day: float, days: float) -> int:
    """Simulate and produce each event when its time comes (at `speed`x).

    At speed 1 the simulation starts now. Faster, it starts in the past so that
    its clock reaches the wall clock when it ends: events are never stamped
    ahead of the time they are sent (workers dead-letter events more than
    `max_event_ahead` after their Kafka timestamp, `stream.core.timeguard`)."""
    from stream.core.events import SURVEYS, TICKETS
    from stream.replay import plan, produce
    from stream.sim.dirt import generate
    from stream.sim.model import SimConfig

    duration_ms = int(days * 86_400_000)
    start_ms = int(time.time() * 1000) - int(duration_ms * (1 - 1 / speed))
    cfg = SimConfig(seed=seed, start_ms=start_ms, duration_ms=duration_ms,
                    tickets_per_day=tickets_per_day, scenario=scenario)
    topics = {TICKETS: TOPICS[0], SURVEYS: TOPICS[1]}
    outgoing = plan((r.value for r in generate(cfg)), topics, speed)
    n = asyncio.run(produce(bootstrap, outgoing))
    print(f"simulator: {n} messages produced", flush=True)
    return 0


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def run(args: argparse.Namespace) -> int:
    root = Path.cwd()
    if not (root / args.targets).is_file() or not (root / "alerts" / "alertmanager.yml").is_file():
        print("cxpulse demo: run it from the cxpulse clone (targets.yaml and alerts/ not found "
              f"in {root})", file=sys.stderr)
        return EXIT_USAGE
    missing = [b for b in ("java", "prometheus", "prometheus-alertmanager") if not shutil.which(b)]
    if missing:
        print(f"cxpulse demo: missing {', '.join(missing)} (.ci/run installs them)",
              file=sys.stderr)
        return EXIT_USAGE
    from stream.sim import params
    from stream.wall.server import load_targets_or_exit

    if load_targets_or_exit(str(root / args.targets), "cxpulse demo") is None:
        return EXIT_USAGE
    if args.scenario not in params.SCENARIOS:
        print(f"cxpulse demo: --scenario: choose from {', '.join(params.SCENARIOS)}",
              file=sys.stderr)
        return EXIT_USAGE
    directory = Path(args.dir).resolve() if args.dir else root / "var" / "demo"
    return Demo(args, root, directory).run()


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="run the whole system live: Kafka, workers, Prometheus, Alertmanager, "
        "simulator and the wall",
        description="Start every part on free loopback ports and print where each is. If a "
        "part dies the demo names it with its error and stops the rest; Ctrl-C stops "
        "everything. Exit codes: 0 stopped by Ctrl-C/SIGTERM, 1 a part died, 2 usage.",
        epilog="examples: cxpulse demo   |   cxpulse demo --speed 60 --workers 2 "
        "--dir /tmp/demo",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dir", default=None, metavar="DIR",
                   help="state and logs (default: var/demo in the clone)")
    p.add_argument("--workers", type=int, default=1, choices=range(1, 5), metavar="N",
                   help="worker processes (1-4)")
    p.add_argument("--speed", type=_positive, default=1.0, metavar="N",
                   help="simulated seconds per real second (60: an hour a minute)")
    p.add_argument("--scenario", default="incident",
                   help="simulator scenario (normal, incident, ...: `cxpulse simulate -h`)")
    p.add_argument("--seed", type=int, default=1, help="simulator seed")
    p.add_argument("--tickets-per-day", type=_positive, default=2000.0, help="weekday volume")
    p.add_argument("--days", type=_positive, default=7.0, help="simulated days to produce")
    p.add_argument("--wall-port", type=int, default=0, help="wall port (0: a free one)")
    p.add_argument("--targets", default="targets.yaml", help="targets file in the clone")
    p.set_defaults(func=run)


def _main(argv: list[str]) -> int:
    """`python -m stream.demo --produce BOOTSTRAP ...`: the simulator part's entry point."""
    p = argparse.ArgumentParser(prog="cxpulse demo (simulator)")
    p.add_argument("--produce", required=True, metavar="BOOTSTRAP")
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--scenario", default="incident")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tickets-per-day", type=float, default=2000.0)
    p.add_argument("--days", type=float, default=7.0)
    a = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return produce_live(a.produce, a.speed, a.scenario, a.seed, a.tickets_per_day, a.days)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

