"""The decoder on contract 1.1 (docs/contract.md): new fields and types, scales,
and 1.0 messages that stay valid and mean the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cxpulse.core import decode as d
from cxpulse.core.decode import Rejection, decode, encode, encode_bytes, route_of
from cxpulse.core.events import (
    SURVEYS,
    TICKETS,
    Scale,
    SurveyKind,
    SurveyOffered,
    SurveyResponse,
    TicketCreated,
    TicketHandoff,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_core_contract_v11 import DOC_EXAMPLE

DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
TS = "2026-11-22T10:00:00Z"


def raw(**fields: object) -> bytes:
    return json.dumps({"event_id": "e-1", "ts": TS, **fields}).encode()


def code(value: bytes) -> str | None:
    result = decode(value)
    return result.code if isinstance(result, Rejection) else None


def test_bot_flag() -> None:
    base = {"type": "ticket.created", "ticket_id": "T", "team": "a", "channel": "chat"}
    assert decode(raw(**base, bot=True)) == TicketCreated("e-1", 1795341600000, "T", "a", "chat",
                                                          bot=True)  # fmt: skip
    plain = decode(raw(**base))
    assert isinstance(plain, TicketCreated) and plain.bot is False
    assert decode(raw(**base, bot=None)) == plain  # null: absent
    assert code(raw(**base, bot="yes")) == d.WRONG_TYPE
    assert code(raw(**base, bot=1)) == d.WRONG_TYPE
    assert "bot" not in encode(plain)  # 1.0 events encode as they did
    assert encode(decode(raw(**base, bot=True)))["bot"] is True  # type: ignore[arg-type]


def test_handoff() -> None:
    assert decode(raw(type="ticket.handoff", ticket_id="T")) == TicketHandoff(
        "e-1", 1795341600000, "T")
    assert code(raw(type="ticket.handoff")) == d.MISSING_FIELD
    assert code(raw(type="ticket.handoff", ticket_id="")) == d.BAD_LENGTH
    assert route_of(raw(type="ticket.handoff", ticket_id="T")) == (TICKETS, b"T")


SCALE_CASES = [
    ("csat", None, [1, 5], [0, 6, 103]),
    ("csat", "five_point", [1, 5], [0, 6]),
    ("csat", "seven_point", [1, 6, 7], [0, 8]),
    ("csat", "three_point", [103, 100, -103], [1, 3, 101, 0]),
    ("csat", "two_point", [0, 1], [2, -1, 5]),
    ("nps", "eleven_point", [0, 10], [11]),
    ("ces", "seven_point", [1, 7], [0, 8]),
]


@pytest.mark.parametrize(("survey", "scale", "good", "bad"), SCALE_CASES)
def test_scores_on_each_scale(survey: str, scale: str | None, good: list[int],
                              bad: list[int]) -> None:  # fmt: skip
    extra = {} if scale is None else {"scale": scale}
    for score in good:
        e = decode(raw(type="survey.response", survey=survey, score=score, **extra))
        assert isinstance(e, SurveyResponse) and e.score == score
        assert e.scale == (None if scale is None else Scale(scale))
        assert decode(encode_bytes(e)) == e
    for score in bad:
        result = decode(raw(type="survey.response", survey=survey, score=score, **extra))
        assert isinstance(result, Rejection) and result.code == d.BAD_SCALE
        assert survey in result.message


@pytest.mark.parametrize(("survey", "scale"), [("nps", "two_point"), ("nps", "five_point"),
                                               ("ces", "three_point"), ("csat", "eleven_point")])
def test_a_scale_the_survey_does_not_offer(survey: str, scale: str) -> None:
    for fields in ({"type": "survey.response", "score": 1}, {"type": "survey.offered"}):
        result = decode(raw(survey=survey, scale=scale, **fields))
        assert isinstance(result, Rejection) and result.code == d.BAD_SCALE
        assert "docs/contract.md" in result.message


def test_unknown_scale_is_bad_enum() -> None:
    assert code(raw(type="survey.response", survey="csat", score=1, scale="10pt")) == d.BAD_ENUM
    assert code(raw(type="survey.response", survey="csat", score=1, scale=5)) == d.WRONG_TYPE


def test_survey_offered() -> None:
    e = decode(raw(type="survey.offered", survey="csat", ticket_id="T", scale="two_point"))
    assert e == SurveyOffered("e-1", 1795341600000, SurveyKind.CSAT, ticket_id="T",
                              scale=Scale.TWO_POINT)  # fmt: skip
    assert decode(encode_bytes(e)) == e  # type: ignore[arg-type]
    assert code(raw(type="survey.offered")) == d.MISSING_FIELD
    assert code(raw(type="survey.offered", survey="poll")) == d.BAD_ENUM
    # a score on an offer is an unknown field: ignored, like any other
    assert isinstance(decode(raw(type="survey.offered", survey="nps", score=99)), SurveyOffered)
    assert route_of(raw(type="survey.offered", survey="csat", ticket_id="T")) == (SURVEYS, b"T")
    assert route_of(raw(type="survey.offered", survey="csat")) == (SURVEYS, b"e-1")


def test_unknown_type_names_the_contract() -> None:
    result = decode(raw(type="ticket.merged", ticket_id="T"))
    assert isinstance(result, Rejection) and result.code == d.UNKNOWN_TYPE
    assert "docs/contract.md" in result.message and "ticket.handoff" in result.message


def _doc_examples() -> list[bytes]:
    return [line.encode() for line in re.findall(r"^\{.*\}$", DOC.read_text(), re.M)]


def test_every_example_of_the_document_decodes() -> None:
    examples = _doc_examples()
    assert len(examples) == 12
    for line in examples:
        e = decode(line)
        assert not isinstance(e, Rejection), line
        assert decode(encode_bytes(e)) == e
    # the 1.1 example the core tests compute by hand is the document's, verbatim
    assert [x.encode() for x in DOC_EXAMPLE.strip().splitlines()] == examples[5:]


def test_the_document_lists_every_reason_code() -> None:
    text = DOC.read_text()
    for reason in d.REASON_CODES:
        assert f"| `{reason}` |" in text, reason


@given(st.sampled_from(["ticket.created", "ticket.assigned", "ticket.message",
                        "ticket.status_changed", "survey.response"]), st.data())
def test_1_0_messages_mean_what_they_meant(type_name: str, data: st.DataObject) -> None:
    """A 1.0 message (with the fields `encode` always writes) decodes to the 1.0
    defaults of every 1.1 field and encodes back to the same JSON object: no
    1.1 key appears, so 1.0 canonical bytes (duplicates) are unchanged."""
    obj: dict[str, object] = {
        "ticket.created": {"ticket_id": "T", "team": "a", "channel": "c",
                           "priority": data.draw(st.sampled_from(["low", "urgent"])),
                           "created_by": "customer"},
        "ticket.assigned": {"ticket_id": "T", "agent_id": "x"},
        "ticket.message": {"ticket_id": "T", "author": data.draw(
            st.sampled_from(["agent", "bot", "customer"])), "public": True},
        "ticket.status_changed": {"ticket_id": "T", "status": "solved"},
        "survey.response": {"survey": "csat", "score": data.draw(st.integers(1, 5))},
    }[type_name]  # type: ignore[assignment]
    line = {"event_id": "e-1", "type": type_name, "ts": "2026-11-22T10:00:00.000Z", **obj}
    e = decode(json.dumps(line).encode())
    assert not isinstance(e, Rejection)
    assert getattr(e, "bot", False) is False and getattr(e, "scale", None) is None
    assert encode(e) == line
