"""End-to-end throughput of one `cxpulse worker` against a raw consumer, same run.

Why three numbers: the raw aiokafka consumer is the ceiling the broker and the
client library allow on this machine; the in-process core (decode + apply +
drain, no Kafka) is the CPU ceiling of the KPI logic; the worker number is
what a deployment gets (faust, batching, durable changelog writes included).
A regression shows up as a drop of the worker relative to the two others.

Usage:
    .venv/bin/python bench/bench_worker.py [--bootstrap-servers HOST:PORT] [--tickets-per-day N]
Without --bootstrap a throw-away broker is started with cxpulse.kafka.broker.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxpulse.core.config import CoreConfig  # noqa: E402
from cxpulse.core.decode import Rejection, decode  # noqa: E402
from cxpulse.core.engine import PartitionEngine  # noqa: E402
from cxpulse.core.events import key_of, role_of  # noqa: E402
from cxpulse.core.partitioning import partition_for  # noqa: E402
from cxpulse.replay import read_lines  # noqa: E402

from bench.kafka_setup import PARTITIONS, broker, create_topics  # noqa: E402
from tests.integration.test_worker_pipeline import (  # noqa: E402
    Topics,
    WorkerProc,
    replay,
    simulate,
    totals,
)


async def raw_consume(bootstrap: str, topics: list[str], n: int) -> float:
    """Seconds for a plain aiokafka consumer to read n messages (values untouched)."""
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
    )
    await c.start()
    try:
        seen = 0
        t0: float | None = None
        while seen < n:
            batch = await c.getmany(timeout_ms=1000, max_records=5000)
            for recs in batch.values():
                if t0 is None and recs:
                    t0 = time.perf_counter()
                seen += len(recs)
        assert t0 is not None
        return time.perf_counter() - t0
    finally:
        await c.stop()


def core_only(lines: list[bytes], batch: int) -> float:
    """Seconds for decode + apply + one drain per `batch` events, in process."""
    config = CoreConfig()
    engines = {p: PartitionEngine(config, p) for p in range(PARTITIONS)}
    t0 = time.perf_counter()
    for i, value in enumerate(lines):
        event = decode(value)
        if not isinstance(event, Rejection):
            engines[partition_for(key_of(event), PARTITIONS)].apply(role_of(event), event)
        if i % batch == batch - 1:
            for e in engines.values():
                e.drain_dirty()
    for e in engines.values():
        e.drain_dirty()
    return time.perf_counter() - t0


def faust_noop(bootstrap: str, topics: list[str], n: int, batch: int) -> None:
    """(subprocess) faust agent doing nothing but take_events: faust's own ceiling."""
    from cxpulse.settings import load_settings
    from cxpulse.worker.app import create_app
    from faust.worker import Worker as FaustWorker

    datadir = tempfile.mkdtemp(prefix="cxpulse-noop-")
    settings = load_settings(
        env={},
        overrides={"bootstrap_servers": bootstrap, "group_id": f"noop-{uuid.uuid4().hex[:8]}",
                   "datadir": datadir, "store": "memory://", "session_timeout": "6s",
                   "heartbeat_interval": "1s", "log_level": "warning"},
    )  # fmt: skip
    app = create_app(settings)
    # raw serializers as in the worker (without them this agent stalls: faust
    # tries to decode the payloads with the app's default codec)
    source = app.topic(
        *topics, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    state = {"seen": 0, "t0": 0.0}

    async def agent(stream: Any) -> None:
        async for events in stream.take_events(batch, within=0.2):
            if state["seen"] == 0:
                state["t0"] = time.perf_counter()
            state["seen"] += len(events)
            if state["seen"] >= n:
                print(f"NOOP {time.perf_counter() - state['t0']:.3f}", flush=True)
                import os

                os._exit(0)

    app.agent(source, name="noop")(agent)
    FaustWorker(
        app, loglevel="warning", quiet=True, redirect_stdouts=False
    ).execute_from_commandline()


def run_faust_noop(bootstrap: str, topics: Topics, n: int, batch: int) -> float:
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, "--faust-noop", bootstrap, topics.tickets, topics.surveys,
         str(n), str(batch)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    for line in out.stdout.splitlines():
        if "NOOP " in line:  # after faust's terminal spinner codes
            return float(line.split("NOOP ", 1)[1].split()[0])
    raise RuntimeError(out.stdout[-2000:] + out.stderr[-2000:])


def peak_rss_mb(pid: int) -> float:
    """High-water resident memory of a process (Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_worker(
    bootstrap: str, topics: Topics, n: int, workdir: Path, runtime: str, *extra: str
) -> tuple[float, float]:
    """(seconds from the first consumed message to all n consumed and durable,
    the worker's peak RSS in MB)."""
    name = f"bench-{uuid.uuid4().hex[:6]}"
    w = WorkerProc(bootstrap, topics, workdir, name, *extra, runtime=runtime).start()
    try:
        t_first: float | None = None
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            c = totals([w]).consumed
            now = time.perf_counter()
            if c > 0 and t_first is None:
                t_first = now
            if c >= n:
                assert t_first is not None and w.proc is not None
                return now - t_first, peak_rss_mb(w.proc.pid)
            time.sleep(0.1)
        raise TimeoutError(w.log_text()[-3000:])
    finally:
        w.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap-servers", dest="bootstrap")
    ap.add_argument("--tickets-per-day", type=int, default=20000)
    ap.add_argument("--span", default="24h")
    ap.add_argument("--batch-size", type=int, default=20000)
    ap.add_argument("--runtimes", default="direct,faust", help="comma-separated: direct,faust")
    ap.add_argument("--faust-noop", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.faust_noop:
        b, t1, t2, n_, batch = args.faust_noop
        faust_noop(b, [t1, t2], int(n_), int(batch))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="cxpulse-bench-"))
    try:
        with broker(args.bootstrap) as bootstrap:
            return measure(args, bootstrap, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure(args: argparse.Namespace, bootstrap: str, workdir: Path) -> int:
    capture = simulate(workdir / "sim.jsonl", seed=1, span=args.span, per_day=args.tickets_per_day)
    lines = list(read_lines(capture))
    n = len(lines)
    suffix = uuid.uuid4().hex[:8]
    topics = Topics(
        f"bench.tickets.{suffix}", f"bench.surveys.{suffix}", f"bench.dl.{suffix}",
        f"bench-{suffix}",
    )  # fmt: skip
    asyncio.run(create_topics(bootstrap, [topics.tickets, topics.surveys, topics.deadletter]))
    replay(capture, bootstrap, topics)
    core_s = core_only(lines, args.batch_size)
    raw_s = asyncio.run(raw_consume(bootstrap, [topics.tickets, topics.surveys], n))
    results: list[tuple[str, float, float | None]] = [
        ("raw aiokafka consumer (no processing)", raw_s, None)
    ]
    print(f"raw {raw_s:.2f}s core {core_s:.2f}s", file=sys.stderr, flush=True)
    results.append(("core in process (decode+apply+drain, no Kafka)", core_s, None))
    noop_s = run_faust_noop(bootstrap, topics, n, args.batch_size)
    results.append((f"faust agent, take_events({args.batch_size}), no processing", noop_s, None))
    print(f"noop {noop_s:.2f}s", file=sys.stderr, flush=True)
    variants = [
        (runtime, store, ()) for runtime in args.runtimes.split(",")
        for store in ("rocksdb://", "memory://")
    ]  # fmt: skip
    if "direct" in args.runtimes:  # what zombie fencing costs
        variants.insert(2, ("direct", "memory://", ("--set", "transactional_writes=false")))
    for i, (runtime, store, more) in enumerate(variants):
        wt = Topics(
            topics.tickets, topics.surveys, topics.deadletter, f"{topics.group}-{i}"
        )  # a group (and changelog) of its own per worker
        secs, rss = run_worker(
            bootstrap, wt, n, workdir, runtime, "--store", store,
            "--set", f"batch_size={args.batch_size}", *more,
        )  # fmt: skip
        name = f"cxpulse worker, runtime {runtime}, {store}, batch {args.batch_size}"
        if more:
            name += ", " + more[-1]
        results.append((name, secs, rss))
        print(f"{name}: {secs:.2f}s {rss:.0f} MB", file=sys.stderr, flush=True)
    print(f"{n} messages ({args.span}, {args.tickets_per_day} tickets/day)")
    print("| pipeline | seconds | messages/s | share of raw consumer | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    for name, secs, rss in results:
        mem = f"{rss:.0f}" if rss is not None else "-"
        print(f"| {name} | {secs:.2f} | {n / secs:,.0f} | {raw_s / secs:.3f} | {mem} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
