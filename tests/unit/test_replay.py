"""Replay planning: every line becomes one message, paced by event time when asked."""

from __future__ import annotations

from pathlib import Path

from cxpulse.core.decode import encode_bytes
from cxpulse.core.events import SURVEYS, TICKETS, Status, StatusChanged, SurveyKind, SurveyResponse
from cxpulse.importer.replay import plan, read_lines

TOPICS = {TICKETS: "t", SURVEYS: "s"}
T0 = 1_795_338_000_000


def _status(ts: int, ticket: str = "T-1") -> bytes:
    return encode_bytes(StatusChanged(f"e-{ts}", ts, ticket, Status.OPEN))


def test_read_lines_keeps_bytes_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"a":1}\n\n\xff\xfe raw\r\nlast-without-newline')
    assert list(read_lines(path)) == [b'{"a":1}', b"\xff\xfe raw\r", b"last-without-newline"]


def test_plan_routes_by_type_and_keys_by_contract() -> None:
    survey = SurveyResponse("e-s", T0, SurveyKind.NPS, 9, customer_id="c-1")
    values = [_status(T0), encode_bytes(survey), b"\xff", b'{"type":"survey.x","event_id":"e-9"}']
    out = list(plan(values, TOPICS, None))
    assert [(m.topic, m.key) for m in out] == [
        ("t", b"T-1"),
        ("s", b"e-s"),
        ("t", None),
        ("s", b"e-9"),
    ]
    assert [m.value for m in out] == values
    assert all(m.due is None for m in out)


def test_speed_paces_by_event_time_and_malformed_lines_keep_their_neighbours_time() -> None:
    values = [b"not json", _status(T0), _status(T0 + 60_000), b"[]", _status(T0 + 30_000)]
    dues = [m.due for m in plan(values, TOPICS, 60.0)]
    assert dues == [0.0, 0.0, 1.0, 1.0, 1.0]  # late event is sent at once, never rewinds
    dues = [m.due for m in plan(values, TOPICS, 6.0)]
    assert dues == [0.0, 0.0, 10.0, 10.0, 10.0]
