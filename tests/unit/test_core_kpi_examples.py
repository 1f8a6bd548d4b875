"""Hand-worked examples, one per KPI of the catalogue, arithmetic in comments."""

from __future__ import annotations

import pytest
from cxpulse.core.config import CoreConfig
from cxpulse.core.engine import Evaluation
from cxpulse.core.events import Event

from tests.unit.core_helpers import assigned, created, msg, run, status, survey


def value(ev: Evaluation, name: str, window: str = "1h", **labels: str) -> float | None:
    return ev.kpi(name, window, **labels).value


def test_contract_example() -> None:
    # events.md example: created 09:00, assigned 09:01, reply 09:04:30, solved 09:20,
    # CSAT 5 at 09:30 without team/agent.
    _, ev = run([
        created("T-1", "09:00:00", "billing", "email", "high"),
        assigned("T-1", "09:01:00", "a-7"),
        msg("T-1", "09:04:30", "agent", "a-7"),
        status("T-1", "09:20:00", "solved"),
        survey("09:30:00", "csat", 5, "T-1"),
    ])  # fmt: skip
    assert value(ev, "frt_mean_seconds") == 270.0  # 4 min 30 s
    assert value(ev, "resolution_mean_seconds") == 1200.0  # 20 min
    assert value(ev, "fcr") == 1.0  # one public agent message before the solve
    # Enriched from the ticket: team billing, agent = assignee at 09:30 = a-7.
    assert ev.kpi("csat", "1h", team="billing").n == 1
    assert ev.kpi("csat", "1h", agent="a-7").value == 1.0
    assert ev.kpi("csat", "1h", channel="email").n == 1


def test_bot_and_internal_messages_do_not_count() -> None:
    _, ev = run([
        created("T", "10:00:00"),
        msg("T", "10:01:00", "bot"),  # bot: never a response
        msg("T", "10:02:00", "agent", "a-1", public=False),  # internal note
        msg("T", "10:05:00", "customer"),  # a contact
        msg("T", "10:10:00", "agent", "a-1"),  # first public agent reply
        status("T", "10:20:00", "solved"),
    ])  # fmt: skip
    assert value(ev, "frt_mean_seconds") == 600.0  # 10:10 - 10:00
    assert value(ev, "frt_sla_met") == 1  # 10 min <= 15 min
    assert value(ev, "contacts") == 2  # created + one public customer message
    assert value(ev, "fcr") == 1.0  # only one public agent message counts
    assert value(ev, "agent_replies", agent="a-1") == 1  # the note is no reply


def test_agent_created_ticket_has_no_frt_nor_sla() -> None:
    _, ev = run([
        created("T", "10:00:00", by="agent"),
        msg("T", "10:00:30", "agent", "a-1"),
        status("T", "10:30:00", "solved"),
    ])  # fmt: skip
    assert value(ev, "tickets_created") == 1
    assert value(ev, "frt_count") == 0
    assert value(ev, "frt_sla_met") == 0 and value(ev, "frt_sla_breached") == 0
    assert value(ev, "frt_sla_compliance") is None  # 0 / 0 is undefined, not 0
    assert value(ev, "resolution_mean_seconds") == 1800.0  # still resolved: 30 min


def test_pending_is_excluded_from_wait_time() -> None:
    _, ev = run([
        created("T", "10:00:00"),  # new 10:00-10:05 (5 min)
        status("T", "10:05:00", "open"),  # open 10:05-10:10 (5 min)
        status("T", "10:10:00", "pending"),  # pending 10:10-10:40: not waiting
        status("T", "10:40:00", "on_hold"),  # on_hold 10:40-10:45 (5 min)
        status("T", "10:45:00", "open"),  # open 10:45-10:50 (5 min)
        status("T", "10:50:00", "solved"),
    ])  # fmt: skip
    assert value(ev, "resolution_mean_seconds") == 3000.0  # 50 min
    assert value(ev, "wait_mean_seconds") == 1200.0  # 5 + 5 + 5 + 5 = 20 min


