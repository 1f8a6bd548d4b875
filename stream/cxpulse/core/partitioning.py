"""Kafka's default partitioner (murmur2 of the key bytes), so the batch report
routes every event to the same partition number the live topics put it in.

Same arithmetic as the Java client's `Utils.murmur2` and aiokafka's
`DefaultPartitioner` (tests compare them on many keys).
"""

from __future__ import annotations

from struct import Struct

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF
#: Little-endian unsigned 32-bit words, unpacked in C rather than byte by byte.
_WORD = Struct("<I")


def murmur2(data: bytes) -> int:
    """32-bit unsigned MurmurHash2 with Kafka's seed."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    n4 = length & ~3
    for (k,) in _WORD.iter_unpack(data[:n4]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra >= 3:
        h ^= data[n4 + 2] << 16
    if extra >= 2:
        h ^= data[n4 + 1] << 8
    if extra >= 1:
        h ^= data[n4]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: str | bytes, partitions: int) -> int:
    """Partition of a keyed record among `partitions` (positive-masked murmur2 modulo)."""
    if partitions < 1:
        raise ValueError("partitions must be >= 1")
    data = key.encode("utf-8") if isinstance(key, str) else key
    return (murmur2(data) & 0x7FFFFFFF) % partitions
