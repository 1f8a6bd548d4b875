"""The demo's incident schedule: offsets in simulated time from the simulation's start,
turned into simulator slowdowns; bad `--incident-*` flags are one line and exit 2.

Why offsets from the start: the `incident` scenario's incident is fixed at 09:00 of
the first day, which a demo started in the evening never reaches (the live demo test
found no incident at all in a 7-day run started at 22:50)."""

from __future__ import annotations

from datetime import UTC, datetime

from cxpulse.core.events import Author, TicketCreated, TicketMessage
from cxpulse.demo.incidents import INCIDENT_FACTOR, INCIDENT_HOUR, IncidentPlan, simulated_span
from cxpulse.sim.model import SimConfig, Simulation

from tests.unit.test_user_errors import cli, one_line

MIN = 60_000
HOUR = 60 * MIN
START = 1_793_577_600_000 + 22 * HOUR + 50 * MIN  # a Monday, 22:50 UTC


def test_spans_repeat_inside_the_run_and_are_clipped_at_its_end() -> None:
    plan = IncidentPlan("tech", after_ms=HOUR, length_ms=3 * HOUR, every_ms=12 * HOUR)
    assert plan.spans(START, 26 * HOUR) == [
        (START + HOUR, START + 4 * HOUR),
        (START + 13 * HOUR, START + 16 * HOUR),
        (START + 25 * HOUR, START + 26 * HOUR),
    ]
    once = IncidentPlan("tech", after_ms=HOUR, length_ms=3 * HOUR, every_ms=0)
    assert once.spans(START, 48 * HOUR) == [(START + HOUR, START + 4 * HOUR)]
    assert once.spans(START, HOUR) == []  # starts after the run


