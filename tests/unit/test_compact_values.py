"""Issue 22's compact changelog values: a ticket's events without its id (the key
names it), their times as distances, UUID event ids in 22 characters, survey
dedup entries without the id twice, records without `prev` under a 16-byte
header; and values the code before them wrote (`data/state_values_uncompact.json.gz`,
written by `data/gen_state_values_uncompact.py` with main 5961c17) still read.
"""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cxpulse.changelog.records import CorruptState, Record, decode_record, encode_record
from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode
from cxpulse.core.engine import PartitionEngine, evaluate
from cxpulse.core.events import (
    Author,
    Event,
    TicketAssigned,
    TicketCreated,
    TicketMessage,
    role_of,
)
from cxpulse.core.replica import PartitionReplica
from cxpulse.core.tickets import decode_event, encode_event
from hypothesis import given, settings
from hypothesis import strategies as st

DATA = Path(__file__).parent / "data" / "state_values_uncompact.json.gz"
CFG = CoreConfig()


def _old() -> dict[str, Any]:
    with gzip.open(DATA, "rt") as f:
        data: dict[str, Any] = json.load(f)
    return data


def _feed(eng: PartitionEngine, messages: list[str]) -> None:
    for raw in messages:
        e = decode(raw.encode())
        if not isinstance(e, Rejection):
            eng.apply(role_of(e), e)


def _drained(eng: PartitionEngine) -> dict[str, bytes]:
    return {k: v for k, v in eng.drain_dirty().items() if v is not None}


def test_values_the_old_code_wrote_restore_the_engine_the_new_code_builds() -> None:
    old = _old()
    messages, half = old["messages"], old["half"]
    written = {k: v.encode() for k, v in old["values"].items()}
    fresh = PartitionEngine(CFG, 0)
    _feed(fresh, messages[:half])
    new = _drained(fresh)
    assert new.keys() == written.keys()
    restored = PartitionEngine.restore(CFG, 0, written.items())
    assert evaluate([restored]) == evaluate([fresh])
    # both go on alike, and the restored one writes what the new code writes
    _feed(restored, messages[half:])
    _feed(fresh, messages[half:])
    assert evaluate([restored]) == evaluate([fresh])
    assert _drained(restored) == _drained(fresh)


def test_a_replica_reads_old_and_new_values_alike() -> None:
    old = _old()
    fresh = PartitionEngine(CFG, 0)
    _feed(fresh, old["messages"][: old["half"]])
    new = _drained(fresh)
    for values in (old["values"], {k: v.decode() for k, v in new.items()}):
        replica = PartitionReplica(CFG, 0)
        for key, value in values.items():
            replica.apply(key, value.encode())
        base = evaluate([fresh])
        assert base.at_ms is not None and evaluate([replica]) == base
        for later in (3 * 3_600_000, 8 * 86_400_000):  # open ages, then expiry
            at = base.at_ms + later
            assert evaluate([replica], at) == evaluate([fresh], at)


def test_a_ticket_value_holds_no_ticket_id_and_no_long_uuid() -> None:
    old = _old()
    fresh = PartitionEngine(CFG, 0)
    _feed(fresh, old["messages"][: old["half"]])
    new = _drained(fresh)
    tickets = [k for k in new if k.startswith("t:")]
    assert len(tickets) > 50
    total = [0, 0]
    for key in tickets:
        before, after = old["values"][key].encode(), new[key]
        events = json.loads(before)["e"]
        assert all(e[3] == key[2:] for e in events)  # the old value wrote the id in each
        assert key[2:].encode() not in after
        for e in events:
            assert e[1].encode() in before and e[1].encode() not in after
        assert len(after) < 0.75 * len(before)
        total[0] += len(before)
        total[1] += len(after)
    assert total[1] < 0.65 * total[0]


@given(st.uuids())
def test_a_uuid_event_id_is_written_short_and_read_back(u: uuid.UUID) -> None:
    e = TicketMessage(str(u), 1_795_000_000_000, "T-1", Author.AGENT, "a-1", True)
    written = encode_event(e)
    assert written[0] == "M" and len(written[1]) == 22
    assert decode_event(json.loads(json.dumps(written))) == e


_ID_CHARS = st.sampled_from("0123456789abcdefABCDEF- ~g")


@settings(max_examples=300)
@given(
    st.one_of(
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: str(u)[:-2] + " " + str(u)[-1]),  # fromhex skips the space
        st.text(_ID_CHARS, min_size=34, max_size=38),
        st.text(),
    )
)
def test_any_other_event_id_is_kept_as_it_came(event_id: str) -> None:
    e = TicketMessage(event_id, 1_795_000_000_000, "T-1", Author.CUSTOMER, None, True)
    written = encode_event(e)
    short = written[0] == "M"
    assert short == (event_id == str(uuid.UUID(event_id)) if _uuid_like(event_id) else False)
    assert (written[1] == event_id) != short
    assert decode_event(json.loads(json.dumps(written))) == e


def _uuid_like(s: str) -> bool:
    try:
        uuid.UUID(s)
    except ValueError:
        return False
    return len(s) == 36


