"""`cxpulse simulate`: a realistic support operation, to a JSONL file or to Kafka.

The output depends only on the arguments (no wall clock, one seeded random
stream), so a run can be reproduced exactly from its command line, and a
bug seen in a dashboard can be replayed. The generator itself lives in
`cxpulse.sim` for tests and benches; this module only parses options and
writes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cxpulse import cliargs
from cxpulse.core.decode import Rejection, parse_ts
from cxpulse.kafka.produce import (
    EXIT_KAFKA,
    Outgoing,
    Progress,
    add_kafka_args,
    kafka_target,
    progress_bar,
    send,
)
from cxpulse.settings import SettingsError
from cxpulse.sim import params as p
from cxpulse.sim.dirt import SimRecord, generate
from cxpulse.sim.model import CONTRACTS, SimConfig

DEFAULT_START = "2026-11-02T00:00:00Z"


def _start(text: str) -> int:
    ts = parse_ts(text)
    if isinstance(ts, Rejection):
        raise argparse.ArgumentTypeError(f"--start: {ts.message}")
    return ts


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def config_of(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        seed=args.seed,
        start_ms=args.start,
        duration_ms=args.duration,
        tickets_per_day=args.tickets_per_day,
        scenario=args.scenario,
        duplicates=args.duplicates,
        disorder_s=args.disorder,
        malformed=args.malformed,
        contract=args.contract,
    )


def _tracked(records: Iterator[SimRecord], bar: Progress) -> Iterator[SimRecord]:
    for record in records:
        bar.update(1)
        yield record


def write_jsonl(records: Iterator[SimRecord], out: IO[bytes]) -> int:
    n = 0
    for record in records:
        out.write(record.value)
        out.write(b"\n")
        n += 1
    return n


def _paced(
    records: Iterator[SimRecord], topics: dict[str, str], rate: float | None
) -> Iterator[Outgoing]:
    for i, record in enumerate(records):
        due = i / rate if rate else None
        yield Outgoing(topics[record.role], record.key, record.value, due)


def run(args: argparse.Namespace) -> int:
    to_kafka = args.bootstrap_servers is not None or args.config is not None
    if (args.out is None) == (not to_kafka):
        print("cxpulse simulate: give exactly one of --out FILE or --bootstrap-servers HOST:PORT "
              "(or --config)", file=sys.stderr)  # fmt: skip
        return 2
    if args.disorder >= p.DEFAULT_LATENESS_S and not args.allow_late:
        print(
            f"cxpulse simulate: --disorder {args.disorder:g}s reaches the default allowed lateness "
            f"({p.DEFAULT_LATENESS_S:g}s); add --allow-late to produce late events on purpose",
            file=sys.stderr,
        )
        return 2
    if args.tickets_per_day <= 0:
        print("cxpulse simulate: --tickets-per-day must be positive", file=sys.stderr)
        return 2
    cfg = config_of(args)
    bar = progress_bar(args.progress, "msg")
    records = generate(cfg)
    if bar is not None:
        records = _tracked(records, bar)
    try:
        if to_kafka:
            try:
                target = kafka_target(args)
            except SettingsError as exc:
                print(f"cxpulse simulate: bad setting: {exc}", file=sys.stderr)
                return 2
            sent = send("cxpulse simulate", target, _paced(records, target.topics, args.rate))
            if sent is None:
                return EXIT_KAFKA
            n = sent
        elif args.out == "-":
            n = write_jsonl(records, sys.stdout.buffer)
        else:
            with Path(args.out).open("wb") as out:
                n = write_jsonl(records, out)
    finally:
        if bar is not None:
            bar.close()
    print(f"cxpulse simulate: {n} messages", file=sys.stderr)
    return 0


def register(subparsers: cliargs.Subcommands) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="generate a realistic, reproducible support event stream",
        description=(
            "Simulate a support operation (teams on shifts, Poisson arrivals with an "
            "hour-of-day profile, replies, transfers, reopens, surveys). Same seed and "
            "arguments give a byte-identical output."
        ),
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same output)")
    parser.add_argument("--start", type=_start, default=_start(DEFAULT_START), help="RFC 3339")
    parser.add_argument("--duration", type=cliargs.duration_ms, default="24h",
                        help="simulated span, e.g. 6h, 7d (default: 24h)")
    parser.add_argument("--tickets-per-day", type=cliargs.positive, default=2000.0,
                        help="weekday volume")
    parser.add_argument("--scenario", choices=p.SCENARIOS, default="normal",
                        help="a healthy operation, or one with a named problem")
    parser.add_argument("--duplicates", type=_share, default=0.0, metavar="RATE",
                        help="share of events delivered twice")
    parser.add_argument(
        "--disorder",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help=f"hold back {p.DISORDER_SHARE * 100:.0f}%% of events by up to SECONDS",
    )
    parser.add_argument(
        "--allow-late", action="store_true", help="allow --disorder beyond the 5-minute lateness"
    )
    parser.add_argument("--malformed", type=_share, default=0.0, metavar="RATE",
                        help="malformed messages injected per valid event")
    parser.add_argument(
        "--contract", choices=CONTRACTS, default="1.0", metavar="VERSION",
        help="event contract whose shapes to emit (docs/contract.md): 1.1 adds bot tickets "
        "with handoffs, replies saved with the solve, survey offers, CSAT on other scales "
        "(default: 1.0)",
    )  # fmt: skip
    parser.add_argument("--out", metavar="FILE", help="write JSONL ('-' for stdout)")
    add_kafka_args(parser, None)
    parser.add_argument("--rate", type=float, default=None, help="events/s to Kafka (default: max)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    parser.set_defaults(func=run)
