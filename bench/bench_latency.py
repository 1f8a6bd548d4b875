"""Produce -> visible on the exporter's `/metrics`, with marker tickets, at a steady rate.

Issue 22's goal: p99 <= 2 s at 5k events/s with Prometheus scraping every 15 s
alongside, and a scrape (about 10k series) <= 50 ms that never waits on an
evaluation. The exporter evaluates when committed state arrived, at most once
per `eval_min_interval`; the baseline, run in the same process one after the
other on fresh topics, emulates the old fixed tick with
`--set eval_min_interval=5s` (then it evaluates every `eval_interval`, 5 s,
whether or not anything arrived, which is what the old loop did).

Each run: fresh topics; one `cxpulse worker` (direct runtime) and one
`cxpulse exporter`; a real Prometheus scraping the exporter every 15 s. A
simulated stream (one busy hour of today) is produced at `--rate` events/s
for `--seconds`; every `--marker-every` ms one extra `ticket.created` of team
`bench_marker` goes with it. A poller reads the exporter's `/metrics` every
50 ms: marker k is visible when `cxpulse_backlog_tickets{team="bench_marker"}`
summed reaches k (markers stay open); its latency is that poll's end minus the instant marker k was
handed to the producer (linger, broker, worker batch + transaction, changelog,
exporter evaluation and the poll period all count). The split: a
`read_committed` reader of the changelog notes when each marker's state key
became readable (the worker's transaction committed); "worker" is that
instant minus the send, "exporter" the visible instant minus that one (the
exporter's fetch, apply, wait for its evaluation, evaluation, hand-over to
its serving process, and the poll period). The exporter's part is split further by the
exporter's own timing trace (`cxpulse.exporter.timing`, on in this bench's exporters; a
baseline without it has no split): each marker's state record is placed by its changelog
partition and offset in the first commit marker the exporter applied after it, and that
in the first evaluation after its apply, so the part is the sum of its stages: fetch
(readable -> `getmany` returned it), lock (-> its apply held the lock), apply, wait
(-> the evaluation held the lock), evaluation, hand-over (-> the serving process has the
bytes) and poll (-> this poller saw it). Scrape times are the
poller's request times (all of them, while the stream runs) and Prometheus's
own `scrape_duration_seconds`.

Evaluation cost: the poller also reads `cxpulse_exporter_evaluation_duration_seconds`
(each distinct value is one evaluation) and the series count: milliseconds per
1k series served. `--baseline-root DIR` adds the mode `base`: the exporter of
another checkout (`git worktree add --detach DIR <commit>`) run with
`PYTHONPATH=DIR/stream`, with its defaults, in the same run and against the same
worker (this checkout's) as the others; `--reps` repeats the modes interleaved.
With a baseline every mode's worker writes changelog format 3
(`changelog_journal_slots=0`): an exporter older than format 4 reads no journal.

Usage:
    .venv/bin/python bench/bench_latency.py [--bootstrap-servers HOST:PORT]
        [--rate 5000] [--seconds 60] [--marker-every 200] [--modes event,tick]
        [--baseline-root DIR] [--reps 1] [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxpulse.core.decode import route_of  # noqa: E402
from cxpulse.importer.replay import plan, read_lines  # noqa: E402

from bench.kafka_setup import PARTITIONS, broker, create_topics  # noqa: E402
from tests.integration.test_exporter import ExporterProc  # noqa: E402
from tests.integration.test_worker_pipeline import CXPULSE, Topics, WorkerProc  # noqa: E402
from tests.support.prom import LoopbackServer  # noqa: E402

MODES = {
    "event": ("--set", "eval_interval=5s"),  # the defaults: on new state, >= 500 ms apart
    "tick": ("--set", "eval_interval=5s", "--set", "eval_min_interval=5s"),  # the old tick
    "base": ("--set", "eval_interval=5s"),  # another checkout's exporter, its defaults
}
LABELS = {
    "event": "on new state (eval_min_interval=500ms)",
    "tick": "old fixed tick (eval_min_interval=5s)",
    "base": "baseline checkout, on new state (eval_min_interval=500ms)",
}
#: marker tickets are never answered or solved: all of them stay open. Not
#: `cxpulse_tickets_created_total`: all-time counters fold sealed slices only, minutes later.
MARKER = re.compile(rb'^cxpulse_backlog_tickets\{[^}]*team="bench_marker"[^}]*\} (\S+)$', re.M)
EVAL = re.compile(rb"^cxpulse_exporter_evaluation_duration_seconds (\S+)$", re.M)


@dataclass
class Poll:
    """What the 50 ms poller saw: (end of request, marker count), request seconds."""

    seen: list[tuple[float, int]] = field(default_factory=list)
    scrape_s: list[float] = field(default_factory=list)
    series: int = 0
    #: (evaluation seconds, series in that scrape), one per distinct evaluation seen
    evals: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, url: str) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    body: bytes = r.read()
            except OSError:
                time.sleep(0.05)
                continue
            t1 = time.monotonic()
            self.scrape_s.append(t1 - t0)
            self.seen.append((t1, int(sum(float(v) for v in MARKER.findall(body)))))
            self.series = sum(1 for ln in body.splitlines() if ln and not ln.startswith(b"#"))
            if (found := EVAL.search(body)) is not None:
                took = float(found.group(1))
                if not self.evals or self.evals[-1][0] != took:
                    self.evals.append((took, self.series))
            self.stop.wait(max(0.0, 0.05 - (time.monotonic() - t1)))


TS = re.compile(rb'"ts":"([^"]+)"')
#: one line of the exporter's timing trace (`cxpulse.exporter.timing`)
TIMING = re.compile(r"cxpulse\.exporter\.timing: (\{.*\})$", re.M)
STAGES = ("fetch", "lock", "apply", "wait", "evaluation", "hand-over", "poll")


class TracedExporter(ExporterProc):
    """The exporter with its timing trace logger alone at DEBUG (the others stay at the
    `log_level`: aiokafka's DEBUG prints every fetch response)."""

    command: ClassVar[list[str]] = [
        sys.executable, "-c",
        "import logging, sys; logging.getLogger('cxpulse.exporter.timing').setLevel('DEBUG'); "
        "from cxpulse.cli import main; sys.exit(main())",
    ]  # fmt: skip


class TracedWorker(WorkerProc):
    """The worker with its timing trace logger alone at DEBUG (`cxpulse.worker.timing`)."""

    command: ClassVar[list[str]] = [
        sys.executable, "-c",
        "import logging, sys; logging.getLogger('cxpulse.worker.timing').setLevel('DEBUG'); "
        "from cxpulse.cli import main; sys.exit(main())",
    ]  # fmt: skip


#: the worker's part of produce -> visible, by stage (`worker_stages`)
WORKER_STAGES = ("queue", "process", "settle", "commit", "read")
#: one line of the worker's timing trace (`cxpulse.worker.timing`)
WORKER_TIMING = re.compile(r"cxpulse\.worker\.timing: (\{.*\})$", re.M)


def worker_stages(log_text: str, topic: str, sent: dict[str, float],
                  inputs: dict[str, tuple[int, int]],
                  watch: dict[str, tuple[float, int, int]]) -> dict[str, list[float]]:  # fmt: skip
    """Each marker's worker part (send -> its state readable in the changelog) split by
    stage, from the worker's timing trace: queue (-> `getmany` returned the batch holding
    it: the producer, the broker, the fetch and the wait for the loop), process (-> applied
    and its writes built), settle (-> the batch before it durable), commit (-> its own
    writes durable), read (-> the bench's changelog reader saw it). The marker's batch is
    the first whose last offset of its input partition is at or past the marker's."""
    per_partition: dict[int, list[tuple[int, list[float]]]] = {}
    for line in WORKER_TIMING.findall(log_text):
        t = json.loads(line)
        for p, offset in t["offsets"].get(topic, {}).items():
            per_partition.setdefault(int(p), []).append((offset, t["batch"]))
    for rows in per_partition.values():
        rows.sort(key=lambda r: r[0])
    out: dict[str, list[float]] = {s: [] for s in WORKER_STAGES}
    for tid, (p, offset) in inputs.items():
        rows = per_partition.get(p, [])
        i = bisect.bisect_left(rows, offset, key=lambda r: r[0])
        if tid not in watch or tid not in sent or i == len(rows):
            continue
        instants = [sent[tid], *rows[i][1], watch[tid][0]]
        for name, a, b in zip(WORKER_STAGES, instants[:-1], instants[1:], strict=True):
            out[name].append(b - a)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stages(log_text: str, watch: dict[str, tuple[float, int, int]],
           visible: dict[str, float]) -> dict[str, list[float]]:
    """Each visible marker's exporter part split by stage (`STAGES`, seconds, in that order,
    summing to visible minus readable), from the exporter's timing trace."""
    per_partition: dict[int, list[tuple[int, list[float]]]] = {}
    for line in TIMING.findall(log_text):
        t = json.loads(line)
        _wanted, started, ended, published = t["eval"]
        for p, offset, _ts, fetched, locked, applied in t["batches"]:
            per_partition.setdefault(p, []).append(
                (offset, [fetched, locked, applied, started, ended, published]))
    for rows in per_partition.values():
        rows.sort()
    out: dict[str, list[float]] = {s: [] for s in STAGES}
    for tid, (t_log, p, offset) in watch.items():
        rows = per_partition.get(p, [])
        i = bisect.bisect_right(rows, offset, key=lambda r: r[0])  # its batch's marker
        if tid not in visible or i == len(rows):
            continue
        instants = [t_log, *rows[i][1], visible[tid]]
        for name, a, b in zip(STAGES, instants[:-1], instants[1:], strict=True):
            out[name].append(b - a)
    return out


def evaluation_trace(log_text: str) -> dict[str, float]:
    """From the timing trace: the evaluations' wait for the lock (p50, max: an apply held
    it), their wall and own CPU seconds (p50: the gap is what the evaluating thread waited
    for, other threads and processes), and the collector's pauses over the run (total,
    longest, full collections and their total)."""
    lines = [json.loads(line) for line in TIMING.findall(log_text)]
    lock = [t["eval"][1] - t["eval"][0] for t in lines]
    wall = [t["eval"][2] - t["eval"][1] for t in lines]
    cpu = [t["cpu"] for t in lines if "cpu" in t]  # a baseline's trace may have none
    return {
        "eval_wall_p50_ms": statistics.median(wall) * 1000 if wall else float("nan"),
        "eval_cpu_p50_ms": statistics.median(cpu) * 1000 if cpu else float("nan"),
        "eval_lock_p50_ms": statistics.median(lock) * 1000 if lock else float("nan"),
        "eval_lock_max_ms": max(lock, default=float("nan")) * 1000,
        "gc_total_s": sum(t["gc"][0] for t in lines),
        "gc_longest_ms": max((t["gc"][1] for t in lines), default=float("nan")) * 1000,
        "gc_full": sum(t["gc"][2] for t in lines),
        "gc_full_s": sum(t["gc"][3] for t in lines),
    }


def marker(ts: str, tid: str) -> bytes:
    """Ticket `tid` of its own team, stamped `ts`: the stream's current event time (not late)."""
    return json.dumps({
        "event_id": str(uuid.uuid4()), "type": "ticket.created", "ts": ts,
        "ticket_id": tid, "team": "bench_marker", "channel": "web",
        "priority": "normal", "customer_id": "c-bench", "created_by": "customer",
    }).encode()  # fmt: skip


#: each marker's place in the tickets topic: ticket id -> (partition, offset)
Placed = dict[str, tuple[int, int]]


async def produce(bootstrap: str, topics: Topics, capture: Path, rate: float, seconds: float,
                  marker_every_s: float) -> tuple[list[tuple[str, float]], Placed]:  # fmt: skip
    """Send at `rate`/s for `seconds`; return each marker's ticket id and monotonic send
    instant, and where each landed in the tickets topic (partition, offset)."""
    from aiokafka import AIOKafkaProducer

    roles = {"tickets": topics.tickets, "surveys": topics.surveys}
    out = [m for m, _ in zip(plan(read_lines(capture), roles, None), range(int(rate * seconds)),
                             strict=False)]  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=5)  # fmt: skip
    await producer.start()
    sent_markers: list[tuple[str, float]] = []
    marker_sends: list[tuple[str, asyncio.Future[Any]]] = []
    try:
        t0 = time.monotonic()
        next_marker = t0
        futures = []
        ts = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for i, msg in enumerate(out):
            if (found := TS.search(msg.value)) is not None:
                ts = found.group(1).decode()
            wait = t0 + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            futures.append(await producer.send(msg.topic, value=msg.value, key=msg.key))
            now = time.monotonic()
            if now >= next_marker:
                tid = f"M-{uuid.uuid4().hex[:12]}"
                value = marker(ts, tid)
                futures.append(await producer.send(topics.tickets, value=value,
                                                   key=route_of(value)[1]))  # fmt: skip
                sent_markers.append((tid, time.monotonic()))
                marker_sends.append((tid, futures[-1]))
                next_marker += marker_every_s
            if len(futures) >= 1000:
                await asyncio.gather(*futures)
                futures = []
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    placed = {tid: (f.result().partition, f.result().offset) for tid, f in marker_sends}
    return sent_markers, placed


