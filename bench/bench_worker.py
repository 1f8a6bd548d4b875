"""End-to-end throughput of one `cxpulse worker`, as ratios to baselines of the same run.

Rows, each process timed from its first consumed message to its last:

* baseline: a plain aiokafka consumer, `getmany` + `json.loads` of every value
  (the ceiling of a Python Kafka consumer on this machine; every goal of
  issue 22 is read as a ratio to it);
* peer: a Quix Streams application computing a subset of the KPIs
  (`bench/quix_peer.py`, optional group `bench`; skipped when not installed);
* the core in process (decode + apply + drain, no Kafka): the KPI logic alone;
* `cxpulse worker` per runtime and store, until its consumed counter
  (`/metrics/worker`) reaches every message: counted once a batch is applied,
  so the last batch's changelog write is not timed (with either runtime).

Input: `cxpulse simulate --seed 1 --duration SPAN --tickets-per-day N
--duplicates 0.03 --disorder 120 --malformed 0.01` replayed into 4-partition
topics (the busy day at the defaults: 24h, 20,000 tickets).

Usage:
    .venv/bin/python bench/bench_worker.py [--bootstrap-servers HOST:PORT]
        [--tickets-per-day N] [--span 24h] [--runtimes direct,faust]
        [--compare-pythonpath CHECKOUT [--reps 3]]
Without --bootstrap a throw-away broker is started with cxpulse.kafka.broker.

`--compare-pythonpath CHECKOUT` is the before/after A/B of a change: after the
baseline and the peer, the direct worker (memory store) of this checkout and
that of CHECKOUT (another clone or `git worktree`, e.g. of the parent commit;
its `stream/` is put first on the worker's PYTHONPATH) run alternately on the
same topics, `--reps` times each, and the ratio of each pair and their median
are printed; the other runtime's rows (`--runtimes direct,faust`, stores
from `--stores`) run once, before them. The benchmark's own code (and the
peer) are this checkout's. A quick A/B:
`bench_worker.py --runtimes direct --compare-pythonpath ../base --reps 3`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
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
from cxpulse.importer.replay import read_lines  # noqa: E402

from bench.kafka_setup import PARTITIONS, broker, create_topics  # noqa: E402
from tests.integration.test_worker_pipeline import (  # noqa: E402
    Topics,
    WorkerProc,
    replay,
    simulate,
    totals,
)


async def raw_consume(bootstrap: str, topics: list[str], n: int) -> float:
    """Seconds for a plain aiokafka consumer to read and `json.loads` n messages."""
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
                for r in recs:
                    with contextlib.suppress(ValueError):  # the malformed 1 %
                        json.loads(r.value)
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


def run_peer(bootstrap: str, topics: Topics, n: int) -> tuple[float, str] | None:
    """(seconds, note) of the Quix Streams peer, or None when quixstreams is not installed."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("quixstreams") is None:
        return None
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "quix_peer.py"), bootstrap, topics.tickets,
         topics.surveys, str(n)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    for line in out.stdout.splitlines():
        if line.startswith("PEER "):
            secs, late, windows, _bad = line.split()[1:5]
            share = int(late) / max(1, n)
            return float(secs), f"{share:.0%} of events dropped as late, {windows} windows"
    raise RuntimeError(out.stdout[-2000:] + out.stderr[-2000:])


