"""Packed idle tickets (`CoreConfig.pack_idle_ms`) lose and change nothing.

The guard is an engine that never packs (an idle time beyond the test's span)
fed the same events: every slot of every ticket, every drained changelog value
and the evaluation must be the same, for tickets packed, packed and touched
again (an event appended, one out of order, a duplicate, a late one, a survey),
and restored from values written while tickets were packed.
"""

from __future__ import annotations

import dataclasses
from copy import copy
from random import Random
from typing import Any

from cxpulse.core.config import CoreConfig
from cxpulse.core.engine import PartitionEngine, evaluate
from cxpulse.core.events import (
    Author,
    Event,
    Status,
    StatusChanged,
    SurveyKind,
    SurveyOffered,
    SurveyResponse,
    TicketAssigned,
    TicketCreated,
    TicketEvent,
    TicketHandoff,
    TicketMessage,
    role_of,
)
from cxpulse.core.tickets import TicketState
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.core_helpers import assigned, at, created, live_tickets, msg, status
from tests.unit.test_core_incremental import slice_totals
from tests.unit.test_core_reference import BASE, survey, ticket_history

MIN = 60_000
NEVER = 10**13  # an idle time no test reaches: that engine never packs
#: A target per priority too: a packed ticket's deadline must come back with its own.
FAST = CoreConfig(pack_idle_ms=MIN, frt_target_by_priority={"high": 300_000})
SLOW = dataclasses.replace(FAST, pack_idle_ms=NEVER)


def _slots(obj: object) -> dict[str, Any]:
    """Every slot of `obj` (all classes of its MRO), a derivation's slots by value."""
    out: dict[str, Any] = {}
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name):
                value = getattr(obj, name)
                if name in ("view", "derivation") and value is not None:
                    value = (type(value), _slots(value))
                out[name] = value
    return out


def _ticket(state: TicketState) -> dict[str, Any]:
    """Everything a ticket holds; its events as decoded and as its changelog value,
    whichever of the two forms it keeps them in (a restore keeps them decoded)."""
    out = _slots(state)
    del out["enc"], out["n_enc"]
    out["events"] = state.event_list()
    out["value"] = copy(state).encoded()
    return out


def _feed(engines: list[PartitionEngine], events: list[Event]) -> None:
    for eng in engines:
        with eng.batch():
            for e in events:
                eng.apply(role_of(e), e)


def _packed(eng: PartitionEngine) -> set[str]:
    return {tid for tid, s in eng._tickets.items() if isinstance(s, bytes)}


def _shapes() -> list[Event]:
    """Tickets of every shape a pack must keep, from 09:00, all idle after 10:30."""
    bot = TicketCreated("bot-c", at("09:00:00"), "BOT", "tech", "chat", bot=True)
    events: list[Event] = [
        # answered, assigned, transferred, solved: timelines of two values each
        created("A", "09:00:00"), assigned("A", "09:01:00", "ann"),
        msg("A", "09:02:00", "customer"), msg("A", "09:05:00", agent="ann"),
        assigned("A", "09:06:00", "bob", team="tech"), status("A", "09:07:00", "solved"),
        # never answered: its FRT breach (the tail) after 09:15
        created("B", "09:00:30", priority="high"), msg("B", "09:01:00", "customer"),
        # a bot's ticket handed off, then answered
        bot, TicketHandoff("bot-h", at("09:03:00"), "BOT"), msg("BOT", "09:04:00", agent="cy"),
        # no creation: no slice key, only timelines
        assigned("NC", "09:02:00", "dee"), msg("NC", "09:03:00", "customer"),
        # agent-created, pending
        created("P", "09:04:00", by="agent"), status("P", "09:05:00", "pending"),
        # reopened, and a private note
        created("R", "09:05:00"), msg("R", "09:06:00", agent="ann"),
        status("R", "09:07:00", "solved"), status("R", "09:08:00", "open"),
        msg("R", "09:09:00", agent="ann", public=False),
    ]  # fmt: skip
    return sorted(events, key=lambda e: e.ts)  # in time order: none is late


