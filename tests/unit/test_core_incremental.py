"""The engine's shortcuts must be invisible: resuming a ticket's derivation and
re-using its encoded events give exactly what deriving and encoding from
scratch give.

`PartitionEngine` resumes a ticket's `Derivation` when an event sorts after all
the ticket's others (most events on a busy day) and re-derives it from all its
events otherwise. After every single event, each live ticket must hold what a
from-scratch `derive` of its events gives (view, applied contributions, pending
deadline), and the slice aggregates must hold the sum of those contributions.
"""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext

from cxpulse.core.config import CoreConfig
from cxpulse.core.dimensions import LabelGuard
from cxpulse.core.engine import PartitionEngine
from cxpulse.core.engine.snapshot import _dumps
from cxpulse.core.events import (
    Event,
    TicketCreated,
    TicketEvent,
    event_order,
    role_of,
)
from cxpulse.core.tickets import (
    APPLIED,
    TICKET_STORE,
    Contribution,
    Derivation,
    DeriveParams,
    TicketState,
    derive,
    derive_all,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.core_helpers import assigned, created, live_tickets, msg, status
from tests.unit.test_core_reference import MIN, ticket_history


def expected(
    eng: PartitionEngine, state: TicketState
) -> tuple[object, list[Contribution], int | None]:
    """What the engine held before derivations were resumable: a full derive."""
    st = eng.stream_time("tickets")
    admit = eng.guard.admit
    if state.late:
        view, _, _ = derive(state.event_list(), eng._params, st, None)
        ontime = [e for e in state.event_list() if e.event_id not in state.late]
        _, contribs, pending = derive(ontime, eng._params, st, admit)
        return view, contribs, pending
    return derive(state.event_list(), eng._params, st, admit)


def slice_totals(eng: PartitionEngine) -> Counter[tuple[object, ...]]:
    """Every non-zero count of the ticket and agent slices, as a flat multiset."""
    out: Counter[tuple[object, ...]] = Counter()
    for store, name in ((eng.tickets_store, "T"), (eng.agents_store, "A")):
        for start, sl in store.slices.items():
            for key, agg in sl.items():
                for i, c in enumerate(agg.to_json()[0] if name == "T" else agg.to_json()):
                    if c:
                        out[(name, start, key, i)] += c
                if name == "T":
                    for i, d in enumerate(agg.to_json()[1]):
                        if d is not None:
                            out[("T", start, key, 7 + i, "n")] += d[0]
                            out[("T", start, key, 7 + i, "sum")] += d[1]
    return out


def totals_of(contribs: list[Contribution]) -> Counter[tuple[object, ...]]:
    out: Counter[tuple[object, ...]] = Counter()
    for store, start, key, field, value in contribs:
        name = "T" if store == TICKET_STORE else "A"
        if name == "T" and field >= 7:
            out[("T", start, key, field, "n")] += 1
            out[("T", start, key, field, "sum")] += value
        else:
            out[(name, start, key, field)] += value
    return +out


@st.composite
def ticket_arrivals(draw: st.DrawFn) -> list[TicketEvent]:
    """A few tickets' events, mostly in order (the resumable case), some shuffled
    within a few minutes, some delivered twice, some very late."""
    events: list[TicketEvent] = []
    for k in range(draw(st.integers(1, 4))):
        events.extend(e for e in draw(ticket_history(k)) if isinstance(e, TicketEvent))
    events.sort(key=event_order)
    events += [e for e in events if draw(st.integers(0, 9)) == 0]  # duplicates
    keyed = []
    for seq, e in enumerate(events):
        r = draw(st.integers(0, 9))
        delay = 0 if r < 6 else draw(st.integers(0, 3 * MIN)) if r < 9 else 60 * MIN
        keyed.append((e.ts + delay, seq, e))
    keyed.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in keyed]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ticket_arrivals(), st.sampled_from([5 * MIN, 30 * MIN]), st.integers(1, 3))
def test_every_ticket_equals_a_full_derive_after_every_event(
    events: list[TicketEvent], lateness: int, max_labels: int
) -> None:
    cfg = CoreConfig(lateness_ms=lateness, max_label_values=max_labels)
    eng = PartitionEngine(cfg, 0)
    for i, e in enumerate(events):
        eng.apply(role_of(e), e)
        applied: list[Contribution] = []
        for state in live_tickets(eng).values():  # a packed one unpacked: as if never packed
            view, contribs, pending = expected(eng, state)
            assert state.view == view
            assert state.base is None  # derived from its current events
            assert eng._applied(state) == contribs
            assert state.pending == pending
            assert state.encoded() == _dumps(state.to_json())
            applied += contribs
        if not eng._tombs:  # a dropped ticket's contributions stay in the slices
            assert slice_totals(eng) == totals_of(applied)
        if i % 3 == 2:
            eng.drain_dirty()  # the encoded prefix survives drains and inserts
    assert eng.dropped_contributions == 0
    assert APPLIED == []  # the shared empty list of applied derivations stays empty


