"""`/metrics` over TLS with basic auth (exporter-toolkit web-config), scraped by a
real Prometheus with the same credentials; a wrong password gets 401."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from tests.integration.test_worker_pipeline import (
    CXPULSE,
    ROOT,
    WorkerProc,
    make_topics,
    wait_for,
)
from tests.support.ports import free_port
from tests.support.prom import LoopbackServer

pytestmark = pytest.mark.kafka

PASSWORD = "scrape-pw-7"


def _certs(d: Path) -> None:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl CLI)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*a: str) -> None:
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=cxpulse-test-ca")  # fmt: skip
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip


def _get(url: str, ca: Path, user: str | None, password: str | None) -> int:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_metrics_over_tls_with_basic_auth_scraped_by_prometheus(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    _certs(tmp_path)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=6)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    # a mistake in the file stops the worker at start, naming the setting
    bad = tmp_path / "bad.yml"
    bad.write_text("tls_server_config:\n  cert_file: server.crt\n  keyfile: server.key\n")
    r = subprocess.run([*CXPULSE, "worker", "--set", f"web_config_file={bad}",
                        "--metrics-port", str(free_port())],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "web_config_file" in r.stderr, r.stderr[-2000:]

    topics = make_topics(topic_factory)
    w = WorkerProc(kafka_bootstrap, topics, tmp_path, "w1", "--set", f"web_config_file={web}")
    w.start()
    prom = None
    try:
        base = f"https://127.0.0.1:{w.port}"
        ca = tmp_path / "ca.crt"

        def up() -> bool:
            w.supervise()
            try:
                return _get(f"{base}/healthz", ca, "prometheus", PASSWORD) == 200
            except OSError:
                return False

        wait_for(up, 60, "worker serving https", w)
        assert _get(f"{base}/metrics/worker", ca, None, None) == 401
        assert _get(f"{base}/metrics/worker", ca, "prometheus", "wrong") == 401
        assert _get(f"{base}/healthz", ca, "nobody", PASSWORD) == 401
        assert _get(f"{base}/metrics/worker", ca, "prometheus", PASSWORD) == 200
        with pytest.raises(OSError):  # plain HTTP is not served (connection dropped)
            urllib.request.urlopen(f"http://127.0.0.1:{w.port}/healthz", timeout=5)

        def job(name: str, password: str) -> str:
            return (
                f"  - job_name: {name}\n    scheme: https\n    metrics_path: /metrics/worker\n"
                f"    tls_config: {{ca_file: {ca}}}\n"
                f"    basic_auth: {{username: prometheus, password: '{password}'}}\n"
                f"    static_configs: [{{targets: ['127.0.0.1:{w.port}']}}]\n"
            )

        config = ("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n"
                  + job("cxpulse-worker", PASSWORD) + job("wrong-password", "nope"))  # fmt: skip
        prom = LoopbackServer("prometheus", config).start()

        def query(expr: str) -> list[dict[str, object]]:
            url = f"{prom.url}/api/v1/query?query={urllib.parse.quote(expr)}"
            with urllib.request.urlopen(url, timeout=10) as resp:
                return list(json.load(resp)["data"]["result"])

        def scraped() -> bool:
            return bool(query('up{job="cxpulse-worker"} == 1')) and bool(
                query('up{job="wrong-password"} == 0')
            )

        wait_for(scraped, 60, "prometheus scrapes", w)
        owned = query('cxpulse_worker_partitions_owned{job="cxpulse-worker"}')
        assert owned, "no worker series scraped over TLS"
        assert not query('cxpulse_worker_partitions_owned{job="wrong-password"}')
    finally:
        if prom is not None:
            prom.stop()
        w.stop()
