"""The worker's batch loop in process: identical results to another checkout, and speed.

Why: a change to the core's apply path (issue 22) must leave every result as it
was. This replays a simulated day the way `cxpulse worker` (direct runtime)
handles it, without Kafka: messages routed to 4 partitions by their key, taken
in fetches of `--batch-size` records, each partition's share of a fetch applied
in one `engine.batch()` through `handle_message` (decode, checks, apply or
dead letter), then per touched partition `drain_dirty()` and the changelog
writes of `PartitionStore.batch_writes`, and a young collection plus
`gc.freeze()` per fetch (the worker does that once a second). It prints:

* sha256 of every changelog write (key and value bytes, the writes of each
  batch in a fixed order) and of the final `evaluate()` of all partitions:
  with `--compare-pythonpath` both checkouts must print the same (exit 1
  otherwise). Fixed: the epoch, the wall clock and the hash seed (a set's
  order reaches the marker);
* messages per CPU second of the replay (the process is alone on its core
  only on an idle machine: CPU time is what load disturbs least), and with
  `--compare-pythonpath` the ratio of each alternating pair and their median.

Usage:
    .venv/bin/python bench/bench_identical.py [--tickets-per-day 20000]
        [--compare-pythonpath CHECKOUT/stream] [--reps 3]
The default day is the busy day of `bench_worker.py` (seed 1, 24 h, 3 %
duplicates, 120 s disorder, 1 % malformed).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 4
#: a fixed wall clock (ms), far after any simulated event: no event is "ahead"
NOW_MS = 2_000_000_000_000


def _day(tickets_per_day: float) -> list[tuple[str, bytes | None, bytes, int]]:
    """(role, key, value, partition) of the simulated day, in delivery order."""
    from cxpulse.core.partitioning import partition_for
    from cxpulse.sim.dirt import generate
    from cxpulse.sim.model import SimConfig

    cfg = SimConfig(seed=1, tickets_per_day=tickets_per_day, duplicates=0.03,
                    disorder_s=120.0, malformed=0.01)  # fmt: skip
    return [(r.role, r.key, r.value, partition_for(r.key, PARTITIONS) if r.key else 0)
            for r in generate(cfg)]  # fmt: skip


def replay(tickets_per_day: float, batch_size: int) -> dict[str, object]:
    """One replay in this process (the checkout first on sys.path): hashes and timing."""
    from cxpulse.changelog.store import PartitionStore
    from cxpulse.core.config import CoreConfig
    from cxpulse.core.engine import PartitionEngine, evaluate
    from cxpulse.worker.shared import handle_message

    messages = _day(tickets_per_day)
    config = CoreConfig()
    engines = {p: PartitionEngine(config, p) for p in range(PARTITIONS)}
    stores = {p: PartitionStore.recover(p, [], epoch=1)[0] for p in range(PARTITIONS)}
    offsets: dict[tuple[str, int], int] = {}
    writes_hash = hashlib.sha256()
    gc.collect()
    gc.freeze()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for b in range(0, len(messages), batch_size):
        fetched: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = {}
        for role, key, value, p in messages[b : b + batch_size]:
            fetched.setdefault((role, p), []).append((key, value))
        touched: set[int] = set()
        for (role, p), records in fetched.items():
            engine, store = engines[p], stores[p]
            counts: dict[str, int] = {}
            touched.add(p)
            with engine.batch():
                for key, value in records:
                    off = offsets[(role, p)] = offsets.get((role, p), -1) + 1
                    handle_message(engine, role, role, p, off, key, value, counts, NOW_MS)
            store.marker.offsets[role] = offsets[(role, p)]
            for name, n in counts.items():
                store.count(name, n)
        for p in sorted(touched):
            writes = stores[p].batch_writes(engines[p].drain_dirty(), NOW_MS)
            for k, v in sorted(writes, key=lambda w: (w[0] or b"", w[1] or b"")):
                writes_hash.update(len(k or b"").to_bytes(4, "big") + (k or b""))
                writes_hash.update(len(v or b"").to_bytes(4, "big") + (v or b""))
        gc.collect(1)
        gc.freeze()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    gc.unfreeze()
    evaluation = repr(evaluate(list(engines.values()))).encode()
    return {
        "messages": len(messages),
        "writes": writes_hash.hexdigest(),
        "evaluation": hashlib.sha256(evaluation).hexdigest(),
        "wall_s": wall,
        "cpu_s": cpu,
    }


def _run(stream: str, tickets_per_day: float, batch_size: int) -> dict[str, Any]:
    """`replay` in a fresh interpreter with `stream` first on its path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([stream, str(ROOT)]), PYTHONHASHSEED="0",
               PYTHONDONTWRITEBYTECODE="1")  # never write into the other checkout
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--tickets-per-day", str(tickets_per_day),
         "--batch-size", str(batch_size)],
        env=env, capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets-per-day", type=float, default=20000.0)
    ap.add_argument("--batch-size", type=int, default=20000)
    ap.add_argument("--compare-pythonpath", metavar="CHECKOUT_STREAM")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(replay(args.tickets_per_day, args.batch_size)))
        return 0
    this = str(ROOT / "stream")
    sides = {"this": this}
    if args.compare_pythonpath:
        sides["other"] = args.compare_pythonpath
    ratios: list[float] = []
    seen: dict[str, tuple[str, str]] = {}
    for rep in range(args.reps):
        rates: dict[str, float] = {}
        for name, stream in (sides.items() if rep % 2 == 0 else reversed(sides.items())):
            r = _run(stream, args.tickets_per_day, args.batch_size)
            rates[name] = r["messages"] / r["cpu_s"]
            seen[name] = (r["writes"], r["evaluation"])
            print(f"rep {rep} {name}: {r['messages']} messages, {rates[name]:,.0f} per CPU s "
                  f"({r['wall_s']:.1f} s wall), writes {r['writes'][:16]}, "
                  f"evaluation {r['evaluation'][:16]}, load {os.getloadavg()[0]:.1f}",
                  flush=True)  # fmt: skip
        if "other" in rates:
            ratios.append(rates["this"] / rates["other"])
            print(f"rep {rep} ratio this/other per CPU s: {ratios[-1]:.3f}", flush=True)
    if ratios:
        print(f"median ratio this/other per CPU s: {statistics.median(ratios):.3f} "
              f"({len(ratios)} pairs)")  # fmt: skip
    if len(set(seen.values())) > 1:
        print("DIFFERENT: the changelog writes or the evaluation differ between the checkouts")
        return 1
    if "other" in seen:
        print("identical: changelog writes and evaluation hash the same in both checkouts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
