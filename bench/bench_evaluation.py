"""The exporter's evaluation cost per 1k series, this checkout against a baseline one.

What `cxpulse exporter` does on every evaluation, timed on the state of a busy
day: `evaluate(replicas)`, `render` (metric families) and the text format
(`exposition`, or prometheus_client's `generate_latest` where the checkout has
no `exposition`). The state is built once (simulated day -> 4 engines ->
drained changelog values) and loaded into `PartitionReplica`s by each measuring
process, so every checkout evaluates the same state. The first evaluation is
cold (window caches and kept evidence rows empty, as after a restart); the next
ones are warm, at the same instant plus one slice each (the live case: a
slice's worth of time passed). The collapse evidence (`collapse_samples`) is
also timed on its own, cold and warm.

Live (`--live-minutes`, default 5): the next minutes of the stream arrive as drained
values in batches of `--live-batch` events (2,500: half a second at 5k events/s); after
each batch, one evaluation at the stream time is timed, as the exporter runs it (with
its `Incremental` where the checkout has one; this checkout also checks each result
against a full evaluation, untimed).

Measuring processes alternate between the checkouts (`--reps`): the figures are
read as ratios of the same run.

Usage:
    .venv/bin/python bench/bench_evaluation.py [--baseline-root DIR] [--reps 2]
        [--tickets-per-day 20000] [--hours 24] [--warm 5] [--live-minutes 5]
        [--live-batch 2500] [--start-hour 0]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3_600_000
PARTITIONS = 4


def build(path: Path, tickets_per_day: int, hours: float, live_minutes: float = 0,
          live_batch: int = 2_500, start_hour: float = 0) -> None:
    """The drained state after `hours` of the stream, then (`live_minutes`) the next
    minutes' drained values in batches of `live_batch` events (2,500: half a second at
    5k events/s), as an exporter receives them."""
    from cxpulse.core.config import CoreConfig
    from cxpulse.core.decode import Rejection, decode
    from cxpulse.core.engine import PartitionEngine
    from cxpulse.core.events import role_of
    from cxpulse.core.partitioning import partition_for
    from cxpulse.sim.dirt import generate
    from cxpulse.sim.model import SimConfig

    cfg = CoreConfig()
    sim = SimConfig(seed=1, start_ms=SimConfig().start_ms + int(start_hour * HOUR),
                    duration_ms=int((hours + live_minutes / 60) * HOUR),
                    tickets_per_day=tickets_per_day, duplicates=0.03, disorder_s=120)  # fmt: skip
    cut = sim.start_ms + int(hours * HOUR)
    engines = [PartitionEngine(cfg, p) for p in range(PARTITIONS)]
    state: list[dict[str, bytes | None]] = [{} for _ in range(PARTITIONS)]
    live: list[list[dict[str, bytes | None]]] = []
    n = 0
    for rec in generate(sim):
        e = decode(rec.value)
        if isinstance(e, Rejection):
            continue
        if not live and e.ts >= cut:  # the state ends here; from now on, batches
            for eng, st in zip(engines, state, strict=True):
                st.update(eng.drain_dirty())
            live.append([])
            n = 0
        engines[partition_for(e.ticket_id or e.event_id, PARTITIONS)].apply(role_of(e), e)
        n += 1
        if not live and n % 5000 == 0:
            for eng, st in zip(engines, state, strict=True):
                st.update(eng.drain_dirty())
        elif live and n % live_batch == 0:
            live.append([eng.drain_dirty() for eng in engines])
    if not live:
        for eng, st in zip(engines, state, strict=True):
            st.update(eng.drain_dirty())
    path.write_bytes(pickle.dumps((state, [b for b in live if any(b)])))


def measure(path: Path, warm: int) -> dict[str, Any]:
    import gc

    from cxpulse.core.config import CoreConfig
    from cxpulse.core.evaluation import evaluate
    from cxpulse.core.evaluation.caps import Caps
    from cxpulse.core.evaluation.evidence import collapse_samples
    from cxpulse.core.replica import PartitionReplica
    from cxpulse.exposition import render as rmod

    cfg = CoreConfig()
    state: list[dict[str, bytes | None]]
    live: list[list[dict[str, bytes | None]]]
    state, live = pickle.loads(path.read_bytes())
    replicas = [PartitionReplica(cfg, p) for p in range(PARTITIONS)]
    try:  # an incremental evaluation where the checkout has one, as its exporter runs it
        from cxpulse.core.evaluation.incremental import Incremental

        inc: Any = Incremental()
    except ImportError:
        inc = None

    def run(at_ms: int) -> Any:
        return evaluate(replicas, at_ms) if inc is None else evaluate(replicas, at_ms, inc)

    for rep, st in zip(replicas, state, strict=True):
        for name, raw in st.items():
            rep.apply(name, raw)
    times = [t for r in replicas for role in ("tickets", "surveys")
             if (t := r.stream_time(role)) is not None]  # fmt: skip
    at = max(times)
    writer = getattr(rmod, "exposition", None)

    def text(families: list[Any]) -> bytes:
        if writer is not None:
            out: bytes = writer(families)
            return out
        from prometheus_client import CollectorRegistry, generate_latest

        class Static:
            def collect(self) -> list[Any]:
                return families

        registry = CollectorRegistry()
        registry.register(Static())  # type: ignore[arg-type]
        return generate_latest(registry)

    rows = []
    for i in range(warm + 1):
        gc.collect()
        t0 = time.perf_counter()
        ev = run(at + i * cfg.slice_ms)
        t1 = time.perf_counter()
        families = list(rmod.render(ev))
        t2 = time.perf_counter()
        body = text(families)
        t3 = time.perf_counter()
        series = sum(1 for ln in body.splitlines() if ln and not ln.startswith(b"#"))
        rows.append((t1 - t0, t2 - t1, t3 - t2, series, len(body)))
    end = cfg.slice_of(at) + cfg.slice_ms
    caps = Caps({})
    ev_times = []
    for _ in range(warm + 1):
        t0 = time.perf_counter()
        collapse_samples(replicas, cfg, end, caps)
        ev_times.append(time.perf_counter() - t0)
    # live: each batch of drained values applied, then one evaluation at the stream time
    # (the exporter's loop: apply, evaluate); this checkout also checks the result
    # against a full evaluation (not timed)
    live_s: list[float] = []
    for batch in live:
        for rep, values in zip(replicas, batch, strict=True):
            for name, raw in values.items():
                rep.apply(name, raw)
        now = max(t for r in replicas for role in ("tickets", "surveys")
                  if (t := r.stream_time(role)) is not None)  # fmt: skip
        for rep in replicas:  # parsing what arrived is apply's cost, not the evaluation's
            rep.tickets_store, rep.agents_store, rep.surveys_store  # noqa: B018
        gc.collect()
        t0 = time.perf_counter()
        ev = run(now)
        live_s.append(time.perf_counter() - t0)
        if inc is not None and ev != evaluate(replicas, now):
            raise AssertionError("incremental evaluation differs from the full one")
    warm_rows = rows[1:]
    return {
        "series": rows[-1][3], "bytes": rows[-1][4],
        "cold_eval": rows[0][0], "cold_total": sum(rows[0][:3]),
        "eval": statistics.median(r[0] for r in warm_rows),
        "render": statistics.median(r[1] for r in warm_rows),
        "text": statistics.median(r[2] for r in warm_rows),
        "total": statistics.median(sum(r[:3]) for r in warm_rows),
        "evidence_cold": ev_times[0], "evidence_warm": statistics.median(ev_times[1:]),
        "live": statistics.median(live_s) if live_s else float("nan"),
        "live_p90": sorted(live_s)[int(0.9 * len(live_s))] if live_s else float("nan"),
        "live_n": len(live_s), "incremental": inc is not None,
        "writer": "exposition" if writer is not None else "generate_latest",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-root", help="another checkout (git worktree add --detach)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--tickets-per-day", type=int, default=20_000)
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--warm", type=int, default=5)
    ap.add_argument("--live-minutes", type=float, default=5,
                    help="then this much more of the stream, evaluated after each batch")
    ap.add_argument("--live-batch", type=int, default=2_500, help="events per batch")
    ap.add_argument("--start-hour", type=float, default=0,
                    help="the simulated stream starts this many hours after midnight")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.warm)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state.pickle"
        t0 = time.perf_counter()
        build(state, args.tickets_per_day, args.hours, args.live_minutes, args.live_batch,
              args.start_hour)
        print(f"state: {args.hours:g} h at {args.tickets_per_day} tickets/day, "
              f"{PARTITIONS} partitions, built in {time.perf_counter() - t0:.0f} s", flush=True)
        roots = {"this checkout": ROOT}
        if args.baseline_root:
            roots = {"baseline": Path(args.baseline_root), **roots}
        runs: list[tuple[str, dict[str, Any]]] = []
        for _ in range(args.reps):
            for label, root in roots.items():
                env = {**os.environ, "PYTHONPATH": str(root / "stream")}
                out = subprocess.run(
                    [sys.executable, str(Path(__file__).resolve()), "--measure", str(state),
                     "--warm", str(args.warm)],
                    env=env, check=True, capture_output=True, text=True,
                )  # fmt: skip
                runs.append((label, json.loads(out.stdout)))
                r = runs[-1][1]
                print(f"  {label}: warm total {r['total'] * 1000:.0f} ms", flush=True)
    print()
    print("| checkout | series | writer | evaluate ms | render ms | text ms | total ms "
          "| total ms per 1k series | cold total ms | evidence cold ms | evidence warm ms "
          "| live evaluate ms p50 | p90 | batches | incremental |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, r in runs:
        print(f"| {label} | {r['series']} | {r['writer']} | {r['eval'] * 1000:.0f} "
              f"| {r['render'] * 1000:.0f} | {r['text'] * 1000:.0f} | {r['total'] * 1000:.0f} "
              f"| {r['total'] * 1e6 / r['series']:.1f} | {r['cold_total'] * 1000:.0f} "
              f"| {r['evidence_cold'] * 1000:.0f} | {r['evidence_warm'] * 1000:.1f} "
              f"| {r.get('live', float('nan')) * 1000:.0f} "
              f"| {r.get('live_p90', float('nan')) * 1000:.0f} | {r.get('live_n', 0)} "
              f"| {'yes' if r.get('incremental') else 'no'} |")
    if args.baseline_root:
        def med(label: str, key: str) -> float:
            return float(statistics.median(r[key] for lb, r in runs if lb == label))

        print(f"\nratio this checkout / baseline (same run, medians): warm total "
              f"{med('this checkout', 'total') / med('baseline', 'total'):.2f}, text "
              f"{med('this checkout', 'text') / med('baseline', 'text'):.2f}, evidence warm "
              f"{med('this checkout', 'evidence_warm') / med('baseline', 'evidence_warm'):.2f}, "
              f"live evaluate {med('this checkout', 'live') / med('baseline', 'live'):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
