"""One message's fate, shared by both worker runtimes: every message moves
`consumed` and exactly one outcome counter, and rejects carry their bytes."""

from __future__ import annotations

import json

from cxpulse.core.config import CoreConfig
from cxpulse.core.deadletter import DeadLetter
from cxpulse.core.decode import encode
from cxpulse.core.engine import PartitionEngine
from cxpulse.core.events import Priority, SurveyKind, SurveyResponse, TicketCreated
from cxpulse.worker.shared import handle_message


def _bytes(event: object) -> bytes:
    return json.dumps(encode(event)).encode()  # type: ignore[arg-type]


def test_counters_add_up_and_rejects_keep_their_bytes() -> None:
    engine = PartitionEngine(CoreConfig(), 0)
    created = TicketCreated("e1", 1_700_000_000_000, "t1", "tech", "email", Priority.NORMAL, None)
    survey = SurveyResponse("e2", 1_700_000_000_500, SurveyKind.CSAT, 5, "t1", None, None,
                            None, None, None)  # fmt: skip
    counts: dict[str, int] = {}
    msgs = [
        ("tickets", _bytes(created)),  # applied
        ("tickets", _bytes(created)),  # duplicate
        ("tickets", b"{not json"),  # dead letter: not_json
        ("tickets", _bytes(survey)),  # dead letter: wrong topic
        ("surveys", _bytes(survey)),  # applied
    ]
    dead: list[DeadLetter] = []
    for offset, (role, value) in enumerate(msgs):
        record, ts = handle_message(
            engine, role, f"topic-{role}", 0, offset, b"t1", value, counts, 1_700_000_001_000
        )
        if record is not None:
            assert ts is None
            dead.append(record)
        else:
            assert ts is not None
    assert counts == {
        "consumed:tickets": 4,
        "applied:tickets": 1,
        "duplicate:tickets": 1,
        "deadletter:tickets:not_json": 1,
        "deadletter:tickets:wrong_topic": 1,
        "consumed:surveys": 1,
        "applied:surveys": 1,
    }
    assert [d.value for d in dead] == [b"{not json", _bytes(survey)]
    assert all(d.key == b"t1" for d in dead)
    headers = dict(dead[1].headers)
    assert headers["cxpulse.reason"] == b"wrong_topic"
    assert headers["cxpulse.source_offset"] == b"3"


def test_keyless_or_wrongly_keyed_events_are_dead_lettered_not_split() -> None:
    """The key rule: a valid event whose key is not its ticket_id (else event_id)
    is dead-lettered as `key_mismatch`, never applied (it may be on another
    partition than the rest of its ticket)."""
    engine = PartitionEngine(CoreConfig(), 0)
    created = TicketCreated("e1", 1_700_000_000_000, "t1", "tech", "email", Priority.NORMAL, None)
    no_ticket = SurveyResponse("e9", 1_700_000_000_500, SurveyKind.NPS, 9, None, None, None,
                               None, None, None)  # fmt: skip
    counts: dict[str, int] = {}
    cases = [
        ("tickets", None, _bytes(created), "key_mismatch"),
        ("tickets", b"t2", _bytes(created), "key_mismatch"),
        ("tickets", b"T1", _bytes(created), "key_mismatch"),  # keys are exact bytes
        ("surveys", b"t1", _bytes(no_ticket), "key_mismatch"),  # no ticket: event id
        ("surveys", b"e9", _bytes(no_ticket), None),
        ("tickets", b"t1", _bytes(created), None),
        ("tickets", None, b"{not json", "not_json"),  # garbage: its key is not checked
    ]
    for offset, (role, key, value, reason) in enumerate(cases):
        record, _ = handle_message(engine, role, f"topic-{role}", 0, offset, key, value,
                                   counts, 1_700_000_001_000)
        got = None if record is None else dict(record.headers)["cxpulse.reason"].decode()
        assert got == reason, (offset, got)
        if record is not None:
            assert record.value == value and record.key == key
    assert counts["deadletter:tickets:key_mismatch"] == 3
    assert counts["deadletter:surveys:key_mismatch"] == 1
    assert counts["applied:tickets"] == 1 and counts["applied:surveys"] == 1


def test_too_large_dead_letter_is_a_pointer_and_counted() -> None:
    from cxpulse.core.deadletter import is_pointer, record_size

    engine = PartitionEngine(CoreConfig(), 0)
    counts: dict[str, int] = {}
    small, _ = handle_message(engine, "tickets", "t", 0, 0, b"k", b"x" * 70_000, counts, 1,
                              deadletter_max_bytes=100_000)  # fmt: skip
    big, _ = handle_message(engine, "tickets", "t", 0, 1, b"k", b"x" * 100_000, counts, 1,
                            deadletter_max_bytes=100_000)  # fmt: skip
    assert small is not None and small.value == b"x" * 70_000 and not is_pointer(small.headers)
    assert big is not None and is_pointer(big.headers)
    assert record_size(big.key, big.value, big.headers) <= 100_000
    assert counts == {
        "consumed:tickets": 2,
        "deadletter:tickets:too_large": 2,
        "deadletter_pointer:tickets": 1,
    }


def test_lag_and_status_from_the_markers() -> None:
    from cxpulse.worker.shared import PartitionStatus, partition_lag, worker_status

    topics = {"tickets": "t", "surveys": "s"}
    hw = {"t": 120, "s": None}
    lag = partition_lag(hw.get, {"tickets": 99}, topics)
    assert lag == {"tickets": 20}  # next to apply is 100; no fetch yet on "s"
    assert partition_lag(hw.get, {}, topics) == {"tickets": 120}  # nothing applied yet
    ps = [PartitionStatus(0, {}, {}, None, lag), PartitionStatus(1, {}, {}, 0, {})]
    st = worker_status(ps, 5.0, topics)
    assert st.partitions == ps and st.last_success_s == 5.0 and st.topics == topics
    assert st.processing_delay_s is not None and st.processing_delay_s > 1e9  # since 1970


def test_label_caps_that_bite_are_counted() -> None:
    """allowed_labels and max_label_values map values to `other`; each time is counted
    (`label_capped:<dimension>:<cap>`, exported as cxpulse_label_values_capped_total)."""
    from cxpulse.worker.shared import count_label_caps

    cfg = CoreConfig(max_label_values=2, allowed_labels={"channel": frozenset({"email"})})
    engine = PartitionEngine(cfg, 0)
    counts: dict[str, int] = {}
    for i in range(5):
        ev = TicketCreated(f"e{i}", 1_700_000_000_000 + i, f"t{i}", f"team-{i}",
                           "email" if i < 1 else "web", Priority.NORMAL, None)  # fmt: skip
        record, _ = handle_message(engine, "tickets", "t", 0, i, f"t{i}".encode(), _bytes(ev),
                                   counts, 1_700_000_001_000)  # fmt: skip
        assert record is None
    count_label_caps(engine, counts)
    assert counts["label_capped:team:max_label_values"] >= 3
    assert counts["label_capped:channel:allowed_labels"] >= 4
    again: dict[str, int] = {}
    count_label_caps(engine, again)
    assert again == {}  # taken once
