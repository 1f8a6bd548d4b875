"""Contract v1 decoding: every rule has a violating message and its reason code."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cxpulse.core import decode as d
from cxpulse.core.decode import Rejection, decode, encode, encode_bytes, format_ts, route_of
from cxpulse.core.events import (
    SCALES,
    SURVEYS,
    TICKETS,
    TYPE_NAMES,
    Author,
    Creator,
    Event,
    Priority,
    Status,
    StatusChanged,
    SurveyKind,
    SurveyResponse,
    TicketAssigned,
    TicketCreated,
    TicketMessage,
)
from hypothesis import given, settings
from hypothesis import strategies as st

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ---------------------------------------------------------------- strategies

labels = st.text(min_size=1, max_size=64)
ids = st.text(min_size=1, max_size=128)
timestamps = st.integers(min_value=d.MIN_TS, max_value=d.MAX_TS)


def _opt(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


events: st.SearchStrategy[Event] = st.one_of(
    st.builds(
        TicketCreated,
        event_id=ids,
        ts=timestamps,
        ticket_id=ids,
        team=labels,
        channel=labels,
        priority=st.sampled_from(Priority),
        customer_id=_opt(ids),
        created_by=st.sampled_from(Creator),
    ),
    st.builds(
        TicketAssigned,
        event_id=ids,
        ts=timestamps,
        ticket_id=ids,
        agent_id=labels,
        team=_opt(labels),
    ),
    st.builds(
        TicketMessage,
        event_id=ids,
        ts=timestamps,
        ticket_id=ids,
        author=st.sampled_from(Author),
        agent_id=_opt(labels),
        public=st.booleans(),
    ),
    st.builds(
        StatusChanged,
        event_id=ids,
        ts=timestamps,
        ticket_id=ids,
        status=st.sampled_from(Status),
    ),
    st.sampled_from(SurveyKind).flatmap(
        lambda kind: st.builds(
            SurveyResponse,
            event_id=ids,
            ts=timestamps,
            survey=st.just(kind),
            score=st.integers(*SCALES[kind]),
            ticket_id=_opt(ids),
            customer_id=_opt(ids),
            team=_opt(labels),
            agent_id=_opt(labels),
            channel=_opt(labels),
            touchpoint=_opt(labels),
        )
    ),
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

# ---------------------------------------------------------------- round trip


@given(events)
@settings(max_examples=400)
def test_valid_events_round_trip(event: Event) -> None:
    raw = encode_bytes(event)
    assert b"\n" not in raw
    assert decode(raw) == event


@given(events)
def test_route_of_valid_event_follows_contract(event: Event) -> None:
    role, key = route_of(encode_bytes(event))
    assert role == (SURVEYS if isinstance(event, SurveyResponse) else TICKETS)
    expected = event.ticket_id if event.ticket_id is not None else event.event_id
    assert key == expected.encode("utf-8")


offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(
    st.datetimes(
        min_value=datetime(1000, 1, 2),  # noqa: DTZ001 - hypothesis bounds must be naive
        max_value=datetime(9998, 12, 30),  # noqa: DTZ001
        timezones=offsets,
    ),
    st.sampled_from(["T", "t"]),
    st.integers(min_value=0, max_value=6),
)
def test_rfc3339_offsets_and_fractions(dt: datetime, sep: str, digits: int) -> None:
    """The decoded instant equals Python's own arithmetic, sub-ms digits truncated."""
    off = dt.utcoffset()
    assert off is not None
    minutes = int(off.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    if minutes == 0 and digits % 2:
        offset = "Z"
    frac = f"{dt.microsecond:06d}"[:digits]
    text = dt.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (f".{frac}" if digits else "") + offset
    truncated = dt.replace(microsecond=int(frac.ljust(6, "0")) if digits else 0)
    expected = (truncated - EPOCH) // timedelta(milliseconds=1)
    assert d.parse_ts(text) == expected


@given(timestamps)
def test_format_ts_is_inverse_of_parse(ts: int) -> None:
    text = format_ts(ts)
    assert len(text) == 24 and text.endswith("Z")
    assert d.parse_ts(text) == ts


def test_fraction_is_truncated_not_rounded() -> None:
    assert d.parse_ts("2026-11-22T10:15:00.2509Z") == d.parse_ts("2026-11-22T10:15:00.250Z")
    assert d.parse_ts("2026-11-22T10:15:00.9999999Z") == d.parse_ts("2026-11-22T10:15:00.999Z")
    assert d.parse_ts("2026-11-22T10:15:00.5Z") == d.parse_ts("2026-11-22T10:15:00.500Z")


def test_offsets_name_the_same_instant() -> None:
    base = d.parse_ts("2026-11-22T10:15:00Z")
    assert d.parse_ts("2026-11-22T13:15:00+03:00") == base
    assert d.parse_ts("2026-11-22T04:45:00-05:30") == base
    assert d.parse_ts("2026-11-22T10:15:00-00:00") == base
    assert d.parse_ts("2026-11-22t10:15:00z") == base


def test_leap_second_maps_to_next_minute() -> None:
    assert d.parse_ts("2016-12-31T23:59:60Z") == d.parse_ts("2017-01-01T00:00:00Z")


# ---------------------------------------------------------------- base messages

BASES: dict[str, dict[str, object]] = {
    "ticket.created": {
        "event_id": "e-1",
        "type": "ticket.created",
        "ts": "2026-11-22T09:00:00Z",
        "ticket_id": "T-1",
        "team": "billing",
        "channel": "email",
        "priority": "high",
        "customer_id": "c-1",
        "created_by": "customer",
    },
    "ticket.assigned": {
        "event_id": "e-2",
        "type": "ticket.assigned",
        "ts": "2026-11-22T09:01:00Z",
        "ticket_id": "T-1",
        "agent_id": "a-7",
        "team": "tech",
    },
    "ticket.message": {
        "event_id": "e-3",
        "type": "ticket.message",
        "ts": "2026-11-22T09:04:30Z",
        "ticket_id": "T-1",
        "author": "agent",
        "agent_id": "a-7",
        "public": True,
    },
    "ticket.status_changed": {
        "event_id": "e-4",
        "type": "ticket.status_changed",
        "ts": "2026-11-22T09:20:00Z",
        "ticket_id": "T-1",
        "status": "solved",
    },
    "survey.response": {
        "event_id": "e-5",
        "type": "survey.response",
        "ts": "2026-11-22T09:30:00Z",
        "survey": "csat",
        "score": 5,
        "ticket_id": "T-1",
        "customer_id": "c-1",
        "team": "billing",
        "agent_id": "a-7",
        "channel": "email",
        "touchpoint": "after_resolution",
    },
}
REQUIRED = {
    "ticket.created": ["ticket_id", "team", "channel"],
    "ticket.assigned": ["ticket_id", "agent_id"],
    "ticket.message": ["ticket_id", "author"],
    "ticket.status_changed": ["ticket_id", "status"],
    "survey.response": ["survey", "score"],
}
COMMON_REQUIRED = ["event_id", "type", "ts"]
STRING_FIELDS = {  # field -> max length
    "event_id": 128,
    "ticket_id": 128,
    "customer_id": 128,
    "team": 64,
    "channel": 64,
    "agent_id": 64,
    "touchpoint": 64,
}
ENUM_FIELDS = {
    ("ticket.created", "priority"),
    ("ticket.created", "created_by"),
    ("ticket.message", "author"),
    ("ticket.status_changed", "status"),
    ("survey.response", "survey"),
}


def _raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


def _with(type_name: str, **changes: object) -> bytes:
    obj = dict(BASES[type_name])
    obj.update(changes)
    return _raw(obj)


def _without(type_name: str, field: str) -> bytes:
    obj = dict(BASES[type_name])
    del obj[field]
    return _raw(obj)


def _code(raw: bytes | None, **kw: int) -> str:
    result = decode(raw, **kw)
    assert isinstance(result, Rejection), result
    assert result.code in d.REASON_CODES
    return result.code


@pytest.mark.parametrize("type_name", list(BASES))
def test_bases_are_valid(type_name: str) -> None:
    result = decode(_raw(BASES[type_name]))
    assert not isinstance(result, Rejection), result
    assert encode(result)["type"] == type_name


def test_spec_example_decodes_to_expected_events() -> None:
    created = decode(_raw(BASES["ticket.created"]))
    assert isinstance(created, TicketCreated)
    assert created.priority is Priority.HIGH and created.created_by is Creator.CUSTOMER
    reply = decode(_raw(BASES["ticket.message"]))
    assert isinstance(reply, TicketMessage)
    assert reply.ts - created.ts == 270_000


# ---------------------------------------------------------------- one rule at a time


def test_too_large() -> None:
    raw = _with("ticket.created", padding="x" * 70_000)
    assert _code(raw) == d.TOO_LARGE
    small = _raw(BASES["ticket.created"])
    assert _code(small, max_bytes=len(small) - 1) == d.TOO_LARGE
    assert not isinstance(decode(small, max_bytes=len(small)), Rejection)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff",
        _raw(BASES["ticket.created"]).replace(b'"billing"', b'"bill\xc3\x28ing"'),
        _raw(BASES["ticket.created"]).replace(b'"billing"', b'"\xed\xa0\x80"'),  # CESU surrogate
        json.dumps(BASES["ticket.created"]).encode("utf-16"),
        _raw(BASES["ticket.created"]).replace(b'"billing"', b'"\\ud800"'),  # lone surrogate
        _raw(BASES["survey.response"]).replace(b'"a-7"', b'"\\udfff"'),
    ],
)
def test_not_utf8(raw: bytes) -> None:
    assert _code(raw) == d.NOT_UTF8


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"   ",
        b"{",
        _raw(BASES["ticket.created"])[:-1],
        b"{'event_id': 'e-1'}",
        b'{"a": NaN}',
        b'{"a": -Infinity}',
        b'{"a": 1} {"b": 2}',
        b"\xef\xbb\xbf" + _raw(BASES["ticket.created"]),  # UTF-8 BOM
        b'{"score": ' + b"9" * 5000 + b"}",
        b"[" * 50_000 + b"]" * 50_000,
    ],
)
def test_not_json(raw: bytes | None) -> None:
    assert _code(raw, max_bytes=200_000) == d.NOT_JSON


