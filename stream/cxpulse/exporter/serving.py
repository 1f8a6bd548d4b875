"""The exporter's HTTP side, in a process of its own: a scrape never waits on an evaluation.

Why a process and not a thread: the evaluation and the batch apply run in
threads of the exporter process, and in one Python process every thread
shares one interpreter lock and one garbage collector. A scrape handled on the
event loop then waits for a lock switch on every socket operation, and for a
whole collection of the exporter's large heap when one starts during an
evaluation (the slowest 1 % of scrapes took 0.7-1.7 s with the evaluation in a
thread, issue 22). This process holds only the last rendered exposition (a few
MB at most) and answers from it; the exporter writes each new rendering to its
stdin once, whatever the number of scrapers.

Protocol on the child's stdin (one writer, `Publisher`): frames of a 1-byte
kind and a 4-byte big-endian length. `CONFIG` (JSON of the `WebConfig`) comes
first; `BODY` is a complete exposition (the exporter is ready from the first
one on); `STATUS` is JSON `{"not_ready": reason or null}`, sent every second:
it is also the heartbeat `/healthz` reports on (the exporter's loop answers).
End of input (the exporter stopped or died) ends this process; SIGINT and
SIGTERM are left to the exporter, which closes the pipe when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from cxpulse.web.server import Handler, WebConfig, serve

FRAME = struct.Struct("!BI")
CONFIG, BODY, STATUS = 1, 2, 3
#: /healthz fails when the exporter's loop has sent no heartbeat for this long.
STALE_AFTER_S = 30.0


class ServingProcessDied(RuntimeError):
    """The serving process exited while the exporter ran (nothing serves /metrics)."""


class Publisher:
    """The exporter's end: starts the serving process on the bound socket and feeds it.

    Thread-safe: the evaluation thread publishes bodies, the loop's heartbeat
    (through a thread too: a write may block while the child reads) statuses."""

    def __init__(self, sock: socket.socket, web_config: WebConfig | None) -> None:
        root = str(Path(__file__).resolve().parents[2])  # where `cxpulse` imports from
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        fd = sock.fileno()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "cxpulse.exporter.serving", str(fd)],
            stdin=subprocess.PIPE, pass_fds=(fd,), env=env,
        )  # fmt: skip
        sock.close()  # the child accepts; the exporter keeps no listener
        assert self._proc.stdin is not None
        self._pipe: IO[bytes] = self._proc.stdin
        self._lock = threading.Lock()
        cfg = web_config or WebConfig()
        self._send(CONFIG, json.dumps({
            "cert_file": cfg.cert_file, "key_file": cfg.key_file,
            "client_ca_file": cfg.client_ca_file, "min_version": cfg.min_version,
            "users": {u: h.decode() for u, h in cfg.users.items()},
        }).encode())  # fmt: skip

    def _send(self, kind: int, payload: bytes) -> None:
        with self._lock:
            try:
                self._pipe.write(FRAME.pack(kind, len(payload)))
                self._pipe.write(payload)
                self._pipe.flush()
            except (BrokenPipeError, ValueError):
                raise ServingProcessDied(self._died()) from None

    def body(self, exposition: bytes) -> None:
        """Serve this exposition from now on (and report ready)."""
        self._send(BODY, exposition)

    def status(self, not_ready: str | None) -> None:
        """Heartbeat; `not_ready`: why /readyz fails even with a body (credentials)."""
        if self._proc.poll() is not None:
            raise ServingProcessDied(self._died())
        self._send(STATUS, json.dumps({"not_ready": not_ready}).encode())

    def _died(self) -> str:
        return f"the /metrics serving process exited (code {self._proc.poll()})"

    def close(self) -> None:
        """Close the pipe (the child then stops serving and exits) and reap the child."""
        with self._lock, contextlib.suppress(BrokenPipeError):
            self._pipe.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@dataclass
class Served:
    """The child's whole state: what the exporter last sent."""

    body: bytes = b""
    ready: bool = False
    not_ready: str | None = None
    heard: float = 0.0

    def update(self, kind: int, payload: bytes) -> None:
        self.heard = time.monotonic()
        if kind == BODY:
            self.body, self.ready = payload, True
        elif kind == STATUS:
            self.not_ready = json.loads(payload)["not_ready"]


def routes(served: Served) -> dict[str, Handler]:
    """The exporter's endpoints, answered from `served` only (nothing is computed)."""

    async def metrics(_: web.Request) -> web.Response:
        if not served.ready:
            return web.Response(status=503, text="changelog not read up to its end yet\n")
        return web.Response(body=served.body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        silent = time.monotonic() - served.heard
        if silent > STALE_AFTER_S:
            return web.Response(
                status=503, text=f"exporter loop silent for {silent:.0f} s\n"
            )
        return web.Response(text="ok\n")

    async def ready(_: web.Request) -> web.Response:
        if served.not_ready is not None:
            return web.Response(status=503, text=f"not ready: {served.not_ready}\n")
        if served.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="catching up on the changelog\n")

    async def index(_: web.Request) -> web.Response:
        return web.Response(
            content_type="text/html",
            text="<!doctype html><title>cxpulse exporter</title><h1>cxpulse exporter</h1>"
            "<ul><li><a href='/metrics'>/metrics</a> every KPI, all partitions</li>"
            "<li><a href='/healthz'>/healthz</a> liveness</li>"
            "<li><a href='/readyz'>/readyz</a> readiness (changelog read up to its end)</li></ul>",
        )

    return {"/": index, "/metrics": metrics, "/healthz": health, "/readyz": ready}


async def _read_frames(stream: asyncio.StreamReader, served: Served) -> None:
    while True:
        try:
            head = await stream.readexactly(FRAME.size)
            kind, size = FRAME.unpack(head)
            payload = await stream.readexactly(size)
        except asyncio.IncompleteReadError:
            return  # the exporter closed the pipe: stop serving
        served.update(kind, payload)


async def _main(fd: int) -> None:
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader(limit=2**31)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), sys.stdin.buffer)
    head = await stream.readexactly(FRAME.size)
    kind, size = FRAME.unpack(head)
    assert kind == CONFIG
    raw = json.loads(await stream.readexactly(size))
    cfg = WebConfig(raw["cert_file"], raw["key_file"], raw["client_ca_file"],
                    raw["min_version"], {u: h.encode() for u, h in raw["users"].items()})
    served = Served(heard=time.monotonic())
    sock = socket.socket(fileno=fd)
    runner = await serve(sock, routes(served), cfg)
    try:
        await _read_frames(stream, served)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    # the exporter handles the signals (a terminal's Ctrl-C reaches the whole group) and
    # closes the pipe when it stops, whatever stopped it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    asyncio.run(_main(int(sys.argv[1])))
