"""Changelog bytes and records per input event, in process, on the worker's write path.

What is measured is exactly what the direct worker writes to the changelog:
per batch and source partition `shared.handle_message` applies each message
inside `engine.batch()` (as `DirectWorker._apply` does), then
`PartitionStore.batch_writes(engine.drain_dirty(), now)` returns the records
(state keys, parts, tombstones, the commit marker) that go to changelog
partition p in one transaction. Bytes = key + value of every record (Kafka's
own framing, the same for any format, is left out); records include the
marker and tombstones. No broker: the figures are deterministic, so one run is
enough and load does not matter (only the restore and compression seconds are
timed).

Stored bytes: what the broker appends to the changelog topic's log for those
records, per producer compression codec (`--codecs`): each commit's records
of one partition as the one producer record batch the worker sends (aiokafka's
own batch builder, magic 2, transactional, split at the worker's batch bytes;
the broker keeps the producer's batches as they are with the topic's default
`compression.type=producer`), plus one transaction commit marker batch (78 B)
per commit. That is the log before compaction (what is written to disk and
replicated), not what compaction leaves. lz4 and zstd need `cramjam` (readers
too: the exporter and a recovering worker decompress); a codec whose library
is missing is left out of the table.

Scenarios (4 partitions, keys routed like the Kafka producer, `partition_for`):

* `busy`: the busy day (`simulate --seed 1 --duration 24h --tickets-per-day
  20000 --duplicates 0.03 --disorder 120 --malformed 0.01`) in batches of
  20,000 messages (the worker's `batch_size`: a catch-up);
* `live`: the same day in batches of 250 (a worker keeping up);
* `trickle`: the first `--trickle-events` messages of that day, one message
  per batch (a real helpdesk: 2 events a second, one transaction each);
* `fat`: one ticket of 20,000 events (`tests.support.hostile_volume`) in
  order, and the same events newest first, in batches of 250.

Restore: after the busy day, the changelog compacted (latest value per key)
is recovered (`PartitionStore.recover`) and the engines rebuilt
(`PartitionEngine.restore`), timed (CPU seconds of this process), and stated
per million open tickets (tickets the engines track at the end of the day).
That is the cost once the local store is lost, besides reading the bytes.

`--compare-pythonpath DIR` runs every scenario a second time with another
checkout's code (DIR: a checkout or its `stream/` directory, e.g. a `git
worktree` of main), in a subprocess, on the same input, interleaved with this
code's runs, and prints both and their ratio.

Usage:
    .venv/bin/python bench/bench_changelog.py [--compare-pythonpath DIR]
        [--scenarios busy,live,trickle,fat] [--tickets-per-day 20000]
        [--duration-h 24] [--trickle-events 20000] [--fat-events 20000]
        [--codecs none,gzip,lz4,zstd] [--broker-events N] [--smoke]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PARTITIONS = 4
#: source message as the worker sees it: (role, key, value)
Msg = tuple[str, bytes | None, bytes]

SCENARIOS = ("busy", "live", "trickle", "fat")


# --- input (generated once, by this checkout, and handed to both runs) -------


def busy_day(tickets_per_day: int, duration_h: float) -> list[Msg]:
    from cxpulse.sim.dirt import generate
    from cxpulse.sim.model import SimConfig

    cfg = SimConfig(
        seed=1, duration_ms=int(duration_h * 3_600_000), tickets_per_day=float(tickets_per_day),
        duplicates=0.03, disorder_s=120.0, malformed=0.01,
    )  # fmt: skip
    return [(r.role, r.key, r.value) for r in generate(cfg)]


def fat_ticket(events: int) -> list[Msg]:
    from tests.support.hostile_volume import long_tickets

    return [("tickets", b"T-LONG-00000", v) for v in long_tickets(1, events)]


def inputs(args: argparse.Namespace) -> dict[str, list[tuple[str, list[Msg], int]]]:
    """scenario -> [(variant, messages, batch size)]"""
    out: dict[str, list[tuple[str, list[Msg], int]]] = {}
    wanted = args.scenarios.split(",")
    day: list[Msg] = []
    if {"busy", "live", "trickle"} & set(wanted):
        day = busy_day(args.tickets_per_day, args.duration_h)
    if "busy" in wanted:
        out["busy"] = [("busy day, batches of 20,000", day, 20_000)]
    if "live" in wanted:
        out["live"] = [("live, batches of 250", day, 250)]
    if "trickle" in wanted:
        out["trickle"] = [
            (f"trickle, 1 message per batch (first {args.trickle_events:,})",
             day[: args.trickle_events], 1),
        ]  # fmt: skip
    if "fat" in wanted:
        fat = fat_ticket(args.fat_events)
        out["fat"] = [
            (f"fat ticket ({args.fat_events:,} events) in order", fat, 250),
            (f"fat ticket ({args.fat_events:,} events) reversed", fat[::-1], 250),
        ]
    return out


# --- one run (in the code under test: this checkout or --compare-pythonpath) --


#: aiokafka codec ids (`DefaultRecordBatchBuilder` attributes)
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
#: the direct worker's producer batch bytes (`worker.direct._MAX_BATCH_BYTES`)
PRODUCER_BATCH_BYTES = 512 * 1024
#: a transaction's commit marker: one control batch of one record per partition
COMMIT_MARKER_BYTES = 78


def available_codecs(wanted: str) -> list[str]:
    from aiokafka import codec

    have = {"none": True, "gzip": True, "snappy": codec.has_snappy(),
            "lz4": codec.has_lz4(), "zstd": codec.has_zstd()}  # fmt: skip
    out = [c for c in wanted.split(",") if c]
    for c in out:
        if c not in CODECS:
            raise SystemExit(f"--codecs: known codecs are {', '.join(CODECS)}")
    return [c for c in out if have[c]]


def stored_bytes(writes: list[tuple[bytes, bytes | None]], codec: int) -> int:
    """Bytes of the record batches a producer sends for one commit's `writes`
    to one partition, plus the transaction's commit marker there."""
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    total, i = COMMIT_MARKER_BYTES, 0
    while i < len(writes):
        b = DefaultRecordBatchBuilder(2, codec, 1, 1000, 0, 0, PRODUCER_BATCH_BYTES)
        used = 61
        n = 0
        while i < len(writes):
            k, v = writes[i]
            size = len(k) + (len(v) if v is not None else 0) + 32
            if n and used + size > PRODUCER_BATCH_BYTES:
                break
            b.append(n, 1_800_000_000_000, k, v, [])
            used += size
            n += 1
            i += 1
        total += len(b.build())
    return total


