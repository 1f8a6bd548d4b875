"""Bytes from Kafka to contract-v1.1 events (docs/contract.md), and back.

`decode` is the only gate between the outside world and the KPI core, so it
is total: whatever the bytes, it returns either an `Event` or a `Rejection`
carrying one of the reason codes below, and never raises. A worker that
crashed on one hostile message would stop every KPI; a rejection is counted
and dead-lettered instead.

Choices the contract leaves open, decided here:

* Timestamps: RFC 3339 `date-time` only (section 5.6 grammar): `T` (or `t`)
  between date and time, an explicit offset `Z`/`z`/`+hh:mm`/`-hh:mm`,
  optional fractional seconds of any length. A space instead of `T` is
  rejected (`bad_timestamp`): the RFC allows it only in a non-normative note,
  and loosening later stays compatible while tightening would not. Sub-ms
  digits are truncated (not rounded), so no event moves into the next
  millisecond, minute slice or day. Second `60` (leap second) is accepted and
  maps to the next minute's `:00`, as Unix time does. `-00:00` reads as UTC.
  The instant must fall within years 0001..9999 UTC.
* Length limits: labels (`team`, `channel`, `agent_id`, `touchpoint`) 1..64
  characters; identifiers (`event_id`, `ticket_id`, `customer_id`) 1..128.
  The contract fixes 1..128 only for `event_id`; ids are bounded too because
  they become state keys, and `touchpoint` is a metric label like the others.
* A string holding a lone UTF-16 surrogate (legal as a JSON `\\ud800` escape)
  is rejected as `not_utf8`: it cannot be encoded back to UTF-8, so it would
  crash the metrics exporter later, far from its cause.
* `null` in an optional field means absent (webhook producers commonly send
  it); `null` in a required field is `wrong_type`.
* `NaN`/`Infinity` literals and integers beyond Python's digit limit are not
  JSON (`not_json`). A fractional or boolean `score` is `wrong_type`.
* Human messages name fields, JSON types, lengths and numbers, never string
  values: those may be personal data and the messages end up in logs. The
  original bytes stay available in the dead-letter topic.
* Scales (1.1): a `scale` that its survey kind does not offer is `bad_scale`
  (not `bad_enum`: the value is a scale, just not this survey's), as is a
  score not on the scale. Messages that name the contract point at
  docs/contract.md, where producers find the rule they broke.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import msgspec

from cxpulse.core.events import (
    DEFAULT_SCALE,
    SCALE_SCORES,
    SURVEYS,
    TICKETS,
    TYPE_NAMES,
    Author,
    Creator,
    Event,
    Priority,
    Scale,
    Status,
    StatusChanged,
    SurveyKind,
    SurveyOffered,
    SurveyResponse,
    TicketAssigned,
    TicketCreated,
    TicketHandoff,
    TicketMessage,
    key_of,
    role_of,
)

#: Where producers read the rules a rejection names.
CONTRACT_DOC = "docs/contract.md"

#: Value longer than the size limit (checked before anything else is parsed).
TOO_LARGE = "too_large"
#: Value is not valid UTF-8, or a string holds a lone surrogate escape.
NOT_UTF8 = "not_utf8"
#: Not one JSON document (syntax error, NaN/Infinity, empty or null value).
NOT_JSON = "not_json"
#: Valid JSON, but not an object.
NOT_OBJECT = "not_object"
#: `type` is a string but not one of the contract's event types.
UNKNOWN_TYPE = "unknown_type"
#: A required field is absent.
MISSING_FIELD = "missing_field"
#: A field has the wrong JSON type (including `null` for a required field).
WRONG_TYPE = "wrong_type"
#: A string outside its enum (priority, created_by, author, status, survey).
BAD_ENUM = "bad_enum"
#: A survey score not on its scale, or a scale its survey kind does not offer.
BAD_SCALE = "bad_scale"
#: `ts` is not an RFC 3339 date-time, or names an impossible or out-of-range instant.
BAD_TIMESTAMP = "bad_timestamp"
#: `ts` is a date-time without offset: its instant is unknowable.
NAIVE_TIMESTAMP = "naive_timestamp"
#: A label or identifier string is empty or too long.
BAD_LENGTH = "bad_length"

REASON_CODES: tuple[str, ...] = (
    TOO_LARGE,
    NOT_UTF8,
    NOT_JSON,
    NOT_OBJECT,
    UNKNOWN_TYPE,
    MISSING_FIELD,
    WRONG_TYPE,
    BAD_ENUM,
    BAD_SCALE,
    BAD_TIMESTAMP,
    NAIVE_TIMESTAMP,
    BAD_LENGTH,
)

DEFAULT_MAX_BYTES = 65536
LABEL_MAX = 64
ID_MAX = 128


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused: `code` for counters, `message` for humans."""

    code: str
    message: str


