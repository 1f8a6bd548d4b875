"""An incremental evaluation equals a full one, at every step.

The exporter evaluates its replicas with an `Incremental` (windows moved by the
slices that changed, KPI values recomputed only for the views touched). These
tests drive replicas through simulated days and generated histories, as the
exporter sees them (committed values applied batch by batch), and at every step
require `evaluate(replicas, at, incremental)` to be *equal* (dataclass equality:
every KPI, gauge, counter, histogram) to `evaluate(replicas, at)`, the full
evaluation: at the stream time, and with time moving on without new state
(windows sliding, deadlines passing) and back.
"""

from __future__ import annotations

from collections import Counter

import pytest
from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode
from cxpulse.core.engine import PartitionEngine
from cxpulse.core.evaluation import evaluate
from cxpulse.core.evaluation.caps import Caps, cap_view, merge_into
from cxpulse.core.evaluation.evaluate import slice_replies
from cxpulse.core.evaluation.incremental import Incremental, same
from cxpulse.core.events import Event, role_of
from cxpulse.core.partitioning import partition_for
from cxpulse.core.replica import PartitionReplica
from cxpulse.core.sketch import LogMapping
from cxpulse.core.slices import (
    CREATED,
    F_FRT,
    F_RESOLUTION,
    F_WAIT,
    FRT,
    N_COUNTS,
    N_SURVEY_SLOTS,
    SOLVES,
    AgentAgg,
    AggContext,
    Key,
    SurveyAgg,
    TicketAgg,
)
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.core_helpers import at, created, msg
from tests.unit.test_core_reference import arrivals
from tests.unit.test_core_replica import feed

CFG = CoreConfig()
HOUR = 3_600_000


def same_both_ways(replicas: list[PartitionReplica], inc: Incremental, at: int | None) -> int:
    """Incremental and full evaluations at `at` are equal; the number of KPI values."""
    full = evaluate(replicas, at)
    assert evaluate(replicas, at, inc) == full
    return len(full.kpis)


def test_incremental_equals_full_through_a_simulated_day() -> None:
    """Every batch of a day and a quarter (sealing, eviction, expiry, tombstones, labels
    entering and leaving the top-N): evaluated at the stream time after each, and every
    tenth time also later (the clock moving without new state) and back."""
    sim = SimConfig(seed=3, duration_ms=30 * HOUR, tickets_per_day=1200,
                    duplicates=0.03, disorder_s=120)  # fmt: skip
    cfg = CoreConfig(top_n={"team": 3, "channel": 2, "agent": 8, "touchpoint": 2})
    partitions = 3
    engines = [PartitionEngine(cfg, p) for p in range(partitions)]
    replicas = [PartitionReplica(cfg, p) for p in range(partitions)]
    inc = Incremental()
    steps = kpis = 0
    for n, rec in enumerate(generate(sim)):
        e = decode(rec.value)
        if isinstance(e, Rejection):
            continue
        engines[partition_for(e.ticket_id or e.event_id, partitions)].apply(role_of(e), e)
        if n % 173:
            continue
        for eng, rep in zip(engines, replicas, strict=True):
            feed(rep, eng)
        kpis += same_both_ways(replicas, inc, None)
        steps += 1
        if steps % 10 == 0:
            at = evaluate(replicas).at_ms
            assert at is not None
            for dt in (20_000, 7 * 60_000, 2 * HOUR, 8 * 24 * HOUR, 0):  # 8 d: all expired
                same_both_ways(replicas, inc, at + dt)
    for eng, rep in zip(engines, replicas, strict=True):
        feed(rep, eng)
    same_both_ways(replicas, inc, None)
    assert steps > 50 and kpis > 0
    for rep in replicas:  # what the evaluation counted let go of its labels
        held = {v for t in rep.open_tickets(0) for v in (t.team, t.channel, t.priority, t.assignee)}
        assert len(rep._labels) == len(held)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals(), st.integers(1, 3), st.data())
