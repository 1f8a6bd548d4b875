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
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any

from cxpulse.cliargs import Subcommands
from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode, format_ts, parse_ts
from cxpulse.core.durations import DurationError, parse_duration_ms, window_label
from cxpulse.core.engine import Evaluation, PartitionEngine, evaluate
from cxpulse.core.events import key_of, role_of
from cxpulse.core.partitioning import partition_for
from cxpulse.core.timeguard import time_rejection
from cxpulse.mixin import tiles as tl
from cxpulse.report import summary
from cxpulse.settings import SettingsError, core_config
from cxpulse.settings.flags import settings_from_args

#: No line of the input was a valid event (a CSV or gzip file given by mistake).
EXIT_NO_VALID_LINE = 3
GZIP_MAGIC = b"\x1f\x8b"
#: Windows of the summary when `--window` is not given: the day and the week.
DEFAULT_SUMMARY_WINDOWS = "24h,7d"


@dataclass
class ReportResult:
    evaluation: Evaluation
    lines: int
    rejected: Counter[str] = field(default_factory=Counter)
    #: Evaluations one window earlier, per window (ms) asked for with `previous_of`.
    previous: dict[int, Evaluation] = field(default_factory=dict)
    #: Smallest event time applied (None: no event), to tell a covered period.
    first_ms: int | None = None
    slice_ms: int = 60_000


def compute(
    lines: Iterable[bytes],
    config: CoreConfig | None = None,
    partitions: int = 1,
    at_ms: int | None = None,
    final: bool = False,
    received_ms: int | None = None,
    previous_of: Sequence[int] = (),
) -> ReportResult:
    """Decode, route and apply every line; evaluate at the end of the stream.

    By default the result is what a live worker that consumed the same
    messages shows (the reference the pipeline is checked against): surveys
    still waiting for their ticket stream to pass them stay out. `final`
    attributes those too, for a finished export where nothing more will come.
    `received_ms` (default: now) stands in for the Kafka record timestamp the
    worker checks event times against (`cxpulse.core.timeguard`). For each window
    in `previous_of` the engines are also evaluated one window earlier (the
    "vs previous period" column): `config.retention_ms` must cover two of them.
    """
    cfg = config or CoreConfig()
    engines = [PartitionEngine(cfg, p) for p in range(partitions)]
    rejected: Counter[str] = Counter()
    received = received_ms if received_ms is not None else int(time.time() * 1000)
    n = 0
    first: int | None = None
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
                continue
            first = event.ts if first is None else min(first, event.ts)
    if final:
        for eng in engines:
            eng.end_of_stream()
    current = evaluate(engines, at_ms)
    previous = {}
    if current.at_ms is not None:
        previous = {w: evaluate(engines, current.at_ms - w) for w in previous_of}
    return ReportResult(current, n, rejected, previous, first, cfg.slice_ms)


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


def _keep(labels: dict[str, str], team: str | None) -> bool:
    if team is None:
        return True
    if team == tl.ORG:
        return "team" not in labels
    return labels.get("team") == team


def render_text(result: ReportResult, out: IO[str], windows: Collection[str] | None = None,
                team: str | None = None) -> None:
    """Every series (`--all`): each KPI per window and dimension, gauges, counters."""
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
        if windows is not None and w not in windows:
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


def _unit(name: str) -> str:
    if name.endswith("_seconds"):
        return "seconds"
    if name in ("nps",):
        return "score"
    if name in RATIO_KPIS:
        return "ratio"
    return "count" if not name.endswith("_mean") else "score"


#: Shares between 0 and 1 (shown with 3 decimals, like the text).
RATIO_KPIS = frozenset({"frt_sla_compliance", "fcr", "reopen_rate", "csat", "ces"})


def _rounded(unit: str, value: float | None) -> str:
    """A value as the `--all` text shows it: whole seconds and counts, 3 decimals else."""
    if value is None:
        return ""
    if math.isinf(value):
        return "+Inf"
    if unit in ("seconds", "count"):
        return f"{value:.0f}"
    return f"{value:.3f}"


