"""Dead-letter records: original bytes untouched, envelope round-trips through headers."""

from __future__ import annotations

import pytest
from cxpulse.core import deadletter as dl
from cxpulse.core.decode import REASON_CODES, Rejection, decode, parse_ts
from hypothesis import given
from hypothesis import strategies as st


def _record(key: bytes | None, value: bytes | None, rejection: Rejection) -> dl.DeadLetter:
    return dl.dead_letter(
        key=key,
        value=value,
        source_topic="support.tickets",
        source_partition=3,
        source_offset=123_456_789_012,
        rejection=rejection,
        rejected_at_ms=parse_ts("2026-11-22T10:15:00.250Z"),  # type: ignore[arg-type]
    )


@given(
    st.one_of(st.none(), st.binary(max_size=64)),
    st.one_of(st.none(), st.binary(max_size=512)),
    st.sampled_from(REASON_CODES),
    st.text(max_size=200),
    st.text(min_size=1, max_size=60),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=2**63 - 1),
)
def test_envelope_round_trips_and_bytes_stay_untouched(
    key: bytes | None,
    value: bytes | None,
    code: str,
    message: str,
    topic: str,
    partition: int,
    offset: int,
) -> None:
    record = dl.dead_letter(
        key=key,
        value=value,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        rejection=Rejection(code, message),
        rejected_at_ms=1_795_338_000_250,
    )
    assert record.key is key and record.value is value
    assert all(isinstance(v, bytes) for _, v in record.headers)
    back = dl.DeadLetter.from_headers(record.key, record.value, record.headers)
    assert back == record
    env = back.envelope
    assert (env.source_topic, env.source_partition, env.source_offset) == (
        topic,
        partition,
        offset,
    )
    assert env.reason == code
    assert env.message == message
    assert env.rejected_at == "2026-11-22T09:00:00.250Z"


def test_header_names_are_the_agreed_ones() -> None:
    record = _record(b"T-1", b"\xff\xfe", Rejection("not_utf8", "invalid UTF-8 at byte 0"))
    assert [name for name, _ in record.headers] == [
        "cxpulse.source_topic",
        "cxpulse.source_partition",
        "cxpulse.source_offset",
        "cxpulse.reason",
        "cxpulse.message",
        "cxpulse.rejected_at",
    ]
    headers = dict(record.headers)
    assert headers["cxpulse.source_offset"] == b"123456789012"
    assert headers["cxpulse.rejected_at"] == b"2026-11-22T10:15:00.250Z"
    assert record.value == b"\xff\xfe"


def test_reason_and_message_come_from_the_decoder() -> None:
    raw = b'{"event_id":"e","type":"survey.response","ts":"2026-11-22T10:00:00Z",'
    raw += b'"survey":"csat","score":9,"ticket_id":"T-SECRET"}'
    rejection = decode(raw)
    assert isinstance(rejection, Rejection)
    env = _record(b"T-SECRET", raw, rejection).envelope
    assert env.reason == "bad_scale"
    assert "9" in env.message and "1..5" in env.message
    assert "T-SECRET" not in env.message


def test_long_message_is_capped() -> None:
    record = _record(None, b"x", Rejection("not_json", "m" * 10_000))
    assert len(record.envelope.message) == dl.MESSAGE_MAX_CHARS


def test_unrelated_headers_are_ignored_when_parsing() -> None:
    record = _record(b"k", b"v", Rejection("not_json", "Expecting value"))
    extra = [("traceparent", b"00-abc"), *record.headers, ("x-retry", b"\xff")]
    assert dl.Envelope.from_headers(extra) == record.envelope


@pytest.mark.parametrize("drop", dl.HEADER_NAMES)
def test_missing_header_is_an_error(drop: str) -> None:
    record = _record(b"k", b"v", Rejection("not_json", "Expecting value"))
    headers = [(n, v) for n, v in record.headers if n != drop]
    with pytest.raises(dl.EnvelopeError, match=drop):
        dl.DeadLetter.from_headers(b"k", b"v", headers)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("cxpulse.source_offset", b"12x"),
        ("cxpulse.source_partition", b""),
        ("cxpulse.reason", b"\xff"),
    ],
)
def test_malformed_header_is_an_error(name: str, raw: bytes) -> None:
    record = _record(b"k", b"v", Rejection("not_json", "Expecting value"))
    headers = [(n, raw if n == name else v) for n, v in record.headers]
    with pytest.raises(dl.EnvelopeError):
        dl.Envelope.from_headers(headers)


# ----------------------------------------------------------------------------- size bound


def _rejected(value: bytes, key: bytes | None = b"T-1") -> dl.DeadLetter:
    return dl.dead_letter(
        key=key,
        value=value,
        source_topic="support.tickets",
        source_partition=3,
        source_offset=123456,
        rejection=Rejection("too_large", f"message of {len(value)} bytes exceeds 65536"),
        rejected_at_ms=1_700_000_000_000,
    )


@pytest.mark.parametrize("n", [0, 100, 70_000, 1_048_000])
def test_record_size_bounds_what_the_producer_and_broker_count(n: int) -> None:
    """Our bound >= aiokafka's estimate (what `max_request_size` is checked against)
    and >= the real one-record batch (what the broker's max.message.bytes sees)."""
    from aiokafka.record.default_records import DefaultRecordBatchBuilder
    from cxpulse.core.deadletter import record_size

    rec = _rejected(b"x" * n)
    ours = record_size(rec.key, rec.value, rec.headers)
    assert ours >= DefaultRecordBatchBuilder.estimate_size_in_bytes(
        rec.key, rec.value, rec.headers
    )
    builder = DefaultRecordBatchBuilder(2, 0, 0, 0, 0, 0, 10**9)
    assert builder.append(0, 1_700_000_000_000, rec.key, rec.value, rec.headers) is not None
    assert ours >= len(builder.build())
    assert ours < len(builder.build()) + 64  # a bound, not a guess


def test_a_dead_letter_that_fits_keeps_the_original_bytes() -> None:
    from cxpulse.core.deadletter import bounded, is_pointer

    rec = _rejected(bytes(range(256)) * 400)  # 100 KiB, not UTF-8
    out, pointer = bounded(rec, 1_000_000)
    assert not pointer and out is rec and not is_pointer(out.headers)


@pytest.mark.parametrize("key", [b"T-1", b"k" * 5000, None])
def test_a_dead_letter_too_large_becomes_a_pointer(key: bytes | None) -> None:
    import hashlib
    import json

    from cxpulse.core.deadletter import (
        ORIGINAL_SHA256,
        ORIGINAL_SIZE,
        bounded,
        is_pointer,
        record_size,
    )

    original = b"\xff" * 1_048_000
    rec = _rejected(original, key)
    out, pointer = bounded(rec, 1_000_000)
    assert pointer and is_pointer(out.headers)
    assert record_size(out.key, out.value, out.headers) < 4096
    env = out.envelope  # still a valid envelope: ops tooling reads it unchanged
    assert (env.source_topic, env.source_partition, env.source_offset) == (
        "support.tickets", 3, 123456,
    )  # fmt: skip
    headers = dict(out.headers)
    digest = hashlib.sha256(original).hexdigest()
    assert headers[ORIGINAL_SHA256] == digest.encode()
    assert headers[ORIGINAL_SIZE] == b"1048000"
    assert json.loads(out.value or b"") == {
        "pointer": True, "source_topic": "support.tickets", "source_partition": 3,
        "source_offset": 123456, "size": 1048000, "sha256": digest,
    }  # fmt: skip
    assert out.key == (key if key is not None and len(key) <= 1024 else None)
