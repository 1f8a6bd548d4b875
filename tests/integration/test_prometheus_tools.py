"""Prometheus and Alertmanager are the real Debian binaries, runnable from tests."""

from __future__ import annotations

import subprocess
import urllib.request

import pytest

from tests.support.prom import LoopbackServer

pytestmark = pytest.mark.prometheus


@pytest.mark.parametrize("tool", ["promtool", "amtool", "prometheus", "prometheus-alertmanager"])
def test_tool_runs(tool: str) -> None:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True)
    assert "version" in (out.stdout + out.stderr).lower()


def test_prometheus_starts_on_loopback_and_reports_ready() -> None:
    server = LoopbackServer("prometheus", "global:\n  scrape_interval: 15s\n").start()
    try:
        with urllib.request.urlopen(f"{server.url}/-/ready", timeout=5) as resp:
            assert resp.status == 200
    finally:
        server.stop()


def test_alertmanager_starts_on_loopback_only() -> None:
    config = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"
    server = LoopbackServer("alertmanager", config).start()
    try:
        assert server.proc is not None
        ss = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=True)
        mine = [line for line in ss.stdout.splitlines() if f"pid={server.proc.pid}," in line]
        assert mine, ss.stdout
        assert all("127.0.0.1:" in line for line in mine), mine  # no 0.0.0.0:9094 gossip port
    finally:
        server.stop()
