"""Peak RSS and changelog bytes of one worker fed the hostile volumes of issue 10.

Inputs (each on fresh topics, one `cxpulse worker`, 4 partitions):

* `labels`: 5,000 team names and 20,000 agents within 10 minutes (40,000 events);
* `ticket`: one ticket with 20,000 events;
* `tickets`: 1,000 tickets x 1,000 events (1,000,000 events, interleaved).

Before values were split into parts each of these crash-looped the worker
(one state record past 1 MB), and 1,000 x 1,000 wrote a 3.7 GB changelog
(each ticket's whole history rewritten per batch). Reported per input: the
worker's peak RSS (VmHWM), changelog records and bytes (keys + values, read
back), bytes per input event, the largest record, whether every message is
accounted for (consumed = applied + duplicate + late + dead-lettered), and
the wall time to consume everything (informational: a shared machine).

Usage:
    .venv/bin/python bench/bench_hostile_volume.py [--bootstrap-servers H:P]
        [--inputs labels,ticket,tickets] [--runtime direct|faust]
Without --bootstrap-servers a throw-away broker is started (cxpulse.kafka.broker).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.kafka_setup import broker, create_topics  # noqa: E402
from tests.integration.test_worker_pipeline import (  # noqa: E402
    Topics,
    WorkerProc,
    read_topic,
    replay,
    totals,
)
from tests.support.hostile_volume import (  # noqa: E402
    changelog_stats,
    long_tickets,
    many_labels,
    peak_rss_bytes,
    write_lines,
)


def inputs(name: str, scale: float = 1.0) -> Iterable[bytes]:
    def n(x: int) -> int:
        return max(2, int(x * scale))

    if name == "labels":
        return many_labels(n(5_000), n(20_000))
    if name == "ticket":
        return long_tickets(1, n(20_000))
    if name == "tickets":
        return long_tickets(n(1_000), n(1_000), step_ms=10)
    raise SystemExit(f"unknown input {name!r}")


def run_one(
    bootstrap: str, workdir: Path, name: str, runtime: str, scale: float = 1.0
) -> dict[str, object]:
    path = write_lines(workdir / f"{name}.jsonl", inputs(name, scale))
    with path.open("rb") as f:
        n = sum(1 for _ in f)
    suffix = uuid.uuid4().hex[:8]
    topics = Topics(f"hv.tickets.{suffix}", f"hv.surveys.{suffix}", f"hv.dl.{suffix}",
                    f"hv-{suffix}")  # fmt: skip
    asyncio.run(create_topics(bootstrap, [topics.tickets, topics.surveys, topics.deadletter]))
    replay(path, bootstrap, topics)
    w = WorkerProc(bootstrap, topics, workdir, f"w-{name}", runtime=runtime).start()
    t0 = time.monotonic()
    try:
        while True:
            t = totals([w])  # raises if the worker exited
            if t.consumed >= n:
                break
            time.sleep(1.0)
        elapsed = time.monotonic() - t0
        time.sleep(1.5)
        t = totals([w])
        assert w.proc is not None
        rss = peak_rss_bytes(w.proc.pid)
        rc = w.stop()
    finally:
        w.stop()
    accounted = sum(t.outcomes.values()) + sum(t.deadletters.values())
    stats = changelog_stats(read_topic(bootstrap, topics.changelog))
    return {
        "input": name,
        "events": n,
        "exit": rc,
        "accounted": t.consumed == n == accounted,
        "rss_mb": rss / 1e6,
        "records": stats.records,
        "changelog_mb": stats.bytes / 1e6,
        "bytes_per_event": stats.bytes / n,
        "largest": stats.largest,
        "parts": stats.part_records,
        "seconds": elapsed,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap-servers", dest="bootstrap")
    ap.add_argument("--inputs", default="labels,ticket,tickets")
    ap.add_argument("--runtime", default="direct", choices=("direct", "faust"))
    ap.add_argument("--scale", type=float, default=1.0, help="input sizes times this")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cxpulse-hv-"))
    try:
        with broker(args.bootstrap) as bootstrap:
            print(f"runtime {args.runtime}, 4 partitions, max_record_bytes default (262144)")
            print("| input | events | exit | accounted | peak RSS | changelog records | "
                  "changelog | bytes/event | largest record | part records | time |")  # fmt: skip
            print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
            for name in args.inputs.split(","):
                r = run_one(bootstrap, workdir, name, args.runtime, args.scale)
                print(
                    f"| {r['input']} | {r['events']:,} | {r['exit']} | {r['accounted']} | "
                    f"{r['rss_mb']:.0f} MB | {r['records']:,} | {r['changelog_mb']:.1f} MB | "
                    f"{r['bytes_per_event']:.0f} B | {r['largest']:,} B | {r['parts']:,} | "
                    f"{r['seconds']:.0f} s |",
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
