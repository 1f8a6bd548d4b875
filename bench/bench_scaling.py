"""Does a worker's cost stay flat as it holds more open tickets (issue 22: "throughput
and per-ticket memory flat from 1k to 1M open tickets")?

For each count N (default 1k, 10k, 100k, 1M), in a fresh process:

1. hold N open tickets: `bench_memory.build_engine(N)` (created, assigned, a customer
   message, an agent reply, a status change each; the worker's batches of 500 and a
   `drain_dirty` per batch), then one ticket 30 h later so their slices are evicted;
2. time a fixed probe on top of them, the same in every process: `PROBE` more tickets
   (5 events each, the same shape) applied and drained as the worker does, CPU time
   per event (`time.process_time`, so the machine's other load counts less), best of
   `--reps` probes on fresh ticket ids (the median of `--procs` processes' bests),
   under the worker's garbage-collector policy (`cxpulse.heap.FrozenHeap`); and the
   same in as many processes of their own under the interpreter's default collector,
   whose full collections walk every held ticket (a cost that grows with N and that
   no cxpulse process pays: shown to say why the policy exists);
3. before the probe, time one `evaluate()` of the N held tickets (the exporter's work:
   it walks the open tickets for the backlog and ages, so it grows with N; what must stay
   flat is its slope, ms per 1k more open tickets).

Reported per N: probe us/event and its ratio to the smallest N (flat = about 1.0),
the same under the default collector,
RSS per open ticket over the whole process growth and the slope from the previous N,
evaluation ms and its slope from the previous N per 1k open tickets. Goal: ratios near 1
(the engine's indexes are dicts and heaps: O(1) or O(log N) per event).

Run: `.venv/bin/python bench/bench_scaling.py [--counts 1000,10000,100000,1000000]
[--reps 3] [--procs 3]` (`--smoke`: 200 and 2,000 tickets; in `make bench` as `scaling`).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from random import Random
from typing import Any

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_memory import (  # noqa: E402
    BATCH,
    LATER_MS,
    START_MS,
    build_engine,
    one_ticket,
    rss_bytes,
)
from cxpulse.core.engine import PartitionEngine, evaluate  # noqa: E402
from cxpulse.core.events import (  # noqa: E402
    TICKETS,
    Status,
    TicketEvent,
)
from cxpulse.heap import WORKER_SETTLE_EVERY_S, FrozenHeap  # noqa: E402

PROBE = 4_000  # tickets, 20,000 events
PROBE_START_MS = START_MS + LATER_MS + 60_000


def probe_tickets(rep: int, n: int = PROBE) -> Iterator[TicketEvent]:
    """`n` tickets after everything held (fresh ids per rep), half solved at the end:
    a live minute's mix of new, answered and finished tickets."""
    rng = Random(1000 + rep)
    base = PROBE_START_MS + rep * 3_600_000
    step = 3_000_000 // n
    for i in range(n):
        status = Status.SOLVED if i % 2 else Status.PENDING
        yield from one_ticket(rng, f"P-{rep}-{i:06d}", base + i * step, status)


def time_probe(eng: PartitionEngine, rep: int, heap: FrozenHeap | None = None) -> float:
    """CPU seconds per event of one probe, applied and drained as the worker does.

    With `heap`, under the worker's collector policy (`cxpulse.heap`): the state
    frozen before the probe, as `DirectWorker._loop` leaves it (it settles at most once
    per `WORKER_SETTLE_EVERY_S`; a probe takes less than that here, so the settle
    inside the loop rarely runs). Without it, under the interpreter's default
    collector, whose full collections walk every held ticket again: that cost grows
    with the open tickets, but no cxpulse process runs that way."""
    events = list(probe_tickets(rep))
    gc.collect()
    if heap is not None:
        heap.settle(time.monotonic())
    last_settle = time.monotonic()
    started = time.process_time()
    for i in range(0, len(events), BATCH):
        with eng.batch():
            for e in events[i : i + BATCH]:
                eng.apply(TICKETS, e)
        eng.drain_dirty()
        if heap is not None and time.monotonic() - last_settle > WORKER_SETTLE_EVERY_S:
            last_settle = time.monotonic()
            heap.settle(last_settle)
    return (time.process_time() - started) / len(events)