def test_every_field_of_a_packed_ticket_comes_back() -> None:
    fast, never = PartitionEngine(FAST, 0), PartitionEngine(SLOW, 0)
    _feed([fast, never], _shapes())
    # a late event (its ticket is never packed: its derivation is not kept), then an
    # hour and a half later one more ticket: the stream time leaves the others idle
    late = msg("L", "09:03:00", "customer")
    _feed([fast, never], [created("L", "09:10:00"), late, created("Z", "10:40:00")])
    assert fast.drain_dirty() == never.drain_dirty()
    assert _packed(fast) == {"A", "B", "BOT", "NC", "P", "R"}
    assert _packed(never) == set()
    assert fast.ticket("B") is not None  # B's breach is in its tail: kept
    for tid, state in live_tickets(never).items():
        assert _ticket(live_tickets(fast)[tid]) == _ticket(state), tid
    assert evaluate([fast]) == evaluate([never])


def test_a_ticket_packed_then_touched_changes_as_if_never_packed() -> None:
    fast, never = PartitionEngine(FAST, 0), PartitionEngine(SLOW, 0)
    shapes = _shapes()
    _feed([fast, never], shapes)
    _feed([fast, never], [created("Z", "10:40:00")])
    fast.drain_dirty(), never.drain_dirty()
    assert _packed(fast) == {"A", "B", "BOT", "NC", "P", "R"}
    touches: list[list[Event]] = [
        [msg("A", "10:41:00", "customer")],  # appended: resumes the unpacked derivation
        [msg("B", "10:39:00", agent="ann")],  # out of order (within lateness): re-derived
        [next(e for e in shapes if e.ticket_id == "A")],  # a duplicate: nothing changes
        [msg("P", "10:20:00", "customer")],  # late: P keeps late events from now on
        [SurveyResponse("s-1", at("10:42:00"), SurveyKind.CSAT, 5, ticket_id="R")],
        [status("NC", "10:43:00", "closed"), created("Y", "13:00:00")],  # all idle again
        [msg("BOT", "13:01:00", "customer"), status("R", "13:02:00", "closed")],
    ]
    for batch in touches:
        _feed([fast, never], batch)
        assert fast.drain_dirty() == never.drain_dirty()
        assert evaluate([fast]) == evaluate([never])
        for tid, state in live_tickets(never).items():
            assert _ticket(live_tickets(fast)[tid]) == _ticket(state), tid
    assert fast._tombs == never._tombs
    assert fast.dropped_contributions == 0


def test_a_packed_tickets_json_comes_back_byte_for_byte_whatever_its_strings_hold() -> None:
    """A packed ticket writes its event times' shared leading digits once
    (`tickets._times_prefix`): strings that hold those digits after a comma, or
    the byte standing for them, must come back as they were, in its changelog
    value while packed and once unpacked; so must a time in another block."""
    prefix = "," + str(at("09:00:00"))[:6]
    odd = f"x{prefix}{prefix}\x01{prefix[1:]}"
    events: list[Event] = [
        TicketCreated("q-c", at("09:00:00"), "Q", f"t{prefix}", "email", customer_id=odd),
        assigned("Q", "09:01:00", f"a{prefix}\x01", team=odd),
        TicketMessage(f"q{prefix}", at("09:02:00"), "Q", Author.CUSTOMER),
        msg("Q", "12:05:00", agent=odd),  # another 2.8-hour block than 09:00
    ]
    fast, never = PartitionEngine(FAST, 0), PartitionEngine(SLOW, 0)
    _feed([fast, never], events)
    fast.drain_dirty(), never.drain_dirty()
    value = never.ticket("Q").encoded()  # type: ignore[union-attr]
    _feed([fast, never], [created("Z", "13:00:00")])
    assert _packed(fast) == {"Q"}
    fast._dirty.add("t:Q")  # as after a restore: its value written from the packed bytes
    assert fast.drain_dirty()["t:Q"] == value
    unpacked = fast.ticket("Q")
    assert unpacked is not None and copy(unpacked).encoded() == value
    assert _ticket(unpacked) == _ticket(never.ticket("Q"))  # type: ignore[arg-type]


