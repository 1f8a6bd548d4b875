"""The simulator: reproducible, plausible, and its dirt switches do what they say.

Statistics are computed here from the raw events, independently of the KPI
core, so a bug in either one cannot hide the other's.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import cache
from itertools import pairwise
from pathlib import Path

import pytest
from cxpulse.cli import main
from cxpulse.core import decode as d
from cxpulse.core.decode import Rejection, decode, encode_bytes, parse_ts
from cxpulse.core.events import (
    SCALES,
    SURVEYS,
    TICKETS,
    Author,
    Creator,
    Event,
    Status,
    StatusChanged,
    SurveyKind,
    SurveyResponse,
    TicketAssigned,
    TicketCreated,
    TicketMessage,
    key_of,
    role_of,
)
from cxpulse.sim import params as p
from cxpulse.sim.dirt import MALFORMED_KINDS, SimRecord, generate, malformed_message
from cxpulse.sim.model import SimConfig, Simulation

MIN = 60_000


@cache
def day(seed: int, scenario: str = "normal", hours: int = 24) -> tuple[Event, ...]:
    return tuple(
        Simulation(SimConfig(seed=seed, scenario=scenario, duration_ms=hours * 3_600_000)).events()
    )


@cache
def dirty(seed: int, **dirt: float) -> tuple[SimRecord, ...]:
    """Six busy hours (08:00-14:00) of the operation, with the dirt asked for."""
    start = SimConfig().start_ms + 8 * 3_600_000
    cfg = SimConfig(seed=seed, start_ms=start, duration_ms=6 * 3_600_000, **dirt)  # type: ignore[arg-type]
    return tuple(generate(cfg))


def first_responses(events: Iterable[Event]) -> dict[str, tuple[TicketCreated, int]]:
    """ticket -> (its creation, first public agent reply ts), customer-created only."""
    created: dict[str, TicketCreated] = {}
    replies: dict[str, tuple[TicketCreated, int]] = {}
    for e in events:
        if isinstance(e, TicketCreated) and e.created_by is Creator.CUSTOMER:
            created[e.ticket_id] = e
        elif (
            isinstance(e, TicketMessage)
            and e.author is Author.AGENT
            and e.public
            and e.ticket_id in created
            and e.ticket_id not in replies
        ):
            replies[e.ticket_id] = (created[e.ticket_id], e.ts)
    return replies


def frt_minutes(events: Iterable[Event]) -> list[float]:
    return sorted((ts - c.ts) / MIN for c, ts in first_responses(events).values())


def quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def csat_satisfied(events: Iterable[Event]) -> tuple[int, int]:
    scores = [
        e.score for e in events if isinstance(e, SurveyResponse) and e.survey is SurveyKind.CSAT
    ]
    return sum(s >= 4 for s in scores), len(scores)


# ---------------------------------------------------------------- reproducibility


def test_same_seed_and_args_give_byte_identical_files(tmp_path: Path) -> None:
    args = ["simulate", "--duration", "6h", "--start", "2026-11-03T06:00:00+01:00"]
    args += ["--duplicates", "0.02", "--malformed", "0.02", "--disorder", "90"]
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    assert main([*args, "--seed", "42", "--out", str(a)]) == 0
    assert main([*args, "--seed", "42", "--out", str(b)]) == 0
    assert main([*args, "--seed", "43", "--out", str(c)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert len(a.read_bytes()) > 100_000


def test_file_is_one_message_per_line_in_event_time_order(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    assert (
        main(["simulate", "--duration", "3h", "--start", "2026-11-02T08:00:00Z", "--out", str(out)])
        == 0
    )
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b""
    events = [decode(line) for line in lines[:-1]]
    assert all(not isinstance(e, Rejection) for e in events)
    stamps = [e.ts for e in events if not isinstance(e, Rejection)]
    assert stamps == sorted(stamps)
    start = parse_ts("2026-11-02T08:00:00Z")
    assert isinstance(start, int)
    assert start <= stamps[0] and stamps[-1] < start + 3 * 3_600_000


def test_generator_records_follow_the_contract() -> None:
    records = dirty(5)
    assert len(records) > 1000
    for record in records:
        event = decode(record.value)
        assert not isinstance(event, Rejection)
        assert record.role == role_of(event)
        assert record.key == key_of(event).encode()
        assert record.value == encode_bytes(event)
    assert {r.role for r in records} == {TICKETS, SURVEYS}


# ---------------------------------------------------------------- plausibility


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_frt_median_and_p90_in_configured_range(seed: int) -> None:
    frt = frt_minutes(day(seed))
    assert len(frt) > 1500
    low, high = p.FRT_MEDIAN_RANGE_MIN
    assert low <= statistics.median(frt) <= high
    assert quantile(frt, 0.9) < p.FRT_P90_MAX_MIN
    assert min(frt) >= 0


@pytest.mark.parametrize("seed", [1, 2])
def test_csat_share_near_configured_value(seed: int) -> None:
    satisfied, n = csat_satisfied(day(seed, hours=48))
    assert n > 600
    # 4 standard errors of a share near 0.86 over n responses
    tolerance = 4 * (p.CSAT_SHARE * (1 - p.CSAT_SHARE) / n) ** 0.5
    assert abs(satisfied / n - p.CSAT_SHARE) < tolerance


def test_hour_of_day_profile_is_visible() -> None:
    per_hour = Counter((e.ts // 3_600_000) % 24 for e in day(1) if isinstance(e, TicketCreated))
    night = statistics.mean(per_hour[h] for h in (1, 2, 3, 4))
    peak = statistics.mean(per_hour[h] for h in (9, 10, 11, 14))
    assert peak > 5 * night > 0
    busiest = max(per_hour, key=lambda h: per_hour[h])
    assert 8 <= busiest <= 16


def test_weekend_is_quieter_than_monday() -> None:
    monday = sum(isinstance(e, TicketCreated) for e in day(1))
    cfg = SimConfig(seed=1, start_ms=SimConfig().start_ms + 6 * 86_400_000)  # Sunday
    sunday = sum(isinstance(e, TicketCreated) for e in Simulation(cfg).events())
    assert sunday < 0.6 * monday


def test_tickets_per_day_scales_volume() -> None:
    def created(tpd: float) -> int:
        cfg = SimConfig(seed=3, tickets_per_day=tpd, duration_ms=12 * 3_600_000)
        return sum(isinstance(e, TicketCreated) for e in Simulation(cfg).events())

    assert 3.5 < created(4000) / created(1000) < 4.5


def test_operation_has_every_kind_of_event() -> None:
    events = day(1, hours=48)  # closing comes a day or more after solving
    created = {e.ticket_id: e for e in events if isinstance(e, TicketCreated)}
    by_ticket: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if not isinstance(e, SurveyResponse) and e.ticket_id is not None:
            by_ticket[e.ticket_id].append(e)

    teams = {c.team for c in created.values()}
    channels = {c.channel for c in created.values()}
    assert teams == set(p.TEAMS) and channels == set(p.CHANNELS)
    assert {c.priority.value for c in created.values()} == set(p.PRIORITIES)
    assert any(c.created_by is Creator.AGENT for c in created.values())

    messages = [e for e in events if isinstance(e, TicketMessage)]
    assert any(m.author is Author.BOT for m in messages)
    assert any(m.author is Author.AGENT and not m.public for m in messages)
    assert any(m.author is Author.CUSTOMER for m in messages)
    statuses = Counter(e.status for e in events if isinstance(e, StatusChanged))
    assert all(statuses[s] > 0 for s in Status)

    transfers = [
        e
        for e in events
        if isinstance(e, TicketAssigned)
        and e.team is not None
        and e.team != created[e.ticket_id].team
    ]
    assert len(transfers) > 0.03 * len(created)

    reopened = 0
    for ticket_events in by_ticket.values():
        seq = [e.status for e in ticket_events if isinstance(e, StatusChanged)]
        reopened += any(a is Status.SOLVED and b is Status.OPEN for a, b in pairwise(seq))
        assert isinstance(ticket_events[0], TicketCreated)  # nothing before its creation
    assert reopened > 0.02 * len(created)

    surveys = [e for e in events if isinstance(e, SurveyResponse)]
    assert {s.survey for s in surveys} == set(SurveyKind)
    assert any(s.ticket_id is None for s in surveys)
    needs_enrichment = [s for s in surveys if s.ticket_id is not None and s.team is None]
    assert 0.3 < len(needs_enrichment) / len(surveys) < 0.7
    assert all(s.ticket_id in created for s in surveys if s.ticket_id is not None)
    for s in surveys:
        low, high = SCALES[s.survey]
        assert low <= s.score <= high


def test_incident_slows_one_team_then_recovers() -> None:
    start = SimConfig().start_ms
    window = (start + p.INCIDENT.start_after, start + p.INCIDENT.start_after + p.INCIDENT.length)

    def team_frt(events: tuple[Event, ...], team: str, lo: int, hi: int) -> float:
        values = [
            (ts - c.ts) / MIN
            for c, ts in first_responses(events).values()
            if c.team == team and lo <= c.ts < hi
        ]
        assert len(values) > 30
        return statistics.median(values)

    normal, incident = day(1), day(1, "incident")
    team, other = p.INCIDENT.team, "billing"
    during = team_frt(incident, team, *window)
    assert during > 2.5 * team_frt(normal, team, *window)
    assert team_frt(incident, other, *window) == team_frt(normal, other, *window)
    after = (window[1] + 3_600_000, window[1] + 5 * 3_600_000)
    assert team_frt(incident, team, *after) < 1.5 * team_frt(normal, team, *after)

    def csat(events: tuple[Event, ...]) -> float:
        tickets = {
            e.ticket_id
            for e in events
            if isinstance(e, TicketCreated) and e.team == team and window[0] <= e.ts < window[1]
        }
        sat, n = csat_satisfied(
            e for e in events if isinstance(e, SurveyResponse) and e.ticket_id in tickets
        )
        assert n > 15
        return sat / n

    assert csat(incident) < csat(normal) - 0.2


# ---------------------------------------------------------------- dirt


def _valid(records: Iterable[SimRecord]) -> list[Event]:
    return [e for r in records if not isinstance(e := decode(r.value), Rejection)]


def test_no_dirt_by_default() -> None:
    records = dirty(5)
    values = [r.value for r in records]
    assert len(set(values)) == len(values)
    stamps = [e.ts for e in _valid(records)]
    assert len(stamps) == len(records) and stamps == sorted(stamps)


def test_dirt_leaves_the_clean_operation_unchanged() -> None:
    clean = _valid(dirty(5))
    noisy = _valid(dirty(5, duplicates=0.05, disorder_s=120.0, malformed=0.05))
    unique = list({e.event_id: e for e in noisy}.values())
    assert sorted(unique, key=lambda e: (e.ts, e.event_id)) == sorted(
        clean, key=lambda e: (e.ts, e.event_id)
    )


def test_duplicates_are_exact_copies_at_the_rate_asked() -> None:
    clean = dirty(5)
    records = dirty(5, duplicates=0.05)
    counts = Counter(r.value for r in records)
    assert set(counts.values()) == {1, 2}
    copies = sum(n - 1 for n in counts.values())
    assert abs(copies / len(clean) - 0.05) < 0.01
    stamps = [e.ts for e in _valid(records)]
    assert stamps == sorted(stamps)  # without disorder a copy follows its original


def test_disorder_stays_within_the_bound() -> None:
    records = dirty(5, disorder_s=120.0)
    stamps = [e.ts for e in _valid(records)]
    high, worst, inversions = stamps[0], 0, 0
    for ts in stamps:
        if ts < high:
            inversions += 1
            worst = max(worst, high - ts)
        high = max(high, ts)
    assert inversions > 0.05 * len(stamps)
    assert 60_000 < worst <= 120_000
    assert sorted(stamps) == sorted(e.ts for e in _valid(dirty(5)))


def test_malformed_rate_and_every_kind() -> None:
    clean = dirty(5)
    records = dirty(5, malformed=0.1)
    codes = Counter(r.code for r in (decode(x.value) for x in records) if isinstance(r, Rejection))
    assert set(codes) == set(d.REASON_CODES)
    assert abs(sum(codes.values()) / len(clean) - 0.1) < 0.015
    for record in records:
        assert b"\n" not in record.value
        assert record.role in (TICKETS, SURVEYS)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_each_malformed_kind_gets_its_reason_code(kind: str) -> None:
    rng = random.Random(kind)
    events = day(1, hours=3)
    for event in events[:: max(1, len(events) // 200)]:
        raw = malformed_message(kind, event, rng)
        result = decode(raw)
        assert isinstance(result, Rejection) and result.code == kind, (kind, raw[:200])
        assert b"\n" not in raw


def test_malformed_lines_survive_the_file_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "dirty.jsonl"
    args = ["simulate", "--duration", "4h", "--start", "2026-11-02T08:00:00Z"]
    assert main([*args, "--malformed", "0.2", "--seed", "9", "--out", str(out)]) == 0
    lines = out.read_bytes().split(b"\n")[:-1]
    start = parse_ts("2026-11-02T08:00:00Z")
    assert isinstance(start, int)
    cfg = SimConfig(seed=9, start_ms=start, duration_ms=4 * 3_600_000, malformed=0.2)
    assert lines == [r.value for r in generate(cfg)]
    codes = {r.code for r in map(decode, lines) if isinstance(r, Rejection)}
    assert d.NOT_UTF8 in codes and d.TOO_LARGE in codes


def test_disorder_at_the_lateness_needs_allow_late(tmp_path: Path) -> None:
    out = tmp_path / "late.jsonl"
    args = ["simulate", "--duration", "1h", "--out", str(out), "--disorder", "300"]
    assert main(args) == 2
    assert not out.exists()
    assert main([*args, "--allow-late"]) == 0
    assert out.stat().st_size > 0


def test_cli_needs_exactly_one_destination(tmp_path: Path) -> None:
    assert main(["simulate", "--duration", "1h"]) == 2
    assert (
        main(
            ["simulate", "--duration", "1h", "--out", str(tmp_path / "x"),
             "--bootstrap-servers", "127.0.0.1:1"]
        )
        == 2
    )
