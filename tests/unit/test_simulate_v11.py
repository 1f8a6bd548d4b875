"""`cxpulse simulate --contract 1.1`: the shapes contract 1.1 adds, on top of an
unchanged 1.0 operation, and the batch report on them against the reference.

The checks of satisfied / not use the table of docs/contract.md as written
in tests/unit/kpi_reference.py, not the simulator's own mapping.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from functools import cache
from pathlib import Path

from cxpulse.cli import main
from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode
from cxpulse.core.events import (
    TYPE_RANK,
    Event,
    Status,
    StatusChanged,
    SurveyKind,
    SurveyOffered,
    SurveyResponse,
    TicketCreated,
    TicketHandoff,
    TicketMessage,
    role_of,
)
from cxpulse.report.command import compute
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig, Simulation

from tests.unit.kpi_reference import is_good, reference
from tests.unit.test_core_contract_v11 import check_surveys
from tests.unit.test_core_reference import check_backlog, check_tickets

START = SimConfig().start_ms + 8 * 3_600_000  # a busy Monday morning


@cache
def run(contract: str, hours: int = 6) -> tuple[Event, ...]:
    cfg = SimConfig(seed=5, start_ms=START, duration_ms=hours * 3_600_000, contract=contract)
    return tuple(Simulation(cfg).events())


def test_the_1_0_operation_underneath_is_unchanged() -> None:
    """Every 1.0 event is in the 1.1 run under its id, equal but for what 1.1
    changes: `bot` on a creation, the `open` a reply-and-solve drops, that
    solve moved to the reply (and what follows it in the ticket's life moved
    as much), a CSAT answer's scale (satisfied stays satisfied)."""
    old = {e.event_id: e for e in run("1.0")}
    new = {e.event_id: e for e in run("1.1")}
    # ticket -> (1.0 time of its first solve, how much earlier it is in 1.1)
    shift: dict[str, tuple[int, int]] = {}
    for e in sorted(old.values(), key=lambda e: e.ts):
        if isinstance(e, StatusChanged) and e.status is Status.SOLVED and e.ticket_id not in shift:
            shift[e.ticket_id] = (e.ts, e.ts - new[e.event_id].ts)
    moved = dropped = 0
    for eid, e in old.items():
        n = new.get(eid)
        if n is None:
            assert isinstance(e, StatusChanged) and e.status is Status.OPEN
            dropped += 1
            continue
        solved, delta = shift.get(e.ticket_id or "", (0, 0))
        ts = e.ts - delta if delta and e.ts >= solved else e.ts
        moved += ts != e.ts
        if isinstance(e, TicketCreated):
            assert isinstance(n, TicketCreated) and n == dataclasses.replace(e, bot=n.bot)
        elif isinstance(e, SurveyResponse) and e.survey is SurveyKind.CSAT:
            assert isinstance(n, SurveyResponse) and n.ts == ts
            assert is_good(n) == (e.score >= 4)
            assert n == dataclasses.replace(e, ts=ts, score=n.score, scale=n.scale)
        else:
            assert n == dataclasses.replace(e, ts=ts)
    assert dropped > 0 and moved > dropped
    assert sum(1 for e in new.values() if isinstance(e, TicketCreated) and e.bot) > 0
    extra = [e for eid, e in new.items() if eid not in old]
    assert {type(e) for e in extra} >= {TicketHandoff, SurveyOffered}
    replies = {(e.ticket_id, e.ts) for e in new.values() if isinstance(e, TicketMessage)}
    same_save = {e.ticket_id for e in new.values() if isinstance(e, StatusChanged)
                 and e.status is Status.SOLVED and (e.ticket_id, e.ts) in replies}  # fmt: skip
    for e in extra:  # or an event of a solve moved earlier, now inside the run's span
        if not isinstance(e, TicketHandoff | SurveyOffered):
            assert e.ticket_id in same_save