def _day(seed: int) -> list[Event]:
    """Tickets over 8 hours, some touched again hours later, 20 % of events out of
    order by up to 3 min, 2 % late by up to 20 min, 3 % delivered twice."""
    rng = Random(seed)
    t0 = at("08:00:00")
    timed: list[tuple[int, int, Event]] = []
    teams, agents = ("billing", "tech"), ("ann", "bob", "cy")
    for i in range(120):
        tid, t = f"T{i}", t0 + rng.randrange(8 * 60) * MIN
        evs: list[Event] = [TicketCreated(f"{tid}-c", t, tid, rng.choice(teams), "email")]
        for j in range(rng.randrange(1, 6)):
            t += rng.choice((1, 5, 30, 90, 200)) * MIN
            eid, kind, agent = f"{tid}-{j}", rng.randrange(4), rng.choice(agents)
            if kind == 0:
                evs.append(TicketAssigned(eid, t, tid, agent, rng.choice(teams)))
            elif kind == 1:
                author = rng.choice((Author.CUSTOMER, Author.AGENT))
                evs.append(TicketMessage(eid, t, tid, author, agent))
            else:
                new = rng.choice((Status.SOLVED, Status.OPEN, Status.PENDING))
                evs.append(StatusChanged(eid, t, tid, new))
        for e in evs:
            r = rng.random()
            delay = (
                rng.randrange(20 * MIN) if r < 0.02 else rng.randrange(3 * MIN) if r < 0.22 else 0
            )
            for _ in range(2 if rng.random() < 0.03 else 1):
                timed.append((e.ts + delay, len(timed), e))
    timed.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in timed]


def test_restored_from_values_written_while_packed_and_every_batch_the_same() -> None:
    fast, never = PartitionEngine(FAST, 0), PartitionEngine(SLOW, 0)
    latest: dict[str, bytes] = {}
    events = _day(1)
    packed_seen, restores = 0, 0
    for b, start in enumerate(range(0, len(events), 25)):
        batch = events[start : start + 25]
        _feed([fast, never], batch)
        drained = fast.drain_dirty()
        assert drained == never.drain_dirty(), b
        for key, value in drained.items():
            if value is None:
                latest.pop(key, None)
            else:
                latest[key] = value
        packed_seen = max(packed_seen, len(_packed(fast)))
        if b % 3 == 2 and _packed(fast):
            fast = PartitionEngine.restore(FAST, 0, latest.items())  # lost its local store
            restores += 1
    assert packed_seen > 20 and restores >= 3  # the test exercised what it is about
    assert evaluate([fast]) == evaluate([never])
    for tid, state in live_tickets(never).items():
        assert _ticket(live_tickets(fast)[tid]) == _ticket(state), tid
    assert fast.dropped_contributions == never.dropped_contributions == 0


# --- review: generated histories, packing after 1 ms vs never, batches, restores ---


def _conflicting(e: TicketEvent, shift: int) -> TicketEvent:
    """Another copy of `e` (same event_id) with different content: a conflict."""
    return dataclasses.replace(e, ts=e.ts + shift)


@st.composite
def _disordered(draw: st.DrawFn) -> list[tuple[str, Event]]:
    """Tickets and surveys: in order, shuffled within minutes, an hour late, exact
    and conflicting copies; tickets touched again long after they went idle."""
    n = draw(st.integers(1, 5))
    events: list[Event] = []
    for k in range(n):
        for e in draw(ticket_history(k)):
            if type(e) is TicketCreated and draw(st.integers(0, 3)) == 0:
                # a bot's ticket: no FRT clock until its handoff (if any)
                e = dataclasses.replace(e, bot=True)
                if draw(st.booleans()):
                    h = e.ts + draw(st.integers(0, 40 * MIN))
                    events.append(TicketHandoff(f"{e.ticket_id}-h", h, e.ticket_id))
            events.append(e)
    events.extend(draw(survey(i, n)) for i in range(draw(st.integers(0, 5))))
    for i in range(draw(st.integers(0, 2))):
        t = draw(st.sampled_from([None, *[f"T-{k}" for k in range(n)]]))
        o_ts = BASE + draw(st.integers(0, 200 * MIN))
        events.append(SurveyOffered(f"O-{i}", o_ts, SurveyKind.CSAT, ticket_id=t))
    events.sort(key=lambda e: e.ts)
    copies: list[Event] = []
    for e in events:
        r = draw(st.integers(0, 19))
        if r == 0:
            copies.append(e)
        elif r == 1 and isinstance(e, TicketEvent):
            copies.append(_conflicting(e, draw(st.integers(-3 * MIN, 3 * MIN))))
    keyed = []
    for seq, e in enumerate(events + copies):
        r = draw(st.integers(0, 9))
        delay = 0 if r < 6 else draw(st.integers(0, 4 * MIN)) if r < 9 else 60 * MIN
        keyed.append((e.ts + delay, seq, e))
    keyed.sort(key=lambda x: (x[0], x[1]))
    out = [(role_of(e), e) for _, _, e in keyed]
    if draw(st.booleans()):
        # a week later (beyond retention): every ticket expires, packed or not, and
        # its stragglers and surveys meet the tombstone; inserted anywhere
        # (`ticket_history` may draw no event at all for every ticket: then from BASE)
        far = max((e.ts for e in events), default=BASE) + CoreConfig().retention_ms + 6 * 60 * MIN
        jump: list[Event] = [TicketCreated("far-c", far, "far", "billing", "email")]
        for k in range(n):
            jump.append(TicketMessage(f"T-{k}-far", far + k, f"T-{k}", Author.CUSTOMER))
            jump.append(SurveyResponse(f"S-far-{k}", far + k, SurveyKind.CSAT, 4, f"T-{k}"))
        at_ = draw(st.integers(0, len(out)))
        out[at_:at_] = [(role_of(e), e) for e in jump]
    return out