@given(
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**63 - 1),
    st.one_of(st.none(), st.binary(max_size=40)),
    st.booleans(),
    st.booleans(),
)
def test_a_record_without_prev_round_trips_under_the_short_header(
    epoch: int, seq: int, new: bytes | None, split: bool, no_prev: bool
) -> None:
    rec = Record(epoch, seq, new, None, new_split=split and new is not None, no_prev=no_prev)
    raw = encode_record(rec)
    assert raw[:2] == b"C2"
    assert decode_record(raw) == rec
    with_prev = Record(epoch, seq, new, b"p", new_split=rec.new_split)
    assert decode_record(encode_record(with_prev)) == with_prev  # the 23-byte header
    # magic 2, epoch 8, flags 1, the varints
    body = len(new or b"")
    assert len(raw) == 11 + _varint_len(seq) + _varint_len(body) + body
    with pytest.raises(CorruptState):  # truncated: a shorter value is no value
        decode_record(raw[:-1])


def _varint_len(n: int) -> int:
    return max(1, -(-n.bit_length() // 7))


@pytest.mark.parametrize(
    "raw",
    [
        b"C2",
        b"C2" + bytes(9),
        b"C2" + bytes(8) + b"\x01\x80\x80",  # the varint cut
        b"C2" + bytes(8) + b"\x01\x05\x03ab",  # the value cut
        b"C2" + bytes(8) + b"\x03\x05\x00",  # a prev flag in a record without prev
        b"C2" + bytes(8) + b"\x21\x05\x00",  # an unknown flag
        b"C2" + bytes(8) + b"\x00\x05\x02ab",  # a body without the flag that has one
    ],
)
def test_a_cut_or_malformed_short_header_is_corrupt_state(raw: bytes) -> None:
    with pytest.raises(CorruptState):
        decode_record(raw)


def _c1(flags: int, n: int, body: bytes) -> bytes:
    """A `C1` header (magic, epoch, seq, flags, len(new)) and `body`, as `encode_record` lays it."""
    return b"C1" + bytes(8) + (5).to_bytes(8, "big") + bytes((flags,)) + n.to_bytes(4, "big") + body


def test_the_long_header_reads_what_every_format_wrote() -> None:
    """The `C1` cases `encode_record` writes (and format 1's `new + (prev or b"")`)."""
    assert decode_record(_c1(1, 2, b"ab")) == Record(0, 5, b"ab", None)
    assert decode_record(_c1(3, 2, b"abp")) == Record(0, 5, b"ab", b"p")
    assert decode_record(_c1(2, 0, b"p")) == Record(0, 5, None, b"p")
    assert decode_record(_c1(0, 0, b"")) == Record(0, 5, None, None)
    assert decode_record(_c1(1 | 4 | 16, 2, b"ab")) == Record(0, 5, b"ab", None, True, False, True)
    assert decode_record(_c1(3 | 8, 1, b"ap")) == Record(0, 5, b"a", b"p", False, True)


@pytest.mark.parametrize(
    "raw",
    [
        _c1(1, 3, b"ab"),  # the value cut
        _c1(1 | 32, 2, b"ab"),  # an unknown flag
        _c1(0, 2, b"ab"),  # a value without the flag that has one
        _c1(1, 2, b"abp"),  # bytes after the value without the prev flag
        _c1(0, 0, b"p"),  # a prev without its flag
    ],
)
def test_a_malformed_long_header_is_corrupt_state(raw: bytes) -> None:
    """Review of format 5 (2026-12-07): the `C1` reader accepted these; a record this
    code never wrote is corrupt state, as under the `C2` header."""
    with pytest.raises(CorruptState):
        decode_record(raw)


MIN = 60_000


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(-10 * MIN, 10 * MIN), min_size=1, max_size=4), st.integers(MIN, 5 * MIN)
)
def test_packing_changes_no_value_even_for_a_ticket_before_1970(times: list[int], gap: int) -> None:
    """Found in review: a ticket without its creation whose events are all before 1970
    has a derivation whose newest time is 0, not its newest event's; packed and
    unpacked, its next event's time was written as the distance from 0."""
    packing = CoreConfig(pack_idle_ms=MIN)
    fast, never = PartitionEngine(packing, 0), PartitionEngine(CoreConfig(pack_idle_ms=10**13), 0)
    batches: list[list[Event]] = [
        [TicketAssigned(f"a{i}", t, "NC", "ann", None) for i, t in enumerate(sorted(times))],
        [TicketCreated("z", max(times) + 2 * MIN, "Z", "billing", "email")],
        [TicketMessage("m", max(times) + 2 * MIN + gap, "NC", Author.CUSTOMER)],
    ]
    for i, batch in enumerate(batches):
        for eng in (fast, never):
            with eng.batch():
                for e in batch:
                    eng.apply(role_of(e), e)
        if i == len(batches) - 1:
            assert fast.drain_dirty() == never.drain_dirty()
        else:
            fast.drain_dirty(), never.drain_dirty()