def test_every_1_1_shape_is_there() -> None:
    events = run("1.1")
    created = {e.ticket_id: e for e in events if isinstance(e, TicketCreated)}
    bots = {t for t, c in created.items() if c.bot}
    handed = {e.ticket_id for e in events if isinstance(e, TicketHandoff)}
    assert bots and handed and handed <= bots
    assert bots - handed  # some taken over by an agent before the handoff
    scales = Counter(e.scale.value if e.scale else "five_point" for e in events
                     if isinstance(e, SurveyResponse) and e.survey is SurveyKind.CSAT)  # fmt: skip
    assert set(scales) == {"five_point", "two_point", "three_point", "seven_point"}
    assert scales["five_point"] > sum(scales.values()) / 2
    offers = [e for e in events if isinstance(e, SurveyOffered)]
    answers = [e for e in events if isinstance(e, SurveyResponse) and e.ticket_id is not None
               and e.survey is SurveyKind.CSAT]  # fmt: skip
    assert len(offers) > 2 * len(answers) > 0  # most offers are never answered
    # A reply and a solve in one save, the solve's id sorting first (1.0 order
    # would put the solve before the reply).
    by_ts: dict[tuple[str, int], list[Event]] = {}
    for e in events:
        if isinstance(e, TicketMessage | StatusChanged):
            by_ts.setdefault((e.ticket_id, e.ts), []).append(e)
    mixed = [group for group in by_ts.values()
             if {type(e) for e in group} == {TicketMessage, StatusChanged}
             and any(isinstance(e, StatusChanged) and e.status is Status.SOLVED for e in group)]
    assert mixed
    assert any(min(g, key=lambda e: e.event_id) is not min(
        g, key=lambda e: (TYPE_RANK[type(e)], e.event_id)) for g in mixed)  # fmt: skip


def test_report_on_a_1_1_stream_matches_the_reference_for_any_partitioning() -> None:
    """Through the decoder: the simulated JSONL, duplicated and disordered within
    the lateness, read by `report --final` on 1 and 4 partitions, against the
    reference."""
    cfg = SimConfig(seed=3, start_ms=START, duration_ms=6 * 3_600_000, tickets_per_day=1500.0,
                    duplicates=0.02, disorder_s=120.0, contract="1.1")  # fmt: skip
    lines = [r.value for r in generate(cfg)]
    events: list[tuple[str, Event]] = []
    for line in lines:
        e = decode(line)
        assert not isinstance(e, Rejection)
        events.append((role_of(e), e))
    core = CoreConfig()
    # final: offers follow their solve within a minute, so at the end of the
    # stream many still wait for their ticket stream; the reference counts all
    one = compute(lines, core, partitions=1, final=True).evaluation
    four = compute(lines, core, partitions=4, final=True).evaluation
    assert one.kpis == four.kpis
    for partitions, ev in ((1, one), (4, four)):
        ref = reference(events, core, partitions)
        assert ref.offers and any(s.scale is not None for s, *_ in ref.surveys)
        check_tickets(ev, ref, core)
        check_backlog(ev, ref, core)
        check_surveys(ev, ref, core)


def test_cli_contract_switch(tmp_path: Path, capsys: object) -> None:
    out = tmp_path / "a.jsonl"
    args = ["simulate", "--duration", "1h", "--start", "2026-11-02T09:00:00Z"]
    assert main([*args, "--contract", "1.1", "--out", str(out)]) == 0
    types = Counter(decode(line).__class__.__name__ for line in out.read_bytes().splitlines())
    assert types["SurveyOffered"] > 0 and types["Rejection"] == 0
    assert main([*args, "--contract", "1.0", "--out", str(out)]) == 0
    assert b"survey.offered" not in out.read_bytes()
    try:
        code = main([*args, "--contract", "2.0", "--out", str(out)])
    except SystemExit as exc:  # argparse: a usage error, one line, exit 2
        code = int(str(exc.code))
    assert code == 2
