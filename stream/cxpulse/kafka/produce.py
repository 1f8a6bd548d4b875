"""Producing to the contract's topics: one producer setup, one set of Kafka flags and one
broker-error line for every command that sends (`replay`, `simulate`, `import`, the demo).

The producer is idempotent with acks=all, so a retried batch never duplicates messages,
and it keeps aiokafka's default murmur2 partitioner, the one Java clients use: the KPI core
relies on the same key landing on the same partition whichever client produced it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, Protocol

from cxpulse.core.events import SURVEYS, TICKETS

if TYPE_CHECKING:  # types only: importing this module loads no settings model or tqdm
    from tqdm import tqdm

    from cxpulse.settings.model import ClientOptions

SEND_CHUNK = 5000
#: Exit code when the broker cannot be reached or refuses (sysexits EX_UNAVAILABLE).
EXIT_KAFKA = 69


class Progress(Protocol):
    """A progress bar advanced by hand (tqdm's `update(n)`)."""

    def update(self, n: float | None = 1) -> bool | None: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    due: float | None = None  # seconds after the start of sending; None = at once


async def produce(
    bootstrap: str,
    messages: Iterable[Outgoing],
    *,
    progress: Progress | None = None,
    max_request_size: int = 4 * 1024 * 1024,
    security: ClientOptions | None = None,
) -> int:
    """Send every message, wait for all acknowledgements, return how many were sent.

    Futures are gathered in chunks: awaiting each send would cap throughput
    at one round trip per message, gathering all at the end would hold every
    pending future in memory. `security` is the worker settings'
    `aiokafka_security()` (TLS/SASL pass through the same way).
    """
    from aiokafka import AIOKafkaProducer  # aiokafka: not imported at `--help` time

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=256 * 1024,
        max_request_size=max_request_size,
        **(security or {}),
    )
    try:
        await producer.start()
    except BaseException:
        await producer.stop()  # a failed start leaves it open ("Unclosed AIOKafkaProducer")
        raise
    sent = 0
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        futures: list[asyncio.Future[object]] = []  # of aiokafka's RecordMetadata
        for msg in messages:
            if msg.due is not None:
                wait = msg.due - (loop.time() - started)
                if wait > 0:
                    await asyncio.sleep(wait)
            futures.append(await producer.send(msg.topic, value=msg.value, key=msg.key))
            if len(futures) >= SEND_CHUNK:
                await asyncio.gather(*futures)
                sent += len(futures)
                if progress is not None:
                    progress.update(len(futures))
                futures = []
        await asyncio.gather(*futures)
        sent += len(futures)
        if progress is not None:
            progress.update(len(futures))
    finally:
        await producer.stop()
    return sent


@dataclass(frozen=True)
class KafkaTarget:
    bootstrap: str
    topics: dict[str, str]
    security: ClientOptions


def send(command: str, target: KafkaTarget, messages: Iterable[Outgoing],
         progress: Progress | None = None) -> int | None:  # fmt: skip
    """`produce`, or one line naming the problem on stderr and None (exit 69)."""
    from aiokafka.errors import KafkaError  # aiokafka: not imported at `--help` time

    try:
        return asyncio.run(
            produce(target.bootstrap, messages, progress=progress, security=target.security)
        )
    except KafkaError as exc:
        print(f"{command}: kafka at {target.bootstrap}: {type(exc).__name__}: {exc} "
              "(is the broker up, and are the security settings right?)",
              file=sys.stderr)  # fmt: skip
        return None
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return None



def progress_bar(enabled: bool, unit: str) -> tqdm[NoReturn] | None:
    """A bar on stderr when asked for (`--progress`) or when stderr is a terminal."""
    if not (enabled or sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(unit=unit, file=sys.stderr, dynamic_ncols=True)


def add_kafka_args(parser: argparse.ArgumentParser, bootstrap_default: str | None) -> None:
    """A sending command's Kafka flags, named as the worker's (`cxpulse worker --help`)."""
    from cxpulse.settings import Settings

    defaults = Settings.model_fields  # the one place defaults are written down
    parser.add_argument(
        "--bootstrap-servers", default=bootstrap_default, metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: the settings', "
        f"{defaults['bootstrap_servers'].default})",
    )  # fmt: skip
    parser.add_argument(
        "--topic-tickets", default=None,
        help=f"ticket events topic (default: the settings', {defaults['topic_tickets'].default})",
    )  # fmt: skip
    parser.add_argument(
        "--topic-surveys", default=None,
        help=f"survey events topic (default: the settings', {defaults['topic_surveys'].default})",
    )  # fmt: skip
    parser.add_argument(
        "--config", metavar="YAML",
        help="the worker's settings file (or CXPULSE_CONFIG): bootstrap_servers, topics and "
        "security_protocol / sasl_* / ssl_* are taken from it, so a TLS/SASL broker works",
    )  # fmt: skip


def kafka_target(args: argparse.Namespace) -> KafkaTarget:
    """Broker, topics and security from the worker's settings, the flags of
    `add_kafka_args` overriding.

    Raises `SettingsError` (a one-line message naming the setting)."""
    from cxpulse.settings.flags import settings_from_args

    overrides: dict[str, object] = {"bootstrap_servers": args.bootstrap_servers}
    settings = settings_from_args(args, overrides)
    # Topic flags are taken as given (a test may send both roles to one topic).
    return KafkaTarget(
        settings.bootstrap_servers,
        {TICKETS: args.topic_tickets or settings.topic_tickets,
         SURVEYS: args.topic_surveys or settings.topic_surveys},
        settings.aiokafka_security(),
    )  # fmt: skip
