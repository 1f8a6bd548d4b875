"""Event times that would poison stream time are rejected, with a reason, in
the report as in the worker (`shared.handle_message` uses the same rule)."""

from __future__ import annotations

import json

from cxpulse.core.config import CoreConfig
from cxpulse.core.engine import PartitionEngine
from cxpulse.core.timeguard import FLOOR_MS, TS_AHEAD, TS_TOO_OLD, time_rejection
from cxpulse.report.command import compute
from cxpulse.worker.shared import handle_message

HOUR = 3_600_000
RECEIVED = 1_795_338_000_000  # 2026-11-22T09:00:00Z


def line(eid: str, ts: str, tid: str = "T-1") -> bytes:
    return json.dumps({"event_id": eid, "type": "ticket.created", "ts": ts, "ticket_id": tid,
                       "team": "billing", "channel": "email", "priority": "high"}).encode()


def test_bounds() -> None:
    assert time_rejection(RECEIVED + HOUR, RECEIVED, HOUR) is None
    rej = time_rejection(RECEIVED + HOUR + 1, RECEIVED, HOUR)
    assert rej is not None and rej[0] == TS_AHEAD
    assert time_rejection(FLOOR_MS, RECEIVED, HOUR) is None
    rej = time_rejection(FLOOR_MS - 1, RECEIVED, HOUR)
    assert rej is not None and rej[0] == TS_TOO_OLD


def test_next_year_and_year_one_change_no_window_in_report() -> None:
    good = [line("e1", "2026-11-22T08:50:00Z", "T-1"), line("e2", "2026-11-22T08:55:00Z", "T-2")]
    bad = [line("e3", "2027-11-22T08:55:00Z", "T-3"), line("e4", "0001-01-01T00:00:00Z", "T-4")]
    clean = compute(good, received_ms=RECEIVED)
    dirty = compute([good[0], *bad, good[1]], received_ms=RECEIVED)
    assert dirty.rejected == {TS_AHEAD: 1, TS_TOO_OLD: 1}
    assert dirty.evaluation.at_ms == clean.evaluation.at_ms
    assert dirty.evaluation.kpis == clean.evaluation.kpis


def test_worker_dead_letters_by_record_timestamp() -> None:
    eng = PartitionEngine(CoreConfig(), 0)
    counts: dict[str, int] = {}
    record, ts = handle_message(eng, "tickets", "t", 0, 0, b"T-3",
                                line("e3", "2027-11-22T08:55:00Z", "T-3"), counts,
                                now_ms=RECEIVED + 400 * 86_400_000,
                                received_ms=RECEIVED)  # fmt: skip
    assert record is not None and ts is None
    assert eng.stream_time("tickets") is None
    assert any("timestamp_ahead" in k for k in counts)
    # Within the bound of the record timestamp: applied.
    record, ts = handle_message(eng, "tickets", "t", 0, 1, b"T-1",
                                line("e1", "2026-11-22T09:30:00Z"), counts,
                                now_ms=RECEIVED, received_ms=RECEIVED)  # fmt: skip
    assert record is None and ts is not None
