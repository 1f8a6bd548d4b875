"""`cxpulse report`: the batch reference, end to end on JSONL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode
from cxpulse.core.events import Event, role_of
from cxpulse.report.command import compute
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig

from tests.unit.kpi_reference import reference
from tests.unit.test_core_reference import check_backlog, check_surveys, check_tickets

BIN = Path(sys.executable).parent / "cxpulse"

LINES = [
    b'{"event_id":"e-1","type":"ticket.created","ts":"2026-11-22T09:00:00Z","ticket_id":"T-1",'
    b'"team":"billing","channel":"email","priority":"high"}',
    b'{"event_id":"e-2","type":"ticket.assigned","ts":"2026-11-22T09:01:00Z","ticket_id":"T-1",'
    b'"agent_id":"a-7"}',
    b'{"event_id":"e-3","type":"ticket.message","ts":"2026-11-22T09:04:30Z","ticket_id":"T-1",'
    b'"author":"agent","agent_id":"a-7","public":true}',
    b'{"event_id":"e-4","type":"ticket.status_changed","ts":"2026-11-22T09:20:00Z",'
    b'"ticket_id":"T-1","status":"solved"}',
    b'{"event_id":"e-5","type":"survey.response","ts":"2026-11-22T09:30:00Z","survey":"csat",'
    b'"score":5,"ticket_id":"T-1"}',
    b'{"event_id":"e-6","type":"survey.response","ts":"2026-11-22T09:30:00","survey":"csat",'
    b'"score":5}',  # no offset
    b"not json",
    b'{"event_id":"e-1","type":"ticket.created","ts":"2026-11-22T09:00:00Z","ticket_id":"T-1",'
    b'"team":"billing","channel":"email","priority":"high"}',  # duplicate
]


def _kpi(doc: dict[str, object], name: str, window: str, **labels: str) -> dict[str, object]:
    kpis = doc["kpis"]
    assert isinstance(kpis, list)
    return next(k for k in kpis
                if k["name"] == name and k["window"] == window and k["labels"] == labels)


def test_report_json_on_the_contract_example(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    out = subprocess.run([str(BIN), "report", str(path), "--json", "--final"],
                         capture_output=True, check=True)  # fmt: skip
    doc = json.loads(out.stdout)
    assert doc["lines"] == 8
    assert doc["rejected"] == {"naive_timestamp": 1, "not_json": 1}
    assert _kpi(doc, "frt_mean_seconds", "1h")["value"] == 270.0
    assert _kpi(doc, "resolution_mean_seconds", "1h", team="billing")["value"] == 1200.0
    assert _kpi(doc, "csat", "1h", agent="a-7")["n"] == 1
    dup = next(c for c in doc["counters"] if c["name"] == "events_total"
               and c["labels"] == {"role": "tickets", "outcome": "duplicate"})  # fmt: skip
    assert dup["value"] == 1
    assert doc["at"] == "2026-11-22T09:30:00.000Z"
    text = subprocess.run([str(BIN), "report", str(path), "--all", "--at",
                           "2026-11-22T09:10:00Z"],
                          capture_output=True, check=True, text=True).stdout  # fmt: skip
    assert "cxpulse report at 2026-11-22T09:10:00.000Z: 8 lines, 2 rejected" in text
    assert "== window 15m ==" in text and "resolution_count" in text


def test_report_without_final_equals_the_live_view(tmp_path: Path) -> None:
    # The CSAT response (09:30) lacks team/agent, so it waits until the tickets stream
    # (at 09:20 when the file ends) passes 09:30 + lateness: a live worker would not show
    # it yet, and neither does the default report; `--final` attributes it.
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    live = json.loads(subprocess.run([str(BIN), "report", str(path), "--json"],
                                     capture_output=True, check=True).stdout)  # fmt: skip
    assert _kpi(live, "csat", "1h")["n"] == 0
    parked = next(g for g in live["gauges"] if g["name"] == "surveys_parked")
    assert parked["value"] == 1


def test_report_rejects_bad_arguments(tmp_path: Path) -> None:
    out = subprocess.run([str(BIN), "report", str(tmp_path / "missing.jsonl")],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2 and "cannot read" in out.stderr
    out = subprocess.run([str(BIN), "report", "-", "--at", "yesterday"], capture_output=True,
                         text=True, input="")  # fmt: skip
    assert out.returncode == 2 and "--at" in out.stderr


def _simulated(hours: int, **dirt: Any) -> list[bytes]:
    cfg = SimConfig(seed=3, duration_ms=hours * 3_600_000, tickets_per_day=1500.0, **dirt)
    return [r.value for r in generate(cfg)]


def test_simulated_stream_matches_reference_for_any_partitioning() -> None:
    lines = _simulated(6, duplicates=0.02, disorder_s=120.0)
    events: list[tuple[str, Event]] = []
    for line in lines:
        e = decode(line)
        assert not isinstance(e, Rejection)
        events.append((role_of(e), e))
    cfg = CoreConfig()
    one = compute(lines, cfg, partitions=1).evaluation
    four = compute(lines, cfg, partitions=4).evaluation
    # Disorder stays within the lateness, so partitioning changes nothing.
    assert one.kpis == four.kpis
    for partitions, ev in ((1, one), (4, four)):
        ref = reference(events, cfg, partitions)
        check_tickets(ev, ref, cfg)
        check_backlog(ev, ref, cfg)
        check_surveys(ev, ref, cfg)
