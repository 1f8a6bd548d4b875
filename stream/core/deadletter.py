"""The dead-letter record of a rejected message.

The record keeps the original key and value byte for byte (even when they
are not UTF-8) so that a fixed producer bug can be repaired by re-producing
the very same bytes; everything the worker knows about the rejection travels
in Kafka headers instead of a wrapping JSON document, which could not carry
arbitrary bytes without an encoding step. The time of rejection is an input:
the core has no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream.core.decode import Rejection, format_ts

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