def test_reopen_after_solve() -> None:
    _, ev = run([
        created("T", "10:00:00"),
        status("T", "10:10:00", "solved"),  # first solve: resolution 10 min
        status("T", "10:20:00", "open"),  # reopen
        status("T", "10:30:00", "solved"),  # second solve, not a first solve
        status("T", "10:35:00", "pending"),  # solved -> pending: no reopen
    ])  # fmt: skip
    assert value(ev, "solves") == 2
    assert value(ev, "reopens") == 1
    assert value(ev, "reopen_rate") == 0.5  # 1 / 2
    assert value(ev, "first_solves") == 1
    assert value(ev, "resolution_mean_seconds") == 600.0
    assert ev.sample("gauge", "backlog_open") == 1  # pending is not solved


def test_transfer_between_teams() -> None:
    _, ev = run([
        created("T", "10:00:00", team="billing"),
        created("U", "10:00:00", team="billing"),
        assigned("T", "10:05:00", "a-1", team="tech"),  # transfer
        msg("T", "10:06:00", "agent", "a-1"),
        survey("10:07:00", "csat", 4, "T"),  # no team: from the ticket at 10:07
        assigned("U", "10:10:00", "a-2", team="tech"),  # transferred, never answered
        created("X", "10:20:00", team="billing"),  # moves stream time past 10:15
    ])  # fmt: skip
    assert value(ev, "tickets_created", team="billing") == 3  # creation stays with billing
    assert value(ev, "frt_count", team="tech") == 1  # reply after the transfer
    assert value(ev, "frt_count", team="billing") == 0
    # U breaches at its deadline 10:15, when it belonged to tech.
    assert value(ev, "frt_sla_breached", team="tech") == 1
    assert ev.kpi("csat", "1h", team="tech").n == 1
    assert ev.kpi("csat", "1h", agent="a-1").n == 1
    assert ev.sample("gauge", "backlog_open", team="tech") == 2  # T and U are with tech now


def test_breach_counted_when_stream_time_passes_deadline() -> None:
    events: list[Event] = [created("T", "10:00:00"), created("Y", "10:15:00")]  # T: 10:15
    _, ev = run(events)
    assert value(ev, "frt_sla_breached") == 0  # stream time 10:15 has not *passed* it
    events.append(created("Z", "10:15:00.001"))
    _, ev = run(events)
    assert value(ev, "frt_sla_breached") == 1  # unanswered tickets count too
    events.append(msg("T", "10:20:00", "agent", "a-1"))  # the late reply
    _, ev = run(events)
    assert value(ev, "frt_sla_breached") == 1 and value(ev, "frt_sla_met") == 0
    assert value(ev, "frt_sla_compliance") == 0.0  # 0 / (0 + 1)
    assert value(ev, "frt_mean_seconds") == 1200.0  # FRT is still recorded: 20 min


def test_frt_target_per_priority() -> None:
    from cxpulse.core.config import CoreConfig

    cfg = CoreConfig(frt_target_by_priority={"urgent": 300_000})  # 5 min for urgent
    _, ev = run([
        created("T", "10:00:00", priority="urgent"),
        created("U", "10:00:00", priority="normal"),
        msg("T", "10:06:00", "agent", "a-1"),  # 6 min > 5 min: breached at 10:05
        msg("U", "10:06:00", "agent", "a-1"),  # 6 min <= 15 min: met
    ], cfg)  # fmt: skip
    assert value(ev, "frt_sla_breached", priority="urgent") == 1
    assert value(ev, "frt_sla_met", priority="normal") == 1
    assert value(ev, "frt_sla_compliance") == 0.5


