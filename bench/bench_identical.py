"""The worker's batch loop in process: identical results to another checkout, and speed.

Why: a change to the core's apply path (issue 22) must leave every result as it
was. This replays a simulated day the way `cxpulse worker` (direct runtime)
handles it, without Kafka: messages routed to 4 partitions by their key, taken
in fetches of `--batch-size` records, each partition's share of a fetch applied
in one `engine.batch()` through `handle_message` (decode, checks, apply or
dead letter), then per touched partition `drain_dirty()` and the changelog
writes of `PartitionStore.batch_writes`, and a young collection plus
`gc.freeze()` per fetch (the worker does that once a second). With
`--restore-every N`, every N fetches each partition is rebuilt as a worker
that lost its local store does: `PartitionStore.recover` from the latest
value of every changelog key, `PartitionEngine.restore`, the repairs written
(and hashed). `--pack-idle-ms` sets `CoreConfig.pack_idle_ms` where the
checkout has it (elsewhere it is ignored, and said so): packing idle tickets
sooner packs and unpacks many more, the hashes must stay. `--disorder-s`
above the 5-minute lateness makes late events. It prints:

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
        [--restore-every 4] [--pack-idle-ms 60000] [--hours 14] [--disorder-s 600]
The default day is the busy day of `bench_worker.py` (seed 1, 24 h, 3 %
duplicates, 120 s disorder, 1 % malformed).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 4
#: a fixed wall clock (ms), far after any simulated event: no event is "ahead"
NOW_MS = 2_000_000_000_000


@dataclass(frozen=True)
class Day:
    """The simulated day and how it is replayed (the same on both sides)."""

    tickets_per_day: float = 20000.0
    hours: int = 24
    seed: int = 1
    disorder_s: float = 120.0
    batch_size: int = 20000
    restore_every: int = 0  # fetches between restores; 0: never
    pack_idle_ms: int | None = None  # CoreConfig.pack_idle_ms, where it exists


def _messages(day: Day) -> list[tuple[str, bytes | None, bytes, int]]:
    """(role, key, value, partition) of the simulated day, in delivery order."""
    from cxpulse.core.partitioning import partition_for
    from cxpulse.sim.dirt import generate
    from cxpulse.sim.model import SimConfig

    cfg = SimConfig(seed=day.seed, duration_ms=day.hours * 3_600_000,
                    tickets_per_day=day.tickets_per_day, duplicates=0.03,
                    disorder_s=day.disorder_s, malformed=0.01)  # fmt: skip
    return [(r.role, r.key, r.value, partition_for(r.key, PARTITIONS) if r.key else 0)
            for r in generate(cfg)]  # fmt: skip


def replay(day: Day) -> dict[str, Any]:
    """One replay in this process (the checkout first on sys.path): hashes and timing."""
    from cxpulse.changelog.records import Write
    from cxpulse.changelog.store import PartitionStore
    from cxpulse.core.config import CoreConfig
    from cxpulse.core.engine import PartitionEngine, evaluate
    from cxpulse.worker.shared import handle_message

    messages = _messages(day)
    config = CoreConfig()
    packs = "pack_idle_ms" in {f.name for f in dataclasses.fields(CoreConfig)}
    if packs and day.pack_idle_ms is not None:
        config = dataclasses.replace(config, pack_idle_ms=day.pack_idle_ms)
    engines = {p: PartitionEngine(config, p) for p in range(PARTITIONS)}
    stores = {p: PartitionStore.recover(p, [], epoch=1)[0] for p in range(PARTITIONS)}
    tables: dict[int, dict[bytes, bytes]] = {p: {} for p in range(PARTITIONS)}  # for restores
    offsets: dict[tuple[str, int], int] = {}
    writes_hash = hashlib.sha256()
    restores = 0

    def written(p: int, writes: list[Write]) -> None:
        for k, v in sorted(writes, key=lambda w: (w[0] or b"", w[1] or b"")):
            writes_hash.update(len(k or b"").to_bytes(4, "big") + (k or b""))
            writes_hash.update(len(v or b"").to_bytes(4, "big") + (v or b""))
            if day.restore_every:
                if v is None:
                    tables[p].pop(k, None)
                else:
                    tables[p][k] = v

    gc.collect()
    gc.freeze()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for fetch, b in enumerate(range(0, len(messages), day.batch_size), start=1):
        fetched: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = {}
        for role, key, value, p in messages[b : b + day.batch_size]:
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
            written(p, stores[p].batch_writes(engines[p].drain_dirty(), NOW_MS))
        if day.restore_every and fetch % day.restore_every == 0:
            restores += 1
            for p in range(PARTITIONS):  # the worker's restore, from the changelog alone
                stores[p], rec = PartitionStore.recover(p, tables[p].items(), epoch=1 + restores)
                engines[p] = PartitionEngine.restore(config, p, rec.items.items())
                engines[p].guard.take_capped()  # re-deriving at restore is not new input
                written(p, rec.repairs)
        gc.collect(1)
        gc.freeze()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    gc.unfreeze()
    evaluation = repr(evaluate(list(engines.values()))).encode()
    return {
        "messages": len(messages),
        "restores": restores,
        "pack_idle_ms": config.pack_idle_ms if packs else None,
        "writes": writes_hash.hexdigest(),
        "evaluation": hashlib.sha256(evaluation).hexdigest(),
        "wall_s": wall,
        "cpu_s": cpu,
    }


def _run(stream: str, day: Day) -> dict[str, Any]:
    """`replay` in a fresh interpreter with `stream` first on its path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([stream, str(ROOT)]), PYTHONHASHSEED="0",
               PYTHONDONTWRITEBYTECODE="1")  # never write into the other checkout
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(dataclasses.asdict(day))],
        env=env, capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets-per-day", type=float, default=Day.tickets_per_day)
    ap.add_argument("--hours", type=int, default=Day.hours)
    ap.add_argument("--seed", type=int, default=Day.seed)
    ap.add_argument("--disorder-s", type=float, default=Day.disorder_s)
    ap.add_argument("--batch-size", type=int, default=Day.batch_size)
    ap.add_argument("--restore-every", type=int, default=0, help="fetches between restores")
    ap.add_argument("--pack-idle-ms", type=int, help="CoreConfig.pack_idle_ms, where it exists")
    ap.add_argument("--compare-pythonpath", metavar="CHECKOUT_STREAM")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--child", metavar="DAY_JSON", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(replay(Day(**json.loads(args.child)))))
        return 0
    day = Day(args.tickets_per_day, args.hours, args.seed, args.disorder_s, args.batch_size,
              args.restore_every, args.pack_idle_ms)  # fmt: skip
    this = str(ROOT / "stream")
    sides = {"this": this}
    if args.compare_pythonpath:
        sides["other"] = args.compare_pythonpath
    ratios: list[float] = []
    seen: dict[str, tuple[str, str]] = {}
    for rep in range(args.reps):
        rates: dict[str, float] = {}
        for name, stream in (sides.items() if rep % 2 == 0 else reversed(sides.items())):
            r = _run(stream, day)
            rates[name] = r["messages"] / r["cpu_s"]
            seen[name] = (r["writes"], r["evaluation"])
            print(f"rep {rep} {name}: {r['messages']} messages, {r['restores']} restores, "
                  f"pack_idle_ms {r['pack_idle_ms'] or '(none in this checkout)'}, "
                  f"{rates[name]:,.0f} per CPU s ({r['wall_s']:.1f} s wall), "
                  f"writes {r['writes'][:16]}, evaluation {r['evaluation'][:16]}, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
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
