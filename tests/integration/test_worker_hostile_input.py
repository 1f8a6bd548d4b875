"""Hostile input on the real broker: the worker never exits, every message is counted.

Before: a message just under 1 MB (a default topic accepts it) or a 2 MB one
(topic limit raised) was dead-lettered as a copy plus headers, which the
producer refused (`max_request_size`), failing the batch at every restart
(exit 70, a crash loop). Ticket events without a key, or keyed with another
ticket's id, were applied on whatever partition they landed on, silently
splitting tickets. Now: too-large dead letters are pointers (source
offset, size, SHA-256), mismatched keys are dead-lettered as `key_mismatch`,
and everything else is exactly what the offline core computes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from stream.core.deadletter import ORIGINAL_SHA256, ORIGINAL_SIZE, DeadLetter, is_pointer
from stream.core.decode import encode_bytes, parse_ts
from stream.core.events import Author, TicketCreated, TicketMessage
from stream.replay import read_lines
from tests.integration.test_worker_pipeline import (
    PARTITIONS,
    Topics,
    WorkerProc,
    assert_counts,
    assert_kpi_series,
    expected,
    parse_metrics,
    read_topic,
    replay,
    simulate,
    wait_consumed,
)

pytestmark = pytest.mark.kafka

MB = 1_000_000


async def _produce(bootstrap: str, msgs: list[tuple[str, bytes | None, bytes]]) -> list[int]:
    """Send in order, one at a time (per-partition order = list order); offsets."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=3 * MB)
    await producer.start()
    try:
        return [
            (await producer.send_and_wait(topic, value=value, key=key)).offset
            for topic, key, value in msgs
        ]
    finally:
        await producer.stop()


#: the dead-letter topic's own limit, below the `deadletter_max_bytes` default (1 MB)
DL_TOPIC_MAX = 300_000


def test_oversized_and_wrongly_keyed_messages_are_accounted_for(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path, runtime: str
) -> None:
    # tickets: limit raised for the 2 MB message; surveys: broker default; dead letters:
    # lowered, so a copy the setting allows but the topic refuses must become a pointer
    t = topic_factory("wh.tickets", PARTITIONS, **{"max.message.bytes": str(3 * MB)})
    suffix = t.rsplit(".", 1)[1]
    topics = Topics(
        tickets=t,
        surveys=topic_factory("wh.surveys", PARTITIONS),
        deadletter=topic_factory("wh.dl", PARTITIONS, **{"max.message.bytes": str(DL_TOPIC_MAX)}),
        group=f"wh-{suffix}",
    )
    capture = simulate(tmp_path / "sim.jsonl", seed=3030, span="1h")
    lines = list(read_lines(capture))

    at = parse_ts("2026-11-02T08:30:00Z")
    assert isinstance(at, int)
    crafted: list[tuple[str, bytes | None, bytes]] = []
    accepted: list[bytes] = []  # what the offline reference must see too
    for i in range(6):  # created without a key, replies correctly keyed
        tid = f"T-KEYLESS-{i}"
        crafted.append((t, None, encode_bytes(TicketCreated(f"kl-c{i}", at + i, tid, "billing",
                                                            "email"))))  # fmt: skip
        reply = encode_bytes(TicketMessage(f"kl-r{i}", at + 60_000 + i, tid, Author.AGENT, "a1"))
        crafted.append((t, tid.encode(), reply))
        accepted.append(reply)
    for i in range(3):  # keyed with another ticket's id
        ev = TicketCreated(f"wk-c{i}", at + i, f"T-WRONGKEY-{i}", "tech", "web")
        crafted.append((t, f"T-OTHER-{i}".encode(), encode_bytes(ev)))
    medium = b"m" * 100_000  # too large for the contract, small enough to copy
    over_dl_topic = b"d" * 400_000  # under the setting, over the dead-letter topic's limit
    near_1mb = b"s" * 1_048_000  # accepted by a default topic; copy + headers are not
    two_mb = b"t" * 2_000_000
    crafted += [(t, b"big-1", medium), (t, b"big-0", over_dl_topic),
                (topics.surveys, b"big-2", near_1mb), (t, b"big-3", two_mb)]  # fmt: skip
    oversized = 4

    exp = expected(lines + accepted)
    w = WorkerProc(kafka_bootstrap, topics, tmp_path, "w1", runtime=runtime).start()
    try:
        replay(capture, kafka_bootstrap, topics)
        offsets = asyncio.run(_produce(kafka_bootstrap, crafted))
        total = exp.consumed + len(crafted) - len(accepted)
        got = wait_consumed([w], total)  # supervise(): fails the test if the worker exited
        assert w.alive() and w.starts == 1
        exp.consumed = total
        exp.deadletters += Counter({("tickets", "key_mismatch"): 9,
                                    ("tickets", "too_large"): 3, ("surveys", "too_large"): 1})
        assert_counts(got, exp)
        metrics = w.scrape()
        assert_kpi_series(metrics, exp)  # the keyless creations split nothing
        pointers: Counter[str] = Counter()  # summed over the series of each role
        for labels, v in parse_metrics(metrics).get("cxpulse_deadletter_pointers_total", []):
            pointers[labels["role"]] += int(v)
        assert pointers == {"tickets": 2, "surveys": 1}
        assert w.stop() == 0
    finally:
        w.stop()

    records = [DeadLetter.from_headers(r.key, r.value, r.headers)
               for r in read_topic(kafka_bootstrap, topics.deadletter)]  # fmt: skip
    by_source = {(d.envelope.source_topic, d.envelope.source_offset, d.envelope.reason): d
                 for d in records}  # fmt: skip
    for (topic, key, value), offset in zip(crafted[-oversized:], offsets[-oversized:], strict=True):
        d = by_source[(topic, offset, "too_large")]
        if value is medium:
            assert d.value == medium and d.key == key and not is_pointer(d.headers)
        else:
            h = dict(d.headers)
            assert is_pointer(d.headers) and d.key == key
            assert h[ORIGINAL_SIZE] == str(len(value)).encode()
            assert h[ORIGINAL_SHA256] == hashlib.sha256(value).hexdigest().encode()
    mismatched = [d for d in records if d.envelope.reason == "key_mismatch"]
    assert len(mismatched) == 9
    assert sorted(d.value or b"" for d in mismatched) == sorted(
        v for _, k, v in crafted[:-oversized] if v not in accepted
    )
