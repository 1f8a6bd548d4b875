"""The engine against the brute-force reference on generated histories.

Histories have out-of-order arrival within the allowed lateness, duplicates,
events stamped before their ticket's creation, reopens, transfers, closed
tickets, agent-created tickets, tickets without a creation, and surveys that
need enrichment from tickets not yet seen. Counts, sums, means and ratios must
agree exactly; quantiles within the sketch's relative accuracy. The engine is
also drained at random points and restored, and must evaluate identically.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import pytest
from cxpulse.core.config import CoreConfig
from cxpulse.core.durations import window_label
from cxpulse.core.engine import Evaluation, PartitionEngine, evaluate
from cxpulse.core.events import (
    SCALES,
    SURVEYS,
    TICKETS,
    Author,
    Creator,
    Event,
    Priority,
    Status,
    StatusChanged,
    SurveyKind,
    SurveyResponse,
    TicketAssigned,
    TicketCreated,
    TicketMessage,
    role_of,
)
from cxpulse.core.partitioning import partition_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.kpi_reference import Reference, exact_quantile, in_window, reference

BASE = 1_795_338_000_000 + 37_123  # 2026-11-22T09:00:37.123Z: not slice-aligned
MIN = 60_000
CFG = CoreConfig()
TEAMS = ["billing", "tech"]
CHANNELS = ["email", "chat"]
AGENTS = ["a-1", "a-2", "a-3"]


@st.composite
def ticket_history(draw: st.DrawFn, n: int) -> list[Event]:
    tid = f"T-{n}"
    c = BASE + draw(st.integers(0, 180 * MIN))
    events: list[Event] = []
    if draw(st.integers(0, 9)) > 0:
        events.append(
            TicketCreated(
                f"{tid}-c", c, tid, draw(st.sampled_from(TEAMS)), draw(st.sampled_from(CHANNELS)),
                draw(st.sampled_from(list(Priority))),
                created_by=Creator.AGENT if draw(st.integers(0, 5)) == 0 else Creator.CUSTOMER,
            )
        )
    for i in range(draw(st.integers(0, 9))):
        eid = f"{tid}-{i}"
        # Mostly after creation; sometimes stamped before it (producer clock skew).
        ts = c + draw(st.integers(-2 * MIN, 150 * MIN))
        kind = draw(st.integers(0, 9))
        if kind <= 1:
            team = draw(st.sampled_from([None, *TEAMS]))
            events.append(TicketAssigned(eid, ts, tid, draw(st.sampled_from(AGENTS)), team))
        elif kind <= 5:
            author = draw(st.sampled_from(list(Author)))
            agent = draw(st.sampled_from([None, *AGENTS])) if author is Author.AGENT else None
            public = draw(st.integers(0, 4)) > 0
            events.append(TicketMessage(eid, ts, tid, author, agent, public))
        else:
            choices = [Status.OPEN, Status.PENDING, Status.ON_HOLD, Status.SOLVED, Status.SOLVED,
                       Status.CLOSED]  # fmt: skip
            status = draw(st.sampled_from(choices))
            events.append(StatusChanged(eid, ts, tid, status))
    return events


@st.composite
def survey(draw: st.DrawFn, i: int, n_tickets: int) -> SurveyResponse:
    kind = draw(st.sampled_from(list(SurveyKind)))
    lo, hi = SCALES[kind]
    ticket = draw(st.sampled_from([None, "T-404", *[f"T-{k}" for k in range(n_tickets)]]))
    return SurveyResponse(
        f"S-{i}",
        BASE + draw(st.integers(0, 200 * MIN)),
        kind,
        draw(st.integers(lo, hi)),
        ticket_id=ticket,
        team=draw(st.sampled_from([None, None, *TEAMS])),
        agent_id=draw(st.sampled_from([None, None, "a-1"])),
        channel=draw(st.sampled_from([None, None, "web"])),
        touchpoint=draw(st.sampled_from([None, "after_resolution"])),
    )


@st.composite
def arrivals(draw: st.DrawFn) -> list[tuple[str, Event]]:
    """Events in an arrival order shuffled within the lateness (none is late)."""
    n = draw(st.integers(1, 7))
    events: list[Event] = []
    for k in range(n):
        events.extend(draw(ticket_history(k)))
    events.extend(draw(survey(i, n)) for i in range(draw(st.integers(0, 8))))
    dups = [e for e in events if draw(st.integers(0, 7)) == 0]
    keyed = []
    for seq, e in enumerate(events + dups):
        jitter = draw(st.integers(0, CFG.lateness_ms - 1))
        keyed.append((e.ts + jitter, seq, e))
    keyed.sort(key=lambda x: (x[0], x[1]))
    return [(role_of(e), e) for _, _, e in keyed]


# ----------------------------------------------------------------- comparison

TICKET_COUNTS = {
    "tickets_created": "created",
    "frt_sla_met": "met",
    "frt_sla_breached": "breached",
    "solves": "solve",
    "reopens": "reopen",
    "first_solves": "resolution",
}


def close(a: float | None, b: float | None) -> bool:
    return a == b


def check_tickets(ev: Evaluation, ref: Reference, cfg: CoreConfig) -> None:
    alpha = cfg.sketch_relative_accuracy
    seen_views = {(k.window, tuple(sorted(k.labels.items()))) for k in ev.kpis
                  if k.name == "tickets_created"}  # fmt: skip
    ref_views = {(), *(((d, getattr(f, d)),) for f in ref.facts if not f.kind.startswith("agent")
                       for d in ("team", "channel", "priority"))}  # fmt: skip
    for w in cfg.windows_ms:
        wl = window_label(w)
        assert {v for wv, v in seen_views if wv == wl} == ref_views
        for view in ref_views:
            labels = dict(view)
            facts = [f for f in ref.facts if in_window(f.ts, ref.at_ms, w, cfg)
                     and all(getattr(f, k) == v for k, v in labels.items())]  # fmt: skip
            by = Counter(f.kind for f in facts)
            for name, kind in TICKET_COUNTS.items():
                assert ev.kpi(name, wl, **labels).value == by[kind], (name, wl, labels)
            contacts = by["created"] + by["customer_msg"]
            assert ev.kpi("contacts", wl, **labels).value == contacts
            met, breached = by["met"], by["breached"]
            comp = ev.kpi("frt_sla_compliance", wl, **labels)
            assert comp.value == (met / (met + breached) if met + breached else None)
            fcr = ev.kpi("fcr", wl, **labels).value
            assert fcr == (by["one_touch"] / by["resolution"] if by["resolution"] else None)
            rr = ev.kpi("reopen_rate", wl, **labels).value
            assert rr == (by["reopen"] / by["solve"] if by["solve"] else None)
            for prefix in ("frt", "resolution", "wait"):
                values = [f.value for f in facts if f.kind == prefix]
                assert ev.kpi(f"{prefix}_count", wl, **labels).value == len(values)
                mean = ev.kpi(f"{prefix}_mean_seconds", wl, **labels).value
                assert mean == (sum(values) / len(values) / 1000.0 if values else None)
                for q, qn in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
                    got = ev.kpi(f"{prefix}_{qn}_seconds", wl, **labels).value
                    if not values:
                        assert got is None
                        continue
                    exact = exact_quantile(values, q)
                    assert got is not None
                    assert abs(got * 1000.0 - exact) <= alpha * exact * (1 + 1e-9), (
                        prefix, qn, got, exact)  # fmt: skip
            if len(view) == 0 or view[0][0] == "team":
                agents = {f.agent for f in facts if f.kind in ("agent_reply", "agent_solve")}
                assert ev.kpi("active_agents", wl, **labels).value == len(agents)
                tpa = ev.kpi("tickets_per_agent", wl, **labels).value
                assert tpa == (by["resolution"] / len(agents) if agents else None)
        per_agent = Counter(
            (f.agent, f.kind) for f in ref.facts if in_window(f.ts, ref.at_ms, w, cfg)
            and f.kind in ("agent_reply", "agent_solve")
        )  # fmt: skip
        got_agents = {k.labels["agent"]: k.value for k in ev.kpis
                      if k.window == wl and k.name == "agent_replies"}  # fmt: skip
        for agent, value in got_agents.items():
            assert value == per_agent[(agent, "agent_reply")]
            solves = ev.kpi("agent_solves", wl, agent=agent).value
            assert solves == per_agent[(agent, "agent_solve")]
        assert {a for a, _ in per_agent} <= set(got_agents)


def check_backlog(ev: Evaluation, ref: Reference, cfg: CoreConfig) -> None:
    views: set[tuple[tuple[str, str], ...]] = {()}
    for row in ref.backlog:
        views.update({(("team", row[0]),), (("channel", row[1]),), (("priority", row[2]),)})
    for view in views:
        labels = dict(view)
        rows = [r for r in ref.backlog if all(
            r[("team", "channel", "priority").index(k)] == v for k, v in labels.items())]
        assert ev.sample("gauge", "backlog_open", **labels) == len(rows)
        assert ev.sample("gauge", "backlog_unassigned", **labels) == sum(r[4] for r in rows)
        unanswered = [r for r in rows if r[5]]
        assert ev.sample("gauge", "backlog_unanswered", **labels) == len(unanswered)
        oldest = max((r[3] for r in unanswered), default=0) / 1000.0
        assert ev.sample("gauge", "oldest_unanswered_age_seconds", **labels) == oldest
        breached = sum(1 for r in unanswered if r[3] > r[6])
        assert ev.sample("gauge", "frt_breached_unanswered", **labels) == breached
        for f in cfg.at_risk_fractions:
            n = sum(1 for r in unanswered if f * r[6] <= r[3] <= r[6])
            assert ev.sample("gauge", "frt_at_risk", **labels, threshold=f"{f:g}") == n
        # The breach forecast, as its statement: the largest N(s) - pace x s over the
        # tickets' own slacks s, N(s) = waiting tickets (past `forecast_from_fraction` of
        # their target, not yet breached) due within s, pace = first replies
        # of the view per millisecond (counted from the facts) over the shortest span of
        # `forecast_pace_ms` in which the view's replies of the shortest KPI window expect
        # at least `forecast_pace_evidence`, else over the longest span; but 0 when the
        # view sent none in its last g whole slices (g up to the longest span) and the
        # chance of that, given its n replies of the silence's reference span R spread
        # alike over R, (1 - g/R)^n, is at most exp(-forecast_silence_evidence).
        def replies_in(w: int, labels: dict[str, str] = labels) -> int:
            return sum(1 for f in ref.facts if f.kind == "frt" and in_window(
                f.ts, ref.at_ms, w, cfg) and all(getattr(f, k) == v for k, v in labels.items()))

        usual = min(cfg.windows_ms)
        fit = [s for s in cfg.forecast_pace_ms
               if replies_in(usual) * s >= cfg.forecast_pace_evidence * usual]
        w = min(fit) if fit and min(fit) < max(cfg.forecast_pace_ms) else max(cfg.forecast_pace_ms)
        replies = replies_in(w)
        reach = max(cfg.forecast_pace_ms) // cfg.slice_ms
        g = max(k for k in range(reach + 1) if replies_in(k * cfg.slice_ms) == 0)
        chance = (1 - g * cfg.slice_ms / cfg.forecast_silence_reference_ms) ** replies_in(
            cfg.forecast_silence_reference_ms)
        if g and chance <= math.exp(-cfg.forecast_silence_evidence):
            replies = 0
        slacks = [r[6] - r[3] for r in unanswered
                  if cfg.forecast_from_fraction * r[6] <= r[3] <= r[6]]
        bound = max([sum(1 for x in slacks if x <= s) - replies / w * s for s in slacks] + [0.0])
        got = ev.sample("gauge", "frt_forecast_breaches", **labels)
        assert got is not None and abs(got - bound) <= 1e-3 + 1e-9, (labels, got, bound)


def check_surveys(ev: Evaluation, ref: Reference, cfg: CoreConfig) -> None:
    dims = ("team", "channel", "agent", "touchpoint")
    for w in cfg.windows_ms:
        wl = window_label(w)
        rows = [r for r in ref.surveys if in_window(r[0].ts, ref.at_ms, w, cfg)]
        for kind in SurveyKind:
            kind_rows = [r for r in rows if r[0].survey is kind]
            views: set[tuple[tuple[str, str], ...]] = {()}
            views.update(((d, str(r[1 + i])),) for r in kind_rows for i, d in enumerate(dims))
            for view in views:
                labels = dict(view)
                scores = [r[0].score for r in kind_rows
                          if all(r[1 + dims.index(k)] == v for k, v in labels.items())]
                n = len(scores)
                name = kind.value
                got = ev.kpi(name, wl, **labels)
                assert got.n == n
                assert got.below_min_sample == (n < cfg.min_sample)
                if kind is SurveyKind.NPS:
                    prom = sum(1 for s in scores if s >= 9)
                    det = sum(1 for s in scores if s <= 6)
                    assert close(got.value, 100.0 * (prom - det) / n if n else None)
                else:
                    good = sum(1 for s in scores if s >= (4 if kind is SurveyKind.CSAT else 5))
                    assert got.value == (good / n if n else None)
                    mean = ev.kpi(f"{name}_mean", wl, **labels).value
                    assert mean == (sum(scores) / n if n else None)
                if n:
                    assert got.ci_low is not None and got.ci_high is not None
                    assert got.ci_low <= got.value <= got.ci_high  # type: ignore[operator]


def drain_into(store: dict[str, bytes], eng: PartitionEngine) -> None:
    for k, v in eng.drain_dirty().items():
        if v is None:
            store.pop(k, None)
        else:
            store[k] = v


def test_breach_forecast_pace_is_over_the_span_the_team_s_volume_supports() -> None:
    """A team that sent 30 first replies in 9 min and then none for 5 min, with 6 tickets
    waiting: its 15 min pace expects 10 replies in 5 min, so the pace is that of the last
    5 min (nothing: all 6 forecast to breach), not that of 10 min (13 replies: none).
    The gauge is checked against the reference's statement (a pace from any other span
    fails it)."""
    events: list[Event] = []
    for i in range(30):
        t0 = BASE + 15 * MIN + i * 18_000
        events += [TicketCreated(f"F-{i}-c", t0, f"F-{i}", "tech", "email"),
                   TicketMessage(f"F-{i}-r", t0 + MIN, f"F-{i}", Author.AGENT, "a-1")]
    events += [TicketCreated(f"W-{i}-c", BASE + (20 + i // 2) * MIN, f"W-{i}", "tech", "email")
               for i in range(6)]
    events.append(TicketCreated("now", BASE + 30 * MIN, "N-1", "billing", "chat"))
    arrived = [(role_of(e), e) for e in sorted(events, key=lambda e: e.ts)]
    engine = PartitionEngine(CFG, 0)
    for role, e in arrived:
        engine.apply(role, e)
    ev = evaluate([engine])
    check_backlog(ev, reference(arrived, CFG, 1), CFG)
    assert ev.sample("gauge", "frt_forecast_breaches", team="tech") == 6


def _silence_history(now_min: int) -> list[tuple[str, Event]]:
    """Tech answered 2 tickets a minute for an hour (each after 1 min), then none; 6
    tickets arrive from minute 61, 30 s apart; `now_min`: a billing ticket sets the time."""
    events: list[Event] = []
    for i in range(120):
        t0 = BASE + i * 30_000
        events += [TicketCreated(f"S-{i}-c", t0, f"S-{i}", "tech", "email"),
                   TicketMessage(f"S-{i}-r", t0 + MIN, f"S-{i}", Author.AGENT, "a-1")]
    events += [TicketCreated(f"W-{i}-c", BASE + 61 * MIN + i * 30_000, f"W-{i}", "tech",
                             "email") for i in range(6)]
    events.append(TicketCreated("now", BASE + now_min * MIN, "N-1", "billing", "chat"))
    return [(role_of(e), e) for e in sorted(events, key=lambda e: e.ts)]


def test_breach_forecast_pace_is_0_once_the_team_s_silence_is_evidence() -> None:
    """At minute 67 the team has been silent about 6 min, with 6 tickets waiting (5 past a
    quarter of their target): its 10 min pace (7 replies) reaches all of them in time, but
    ~108 replies of the hour all in its first 54 min have a chance of 0.9^108 (e^-11) for a
    team still answering, so the pace is 0 and the 5 are forecast to breach. Checked
    against the reference's statement (a pace that ignores the silence fails it: the gauge
    would be 0)."""
    arrived = _silence_history(67)
    engine = PartitionEngine(CFG, 0)
    for role, e in arrived:
        engine.apply(role, e)
    ev = evaluate([engine])
    check_backlog(ev, reference(arrived, CFG, 1), CFG)
    assert ev.sample("gauge", "frt_forecast_breaches", team="tech") == 5


def test_breach_forecast_silence_against_reference_minute_by_minute() -> None:
    """The same team minute by minute from its last reply, for silence evidence asked from
    0.5 to 16 nats: wherever the chance of its silence crosses the bar (a silence counted
    one slice too long or too short, or the bar misread, moves the crossing), the gauge
    is the reference's statement; both outcomes occur."""
    seen = set()
    for now in range(61, 72):
        arrived = _silence_history(now)
        for bar in [0.5 + 0.75 * k for k in range(21)]:
            cfg = replace(CFG, forecast_silence_evidence=bar)
            engine = PartitionEngine(cfg, 0)
            for role, e in arrived:
                engine.apply(role, e)
            ev = evaluate([engine])
            check_backlog(ev, reference(arrived, cfg, 1), cfg)
            seen.add(ev.sample("gauge", "frt_forecast_breaches", team="tech") or 0.0)
    assert 0.0 in seen and max(seen) >= 5