def test_incremental_equals_full_on_generated_histories(
    events: list[tuple[str, Event]], partitions: int, data: st.DataObject
) -> None:
    """Disorder, retractions and duplicates, committed in arbitrary batches."""
    engines = [PartitionEngine(CFG, p) for p in range(partitions)]
    replicas = [PartitionReplica(CFG, p) for p in range(partitions)]
    inc = Incremental()
    cuts = set(data.draw(st.lists(st.integers(1, max(1, len(events))), max_size=6)))
    for i, (role, e) in enumerate(events):
        engines[partition_for(e.ticket_id or e.event_id, partitions)].apply(role, e)
        if i + 1 in cuts:
            for eng, rep in zip(engines, replicas, strict=True):
                feed(rep, eng)
            same_both_ways(replicas, inc, None)
    for eng, rep in zip(engines, replicas, strict=True):
        feed(rep, eng)
    at = evaluate(replicas).at_ms
    if at is not None:
        for dt in (0, 60_000, 20 * 60_000, 0):
            same_both_ways(replicas, inc, at + dt)


def test_an_engine_is_refused() -> None:
    """An engine changes its slices in place: what changed could not be seen."""
    with pytest.raises(TypeError):
        evaluate([PartitionEngine(CFG, 0)], 0, Incremental())


def test_an_agent_who_becomes_active_changes_the_all_and_team_views() -> None:
    """A second agent's public reply on an answered ticket changes no ticket aggregate,
    only the agents' store: the active agents of all teams and of the team still move.
    (a2 answered another team an hour before: a new label value would change the caps,
    and every view would be recomputed anyway.)"""
    engines, replicas = [PartitionEngine(CFG, 0)], [PartitionReplica(CFG, 0)]
    inc = Incremental()
    first: list[Event] = [
        created("T-0", "09:00:00", team="tech"), msg("T-0", "09:01:00", agent="a2"),
        created("T-1", "10:00:00"), msg("T-1", "10:01:00", agent="a1"),
    ]  # fmt: skip
    for e in first:
        engines[0].apply(role_of(e), e)
    feed(replicas[0], engines[0])
    same_both_ways(replicas, inc, at("10:05:00"))
    more = msg("T-1", "10:06:00", agent="a2")
    engines[0].apply(role_of(more), more)
    feed(replicas[0], engines[0])
    ev = evaluate(replicas, at("10:07:00"), inc)
    assert ev == evaluate(replicas, at("10:07:00"))
    assert ev.kpi("active_agents", "15m").value == 2
    assert ev.kpi("active_agents", "15m", team="billing").value == 2


def _agg(frt_ms: tuple[int, ...]) -> TicketAgg:
    nb = len(CFG.histogram_buckets_ms) + 1
    a = TicketAgg(nb)
    ctx = AggContext(LogMapping(CFG.sketch_relative_accuracy), tuple(CFG.histogram_buckets_ms))
    a.add(CREATED, 1, 1, ctx)
    for v in frt_ms:
        a.add(F_FRT, v, 1, ctx)
    return a


def test_same_compares_every_part_of_an_aggregate() -> None:
    """A slice rewritten with equal content is skipped; any difference is folded."""
    assert same(_agg((60_000,)), _agg((60_000,)))
    assert not same(_agg((60_000,)), _agg((60_001,)))  # the total only (same buckets)
    assert not same(_agg((60_000,)), _agg(()))  # n
    assert not same(_agg((60_000, 60_000)), _agg((30_000, 90_000)))  # n, total equal
    assert not same(_agg((40_000, 50_000)), _agg((30_000, 60_000)))  # the sketch only
    emptied = _agg((60_000,))
    emptied.merge(_agg((60_000,)), -1)
    emptied.merge(_agg(()))  # counts back, its FRT dist now n = 0
    assert same(emptied, _agg(()))
    more = _agg(())
    more.counts[SOLVES] += 1
    assert not same(more, _agg(()))


