"""The dead-letter record of a rejected message.

The record keeps the original key and value byte for byte (even when they
are not UTF-8) so that a fixed producer bug can be repaired by re-producing
the very same bytes; everything the worker knows about the rejection travels
in Kafka headers instead of a wrapping JSON document, which could not carry
arbitrary bytes without an encoding step. The time of rejection is an input:
the core has no clock.

Why a dead letter is sometimes a *pointer* (`bounded`): a message the
contract rejects as too large can be too large for the dead-letter topic as
well (a 1 MB message plus the envelope headers exceeds the producer's 1 MiB
request limit; a 2 MB one on a topic whose limit was raised exceeds the
dead-letter topic's). Sending it anyway failed the batch, and since the
batch is re-read after a restart, the worker crash-looped on it. A record
over the limit is therefore replaced by a small pointer: no value copy, the
usual envelope (source topic, partition, offset), plus the original value's
size and SHA-256, so the original bytes can be fetched from the source topic
while its retention keeps them, and checked to be the very same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from cxpulse.core.decode import Rejection, format_ts

SOURCE_TOPIC = "cxpulse.source_topic"
SOURCE_PARTITION = "cxpulse.source_partition"
SOURCE_OFFSET = "cxpulse.source_offset"
REASON = "cxpulse.reason"
MESSAGE = "cxpulse.message"
REJECTED_AT = "cxpulse.rejected_at"

HEADER_NAMES: tuple[str, ...] = (
    SOURCE_TOPIC,
    SOURCE_PARTITION,
    SOURCE_OFFSET,
    REASON,
    MESSAGE,
    REJECTED_AT,
)

#: Pointer records only (see `bounded`): the original value's size and digest.
ORIGINAL_SIZE = "cxpulse.original_size"
ORIGINAL_SHA256 = "cxpulse.original_sha256"
ORIGINAL_KEY_SIZE = "cxpulse.original_key_size"

#: Largest dead letter by default: below the producer's 1 MiB `max_request_size`
#: (aiokafka; faust's default is 1,000,000) and the broker's default
#: `message.max.bytes`.
DEFAULT_MAX_BYTES = 1_000_000
#: Keys above this are dropped from a pointer record (a key is a ticket id:
#: anything this long is garbage, and must not make the pointer too large).
POINTER_KEY_MAX = 1024

#: Human messages are short by construction; the cap only keeps a header
#: from ever growing with its input.
MESSAGE_MAX_CHARS = 512


class EnvelopeError(ValueError):
    """Headers that do not form a dead-letter envelope (ops tooling reports it)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """Where a rejected message came from and why it was rejected."""

    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    message: str
    rejected_at: str  # RFC 3339 UTC, millisecond precision

    def to_headers(self) -> list[tuple[str, bytes]]:
        values = (
            self.source_topic,
            str(self.source_partition),
            str(self.source_offset),
            self.reason,
            self.message,
            self.rejected_at,
        )
        return [(name, v.encode("utf-8")) for name, v in zip(HEADER_NAMES, values, strict=True)]

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes]]) -> Envelope:
        """Parse the envelope; unrelated headers are ignored, a missing one is an error."""
        found: dict[str, str] = {}
        for name, raw in headers:
            if name in HEADER_NAMES:
                try:
                    found[name] = bytes(raw).decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise EnvelopeError(f"header {name!r} is not UTF-8") from exc
        missing = [name for name in HEADER_NAMES if name not in found]
        if missing:
            raise EnvelopeError(f"missing dead-letter headers: {', '.join(missing)}")
        try:
            partition = int(found[SOURCE_PARTITION])
            offset = int(found[SOURCE_OFFSET])
        except ValueError as exc:
            raise EnvelopeError("source partition and offset must be integers") from exc
        return cls(
            source_topic=found[SOURCE_TOPIC],
            source_partition=partition,
            source_offset=offset,
            reason=found[REASON],
            message=found[MESSAGE],
            rejected_at=found[REJECTED_AT],
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message for the dead-letter topic: original key and value, envelope in headers."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def envelope(self) -> Envelope:
        return Envelope.from_headers(self.headers)

    @classmethod
    def from_headers(
        cls,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> DeadLetter:
        """Rebuild a record read back from the dead-letter topic, checking its envelope."""
        own = [(name, bytes(raw)) for name, raw in headers]
        Envelope.from_headers(own)
        return cls(key=key, value=value, headers=own)


def dead_letter(
    *,
    key: bytes | None,
    value: bytes | None,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    rejection: Rejection,
    rejected_at_ms: int,
) -> DeadLetter:
    """The record to produce for a message `decode` refused."""
    envelope = Envelope(
        source_topic=source_topic,
        source_partition=source_partition,
        source_offset=source_offset,
        reason=rejection.code,
        message=rejection.message[:MESSAGE_MAX_CHARS],
        rejected_at=format_ts(rejected_at_ms),
    )
    return DeadLetter(key=key, value=value, headers=envelope.to_headers())


def _varint_len(n: int) -> int:
    """Bytes of a zigzag varint of `n` (Kafka record format v2)."""
    z = (n << 1) ^ (n >> 63)
    size = 1
    while z >= 0x80:
        z >>= 7
        size += 1
    return size


#: Record batch header (61) + the largest per-record framing (attributes,
#: length, offset and timestamp deltas, key/value/header-count lengths).
_BATCH_OVERHEAD = 61 + 5 + 1 + 5 + 10 + 5 + 5 + 5


def record_size(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> int:
    """An upper bound of the record's size in a one-record batch, as the
    producer (`max_request_size`) and the broker (`max.message.bytes`) count it."""
    size = _BATCH_OVERHEAD + len(key or b"") + len(value or b"")
    for name, raw in headers:
        n = len(name.encode("utf-8"))
        size += _varint_len(n) + n + _varint_len(len(raw)) + len(raw)
    return size


def pointer(record: DeadLetter) -> DeadLetter:
    """The record that stands for `record` when it is too large to send.

    Value: a small JSON document repeating the envelope's source, plus the
    original value's `size` and `sha256` (hex); the same two travel as
    headers (`cxpulse.original_size`, `cxpulse.original_sha256`, whose
    presence marks a pointer). The key is kept unless it is itself large.
    """
    env = record.envelope
    original = record.value or b""
    digest = hashlib.sha256(original).hexdigest()
    key = record.key
    headers = [
        *record.headers,
        (ORIGINAL_SIZE, str(len(original)).encode()),
        (ORIGINAL_SHA256, digest.encode()),
    ]
    if key is not None and len(key) > POINTER_KEY_MAX:
        headers.append((ORIGINAL_KEY_SIZE, str(len(key)).encode()))
        key = None
    value = json.dumps(
        {
            "pointer": True,
            "source_topic": env.source_topic,
            "source_partition": env.source_partition,
            "source_offset": env.source_offset,
            "size": len(original),
            "sha256": digest,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    return DeadLetter(key=key, value=value, headers=headers)


def bounded(record: DeadLetter, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[DeadLetter, bool]:
    """`record` itself when it fits `max_bytes`, else its `pointer`.

    Returns (record to send, whether it is a pointer)."""
    if record_size(record.key, record.value, record.headers) <= max_bytes:
        return record, False
    return pointer(record), True


def is_pointer(headers: Sequence[tuple[str, bytes]]) -> bool:
    """Whether a dead letter read back is a pointer (its value is not the original)."""
    return any(name == ORIGINAL_SHA256 for name, _ in headers)