@pytest.mark.parametrize(("bar", "reference_ms"), [
    (0.0, 3_600_000),
    (8.0, 600_000),  # not longer than the longest pace span
    (8.0, 3_630_000),  # not whole slices
    (8.0, 8 * 86_400_000),  # past the retention
])
def test_forecast_silence_settings_are_checked(bar: float, reference_ms: int) -> None:
    """A reference span no longer than the silence read would put ln(0) in the chance;
    one past the retention would count replies the stores no longer hold."""
    with pytest.raises(ValueError, match="forecast_silence"):
        replace(CFG, forecast_silence_evidence=bar, forecast_silence_reference_ms=reference_ms)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals(), st.integers(1, 3),
       st.sampled_from([(60_000,), (600_000, 3_600_000), (120_000, 900_000),
                        (300_000, 600_000, 900_000)]),
       st.integers(1, 3), st.sampled_from([0.3, 0.7, 1.3, 2.9]),
       st.sampled_from([MIN, 50 * MIN]), st.data())
def test_breach_forecast_pace_over_any_spans_matches_reference(
    events: list[tuple[str, Event]], partitions: int, spans: tuple[int, ...], evidence: int,
    silence: float, beyond: int, data: st.DataObject,
) -> None:
    """The forecast's pace spans may be KPI windows (their views are reused: 15 min, 1 h)
    or not (the stores keep their views: 1, 2 min), one or several, with little evidence
    asked (so that the short spans are chosen on these small histories), and the silence
    that zeroes the pace asks little evidence too over a reference span just past the
    longest pace span or well past it (so that it is met on these histories): the gauge
    is the reference's statement either way, mid-stream too."""
    if not events:
        return
    cfg = replace(CFG, forecast_pace_ms=spans, forecast_pace_evidence=evidence,
                  forecast_silence_evidence=silence,
                  forecast_silence_reference_ms=max(spans) + beyond)
    engines = [PartitionEngine(cfg, p) for p in range(partitions)]
    cuts = set(data.draw(st.lists(st.integers(1, len(events)), max_size=3)))
    for i, (role, e) in enumerate(events):
        engines[partition_for(e.ticket_id or e.event_id, partitions)].apply(role, e)
        if i + 1 in cuts:
            check_backlog(evaluate(engines), reference(events[: i + 1], cfg, partitions), cfg)
    check_backlog(evaluate(engines), reference(events, cfg, partitions), cfg)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals(), st.integers(1, 3), st.data())
