"""The decoder's fast path (msgspec structs, cached minutes) against its checked path.

`decode` tries `_decode_fast` first and falls back to `_decode_checked`, the
reference that writes every rejection. The fast path may decline anything, but
what it accepts must be exactly what the checked path accepts, as the same
event: these tests feed both the same bytes and compare. They would fail if
the fast path accepted a message the contract refuses (the reason would be
lost: no dead letter) or built a different event from it.
"""

from __future__ import annotations

import json
import random

import pytest
from cxpulse.core import decode as d
from cxpulse.core.decode import Rejection, decode, encode_bytes, format_ts
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_decode import BASES, events, json_values


def same_as_checked(raw: bytes) -> object:
    """The fast path's answer, asserted to agree with the checked path; returns decode's."""
    too_large = len(raw) > d.DEFAULT_MAX_BYTES  # decided before either path
    checked = decode(raw) if too_large else d._decode_checked(raw)
    fast = None if too_large else d._decode_fast(raw)
    if fast is not None:
        assert not isinstance(checked, Rejection), (raw, checked)
        assert fast == checked and type(fast) is type(checked), raw
    result = decode(raw)
    assert result == checked
    return result


def test_simulated_stream_takes_the_fast_path_and_agrees() -> None:
    """Every message of a dirty simulated day (1.1 shapes, 2 % malformed of every kind)."""
    cfg = SimConfig(seed=7, tickets_per_day=600, malformed=0.02, duplicates=0.03,
                    disorder_s=60, contract="1.1")  # fmt: skip
    values = [r.value for r in generate(cfg)]
    fast = 0
    for raw in values:
        same_as_checked(raw)
        fast += len(raw) <= d.DEFAULT_MAX_BYTES and d._decode_fast(raw) is not None
    valid = sum(not isinstance(decode(v), Rejection) for v in values)
    assert valid > 1000
    assert fast == valid  # the simulator's shapes all take the fast path


@given(events)
@settings(max_examples=300)
def test_any_valid_event_agrees(event: object) -> None:
    assert same_as_checked(encode_bytes(event)) == event  # type: ignore[arg-type]


def _with(type_name: str, **changes: object) -> bytes:
    obj = dict(BASES[type_name])
    obj.update(changes)
    return json.dumps(obj).encode()


CREATED = _with("ticket.created", ts="2026-11-22T09:00:00.125Z")