def test_in_order_events_resume_the_derivation() -> None:
    """The shortcut is taken (else the test above proves little): every in-order
    event after the first resumes; an out-of-order one re-derives."""
    eng = PartitionEngine(CoreConfig(), 0)
    calls: list[str] = []
    resume, rederive = eng._resume, eng._rederive

    def spy_resume(tid: str, state: TicketState, event: TicketEvent | None) -> None:
        calls.append("resume" if event is not None else "finish")
        resume(tid, state, event)

    def spy_rederive(tid: str, state: TicketState, apply: bool = True) -> None:
        calls.append("rederive")
        rederive(tid, state, apply)

    eng._resume = spy_resume  # type: ignore[method-assign]
    eng._rederive = spy_rederive  # type: ignore[method-assign]
    events: list[TicketEvent] = [
        created("T-1", "09:00:00"),
        assigned("T-1", "09:01:00", "a-1"),
        msg("T-1", "09:02:00", agent="a-1"),
        status("T-1", "09:03:00", "solved"),
        msg("T-1", "09:02:30", author="customer"),  # out of order
        status("T-1", "09:04:00", "open"),
    ]
    for e in events:
        eng.apply(role_of(e), e)
    assert calls == ["rederive", "resume", "resume", "resume", "rederive", "resume"]


@settings(max_examples=200, deadline=None)
@given(st.lists(ticket_history(0), min_size=1, max_size=1), st.integers(1, 3), st.data())
def test_derivation_step_by_step_equals_derive_all(
    histories: list[list[Event]], max_labels: int, data: st.DataObject
) -> None:
    """Feeding sorted events one at a time (restarting at a first creation, as
    the engine does) leaves the same state as one pass over them, whatever the
    labeler had admitted in between."""
    events = sorted(
        (e for e in histories[0] if isinstance(e, TicketEvent)), key=event_order
    )
    params = DeriveParams(60_000, 900_000, {"urgent": 300_000})
    guard = LabelGuard(CoreConfig(max_label_values=max_labels))
    admit = guard.admit
    d: Derivation | None = None
    for k, e in enumerate(events):
        if d is None or (d.created is None and isinstance(e, TicketCreated)):
            d = derive_all(events[: k + 1], params, admit)
        else:
            d.step(e, admit)
        full = derive_all(events[: k + 1], params, admit)
        assert d.view == full.view
        assert d.contribs == full.contribs
        assert d.key == full.key
        assert d.before_solve == full.before_solve
        st_time = data.draw(st.one_of(st.none(), st.integers(e.ts, e.ts + 120 * MIN)))
        assert d.finish(st_time, admit) == full.finish(st_time, admit)


class _FromScratch(PartitionEngine):
    """An engine that never forks a derivation (`TicketEvents._forked`)."""

    def _forked(self, state: TicketState, events: list[TicketEvent]) -> None:
        return None


def test_forked_rederivation_equals_deriving_from_scratch() -> None:
    """A disordered, duplicated day through an engine that re-derives by forking the
    derivation after the events old and new share, and through one that derives
    both from scratch: the same drained values after every batch, the same
    evaluation, and the fork was taken (else this compares nothing)."""
    from cxpulse.core.decode import Rejection, decode
    from cxpulse.core.engine import evaluate
    from cxpulse.sim.dirt import generate
    from cxpulse.sim.model import SimConfig

    cfg = SimConfig(seed=3, duration_ms=6 * 3_600_000, tickets_per_day=4000.0,
                    duplicates=0.05, disorder_s=600.0)  # fmt: skip
    events = [e for r in generate(cfg) if not isinstance(e := decode(r.value), Rejection)]
    forked = PartitionEngine(CoreConfig(), 0)
    scratch = _FromScratch(CoreConfig(), 0)
    taken = 0
    real = forked._forked

    def counting(state: TicketState, evs: list[TicketEvent]) -> object:
        nonlocal taken
        out = real(state, evs)
        taken += out is not None
        return out

    forked._forked = counting  # type: ignore[assignment,method-assign]
    for i in range(0, len(events), 300):
        for eng in (forked, scratch):
            with eng.batch() if i % 600 else nullcontext():  # eager every other batch
                for e in events[i : i + 300]:
                    eng.apply(role_of(e), e)
        assert forked.drain_dirty() == scratch.drain_dirty()
    assert taken > 50
    assert repr(evaluate([forked])) == repr(evaluate([scratch]))