def test_engine_matches_reference(
    events: list[tuple[str, Event]], partitions: int, data: st.DataObject
) -> None:
    if not events:
        return
    engines = [PartitionEngine(CFG, p) for p in range(partitions)]
    stores: list[dict[str, bytes]] = [{} for _ in range(partitions)]
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(events)), max_size=3))))
    for i, (role, e) in enumerate(events):
        p = partition_for(e.ticket_id or e.event_id, partitions)
        engines[p].apply(role, e)
        if i + 1 in cuts:
            # Mid-stream: ticket KPIs and backlog must already agree (exercises the
            # window caches advancing), and state must survive a restore.
            ev = evaluate(engines)
            ref = reference(events[: i + 1], CFG, partitions)
            check_tickets(ev, ref, CFG)
            check_backlog(ev, ref, CFG)
            for q in range(partitions):
                drain_into(stores[q], engines[q])
                back = PartitionEngine.restore(CFG, q, stores[q].items())
                assert evaluate([back]) == evaluate([engines[q]])
                engines[q] = back
    for eng in engines:
        eng.end_of_stream()
    ev = evaluate(engines)
    ref = reference(events, CFG, partitions)
    assert all(eng.dropped_contributions == 0 for eng in engines)
    check_tickets(ev, ref, CFG)
    check_backlog(ev, ref, CFG)
    check_surveys(ev, ref, CFG)
    applied = ev.sample("counter", "events_total", role=SURVEYS, outcome="applied")
    assert applied == len(ref.surveys)
    total = sum(ev.sample("counter", "events_total", role=r, outcome=o)
                for r in (TICKETS, SURVEYS) for o in ("applied", "duplicate", "late"))
    assert total == len(events)
    assert ev.sample("counter", "events_total", role=TICKETS, outcome="late") == 0
    # Restore from everything drained gives the same evaluation.
    for q in range(partitions):
        drain_into(stores[q], engines[q])
    restored = [PartitionEngine.restore(CFG, q, stores[q].items()) for q in range(partitions)]
    assert evaluate(restored) == ev
    # Same events in plain sorted order: same KPIs (order-insensitivity).
    ordered = sorted(events, key=lambda x: (x[1].ts, x[1].event_id))
    again = [PartitionEngine(CFG, p) for p in range(partitions)]
    for role, e in ordered:
        again[partition_for(e.ticket_id or e.event_id, partitions)].apply(role, e)
    for eng in again:
        eng.end_of_stream()
    ev2 = evaluate(again)
    assert ev2.kpis == ev.kpis
    assert math.isfinite(sum(k.value or 0.0 for k in ev.kpis))