def test_at_risk_and_oldest_unanswered() -> None:
    _, ev = run([
        created("A", "10:00:00"),  # age at 10:12 = 12 min: past 7.5 and 11.25 min
        created("B", "10:05:00"),  # 7 min: below 50 % (7.5 min)
        created("C", "10:04:00"),  # 8 min: past 50 %, not 75 %
        msg("C", "10:04:30", "customer"),
        created("D", "10:01:00"),  # answered: not at risk
        msg("D", "10:02:00", "agent", "a-1"),
        assigned("D", "10:02:00", "a-1"),
        created("E", "10:12:00"),
    ], at_clock="10:12:00")  # fmt: skip
    assert ev.sample("gauge", "frt_at_risk", threshold="0.5") == 2  # A, C
    assert ev.sample("gauge", "frt_at_risk", threshold="0.75") == 1  # A
    assert ev.sample("gauge", "frt_breached_unanswered") == 0  # A is 12 min old, not 15
    assert ev.sample("gauge", "oldest_unanswered_age_seconds") == 720.0  # A: 12 min
    assert ev.sample("gauge", "backlog_open") == 5
    assert ev.sample("gauge", "backlog_unanswered") == 4  # all but D
    assert ev.sample("gauge", "backlog_unassigned") == 4
    assert ev.sample("gauge", "agent_open_assigned", agent="a-1") == 1


def test_breached_unanswered_tickets_leave_the_band_but_stay_counted() -> None:
    _, ev = run([
        created("A", "10:00:00"),  # 20 min at 10:20: past its 15 min deadline
        created("B", "10:04:00"),  # 16 min: breached
        created("C", "10:10:00"),  # 10 min: at risk (50 %), not breached
        created("D", "10:01:00"),  # breached, but answered: no longer waiting
        msg("D", "10:17:00", "agent", "a-1"),
    ], at_clock="10:20:00")  # fmt: skip
    assert ev.sample("gauge", "frt_breached_unanswered") == 2  # A, B
    assert ev.sample("gauge", "frt_at_risk", threshold="0.5") == 1  # C only: the band



def test_events_before_creation_count_at_creation() -> None:
    _, ev = run([
        msg("T", "09:59:00", "agent", "a-1"),  # producer clock skew: before creation
        created("T", "10:00:00"),
        status("T", "10:30:00", "solved"),
    ])  # fmt: skip
    assert value(ev, "frt_mean_seconds") == 0.0  # never negative: counted at 10:00
    assert value(ev, "frt_p50_seconds") == 0.0


def test_tickets_per_agent() -> None:
    _, ev = run([
        created("T", "10:00:00"),
        assigned("T", "10:01:00", "a-2"),
        msg("T", "10:02:00", "agent", "a-1"),  # a-1 replies
        msg("T", "10:03:00", "agent", "a-3", public=False),  # a-3: internal only
        status("T", "10:04:00", "solved"),  # a-2 solves (assignee)
    ])  # fmt: skip
    assert value(ev, "active_agents") == 2  # a-1, a-2
    assert value(ev, "tickets_per_agent") == 0.5  # 1 first solve / 2 agents
    assert value(ev, "agent_solves", agent="a-2") == 1
    assert value(ev, "agent_replies", agent="a-1") == 1


def test_active_agents_of_other_count_each_agent_once_across_its_teams() -> None:
    """Under a top-1 team cap, `other` holds two small teams: an agent who replied in
    both is one active agent of `other`, not two, and not only one team's."""
    _, ev = run([
        *(created(t, "10:00:00", "big") for t in ("B1", "B2", "B3", "B4")),
        created("S1", "10:00:00", "small1"), created("S2", "10:00:00", "small2"),
        msg("B1", "10:01:00", "agent", "a-3"),
        msg("S1", "10:01:00", "agent", "a-1"), msg("S2", "10:02:00", "agent", "a-1"),
        msg("S2", "10:03:00", "agent", "a-2"),
    ], CoreConfig(top_n={"team": 1}))  # fmt: skip
    assert value(ev, "active_agents", team="other") == 2  # a-1 (both teams), a-2
    assert value(ev, "active_agents", team="big") == 1
    assert value(ev, "active_agents") == 3