# ---------------------------------------------------------------------------
# Timestamps

_TS_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})([Tt ])([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MIN_TS = -62135596800000  # 0001-01-01T00:00:00.000Z
MAX_TS = 253402300799999  # 9999-12-31T23:59:59.999Z


#: "YYYY-MM-DDTHH:MM" -> epoch ms of that UTC minute, for prefixes the full
#: parser accepted in the shape `format_ts` writes (`...:SS.mmmZ`). Events come
#: in bursts of nearby times, so most timestamps hit a minute seen before and
#: skip the regex and the calendar arithmetic: the whole parse is then a dict
#: lookup and one `int` of five digits. Bounded (cleared when full), so a
#: backfill over years costs one full parse per minute, not memory.
_MINUTES: dict[str, int] = {}
_MINUTES_MAX = 8192


def parse_ts(text: str) -> int | Rejection:
    """RFC 3339 date-time to epoch milliseconds, or the reason it is refused."""
    if len(text) == 24 and text[23] == "Z" and text[19] == "." and text[16] == ":":
        base = _MINUTES.get(text[:16])
        if base is not None:
            digits = text[17:19] + text[20:23]  # SS and mmm: SSmmm milliseconds
            if digits.isascii() and digits.isdigit():
                ms = int(digits)
                if ms < 60000:  # second 60 (leap) takes the full path
                    return base + ms
    return _parse_ts_full(text)


def _parse_ts_full(text: str) -> int | Rejection:
    """`parse_ts` by the grammar; remembers the minute of a `format_ts`-shaped stamp."""
    m = _TS_RE.fullmatch(text)
    if m is None:
        return Rejection(BAD_TIMESTAMP, "field 'ts' is not an RFC 3339 date-time")
    year, month, day, sep, hh, mi, ss, frac, offset = m.groups()
    if sep == " ":
        return Rejection(BAD_TIMESTAMP, "field 'ts' must separate date and time with 'T'")
    h, mnt, s = int(hh), int(mi), int(ss)
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return Rejection(BAD_TIMESTAMP, "field 'ts' names a day that does not exist")
    if h > 23 or mnt > 59 or s > 60:
        return Rejection(BAD_TIMESTAMP, "field 'ts' has a time of day out of range")
    if offset is None:
        return Rejection(NAIVE_TIMESTAMP, "field 'ts' has no UTC offset (add 'Z' or '+hh:mm')")
    ms = (((days * 24 + h) * 60 + mnt) * 60 + s) * 1000
    if frac is not None:
        ms += int(frac[:3].ljust(3, "0"))
    if offset not in ("Z", "z"):
        oh, om = int(offset[1:3]), int(offset[4:6])
        if oh > 23 or om > 59:
            return Rejection(BAD_TIMESTAMP, "field 'ts' has an offset out of range")
        delta = (oh * 60 + om) * 60000
        ms = ms - delta if offset[0] == "+" else ms + delta
    if ms < MIN_TS or ms > MAX_TS:
        return Rejection(BAD_TIMESTAMP, "field 'ts' is outside years 0001..9999 UTC")
    if offset == "Z" and sep == "T" and frac is not None and len(frac) == 3:
        if len(_MINUTES) >= _MINUTES_MAX:
            _MINUTES.clear()
        _MINUTES[text[:16]] = ms - s * 1000 - int(frac)
    return ms


def format_ts(ts_ms: int) -> str:
    """Epoch ms as `YYYY-MM-DDTHH:MM:SS.mmmZ`, exact (no float on the way)."""
    dt = _EPOCH + timedelta(milliseconds=ts_ms)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{ts_ms % 1000:03d}Z"
    )


# ---------------------------------------------------------------------------
# Field checks: each returns the converted value or a Rejection.

_Check = Callable[[str, object], object]


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _wrong_type(name: str, expected: str, value: object) -> Rejection:
    return Rejection(WRONG_TYPE, f"field {name!r} must be {expected} (got {_json_type(value)})")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _string(max_len: int) -> _Check:
    def check(name: str, value: object) -> object:
        if type(value) is not str:
            return _wrong_type(name, "a string", value)
        n = len(value)
        if n == 0 or n > max_len:
            return Rejection(BAD_LENGTH, f"field {name!r} must be 1..{max_len} chars (got {n})")
        if not value.isascii() and not _encodable(value):
            return Rejection(NOT_UTF8, f"field {name!r} holds a lone surrogate escape")
        return value

    return check


def _enum(cls: type[StrEnum]) -> _Check:
    members = {m.value: m for m in cls}
    allowed = ", ".join(members)

    def check(name: str, value: object) -> object:
        if type(value) is not str:
            return _wrong_type(name, "a string", value)
        member = members.get(value)
        if member is None:
            return Rejection(BAD_ENUM, f"field {name!r} must be one of {allowed}")
        return member

    return check


def _bool(name: str, value: object) -> object:
    return value if type(value) is bool else _wrong_type(name, "a boolean", value)


def _int(name: str, value: object) -> object:
    return value if type(value) is int else _wrong_type(name, "an integer", value)


_ID = _string(ID_MAX)
_LABEL = _string(LABEL_MAX)

#: Per type: the class and its fields beyond event_id/type/ts, as
#: (name, check, required). Order fixes which reason wins when several apply.
#: The optional fields both survey events carry, in the dataclasses' order.
_SURVEY_CONTEXT: tuple[tuple[str, _Check, bool], ...] = (
    ("ticket_id", _ID, False),
    ("customer_id", _ID, False),
    ("team", _LABEL, False),
    ("agent_id", _LABEL, False),
    ("channel", _LABEL, False),
    ("touchpoint", _LABEL, False),
    ("scale", _enum(Scale), False),
)
_SCHEMAS: dict[str, tuple[type, tuple[tuple[str, _Check, bool], ...]]] = {
    "ticket.created": (
        TicketCreated,
        (
            ("ticket_id", _ID, True),
            ("team", _LABEL, True),
            ("channel", _LABEL, True),
            ("priority", _enum(Priority), False),
            ("customer_id", _ID, False),
            ("created_by", _enum(Creator), False),
            ("bot", _bool, False),
        ),
    ),
    "ticket.assigned": (
        TicketAssigned,
        (
            ("ticket_id", _ID, True),
            ("agent_id", _LABEL, True),
            ("team", _LABEL, False),
        ),
    ),
    "ticket.handoff": (
        TicketHandoff,
        (("ticket_id", _ID, True),),
    ),
    "ticket.message": (
        TicketMessage,
        (
            ("ticket_id", _ID, True),
            ("author", _enum(Author), True),
            ("agent_id", _LABEL, False),
            ("public", _bool, False),
        ),
    ),
    "ticket.status_changed": (
        StatusChanged,
        (
            ("ticket_id", _ID, True),
            ("status", _enum(Status), True),
        ),
    ),
    "survey.response": (
        SurveyResponse,
        (("survey", _enum(SurveyKind), True), ("score", _int, True), *_SURVEY_CONTEXT),
    ),
    "survey.offered": (SurveyOffered, (("survey", _enum(SurveyKind), True), *_SURVEY_CONTEXT)),
}
assert set(_SCHEMAS) == set(TYPE_NAMES.values())
_TYPE_LIST = ", ".join(_SCHEMAS)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


#: One decoder for all calls: `json.loads` with a hook builds a new one each time.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _absent(obj: dict[str, object], name: str) -> Rejection:
    """Why a required field read as None is refused: absent, or an explicit null."""
    if name in obj:
        return _wrong_type(name, "present and not null", None)
    return Rejection(MISSING_FIELD, f"field {name!r} is required")


def decode(value: bytes | None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Event | Rejection:
    """Validate one message value against contract v1.1 (docs/contract.md).

    `None` is accepted (a Kafka tombstone) and rejected as `not_json`, so a
    stray null-value record cannot crash the caller.

    Two paths, one result. The fast one (`_decode_fast`) lets msgspec parse
    and type-check the bytes straight into per-type structs in C; it accepts
    only what the checked path below accepts, and builds the same event.
    Whatever it does not accept, for whatever reason, goes through the checked
    path, which alone writes rejections: every reason code and message stays
    that path's (tests/unit/test_decode_fast.py compares the two).
    """
    if value is None:
        return Rejection(NOT_JSON, "null message value (tombstone)")
    if len(value) > max_bytes:
        return Rejection(TOO_LARGE, f"message of {len(value)} bytes exceeds {max_bytes}")
    event = _decode_fast(value)
    if event is not None:
        return event
    return _decode_checked(value)


def _decode_checked(value: bytes) -> Event | Rejection:
    """The reference decoder: the standard library's parser, then each check in order."""
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(NOT_UTF8, f"invalid UTF-8 at byte {exc.start}")
    try:
        obj = _JSON.decode(text)
    except json.JSONDecodeError as exc:
        return Rejection(NOT_JSON, f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    except ValueError:
        return Rejection(NOT_JSON, "a number is too large or not a JSON number")
    except RecursionError:
        return Rejection(NOT_JSON, "nesting too deep")
    if type(obj) is not dict:
        return Rejection(NOT_OBJECT, f"message must be a JSON object (got {_json_type(obj)})")
    return _decode_object(obj)


def _decode_object(obj: dict[str, object]) -> Event | Rejection:
    type_name = obj.get("type")
    if type_name is None:
        return _absent(obj, "type")
    if type(type_name) is not str:
        return _wrong_type("type", "a string", type_name)
    schema = _SCHEMAS.get(type_name)
    if schema is None:
        return Rejection(
            UNKNOWN_TYPE, f"field 'type' must be one of {_TYPE_LIST} ({CONTRACT_DOC})"
        )
    cls, specs = schema

    event_id = obj.get("event_id")
    if event_id is None:
        return _absent(obj, "event_id")
    event_id = _ID("event_id", event_id)
    if type(event_id) is Rejection:
        return event_id
    ts_raw = obj.get("ts")
    if ts_raw is None:
        return _absent(obj, "ts")
    if type(ts_raw) is not str:
        return _wrong_type("ts", "an RFC 3339 string", ts_raw)
    ts = parse_ts(ts_raw)
    if isinstance(ts, Rejection):
        return ts

    kwargs: dict[str, object] = {"event_id": event_id, "ts": ts}
    for name, check, required in specs:
        value = obj.get(name)
        if value is None:  # absent or null: optional means absent, required is refused
            if required:
                return _absent(obj, name)
            continue
        checked = check(name, value)
        if type(checked) is Rejection:
            return checked
        kwargs[name] = checked

    if cls is SurveyResponse or cls is SurveyOffered:
        rejection = _check_scale(kwargs)
        if rejection is not None:
            return rejection
    event: Event = cls(**kwargs)
    return event


# ---------------------------------------------------------------------------
# The fast path: msgspec structs mirroring _SCHEMAS.
#
# Each struct accepts a subset of what _SCHEMAS accepts (msgspec is at least as
# strict: no bool for an int, no float for an int, no lone surrogates even in
# unknown fields, an object only, tags must agree when `type` is repeated), and
# `_event` returns None for anything the checked path would still refuse (a bad
# `ts`, a score off its scale). Three differences of the parsers are kept out
# before msgspec sees the bytes: invalid UTF-8 inside an unknown field (msgspec
# skips it unread; `_decode_fast` checks the whole value), nesting (the
# standard parser's recursion limit refuses deep unknown fields; values with
# more than `_FAST_MAX_BRACKETS` brackets take the checked path) and integers
# beyond Python's digit limit (impossible in `_FAST_MAX_BYTES`).

_FAST_MAX_BYTES = 4096
_FAST_MAX_BRACKETS = 32

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX)]
_Label = Annotated[str, msgspec.Meta(min_length=1, max_length=LABEL_MAX)]


class _Wire(msgspec.Struct, tag_field="type", gc=False):
    """Common part of the wire structs; `type` is the tag, one struct per event type."""

    event_id: _Id
    ts: str

    def _event(self) -> Event | None:
        raise NotImplementedError


class _Created(_Wire, tag="ticket.created", gc=False):
    ticket_id: _Id
    team: _Label
    channel: _Label
    priority: Priority | None = None
    customer_id: _Id | None = None
    created_by: Creator | None = None
    bot: bool | None = None

    def _event(self) -> Event | None:
        ts = parse_ts(self.ts)
        if type(ts) is not int:
            return None
        return TicketCreated(
            self.event_id, ts, self.ticket_id, self.team, self.channel,
            self.priority or Priority.NORMAL, self.customer_id,
            self.created_by or Creator.CUSTOMER, self.bot or False,
        )  # fmt: skip


class _Assigned(_Wire, tag="ticket.assigned", gc=False):
    ticket_id: _Id
    agent_id: _Label
    team: _Label | None = None

    def _event(self) -> Event | None:
        ts = parse_ts(self.ts)
        if type(ts) is not int:
            return None
        return TicketAssigned(self.event_id, ts, self.ticket_id, self.agent_id, self.team)


class _Handoff(_Wire, tag="ticket.handoff", gc=False):
    ticket_id: _Id

    def _event(self) -> Event | None:
        ts = parse_ts(self.ts)
        if type(ts) is not int:
            return None
        return TicketHandoff(self.event_id, ts, self.ticket_id)


class _Message(_Wire, tag="ticket.message", gc=False):
    ticket_id: _Id
    author: Author
    agent_id: _Label | None = None
    public: bool | None = None

    def _event(self) -> Event | None:
        ts = parse_ts(self.ts)
        if type(ts) is not int:
            return None
        public = True if self.public is None else self.public
        return TicketMessage(self.event_id, ts, self.ticket_id, self.author, self.agent_id, public)


class _Status(_Wire, tag="ticket.status_changed", gc=False):
    ticket_id: _Id
    status: Status

    def _event(self) -> Event | None:
        ts = parse_ts(self.ts)
        if type(ts) is not int:
            return None
        return StatusChanged(self.event_id, ts, self.ticket_id, self.status)


class _Survey(_Wire, gc=False):
    """The fields both survey events share. `score` lives in `_Response` and is optional
    there only because msgspec wants required fields before inherited optional ones: a
    response without a score goes to the checked path like any other refusal."""

    survey: SurveyKind
    ticket_id: _Id | None = None
    customer_id: _Id | None = None
    team: _Label | None = None
    agent_id: _Label | None = None
    channel: _Label | None = None
    touchpoint: _Label | None = None
    scale: Scale | None = None

    def _scores(self) -> tuple[int, ...] | None:
        """The scores the survey's scale allows; None for a scale the kind has not."""
        return SCALE_SCORES[self.survey].get(self.scale or DEFAULT_SCALE[self.survey])


class _Response(_Survey, tag="survey.response", gc=False):
    score: int | None = None

    def _event(self) -> Event | None:
        ts = parse_ts(self.ts)
        if type(ts) is not int or self.score is None:
            return None
        scores = self._scores()
        if scores is None or self.score not in scores:
            return None
        return SurveyResponse(
            self.event_id, ts, self.survey, self.score, self.ticket_id, self.customer_id,
            self.team, self.agent_id, self.channel, self.touchpoint, self.scale,
        )  # fmt: skip


class _Offered(_Survey, tag="survey.offered", gc=False):
    def _event(self) -> Event | None:
        ts = parse_ts(self.ts)
        if type(ts) is not int or self._scores() is None:
            return None
        return SurveyOffered(
            self.event_id, ts, self.survey, self.ticket_id, self.customer_id,
            self.team, self.agent_id, self.channel, self.touchpoint, self.scale,
        )  # fmt: skip


_WIRE = (_Created, _Assigned, _Handoff, _Message, _Status, _Response, _Offered)
assert {w.__struct_config__.tag for w in _WIRE} == set(_SCHEMAS)
_WIRE_DECODE = msgspec.json.Decoder(
    _Created | _Assigned | _Handoff | _Message | _Status | _Response | _Offered
).decode


def _decode_fast(value: bytes) -> Event | None:
    """The event, when msgspec's typed parse accepts `value`; None: ask `_decode_checked`."""
    if len(value) > _FAST_MAX_BYTES:
        return None
    if not value.isascii():
        try:
            value.decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            return None
    if value.count(b"{") + value.count(b"[") > _FAST_MAX_BRACKETS:
        return None
    try:
        wire = _WIRE_DECODE(value)
    except (msgspec.DecodeError, RecursionError, TypeError):
        return None
    return wire._event()  # type: ignore[no-any-return]


def _scale_text(scale: Scale, scores: tuple[int, ...]) -> str:
    if scale is Scale.THREE_POINT or scale is Scale.TWO_POINT:
        return f"{scale.value} ({', '.join(map(str, scores))})"
    return f"{scores[0]}..{scores[-1]}"


def _check_scale(kwargs: dict[str, object]) -> Rejection | None:
    """The scale belongs to the survey kind, and the score (if any) is on it."""
    kind = kwargs["survey"]
    assert isinstance(kind, SurveyKind)
    offered = SCALE_SCORES[kind]
    scale = kwargs.get("scale")
    if scale is None:
        scale = DEFAULT_SCALE[kind]
    assert isinstance(scale, Scale)
    scores = offered.get(scale)
    if scores is None:
        return Rejection(
            BAD_SCALE,
            f"field 'scale' must be one of {', '.join(offered)} for {kind.value} "
            f"({CONTRACT_DOC})",
        )
    score = kwargs.get("score")
    if score is None:  # an offer
        return None
    assert isinstance(score, int)
    if score not in scores:
        shown = str(score) if -(10**6) < score < 10**6 else "a huge number"
        return Rejection(
            BAD_SCALE,
            f"field 'score' out of scale {_scale_text(scale, scores)} for {kind.value} "
            f"(got {shown})",
        )
    return None


# ---------------------------------------------------------------------------
# Encoding (simulator, tests, tools)

_FIELD_NAMES: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls) if f.name not in ("event_id", "ts"))
    for cls in TYPE_NAMES
}


