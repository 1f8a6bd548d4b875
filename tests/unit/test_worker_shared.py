"""One message's fate, shared by both worker runtimes: every message moves
`consumed` and exactly one outcome counter, and rejects carry their bytes."""

from __future__ import annotations

import json

from stream.core.config import CoreConfig
from stream.core.deadletter import DeadLetter
from stream.core.decode import encode
from stream.core.engine import PartitionEngine
from stream.core.events import Priority, SurveyKind, SurveyResponse, TicketCreated
from stream.worker.shared import handle_message


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
            engine, role, f"topic-{role}", 0, offset, b"k", value, counts, 1_700_000_001_000
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
    assert all(d.key == b"k" for d in dead)
    headers = dict(dead[1].headers)
    assert headers["cxpulse.reason"] == b"wrong_topic"
    assert headers["cxpulse.source_offset"] == b"3"


def test_lag_and_status_from_the_markers() -> None:
    from stream.worker.shared import PartitionStatus, partition_lag, worker_status

    topics = {"tickets": "t", "surveys": "s"}
    hw = {"t": 120, "s": None}
    lag = partition_lag(hw.get, {"tickets": 99}, topics)
    assert lag == {"tickets": 20}  # next to apply is 100; no fetch yet on "s"
    assert partition_lag(hw.get, {}, topics) == {"tickets": 120}  # nothing applied yet
    ps = [PartitionStatus(0, {}, {}, None, lag), PartitionStatus(1, {}, {}, 0, {})]
    st = worker_status(ps, 5.0, topics)
    assert st.partitions == ps and st.last_success_s == 5.0 and st.topics == topics
    assert st.processing_delay_s is not None and st.processing_delay_s > 1e9  # since 1970
