"""A `cxpulse ingest` subprocess and a client that posts like a helpdesk does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cxpulse.ingest.auth import sign

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"zendesk": "zd-signing-secret", "chatwoot": "cw-secret",
           "freshdesk": "fd-password", "zammad": "zm-secret"}  # fmt: skip


def env_with_secrets() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPULSE_")}
    env["CXPULSE_ZENDESK_WEBHOOK_SECRET"] = SECRETS["zendesk"]
    env["CXPULSE_CHATWOOT_WEBHOOK_SECRET"] = SECRETS["chatwoot"]
    env["CXPULSE_FRESHDESK_WEBHOOK_PASSWORD"] = SECRETS["freshdesk"]
    env["CXPULSE_ZAMMAD_WEBHOOK_SECRET"] = SECRETS["zammad"]
    return env


def now_ts(vendor: str, offset_s: float = 0.0) -> str:
    t = time.time() + offset_s
    if vendor == "zendesk":
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(int(t))


def signed_headers(vendor: str, body: bytes, offset_s: float = 0.0) -> dict[str, str]:
    return sign(vendor, SECRETS[vendor].encode(), body, now_ts(vendor, offset_s))


@dataclass
class Ingest:
    bootstrap: str
    raw_topic: str
    workdir: Path
    extra: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Ingest:
        log = (self.workdir / f"ingest-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cxpulse.cli", "ingest", "--bootstrap-servers", self.bootstrap,
             "--topic-raw-deliveries", self.raw_topic, "--ingest-port", str(self.port),
             "--set", "ingest_produce_timeout=3s", *self.extra],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env_with_secrets(),
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"ingest not healthy; log: {self.log_text()}")

    def log_text(self) -> str:
        return (self.workdir / f"ingest-{self.port}.log").read_text(errors="replace")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post(self, vendor: str, body: bytes, headers: dict[str, str] | None = None,
             content_type: str = "application/json") -> tuple[int, str]:  # fmt: skip
        req = urllib.request.Request(
            f"{self.url}/webhooks/{vendor}", data=body, method="POST",
            headers={"Content-Type": content_type, **(headers or {})},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (ConnectionError, urllib.error.URLError) as e:  # a 413 may close early
            return -1, str(e)

    def post_signed(self, vendor: str, payload: dict[str, Any] | bytes,
                    extra: dict[str, str] | None = None) -> tuple[int, str]:  # fmt: skip
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.post(vendor, body, {**signed_headers(vendor, body), **(extra or {})})

    def counter(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        _, text = self.get("/metrics")
        total = 0.0
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            return self.proc.wait(30)
        return self.proc.returncode


@dataclass
class MapProc:
    """One `cxpulse map` subprocess."""

    bootstrap: str
    raw_topic: str
    tickets: str
    surveys: str
    deadletter: str
    mapping_file: Path
    workdir: Path
    group: str = "map-test"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    #: extra environment (e.g. a test crash point, `cxpulse.crashpoint`)
    env: dict[str, str] = field(default_factory=dict)

    def start(self, *extra: str, wait: bool = True) -> MapProc:
        """Start; with `wait`, return once healthy (partitions assigned, snapshots read)."""
        log = (self.workdir / f"map-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cxpulse.cli", "map", "--bootstrap-servers", self.bootstrap,
             "--topic-raw-deliveries", self.raw_topic, "--topic-tickets", self.tickets,
             "--topic-surveys", self.surveys, "--topic-deadletter", self.deadletter,
             "--mapping-file", str(self.mapping_file), "--map-group-id", self.group,
             "--metrics-port", str(self.port),
             "--set", f"topic_map_snapshots={self.raw_topic}.snapshots", *extra],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**env_with_secrets(), **self.env},
        )  # fmt: skip
        if not wait:
            return self
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # healthy = partitions assigned, snapshots read
            assert self.proc.poll() is None, self.log_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5):
                    return self
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"map not healthy; log: {self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return (self.workdir / f"map-{self.port}.log").read_text(errors="replace")

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            return self.proc.wait(30)
        return self.proc.returncode