_CTX = AggContext(LogMapping(CFG.sketch_relative_accuracy), tuple(CFG.histogram_buckets_ms))
#: (field, value): a count field (value 1-3) or a distribution's (a duration in ms)
_ADDS = st.lists(st.one_of(st.tuples(st.integers(0, N_COUNTS - 1), st.integers(1, 3)),
                           st.tuples(st.sampled_from((F_FRT, F_RESOLUTION, F_WAIT)),
                                     st.integers(0, 90_000))), max_size=12)  # fmt: skip


def _ticket_agg(adds: list[tuple[int, int]], ghosts: list[tuple[int, int]]) -> TicketAgg:
    """An aggregate of `adds`, and of `ghosts` added then retracted (emptied distributions
    that stay, with n = 0, as in a slice after a retraction)."""
    a = TicketAgg(len(CFG.histogram_buckets_ms) + 1)
    for field, value in adds + ghosts:
        a.add(field, value, 1, _CTX)
    for field, value in ghosts:
        a.add(field, value, -1, _CTX)
    return a


def _content(a: TicketAgg) -> list[object]:
    """Everything an aggregate holds, signed differences' zero-count distributions too."""
    return [a.counts, [None if d is None else
                       (d.n, d.total, d.hist, d.sketch and (d.sketch.zeros, d.sketch.bins))
                       for d in a.opt or ()]]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_ADDS, st.lists(st.tuples(_ADDS, _ADDS, _ADDS, _ADDS), min_size=1, max_size=4))
def test_merging_summed_signed_differences_equals_subtracting_old_and_adding_new(
    base: list[tuple[int, int]],
    keys: list[tuple[list[tuple[int, int]], list[tuple[int, int]],
                     list[tuple[int, int]], list[tuple[int, int]]]],
) -> None:
    """The changed keys of a slice that reach one view: their differences `new.minus(old)`
    summed (`absorb`, the first one copied as `delta` does) and merged into a window
    holding every `old` (the incremental windows' fold of a changed slice) leave what
    subtracting each `old` and adding each `new` leaves: every count, distribution,
    bucket and sketch bin, and the same emptiness; also when only a value moved (n
    equal, the total or a bucket not), with sums below zero, and with emptied
    distributions (`ghosts`: added then retracted)."""
    pairs = [(_ticket_agg(old, old_ghosts), _ticket_agg(new, new_ghosts))
             for old, new, old_ghosts, new_ghosts in keys]  # fmt: skip
    window = _ticket_agg(base, [])
    for o, _ in pairs:
        window.merge(o)
    twice = window.copy()
    for o, n in pairs:
        twice.merge(o, -1)
        twice.merge(n)
    diffs = [n.minus(o) for o, n in pairs]
    kept = [_content(d) for d in diffs]
    summed = diffs[0].copy()  # as `delta` does: copied once, then every other summed in
    for d in diffs[1:]:
        summed.absorb(d)
    summed.absorb(diffs[0].minus(diffs[0]))  # an all-zero difference changes nothing
    assert [_content(d) for d in diffs] == kept  # a sum shares nothing with its terms
    once = window.copy()
    once.merge(summed)
    assert same(once, twice) and once.is_empty() == twice.is_empty()
    assert once.to_json() == twice.to_json()
    for fa, fb in zip(once.dists, twice.dists, strict=True):  # sketches with no item too
        assert (fa.n, fa.total, fa.hist) == (fb.n, fb.total, fb.hist)
        assert fa.sketch is not None and fb.sketch is not None
        assert fa.sketch.to_json() == fb.sketch.to_json()
    for (o, n), (old, new, old_ghosts, new_ghosts) in zip(pairs, keys, strict=True):
        assert o.to_json() == _ticket_agg(old, old_ghosts).to_json()  # operands unchanged
        assert n.to_json() == _ticket_agg(new, new_ghosts).to_json()