@dataclass
class ChangelogWatch:
    """When each marker ticket's state was first readable (committed) in the changelog, and
    where: (monotonic instant, changelog partition, offset of its state record)."""

    bootstrap: str
    topic: str
    seen: dict[str, tuple[float, int, int]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False,
            isolation_level="read_committed", fetch_max_wait_ms=20,
        )  # fmt: skip
        await consumer.start()
        try:
            # started once the exporter served: the worker created it, as many as the sources
            tps = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while not self.stop.is_set():
                batch = await consumer.getmany(timeout_ms=100)
                now = time.monotonic()
                for records in batch.values():
                    for r in records:
                        if r.key is not None and (i := r.key.find(b"/s/t:M-")) >= 0:
                            self.seen.setdefault(r.key[i + 5:].decode(),
                                                 (now, r.partition, r.offset))  # fmt: skip
        finally:
            await consumer.stop()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def prom_query(prom: LoopbackServer, expr: str) -> float | None:
    url = f"{prom.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        res = json.loads(r.read())["data"]["result"]
    return float(res[0]["value"][1]) if res else None


def one_run(mode: str, bootstrap: str, capture: Path, work: Path, args: argparse.Namespace,
            ) -> dict[str, float]:  # fmt: skip
    suffix = uuid.uuid4().hex[:8]
    topics = Topics(f"l.t.{suffix}", f"l.s.{suffix}", f"l.dl.{suffix}", f"lat-{suffix}")
    asyncio.run(create_topics(bootstrap, [topics.tickets, topics.surveys, topics.deadletter]))
    # An exporter older than changelog format 4 cannot read the journal
    # (docs/runtimes.md): with a baseline, every mode's worker writes format 3, so
    # that the modes still differ only by their exporter.
    journal = ("--set", "changelog_journal_slots=0") if args.baseline_root else ()
    w = TracedWorker(bootstrap, topics, work, f"w-{mode}-{suffix}", "--set",
                     "max_event_ahead=1d", *journal).start()  # fmt: skip
    x = TracedExporter(bootstrap, topics, work, f"x-{mode}-{suffix}", *MODES[mode])
    saved = os.environ.get("PYTHONPATH")
    if mode == "base":  # the baseline's `cxpulse` first on the path of its exporter only
        os.environ["PYTHONPATH"] = str(Path(args.baseline_root) / "stream")
    try:
        x.start()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    prom = LoopbackServer("prometheus", f"""
global: {{scrape_interval: 15s, scrape_timeout: 10s}}
scrape_configs:
  - job_name: exporter
    static_configs: [{{targets: ["127.0.0.1:{x.port}"]}}]
""").start()  # fmt: skip
    poll = Poll()
    try:
        # the exporter serves once a worker created the changelog and it read it to its end:
        # one warm-up marker makes the worker create its topics
        asyncio.run(produce(bootstrap, topics, capture, 1, 1, 1.0))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if MARKER.search(x.scrape().encode()):
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(
                f"exporter {mode} never served the warm-up marker:\n{x.log_text()[-3000:]}"
                f"\nits backlog lines:\n{[ln for ln in x.scrape().splitlines() if 'backlog' in ln]}"
                f"\nworker:\n{w.log_text()[-3000:]}"
            )
        base = int(sum(float(v) for v in MARKER.findall(x.scrape().encode())))
        poller = threading.Thread(target=poll.run, args=(f"http://127.0.0.1:{x.port}/metrics",),
                                  daemon=True)  # fmt: skip
        poller.start()
        watch = ChangelogWatch(bootstrap, topics.changelog)
        watcher = threading.Thread(target=watch.run, daemon=True)
        watcher.start()
        sent, inputs = asyncio.run(produce(bootstrap, topics, capture, args.rate, args.seconds,
                                           args.marker_every / 1000))  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            not poll.seen or poll.seen[-1][1] < base + len(sent)
        ):
            time.sleep(0.2)
        poll.stop.set()
        poller.join()
        watch.stop.set()
        watcher.join()
        assert x.proc is not None and w.proc is not None
        cpu = {"exporter_cpu_s": cpu_seconds(x.proc.pid), "worker_cpu_s": cpu_seconds(w.proc.pid)}
        lat: list[float] = []
        worker_lag: list[float] = []
        exporter_lag: list[float] = []
        visible: dict[str, float] = {}
        for k, (tid, t_sent) in enumerate(sent, start=base + 1):
            vis = next((t for t, c in poll.seen if c >= k and t >= t_sent), None)
            if vis is not None:
                lat.append(vis - t_sent)
                visible[tid] = vis
            if (seen := watch.seen.get(tid)) is not None:
                worker_lag.append(seen[0] - t_sent)
                if vis is not None:
                    exporter_lag.append(max(0.0, vis - seen[0]))
        prom_max = prom_query(prom, 'max_over_time(scrape_duration_seconds{job="exporter"}[10m])')
        prom_n = prom_query(prom, 'count_over_time(scrape_duration_seconds{job="exporter"}[10m])')
    finally:
        poll.stop.set()
        prom.stop()
        x.stop()
        w.stop()
    split = stages(x.log_text(), watch.seen, visible)
    split |= worker_stages(w.log_text(), topics.tickets, dict(sent), inputs, watch.seen)
    evals = [(t, n) for t, n in poll.evals if n > 0]
    return cpu | evaluation_trace(x.log_text()) | {f"{name}_{q}": (pct(v, f) if v else float("nan"))
                  for name, v in split.items() for q, f in (("p50", 0.5), ("p99", 0.99))} | {
        f"{name}_mean": (statistics.fmean(v) if v else float("nan")) for name, v in split.items()
    } | {"split": len(split["poll"]), "worker_split": len(split["queue"])} | {
        "eval_p50_ms": statistics.median(t for t, _ in evals) * 1000 if evals else float("nan"),
        "eval_max_ms": max((t for t, _ in evals), default=float("nan")) * 1000,
        "eval_ms_per_1k": statistics.median(t * 1e6 / n for t, n in evals) if evals
        else float("nan"),
        "markers": len(sent), "visible": len(lat),
        "p50": statistics.median(lat) if lat else float("nan"),
        "p99": pct(lat, 0.99) if lat else float("nan"), "max": max(lat, default=float("nan")),
        "worker_p50": statistics.median(worker_lag) if worker_lag else float("nan"),
        "worker_p99": pct(worker_lag, 0.99) if worker_lag else float("nan"),
        "exporter_p50": statistics.median(exporter_lag) if exporter_lag else float("nan"),
        "exporter_p99": pct(exporter_lag, 0.99) if exporter_lag else float("nan"),
        "load1": os.getloadavg()[0],
        "series": poll.series, "scrapes": len(poll.scrape_s),
        "scrape_p50_ms": statistics.median(poll.scrape_s) * 1000,
        "scrape_p99_ms": pct(poll.scrape_s, 0.99) * 1000,
        "scrape_max_ms": max(poll.scrape_s) * 1000,
        "prom_scrapes": prom_n or 0, "prom_max_ms": (prom_max or float("nan")) * 1000,
    }  # fmt: skip