def run_variant(
    msgs: list[Msg],
    batch: int,
    restore: bool,
    codecs: Sequence[str] = (),
    commits: list[tuple[int, list[tuple[bytes, bytes | None]]]] | None = None,
) -> dict[str, Any]:
    """Feed `msgs` to 4 partitions' engines in batches; sum what is written
    (and what the broker would store with each of `codecs`)."""
    from cxpulse.changelog.store import PartitionStore
    from cxpulse.core.engine import PartitionEngine
    from cxpulse.core.partitioning import partition_for
    from cxpulse.settings import Settings, core_config
    from cxpulse.worker.shared import count_label_caps, handle_message

    config = core_config(Settings())
    engines: dict[int, Any] = {}
    stores: dict[int, Any] = {}
    offsets = {(p, r): 0 for p in range(PARTITIONS) for r in ("tickets", "surveys")}
    # as the direct worker with transactional writes (its default) recovers them
    params = inspect.signature(PartitionStore.recover).parameters
    kw: dict[str, Any] = {"with_prev": False} if "with_prev" in params else {}
    if "journal_slots" in params:  # format 4, as the transactional direct worker
        from cxpulse.changelog.records import JOURNAL_SLOTS

        kw["journal_slots"] = JOURNAL_SLOTS
    for p in range(PARTITIONS):
        engines[p] = PartitionEngine(config, p)
        store, _rec = PartitionStore.recover(p, [], epoch=p + 1, **kw)
        stores[p] = store
    table: dict[bytes, bytes | None] = {}
    n_bytes = n_records = largest = batches = 0
    for c in codecs:  # imports and first-call costs outside the timing
        stored_bytes([(b"k", b"v")], CODECS[c])
    stored = dict.fromkeys(codecs, 0)
    stored_cpu = dict.fromkeys(codecs, 0.0)
    now_ms = 1_800_000_000_000  # after the simulated days: no event is from the future
    rr = 0
    for i in range(0, len(msgs), batch):
        chunk = msgs[i : i + batch]
        by_part: dict[int, list[Msg]] = {}
        for m in chunk:
            if m[1] is None:
                p, rr = rr % PARTITIONS, rr + 1  # unkeyed: the producer spreads them
            else:
                p = partition_for(m[1], PARTITIONS)
            by_part.setdefault(p, []).append(m)
        now_ms += 1000
        for p, part_msgs in sorted(by_part.items()):
            engine, store = engines[p], stores[p]
            counts: dict[str, int] = {}
            with engine.batch():
                for role, key, value in part_msgs:
                    off = offsets[(p, role)]
                    offsets[(p, role)] = off + 1
                    handle_message(engine, role, role, p, off, key, value, counts, now_ms)
                    store.marker.offsets[role] = off
            count_label_caps(engine, counts)
            for name, n in counts.items():
                store.count(name, n)
            writes = store.batch_writes(engine.drain_dirty(), now_ms)
            batches += 1
            if commits is not None:
                commits.append((p, writes))
            for c in codecs:
                t0 = time.process_time()
                stored[c] += stored_bytes(writes, CODECS[c])
                stored_cpu[c] += time.process_time() - t0
            for k, v in writes:
                size = len(k) + (len(v) if v is not None else 0)
                n_bytes += size
                largest = max(largest, size)
                n_records += 1
                table[k] = v
    out: dict[str, Any] = {
        "events": len(msgs), "bytes": n_bytes, "records": n_records,
        "largest": largest, "batches": batches,
        "compacted": sum(len(k) + len(v) for k, v in table.items() if v is not None),
        "stored": stored, "stored_cpu": stored_cpu,
    }  # fmt: skip
    if restore:
        out.update(time_restore(table, engines, config))
    return out


