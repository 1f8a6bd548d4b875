"""Results identical to another checkout: sha256 of every changelog value and of the KPIs.

Why: a change of how the core keeps its state (issue 22: packed idle tickets)
must change no result. This drives a simulated day through 4 partition
engines as the worker does (each event routed by its ticket id, `batch()` of
500 events, a drain after each) with disorder, duplicates and late events,
restores every engine from the latest value of every key every
`--restore-every` batches (a worker that lost its local store), and prints

* the sha256 of every drained (key, value), in drain order, and
* the sha256 of the final evaluation's exposition text, lines sorted.

Run it with this checkout and with another one's `stream/` first on
PYTHONPATH: the two lines must be equal.

    .venv/bin/python bench/bench_identity.py
    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/path/to/other/stream .venv/bin/python \\
        bench/bench_identity.py

`--pack-idle-ms` sets `CoreConfig.pack_idle_ms` (only where it exists): a
shorter idle time packs and unpacks many more tickets, the hashes stay.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import sys
from random import Random

from cxpulse.core.config import CoreConfig
from cxpulse.core.engine import PartitionEngine, evaluate
from cxpulse.core.events import Event, SurveyOffered, SurveyResponse, role_of
from cxpulse.core.partitioning import partition_for
from cxpulse.exposition.render import exposition, render
from cxpulse.sim.model import SimConfig, Simulation

PARTITIONS = 4
BATCH = 500


def dirty_stream(cfg: SimConfig, seed: int) -> list[Event]:
    """The simulated events in a delivery order with dirt: 30 % held back up to
    120 s, 1 % up to 10 min (late beyond the 5 min lateness), 3 % delivered twice."""
    rng = Random(f"bench-identity:{seed}")
    keyed: list[tuple[int, int, Event]] = []
    seq = 0
    for e in Simulation(cfg).events():
        for _ in range(2 if rng.random() < 0.03 else 1):
            r = rng.random()
            delay = (
                rng.randrange(600_000) if r < 0.01 else rng.randrange(120_000) if r < 0.31 else 0
            )
            keyed.append((e.ts + delay, seq, e))
            seq += 1
    heapq.heapify(keyed)
    return [heapq.heappop(keyed)[2] for _ in range(len(keyed))]


def ticket_key(e: Event) -> str:
    if isinstance(e, SurveyResponse | SurveyOffered):
        return e.ticket_id or e.event_id
    return e.ticket_id


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets-per-day", type=float, default=4000)
    ap.add_argument("--hours", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--restore-every", type=int, default=20, help="batches between restores")
    ap.add_argument("--pack-idle-ms", type=int, help="CoreConfig.pack_idle_ms")
    args = ap.parse_args()
    config = CoreConfig() if args.pack_idle_ms is None else CoreConfig(
        pack_idle_ms=args.pack_idle_ms  # type: ignore[call-arg,unused-ignore]
    )
    sim = SimConfig(seed=args.seed, duration_ms=args.hours * 3_600_000,
                    tickets_per_day=args.tickets_per_day)  # fmt: skip
    events = dirty_stream(sim, args.seed)
    engines = [PartitionEngine(config, p) for p in range(PARTITIONS)]
    latest: list[dict[str, bytes]] = [{} for _ in range(PARTITIONS)]
    values = hashlib.sha256()
    n_values = 0
    for b, start in enumerate(range(0, len(events), BATCH), start=1):
        routed: list[list[Event]] = [[] for _ in range(PARTITIONS)]
        for e in events[start : start + BATCH]:
            routed[partition_for(ticket_key(e), PARTITIONS)].append(e)
        for p, eng in enumerate(engines):
            with eng.batch():
                for e in routed[p]:
                    eng.apply(role_of(e), e)
            for key, value in sorted(eng.drain_dirty().items()):
                values.update(f"{p}:{key}=".encode() + (b"-" if value is None else value) + b"\n")
                n_values += 1
                if value is None:
                    latest[p].pop(key, None)
                else:
                    latest[p][key] = value
        if b % args.restore_every == 0:
            engines = [
                PartitionEngine.restore(config, p, latest[p].items()) for p in range(PARTITIONS)
            ]
    text = exposition(render(evaluate(engines)))
    kpis = hashlib.sha256(b"\n".join(sorted(text.splitlines())))
    print(f"events {len(events):,}, values {n_values:,}: values {values.hexdigest()} "
          f"evaluation {kpis.hexdigest()}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
