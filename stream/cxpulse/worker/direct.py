"""The default worker runtime: one aiokafka consumer loop around the core.

Why not faust's stream machinery: measured on this project's 2-core machines,
faust delivers about 10,000 messages/s to an agent that does *nothing*
(conductor, per-message tasks and the take buffer cost ~100 µs a message,
docs/benchmark-history.md), half the 20,000 events/s a worker must sustain. This
loop takes whole `getmany` batches straight from aiokafka and keeps
everything else the faust runtime (`cxpulse.worker.agents`) does: the same
core, the same changelog records and commit marker (`persistence`), the same
self-metrics. `runtime: faust` selects the faust agent instead.

Per `getmany` batch, under one lock:

1. per source TopicPartition: skip offsets at or below the partition's commit
   marker (re-deliveries), decode, apply or dead-letter (`shared.handle_message`);
2. per touched partition: each dirty state key once, then the marker, encoded;
3. wait until the previous batch is durable, then start this batch's write
   (a task): the encoded records to changelog partition p in a few large
   producer batches, every broker acknowledgement (changelog and dead
   letters) awaited, then the writes copied into the local store with the
   changelog offset.

Step 3 is pipelined: while batch N's transaction commits (broker round
trips, where the loop would otherwise sit idle), batch N+1 is fetched and
applied in memory. Exactly once is unchanged: a batch counts only through
its marker, written in the same transaction as its state; N+1's transaction
starts only once N's committed (in order, one open transaction per
producer); anything that needs the durable position (a revocation, an
assignment, a restore, the stop) waits for the batch in flight first; a
failed write ends the process like any failed batch (the engine then holds
N+1 unwritten, which the restart rebuilds exactly, as before).

Rebalances (eager, range assignor so tickets p and surveys p land together):
`on_partitions_revoked` waits for the batch in flight (the lock); on
assignment each partition's state is rebuilt from local store + changelog
tail unless this worker still holds it and nobody wrote the changelog
meanwhile, and the consumer is seeked to the marker's offsets. The group's
committed offsets are written for monitoring tools only; the marker is the
truth. Any failure inside a batch ends the process (exit 70): the engine may
hold a half-applied batch, and a restart rebuilds exactly (crash-only).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn, TypeAlias

from cxpulse.changelog.records import (
    MIN_MAX_RECORD_BYTES,
    CorruptState,
    Write,
    partition_prefix,
)
from cxpulse.changelog.store import PartitionStore, Recovery
from cxpulse.core.deadletter import DeadLetter
from cxpulse.core.engine import PartitionEngine
from cxpulse.crashpoint import armed, crash_point
from cxpulse.heap import WORKER_SETTLE_EVERY_S, FrozenHeap
from cxpulse.kafka.access import (
    KafkaAccessError,
    auth_watch,
    authorization_error,
    probe,
)
from cxpulse.kafka.topics import deadletter_limit, ensure_compacted_topic, topic_max_message_bytes
from cxpulse.settings import Settings, core_config
from cxpulse.worker import timing
from cxpulse.worker.localstore import LocalStore, LocalStoreCorrupt, open_or_quarantine
from cxpulse.worker.shared import (
    ROLES,
    PartitionStatus,
    WorkerStatus,
    await_all,
    count_label_caps,
    counter_name,
    exit_with,
    handle_message,
    partition_lag,
    worker_status,
)

if TYPE_CHECKING:  # types only: aiokafka is imported where it is used, not when `cxpulse --help`
    # loads this module; aiohttp/metrics belong to the command that serves the endpoint
    from aiohttp import web
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
    from aiokafka.structs import RecordMetadata

    from cxpulse.worker.metrics import WorkerView

    #: a record as fetched (no deserializer): key and value may be absent
    Record: TypeAlias = ConsumerRecord[bytes | None, bytes | None]
    #: what `getmany` returns: each assigned partition's fetched records
    Batch = Mapping[TopicPartition, list[Record]]
    #: a queued send: its acknowledgement, and how many records it carries
    Sent = tuple[asyncio.Future[RecordMetadata], int]
    #: an offset jump seen while applying: (partition, role, expected, got)
    Gap = tuple[TopicPartition, str, int, int]

log = logging.getLogger("cxpulse.worker")

#: Producer batch size for changelog writes (below the broker's 1 MiB default);
#: raised to hold the largest state record when `max_record_bytes` is larger,
#: lowered to the changelog topic's max.message.bytes when that is smaller.
_MAX_BATCH_BYTES = 512 * 1024
#: A record batch's header and a record's framing, kept free under the topic's limit.
_RECORD_BATCH_OVERHEAD = 1024
_COMMIT_EVERY_S = 5.0
_CLIENT_TIMEOUT_S = 10.0


@dataclass
class _Partition:
    """A partition this worker holds: its engine, commit bookkeeping, local copy."""

    engine: PartitionEngine
    store: PartitionStore
    #: None with `memory://`: a copy in memory would double the state's
    #: footprint to spare a changelog read in the rare case a partition
    #: leaves and comes back changed; the restore reads the changelog instead
    local: LocalStore | None
    #: changelog offset of the last record this worker wrote (or read at restore)
    changelog_end: int | None
    last_event_ms: int | None = None
    #: source offsets (role -> last offset) of the last durable marker: the
    #: marker's own offsets run one batch ahead while a write is in flight
    durable: dict[str, int] = field(default_factory=dict)


class DirectWorker:
    """One worker process: consumer group member, engines, changelog writer."""

    def __init__(self, settings: Settings, partitions: int) -> None:
        self.settings = settings
        self.n_partitions = partitions
        self.config = core_config(settings)
        self.role_by_topic = {settings.topic_tickets: "tickets", settings.topic_surveys: "surveys"}
        self.topic_by_role = {r: t for t, r in self.role_by_topic.items()}
        self._parts: dict[int, _Partition] = {}
        #: partitions assigned now; `_parts` may also hold revoked ones, kept in
        #: case the next assignment gives them back unchanged
        self._assigned: set[int] = set()
        self._locals: dict[int, LocalStore] = {}
        self._lock = asyncio.Lock()
        #: the write of the last applied batch, while it is in flight (`_settle`)
        self._pending: asyncio.Future[None] | None = None
        #: seconds spent waiting for a batch in flight (logged at the stop): what
        #: the pipeline did not hide of the writes
        self.write_wait_s = 0.0
        self._stop = asyncio.Event()
        self._last_success_s: float | None = None
        #: the group member and the changelog reader: created by `run()`
        self._consumer: AIOKafkaConsumer
        self._reader: AIOKafkaConsumer
        self._producer: AIOKafkaProducer | None = None  # shared, without transactional_writes
        self._txn_producers: dict[int, AIOKafkaProducer] = {}
        #: offset jumps seen while applying a batch, checked before it is written
        self._gaps: dict[int, list[Gap]] = {}
        self._last_commit = 0.0
        self._last_freeze = time.monotonic()
        self._heap = FrozenHeap()
        self.batches = 0
        self.skipped_redeliveries = 0
        self.dropped_revoked = 0
        #: (partition, reason) -> local copies found corrupt and rebuilt (this process)
        self.local_store_rebuilds: dict[tuple[int, str], int] = {}
        #: largest dead letter sent as a copy (`_deadletter_limit`)
        self._dl_max = settings.deadletter_max_bytes
        #: largest state record (`_record_limit`): the setting, or less if the
        #: changelog topic's max.message.bytes is smaller
        self._record_max = settings.max_record_bytes
        self._batch_bytes = max(_MAX_BATCH_BYTES, self._record_max + _RECORD_BATCH_OVERHEAD)
        #: does the broker still accept our credentials (rotation while running)
        self.auth = auth_watch(settings)
        #: why the worker stopped itself (credentials refused too long): exit code + line
        self.fatal: KafkaAccessError | None = None

    # -- the narrow interface the exporter reads (same as the faust runtime)

    def engines(self) -> Mapping[int, PartitionEngine]:
        return {p: part.engine for p, part in self._parts.items() if p in self._assigned}

    def status(self) -> WorkerStatus:
        parts = [
            PartitionStatus(
                p,
                dict(part.store.marker.counters),
                {r: part.engine.stream_time(r) for r in ROLES},
                part.last_event_ms,
                partition_lag(
                    functools.partial(self._highwater, p=p),
                    part.store.marker.offsets,
                    self.topic_by_role,
                ),
            )
            for p, part in sorted(self._parts.items())
            if p in self._assigned
        ]
        return worker_status(
            parts, self._last_success_s, self.topic_by_role, self.local_store_rebuilds,
            kafka_auth_failing=self.auth.failing, kafka_auth_failures=self.auth.failures,
        )  # fmt: skip

    def _highwater(self, topic: str, p: int) -> int | None:
        from aiokafka import TopicPartition  # aiokafka: not loaded at `--help` (module docs)

        try:
            hw = self._consumer.highwater(TopicPartition(topic, p))
        except Exception:  # not started (no `_consumer` yet), or not assigned any more
            return None
        return None if hw is None else int(hw)

    # -- lifecycle

    def request_stop(self) -> None:
        self._stop.set()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def _new_producer(self, transactional_id: str | None) -> AIOKafkaProducer:
        from aiokafka import AIOKafkaProducer  # aiokafka: not loaded at `--help`

        s = self.settings
        return AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            transactional_id=transactional_id,
            transaction_timeout_ms=s.transaction_timeout_ms,
            linger_ms=5,
            max_batch_size=self._batch_bytes,
            compression_type=s.producer_compression(),
            request_timeout_ms=max(40_000, s.session_timeout_ms + 5_000),
            **s.aiokafka_security(),
        )

    def _producer_for(self, p: int) -> AIOKafkaProducer:
        """Writes changelog partition p and p's dead letters: with
        `transactional_writes` a transactional producer of p alone."""
        if self.settings.transactional_writes:
            return self._txn_producers[p]
        assert self._producer is not None, "run() creates it without transactional_writes"
        return self._producer

    async def _fence(self, p: int) -> None:
        """Start partition p's transactional producer, fencing any earlier owner.

        Kafka bumps the producer epoch of the transactional id and aborts the
        earlier owner's open transaction, so after this nothing but this
        worker can add to changelog partition p (until someone fences us).
        """
        if not self.settings.transactional_writes:
            return
        await self._drop_producer(p)
        producer = self._new_producer(f"{self.settings.changelog_topic}-{p}")
        await producer.start()
        self._txn_producers[p] = producer

    async def _drop_producer(self, p: int) -> None:
        producer = self._txn_producers.pop(p, None)
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def run(self) -> None:
        # aiokafka: not loaded at `--help`
        from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
        from aiokafka.coordinator.assignors.range import RangePartitionAssignor

        s = self.settings
        sec = s.aiokafka_security()
        if await ensure_compacted_topic(s, s.changelog_topic, self.n_partitions,
                                        "the changelog topic"):  # fmt: skip
            log.info("created changelog topic with %d partitions", self.n_partitions)
        await self._deadletter_limit()
        await self._record_limit()
        if not s.transactional_writes:
            self._producer = self._new_producer(None)
        self._reader = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            # aborted writes of a fenced or killed owner are not state, also when
            # this worker writes without transactions (an earlier owner may have
            # used them: read uncommitted, its aborted batch's marker counted the
            # batch done; without transactions in the log the two read the same)
            isolation_level="read_committed",
            **sec,
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            group_id=s.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.batch_size,
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            rebalance_timeout_ms=s.rebalance_timeout_ms,
            request_timeout_ms=max(40_000, s.session_timeout_ms + 5_000),
            **sec,
        )
        worker = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            """aiokafka logs and swallows a listener's exception; a worker that
            failed to restore a partition must not go on without it."""

            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                await _or_exit(worker._on_revoked(revoked), worker.stopping, worker._access)

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                await _or_exit(worker._on_assigned(assigned), worker.stopping, worker._access)

        if self._producer is not None:
            await self._producer.start()
        await self._reader.start()
        await self._consumer.start()
        watch = asyncio.ensure_future(self._watch_auth())
        try:
            self._consumer.subscribe([s.topic_tickets, s.topic_surveys], listener=Listener())
            await self._loop()
        finally:
            watch.cancel()
            await self._shutdown()

    async def _watch_auth(self) -> None:
        """Stop the worker once the broker has refused its credentials for
        `auth_failure_exit_after` (`AuthWatch`); `run_direct` then exits 77/78."""
        self.fatal = await self.auth.run()
        self.request_stop()

    async def _access(self, exc: BaseException) -> KafkaAccessError | None:
        """Why a failed step is a permission or credential problem, if it is one:
        a missing ACL (named), or credentials/TLS the broker refuses now (a fresh
        probe: a batch that failed because a rotated password stopped every
        reconnection should say so, not 'batch failed')."""
        found = authorization_error(exc, self.settings)
        if found is None:
            found = (await probe(self.auth.sec))[1]
        return found

    async def _shutdown(self) -> None:
        """Leave the group and close the clients, each bounded: a stop must not
        wait for a broker that is down (the state is durable batch by batch).

        First the group's offsets once more, so the committed offsets a monitoring
        tool (or the next owner's lag) sees are those of the last durable batch, not
        of up to `_COMMIT_EVERY_S` earlier (the marker stays the truth)."""
        if self._parts:  # `_shutdown` runs only once `run()` started the clients
            with contextlib.suppress(Exception):  # bounded inside; leaving anyway
                await self._commit_for_monitoring()
        clients = [self._consumer, self._reader, self._producer, *self._txn_producers.values()]
        stops = [c.stop() for c in clients if c is not None]  # leaving the group revokes
        # all at once under one bound (one by one, six clients could take a
        # minute with the broker away); aiokafka's stop can also raise the
        # CancelledError of its own fetcher task then: we are leaving anyway
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(
                asyncio.gather(*stops, return_exceptions=True), _CLIENT_TIMEOUT_S
            )
        for local in self._locals.values():
            local.close()
        log.info("stopped: batches=%d, waited %.2fs for writes", self.batches, self.write_wait_s)

    async def _loop(self) -> None:
        s = self.settings
        consumer = self._consumer
        next_log = time.monotonic() + 10
        while not self._stop.is_set():
            batch = await consumer.getmany(timeout_ms=s.batch_timeout_ms, max_records=s.batch_size)
            if batch:
                await self._step(self._process(batch))
            elif self._pending is not None and self._pending.done():
                await self._step(self._settle())  # idle: a failed write must not wait
            now = time.monotonic()
            if now - self._last_freeze > WORKER_SETTLE_EVERY_S:
                self._last_freeze = now
                self._heap.settle(now)  # the state out of the collector's sight (cxpulse.heap)
            if now - self._last_commit > _COMMIT_EVERY_S:
                self._last_commit = now
                await self._commit_for_monitoring()
            if now > next_log:
                next_log = now + 10
                done = {p: dict(x.store.marker.offsets) for p, x in sorted(self._parts.items())}
                log.info(
                    "progress: batches=%d skipped_redeliveries=%d dropped_revoked=%d offsets=%s",
                    self.batches, self.skipped_redeliveries, self.dropped_revoked, done,
                )  # fmt: skip
        await self._step(self._settle())  # the batch in flight, before leaving

    async def _step(self, step: Awaitable[None]) -> None:
        """`_process_or_stop(step)`; any failure ends the process (exit 70, or
        77/78 for a permission or credential problem)."""
        try:
            await self._process_or_stop(step)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            access = await self._access(exc)
            if access is not None:
                exit_with(access)
            _exit_failed(exc, "batch")

    async def _process_or_stop(self, step: Awaitable[None]) -> None:
        """Run `step` (a batch, or the wait for the one in flight), unless a stop
        is requested while a batch cannot become durable (broker away): then
        exit after a grace period without it.

        Safe because a batch counts only once its writes are acknowledged; its
        messages are re-read from the commit marker at the next start.
        """
        task = asyncio.ensure_future(step)
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), _CLIENT_TIMEOUT_S)
            except TimeoutError:
                if self.fatal is not None:
                    exit_with(self.fatal)
                log.warning(
                    "stop requested while a batch could not be made durable (broker "
                    "away?); exiting without it: it is re-read at the next start"
                )
                logging.shutdown()
                os._exit(0)
        task.result()

    async def _commit_for_monitoring(self) -> None:
        """Commit the marker positions so `kafka-consumer-groups` shows a true lag."""
        from aiokafka import TopicPartition  # aiokafka: not loaded at `--help`
        from aiokafka.errors import KafkaError

        offsets: dict[TopicPartition, int] = {}
        assigned = self._consumer.assignment()
        for p, part in self._parts.items():
            for role, done in part.durable.items():
                tp = TopicPartition(self.topic_by_role[role], p)
                if tp in assigned:
                    offsets[tp] = done + 1
        if offsets:
            try:
                # bounded: with the broker down a commit waits for the coordinator
                # forever, and the loop (and SIGTERM) with it
                await asyncio.wait_for(self._consumer.commit(offsets), _CLIENT_TIMEOUT_S)
            except (KafkaError, TimeoutError) as exc:  # rebalancing or broker away
                log.debug("monitoring commit skipped: %s", type(exc).__name__)

    # -- processing

    async def _process(self, batch: Batch) -> None:
        """Apply a batch, wait for the previous one to be durable, start this
        one's write (`_finish`, in flight until the next `_settle`)."""
        now_ms = int(time.time() * 1000)
        fetched = time.monotonic()
        async with self._lock:
            touched: dict[int, _Partition] = {}
            dead: dict[int, list[DeadLetter]] = {}
            for tp, records in batch.items():
                p = tp.partition
                part = self._parts.get(p)
                if part is None or p not in self._assigned:
                    # fetched before a rebalance revoked it: the owner (maybe this
                    # worker again, after a seek to the marker) re-reads them
                    self.dropped_revoked += len(records)
                    continue
                touched[p] = part
                dead.setdefault(p, []).extend(self._apply(part, tp, records, now_ms))
                # The previous batch's commit runs on this loop: let its broker
                # round trips advance between partitions (between, not inside
                # `engine.batch()`: nothing may evaluate an engine in a batch)
                await asyncio.sleep(0)
            for p in list(dead):  # offsets jumped: ask the log start (a broker call)
                if self._gaps.get(p):
                    await self._count_lost(touched[p], self._gaps.pop(p))
            writes = {
                p: part.store.batch_writes(part.engine.drain_dirty(), now_ms)
                for p, part in touched.items()
            }
            kinds = {p: part.store.last_kind for p, part in touched.items()}
            offsets = {p: dict(part.store.marker.offsets) for p, part in touched.items()}
            applied = time.monotonic()
            await self._settle()
            trace = None
            if timing.enabled():  # the debug trace (`cxpulse.worker.timing`)
                inputs: dict[str, dict[int, int]] = {}
                for tp, records in batch.items():
                    if records:
                        inputs.setdefault(tp.topic, {})[tp.partition] = records[-1].offset
                trace = (fetched, applied, time.monotonic(), inputs)
            self._pending = asyncio.ensure_future(
                self._finish(touched, writes, dead, offsets, kinds, trace)
            )

    async def _finish(
        self,
        touched: dict[int, _Partition],
        writes: dict[int, list[Write]],
        dead: dict[int, list[DeadLetter]],
        offsets: dict[int, dict[str, int]],
        kinds: dict[int, str],
        trace: tuple[float, float, float, dict[str, dict[int, int]]] | None = None,
    ) -> None:
        """Make an applied batch durable (changelog, dead letters, local copy); `trace`:
        its instants so far and input offsets, for the timing trace."""
        ends = await asyncio.gather(
            *(self._write(p, writes[p], dead.get(p, []), kinds[p]) for p in touched)
        )
        durable = time.monotonic()
        for (p, part), end in zip(touched.items(), ends, strict=True):
            part.changelog_end = end
            part.durable = offsets[p]
            if part.local is not None:
                part.local.apply(writes[p], end)
        self._last_success_s = time.time()
        self.batches += 1
        if trace is not None:
            timing.batch_durable(*trace[:3], durable, trace[3])

    async def _settle(self) -> None:
        """Wait until the batch in flight is durable; its failure is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            t0 = time.monotonic()
            try:
                await pending
            finally:
                self.write_wait_s += time.monotonic() - t0

    async def _write(
        self, p: int, writes: list[Write], dead: list[DeadLetter], kind: str = "keyed"
    ) -> int | None:
        """Make one partition's batch durable; returns its last changelog offset.

        With `transactional_writes` the batch is one Kafka transaction of the
        partition's own transactional id: when another worker takes the
        partition over, its producer's start fences this one, so a worker that
        lost the partition without noticing (paused past its session timeout,
        cut off from the group) can no longer add to the changelog; its
        commit fails and the process exits (exit 70) instead.
        """
        producer = self._producer_for(p)

        async def send_dead() -> list[asyncio.Future[RecordMetadata]]:
            return [
                await producer.send(
                    self.settings.topic_deadletter, value=d.value, key=d.key, headers=d.headers
                )
                for d in dead
            ]

        if not self.settings.transactional_writes:
            # No transaction ties them together: the dead letters must be
            # acknowledged before the marker that counts their messages as done
            # is even sent, or a kill in between loses them.
            await await_all(await send_dead())
            futures = await self._send_changelog(producer, p, writes)
            await await_all([f for f, _ in futures])
            return _last_offset(futures)
        await producer.begin_transaction()
        futures = await self._send_changelog(producer, p, writes)
        if dead:
            crash_point("state-written")
            if armed("state-sent"):
                await producer.flush()
                crash_point("state-sent")
        crash_point(f"{kind}-written")  # format 4: a journal or checkpoint batch
        dl = await send_dead()
        await producer.commit_transaction()
        await await_all([f for f, _ in futures] + dl)
        return _last_offset(futures)

    def _apply(
        self,
        part: _Partition,
        tp: TopicPartition,
        records: list[Record],
        now_ms: int,
    ) -> list[DeadLetter]:
        role = self.role_by_topic[tp.topic]
        marker = part.store.marker
        done = marker.offsets.get(role)
        counts: dict[str, int] = {}
        dead: list[DeadLetter] = []
        engine, p, topic = part.engine, tp.partition, tp.topic
        last_ts: int | None = None
        with engine.batch():  # one re-derivation per touched ticket per batch
            for r in records:
                off = r.offset
                if done is not None and off <= done:
                    self.skipped_redeliveries += 1
                    continue
                if done is not None and off > done + 1:
                    self._gaps.setdefault(p, []).append((tp, role, done + 1, off))
                done = off
                record, ts = handle_message(
                    engine, role, topic, p, off, r.key, r.value, counts, now_ms,
                    received_ms=r.timestamp, deadletter_max_bytes=self._dl_max,
                )
                if record is not None:
                    dead.append(record)
                elif ts is not None:
                    last_ts = ts
        if done is not None:
            marker.offsets[role] = done
        count_label_caps(engine, counts)
        for k, n in counts.items():
            part.store.count(k, n)
        if last_ts is not None:
            part.last_event_ms = last_ts
        return dead

    async def _count_lost(self, part: _Partition, gaps: list[Gap]) -> None:
        """Jumps in offsets: lost to retention only if the log no longer starts before them.

        Transaction markers and compaction leave gaps too, which lose nothing.
        """
        for tp, role, expected, got in gaps:
            earliest = (await self._consumer.beginning_offsets([tp]))[tp]
            lost = min(earliest, got) - expected
            if lost > 0:
                part.store.count(counter_name("lost_to_retention", role), lost)
                log.warning("%s: %d messages deleted by retention before they were read", tp, lost)

    async def _send_changelog(
        self, producer: AIOKafkaProducer, p: int, writes: list[Write]
    ) -> list[Sent]:
        """Queue writes to changelog partition p in large batches, in order.

        One producer batch holds thousands of small records: a per-record
        `send()` costs more than the KPI work of the event that caused it.
        """
        topic = self.settings.changelog_topic
        out: list[Sent] = []
        batch = producer.create_batch()
        n = 0
        for k, v in writes:
            if batch.append(key=k, value=v, timestamp=None) is None:
                out.append((await producer.send_batch(batch, topic, partition=p), n))
                batch, n = producer.create_batch(), 0
                if batch.append(key=k, value=v, timestamp=None) is None:
                    raise ValueError(f"a state record of {len(v or b'')} bytes exceeds a batch")
            n += 1
        if n:
            out.append((await producer.send_batch(batch, topic, partition=p), n))
        return out

    # -- rebalancing and recovery

    async def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:  # the batch being applied finishes first
            await self._settle()  # and so does its write: the next owner reads it
            gone = {tp.partition for tp in revoked}
            # From here until the next assignment another worker may own them.
            self._assigned -= gone
            log.info("partitions revoked: %s", sorted(gone))

    async def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self._lock:
            await self._settle()  # `_unchanged` compares with its changelog end
            mine = {tp.partition for tp in assigned if tp.topic in self.role_by_topic}
            for p in sorted(set(self._parts) - mine):
                del self._parts[p]
                await self._drop_producer(p)  # the new owner fences it anyway
                log.info("partition %d handed over, engine dropped", p)
            ends = await self._changelog_ends(mine)
            restore = [p for p in sorted(mine) if not self._unchanged(p, ends[p])]
            for p in restore:
                await self._fence(p)
            if restore:  # after fencing nothing can land any more: read to the end
                ends = await self._changelog_ends(set(restore))
            for p in restore:
                await self._restore(p, ends[p])
            for tp in assigned:
                if tp.topic not in self.role_by_topic:
                    continue
                done = self._parts[tp.partition].store.marker.offsets.get(
                    self.role_by_topic[tp.topic]
                )
                if done is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, done + 1)
            self._assigned = mine
            log.info("partitions assigned: %s", sorted(mine))

    def _unchanged(self, p: int, end: int) -> bool:
        """Still held, and nobody wrote changelog p since our last write?"""
        part = self._parts.get(p)
        if part is None or part.changelog_end is None:
            return False
        # a transaction's commit marker takes one offset after our last record
        return end == part.changelog_end + (2 if self.settings.transactional_writes else 1)

    async def _changelog_ends(self, partitions: set[int]) -> dict[int, int]:
        from aiokafka import TopicPartition  # aiokafka: not loaded at `--help`

        tps = [TopicPartition(self.settings.changelog_topic, p) for p in partitions]
        ends = await self._reader.end_offsets(tps) if tps else {}
        return {tp.partition: int(off) for tp, off in ends.items()}

    async def _restore(self, p: int, end: int) -> None:
        """Local copy + changelog tail -> committed state -> engine (with repairs).

        A local copy RocksDB reports corrupt (at open or while it is read), or
        that holds a record this code cannot decode, is moved aside and
        rebuilt from the whole changelog partition, loudly (log line and
        `cxpulse_local_store_rebuilds_total`). That happens before anything
        is written, so a corrupt copy never feeds the changelog. A second
        failure (the changelog itself is bad) ends the process as before.
        """
        t0 = time.monotonic()
        local = self._locals.get(p)
        if local is None:
            s = self.settings
            local, bad, aside = open_or_quarantine(s.store, s.datadir, s.changelog_topic, p)
            self._locals[p] = local
            if bad is not None:
                self._count_rebuild(p, bad.reason, str(bad), aside)
        # The CPU-heavy steps (seconds for a big partition) run in a thread, off
        # the event loop, so the group heartbeat (an aiokafka task on this loop)
        # keeps this member alive while it restores: no eviction, no fencing.
        try:
            tail, items = await self._read_local(p, local, end)
            store, rec = await asyncio.to_thread(self._recover, p, items)
        except (LocalStoreCorrupt, CorruptState) as exc:
            if self.settings.store == "memory://":
                raise  # that copy was read from the changelog: nothing better to read
            reason = exc.reason if isinstance(exc, LocalStoreCorrupt) else "record"
            self._count_rebuild(p, reason, str(exc), local.quarantine())
            tail, items = await self._read_local(p, local, end)
            store, rec = await asyncio.to_thread(self._recover, p, items)
        engine = await asyncio.to_thread(
            PartitionEngine.restore, self.config, p, rec.items.items()
        )
        engine.guard.take_capped()  # re-deriving at restore is not new input
        changelog_end = await self._write(p, rec.repairs, [])
        await asyncio.to_thread(local.apply, rec.repairs, changelog_end)
        if self.settings.store == "memory://":
            local.close()  # the engine and the store's `current` are the state now
            del self._locals[p]
        self._parts[p] = _Partition(
            engine, store, self._locals.get(p), changelog_end,
            durable=dict(store.marker.offsets),
        )  # fmt: skip
        log.info(
            "partition %d restored: %d keys (%d read from the changelog), %d reverted, "
            "%d re-sent, seq %d, %.2fs",
            p, len(rec.items), tail, rec.reverted, rec.resent, store.marker.seq,
            time.monotonic() - t0,
        )  # fmt: skip

    def _recover(
        self, p: int, items: list[tuple[bytes, bytes]]
    ) -> tuple[PartitionStore, Recovery]:
        # transactional: no record is ever seen uncommitted, so none needs `prev`, and
        # a batch's small changes ride in its commit marker (format 4, the journal)
        tx = self.settings.transactional_writes
        return PartitionStore.recover(
            p, items, max_record_bytes=self._record_max, with_prev=not tx,
            journal_slots=self.settings.changelog_journal_slots if tx else 0,
        )  # fmt: skip

    def _count_rebuild(self, p: int, reason: str, cause: str, aside: str | None) -> None:
        self.local_store_rebuilds[(p, reason)] = self.local_store_rebuilds.get((p, reason), 0) + 1
        log.error(
            "partition %d: local state store is corrupt (%s); moved it aside to %s and "
            "rebuilding it from the changelog (runbook: 'Local state store corrupt')",
            p, cause, aside or "(nothing on disk)",
        )  # fmt: skip

    async def _read_local(
        self, p: int, local: LocalStore, end: int
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Bring the local copy up to changelog offset `end`; (records read, p's items)."""
        from aiokafka import TopicPartition  # aiokafka: not loaded at `--help`

        have = local.offset()
        if have is not None and have >= end:
            log.warning("partition %d: local state is ahead of the changelog; rebuilding", p)
            local.reset()
            have = None
        tp = TopicPartition(self.settings.changelog_topic, p)
        reader = self._reader
        reader.assign([tp])
        if have is None:
            await reader.seek_to_beginning(tp)
        else:
            reader.seek(tp, have + 1)
        tail = 0
        while await reader.position(tp) < end:
            got = await reader.getmany(tp, timeout_ms=1000, max_records=20_000)
            for records in got.values():
                writes = [(r.key, r.value) for r in records if r.offset < end]
                if writes:
                    last = records[-1].offset if records[-1].offset < end else end - 1
                    await asyncio.to_thread(local.apply, writes, last)
                    tail += len(writes)
        reader.pause(tp)  # assign() replaces it next time; unsubscribe() crashes the fetcher
        prefix = partition_prefix(p)

        def items() -> list[tuple[bytes, bytes]]:
            return [(k, v) for k, v in local.items() if k.startswith(prefix)]

        return tail, await asyncio.to_thread(items)

    async def _deadletter_limit(self) -> None:
        """Keep dead letters under the dead-letter topic's own limit as well."""
        self._dl_max = await deadletter_limit(self.settings)
        log.info("dead letters above %d bytes are sent as pointers", self._dl_max)

    async def _record_limit(self) -> None:
        """Keep state records under the changelog topic's own limit as well.

        A topic created with a small max.message.bytes (or a broker default
        lowered below 1 MB) would refuse records the setting allows, failing
        every batch that writes one; parts are then made smaller instead.
        """
        s = self.settings
        topic_max = await topic_max_message_bytes(s, s.changelog_topic)
        if topic_max is not None and topic_max - _RECORD_BATCH_OVERHEAD < self._record_max:
            self._record_max = max(MIN_MAX_RECORD_BYTES, topic_max - _RECORD_BATCH_OVERHEAD)
        self._batch_bytes = max(_MAX_BATCH_BYTES, self._record_max + _RECORD_BATCH_OVERHEAD)
        if topic_max is not None:
            self._batch_bytes = min(self._batch_bytes, topic_max)
        log.info("state records are at most %d bytes (values split into parts)", self._record_max)


async def _or_exit(
    step: Awaitable[None],
    stopping: Callable[[], bool],
    access: Callable[[BaseException], Awaitable[KafkaAccessError | None]] | None = None,
) -> None:
    """A failed rebalance step ends the process (70), unless the worker is stopping:
    a restore runs off the loop, so a SIGTERM can close the clients under it; the
    state is durable batch by batch, so that stop is clean (exit 0). A missing
    ACL or refused credentials end it with their one line and 77/78 instead."""
    try:
        await step
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        if stopping():
            log.info("rebalance step interrupted by the stop (%s)", type(exc).__name__)
            return
        found = await access(exc) if access is not None else None
        if found is not None:
            exit_with(found)
        _exit_failed(exc, "rebalance step")


def _exit_failed(exc: BaseException, what: str) -> NoReturn:
    """End the process (70) after a failed batch or rebalance step. A fenced
    producer gets its one line wherever the fence is met (a frozen worker can
    meet it in the batch it had in hand or in the write a revocation settles);
    anything else is unexpected and keeps its traceback."""
    if type(exc).__name__ in ("ProducerFenced", "TransactionCoordinatorFenced"):
        log.error(
            "fenced: another worker took a partition over while this one "
            "was not looking (paused or cut off); its %s was aborted. "
            "Exiting so the state is rebuilt exactly",
            what,
        )
    else:
        log.error("%s failed; exiting so the state is rebuilt exactly", what, exc_info=exc)
    logging.shutdown()
    os._exit(70)


def _last_offset(futures: list[Sent]) -> int | None:
    if not futures:
        return None
    fut, n = futures[-1]
    return int(fut.result().offset) + n - 1


async def run_direct(
    settings: Settings, partitions: int, serve: Callable[[WorkerView], Awaitable[web.AppRunner]]
) -> int:
    """Run until SIGTERM/SIGINT; `serve(worker)` starts the metrics endpoint."""
    worker = DirectWorker(settings, partitions)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop)
    runner = await serve(worker)
    try:
        await worker.run()
    except Exception as exc:  # a missing ACL met outside a batch (e.g. joining the group)
        found = authorization_error(exc, settings)
        if found is None:
            raise
        raise found from None
    finally:
        await runner.cleanup()
    if worker.fatal is not None:  # credentials refused for auth_failure_exit_after
        raise worker.fatal
    return 0
