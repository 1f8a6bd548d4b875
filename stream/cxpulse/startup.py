"""The start-up checks every serving command shares (worker, exporter).

Why one module: the worker and the exporter must refuse to start for the same
cause with the same line and exit code (docs/runbook.md), and did not when
each had its own copy. Order matters: user errors (targets, web config, the
port) are reported at once, before any wait for a broker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cxpulse.kafka.access import (
    EXIT_UNAVAILABLE,
    KafkaAccessError,
    classify,
    diagnose,
    security_of,
)
from cxpulse.kafka.topics import StartupError, check_topics
from cxpulse.settings import Settings, SettingsError, core_config
from cxpulse.web.server import WebConfig, WebConfigError, bind_socket, load_web_config

#: How long a start-up waits for an unreachable broker before it exits (one try per 2 s).
WAIT_GIVE_UP_S = 60.0

#: Ctrl-C before the worker started (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Prepared:
    """What a serving command (worker, exporter) has checked and holds before it runs."""

    partitions: int
    web_config: WebConfig
    sock: socket.socket


def prepare_serving(prog: str, settings: Settings, input_grant: str = "Read") -> Prepared | int:
    """The start-up checks of every serving command, each failure one line + exit code.

    Targets and time model, web-config, the metrics port, then the input topics
    (retrying while the broker is unreachable), in that order, so a user error
    is reported at once rather than after a minute of waiting for a broker. Returns the exit code
    (documented in docs/runbook.md) after printing the line, or what was
    prepared. Why one function: the worker and the exporter must fail the same
    way for the same cause, and did not when each had its own copy."""
    try:
        core_config(settings)  # targets file and time model: fail before connecting
        web_config = load_web_config(settings.web_config_file)
        sock = bind_metrics_socket(settings)
        check = functools.partial(check_topics, input_grant=input_grant)
        partitions = asyncio.run(_wait_while_serving(prog, settings, check, sock, web_config))
    except (StartupError, SettingsError, WebConfigError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except KafkaAccessError as exc:  # one line naming the cause
        print(f"{prog}: kafka: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted while connecting to {settings.bootstrap_servers}",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    except StoppedWhileWaiting:
        print(f"{prog}: stopped (SIGTERM) while connecting to {settings.bootstrap_servers}",
              file=sys.stderr)  # fmt: skip
        return 0
    return Prepared(partitions, web_config, sock)


#: Seconds between the "still waiting for Kafka" lines.
WAIT_LINE_EVERY_S = 5.0


async def _wait_while_serving(
    prog: str, settings: Settings, check: Callable[[Settings], Awaitable[int]],
    sock: socket.socket, web_config: WebConfig,
) -> int:
    """`wait_for_topics`, while `/healthz` and `/readyz` answer 503 with the reason and a
    line every 5 s says what the command waits for.

    Why: a broker that does not answer used to give a minute of silence and a port
    that refused connections, so neither a person nor a probe could tell "starting"
    from "hung". The temporary server listens on a duplicate of the bound socket,
    so the real one takes over the same port without a gap in binding."""
    from aiohttp import web  # aiohttp: only when serving

    from cxpulse.web.server import make_app, start

    started = time.monotonic()
    where = f"Kafka at {settings.bootstrap_servers}"

    def reason() -> str:
        return f"waiting for {where} ({time.monotonic() - started:.0f} s)"

    async def starting(_: web.Request) -> web.Response:
        return web.Response(status=503, text=f"starting: {reason()}\n")

    async def tell() -> None:
        while True:
            await asyncio.sleep(WAIT_LINE_EVERY_S)
            print(f"{prog}: {reason()}; no broker answered yet, giving up after "
                  f"{WAIT_GIVE_UP_S:.0f} s", file=sys.stderr, flush=True)

    app = make_app(web_config)
    for path in ("/healthz", "/readyz"):
        app.router.add_get(path, starting)
    runner = await start(sock.dup(), app, web_config)
    ticker = asyncio.create_task(tell())
    loop = asyncio.get_running_loop()
    waiting = asyncio.ensure_future(wait_for_topics(settings, check))
    loop.add_signal_handler(signal.SIGTERM, waiting.cancel)  # a supervisor's stop: exit 0
    try:
        return await waiting
    except asyncio.CancelledError:
        if waiting.cancelled() and not _current_cancelling():
            raise StoppedWhileWaiting from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        ticker.cancel()
        await runner.cleanup()


def _current_cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


class StoppedWhileWaiting(Exception):
    """SIGTERM while waiting for the broker: nothing started, nothing to clean up."""


def bind_metrics_socket(settings: Settings) -> socket.socket:
    """The serving socket on metrics_host:metrics_port, or the one line naming the setting."""
    try:
        return bind_socket(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        raise SettingsError(
            f"metrics_port: cannot listen on {settings.metrics_host}:{settings.metrics_port}: "
            f"{exc.strerror} ({settings.source_of('metrics_port')})"
        ) from None


async def wait_for_topics(
    settings: Settings, check: Callable[[Settings], Awaitable[int]]
) -> int:
    """Check topics, retrying while the broker is unreachable (up to ~60 s).

    A failure that retrying cannot heal (credentials refused, TLS or protocol
    mismatch, an ACL missing) raises `KafkaAccessError` at once, with the
    cause `cxpulse.kafka.access.diagnose` found; aiokafka's own per-attempt error
    lines are kept out of the output meanwhile (they only say "Unable to
    bootstrap").
    """
    from aiokafka.errors import KafkaConnectionError, KafkaError  # aiokafka: only when serving

    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    sec = security_of(settings)
    task = asyncio.current_task()
    try:
        for _attempt in range(int(WAIT_GIVE_UP_S / 2)):
            if task is not None and task.cancelling():  # Ctrl-C: the client swallowed it
                raise asyncio.CancelledError
            try:
                n: int = await check(settings)
                return n
            except KafkaConnectionError:
                found = await diagnose(sec)
                if found is not None:
                    raise found from None
                await asyncio.sleep(2)
            except KafkaError as exc:
                found = classify(
                    exc, settings.bootstrap_servers, sec.security_protocol, sec.sasl_mechanism
                )
                if found is None:
                    raise
                raise found from None
    finally:
        quiet.setLevel(level)
    raise KafkaAccessError(
        EXIT_UNAVAILABLE,
        f"bootstrap_servers: no broker answered at {settings.bootstrap_servers} for 60 s",
    )
