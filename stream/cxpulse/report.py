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
import contextlib
import csv
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode, format_ts, parse_ts
from cxpulse.core.durations import DurationError, parse_duration_ms, window_label
from cxpulse.core.engine import Evaluation, PartitionEngine, evaluate
from cxpulse.core.events import key_of, role_of
from cxpulse.core.partitioning import partition_for
from cxpulse.core.timeguard import time_rejection
from cxpulse.mixin import tiles as tl
from cxpulse.settings import SettingsError, core_config, load_settings

#: No line of the input was a valid event (a CSV or gzip file given by mistake).
EXIT_NO_VALID_LINE = 3
GZIP_MAGIC = b"\x1f\x8b"
MARK = {tl.OK: "ok", tl.WARN: "near", tl.BAD: "MISS", tl.LOW_SAMPLE: "few", tl.NO_DATA: "",
        tl.INFO: ""}


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
    worker checks event times against (`cxpulse.core.timeguard`).
    """
    cfg = config or CoreConfig()
    engines = [PartitionEngine(cfg, p) for p in range(partitions)]
    rejected: Counter[str] = Counter()
    received = received_ms if received_ms is not None else int(time.time() * 1000)
    n = 0
    with contextlib.ExitStack() as batches:  # the whole input is one batch per engine
        for eng in engines:
            batches.enter_context(eng.batch())
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
            outcome = engines[p].apply(role_of(event), event)
            if isinstance(outcome, Rejection):  # refused like the worker does (ticket_event_cap)
                rejected[outcome.code] += 1
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


def _human(name: str, value: float | None) -> str:
    """Durations as people read them (`42m 17s`); JSON and CSV keep seconds."""
    if value is not None and name.endswith("_seconds") and not math.isinf(value):
        return tl.human_duration(value)
    if value is not None and not math.isinf(value) and value != int(value):
        return f"{value:.3f}"
    return _num(value)


def _core_team(labels: dict[str, str]) -> str | None:
    """The team of a team roll-up series (other dimensions at `all`), or None."""
    if set(labels) - {"team", "threshold"}:
        return None
    return labels.get("team", tl.ORG)


def summary_rows(result: ReportResult, targets: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """Headline KPIs per team (the wall's tiles) with their colour against the targets."""
    ev = result.evaluation
    found: dict[tuple[str, str | None, str, str], tuple[float | None, int | None]] = {}
    for k in ev.kpis:
        team = _core_team(dict(k.labels))
        if team is not None:
            found[(k.name, k.window, team, dict(k.labels).get("threshold", ""))] = (k.value, k.n)
    for g in ev.gauges:
        team = _core_team(dict(g.labels))
        if team is not None:
            found[(g.name, None, team, dict(g.labels).get("threshold", ""))] = (g.value, None)
    teams = sorted({key[2] for key in found} - {tl.ORG})
    rows = []
    for team in [tl.ORG, *teams]:
        cells = []
        for tile in tl.tiles(targets):
            value, n = found.get((tile.core_name, tile.core_window, team,
                                  tile.core_labels.get("threshold", "")), (None, None))
            count: float | None = n
            if tile.core_n_name:  # a count of tickets past their deadline, in the value too
                count = found.get((tile.core_n_name, None, team, ""), (None, None))[0]
                if value is not None and count is not None:
                    value += count
            colour = tile.colour(value, count, team)
            cells.append((tile.format(value), MARK[colour]))
        rows.append(("Organisation" if team == tl.ORG else team, cells))
    return rows


def render_summary(result: ReportResult, targets: Any, out: IO[str],
                   team: str | None = None) -> None:
    columns = tl.tiles(targets)
    rows = [r for r in summary_rows(result, targets)
            if team is None or r[0] == team or (team == tl.ORG and r[0] == "Organisation")]
    out.write("== summary: headline KPIs per team against targets ==\n")
    widths = [max(len(c.title), 11) for c in columns]
    out.write(f"{'team':<14}" + "".join(f"{c.title:>{w + 2}}" for c, w in
                                         zip(columns, widths, strict=True)) + "\n")
    for name, cells in rows:
        line = f"{name:<14}"
        for (text, mark), w in zip(cells, widths, strict=True):
            cell = f"{text} {mark}".strip() if mark else text
            line += f"{cell:>{w + 2}}"
        out.write(line + "\n")
    out.write("targets: " + ", ".join(
        f"{c.title} {'<=' if c.kind == 'ceiling' else '>='} {c.format(c.target())}"
        for c in columns if c.kind != "info" and c.target() is not None))
    out.write(f"; few = fewer than the minimum sample ({targets.min_sample} survey "
              f"responses / first solves, {targets.frt.min_count} first responses)\n\n")


def _keep(labels: dict[str, str], team: str | None) -> bool:
    if team is None:
        return True
    if team == tl.ORG:
        return "team" not in labels
    return labels.get("team") == team


def render_text(result: ReportResult, out: IO[str], window: str | None = None,
                team: str | None = None) -> None:
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
    for w in ev.windows:
        if window is not None and w != window:
            continue
        out.write(f"\n== window {w} ==\n")
        rows = [k for k in ev.kpis if k.window == w and _keep(dict(k.labels), team)]
        width = max((len(k.name) for k in rows), default=10)
        for k in rows:
            line = f"{k.name:<{width}}  {_labels(dict(k.labels)):<28} {_human(k.name, k.value):>14}"
            if k.n is not None:
                line += f"  n={k.n}"
            if k.ci_low is not None:
                line += f"  95%=[{_human(k.name, k.ci_low)}, {_human(k.name, k.ci_high)}]"
            if k.below_min_sample:
                line += "  (below min sample)"
            out.write(line + "\n")
    if window is not None:
        return
    out.write("\n== gauges ==\n")
    for s in ev.gauges:
        if _keep(dict(s.labels), team):
            out.write(f"{s.name:<32} {_labels(dict(s.labels)):<36} "
                      f"{_human(s.name, s.value):>14}\n")
    out.write("\n== all-time counters ==\n")
    for s in ev.counters:
        if _keep(dict(s.labels), team):
            out.write(f"{s.name:<32} {_labels(dict(s.labels)):<36} {_num(s.value):>14}\n")
    for h in ev.histograms:
        if not _keep(dict(h.labels), team):
            continue
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


def write_csv(result: ReportResult, out: IO[str], window: str | None = None,
              team: str | None = None) -> None:
    """One row per windowed KPI: spreadsheet-friendly, values in base units."""
    dims = ("team", "channel", "priority", "agent", "touchpoint")
    writer = csv.writer(out)
    writer.writerow(["kpi", "window", *dims, "value", "n", "ci_low", "ci_high"])
    for k in result.evaluation.kpis:
        labels = dict(k.labels)
        if (window is not None and k.window != window) or not _keep(labels, team):
            continue
        writer.writerow([k.name, k.window, *(labels.get(d, "all") for d in dims),
                         "" if k.value is None else k.value, "" if k.n is None else k.n,
                         "" if k.ci_low is None else k.ci_low,
                         "" if k.ci_high is None else k.ci_high])


def _with_progress(handle: Any, enabled: bool) -> Iterator[bytes]:
    """Lines of the input, with a byte progress bar on stderr for files worth waiting for."""
    size = 0
    with contextlib.suppress(OSError, AttributeError, ValueError):
        size = os.fstat(handle.fileno()).st_size
    if not enabled or size < 20_000_000:
        yield from handle
        return
    from tqdm import tqdm

    with tqdm(total=size, unit="B", unit_scale=True, file=sys.stderr,
              desc="report", dynamic_ncols=True) as bar:
        for line in handle:
            bar.update(len(line))
            yield line


def _at(text: str) -> int:
    ts = parse_ts(text)
    if isinstance(ts, Rejection):
        raise argparse.ArgumentTypeError(ts.message.replace("field 'ts'", "--at"))
    return ts


def _window(text: str) -> str:
    """`--window 1d` or `60m`: the engine's label of that window (`24h`, `1h`), read with
    the project's one duration format, so any spelling of a window selects it."""
    try:
        return window_label(parse_duration_ms(text))
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    windows = [window_label(w) for w in config.windows_ms]
    if args.window is not None and args.window not in windows:
        print(f"cxpulse report: --window {args.window}: the configured windows are "
              f"{', '.join(windows)}", file=sys.stderr)
        return 2
    with handle:
        head = handle.peek(2)[:2] if hasattr(handle, "peek") else b""
        show = args.progress or sys.stderr.isatty()
        result = compute(
            _with_progress(handle, show), partitions=args.partitions, at_ms=args.at,
            config=config, final=args.final,
            received_ms=args.received_at,
        )
    if result.lines and sum(result.rejected.values()) == result.lines:
        hint = ("it is gzip-compressed: `zcat FILE | cxpulse report -`" if head == GZIP_MAGIC
                else "is it a JSONL export of contract-v1 events (not CSV or another format)?")
        codes = ", ".join(f"{c} {n}" for c, n in result.rejected.most_common(3))
        print(f"cxpulse report: no valid event in {args.file} ({result.lines} lines rejected: "
              f"{codes}); {hint}", file=sys.stderr)
        return EXIT_NO_VALID_LINE
    if args.json:
        json.dump(to_json(result), sys.stdout, ensure_ascii=False, sort_keys=True)
        sys.stdout.write("\n")
    elif args.csv:
        write_csv(result, sys.stdout, args.window, args.team)
    else:
        render_summary(result, _targets_of(args), sys.stdout, args.team)
        render_text(result, sys.stdout, args.window, args.team)
    return 0


def _targets_of(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from cxpulse.core.targets import DEFAULT_TARGETS
    from cxpulse.mixin.command import load_targets

    path = args.targets or ("targets.yaml" if Path("targets.yaml").is_file() else None)
    return load_targets(Path(path)) if path else DEFAULT_TARGETS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="every KPI of a JSONL event file (the batch reference)",
        description="Decode a JSONL file of contract-v1 events, route them to partitions "
        "like Kafka would, and print a summary per team against targets, then every KPI "
        "per window and dimension. Exit codes: 0 ok, 2 bad option or file, "
        f"{EXIT_NO_VALID_LINE} no line of the input is a valid event.",
        epilog="examples: cxpulse report day.jsonl --team tech --window 1h   |   "
        "cxpulse report day.jsonl --csv > kpis.csv   |   zcat day.jsonl.gz | cxpulse report -",
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
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true",
                     help="machine-readable output (every series, durations in seconds)")
    out.add_argument("--csv", action="store_true",
                     help="windowed KPIs as CSV (one row per KPI and dimension; seconds)")
    parser.add_argument("--window", metavar="W", default=None, type=_window,
                        help="only this window (e.g. 1h) in text and CSV output")
    parser.add_argument("--team", metavar="TEAM", default=None,
                        help="only this team ('all' = the organisation roll-up)")
    parser.add_argument("--progress", action="store_true",
                        help="progress bar on stderr (default: when stderr is a terminal "
                        "and the file is over 20 MB)")
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