def test_fcr_two_touches() -> None:
    _, ev = run([
        created("T", "10:00:00"), msg("T", "10:01:00", "agent", "a-1"),
        msg("T", "10:02:00", "agent", "a-1"), status("T", "10:03:00", "solved"),
        created("U", "10:00:00"), status("U", "10:03:00", "solved"),  # zero touches: one-touch
    ])  # fmt: skip
    assert value(ev, "fcr") == 0.5  # U qualifies (<= 1), T had 2 messages


def test_csat_share_mean_and_wilson() -> None:
    _, ev = run([survey("10:00:00", "csat", s, team="x") for s in (5, 4, 3, 1)])
    k = ev.kpi("csat", "1h")
    assert k.value == 0.5 and k.n == 4  # 4 and 5 are satisfied: 2 / 4
    assert value(ev, "csat_mean") == 3.25  # (5 + 4 + 3 + 1) / 4
    # Wilson, z = 1.96, p = 0.5, n = 4: centre (0.5 + z^2/8) / (1 + z^2/4) = 0.5,
    # half = z sqrt(0.25/4 + z^2/64) / (1 + z^2/4) = 1.96 * 0.35003 / 1.96037 = 0.34996
    assert k.ci_low == pytest.approx(0.15004, abs=1e-4)
    assert k.ci_high == pytest.approx(0.84996, abs=1e-4)
    assert k.below_min_sample is True  # 4 < 30


def test_ces_share_and_mean() -> None:
    _, ev = run([survey("10:00:00", "ces", s, team="x") for s in (7, 5, 4)])
    assert value(ev, "ces") == pytest.approx(2 / 3)  # 5..7 = easy
    assert value(ev, "ces_mean") == pytest.approx(16 / 3)


def test_nps_and_its_interval() -> None:
    _, ev = run([survey("10:00:00", "nps", s, team="x") for s in (10, 9, 8, 6)])
    k = ev.kpi("nps", "1h")
    # promoters 2/4, detractors 1/4: NPS = 100 (0.5 - 0.25) = 25
    assert k.value == 25.0
    # Var = 100^2 (0.75 - 0.0625) / 4 = 1718.75, sd 41.458, z sd = 81.26
    assert k.ci_low == pytest.approx(25 - 81.257, abs=1e-2)
    assert k.ci_high == 100.0  # 106.26 clipped to the scale


def test_nps_all_passives_is_zero() -> None:
    _, ev = run([survey("10:00:00", "nps", s, team="x") for s in (7, 8, 7, 8)])
    k = ev.kpi("nps", "1h")
    assert k.value == 0.0  # no promoters, no detractors
    assert (k.ci_low, k.ci_high) == (0.0, 0.0)  # Var = 100^2 (0 - 0) / 4 = 0


def test_min_sample_flag() -> None:
    _, ev = run([survey("10:00:00", "csat", 5, team="x") for _ in range(30)])
    assert ev.kpi("csat", "1h").below_min_sample is False  # n = 30 = min sample


def test_window_boundary_of_the_catalogue() -> None:
    # A 15-minute window at 10:30:20 covers 10:16:00 to 10:30:59.999.
    _, ev = run([
        created("A", "10:15:59.999"),  # just outside
        created("B", "10:16:00"),  # first instant inside
        created("C", "10:30:20"),
        created("D", "10:30:59.999"),  # last instant inside
        created("E", "10:31:00"),  # next slice: outside
    ], at_clock="10:30:20")  # fmt: skip
    assert value(ev, "tickets_created", "15m") == 3  # B, C, D
    assert value(ev, "tickets_created", "1h") == 4  # 09:31:00 .. 10:30:59.999: A-D


def test_survey_without_ticket_or_team_is_unknown() -> None:
    _, ev = run([
        survey("10:00:00", "csat", 5),  # no ticket, no team
        survey("10:00:00", "csat", 1, "T-404"),  # ticket never seen
        survey("10:00:00", "csat", 4, team="sales", agent_id="a-9", channel="chat"),
    ])  # fmt: skip
    assert ev.kpi("csat", "1h", team="unknown").n == 2
    assert ev.kpi("csat", "1h", agent="unknown").n == 2
    assert ev.kpi("csat", "1h", team="sales").n == 1
