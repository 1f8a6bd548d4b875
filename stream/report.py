"""`cxpulse report FILE`: every KPI of a JSONL event file, computed by the core.

The batch reference the live pipeline is checked against: each line goes
through the same decoder as the worker, is routed to the same partition
number Kafka's default partitioner would give its key, and is applied to one
`PartitionEngine` per partition in file order. At the end of the file every
parked survey is attributed (the input is complete) and all KPIs are
evaluated at the largest stream time, or at `--at`. Only counts of rejected
lines are printed, never their content (it may hold personal data).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from stream.core.config import CoreConfig
from stream.core.decode import Rejection, decode, format_ts, parse_ts
from stream.core.engine import Evaluation, PartitionEngine, evaluate
from stream.core.events import key_of, role_of
from stream.core.partitioning import partition_for
from stream.core.timeguard import time_rejection
from stream.settings import SettingsError, core_config, load_settings


@dataclass
class ReportResult:
    evaluation: Evaluation
    lines: int
    rejected: Counter[str] = field(default_factory=Counter)


def compute(
    lines: Iterable[bytes],
    config: CoreConfig | None = None,
    partitions: int = 1,
    at_ms: int | None = None,
    final: bool = False,
    received_ms: int | None = None,
) -> ReportResult:
    """Decode, route and apply every line; evaluate at the end of the stream.

    By default the result is what a live worker that consumed the same
    messages shows (the reference the pipeline is checked against): surveys
    still waiting for their ticket stream to pass them stay out. `final`
    attributes those too, for a finished export where nothing more will come.
    `received_ms` (default: now) stands in for the Kafka record timestamp the
    worker checks event times against (`stream.core.timeguard`).
    """
    cfg = config or CoreConfig()
    engines = [PartitionEngine(cfg, p) for p in range(partitions)]
    rejected: Counter[str] = Counter()
    received = received_ms if received_ms is not None else int(time.time() * 1000)
    n = 0
    for raw in lines:
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        n += 1
        event = decode(line)
        if isinstance(event, Rejection):
            rejected[event.code] += 1
            continue
        bad_time = time_rejection(event.ts, received, cfg.max_event_ahead_ms)
        if bad_time is not None:
            rejected[bad_time[0]] += 1
            continue
        p = partition_for(key_of(event), partitions) if partitions > 1 else 0
        engines[p].apply(role_of(event), event)
    if final:
        for eng in engines:
            eng.end_of_stream()
    return ReportResult(evaluate(engines, at_ms), n, rejected)


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(all)"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "+Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4f}"


def render_text(result: ReportResult, out: IO[str]) -> None:
    ev = result.evaluation
    at = format_ts(ev.at_ms) if ev.at_ms is not None else "-"
    out.write(f"cxpulse report at {at}: {result.lines} lines, ")
    out.write(f"{sum(result.rejected.values())} rejected\n")
    for code, count in sorted(result.rejected.items()):
        out.write(f"  rejected {code}: {count}\n")
    parked = sum(g.value for g in ev.gauges if g.name == "surveys_parked")
    if parked:
        out.write(f"  {parked:.0f} survey(s) wait for their ticket stream, as live; "
                  "--final counts them\n")
    for window in ev.windows:
        out.write(f"\n== window {window} ==\n")
        rows = [k for k in ev.kpis if k.window == window]
        width = max((len(k.name) for k in rows), default=10)
        for k in rows:
            line = f"{k.name:<{width}}  {_labels(dict(k.labels)):<28} {_num(k.value):>14}"
            if k.n is not None:
                line += f"  n={k.n}"
            if k.ci_low is not None:
                line += f"  95%=[{_num(k.ci_low)}, {_num(k.ci_high)}]"
            if k.below_min_sample:
                line += "  (below min sample)"
            out.write(line + "\n")
    out.write("\n== gauges ==\n")
    for s in ev.gauges:
        out.write(f"{s.name:<32} {_labels(dict(s.labels)):<36} {_num(s.value):>14}\n")
    out.write("\n== all-time counters ==\n")
    for s in ev.counters:
        out.write(f"{s.name:<32} {_labels(dict(s.labels)):<36} {_num(s.value):>14}\n")
    for h in ev.histograms:
        buckets = " ".join(f"le{_num(b)}:{c}" for b, c in h.buckets)
        out.write(f"{h.name} {_labels(dict(h.labels))} count={h.count} sum={_num(h.sum)} "
                  f"{buckets}\n")  # fmt: skip


def to_json(result: ReportResult) -> dict[str, Any]:
    ev = result.evaluation

    def bound(b: float) -> float | str:
        return "+Inf" if math.isinf(b) else b

    return {
        "at": format_ts(ev.at_ms) if ev.at_ms is not None else None,
        "at_ms": ev.at_ms,
        "lines": result.lines,
        "rejected": dict(sorted(result.rejected.items())),
        "windows": list(ev.windows),
        "kpis": [
            {
                "name": k.name, "window": k.window, "labels": dict(k.labels), "value": k.value,
                "n": k.n, "ci_low": k.ci_low, "ci_high": k.ci_high,
                "below_min_sample": k.below_min_sample,
            }
            for k in ev.kpis
        ],
        "gauges": [{"name": s.name, "labels": dict(s.labels), "value": s.value}
                   for s in ev.gauges],
        "counters": [{"name": s.name, "labels": dict(s.labels), "value": s.value}
                     for s in ev.counters],
        "histograms": [
            {"name": h.name, "labels": dict(h.labels), "count": h.count, "sum": h.sum,
             "buckets": [[bound(b), c] for b, c in h.buckets]}
            for h in ev.histograms
        ],
    }


def _at(text: str) -> int:
    ts = parse_ts(text)
    if isinstance(ts, Rejection):
        raise argparse.ArgumentTypeError(ts.message.replace("field 'ts'", "--at"))
    return ts


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return n


def _config(args: argparse.Namespace) -> CoreConfig:
    """The worker's KPI definitions: same settings file, environment and targets file,
    so a report of an export is comparable with the live metrics."""
    overrides = {"targets_file": args.targets} if args.targets else {}
    settings = load_settings(args.config or os.environ.get("CXPULSE_CONFIG"), None, overrides)
    return core_config(settings)


def run(args: argparse.Namespace) -> int:
    try:
        handle = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        print(f"cxpulse report: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        config = _config(args)
    except SettingsError as exc:
        print(f"cxpulse report: bad setting: {exc}", file=sys.stderr)
        return 2
    with handle:
        result = compute(
            handle, partitions=args.partitions, at_ms=args.at, config=config, final=args.final,
            received_ms=args.received_at,
        )
    if args.json:
        json.dump(to_json(result), sys.stdout, ensure_ascii=False, sort_keys=True)
        sys.stdout.write("\n")
    else:
        render_text(result, sys.stdout)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="every KPI of a JSONL event file (the batch reference)",
        description="Decode a JSONL file of contract-v1 events, route them to partitions "
        "like Kafka would, and print every KPI per window and dimension at the end.",
    )
    parser.add_argument("file", metavar="FILE", help="JSONL events, one per line ('-' = stdin)")
    parser.add_argument(
        "--partitions", type=_positive, default=1,
        help="number of source partitions to route to (murmur2 of the key, as Kafka)",
    )  # fmt: skip
    parser.add_argument(
        "--at", type=_at, default=None, metavar="TIMESTAMP",
        help="RFC 3339 time to evaluate at (default: the largest event time)",
    )  # fmt: skip
    parser.add_argument(
        "--received-at", type=_at, default=None, metavar="TIMESTAMP",
        help="when the events were received, for the event-time bound (default: now); events "
        "stamped more than max_event_ahead (1h) after it are rejected as timestamp_ahead",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--config", metavar="YAML",
        help="worker settings file (windows, slice, lateness, label caps, targets_file); "
        "CXPULSE_* variables apply as for the worker",
    )  # fmt: skip
    parser.add_argument(
        "--final", action="store_true",
        help="also attribute surveys still waiting for their ticket stream (a finished "
        "export); without it the report equals what a live worker shows",
    )  # fmt: skip
    parser.add_argument(
        "--targets", metavar="YAML", help="targets file (FRT target, min sample), e.g. targets.yaml"
    )
    parser.set_defaults(func=run)