def peak_rss_mb(pid: int) -> float:
    """High-water resident memory of a process (Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process used so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_worker(
    bootstrap: str,
    topics: Topics,
    n: int,
    workdir: Path,
    runtime: str,
    *extra: str,
    pythonpath: Path | None = None,
) -> tuple[float, float, float]:
    """(seconds from the first consumed message to all n consumed, the
    worker's peak RSS in MB, the CPU seconds it used meanwhile: far less
    sensitive to other processes' load than the seconds). `pythonpath`: run
    the cxpulse of that source directory instead of this checkout's."""
    name = f"bench-{uuid.uuid4().hex[:6]}"
    saved = os.environ.get("PYTHONPATH")
    if pythonpath is not None:  # WorkerProc's subprocess inherits the environment
        os.environ["PYTHONPATH"] = str(pythonpath)
    try:
        w = WorkerProc(bootstrap, topics, workdir, name, *extra, runtime=runtime).start()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        t_first: float | None = None
        cpu_first = 0.0
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            c = totals([w]).consumed
            now = time.perf_counter()
            assert w.proc is not None
            if c > 0 and t_first is None:
                t_first, cpu_first = now, cpu_seconds(w.proc.pid)
            if c >= n:
                assert t_first is not None
                cpu = cpu_seconds(w.proc.pid) - cpu_first
                return now - t_first, peak_rss_mb(w.proc.pid), cpu
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
    ap.add_argument("--stores", default="rocksdb,memory", help="comma-separated: rocksdb,memory")
    ap.add_argument("--no-fencing-cost", dest="fencing_cost", action="store_false",
                    help="skip the direct worker without transactional writes")
    ap.add_argument("--compare-pythonpath", type=Path, metavar="CHECKOUT",
                    help="A/B: alternate the direct worker of this checkout with CHECKOUT's")
    ap.add_argument("--reps", type=int, default=3, help="runs of each side with --compare")
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


#: a table row: name, seconds, peak RSS MB, note
Row = tuple[str, float | None, float | None, str]


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
    rows: list[Row] = []

    def row(name: str, secs: float | None, rss: float | None = None, note: str = "") -> None:
        rows.append((name, secs, rss, note))
        shown = "-" if secs is None else f"{secs:.2f}s"
        print(f"{name}: {shown} {note}", file=sys.stderr, flush=True)

    # floored like every row below: a tiny smoke run reads all in one fetch, < 1 ms
    raw_s = max(asyncio.run(raw_consume(bootstrap, [topics.tickets, topics.surveys], n)), 1e-3)
    row("**baseline**: aiokafka `getmany` + `json.loads`", raw_s, note="the ceiling")
    peer = run_peer(bootstrap, topics, n)
    peer_s = max(peer[0], 1e-3) if peer else None
    row("Quix Streams peer (`bench/quix_peer.py`)", peer_s,
        note=peer[1] if peer else "not installed (`pip install -e '.[bench]'`)")  # fmt: skip
    row("core in process (decode + apply + drain, no Kafka)", core_only(lines, args.batch_size))
    runtimes = args.runtimes.split(",")
    if "faust" in runtimes:
        noop = run_faust_noop(bootstrap, topics, n, args.batch_size)
        row(f"faust agent, `take_events({args.batch_size})`, no processing", noop,
            note="faust's own ceiling")  # fmt: skip
    variants: list[tuple[str, str, tuple[str, ...]]] = [
        (runtime, f"{store}://", ()) for runtime in runtimes for store in args.stores.split(",")
    ]  # fmt: skip
    comparing = args.compare_pythonpath is not None
    if comparing:  # the direct rows are the A/B pairs, after the other runtime's rows
        variants = [v for v in variants if v[0] != "direct"]
    elif "direct" in runtimes and args.fencing_cost:  # what zombie fencing costs
        variants.insert(1, ("direct", "memory://", ("--set", "transactional_writes=false")))
    for i, (runtime, store, more) in enumerate(variants):
        wt = Topics(
            topics.tickets, topics.surveys, topics.deadletter, f"{topics.group}-{i}"
        )  # a group (and changelog) of its own per worker
        secs, rss, _cpu = run_worker(
            bootstrap, wt, n, workdir, runtime, "--store", store,
            "--set", f"batch_size={args.batch_size}", *more,
        )  # fmt: skip
        name = f"`cxpulse worker`, {runtime}, {store.rstrip(':/')}"
        if more:
            name += ", " + more[-1]
        row(name, secs, rss, "every KPI, 3 windows")
    if comparing:
        return compare(args, bootstrap, topics, n, workdir, rows, raw_s, peer_s)
    print_rows(args, n, rows, raw_s, peer_s)
    return 0


def print_rows(
    args: argparse.Namespace, n: int, rows: list[Row], raw_s: float, peer_s: float | None
) -> None:
    print(f"{n:,} messages ({args.span}, {args.tickets_per_day:,} tickets/day, "
          f"batch {args.batch_size:,}); ratio = events/s / baseline's events/s\n")  # fmt: skip
    print("| pipeline | seconds | events/s | ratio to baseline | ratio to peer | peak RSS MB "
          "| note |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, secs, rss, note in rows:
        if secs is not None:
            secs = max(secs, 1e-3)  # a tiny smoke run can finish between two probes
        if secs is None:
            print(f"| {name} | - | - | - | - | - | {note} |")
            continue
        vs_peer = f"{peer_s / secs:.2f}" if peer_s else "-"
        mem = f"{rss:.0f}" if rss is not None else "-"
        print(f"| {name} | {secs:.2f} | {n / secs:,.0f} | {raw_s / secs:.3f} | {vs_peer} "
              f"| {mem} | {note} |")  # fmt: skip


def commit_of(checkout: Path) -> str:
    """Short commit of a checkout (+ "-dirty" with uncommitted changes to tracked files)."""
    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *a], capture_output=True,
                              text=True, check=False).stdout.strip()  # fmt: skip

    head = git("rev-parse", "--short", "HEAD") or "?"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def compare(
    args: argparse.Namespace,
    bootstrap: str,
    topics: Topics,
    n: int,
    workdir: Path,
    rows: list[Row],
    raw_s: float,
    peer_s: float | None,
) -> int:
    """`--compare-pythonpath`: this checkout's direct worker against CHECKOUT's,
    alternating (which side starts alternates too, so a drift in the machine's
    load hits both alike); prints each pair's ratio and the median."""
    other = args.compare_pythonpath.resolve()
    source = other / "stream" if (other / "stream" / "cxpulse").is_dir() else other
    if not (source / "cxpulse").is_dir():
        raise SystemExit(f"{other}: no cxpulse package (in it or in its stream/)")
    sides = {"this": (None, commit_of(ROOT)), "other": (source, commit_of(other))}
    pairs: list[dict[str, float]] = []
    for rep in range(args.reps):
        pair: dict[str, float] = {}
        for side in ("this", "other") if rep % 2 == 0 else ("other", "this"):
            path, commit = sides[side]
            wt = Topics(topics.tickets, topics.surveys, topics.deadletter,
                        f"{topics.group}-{side}-{rep}")  # fmt: skip
            secs, rss, cpu = run_worker(
                bootstrap, wt, n, workdir, "direct", "--store", "memory://",
                "--set", f"batch_size={args.batch_size}", pythonpath=path,
            )  # fmt: skip
            pair[side] = max(secs, 1e-3)
            pair[side + " cpu"] = max(cpu, 1e-3)
            label = "this checkout" if side == "this" else f"`{other}`"
            rows.append((f"`cxpulse worker`, direct, memory, {label} ({commit}), run {rep + 1}",
                         secs, rss, "every KPI, 3 windows"))  # fmt: skip
            print(f"{side} run {rep + 1}: {secs:.2f}s, {cpu:.2f} s CPU", file=sys.stderr,
                  flush=True)  # fmt: skip
        pairs.append(pair)
    print_rows(args, n, rows, raw_s, peer_s)
    ratios = [p["other"] / p["this"] for p in pairs]
    cpu_ratios = [p["other cpu"] / p["this cpu"] for p in pairs]
    print(f"\nthis checkout ({sides['this'][1]}) / {other} ({sides['other'][1]}), events/s "
          f"ratio per pair: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.2f}")  # fmt: skip
    print("events per CPU second (worker process, first to last message) ratio per pair: "
          f"{', '.join(f'{r:.2f}' for r in cpu_ratios)}; "
          f"median {statistics.median(cpu_ratios):.2f}; "
          f"this checkout {n / statistics.median(p['this cpu'] for p in pairs):,.0f}, "
          f"other {n / statistics.median(p['other cpu'] for p in pairs):,.0f} events per "
          "CPU second")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
