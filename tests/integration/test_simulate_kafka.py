"""`cxpulse simulate --bootstrap-servers` sends exactly what `--out` would write, to the
right topics."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from cxpulse.cli import main
from cxpulse.core.decode import route_of

from tests.support.kafka_io import read_records

pytestmark = pytest.mark.kafka




def test_simulate_to_kafka_matches_the_file(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    args = ["simulate", "--duration", "90m", "--start", "2026-11-02T10:00:00Z", "--seed", "8"]
    args += ["--malformed", "0.03", "--duplicates", "0.02"]
    capture = tmp_path / "s.jsonl"
    assert main([*args, "--out", str(capture)]) == 0
    lines = [line for line in capture.read_bytes().split(b"\n") if line]

    tickets, surveys = topic_factory("sim-tickets", 2), topic_factory("sim-surveys", 2)
    topics = ["--topic-tickets", tickets, "--topic-surveys", surveys]
    assert main([*args, "--bootstrap-servers", kafka_bootstrap, *topics]) == 0

    records = asyncio.run(read_records(kafka_bootstrap, [tickets, surveys], len(lines)))
    assert Counter(r.value for r in records) == Counter(lines)
    for record in records:
        assert record.value is not None
        role, key = route_of(record.value)
        assert record.key == key
        assert record.topic == (tickets if role == "tickets" else surveys)