@given(st.lists(st.integers(0, 5), min_size=2, max_size=2),
       st.lists(st.integers(0, 5), min_size=2, max_size=2),
       st.lists(st.integers(0, 5), min_size=N_SURVEY_SLOTS, max_size=N_SURVEY_SLOTS),
       st.lists(st.integers(0, 5), min_size=N_SURVEY_SLOTS, max_size=N_SURVEY_SLOTS))  # fmt: skip
def test_signed_difference_of_agent_and_survey_aggregates(
    old_a: list[int], new_a: list[int], old_s: list[int], new_s: list[int]
) -> None:
    """The same for the count-only aggregates, two keys' differences summed."""
    _check_count_difference(AgentAgg, old_a, new_a)
    _check_count_difference(SurveyAgg, old_s, new_s)


def _check_count_difference(
    cls: type[AgentAgg] | type[SurveyAgg], old: list[int], new: list[int]
) -> None:
    """Two keys moving from `old` to `new` counts: their summed signed differences,
    merged into a window holding both, leave it at twice `new`; operands unchanged."""
    before, after, window = cls(), cls(), cls()
    before.counts, after.counts, window.counts = list(old), list(new), [2 * c for c in old]
    summed = after.minus(before)  # type: ignore[arg-type]
    summed.absorb(after.minus(before))  # type: ignore[arg-type]
    window.merge(summed)  # type: ignore[arg-type]
    assert window.counts == [2 * c for c in new] and before.counts == old


def test_labels_admitted_later_recount_the_backlog() -> None:
    """A ticket read before the label guard that admits its team (values applied one by
    one, as a partial batch would be) counts under `other`; once the guard arrives, it
    counts under its team, though the ticket itself did not change."""
    eng, rep = PartitionEngine(CFG, 0), PartitionReplica(CFG, 0)
    inc = Incremental()
    for e in (created("T-1", "10:00:00", team="tech"), created("T-2", "10:00:30")):
        eng.apply(role_of(e), e)
    drained = eng.drain_dirty()
    assert "l" in drained
    for name, raw in drained.items():
        if name != "l":
            rep.apply(name, raw)
    same_both_ways([rep], inc, at("10:05:00"))
    rep.apply("l", drained["l"])
    ev = evaluate([rep], at("10:05:00"), inc)
    assert ev == evaluate([rep], at("10:05:00"))
    assert ev.sample("gauge", "backlog_open", team="tech") == 1


def test_slice_replies_are_a_one_slice_windows_first_replies() -> None:
    """The forecast silence's per-slice first replies, read from the slices' aggregates,
    equal the non-zero first replies of a one-slice window of the merged views (its
    former definition), for engines and replicas, every slice of a day that is still
    kept (and one before it), raw and under small top-N caps."""
    sim = SimConfig(seed=5, duration_ms=26 * HOUR, tickets_per_day=900,
                    duplicates=0.03, disorder_s=120)  # fmt: skip
    partitions = 2
    engines = [PartitionEngine(CFG, p) for p in range(partitions)]
    replicas = [PartitionReplica(CFG, p) for p in range(partitions)]
    for n, rec in enumerate(generate(sim)):
        e = decode(rec.value)
        if isinstance(e, Rejection):
            continue
        engines[partition_for(e.ticket_id or e.event_id, partitions)].apply(role_of(e), e)
        if n % 997 == 0:
            for eng, rep in zip(engines, replicas, strict=True):
                feed(rep, eng)
    for eng, rep in zip(engines, replicas, strict=True):
        feed(rep, eng)
    raw = Caps({})
    small = Caps({"team": {"billing": "billing"}, "channel": {"email": "email"}})
    starts = sorted({s for e in engines for s in e.tickets_store.slices})
    answered = 0
    for start in [starts[0] - CFG.slice_ms, *starts]:
        for caps in (raw, small):
            merged: dict[Key, TicketAgg] = {}
            for eng in engines:
                merge_into(merged, eng.tickets_store.window_views(CFG.slice_ms,
                                                                   start + CFG.slice_ms))
            expected = Counter({cap_view(v, caps): 0 for v in merged})
            for view, agg in merged.items():
                expected[cap_view(view, caps)] += agg.dists[FRT].n
            expected = Counter({v: n for v, n in expected.items() if n})
            assert slice_replies(engines, start, caps) == expected
            assert slice_replies(replicas, start, caps) == expected
            answered += bool(expected)
    assert answered > 100


