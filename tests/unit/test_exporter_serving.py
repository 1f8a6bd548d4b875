"""The exporter's serving process: it answers from what the exporter last handed it,
computes nothing, and keeps answering while the exporter's own process is busy."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from cxpulse.exporter.serving import Publisher
from cxpulse.web.server import bind_socket

from tests.support.ports import free_port


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _until(port: int, path: str, status: int) -> bytes:
    """The serving process starts in the background: ask until it answers `status`."""
    deadline = time.monotonic() + 60
    last: tuple[int, bytes] | None = None
    while time.monotonic() < deadline:
        try:
            last = _get(port, path)
        except OSError:
            time.sleep(0.05)
            continue
        if last[0] == status:
            return last[1]
        time.sleep(0.05)
    raise AssertionError(f"{path}: never {status}, last {last}")


def test_scrapes_get_the_last_rendering_and_readiness_follows_the_exporter() -> None:
    port = free_port()
    pub = Publisher(bind_socket("127.0.0.1", port), None)
    try:
        pub.status(None)
        assert b"catching up" in _until(port, "/readyz", 503)
        assert _get(port, "/metrics")[0] == 503  # nothing rendered yet
        assert _get(port, "/healthz") == (200, b"ok\n")
        first = b"# HELP a x\n# TYPE a gauge\na 1.0\n"
        pub.body(first)
        assert _until(port, "/metrics", 200) == first
        second = b"a 2.0\n" * 300_000  # bigger than a pipe buffer: framed, not truncated
        pub.body(second)
        deadline = time.monotonic() + 60
        while _get(port, "/metrics")[1] != second and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _get(port, "/metrics") == (200, second)
        assert _get(port, "/readyz") == (200, b"ready\n")
        pub.status("kafka refuses this exporter's credentials: SASL")
        assert b"credentials: SASL" in _until(port, "/readyz", 503)
        assert _get(port, "/metrics") == (200, second)  # the last KPIs stay served
    finally:
        pub.close()


def test_closing_the_pipe_stops_the_serving_process() -> None:
    port = free_port()
    sock = bind_socket("127.0.0.1", port)
    pub = Publisher(sock, None)
    pub.body(b"a 1.0\n")
    _until(port, "/metrics", 200)
    pub.close()
    assert pub._proc.poll() is not None  # reaped, not left serving stale KPIs
    try:
        _get(port, "/metrics")
    except OSError:
        return
    raise AssertionError("still served after the exporter closed the pipe")


def test_the_web_config_reaches_the_serving_process() -> None:
    """Basic auth (and TLS, from the same config) protect what the serving process serves."""
    import base64

    import bcrypt
    from cxpulse.web.server import WebConfig

    port = free_port()
    cfg = WebConfig(users={"prometheus": bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4))})
    pub = Publisher(bind_socket("127.0.0.1", port), cfg)
    try:
        pub.body(b"a 1.0\n")
        _until(port, "/metrics", 401)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics",
            headers={"Authorization": "Basic " + base64.b64encode(b"prometheus:s3cret").decode()},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            assert r.read() == b"a 1.0\n"
    finally:
        pub.close()