def time_restore(
    table: dict[bytes, bytes | None], engines: dict[int, Any], config: Any
) -> dict[str, Any]:
    """CPU seconds to rebuild every partition from the compacted changelog."""
    from cxpulse.changelog.store import PartitionStore
    from cxpulse.core.engine import PartitionEngine

    items = [(k, v) for k, v in table.items() if v is not None]
    tracked = sum(e.tickets_tracked() for e in engines.values())
    t0 = time.process_time()
    for p in range(PARTITIONS):
        prefix = f"{p}/".encode()
        _store, rec = PartitionStore.recover(p, [kv for kv in items if kv[0].startswith(prefix)])
        restored = PartitionEngine.restore(config, p, rec.items.items())
        assert restored.tickets_tracked() == engines[p].tickets_tracked()
    secs = time.process_time() - t0
    return {"restore_s": secs, "tickets": tracked}


def broker_check(msgs: list[Msg], codecs: list[str]) -> None:
    """The model's stored bytes against a real broker's log segments: the trickle's
    commits (this code), each one transaction of a transactional producer, to one
    4-partition topic per codec on a private broker; then the size of its .log files."""
    import asyncio

    from aiokafka import AIOKafkaProducer
    from cxpulse.kafka.broker import KafkaBroker, create_topics

    commits: list[tuple[int, list[tuple[bytes, bytes | None]]]] = []
    model = run_variant(msgs, 1, False, codecs, commits)

    async def produce(bootstrap: str, topic: str, codec: str) -> None:
        prod = AIOKafkaProducer(
            bootstrap_servers=bootstrap, transactional_id=f"bench-{topic}", acks="all",
            enable_idempotence=True, linger_ms=5, max_batch_size=PRODUCER_BATCH_BYTES,
            compression_type=None if codec == "none" else codec,
        )  # fmt: skip
        await prod.start()
        try:
            for p, writes in commits:
                async with prod.transaction():
                    for k, v in writes:
                        await prod.send(topic, key=k, value=v, partition=p)
        finally:
            await prod.stop()

    broker = KafkaBroker().start()
    try:
        topics = {c: f"bench-changelog-{c}" for c in codecs}
        asyncio.run(create_topics(broker.bootstrap, list(topics.values()), PARTITIONS))
        for c, t in topics.items():
            asyncio.run(produce(broker.bootstrap, t, c))
        assert broker.workdir is not None
        data = broker.workdir / "data"
        n = len(msgs)
        print()
        print(f"Real broker, trickle (first {n:,} messages, one transaction each): "
              f"payload {model['bytes'] / n:,.0f} B/event")  # fmt: skip
        print()
        print("| codec | model B/event | broker log segments B/event |")
        print("|---|---:|---:|")
        for c, t in topics.items():
            size = sum(f.stat().st_size for d in data.glob(f"{t}-*") for f in d.glob("*.log"))
            print(f"| {c} | {model['stored'][c] / n:,.0f} | {size / n:,.0f} |")
    finally:
        broker.stop(remove_data=True)


def child(path: str) -> int:
    """Subprocess entry: read the pickled job, print one JSON line per variant."""
    with open(path, "rb") as f:
        job = pickle.load(f)
    for label, msgs, batch, restore, codecs in job:
        r = run_variant(msgs, batch, restore, codecs)
        r["label"] = label
        print(json.dumps(r), flush=True)
    return 0