def test_a_team_capped_otherwise_moves_other_though_its_tickets_did_not_change() -> None:
    """Top 1 team: billing (2 tickets) leads, tech (1) is `other`; then tech gets three
    more and leads. Billing's tickets did not change, yet `team="other"` is now billing's
    and must be recomputed (the caps moved it); tech's own views are touched anyway."""
    cfg = CoreConfig(top_n={"team": 1, "channel": 20, "agent": 200, "touchpoint": 20})
    eng, rep = PartitionEngine(cfg, 0), PartitionReplica(cfg, 0)
    inc = Incremental()

    def add(events: list[Event], clock: str) -> None:
        for e in events:
            eng.apply(role_of(e), e)
        feed(rep, eng)
        ev = evaluate([rep], at(clock), inc)
        assert ev == evaluate([rep], at(clock))

    add([created("T-1", "10:00:00"), created("T-2", "10:00:10"),
         created("T-3", "10:00:20", team="tech")], "10:05:00")  # fmt: skip
    add([created(f"T-{i}", "10:06:00", team="tech") for i in (4, 5, 6)], "10:07:00")
    ev = evaluate([rep], at("10:07:00"), inc)
    assert ev.kpi("tickets_created", "15m", team="other").value == 2
    assert ev.kpi("tickets_created", "15m", team="tech").value == 4


_AGENT_SLICE = st.dictionaries(
    st.tuples(st.sampled_from(("t1", "t2", "other")), st.sampled_from(("a1", "a2", "a3"))),
    # never all zero: a slice holds no empty aggregate (`_Window.fold` relies on it)
    st.lists(st.integers(0, 2), min_size=2, max_size=2).filter(any),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_AGENT_SLICE, min_size=1, max_size=6), st.data())
def test_kept_active_agents_are_those_a_scan_of_the_window_finds(
    slices: list[dict[tuple[str, str], list[int]]], data: st.DataObject
) -> None:
    """`ActiveAgents`, kept as an agents window folds slices in and out (views created,
    merged, emptied and deleted, an agent in several teams, a team named `other`), equals
    `active_agents` scanning the window's views, after every fold."""
    from cxpulse.core.engine.stores import slice_stores
    from cxpulse.core.evaluation.incremental import ActiveAgents, _Window, delta
    from cxpulse.core.evaluation.windows import active_agents
    from cxpulse.core.slices import AgentAgg

    views_of = slice_stores(CFG)[1].views_of
    contents: list[dict[Key, AgentAgg]] = []
    for sl in slices:
        content: dict[Key, AgentAgg] = {}
        for key, counts in sl.items():
            a = content[key] = AgentAgg()
            a.counts = list(counts)
        contents.append(content)
    win = _Window(HOUR, views_of, ActiveAgents())
    inside: list[int] = []
    for _ in range(3 * len(contents)):
        i = data.draw(st.integers(0, len(contents) - 1))
        if i in inside:
            inside.remove(i)
            win.fold(delta(views_of, contents[i], None))
        else:
            inside.append(i)
            win.fold(delta(views_of, None, contents[i]))
        assert win.active is not None
        agents, teams = active_agents(win.views)
        assert win.active.agents == agents and win.active.teams == teams