def encode(event: Event) -> dict[str, object]:
    """Contract JSON object of an event: fixed key order, absent optionals omitted."""
    cls = type(event)
    out: dict[str, object] = {
        "event_id": event.event_id,
        "type": TYPE_NAMES[cls],
        "ts": format_ts(event.ts),
    }
    for name in _FIELD_NAMES[cls]:
        value = getattr(event, name)
        if value is None or (name == "bot" and value is False):
            continue  # absent optionals; `bot` only when set: 1.0 events encode as before
        out[name] = value.value if isinstance(value, StrEnum) else value
    return out


def encode_bytes(event: Event) -> bytes:
    """Compact UTF-8 JSON; never contains a raw newline, so it is one JSONL line."""
    return dumps(encode(event))


def dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------------------
# Routing of raw messages (replay, simulator)


def route_of(value: bytes) -> tuple[str, bytes | None]:
    """Topic role and Kafka key of any message, best effort.

    Valid events follow the contract (`role_of`, `key_of`). Malformed ones
    still need somewhere to go so the worker dead-letters them: a JSON object
    whose `type` starts with `survey.` goes to the surveys topic, anything
    else to the tickets topic; the key is `ticket_id`, else `event_id`, when
    either is a usable string, else none.
    """
    event = decode(value, max_bytes=len(value))
    if not isinstance(event, Rejection):
        return role_of(event), key_of(event).encode("utf-8")
    try:
        obj = _JSON.decode(value.decode("utf-8"))
    except (ValueError, RecursionError):
        return TICKETS, None
    if type(obj) is not dict:
        return TICKETS, None
    type_name = obj.get("type")
    role = SURVEYS if isinstance(type_name, str) and type_name.startswith("survey.") else TICKETS
    for name in ("ticket_id", "event_id"):
        candidate = obj.get(name)
        if isinstance(candidate, str) and candidate and _encodable(candidate):
            return role, candidate.encode("utf-8")
    return role, None