def run_in(
    pythonpath: str, job: list[tuple[str, list[Msg], int, bool, list[str]]]
) -> list[dict[str, Any]]:
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as f:
        pickle.dump(job, f)
    try:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([pythonpath, str(ROOT)]))
        out = subprocess.run(
            [sys.executable, __file__, "--child", f.name],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(f"run with PYTHONPATH={pythonpath} failed:\n{out.stderr[-3000:]}")
        return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    finally:
        os.unlink(f.name)


def stream_dir(path: str) -> str:
    p = Path(path)
    return str(p / "stream") if (p / "stream" / "cxpulse").is_dir() else str(p)


def git_head(path: str) -> str:
    out = subprocess.run(
        ["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "?"


def row(name: str, r: dict[str, Any]) -> str:
    n = r["events"]
    restore = "-"
    if "restore_s" in r and r["tickets"]:
        restore = f"{r['restore_s']:.2f} s ({r['restore_s'] / r['tickets'] * 1e6:,.0f} s/M)"
    return (
        f"| {name} | {r['label']} | {n:,} | {r['batches']:,} | {r['records']:,} | "
        f"{r['bytes'] / 1e6:,.2f} MB | {r['bytes'] / n:,.0f} | {r['records'] / n:.2f} | "
        f"{r['largest']:,} | {r['compacted'] / 1e6:,.2f} MB | {restore} |"
    )


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare-pythonpath", help="another checkout (or its stream/) as baseline")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--tickets-per-day", type=int, default=20_000)
    ap.add_argument("--duration-h", type=float, default=24.0)
    ap.add_argument("--trickle-events", type=int, default=20_000)
    ap.add_argument("--fat-events", type=int, default=20_000)
    ap.add_argument("--codecs", default="none,gzip,lz4,zstd",
                    help="producer compression codecs to state stored bytes for")  # fmt: skip
    ap.add_argument("--broker-events", type=int, default=0,
                    help="also check the stored bytes on a real private broker "
                    "(the trickle's first N messages)")  # fmt: skip
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.child:
        return child(args.child)
    if args.smoke:
        args.tickets_per_day, args.duration_h = 3000, 3.0
        args.trickle_events, args.fat_events = 200, 300
    for s in args.scenarios.split(","):
        if s not in SCENARIOS:
            raise SystemExit(f"--scenarios: known scenarios are {', '.join(SCENARIOS)}")
    sys.path.insert(0, str(ROOT / "stream"))
    sys.path.insert(0, str(ROOT))
    jobs = inputs(args)
    codecs = available_codecs(args.codecs)
    here = str(ROOT / "stream")
    versions = [("this", here)]
    if args.compare_pythonpath:
        versions.insert(0, ("baseline", stream_dir(args.compare_pythonpath)))
    heads = {name: git_head(path) for name, path in versions}
    print(f"{PARTITIONS} partitions; bytes = key + value of every changelog record written "
          "(marker and tombstones included); commits: " +
          ", ".join(f"{n} {heads[n]}" for n, _ in versions))  # fmt: skip
    print()
    print(
        "| code | scenario | events | commits | records | written | B/event | "
        "records/event | largest record | compacted | restore (CPU, per M tickets) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for scen, variants in jobs.items():
        for name, path in versions:  # interleaved: baseline then this, per scenario
            job = [(label, msgs, batch, scen == "busy", codecs) for label, msgs, batch in variants]
            for r in run_in(path, job):
                results[(name, r["label"])] = r
                print(row(f"{name} {heads[name]}", r), flush=True)
    if codecs:
        print()
        print("Stored by the broker (record batches as the producer sends them, one per "
              "commit and partition, + 78 B commit marker each), B/event "
              "(compression CPU, us/event):")  # fmt: skip
        print()
        print("| code | scenario | " + " | ".join(codecs) + " |")
        print("|---|---|" + "---:|" * len(codecs))
        for (name, label), r in results.items():
            n = r["events"]
            cells = [f"{r['stored'][c] / n:,.0f} ({r['stored_cpu'][c] / n * 1e6:,.0f} us)"
                     for c in codecs]  # fmt: skip
            print(f"| {name} {heads[name]} | {label} | " + " | ".join(cells) + " |")
    print()
    for name, _ in versions:
        fat = [r for (n, label), r in results.items() if n == name and label.startswith("fat")]
        if len(fat) == 2:
            print(f"{name}: fat ticket reversed / in order: "
                  f"{fat[1]['bytes'] / fat[0]['bytes']:.2f}x bytes")  # fmt: skip
    if args.compare_pythonpath:
        for (name, label), r in results.items():
            if name != "this":
                continue
            b = results.get(("baseline", label))
            if b:
                print(f"this / baseline, {label}: bytes {r['bytes'] / b['bytes']:.3f}, "
                      f"records {r['records'] / b['records']:.3f}")  # fmt: skip
    if args.broker_events:
        broker_check(busy_day(args.tickets_per_day, args.duration_h)[: args.broker_events], codecs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
