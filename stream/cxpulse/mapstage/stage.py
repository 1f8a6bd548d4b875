"""`cxpulse map`: raw helpdesk deliveries in, contract events out, as a stream stage.

Why a stage of its own and not inside the worker: the worker reads only the
contract (docs/contract.md), which other producers write too, and its batches
are transactions of KPI state; vendor quirks, the mapping file and Zammad's
snapshots would make it the place every helpdesk change lands. As a stage, a
mapping fix is a restart of this process with `--from-beginning` (or a group
reset) over the kept raw log: the events it produces again have the same ids,
so the worker counts nothing twice. It scales by the raw topic's partitions.

Per batch, in this order: the events of every delivery are produced and
acknowledged (to the tickets / surveys topics with the contract keys;
unmappable deliveries to the dead-letter topic, bytes intact, with a reason),
then Zammad's new snapshots (to a compacted topic, key = ticket id, the
partition of the delivery), then the consumer offsets are committed. A crash
anywhere repeats part of a batch, never skips one: repeated events are
duplicates by id, and a snapshot written before the crash makes the repeated
diff empty while its events were already acknowledged. The snapshots of a
partition are read back whenever this process is given the partition, so the
partition's owner alone diffs its tickets, across restarts and rebalances, and
none of a partition's records is mapped before its snapshots are back (aiokafka
fetches for a new partition while the assignment callback still reads them).

Every delivery is counted once per processing: `mapped`, `ignored` (a vendor
event the contract does not track) or `deadletter` (with its reason).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cxpulse import metric_names as mn
from cxpulse.core.deadletter import bounded, dead_letter
from cxpulse.core.decode import Rejection, dumps
from cxpulse.crashpoint import crash_point
from cxpulse.helpdesks import VENDORS, Mapping, Unmappable, map_delivery, parse, role_and_key
from cxpulse.jsontypes import JSON

if TYPE_CHECKING:
    from cxpulse.settings import Settings

log = logging.getLogger("cxpulse.map")

VENDOR_HEADER = "cxpulse-vendor"  # set by the gateway (cxpulse.ingest.gateway)


@dataclass(eq=False)  # a prometheus collector: registered by identity
class MapCounters:
    deliveries: Counter[tuple[str, str]] = field(default_factory=Counter)
    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    deadletters: Counter[tuple[str, str]] = field(default_factory=Counter)

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        d = CounterMetricFamily(mn.MAP_DELIVERIES_TOTAL.removesuffix("_total"),
                                "Raw deliveries read, by vendor and outcome",
                                labels=["vendor", "outcome"])  # fmt: skip
        for (vendor, outcome), n in sorted(self.deliveries.items()):
            d.add_metric([vendor, outcome], n)
        e = CounterMetricFamily(mn.MAP_EVENTS_TOTAL.removesuffix("_total"),
                                "Contract events produced, by vendor and type",
                                labels=["vendor", "type"])  # fmt: skip
        for (vendor, type_), n in sorted(self.events.items()):
            e.add_metric([vendor, type_], n)
        x = CounterMetricFamily(mn.MAP_DEADLETTER_TOTAL.removesuffix("_total"),
                                "Raw deliveries dead-lettered, by vendor and reason",
                                labels=["vendor", "reason"])  # fmt: skip
        for (vendor, reason), n in sorted(self.deadletters.items()):
            x.add_metric([vendor, reason], n)
        return [d, e, x]


@dataclass
class Outcome:
    """What one raw record became (the pure part of the stage: testable without Kafka)."""

    records: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]
    outcome: str
    reason: str | None = None
    snapshot: JSON | None = None


def map_record(record: Any, mapping: Mapping, topics: dict[str, str],
               previous: JSON | None, now_ms: int) -> tuple[str, Outcome]:  # fmt: skip
    """(vendor, what to produce) for one raw-deliveries record."""
    headers = dict(record.headers or ())
    vendor_raw = headers.get(VENDOR_HEADER, b"")
    vendor = vendor_raw.decode(errors="replace") if vendor_raw else ""
    try:
        if vendor not in VENDORS:
            raise Unmappable("unknown_vendor", "no cxpulse-vendor header naming a known vendor")
        mapped = map_delivery(vendor, parse(record.value), mapping, previous)
    except Unmappable as exc:
        letter = dead_letter(
            key=record.key, value=record.value, source_topic=record.topic,
            source_partition=record.partition, source_offset=record.offset,
            rejection=Rejection(exc.code, str(exc)), rejected_at_ms=now_ms,
        )  # fmt: skip
        letter, _ = bounded(letter)
        return (vendor if vendor in VENDORS else "unknown"), Outcome(
            [(topics["deadletter"], letter.key, letter.value or b"", list(letter.headers))],
            "deadletter", exc.code,
        )  # fmt: skip
    out: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = []
    for event in mapped.events:
        role, key = role_and_key(event)
        out.append((topics[role], key, dumps(event), [(VENDOR_HEADER, vendor.encode())]))
    return vendor, Outcome(out, "mapped" if out else "ignored", mapped.ignored, mapped.snapshot)


class SnapshotStore:
    """Zammad's last snapshot per ticket, per partition, backed by a compacted topic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.by_partition: dict[int, dict[str, JSON]] = {}
        #: partitions whose snapshots are read back: only their records may be mapped
        self.ready: set[int] = set()

    async def restore(self, partitions: list[int]) -> None:
        """Read each partition's snapshots from the start of its topic partition."""
        import json

        from aiokafka import AIOKafkaConsumer, TopicPartition

        s = self.settings
        if not partitions:
            return
        consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers,
                                    enable_auto_commit=False, **s.aiokafka_security())  # fmt: skip
        await consumer.start()
        try:
            tps = [TopicPartition(s.topic_map_snapshots, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            for p in partitions:
                self.by_partition[p] = {}
            async def behind() -> bool:
                return any([await consumer.position(tp) < ends[tp] for tp in tps])

            while await behind():
                batch = await consumer.getmany(*tps, timeout_ms=500)
                for tp, records in batch.items():
                    for r in records:
                        if r.key is None:
                            continue
                        ticket = r.key.decode(errors="replace")
                        if r.value is None:
                            self.by_partition[tp.partition].pop(ticket, None)
                        else:
                            self.by_partition[tp.partition][ticket] = json.loads(r.value)
        finally:
            await consumer.stop()
        self.ready.update(partitions)
        log.info("restored Zammad snapshots of partitions %s (%d tickets)", sorted(partitions),
                 sum(len(self.by_partition[p]) for p in partitions))  # fmt: skip

    def forget(self, partitions: list[int]) -> None:
        for p in partitions:
            self.by_partition.pop(p, None)
            self.ready.discard(p)


class MapStage:
    """The consume-map-produce loop of one `cxpulse map` process."""

    def __init__(self, settings: Settings, mapping: Mapping) -> None:
        self.settings, self.mapping = settings, mapping
        self.counters = MapCounters()
        self.snapshots = SnapshotStore(settings)
        self.topics = {"tickets": settings.topic_tickets, "surveys": settings.topic_surveys,
                       "deadletter": settings.topic_deadletter}  # fmt: skip
        self.ready = False

    async def run(self, stop: asyncio.Event, from_beginning: bool = False) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener

        s = self.settings
        stage = self
        rewound: set[int] = set()  # --from-beginning: each partition once, not per rebalance

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                stage.snapshots.forget([tp.partition for tp in revoked])

            async def on_partitions_assigned(self, assigned: Any) -> None:
                # aiokafka fetches for new partitions while this callback still awaits:
                # nothing of them is mapped before their snapshots are back (a diff
                # against a missing snapshot would re-create the ticket)
                consumer.pause(*assigned)
                await stage.snapshots.restore([tp.partition for tp in assigned])
                fresh = [tp for tp in assigned if tp.partition not in rewound]
                if from_beginning and fresh:
                    await consumer.seek_to_beginning(*fresh)
                    rewound.update(tp.partition for tp in fresh)
                consumer.resume(*assigned)
                stage.ready = True

        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers, group_id=s.map_group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=max(1_048_576, s.ingest_max_body_bytes + 65536),
            **s.aiokafka_security(),
        )  # fmt: skip
        producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers, acks="all", enable_idempotence=True,
            linger_ms=5, **s.aiokafka_security(),
        )  # fmt: skip
        await producer.start()
        await consumer.start()
        consumer.subscribe([s.topic_raw_deliveries], listener=Listener())
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                if batch:
                    await self._process(batch, consumer, producer)
        finally:
            await consumer.stop()
            await producer.stop()

    async def _process(self, batch: dict[Any, list[Any]], consumer: Any, producer: Any) -> None:
        import json

        s = self.settings
        now_ms = int(time.time() * 1000)
        sends: list[Any] = []
        snapshots: list[tuple[int, str, JSON]] = []
        offsets: dict[Any, int] = {}
        for tp, records in batch.items():
            if tp.partition not in self.snapshots.ready:
                # fetched before the assignment's restore paused it: fetch it again later
                consumer.seek(tp, records[0].offset)
                continue
            kept = self.snapshots.by_partition.setdefault(tp.partition, {})
            for r in records:
                ticket = r.key.decode(errors="replace") if r.key else None
                previous = kept.get(ticket) if ticket else None
                vendor, outcome = map_record(r, self.mapping, self.topics, previous, now_ms)
                self.counters.deliveries[(vendor, outcome.outcome)] += 1
                if outcome.outcome == "deadletter":
                    self.counters.deadletters[(vendor, str(outcome.reason))] += 1
                    log.warning("dead-lettered a %s delivery: %s", vendor, outcome.reason)
                for topic, key, value, headers in outcome.records:
                    sends.append(await producer.send(topic, value, key=key, headers=headers))
                    if outcome.outcome == "mapped":
                        self.counters.events[(vendor, json.loads(value)["type"])] += 1
                if outcome.snapshot is not None and ticket is not None:
                    kept[ticket] = outcome.snapshot
                    snapshots.append((tp.partition, ticket, outcome.snapshot))
            offsets[tp] = records[-1].offset + 1
        await asyncio.gather(*sends)  # events acknowledged before the snapshots that follow them
        if snapshots:
            crash_point("map-events-acked")
        acks = [await producer.send(s.topic_map_snapshots, json.dumps(snap).encode(),
                                    key=ticket.encode(), partition=p)
                for p, ticket, snap in snapshots]  # fmt: skip
        await asyncio.gather(*acks)
        if snapshots:
            crash_point("map-snapshots-written")
        from aiokafka.errors import CommitFailedError, IllegalStateError

        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            # the partitions went to another process meanwhile: it maps these records
            # again, and what they produce again is a duplicate by id
            log.info("offsets not committed: partitions reassigned during the batch")
