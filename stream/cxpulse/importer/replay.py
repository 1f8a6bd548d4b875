"""`cxpulse replay FILE`: produce a JSONL capture to the contract's topics.

Each line is one message value, produced byte for byte (malformed lines
included: the worker must see them to dead-letter them). Topic and key
follow the contract via `route_of`; `cxpulse.kafka.produce` sends them (idempotent,
acks=all, the Java clients' partitioner).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from cxpulse.cliargs import Subcommands
from cxpulse.core.decode import Rejection, decode, route_of
from cxpulse.kafka.produce import (
    EXIT_KAFKA,
    Outgoing,
    add_kafka_args,
    kafka_target,
    progress_bar,
    send,
)
from cxpulse.settings import SettingsError


def read_lines(path: Path) -> Iterator[bytes]:
    """Message values of a capture: one per line, blank lines skipped, bytes untouched."""
    with path.open("rb") as fh:
        for line in fh:
            value = line[:-1] if line.endswith(b"\n") else line
            if value:
                yield value


def plan(
    values: Iterable[bytes], topics: dict[str, str], speed: float | None,
    origin_ms: int | None = None,
) -> Iterator[Outgoing]:
    """Topic, key and due time of each value; pacing follows event time at `speed`x.

    Due times count from the first event, or from `origin_ms` when given: events
    before it are due at once (the demo's backfilled history), later ones when
    their time comes. A line that does not decode keeps the due time of the
    previous one, so malformed lines travel with their neighbours.
    """
    first_ts: int | None = origin_ms
    due: float | None = 0.0 if speed else None
    for value in values:
        role, key = route_of(value)
        if speed:
            event = decode(value, max_bytes=len(value))
            if not isinstance(event, Rejection):
                if first_ts is None:
                    first_ts = event.ts
                due = max(due or 0.0, (event.ts - first_ts) / 1000.0 / speed)
        yield Outgoing(topics[role], key, value, due)


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"cxpulse replay: no such file: {path}", file=sys.stderr)
        return 2
    if args.speed is not None and args.speed <= 0:
        print("cxpulse replay: --speed must be positive", file=sys.stderr)
        return 2
    try:
        target = kafka_target(args)
    except SettingsError as exc:
        print(f"cxpulse replay: bad setting: {exc}", file=sys.stderr)
        return 2
    bar = progress_bar(args.progress, "msg")
    started = time.monotonic()
    try:
        messages = plan(read_lines(path), target.topics, args.speed)
        sent = send("cxpulse replay", target, messages, bar)
    finally:
        if bar is not None:
            bar.close()
    if sent is None:
        return EXIT_KAFKA
    elapsed = time.monotonic() - started
    print(f"cxpulse replay: {sent} messages in {elapsed:.1f}s", file=sys.stderr)
    return 0


def register(subparsers: Subcommands) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="produce a JSONL capture to the tickets/surveys topics",
        description="Produce each line of FILE as one message, keyed per the event contract "
        "(docs/contract.md). "
        f"Exit codes: 0 sent, 2 bad file or setting, {EXIT_KAFKA} broker unreachable or refusing.",
        epilog="example: cxpulse replay day.jsonl --bootstrap-servers 127.0.0.1:9092 --speed 60",
    )
    parser.add_argument("file", metavar="FILE", help="JSONL events, one per line")
    add_kafka_args(parser, None)
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="pace by event time: N simulated seconds per real second (default: no pacing)",
    )
    parser.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    parser.set_defaults(func=run)