TRICKY: list[bytes] = [
    # the same key twice: the last one wins in both parsers
    CREATED[:-1] + b', "priority": "low"}',
    CREATED[:-1] + b', "priority": null}',
    CREATED[:-1] + b', "team": ""}',
    # `type` twice, naming two types
    CREATED[:-1] + b', "type": "ticket.handoff"}',
    b'{"type": "ticket.handoff", "event_id": "e", "ts": "2026-11-22T09:00:00Z", '
    b'"ticket_id": "T", "type": "ticket.status_changed", "status": "open"}',
    # escaped keys and values
    CREATED.replace(b'"priority"', b'"prio\\u0072ity"'),
    CREATED.replace(b'"type"', b'"typ\\u0065"'),
    CREATED.replace(b'"high"', b'"\\u0068igh"'),
    CREATED.replace(b'"billing"', b'"\\ud83d\\ude00"'),
    CREATED.replace(b'"billing"', b'"\\ud800"'),
    CREATED.replace(b'"billing"', b'"\\u0000"'),
    # unknown fields the parsers might judge differently
    CREATED[:-1] + b', "x": "\\ud800"}',
    CREATED[:-1] + b', "x": "\xff"}',
    CREATED[:-1] + b', "x": "\xed\xa0\x80"}',
    CREATED[:-1] + b', "x": 1e999}',
    CREATED[:-1] + b', "x": -1e999}',
    CREATED[:-1] + b', "x": NaN}',
    CREATED[:-1] + b', "x": Infinity}',
    CREATED[:-1] + b', "x": ' + b"9" * 3000 + b"}",
    CREATED[:-1] + b', "x": ' + b"9" * 4400 + b"}",
    CREATED[:-1] + b', "x": ' + b"[" * 31 + b"]" * 31 + b"}",
    CREATED[:-1] + b', "x": ' + b"[" * 40 + b"]" * 40 + b"}",
    CREATED[:-1] + b', "x": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    CREATED[:-1] + b', "x": {"a": [1, 2, {"b": null}]}}',
    CREATED[:-1] + b', "x": 01}',
    CREATED[:-1] + b', "x": 1.}',
    CREATED[:-1] + b', "x": [1,]}',
    CREATED[:-1] + b', "x": "a\tb"}',
    CREATED[:-1] + b",}",
    # whitespace and what surrounds the object
    b" \t\r\n" + CREATED + b" \t\r\n",
    b"\x0c" + CREATED,
    CREATED + b"\x00",
    b"\xef\xbb\xbf" + CREATED,
    CREATED + CREATED,
    b"[" + CREATED + b"]",
    # numbers where the contract wants an integer, booleans where it wants one
    _with("survey.response", score=5.0),
    _with("survey.response", score=-0),
    _with("survey.response").replace(b'"score": 5', b'"score": -0'),
    _with("survey.response").replace(b'"score": 5', b'"score": 5e0'),
    _with("survey.response").replace(b'"score": 5', b'"score": 0005'),
    _with("survey.response", score=10**30),
    _with("survey.response").replace(b'"score": 5', b'"score": ' + b"9" * 4400),
    _with("survey.response", score=True),
    _with("survey.response", survey="nps", score=10, scale="eleven_point"),
    _with("survey.response", survey="nps", score=10, scale="five_point"),
    _with("survey.response", survey="csat", score=103, scale="three_point"),
    _with("survey.response", survey="csat", score=100, scale="two_point"),
    _with("ticket.message", public=1),
    _with("ticket.message", public=None),
    _with("ticket.message", public=False),
    _with("ticket.created", bot=None),
    _with("ticket.created", bot=0),
    # lengths in characters, not bytes
    _with("ticket.created", team="\U0001f600" * 64),
    _with("ticket.created", team="\U0001f600" * 65),
    _with("ticket.created", team="e\u0301" * 32),
    _with("ticket.created", team="e\u0301" * 33),
    # null, absent and wrongly typed required fields, unknown types
    _with("ticket.created", ticket_id=None),
    _with("ticket.created", type=None),
    _with("ticket.created", type="ticket.merged"),
    _with("ticket.created", type=1),
    _with("ticket.created", event_id=7),
    _with("ticket.created", ts=None),
    _with("ticket.created", ts=1795338000000),
]
TIMESTAMPS = [
    "2026-11-22T09:00:00Z", "2026-11-22T09:00:00.125z", "2026-11-22t09:00:00.125Z",
    "2026-11-22T09:00:00.1Z", "2026-11-22T09:00:00.1250Z", "2026-11-22T12:00:00.125+03:00",
    "2016-12-31T23:59:60.500Z", "2026-11-22T09:00:60.125Z", "2026-11-22T09:00:61.125Z",
    "2026-11-22T09:00:0\u0661.125Z", "2026-11-22T09:00:+1.125Z", "2026-11-22T09:00:1_.125Z",
    "2026-11-22T09:00: 1.125Z", "2026-11-22T09:00:01,125Z", "2026-11-22T09:00:01.12_Z",
    "2026-11-22T09:00:01.\u00b2\u00b2\u00b2Z", "2026-11-22T09:00X01.125Z",
    "2026-11-22 09:00:01.125Z",
    "2026-02-29T09:00:01.125Z", "2026-11-22T09:00:01.125", "9999-12-31T23:59:59.999Z",
    "0001-01-01T00:00:00.000Z",
]  # fmt: skip


