"""`make bench`: every benchmark on one private broker, written to docs/benchmarks.md.

Why one runner: a figure in docs/benchmarks.md is only worth something if
anyone can reproduce it, so the file is generated, never hand-edited: each
section carries the commit, the exact command, the machine (cores, CPU,
Python) and the load average sampled while that benchmark ran (the machines
are shared: absolute figures drift with the load, so the goals are read from
ratios to baselines measured in the same run, which each script prints).

Benchmarks run one at a time (they share the cores with the broker). The
alert-quality run (`bench/bench_alerts.py`, docs/alerts.md) is not a speed
benchmark and is not run here.

Usage:
    .venv/bin/python bench/run_all.py [--only worker,core,...] [--out docs/benchmarks.md]
        [--smoke] [--bootstrap-servers HOST:PORT]
`--smoke` runs each script at a tiny size (seconds each) to check it still works;
its figures mean nothing, so it writes to --out only when one is given.

Each section names the commit and time of its own run, and `--only` replaces just
those sections of the existing page (the others keep theirs): a quiet quarter of an
hour is enough to refresh the benchmarks a change concerns, and no section ever
shows figures of another commit than the one it names. Anything else on the page
is dropped: hand-run A/B records belong in docs/benchmark-history.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.kafka_setup import broker  # noqa: E402


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    title: str
    what: str
    args: tuple[str, ...] = ()
    smoke: tuple[str, ...] = ()
    broker: bool = False


BENCHES = (
    Bench(
        "worker", "bench_worker.py", "Worker end to end",
        "Events/s of one `cxpulse worker` (every KPI) on the busy day, against a raw "
        "aiokafka consumer that only parses JSON (the baseline) and a Quix Streams peer "
        "computing a subset of the KPIs (`bench/quix_peer.py`, its docstring says which), "
        "all in the same run. Goals (issue 22) are read from the ratio columns.",
        smoke=("--tickets-per-day", "300", "--span", "2h", "--runtimes", "direct",
               "--stores", "memory", "--no-fencing-cost"),
        broker=True,
    ),
    Bench(
        "core", "bench_core.py", "KPI core in process",
        "`PartitionEngine.apply` events/s on the busy day (default GC and with "
        "`gc.freeze()`), per number of windows, `evaluate()` cold/warm and `drain_dirty`, "
        "one core, no Kafka.",
        smoke=("--scale", "0.01", "--passes", "1"),
    ),
    Bench(
        "memory", "bench_memory.py", "Memory per open ticket",
        "RSS slope per open ticket between 20,000 and 100,000 open tickets (each count in "
        "a fresh process) of the core engine as the worker drives it and of the exporter's "
        "replica fed the same tickets' changelog values; then bytes per ticket by structure "
        "(a `sys.getsizeof` walk). Goals (issue 22): 1,024 B core, 512 B replica.",
        args=("--breakdown",),
        smoke=("--smoke", "--breakdown"),
    ),
    Bench(
        "scaling", "bench_scaling.py", "Cost as open tickets grow",
        "A fixed probe (4,000 tickets, 20,000 events, applied and drained as the worker "
        "does) on top of 1k, 10k, 100k and 1M held open tickets, each in a fresh process: "
        "CPU us per event and its ratio to the smallest count (flat = 1.0) under the "
        "worker's garbage-collector policy (`cxpulse.heap`), and under the interpreter's "
        "default collector (which no cxpulse process runs: its full collections walk every "
        "held ticket), RSS per open ticket and its slope, one `evaluate()` of the held "
        "tickets and its slope.",
        smoke=("--smoke",),
    ),
    Bench(
        "decode", "bench_decode.py", "Decoding and validation",
        "`decode` (contract checks, RFC 3339 parsing, event construction) on the busy day "
        "against bare `json.loads` of the same bytes and against decode's checked path alone "
        "(the decoder before its msgspec fast path), in the same process (the ratios are the "
        "figures).",
        smoke=("--passes", "1", "--tickets-per-day", "100"),
    ),
    Bench(
        "hostile", "bench_hostile.py", "One ticket in hostile order (core)",
        "Events/s of one ticket's N events in order vs newest first (batched): the cost "
        "per event must not grow with N.",
        smoke=("--sizes", "200"),
    ),
    Bench(
        "hostile_volume", "bench_hostile_volume.py", "Hostile volumes (worker)",
        "Peak RSS and changelog bytes per event of one worker fed 5,000 teams / 20,000 "
        "agents, one 20,000-event ticket, 1,000 x 1,000 events.",
        smoke=("--scale", "0.01", "--inputs", "labels,ticket"),
        broker=True,
    ),
    Bench(
        "changelog", "bench_changelog.py", "Changelog bytes per event (in process)",
        "Bytes and records the direct worker's write path (`handle_message`, "
        "`drain_dirty`, `PartitionStore.batch_writes`) writes per input event: busy day in "
        "batches of 20,000, live (batches of 250), a trickle of single-event commits, a "
        "20,000-event ticket in order vs reversed; restore CPU time per million open "
        "tickets; bytes the broker stores per producer compression codec (the producer's "
        "record batches, checked against a real broker's log with `--broker-events`). "
        "Deterministic (no broker); `--compare-pythonpath` adds another "
        "checkout's code as the baseline in the same run.",
        smoke=("--smoke",),
    ),
    Bench(
        "scrape", "bench_scrape.py", "Scrape load vs consumption",
        "Catch-up time of a 3-day backlog, quiet vs four clients scraping every endpoint "
        "of the worker and the exporter (the ratio is the figure).",
        smoke=("--rounds", "1", "--tickets-per-day", "100"),
        broker=True,
    ),
    Bench(
        "latency", "bench_latency.py", "Produce to visible on the exporter",
        "Marker tickets through worker, changelog and exporter at a steady 5k events/s for "
        "60 s, Prometheus scraping the exporter every 15 s: latency p50/p99 and scrape "
        "times, evaluating on new state (the default) vs the old fixed 5 s tick "
        "(`eval_min_interval=5s`) in the same run (the ratio is the figure).",
        smoke=("--rate", "300", "--seconds", "3", "--tickets-per-day", "20000"),
        broker=True,
    ),
    Bench(
        "evaluation", "bench_evaluation.py", "Exporter evaluation per 1k series",
        "What `cxpulse exporter` spends per evaluation on the state of a busy day (20,000 "
        "tickets, 24 h, 4 partitions, loaded into replicas): evaluate, render and the text "
        "format, cold (after a restart) and warm (a slice later), and the collapse evidence "
        "alone; per 1k series served. `--baseline-root` adds another checkout in the same run.",
        smoke=("--hours", "1", "--tickets-per-day", "300", "--reps", "1", "--warm", "1"),
    ),
    Bench(
        "ingest", "bench_ingest.py", "Helpdesk webhook gateway",
        "Deliveries/s and CPU per delivery of `cxpulse ingest` against a bare aiohttp "
        "handler producing the body unchanged, alternating (it starts its own broker).",
        args=("--deliveries", "10000", "--runs", "3"),
        smoke=("--deliveries", "200", "--runs", "1"),
    ),
)


class LoadSampler:
    """1-minute load average sampled every 2 s while a benchmark runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(2.0)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        s = self.samples or [os.getloadavg()[0]]
        return f"{min(s):.2f} to {max(s):.2f} (mean {sum(s) / len(s):.2f})"


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip()


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.machine()}, {cpu}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")  # fmt: skip


