"""The demo's supervisor: starts every part, watches them, says what happens, stops them.

Why a supervisor rather than a shell script: every part is a child this process
owns, so if one dies the demo says which, with that part's own last log lines,
and stops the others; Ctrl-C (or SIGTERM) stops everything, and nothing is left
running. `stop_demo` is `cxpulse demo --stop`: the demo of one directory only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO

from cxpulse.demo.incidents import INCIDENT_FACTOR, human, simulated_span, with_backfill
from cxpulse.demo.parts import (
    DEADLETTER,
    RAW,
    TOPICS,
    Part,
    alertmanager_config,
    alerts_page,
    plan_parts,
    prometheus_config,
)
from cxpulse.demo.receiver import Receiver
from cxpulse.jsontypes import JSON
from cxpulse.kafka.broker import KafkaBroker, create_topics
from cxpulse.ports import free_port

EXIT_PART_DIED = 1
EXIT_USAGE = 2
STATE_NAME = "demo.json"  # under the demo's directory: its pid and its parts' pids
LOCK_NAME = "demo.lock"  # held (flock) for the life of a demo


class DemoError(Exception):
    """A part could not start or died; the message names the part and its error."""


@dataclass
class Demo:
    args: argparse.Namespace
    root: Path
    dir: Path
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    started: list[Part] = field(default_factory=list)
    broker: KafkaBroker | None = None
    receiver: Receiver | None = None
    stop_requested: bool = False
    #: the simulation's first instant (epoch ms), fixed before the simulator starts so the
    #: console can say when each incident happens
    sim_start_ms: int = 0
    sim_duration_ms: int = 0  # --duration, made longer by `simulated_span` if need be
    #: the simulated instant produced at launch; earlier events (the backfill) go at once
    sim_live_ms: int = 0
    lock_fd: int | None = None

    # -- output -------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(f"demo: {text}", file=self.out, flush=True)

    # -- lifecycle ----------------------------------------------------------------------
    def start_part(self, part: Part, timeout_s: float = 90.0) -> None:
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        part.log = logs / f"{part.name}.log"
        with part.log.open("ab") as log:
            try:
                part.proc = subprocess.Popen(part.argv, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=self.root,
                                             start_new_session=True,
                                             env={**os.environ, **part.env} if part.env
                                             else None)  # fmt: skip
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
            argv = self.broker.proc.args
            assert isinstance(argv, list)  # the command list `KafkaBroker.start` gave Popen
            parts.append({"name": "kafka", "pid": self.broker.proc.pid,
                          "argv": [str(x) for x in argv]})
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
        vendor = getattr(self.args, "vendor", None) is not None
        asyncio.run(create_topics(bootstrap, [*TOPICS, *([RAW] if vendor else [])], 4))
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
            self.receiver.stop()

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
        produces simulated instant t at about `launched + (t - live) / speed`; incidents
        that ended in the backfilled history are not announced."""
        a = self.args
        if a.incident is None:
            return []
        out: list[tuple[float, str]] = []
        for begin, end in a.incident.spans(self.sim_start_ms, self.sim_duration_ms):
            if end <= self.sim_live_ms:
                continue
            at = launched + (begin - self.sim_live_ms) / 1000 / a.speed
            until = launched + (end - self.sim_live_ms) / 1000 / a.speed
            sim = datetime.fromtimestamp(begin / 1000, UTC)
            out.append((at, f"incident: team {a.incident.team} stalls now (replies "
                        f"{INCIDENT_FACTOR:g}x slower; simulated {sim:%a %H:%M} UTC, for "
                        f"{human(end - begin)} of simulated time, {human((until - at) * 1000)} "
                        "real)"))
            late = ("; a page may still arrive or stay open a few minutes: Prometheus' rule "
                    "windows and `for:` run on the wall clock, not the simulated one"
                    if a.speed > 1 else "")
            out.append((until, f"incident: team {a.incident.team} is back to normal{late}"))
        return out

    def run(self) -> int:
        def on_signal(signum: int, _: FrameType | None) -> None:
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
            self.receiver = Receiver(self.say)
            receiver_port = self.receiver.start()
            am_port, prom_port = free_port(), free_port()
            a = self.args
            start, duration = simulated_span(
                int(time.time() * 1000), a.duration, a.speed, a.incident)
            self.sim_start_ms, self.sim_duration_ms, self.sim_live_ms, a.incident = (
                with_backfill(start, duration, a.speed, a.incident))
            secret = ""
            if getattr(a, "vendor", None) == "zendesk":
                from cxpulse.demo.zendesk import mapping_yaml

                secret = secrets.token_urlsafe(24)  # this demo's signing secret
                (self.dir / "mapping.yaml").write_text(mapping_yaml())
            parts = plan_parts(a, self.root, self.dir, bootstrap, am_port, prom_port,
                               self.sim_start_ms, self.sim_duration_ms, self.sim_live_ms,
                               secret)
            (self.dir / "prometheus.yml").write_text(prometheus_config(self.root, parts, am_port))
            (self.dir / "alertmanager.yml").write_text(alertmanager_config(self.root,
                                                                           receiver_port))
            for part in parts:
                self.say(f"starting {part.name} ...")
                self.start_part(part)
            schedule = self.incident_schedule(time.time())
            self.say("running:")
            by_name = {p.name: p for p in parts}
            order = [n for n in by_name if n != "wall"] + ["wall"]
            rows = [("kafka", bootstrap),
                    ("receiver", f"http://127.0.0.1:{receiver_port}/ (notifications below)")]
            if "prometheus" in by_name:  # the alerts page that opens on this build
                prom = by_name["prometheus"]
                prom.where = alerts_page(prom.where.removesuffix("/alerts"))
            rows += [(n, by_name[n].where) for n in order]
            if a.incident is not None:
                first = schedule[0][0] if schedule else None
                when = ("none within the simulated --duration" if first is None else
                        f"first at {datetime.fromtimestamp(first, UTC).astimezone():%H:%M:%S} "
                        f"(in {human((first - time.time()) * 1000)})")
                every = (f", every {human(a.incident.every_ms)}" if a.incident.every_ms
                         else "")
                rows.append(("incidents", f"team {a.incident.team} stalls for "
                             f"{human(a.incident.length_ms)}{every} (simulated); {when}"))
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
                        last = part.tail(1).strip()  # its summary (what it sent)
                        self.say(f"{part.name} finished; the rest keeps running"
                                 + (f" ({last})" if last else ""))
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


# -- `cxpulse demo --stop`: the demo of one directory --------------------------------------
def _state_pid(directory: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return int(json.loads((directory / STATE_NAME).read_text())["pid"])
    return None


def _runs(part: JSON) -> bool:
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
    def read_state() -> JSON:
        with contextlib.suppress(OSError, ValueError):
            state: JSON = json.loads((directory / STATE_NAME).read_text())
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