@pytest.mark.parametrize("raw", TRICKY)
def test_tricky_messages_agree(raw: bytes) -> None:
    same_as_checked(raw)


@pytest.mark.parametrize("ts", TIMESTAMPS)
def test_tricky_timestamps_agree_warm_and_cold(ts: str) -> None:
    """Each stamp alone, and after its minute is cached by a valid stamp of that minute."""
    raw = _with("ticket.created", ts=ts)
    d._MINUTES.clear()
    cold = same_as_checked(raw)
    d.parse_ts(ts[:16] + ":00.000Z")  # warms the minute when the prefix is one
    assert same_as_checked(raw) == cold
    assert d.parse_ts(ts) == d._parse_ts_full(ts)


def test_warm_fast_path_is_used() -> None:
    """A stamp of a cached minute does not reach the regex (or the cache is dead code)."""
    d._MINUTES.clear()
    assert d.parse_ts("2026-11-22T09:00:00.000Z") == 1795338000000
    assert "2026-11-22T09:00" in d._MINUTES
    d._MINUTES["2026-11-22T09:00"] = 5  # a planted base shows which path answered
    assert d.parse_ts("2026-11-22T09:00:07.250Z") == 7255
    d._MINUTES.clear()
    assert d.parse_ts("2026-11-22T09:00:07.250Z") == 1795338007250


def test_minute_cache_is_bounded() -> None:
    d._MINUTES.clear()
    for minute in range(d._MINUTES_MAX + 10):
        ts = 1795338000000 + minute * 60_000
        assert d.parse_ts(format_ts(ts)) == ts
    assert 0 < len(d._MINUTES) <= d._MINUTES_MAX


@given(st.integers(d.MIN_TS, d.MAX_TS), st.text(alphabet="0123456789.:Zz+-_ \u0661", max_size=9))
@settings(max_examples=500)
def test_any_tail_on_a_cached_minute_agrees(ts: int, tail: str) -> None:
    text = format_ts(ts)
    d.parse_ts(text)  # caches its minute
    mutated = text[:16] + tail
    assert d.parse_ts(mutated) == d._parse_ts_full(mutated)


_ALPHABET = b'{}[]",:\\ 0123456789-.eEtrufalsnNIZT\x00\x7f\xc3\xa9\xff'


@given(
    st.sampled_from([*BASES, "survey.offered"]),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 3), st.binary(max_size=3)),
             max_size=4),
    st.randoms(use_true_random=False),
)  # fmt: skip
@settings(max_examples=1500)
def test_mutated_bytes_agree(type_name: str, edits: list[tuple[int, int, bytes]],
                             rng: random.Random) -> None:  # fmt: skip
    """Byte-level edits of a valid message (most break it; some keep it valid)."""
    obj = dict(BASES.get(type_name, {"event_id": "e", "type": type_name,
                                     "ts": "2026-11-22T09:00:00.125Z", "survey": "csat"}))
    raw = bytearray(json.dumps(obj, separators=rng.choice([(",", ":"), (", ", ": ")])).encode())
    for pos, cut, insert in edits:
        pos %= len(raw) + 1
        insert = bytes(_ALPHABET[b % len(_ALPHABET)] for b in insert)
        raw[pos : pos + cut] = insert
    same_as_checked(bytes(raw))


@given(
    st.sampled_from([*BASES, "survey.offered"]),
    st.dictionaries(
        st.sampled_from(sorted({f for base in BASES.values() for f in base} | {"scale", "bot",
                                "x"})),
        json_values,
        max_size=5,
    ),
)  # fmt: skip
@settings(max_examples=1500)
def test_fuzzed_fields_agree(type_name: str, changes: dict[str, object]) -> None:
    obj = dict(BASES.get(type_name, {"event_id": "e", "type": type_name,
                                     "ts": "2026-11-22T09:00:00.125Z", "survey": "csat"}))
    obj.update(changes)
    same_as_checked(json.dumps(obj).encode())