@pytest.mark.parametrize("raw", [b"[]", b"[{}]", b'"ticket"', b"42", b"null", b"true", b"1.5"])
def test_not_object(raw: bytes) -> None:
    assert _code(raw) == d.NOT_OBJECT


@pytest.mark.parametrize(
    "type_value", ["ticket.merged", "Ticket.Created", "ticket.created ", "survey", ""]
)
def test_unknown_type(type_value: str) -> None:
    assert _code(_with("ticket.created", type=type_value)) == d.UNKNOWN_TYPE


@pytest.mark.parametrize(
    ("type_name", "field"),
    [(t, f) for t in BASES for f in COMMON_REQUIRED + REQUIRED[t]],
)
def test_missing_required_field(type_name: str, field: str) -> None:
    assert _code(_without(type_name, field)) == d.MISSING_FIELD


@pytest.mark.parametrize(
    ("type_name", "field"),
    [(t, f) for t in BASES for f in COMMON_REQUIRED + REQUIRED[t]],
)
def test_null_required_field_is_wrong_type(type_name: str, field: str) -> None:
    assert _code(_with(type_name, **{field: None})) == d.WRONG_TYPE


def _wrong_values(field: str) -> list[object]:
    if field == "score":
        return [True, False, 4.0, "5", [5], {"v": 5}]
    if field == "public":
        return [1, 0, "true", "false", [True]]
    if field == "ts":
        return [1795338000000, 1795338000.5, ["2026-11-22T09:00:00Z"], True]
    return [7, 1.5, True, ["billing"], {"name": "x"}]