def write_csv(result: ReportResult, out: IO[str], windows: Collection[str] | None = None,
              team: str | None = None) -> None:
    """Every windowed KPI (`--csv --all`), one row each, rounded as the text shows it.

    Values are in the unit of the `unit` column (seconds, ratio 0-1, score, count)."""
    dims = ("team", "channel", "priority", "agent", "touchpoint")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["kpi", "window", *dims, "unit", "value", "n", "ci_low", "ci_high"])
    for k in result.evaluation.kpis:
        labels = dict(k.labels)
        if (windows is not None and k.window not in windows) or not _keep(labels, team):
            continue
        unit = _unit(k.name)
        writer.writerow([k.name, k.window, *(labels.get(d, "all") for d in dims), unit,
                         _rounded(unit, k.value), "" if k.n is None else k.n,
                         _rounded(unit, k.ci_low), _rounded(unit, k.ci_high)])


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


def _windows(text: str) -> list[int]:
    """`--window 24h,7d,30d`: windows in ms, read with the project's one duration format
    (`1d` and `24h` are the same window)."""
    out: list[int] = []
    for part in text.split(","):
        try:
            ms = parse_duration_ms(part.strip())
        except DurationError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if ms not in out:
            out.append(ms)
    return out


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return n


def _config(args: argparse.Namespace) -> CoreConfig:
    """The worker's KPI definitions: same settings file, environment and targets file,
    so a report of an export is comparable with the live metrics."""
    overrides = {"targets_file": args.targets} if args.targets else {}
    settings = settings_from_args(args, overrides)
    return core_config(settings)


def _report_config(config: CoreConfig, asked: Sequence[int]) -> CoreConfig:
    """The configured windows plus the asked ones, and a horizon window of twice the
    longest asked one: the engine keeps slices for its longest window only, and the
    previous period of a window reaches back two of them. `_without` hides the horizon."""
    windows = tuple(dict.fromkeys([*config.windows_ms, *asked, 2 * max(asked)]))
    return replace(config, windows_ms=windows,
                   retention_ms=max(config.retention_ms, 2 * max(asked)))


def _without(ev: Evaluation, hidden: str) -> Evaluation:
    """The evaluation without the horizon window's series."""
    return replace(ev, windows=tuple(w for w in ev.windows if w != hidden),
                   kpis=tuple(k for k in ev.kpis if k.window != hidden))