#: `--collector`: the worker's policy, or the interpreter's default collector.
COLLECTORS = ("worker", "default")


def child(n: int, reps: int, collector: str) -> dict[str, Any]:
    """One fresh process: hold `n` open tickets, evaluate once, then `reps` probes
    under one collector (each collector in processes of its own, so that both
    probe the same held state)."""
    gc.collect()
    before = rss_bytes()
    eng = build_engine(n)
    gc.collect()
    held = rss_bytes()
    started = time.process_time()
    evaluate([eng])
    eval_s = time.process_time() - started
    heap = FrozenHeap() if collector == "worker" else None
    probes = [time_probe(eng, rep, heap) for rep in range(reps)]
    return {"n": n, "rss_held": held - before, "probe_s_per_event": min(probes),
            "probes": probes, "eval_s": eval_s}  # fmt: skip


def _child_run(n: int, reps: int, collector: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n), "--reps", str(reps),
         "--collector", collector],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="1000,10000,100000,1000000",
                    help="open-ticket counts, one fresh process each (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=3, help="probes per count (default: %(default)s)")
    ap.add_argument("--procs", type=int, default=3,
                    help="fresh processes per count; each figure is the median of their "
                         "bests (one process here varied up to 1.5x: default: %(default)s)")
    ap.add_argument("--smoke", action="store_true", help="200 and 2,000 tickets, one probe")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--collector", choices=COLLECTORS, default="worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.reps, args.collector)))
        return 0
    counts = (200, 2000) if args.smoke else tuple(int(x) for x in args.counts.split(","))
    reps, procs = (1, 1) if args.smoke else (args.reps, args.procs)
    rows = []
    for n in sorted(counts):
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in COLLECTORS}
        for i in range(procs):  # the collectors alternate, and which one goes first
            for c in COLLECTORS[:: 1 if i % 2 == 0 else -1]:
                runs[c].append(_child_run(n, reps, c))
        worker = runs["worker"]
        row = dict(worker[len(worker) // 2])  # RSS and evaluation of one process
        row["probe_s_per_event"] = statistics.median(r["probe_s_per_event"] for r in worker)
        row["default_s_per_event"] = statistics.median(
            r["probe_s_per_event"] for r in runs["default"]
        )
        rows.append(row)
    print(f"python {sys.version.split()[0]}, probe {PROBE:,} tickets ({PROBE * 5:,} events), "
          f"best of {reps} per process, median of {procs} processes")  # fmt: skip
    print("| open tickets | probe us/event | ratio to smallest | default collector us/event "
          "| its ratio | RSS per ticket | RSS slope from previous | evaluate ms "
          "| evaluate slope, ms per 1k |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    first, prev = rows[0], None
    for r in rows:
        slope = eval_slope = ""
        if prev is not None:
            slope = f"{(r['rss_held'] - prev['rss_held']) / (r['n'] - prev['n']):,.0f} B"
            eval_slope = f"{(r['eval_s'] - prev['eval_s']) * 1e6 / (r['n'] - prev['n']):.1f}"
        print(f"| {r['n']:,} | {r['probe_s_per_event'] * 1e6:.1f} | "
              f"{r['probe_s_per_event'] / first['probe_s_per_event']:.2f} | "
              f"{r['default_s_per_event'] * 1e6:.1f} | "
              f"{r['default_s_per_event'] / first['default_s_per_event']:.2f} | "
              f"{r['rss_held'] / r['n']:,.0f} B | {slope} | {r['eval_s'] * 1e3:,.0f} | "
              f"{eval_slope} |")  # fmt: skip
        prev = r
    return 0


if __name__ == "__main__":
    sys.exit(main())
