"""`cxpulse replay` on the real broker: right topic, contract key, Java partition."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from cxpulse.cli import main
from cxpulse.core.decode import Rejection, decode, route_of
from cxpulse.core.events import SURVEYS, TICKETS, SurveyResponse

from tests.support.kafka_io import read_records

pytestmark = pytest.mark.kafka


def java_murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2`, written from the Java source, as a signed 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


def java_partition(key: bytes, partitions: int) -> int:
    return (java_murmur2(key) & 0x7FFFFFFF) % partitions


def test_java_murmur2_matches_kafka_test_vectors() -> None:
    # Expected values from Kafka's UtilsTest.testMurmur2.
    vectors = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for data, expected in vectors.items():
        assert java_murmur2(data) == expected




def test_replay_puts_every_line_on_its_topic_key_and_partition(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    capture = tmp_path / "capture.jsonl"
    args = ["simulate", "--duration", "2h", "--start", "2026-11-02T09:00:00Z", "--seed", "4"]
    assert main([*args, "--malformed", "0.05", "--out", str(capture)]) == 0
    lines = [line for line in capture.read_bytes().split(b"\n") if line]
    tickets, surveys = topic_factory("rp-tickets", 4), topic_factory("rp-surveys", 3)

    replay = ["replay", str(capture), "--bootstrap-servers", kafka_bootstrap]
    assert main([*replay, "--topic-tickets", tickets, "--topic-surveys", surveys]) == 0

    records = asyncio.run(read_records(kafka_bootstrap, [tickets, surveys], len(lines)))
    assert Counter(r.value for r in records) == Counter(lines)
    partitions = {tickets: 4, surveys: 3}
    malformed = 0
    for record in records:
        value, key, topic = record.value, record.key, record.topic
        assert value is not None
        event = decode(value)
        if isinstance(event, Rejection):
            malformed += 1
            role, expected_key = route_of(value)
            assert key == expected_key
        else:
            role = SURVEYS if isinstance(event, SurveyResponse) else TICKETS
            expected = event.ticket_id if event.ticket_id is not None else event.event_id
            assert key == expected.encode()
        assert topic == (surveys if role == SURVEYS else tickets)
        if key is not None:
            assert record.partition == java_partition(key, partitions[topic])
    assert malformed > 0
    assert {r.topic for r in records} == {tickets, surveys}


def test_replay_speed_paces_by_event_time(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    capture = tmp_path / "short.jsonl"
    args = ["simulate", "--duration", "3m", "--start", "2026-11-02T10:00:00Z", "--seed", "2"]
    assert main([*args, "--out", str(capture)]) == 0
    lines = [line for line in capture.read_bytes().split(b"\n") if line]
    spans = [e.ts for e in map(decode, lines) if not isinstance(e, Rejection)]
    span_s = (max(spans) - min(spans)) / 1000
    assert span_s > 60
    topic = topic_factory("rp-paced", 1)
    started = time.monotonic()
    replay = ["replay", str(capture), "--bootstrap-servers", kafka_bootstrap, "--speed", "60"]
    assert main([*replay, "--topic-tickets", topic, "--topic-surveys", topic]) == 0
    elapsed = time.monotonic() - started
    assert span_s / 60 - 0.5 <= elapsed <= span_s / 60 + 10


def test_replay_simulate_and_import_to_a_broker_that_is_down_say_so_in_one_line(
    tmp_path: Path,
) -> None:
    """No traceback: one line naming the broker, exit 69 (as the worker's unreachable broker)."""
    import json
    import subprocess
    import sys

    from tests.support.helpdesk_lifecycles import MAPPING_YAML, export_items
    from tests.support.ports import free_port

    port = free_port()  # nothing listens here
    capture = tmp_path / "one.jsonl"
    capture.write_text('{"event_id":"e-1","type":"ticket.created","ts":"2026-11-22T09:00:00Z",'
                       '"ticket_id":"T-1","team":"billing","channel":"email","priority":"high"}\n')
    page = tmp_path / "page.json"  # a Zendesk export page: events to send
    page.write_text(json.dumps({"ticket_events": export_items(2, 1_795_000_000.0)}))
    (tmp_path / "mapping.yaml").write_text(MAPPING_YAML)
    root = Path(__file__).resolve().parents[2]
    for cmd in (["replay", str(capture)], ["simulate", "--duration", "1m"],
                ["import", "zendesk", str(page), "--mapping-file", str(tmp_path / "mapping.yaml")]):
        out = subprocess.run(
            [sys.executable, "-m", "cxpulse.cli", *cmd, "--bootstrap-servers", f"127.0.0.1:{port}"],
            cwd=root, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 69, out.stderr
        assert "Traceback" not in out.stderr and "Unclosed" not in out.stderr, out.stderr
        lines = [x for x in out.stderr.splitlines() if x.startswith(f"cxpulse {cmd[0]}: kafka at")]
        assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], out.stderr