def _compare(ref: PartitionEngine, eng: PartitionEngine) -> None:
    """Everything a KPI or a changelog value is made of, without unpacking `eng`."""
    assert evaluate([eng]) == evaluate([ref])
    assert eng._tickets.keys() == ref._tickets.keys()
    assert eng._tombs == ref._tombs
    assert slice_totals(eng) == slice_totals(ref)
    assert {k: a.to_json() for k, a in eng.cumulative_tickets().items()} == {
        k: a.to_json() for k, a in ref.cumulative_tickets().items()
    }
    assert eng._outcomes == ref._outcomes
    assert eng.duplicate_conflicts == ref.duplicate_conflicts
    assert eng.dropped_contributions == ref.dropped_contributions == 0
    assert eng.guard.seen == ref.guard.seen  # an unpack admits nothing (`peek`)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _disordered(),
    st.sampled_from([5 * MIN, 30 * MIN]),
    st.sampled_from([1, 2, 10_000]),
    st.sampled_from([1, MIN, NEVER]),
    st.booleans(),
    st.sampled_from([4, 1000]),
    st.booleans(),
    st.data(),
)
def test_generated_histories_packed_batched_restored_equal_one_at_a_time(
    events: list[tuple[str, Event]],
    lateness: int,
    max_labels: int,
    idle: int,
    restore: bool,
    max_events: int,
    batched: bool,
    data: st.DataObject,
) -> None:
    """The reference never packs; the other engine packs after `idle` and (if
    `restore`) is rebuilt from its drained values at every batch boundary. Both
    apply the same batches (if `batched`: deferred re-derivation, else one event
    at a time): batches against one event at a time is test_core_deferred's
    comparison, which has a known difference of the label guard (its
    `test_a_value_only_an_eager_intermediate_derivation_admitted_...`) that
    would blur this one."""
    base = CoreConfig(
        lateness_ms=lateness, max_label_values=max_labels, max_events_per_ticket=max_events
    )
    ref = PartitionEngine(dataclasses.replace(base, pack_idle_ms=NEVER), 0)
    cfg = dataclasses.replace(base, pack_idle_ms=idle)
    eng = PartitionEngine(cfg, 0)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(events))), max_size=5))))
    latest: dict[str, bytes] = {}
    start = 0
    for cut in [*cuts, len(events)]:
        if batched:
            eng.begin_batch()
            ref.begin_batch()
        for role, e in events[start:cut]:
            assert eng.apply(role, e) == ref.apply(role, e)
        if batched:
            eng.end_batch()
            ref.end_batch()
        start = cut
        _compare(ref, eng)
        got = eng.drain_dirty()
        assert got == ref.drain_dirty()
        for key, value in got.items():
            if value is None:
                latest.pop(key, None)
            else:
                latest[key] = value
        if restore:
            eng = PartitionEngine.restore(cfg, 0, latest.items())
            _compare(ref, eng)
    for e2 in (eng, ref):
        e2.end_of_stream()
    _compare(ref, eng)
    for tid, state in live_tickets(ref).items():
        # `pushed` (a deadline's heap entry) outlives an answered deadline; a restore
        # starts without the stale value: bookkeeping, not a result (`pending` is)
        mine, theirs = _ticket(live_tickets(eng)[tid]), _ticket(state)
        del mine["pushed"], theirs["pushed"]
        assert mine == theirs, tid