def run_one(b: Bench, bootstrap: str | None, smoke: bool) -> tuple[str, str, int, float, str]:
    """(command shown, output, exit code, seconds, load summary) of one benchmark."""
    args = [*(b.smoke if smoke else b.args)]
    cmd = [sys.executable, str(ROOT / "bench" / b.script), *args]
    shown = " ".join([".venv/bin/python", f"bench/{b.script}", *args])
    if b.broker and bootstrap is not None:
        cmd += ["--bootstrap-servers", bootstrap]
    t0 = time.monotonic()
    with LoadSampler() as load:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    secs = time.monotonic() - t0
    text = out.stdout if out.returncode == 0 else out.stdout + "\n" + out.stderr[-3000:]
    return shown, text.strip(), out.returncode, secs, load.summary()


def heading(b: Bench) -> str:
    return f"## {b.title} (`bench/{b.script}`)"


def section(b: Bench, shown: str, text: str, rc: int, secs: float, load: str,
            stamp: str) -> str:  # fmt: skip
    where = " (on the run's private broker)" if b.broker else ""
    lines = [heading(b), "", b.what, "", stamp, "",
             f"Command: `{shown}`{where}. Load average during the run: {load}; {secs:.0f} s.",
             ""]  # fmt: skip
    if rc != 0:
        lines += [f"**Failed (exit {rc})**:", ""]
    if text.count("\n|") >= 2 and rc == 0:  # the script printed a markdown table
        lines += [text]
    else:
        lines += ["```text", text, "```"]
    return "\n".join(lines) + "\n"


