"""Reading topics back in integration tests (a plain aiokafka consumer, no group)."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord


async def read_records(
    bootstrap: str, topics: list[str], expected: int, timeout: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of the topics from the start: until `expected` arrived (or the
    timeout), then one more poll so that extra, unexpected records are caught too."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    got: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(records)
        for records in (await consumer.getmany(timeout_ms=1500)).values():
            got.extend(records)
    finally:
        await consumer.stop()
    return got