def main() -> int:
    import subprocess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap-servers", dest="bootstrap")
    ap.add_argument("--rate", type=float, default=5000, help="events/s (default 5000)")
    ap.add_argument("--seconds", type=float, default=60, help="default 60")
    ap.add_argument("--marker-every", type=float, default=200, help="ms (default 200)")
    ap.add_argument(
        "--modes", default="event,tick", help="default event,tick (base: needs --baseline-root)"
    )
    ap.add_argument("--baseline-root", help="another checkout, for the mode `base`")
    ap.add_argument("--reps", type=int, default=1, help="rounds of the modes, interleaved")
    ap.add_argument("--keep-logs", metavar="DIR",
                    help="write the processes' logs (the exporter's timing trace) there")
    ap.add_argument(
        "--tickets-per-day",
        type=int,
        default=1_500_000,
        help="simulated weekday volume (default 1500000: 326k lines in the hour)",
    )
    args = ap.parse_args()
    modes = args.modes.split(",")
    if "base" in modes and not args.baseline_root:
        ap.error("the mode base needs --baseline-root")
    with broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep_logs or tmp)
        work.mkdir(parents=True, exist_ok=True)
        capture = work / "live.jsonl"
        # today 09:00 UTC: a busy hour of the time-of-day profile, within max_event_ahead
        start = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT09:00:00Z")
        subprocess.run(
            [*CXPULSE, "simulate", "--seed", "7", "--duration", "1h",
             "--tickets-per-day", str(args.tickets_per_day), "--duplicates", "0.03",
             "--disorder", "120", "--malformed", "0.01", "--start", start, "--out", str(capture)],
            check=True, cwd=ROOT, capture_output=True,
        )  # fmt: skip
        n = sum(1 for _ in read_lines(capture))
        need = int(args.rate * args.seconds)
        print(f"stream: {min(n, need)} of {n} simulated messages (stamped from {start}) at "
              f"{args.rate:.0f}/s for {args.seconds:.0f} s, a marker every "
              f"{args.marker_every:.0f} ms", flush=True)  # fmt: skip
        runs: list[tuple[str, dict[str, float]]] = []
        for rep in range(args.reps):
            for m in modes:
                runs.append((m, one_run(m, bootstrap, capture, work, args)))
                r = runs[-1][1]
                print(f"  rep {rep + 1} {m}: p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s "
                      f"(worker p50 {r['worker_p50']:.2f} p99 {r['worker_p99']:.2f}, exporter "
                      f"p50 {r['exporter_p50']:.2f} p99 {r['exporter_p99']:.2f}), scrape p99 "
                      f"{r['scrape_p99_ms']:.1f} ms, load {r['load1']:.1f}",
                      flush=True)  # fmt: skip
    print()
    print(
        "| exporter | markers visible | p50 s | p99 s | max s | worker p50 s | p99 s "
        "| exporter p50 s | p99 s | load | series | scrapes "
        "| scrape p50 ms | p99 ms | max ms | Prometheus scrapes | its max ms "
        "| evaluation p50 ms | max ms | ms per 1k series |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
          "---:|---:|---:|")
    for m, r in runs:
        print(f"| {LABELS[m]} | {r['visible']}/{r['markers']} | {r['p50']:.2f} | {r['p99']:.2f} "
              f"| {r['max']:.2f} | {r['worker_p50']:.2f} | {r['worker_p99']:.2f} "
              f"| {r['exporter_p50']:.2f} | {r['exporter_p99']:.2f} | {r['load1']:.1f} "
              f"| {r['series']} | {r['scrapes']} | {r['scrape_p50_ms']:.1f} "
              f"| {r['scrape_p99_ms']:.1f} | {r['scrape_max_ms']:.1f} "
              f"| {r['prom_scrapes']:.0f} | {r['prom_max_ms']:.1f} | {r['eval_p50_ms']:.0f} "
              f"| {r['eval_max_ms']:.0f} | {r['eval_ms_per_1k']:.1f} |")  # fmt: skip

    print("\nThe exporter's part by stage (seconds: p50 / p99 / mean over the markers it places;"
          " the means add up to the part's mean), its CPU and the worker's over the whole run"
          " (s), the evaluations' wait for the lock (ms) and the collector's pauses:\n")
    print("| exporter | placed | " + " | ".join(STAGES) + " | exporter CPU s | worker CPU s "
          "| evaluation's lock wait p50 / max ms | evaluation wall / own CPU p50 ms "
          "| gc total s / longest ms | full gcs / s |")
    print("|---|---:|" + "---:|" * (len(STAGES) + 6))
    for m, r in runs:
        cells = " | ".join(f"{r[f'{s}_p50']:.2f} / {r[f'{s}_p99']:.2f} / {r[f'{s}_mean']:.2f}"
                           for s in STAGES)  # fmt: skip
        print(f"| {LABELS[m]} | {r['split']:.0f} | {cells} | {r['exporter_cpu_s']:.1f} "
              f"| {r['worker_cpu_s']:.1f} | {r['eval_lock_p50_ms']:.0f} / "
              f"{r['eval_lock_max_ms']:.0f} | {r['eval_wall_p50_ms']:.0f} / "
              f"{r['eval_cpu_p50_ms']:.0f} | {r['gc_total_s']:.2f} / {r['gc_longest_ms']:.0f} "
              f"| {r['gc_full']:.0f} / {r['gc_full_s']:.2f} |")

    print("\nThe worker's part by stage (seconds: p50 / p99 / mean over the markers it "
          "places; the means add up to the part's mean; `cxpulse.worker.timing`):\n")
    print("| exporter mode | placed | " + " | ".join(WORKER_STAGES) + " |")
    print("|---|---:|" + "---:|" * len(WORKER_STAGES))
    for m, r in runs:
        cells = " | ".join(f"{r[f'{s}_p50']:.2f} / {r[f'{s}_p99']:.2f} / {r[f'{s}_mean']:.2f}"
                           for s in WORKER_STAGES)  # fmt: skip
        print(f"| {LABELS[m]} | {r['worker_split']:.0f} | {cells} |")

    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for m, r in runs if m == mode)

    for other, name in (("tick", "old tick"), ("base", "baseline checkout")):
        if "event" in modes and other in modes:
            print(f"\nratio on new state / {name} (same run): "
                  f"p50 {med('event', 'p50') / med(other, 'p50'):.2f}, "
                  f"p99 {med('event', 'p99') / med(other, 'p99'):.2f}, exporter part p50 "
                  f"{med('event', 'exporter_p50') / med(other, 'exporter_p50'):.2f}, p99 "
                  f"{med('event', 'exporter_p99') / med(other, 'exporter_p99'):.2f}, "
                  f"scrape p99 {med('event', 'scrape_p99_ms') / med(other, 'scrape_p99_ms'):.2f}"
                  )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