def kept_sections(page: Path) -> dict[str, str]:
    """The sections of an existing page by heading (only those of known benchmarks)."""
    if not page.exists():
        return {}
    known = {heading(b) for b in BENCHES}
    parts = re.split(r"^(?=## )", page.read_text(), flags=re.MULTILINE)
    found = {p.splitlines()[0]: p.rstrip("\n") + "\n" for p in parts if p.startswith("## ")}
    return {h: text for h, text in found.items() if h in known}


def not_run(b: Bench) -> str:
    return (f"{heading(b)}\n\n{b.what}\n\nNot run since this page was last regenerated: "
            f"`make bench BENCH={b.name}`. Earlier records: docs/benchmark-history.md.\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated: " + ",".join(b.name for b in BENCHES))
    ap.add_argument("--out", help="default: docs/benchmarks.md (none with --smoke)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: does each script run?")
    ap.add_argument("--bootstrap-servers", dest="bootstrap", help="an existing broker")
    args = ap.parse_args()
    chosen = [b for b in BENCHES if not args.only or b.name in args.only.split(",")]
    if args.only and len(chosen) != len(args.only.split(",")):
        print(f"--only: known benchmarks are {', '.join(b.name for b in BENCHES)}",
              file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args.out) if args.out else (None if args.smoke else ROOT / "docs/benchmarks.md")
    # the page itself is not a local change of the code measured (a run of several
    # `--only` rounds writes it between them)
    commit = git("rev-parse", "--short", "HEAD") + (" (+ local changes)" if git(
        "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/benchmarks.md")
        else "")  # fmt: skip
    sections = kept_sections(out) if out is not None else {}
    failed = 0
    with broker(args.bootstrap if any(b.broker for b in chosen) else "unused") as bootstrap:
        for b in chosen:
            print(f"bench {b.name} ...", file=sys.stderr, flush=True)
            shown, text, rc, secs, load = run_one(b, bootstrap, args.smoke)
            print(f"bench {b.name}: exit {rc}, {secs:.0f} s", file=sys.stderr, flush=True)
            failed += rc != 0
            started = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=secs)
            stamp = f"Commit {commit}, {started:%Y-%m-%d %H:%M} UTC; {machine()}."
            sections[heading(b)] = section(b, shown, text, rc, secs, load, stamp)
            if out is not None:  # written after each one: a stopped run keeps what it did
                write_page(out, sections)
    if out is not None:
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(page(sections))
    return 1 if failed else 0


def page(sections: dict[str, str]) -> str:
    head = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run_all.py`); do not edit by hand: every figure",
        "here was produced by the command above it, at the commit its section names.",
        "`make bench BENCH=worker,latency` refreshes only those sections. Hand-run A/B",
        "records of branches (what each change bought, measured against its base in the",
        "same run) are in [benchmark-history.md](benchmark-history.md).",
        "",
        "Each section names its commit, time and machine, and its load average says how",
        "busy the shared machine was. Absolute figures drift with that load: read the",
        "goals from the ratios to the baselines each benchmark measures in the same run.",
        "",
    ]
    body = [sections.get(heading(b)) or not_run(b) for b in BENCHES]
    return "\n".join(head) + "\n" + "\n".join(body)


def write_page(out: Path, sections: dict[str, str]) -> None:
    out.write_text(page(sections))


if __name__ == "__main__":
    sys.exit(main())
