"""The demo's parts: each process's command line, port, readiness, and the configs
(Prometheus, Alertmanager) written for them."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from cxpulse.ports import free_port
from cxpulse.settings import Settings

_DEFAULTS = Settings.model_fields  # the demo runs every part on the settings' default topics
TOPICS = (str(_DEFAULTS["topic_tickets"].default), str(_DEFAULTS["topic_surveys"].default))
DEADLETTER = str(_DEFAULTS["topic_deadletter"].default)
RAW = str(_DEFAULTS["topic_raw_deliveries"].default)  # `--vendor`: the gateway's topic
PY = [sys.executable, "-m", "cxpulse.cli"]


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
    #: added to the demo's environment (secrets: never on a command line)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log: Path | None = None

    def tail(self, lines: int = 12) -> str:
        if self.log is None or not self.log.exists():
            return ""
        text = self.log.read_text(errors="replace").strip().splitlines()
        return "\n".join("    " + ln for ln in text[-lines:])




def plan_parts(args: argparse.Namespace, root: Path, directory: Path, bootstrap: str,
               am_port: int, prom_port: int, sim_start_ms: int,
               sim_duration_ms: int, live_ms: int | None = None,
               secret: str = "") -> list[Part]:
    """Every process after Kafka, in start order: the wall first (its port may be the
    user's `--wall-port`: a taken port ends the demo in seconds, not after a minute of
    starting the rest; it shows "Prometheus unreachable" until Prometheus is up), the
    workers (job `cxpulse-worker`, their health), one exporter (job
    `cxpulse-exporter`, every KPI of all partitions), with `--vendor zendesk` the
    gateway (`cxpulse ingest`, job `cxpulse-ingest`) and the map stage (`cxpulse map`,
    job `cxpulse-map`, reading the demo's `mapping.yaml`), then Alertmanager,
    Prometheus and the simulator (posting signed webhooks to the gateway with
    `--vendor`, `secret` in its environment)."""
    a = args
    targets = str(root / a.targets)
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
             "--metrics-port", str(port), "--datadir", str(directory / f"worker-{i + 1}"),
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
    via: list[str] = []
    secret_env: dict[str, str] = {}
    if getattr(a, "vendor", None) == "zendesk":
        from cxpulse.demo.zendesk import SECRET_ENV

        secret_env = {SECRET_ENV: secret}
        port = free_port()
        via = ["--via-zendesk", f"http://127.0.0.1:{port}/webhooks/zendesk"]
        out.append(Part(
            "ingest",
            [*PY, "ingest", "--bootstrap-servers", bootstrap, "--ingest-host", "127.0.0.1",
             "--ingest-port", str(port)],
            ready_url=f"http://127.0.0.1:{port}/healthz", metrics_port=port,
            scrape_job="cxpulse-ingest", env=secret_env,
            where=f"http://127.0.0.1:{port}/ (Zendesk webhooks: /webhooks/zendesk)"))
        port = free_port()
        out.append(Part(
            "map",
            [*PY, "map", "--bootstrap-servers", bootstrap, "--map-group-id", "cxpulse-demo-map",
             "--mapping-file", str(directory / "mapping.yaml"), "--metrics-host", "127.0.0.1",
             "--metrics-port", str(port)],
            ready_url=f"http://127.0.0.1:{port}/healthz", metrics_port=port,
            scrape_job="cxpulse-map", where=f"http://127.0.0.1:{port}/metrics"))
    out.append(Part(
        "alertmanager",
        ["prometheus-alertmanager", f"--config.file={directory / 'alertmanager.yml'}",
         f"--web.listen-address=127.0.0.1:{am_port}",
         f"--storage.path={directory / 'alertmanager'}", "--cluster.listen-address="],
        ready_url=f"http://127.0.0.1:{am_port}/-/ready",
        where=f"http://127.0.0.1:{am_port}/"))
    out.append(Part(
        "prometheus",
        ["prometheus", f"--config.file={directory / 'prometheus.yml'}",
         f"--web.listen-address=127.0.0.1:{prom_port}",
         f"--storage.tsdb.path={directory / 'prometheus'}"],
        ready_url=f"http://127.0.0.1:{prom_port}/-/ready",
        where=f"http://127.0.0.1:{prom_port}/alerts"))  # `alerts_page` checks it once up
    incident = ([] if a.incident is None else
                ["--incident", json.dumps(asdict(a.incident))])
    started = datetime.fromtimestamp(sim_start_ms / 1000, UTC)
    live = [] if live_ms is None or live_ms <= sim_start_ms else ["--live-ms", str(live_ms)]
    hours = ((live_ms or sim_start_ms) - sim_start_ms) // 3_600_000
    history = f" (the {hours} h before now produced at once)" if live else ""
    out.append(Part(
        "simulator",
        [sys.executable, "-m", "cxpulse.demo.simulator", "--produce", bootstrap,
         "--speed", str(a.speed), "--scenario", a.scenario, "--seed", str(a.seed),
         "--tickets-per-day", str(a.tickets_per_day),
         "--duration-ms", str(sim_duration_ms),
         "--start-ms", str(sim_start_ms), *live, *incident, *via],
        finishes=True, env=secret_env, where=f"{a.scenario} scenario at {a.speed:g}x real "
        f"time, simulated clock from {started:%Y-%m-%d %H:%M} UTC{history}"
        f"{' as Zendesk webhooks' if via else ''}"))
    return out

def prometheus_config(root: Path, parts: list[Part], am_port: int) -> str:
    jobs: dict[str, list[str]] = {}
    for p in parts:
        if p.scrape_job and p.metrics_port:
            jobs.setdefault(p.scrape_job, []).append(f"127.0.0.1:{p.metrics_port}")
    config = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(root / "alerts" / "cxpulse-rules.yml")],
        "alerting": {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": t}]}
                           for job, t in jobs.items()],
    }
    return yaml.safe_dump(config, sort_keys=False)

def alertmanager_config(root: Path, receiver_port: int) -> str:
    """The project's routing, unchanged, except that every webhook goes to the demo's
    receiver (the path keeps the receiver's name, so the console says who is paged)."""
    config = yaml.safe_load((root / "alerts" / "alertmanager.yml").read_text())
    for rec in config.get("receivers", []):
        for hook in rec.get("webhook_configs", []):
            hook["url"] = f"http://127.0.0.1:{receiver_port}/{rec['name']}"
    config.setdefault("route", {})["group_wait"] = "10s"
    return yaml.safe_dump(config, sort_keys=False)


def alerts_page(base: str) -> str:
    """The Prometheus alerts page that opens on the installed Prometheus.

    `/alerts` is the React UI's page; Debian's 2.42 (`2.42.0+ds`) ships without the
    React assets and answers it with 404, its page is `/classic/alerts`. Asked of the
    running Prometheus rather than guessed from `prometheus --version`: a build is
    what decides it, not the version number."""
    import urllib.error
    import urllib.request

    for path in ("/alerts", "/classic/alerts"):
        try:
            with urllib.request.urlopen(base + path, timeout=5) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return base + path
        except (urllib.error.URLError, OSError):
            continue
    return base + "/classic/alerts"