def _fail(message: str, code: int = 2) -> int:
    print(f"cxpulse report: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    try:
        handle = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror}")
    try:
        config = _config(args)
        targets = _targets_of(args)
    except (SettingsError, ValueError) as exc:
        return _fail(f"bad setting: {exc}")
    asked = args.window if args.window is not None else _windows(DEFAULT_SUMMARY_WINDOWS)
    for w in asked:
        if w % config.slice_ms:
            return _fail(f"--window {summary.window_text(w)}: not a whole number of "
                         f"{config.slice_ms // 1000} s slices")
    base_windows = config.windows_ms
    try:
        config = _report_config(config, asked)
    except ValueError as exc:
        return _fail(f"--window: {exc}")
    with handle:
        head = handle.peek(2)[:2] if hasattr(handle, "peek") else b""
        show = args.progress or sys.stderr.isatty()
        result = compute(
            _with_progress(handle, show), partitions=args.partitions, at_ms=args.at,
            config=config, final=args.final, received_ms=args.received_at, previous_of=asked,
        )
    if result.lines == 0:
        return _fail(f"no event in {args.file}: the input is empty", EXIT_NO_VALID_LINE)
    if sum(result.rejected.values()) == result.lines:
        hint = ("it is gzip-compressed: `zcat FILE | cxpulse report -`" if head == GZIP_MAGIC
                else "is it a JSONL file of contract v1.1 events, one per line (not CSV or a "
                     "helpdesk's own export: `cxpulse import` turns those into events)? "
                     "The contract: docs/contract.md")
        codes = ", ".join(f"{c} {n}" for c, n in result.rejected.most_common(3))
        return _fail(f"no valid event in {args.file} ({result.lines} lines rejected: "
                     f"{codes}); {hint}", EXIT_NO_VALID_LINE)
    horizon = window_label(2 * max(asked))
    if horizon not in [window_label(w) for w in (*base_windows, *asked)]:
        result = replace(result, evaluation=_without(result.evaluation, horizon),
                         previous={w: _without(e, horizon) for w, e in result.previous.items()})
    known = summary.teams(result.evaluation)
    if args.team is not None and args.team != tl.ORG and args.team not in known:
        return _fail(f"--team {args.team}: no such team in {args.file}; known teams: "
                     f"{', '.join(known) or '(none)'} (or '{tl.ORG}' for the organisation)")
    if args.json:
        json.dump(to_json(result), sys.stdout, ensure_ascii=False, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    labels = [window_label(w) for w in asked] if args.window is not None else None
    if args.all:
        if args.csv:
            write_csv(result, sys.stdout, labels, args.team)
        else:
            render_text(result, sys.stdout, labels, args.team)
        return 0
    periods = _periods(result, asked)
    if args.team is None:
        rows = [summary.ORG_ROW, *known]
    else:
        rows = [summary.ORG_ROW if args.team == tl.ORG else args.team]
    kpis = summary.lines(targets.frt.quantile)
    if args.csv:
        summary.write_csv(periods, rows, kpis, sys.stdout)
        return 0
    _header(result, asked, sys.stdout)
    summary.render(periods, rows, kpis, sys.stdout)
    n_series = len(result.evaluation.kpis) + len(result.evaluation.gauges)
    sys.stdout.write(f"every series ({n_series} KPIs and gauges, per channel, priority, "
                     "agent, touchpoint): --all; machine-readable: --json, --csv\n")
    return 0


def _periods(result: ReportResult, asked: Sequence[int]) -> list[summary.Period]:
    ev = result.evaluation
    assert ev.at_ms is not None and result.first_ms is not None
    end = ev.at_ms - ev.at_ms % result.slice_ms + result.slice_ms  # the windows' end
    out = []
    for w in asked:
        out.append(summary.Period(
            w, window_label(w), ev,
            result.previous.get(w) if result.first_ms <= end - 2 * w else None,
            result.first_ms <= end - w,
        ))
    return out


def _header(result: ReportResult, asked: Sequence[int], out: IO[str]) -> None:
    ev = result.evaluation
    at = format_ts(ev.at_ms) if ev.at_ms is not None else "-"
    rejected = sum(result.rejected.values())
    out.write(f"cxpulse report to {at[:16].replace('T', ' ')} UTC: {result.lines} lines"
              f"{f', {rejected} rejected (--all lists why)' if rejected else ''}\n")
    out.write("last W = the W before the report time; vs prev W = change from the W before "
              "that; n = sample size\n\n")


def _targets_of(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from cxpulse.core.targets import DEFAULT_TARGETS
    from cxpulse.mixin.command import load_targets

    path = args.targets or ("targets.yaml" if Path("targets.yaml").is_file() else None)
    return load_targets(Path(path)) if path else DEFAULT_TARGETS


def register(subparsers: Subcommands) -> None:
    parser = subparsers.add_parser(
        "report",
        help="KPIs of a JSONL event file per team, vs the previous period (the batch reference)",
        description="Decode a JSONL file of events of the event contract v1.1 "
        "(docs/contract.md), route them to partitions "
        "like Kafka would, and print per team the headline KPIs of each window ending at "
        "the report time, next to their change from the window before it; --all prints "
        "every series per window and dimension. Exit codes: 0 ok, 2 bad option, file or "
        f"team, {EXIT_NO_VALID_LINE} the input is empty or no line of it is a valid event.",
        epilog="examples: cxpulse report month.jsonl --window 7d,30d   |   "
        "cxpulse report day.jsonl --team tech   |   cxpulse report day.jsonl --csv > kpis.csv"
        "   |   zcat day.jsonl.gz | cxpulse report -",
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
                     help="the summary as CSV, one row per team and window, rounded as shown, "
                     "units in the column names; with --all every windowed KPI")
    parser.add_argument("--all", action="store_true",
                        help="every series (each KPI per window and dimension, gauges, "
                        "counters) instead of the summary")
    parser.add_argument("--window", metavar="W[,W...]", default=None, type=_windows,
                        help="windows of the summary, e.g. 24h,7d,30d (default: "
                        f"{DEFAULT_SUMMARY_WINDOWS}); with --all: only these windows")
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

