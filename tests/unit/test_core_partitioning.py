"""The report's partitioner must equal the one the producers use (aiokafka)."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from cxpulse.core.partitioning import murmur2, partition_for
from hypothesis import given
from hypothesis import strategies as st


def test_known_java_client_values() -> None:
    # Values of org.apache.kafka.common.utils.Utils.murmur2 (Kafka's own
    # UtilsTest): "21" -> -973932308, "foobar" -> -790332482 (signed int32).
    assert murmur2(b"21") == -973932308 & 0xFFFFFFFF
    assert murmur2(b"foobar") == -790332482 & 0xFFFFFFFF


@given(st.binary(max_size=64))
def test_murmur2_equals_aiokafka(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_partition_equals_default_partitioner(key: str, n: int) -> None:
    partitions = list(range(n))
    expected = DefaultPartitioner()(key.encode(), partitions, partitions)
    assert partition_for(key, n) == expected


def test_partitions_spread() -> None:
    counts = [0] * 6
    for i in range(6000):
        counts[partition_for(f"T-{i}", 6)] += 1
    assert all(800 < c < 1200 for c in counts)