@pytest.mark.parametrize(
    ("type_name", "field", "value"),
    [(t, f, v) for t, base in BASES.items() for f in base if f != "type" for v in _wrong_values(f)]
    + [("ticket.created", "type", v) for v in [1, True, ["ticket.created"]]],
)
def test_wrong_type(type_name: str, field: str, value: object) -> None:
    assert _code(_with(type_name, **{field: value})) == d.WRONG_TYPE


@pytest.mark.parametrize(
    ("type_name", "field", "value"),
    [
        (t, f, v)
        for t, f in sorted(ENUM_FIELDS)
        for v in ["", "HIGH", "resolved", "critical", "nps ", "new"]
    ],
)
def test_bad_enum(type_name: str, field: str, value: str) -> None:
    assert _code(_with(type_name, **{field: value})) == d.BAD_ENUM


def test_status_new_is_not_settable() -> None:
    """`new` is only the state a ticket starts in; no event may set it."""
    assert _code(_with("ticket.status_changed", status="new")) == d.BAD_ENUM


@pytest.mark.parametrize("kind", list(SurveyKind))
def test_bad_scale(kind: SurveyKind) -> None:
    low, high = SCALES[kind]
    for score in (low - 1, high + 1, -(10**30), 10**30):
        raw = _with("survey.response", survey=kind.value, score=score)
        result = decode(raw)
        assert isinstance(result, Rejection) and result.code == d.BAD_SCALE
        assert kind.value in result.message
    for score in (low, high):
        ok = decode(_with("survey.response", survey=kind.value, score=score))
        assert isinstance(ok, SurveyResponse) and ok.score == score


@pytest.mark.parametrize(
    "ts",
    [
        "2026-11-22 09:00:00Z",  # space separator: refused, see decode's docstring
        "2026-11-22 09:00:00+00:00",
        "22/11/2026 09:00:00Z",
        "2026-11-22",
        "2026-11-22T09:00Z",
        "2026-11-22T09:00:00.Z",
        "2026-11-22T9:00:00Z",
        "2026-11-22T09:00:00+0300",
        "2026-11-22T09:00:00+03",
        "2026-11-22T09:00:00 Z",
        "2026-11-22T09:00:00ZZ",
        "2026-02-30T09:00:00Z",
        "2026-13-01T09:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T09:60:00Z",
        "2026-11-22T09:00:61Z",
        "2026-11-22T09:00:00+24:00",
        "2026-11-22T09:00:00+03:60",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01",  # before year 1 in UTC
        "9999-12-31T23:59:59-00:01",  # after year 9999 in UTC
        "\u0662\u0660\u0662\u0666-11-22T09:00:00Z",  # non-ASCII digits
        "yesterday",
        "",
    ],
)
def test_bad_timestamp(ts: str) -> None:
    assert _code(_with("ticket.created", ts=ts)) == d.BAD_TIMESTAMP


