"""The exporter process: follow every changelog partition, evaluate, serve.

Why a process of its own: a worker only holds the partitions it owns, so no
worker can tell the organisation's CSAT or p90. The changelog holds every
partition's committed state, so a reader of all of it can (a "global table",
as Kafka Streams calls it). Run one or two replicas; each serves the same
numbers (see docs/architecture.md for the Prometheus HA convention).

One asyncio loop, three tasks: `_consume` applies changelog batches to the
replicas and signals new state; `_tick` then evaluates and renders the
Prometheus text once; `_sample_ends` asks the broker for the input topics' end
offsets (the freshness gauge) on its own period, so no broker round trip lies
between new state and its evaluation. It evaluates when a batch with committed state was
applied, at most once per `eval_min_interval` or per the previous
evaluation's duration, whichever is longer (a ceiling on the CPU spent
evaluating under load, and the floor of the produce-to-visible latency), and
every `eval_interval` without new state (the idle clock and the freshness
gauge move on). A fixed tick alone made a change wait for the next tick: p99
6.3 s at 5k events/s with the old 5 s tick (issue 22). A scrape returns the
rendered bytes: however many clients scrape however often, no evaluation runs
for them, and no worker is involved at all.

The evaluation runs in a thread, holding a lock `_consume` also takes per
batch: the replicas never change under it. It is incremental (`Incremental`,
kept in `ExporterState`): only what changed since the previous evaluation is
recomputed, with the same result as a full one (the full one took 0.6-1.1 s
for 5.8k series at 5k events/s, most of the produce-to-visible latency).
Applying a batch runs in a thread for the same reason, in slices of at most
`MAX_RECORDS` so an evaluation waits for little. The HTTP
side is a process of its own (`cxpulse.exporter.serving`): each rendering is
handed to it once, and a scrape there shares neither the interpreter lock nor
the garbage collector of this process, so it never waits on an evaluation.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from cxpulse import metric_names as mn
from cxpulse.changelog.follow import PartitionFollower
from cxpulse.core.config import CoreConfig
from cxpulse.core.evaluation import evaluate
from cxpulse.core.evaluation.incremental import Incremental
from cxpulse.core.outcome import ROLES
from cxpulse.core.replica import PartitionReplica
from cxpulse.exporter.clock import EvaluationClock, Freshness
from cxpulse.exporter.serving import Publisher
from cxpulse.exporter.timing import Timing
from cxpulse.exposition.render import exposition, render
from cxpulse.heap import FrozenHeap
from cxpulse.kafka.access import (
    EXIT_NOPERM,
    AuthWatch,
    KafkaAccessError,
    auth_watch,
    authorization_error,
)
from cxpulse.kafka.topics import topic_partitions
from cxpulse.settings import Settings
from cxpulse.web.server import WebConfig

if TYPE_CHECKING:  # types only: aiokafka is imported where it is used, not at `cxpulse --help`
    from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

log = logging.getLogger("cxpulse.exporter")

#: Changelog records per fetch and applied under the lock in one go: an evaluation
#: that became due waits for at most this many (a few hundred ms under load).
MAX_RECORDS = 5_000


@dataclass
class Snapshot:
    """What a scrape returns: the last rendered evaluation."""

    body: bytes = b""
    ready: bool = False
    evaluated_at_wall: float | None = None


@dataclass
class ExporterState:
    settings: Settings
    config: CoreConfig
    partitions: int
    followers: list[PartitionFollower] = field(default_factory=list)
    replicas: list[PartitionReplica] = field(default_factory=list)
    freshness: Freshness = field(default_factory=Freshness)
    clock: EvaluationClock = field(default_factory=EvaluationClock)
    snapshot: Snapshot = field(default_factory=Snapshot)
    records: int = 0
    record_bytes: int = 0
    batches: int = 0
    eval_seconds: float = 0.0
    caught_up_once: bool = False
    #: does the broker still accept our credentials (`cxpulse.kafka.access.AuthWatch`)
    auth: AuthWatch | None = None
    #: the serving process each rendering goes to (None: kept in `snapshot` only)
    publisher: Publisher | None = None
    #: what each evaluation keeps for the next: only what changed is recomputed
    incremental: Incremental = field(default_factory=Incremental)
    #: the debug trace of where a change spends its time here (`cxpulse.exporter.timing`)
    timing: Timing = field(default_factory=Timing)

    def __post_init__(self) -> None:
        self.followers = [PartitionFollower(p) for p in range(self.partitions)]
        self.replicas = [PartitionReplica(self.config, p) for p in range(self.partitions)]
        self.clock = EvaluationClock(self.settings.idle_timeout_ms)

    def apply(self, partition: int, key: bytes | None, value: bytes | None) -> bool:
        """Feed one changelog record; True when it was a commit marker (its batch applied)."""
        self.records += 1
        self.record_bytes += len(key or b"") + len(value or b"")
        changes = self.followers[partition].feed(key, value)
        if changes is None:
            return False
        self.batches += 1
        replica = self.replicas[partition]
        for name, raw in changes:
            replica.apply(name, raw)
        return True

    def applied_offsets(self) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for f in self.followers:
            offsets = f.marker.offsets if f.marker is not None else {}
            for role in ROLES:
                out[(role, f.partition)] = offsets.get(role, -1)
        return out

    def evaluate_and_render(self, wall_ms: int, wanted: float | None = None) -> None:
        """Evaluate at `wall_ms` and hand the rendering over; `wanted`: when the caller
        began to wait for the lock (`time.monotonic()`, for the timing trace)."""
        started = time.monotonic()
        t0 = time.perf_counter()
        cpu0 = time.thread_time()
        as_of, caught_up = self.freshness.as_of(self.applied_offsets())
        times = [t for r in self.replicas for role in ROLES
                 if (t := r.stream_time(role)) is not None]  # fmt: skip
        at = self.clock.at(wall_ms, max(times) if times else None, caught_up)
        families = (list(render(evaluate(self.replicas, at, self.incremental)))
                    if at is not None else [])  # fmt: skip
        families += self._self_families(wall_ms, as_of, at)
        self.snapshot = Snapshot(exposition(families), True, time.time())
        self.eval_seconds = time.perf_counter() - t0
        cpu = time.thread_time() - cpu0
        ended = time.monotonic()
        if self.publisher is not None:
            self.publisher.body(self.snapshot.body)
        self.timing.evaluated(started if wanted is None else wanted, started, ended,
                              time.monotonic(), cpu)  # fmt: skip

    def not_ready(self) -> str | None:
        """Why /readyz fails even with KPIs rendered (None: it does not)."""
        if self.auth is not None and self.auth.failing:
            return f"kafka refuses this exporter's credentials: {self.auth.last}"
        return None

    def _self_families(self, wall_ms: int, as_of: int | None, at: int | None) -> list[Metric]:
        out: list[Metric] = []
        delay = GaugeMetricFamily(
            mn.KPI_DELAY,
            "Seconds the KPIs are behind real time: now minus the latest instant at which "
            "every input message then present had been applied",
        )
        if as_of is not None:
            delay.add_metric([], max(0.0, (wall_ms - as_of) / 1000))
        out.append(delay)
        ts = GaugeMetricFamily(
            mn.EVALUATION_TIMESTAMP, "Event-time instant the windows are evaluated at"
        )
        if at is not None:
            ts.add_metric([], at / 1000)
        out.append(ts)
        out.append(GaugeMetricFamily(
            mn.EXPORTER_EVAL_SECONDS, "Duration of the previous evaluation", value=self.eval_seconds
        ))  # fmt: skip
        out.append(GaugeMetricFamily(
            mn.EXPORTER_PARTITIONS, "Changelog partitions followed", value=len(self.followers)
        ))  # fmt: skip
        records = CounterMetricFamily(
            mn.EXPORTER_RECORDS.removesuffix("_total"), "Changelog records read"
        )
        records.add_metric([], self.records)
        nbytes = CounterMetricFamily(
            mn.EXPORTER_BYTES.removesuffix("_total"),
            "Changelog bytes read (keys + values): the design's extra Kafka traffic",
        )
        nbytes.add_metric([], self.record_bytes)
        out.append(nbytes)
        corrupt = CounterMetricFamily(
            mn.EXPORTER_CORRUPT.removesuffix("_total"),
            "Changelog records that did not decode (skipped)",
        )
        corrupt.add_metric([], sum(f.corrupt for f in self.followers))
        stale = CounterMetricFamily(
            mn.EXPORTER_STALE_PATCHES.removesuffix("_total"),
            "Changelog journal patches skipped for want of their base (stale slots of a"
            " compacted log)",
        )
        stale.add_metric([], sum(f.stale_patches for f in self.followers))
        out += [records, corrupt, stale]
        if self.auth is not None:  # the worker's names: one alert covers both
            out.append(GaugeMetricFamily(
                mn.KAFKA_AUTH_FAILING,
                "1 while the broker refuses this exporter's Kafka credentials or TLS",
                value=1 if self.auth.failing else 0,
            ))  # fmt: skip
            refused = CounterMetricFamily(
                mn.KAFKA_AUTH_FAILURES_TOTAL,
                "Connection probes (one every 15 s) the broker refused: credentials or TLS",
            )
            refused.add_metric([], self.auth.failures)
            out.append(refused)
        return out


async def run_exporter(
    settings: Settings, config: CoreConfig, sock: socket.socket, web_config: WebConfig | None = None
) -> int:
    """Serve until cancelled (SIGTERM/SIGINT: `cxpulse.lifecycle.run_until_signal`)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition  # aiokafka: not loaded at `--help`

    partitions = await _wait_for_changelog(settings)
    state = ExporterState(settings, config, partitions)
    state.auth = auth = auth_watch(settings)
    sec = settings.aiokafka_security()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **sec,
    )
    await consumer.start()
    publisher: Publisher | None = None
    try:
        tps = [TopicPartition(settings.changelog_topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        initial_end = await consumer.end_offsets(tps)
        state.publisher = publisher = Publisher(sock, web_config)
        log.info(
            "following %s (%d partitions), serving /metrics on %s:%d",
            settings.changelog_topic, partitions, settings.metrics_host, settings.metrics_port,
        )  # fmt: skip
        sources = [
            (role, TopicPartition(topic, p))
            for role, topic in settings.topics.items()
            for p in range(partitions)
        ]
        lock = asyncio.Lock()
        fresh = asyncio.Event()
        consume = asyncio.create_task(_consume(consumer, state, lock, fresh))
        watch = asyncio.create_task(auth.run())
        beat = asyncio.create_task(_heartbeat(state, publisher))
        ends = asyncio.create_task(
            _sample_ends(consumer, state, tps, initial_end, sources, lock, fresh)
        )
        tick = asyncio.create_task(_tick(state, consume, lock, watch, fresh))
        try:
            done, _ = await asyncio.wait(
                {tick, beat, ends}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                task.result()  # re-raise what stopped it
        finally:
            tasks: list[asyncio.Task[Any]] = [tick, beat, consume, watch, ends]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    except Exception as exc:  # a missing ACL: one line naming it (the caller prints it)
        found = authorization_error(exc, settings, exporter=True)
        if found is None:
            raise
        raise found from None
    finally:
        if publisher is not None:
            await asyncio.to_thread(publisher.close)
        await consumer.stop()
    return 0


async def _consume(
    consumer: AIOKafkaConsumer, state: ExporterState, lock: asyncio.Lock,
    fresh: asyncio.Event | None = None,
) -> None:
    while True:
        batch = await consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
        if not batch:
            continue
        fetched = time.monotonic()
        async with lock:
            locked = time.monotonic()
            # in a thread: thousands of records take a while under load; the loop stays free
            markers = await asyncio.to_thread(_apply_batch, state, batch)
            state.timing.applied(markers, fetched, locked, time.monotonic())
            if fresh is not None and markers:  # a commit marker was read
                fresh.set()


def _apply_batch(
    state: ExporterState, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
) -> list[tuple[int, int, int]]:
    """Apply `batch`; the (partition, offset, timestamp ms) of each commit marker in it."""
    markers: list[tuple[int, int, int]] = []
    for tp, records in batch.items():
        for r in records:
            if state.apply(tp.partition, r.key, r.value):
                markers.append((tp.partition, r.offset, r.timestamp))
    return markers


async def _next_evaluation(
    fresh: asyncio.Event, last: float, min_gap: float, idle: float
) -> bool:
    """Wait until it is time to evaluate again; True when new state arrived.

    `last`: `time.monotonic()` at the end of the previous evaluation. New state waits
    until `min_gap` after it; without new state, `idle` after it."""
    await asyncio.sleep(max(0.0, last + min_gap - time.monotonic()))
    try:
        await asyncio.wait_for(fresh.wait(), max(0.0, last + idle - time.monotonic()))
    except TimeoutError:
        return False
    return True


def _periods(settings: Settings) -> tuple[float, float]:
    """(idle re-evaluation period, least gap between evaluations), in seconds."""
    interval = settings.eval_interval_ms / 1000
    return interval, min(interval, settings.eval_min_interval_ms / 1000)


async def _sample_ends(
    consumer: AIOKafkaConsumer,
    state: ExporterState,
    tps: list[TopicPartition],
    initial_end: dict[TopicPartition, int],
    sources: list[tuple[str, TopicPartition]],
    lock: asyncio.Lock,
    fresh: asyncio.Event,
) -> None:
    """Sample the sources' end offsets once per least evaluation gap, for `Freshness`.

    A task of its own: asked before each evaluation, this broker round trip
    delayed every change on its way to `/metrics` (issue 22). Samples are
    recorded under `lock`, which the evaluation thread holds while it reads
    them; the instant of a sample is taken when the broker answered, so the
    wait for the lock does not age it. Also decides when the changelog was read
    up to its end at start, and wakes `_tick` then."""
    _, period = _periods(state.settings)
    while True:
        ends = await consumer.end_offsets([tp for _, tp in sources])
        wall_ms = int(time.time() * 1000)
        async with lock:
            state.freshness.observe(
                wall_ms, {(role, tp.partition): ends[tp] for role, tp in sources}
            )
        if not state.caught_up_once:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= initial_end[tp] for pos, tp in zip(positions, tps, strict=True)):
                state.caught_up_once = True
                log.info("changelog read up to its end at start: serving KPIs")
                fresh.set()
        await asyncio.sleep(period)


async def _tick(
    state: ExporterState,
    consume: asyncio.Task[None],
    lock: asyncio.Lock,
    watch: asyncio.Task[KafkaAccessError] | None = None,
    fresh: asyncio.Event | None = None,
    heap: FrozenHeap | None = None,
) -> None:
    interval, min_gap = _periods(state.settings)
    fresh = fresh if fresh is not None else asyncio.Event()
    heap = heap if heap is not None else FrozenHeap()
    while True:
        if watch is not None and watch.done():
            raise watch.result()  # credentials refused for auth_failure_exit_after: 77/78
        if consume.done():
            consume.result()  # re-raise what stopped the consumer
            raise RuntimeError("changelog consumer stopped")
        if state.caught_up_once:
            wanted = time.monotonic()
            async with lock:  # `_consume` sets `fresh` only under it: nothing is missed
                fresh.clear()
                await asyncio.to_thread(state.evaluate_and_render, int(time.time() * 1000),
                                        wanted)  # fmt: skip
                # its garbage gone, the state out of the collector's sight (`FrozenHeap`)
                await asyncio.to_thread(heap.settle, time.monotonic())
        # spaced from its end by at least its own duration: evaluating takes at most half
        # of the time, the rest is left to `_consume` (else a busy exporter falls behind)
        gap = min(interval, max(min_gap, state.eval_seconds))
        await _next_evaluation(fresh, time.monotonic(), gap, interval)


async def _heartbeat(state: ExporterState, publisher: Publisher) -> None:
    """Every second: readiness to the serving process (its /healthz hears that this loop
    answers); raises when the serving process is gone."""
    while True:
        await asyncio.to_thread(publisher.status, state.not_ready())
        await asyncio.sleep(1.0)


async def _wait_for_changelog(settings: Settings) -> int:
    """Partition count of the changelog, waiting for a worker to create it."""
    warned = False
    name = settings.changelog_topic
    while True:
        hidden: set[str] = set()
        counts = await topic_partitions(settings, [name], hidden)
        n = counts.get(name)
        if n:
            return n
        if name in hidden:  # not "does not exist yet": it would wait for ever
            raise KafkaAccessError(
                EXIT_NOPERM,
                f"not authorized: the broker hides topic {name!r} from this user; "
                f"grant Read on topic {name!r} (the state changelog)",
            )
        if not warned:
            log.warning(
                "changelog topic %r does not exist yet (no worker of group %r has started): "
                "waiting", settings.changelog_topic, settings.group_id,
            )  # fmt: skip
            warned = True
        await asyncio.sleep(2)
