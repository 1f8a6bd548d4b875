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
import socket
import sys
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
        partitions = asyncio.run(wait_for_topics(settings, check))
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
    return Prepared(partitions, web_config, sock)


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
        for _attempt in range(30):
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