@pytest.mark.parametrize(
    "ts", ["2026-11-22T09:00:00", "2026-11-22T09:00:00.250", "2026-11-22t09:00:00.123456"]
)
def test_naive_timestamp(ts: str) -> None:
    assert _code(_with("ticket.message", ts=ts)) == d.NAIVE_TIMESTAMP


@pytest.mark.parametrize(
    ("type_name", "field", "limit"),
    [(t, f, STRING_FIELDS[f]) for t, base in BASES.items() for f in base if f in STRING_FIELDS],
)
def test_bad_length(type_name: str, field: str, limit: int) -> None:
    assert _code(_with(type_name, **{field: ""})) == d.BAD_LENGTH
    assert _code(_with(type_name, **{field: "x" * (limit + 1)})) == d.BAD_LENGTH
    assert _code(_with(type_name, **{field: "é" * (limit + 1)})) == d.BAD_LENGTH
    at_limit = decode(_with(type_name, **{field: "é" * limit}))
    assert not isinstance(at_limit, Rejection), at_limit
    assert getattr(at_limit, field) == "é" * limit


# ---------------------------------------------------------------- lenient on purpose


def test_unknown_extra_fields_are_ignored() -> None:
    raw = _with("ticket.created", sla_policy={"x": [1, 2]}, body="hello", v=2)
    assert decode(raw) == decode(_raw(BASES["ticket.created"]))


@pytest.mark.parametrize(
    ("type_name", "field"),
    [
        ("ticket.created", "priority"),
        ("ticket.created", "customer_id"),
        ("ticket.created", "created_by"),
        ("ticket.assigned", "team"),
        ("ticket.message", "agent_id"),
        ("ticket.message", "public"),
        ("survey.response", "ticket_id"),
        ("survey.response", "team"),
        ("survey.response", "touchpoint"),
    ],
)
def test_optional_null_means_absent(type_name: str, field: str) -> None:
    assert decode(_with(type_name, **{field: None})) == decode(_without(type_name, field))


def test_defaults_apply_when_optionals_absent() -> None:
    created = decode(_without("ticket.created", "priority"))
    assert isinstance(created, TicketCreated) and created.priority is Priority.NORMAL
    note = decode(_without("ticket.message", "public"))
    assert isinstance(note, TicketMessage) and note.public is True
    private = decode(_with("ticket.message", public=False))
    assert isinstance(private, TicketMessage) and private.public is False


def test_messages_never_echo_string_values() -> None:
    secret = "T-SECRET-42"
    samples = [
        _with("ticket.created", ticket_id=secret, priority="SECRET-PRIO"),
        _with("ticket.created", type="SECRET-TYPE"),
        _with("ticket.status_changed", status="T-SECRET-42"),
        _with("ticket.created", ts="T-SECRET-42"),
        _with("ticket.created", team="T-SECRET-42" * 10),
    ]
    for raw in samples:
        result = decode(raw)
        assert isinstance(result, Rejection)
        assert "SECRET" not in result.message


# ---------------------------------------------------------------- totality


@given(st.binary(max_size=512))
@settings(max_examples=1000)
def test_random_bytes_never_raise(raw: bytes) -> None:
    result = decode(raw)
    assert isinstance(result, Rejection) or type(result) in TYPE_NAMES


@given(json_values)
@settings(max_examples=500)
def test_random_json_never_raises(value: object) -> None:
    result = decode(_raw(value))
    if not isinstance(value, dict):
        assert isinstance(result, Rejection) and result.code == d.NOT_OBJECT


@given(
    st.sampled_from(list(BASES)),
    st.dictionaries(
        st.sampled_from(sorted({f for base in BASES.values() for f in base})),
        json_values,
        max_size=6,
    ),
)
@settings(max_examples=1500)
def test_fuzzed_fields_never_raise(type_name: str, changes: dict[str, object]) -> None:
    """Random values in the real field names reach every check, not just the parser."""
    raw = _with(type_name, **changes)
    result = decode(raw)
    if isinstance(result, Rejection):
        assert result.code in d.REASON_CODES
        assert route_of(raw)[0] in (TICKETS, SURVEYS)
    else:
        assert decode(encode_bytes(result)) == result


@given(st.binary(max_size=256))
def test_route_of_never_raises(raw: bytes) -> None:
    role, key = route_of(raw)
    assert role in (TICKETS, SURVEYS)
    assert key is None or isinstance(key, bytes)
