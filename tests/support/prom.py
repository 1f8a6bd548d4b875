"""Start the real Prometheus / Alertmanager binaries (Debian packages) on loopback.

Tests use these to prove that rules load, alerts fire and dashboard queries run
against the real thing rather than against our idea of it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: .ci/run installs the Debian packages")
    return path


@dataclass
class LoopbackServer:
    """A Prometheus-family server process with its own port and data dir."""

    kind: str  # "prometheus" or "alertmanager"
    config: str
    extra_files: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cxpulse-prom-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> LoopbackServer:
        self.port = self.port or free_port()
        for name, text in self.extra_files.items():
            (self.workdir / name).write_text(text)
        cfg = self.workdir / "config.yml"
        cfg.write_text(self.config)
        listen = f"--web.listen-address=127.0.0.1:{self.port}"
        if self.kind == "prometheus":
            cmd = [
                binary("prometheus"), f"--config.file={cfg}", listen,
                f"--storage.tsdb.path={self.workdir / 'data'}",
                "--web.enable-lifecycle",
            ]
        else:
            cmd = [
                binary("prometheus-alertmanager"), f"--config.file={cfg}", listen,
                f"--storage.path={self.workdir / 'data'}",
                # Empty: no gossip listener on 0.0.0.0:9094 (single instance on loopback).
                "--cluster.listen-address=",
            ]
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen([*cmd, *self.extra_args], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited: {(self.workdir / 'server.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"{self.kind} not ready on {self.url}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)
