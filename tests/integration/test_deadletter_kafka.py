"""Validation with dead-letter on the real broker: nothing lost, nothing invented.

5,000 valid simulator events and 500 malformed messages of every kind go
through a real topic; a consumer decodes them and dead-letters the rejected
as the worker does (the record's key, value and headers to the dead-letter topic,
`cxpulse.worker.direct`). The dead-letter topic must then hold exactly the
malformed messages, byte for byte, each with its reason and a correct
pointer back to where it came from.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from itertools import islice

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from cxpulse.core import decode as d
from cxpulse.core.deadletter import DeadLetter, dead_letter
from cxpulse.core.decode import Rejection, decode, parse_ts
from cxpulse.kafka.produce import Outgoing, produce
from cxpulse.sim.dirt import MALFORMED_KINDS, malformed_record, record_of
from cxpulse.sim.model import SimConfig, Simulation

pytestmark = pytest.mark.kafka

VALID = 5000
MALFORMED = 500


async def _consume(
    bootstrap: str, topic: str, expected: int, settle_s: float = 2.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything in `topic`: waits for `expected` records, then a quiet spell for extras."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=8 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    got: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + 90
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                got.extend(records)
            if len(got) >= expected:
                if quiet_until is None:
                    quiet_until = time.monotonic() + settle_s
                elif time.monotonic() >= quiet_until:
                    break
    finally:
        await consumer.stop()
    return got


async def test_malformed_messages_land_in_the_dead_letter_topic_with_reason_and_bytes(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    source = topic_factory("dl-source", partitions=3)
    dlq = topic_factory("dl-deadletter", partitions=3)

    start = SimConfig().start_ms + 8 * 3_600_000
    events = list(islice(Simulation(SimConfig(seed=11, start_ms=start)).events(), VALID))
    assert len(events) == VALID
    rng = random.Random(11)
    messages: list[Outgoing] = []
    expected_bad: Counter[tuple[bytes | None, bytes, str]] = Counter()
    for i, event in enumerate(events):
        valid = record_of(event)
        messages.append(Outgoing(source, valid.key, valid.value))
        if i % (VALID // MALFORMED) == 0:
            kind = MALFORMED_KINDS[len(expected_bad) % len(MALFORMED_KINDS)]
            bad = malformed_record(kind, event, rng)
            messages.append(Outgoing(source, bad.key, bad.value))
            expected_bad[(bad.key, bad.value, kind)] += 1
    assert sum(expected_bad.values()) == MALFORMED
    assert {kind for _, _, kind in expected_bad} == set(d.REASON_CODES)

    assert await produce(kafka_bootstrap, messages) == VALID + MALFORMED
    produced_at = int(time.time() * 1000)

    # The worker's loop in miniature: decode, keep the valid, dead-letter the rest.
    consumed = await _consume(kafka_bootstrap, source, VALID + MALFORMED)
    accepted: list[object] = []
    by_position: dict[tuple[int, int], ConsumerRecord[bytes, bytes]] = {}
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=20
    )
    await producer.start()
    try:
        futures = []
        for record in consumed:
            by_position[(record.partition, record.offset)] = record
            result = decode(record.value)
            if isinstance(result, Rejection):
                letter = dead_letter(
                    key=record.key,
                    value=record.value,
                    source_topic=record.topic,
                    source_partition=record.partition,
                    source_offset=record.offset,
                    rejection=result,
                    rejected_at_ms=int(time.time() * 1000),
                )
                futures.append(
                    await producer.send(
                        dlq, value=letter.value, key=letter.key, headers=letter.headers
                    )
                )
            else:
                accepted.append(result)
        for future in futures:
            await future
    finally:
        await producer.stop()

    assert len(consumed) == VALID + MALFORMED
    assert sorted(accepted, key=repr) == sorted(events, key=repr)

    letters = await _consume(kafka_bootstrap, dlq, MALFORMED)
    assert len(letters) == MALFORMED
    got_bad: Counter[tuple[bytes | None, bytes, str]] = Counter()
    for record in letters:
        letter = DeadLetter.from_headers(record.key, record.value, list(record.headers))
        env = letter.envelope
        assert record.value is not None
        got_bad[(record.key, record.value, env.reason)] += 1
        origin = by_position[(env.source_partition, env.source_offset)]
        assert env.source_topic == source
        assert (origin.key, origin.value) == (record.key, record.value)
        rejected_at = parse_ts(env.rejected_at)
        assert isinstance(rejected_at, int) and rejected_at >= produced_at - 1000
        assert env.message
    assert got_bad == expected_bad
    assert len(accepted) + len(letters) == len(consumed)