def test_the_team_stalls_during_the_incident_only() -> None:
    """First replies of the incident team's tickets created in the incident are much
    slower than before it; other teams are untouched (same seed, same draws)."""
    plan = IncidentPlan("billing", after_ms=2 * HOUR, length_ms=3 * HOUR, every_ms=0)
    slow = plan.slowdowns(START, 6 * HOUR)
    assert [(s.team, s.factor) for s in slow] == [("billing", INCIDENT_FACTOR)]

    def first_replies(cfg: SimConfig) -> dict[str, tuple[str, int, int]]:
        created: dict[str, tuple[str, int]] = {}
        out: dict[str, tuple[str, int, int]] = {}
        for e in Simulation(cfg).events():
            if isinstance(e, TicketCreated):
                created[e.ticket_id] = (e.team, e.ts)
            elif (isinstance(e, TicketMessage) and e.author is Author.AGENT and e.public
                  and e.ticket_id in created and e.ticket_id not in out):
                team, ts = created[e.ticket_id]
                out[e.ticket_id] = (team, ts, e.ts - ts)
        return out

    base = SimConfig(seed=3, start_ms=START, duration_ms=6 * HOUR, tickets_per_day=4000)
    with_incident = SimConfig(seed=3, start_ms=START, duration_ms=6 * HOUR,
                              tickets_per_day=4000, slowdowns=slow)
    normal, stalled = first_replies(base), first_replies(with_incident)
    begin, end = START + 2 * HOUR, START + 5 * HOUR
    inside = [t for t, (team, ts, _) in stalled.items()
              if team == "billing" and begin <= ts < end - HOUR]
    assert len(inside) >= 10
    breached = [t for t in inside if stalled[t][2] > 15 * MIN]
    assert len(breached) >= 0.8 * len(inside), (len(breached), len(inside))
    before = [frt for team, ts, frt in stalled.values() if team == "billing" and ts < begin]
    assert before and sorted(before)[len(before) // 2] < 15 * MIN
    others = {t: v for t, v in stalled.items() if v[0] != "billing"}
    assert others and all(normal.get(t) == v for t, v in others.items())


def test_bad_incident_flags_are_one_line() -> None:
    one_line(cli("demo", "--incident-team", "sales"), "demo", "--incident-team", "sales")
    one_line(cli("demo", "--incident-every", "1h", "--incident-length", "3h"), "demo",
             "--incident-every")


def test_stop_without_a_demo(tmp_path: object) -> None:
    out = cli("demo", "--stop", "--dir", str(tmp_path))
    assert out.returncode == 0 and "no demo running in" in out.stdout, out


def test_faster_than_real_time_the_first_incident_falls_in_working_hours() -> None:
    """Whatever the wall clock (every 7 minutes of a day here), at speed 60 the first
    incident starts at INCIDENT_HOUR:00 UTC of the simulated day, the simulation still
    ends now, and it is at most a simulated day longer than asked."""
    plan = IncidentPlan("billing", after_ms=30 * MIN, length_ms=3 * HOUR, every_ms=0)
    week = 7 * 24 * HOUR
    for now in range(START, START + 24 * HOUR, 7 * MIN):
        start, duration = simulated_span(now, week, 60.0, plan)
        first = plan.spans(start, duration)[0][0]
        assert abs(first % (24 * HOUR) - INCIDENT_HOUR * HOUR) < 1000, (now, first)
        assert abs(start + duration * (1 - 1 / 60) - now) < 1000  # ends now (wall clock)
        assert week <= duration < week + 24 * HOUR * 60 / 59
    # no incident: the simulation is what was asked; speed 1: it is the present
    assert simulated_span(START, week, 60.0, None) == (START - int(week * 59 / 60), week)
    assert simulated_span(START, week, 1.0, plan) == (START, week)


def test_speed_1_backfills_a_day_and_the_first_incident_counts_from_now() -> None:
    """At speed 1 the demo starts a day back (produced at once) and goes live at the present;
    the first incident is --incident-after from now, not from the backfill's start."""
    from cxpulse.demo.incidents import BACKFILL_MS, with_backfill
    from cxpulse.importer.replay import plan

    plan10 = IncidentPlan("tech", after_ms=10 * 60_000, length_ms=3 * 3_600_000,
                          every_ms=12 * 3_600_000)
    start, duration, live, shifted = with_backfill(START, 86_400_000, 1.0, plan10)
    assert (start, duration, live) == (START - BACKFILL_MS, 86_400_000 + BACKFILL_MS, START)
    assert shifted is not None
    begin, _ = shifted.spans(start, duration)[0]
    assert begin == START + 10 * 60_000
    # faster than real time nothing moves
    assert with_backfill(START, 86_400_000, 60.0, plan10) == (START, 86_400_000, START, plan10)

    # pacing: history before `live` is due at once, the rest when its time comes
    def ev(i: int, ts_ms: int) -> bytes:
        stamp = datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
        return (f'{{"event_id":"e{i}","type":"ticket.created","ts":"{stamp}",'
                f'"ticket_id":"t{i}","team":"tech","channel":"email","priority":"normal"}}'
                ).encode()

    values = [ev(0, START - 3_600_000), ev(1, START - 60_000), ev(2, START + 30_000)]
    dues = [o.due for o in plan(values, {"tickets": "t", "surveys": "s"}, 1.0, origin_ms=START)]
    assert dues == [0.0, 0.0, 30.0]


def test_the_receiver_prints_one_line_per_page_with_its_runbook_section() -> None:
    from cxpulse.demo.receiver import WATCHDOG, Receiver

    said: list[str] = []
    r = Receiver(said.append)
    alert = {"status": "firing", "labels": {"alertname": "CxpulseFrtStalled", "team": "tech",
                                            "severity": "page"},
             "annotations": {"summary": "Team tech stopped answering",
                             "runbook_url": "https://example.org/x/docs/runbook.md#cxpulsefrtstalled"}}
    assert r.line("oncall", alert) == (
        "NOTIFY oncall: FIRING CxpulseFrtStalled team=tech severity=page: Team tech stopped "
        "answering (what to do: docs/runbook.md#cxpulsefrtstalled)")
    watchdog = {"labels": {"alertname": WATCHDOG}}
    assert r.line("dms", watchdog) is not None and r.line("dms", watchdog) is None  # once
    assert r.line("oncall", {"labels": "garbage"}) == (
        "NOTIFY oncall: ? ? severity=?: ")
