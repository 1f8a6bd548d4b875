"""The foundation's promise: a real broker, real topics, real consumer groups."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]


async def test_thousand_json_messages_round_trip_in_order_per_partition(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("foundation", partitions=3)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    sent: dict[int, list[int]] = defaultdict(list)
    try:
        futures = [
            await producer.send(
                topic, key=f"k{i % 37}".encode(), value=json.dumps({"seq": i}).encode()
            )
            for i in range(1000)
        ]
        for i, fut in enumerate(futures):
            meta = await fut
            sent[meta.partition].append(i)
    finally:
        await producer.stop()
    assert len(sent) > 1, "keys should spread over several partitions"

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    got: dict[int, list[int]] = defaultdict(list)
    try:
        deadline = time.monotonic() + 60
        while sum(map(len, got.values())) < 1000 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                got[tp.partition].extend(json.loads(r.value)["seq"] for r in records)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert dict(got) == dict(sent)  # every message, and per partition in send order


def test_broker_stop_leaves_no_jvm_behind(tmp_path: Path) -> None:
    from cxpulse.kafka.broker import KafkaBroker

    broker = KafkaBroker(workdir=tmp_path / "k").start()
    pid = broker.pid
    assert pid is not None
    os.kill(pid, 0)  # alive now
    broker.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    assert str(tmp_path) not in ps.stdout
