"""`SliceStore.slice_bytes`: an open slice's value re-encodes only the aggregates touched
since the last one, and is byte for byte what encoding the whole slice gives.

The brute force is the definition: every aggregate of the slice encoded, in key order
(None for no aggregates),
checked after every step of random histories of adds (both signs, so aggregates empty
out and leave), seals, evictions, slices replaced whole (`load_slice`, as a restore does)
and slices a replica pops."""

from __future__ import annotations

from typing import Any

from cxpulse.core.config import CoreConfig
from cxpulse.core.engine.stores import slice_stores
from cxpulse.core.slices import SliceStore
from cxpulse.core.tickets import dumps
from hypothesis import given, settings
from hypothesis import strategies as st

CFG = CoreConfig()
S = CFG.slice_ms
TEAMS = ("billing", "tech", "shipping")
AGENTS = ("a1", "a2", "a3", "a4")

add_ticket = st.tuples(
    st.just("add"), st.integers(0, 3), st.sampled_from(TEAMS), st.sampled_from(("email", "chat")),
    st.sampled_from(("normal", "high")), st.integers(0, 5), st.integers(1, 900_000),
    st.sampled_from((1, 1, 1, -1)),
)  # fmt: skip
add_agent = st.tuples(
    st.just("agent"), st.integers(0, 3), st.sampled_from(TEAMS), st.sampled_from(AGENTS),
    st.integers(0, 1), st.integers(1, 3), st.sampled_from((1, 1, -1)),
)  # fmt: skip
other = st.tuples(st.sampled_from(("seal", "evict", "reload", "pop", "encode")),
                  st.integers(0, 4))  # fmt: skip
steps = st.lists(st.one_of(add_ticket, add_ticket, add_agent, add_agent, other), max_size=120)


def whole(store: SliceStore[Any], start: int) -> list[Any] | None:
    """The slice's value built whole (what the engine wrote before `slice_bytes`)."""
    sl = store.slices.get(start)
    return None if sl is None else [[list(k), a.to_json()] for k, a in sorted(sl.items())]


def expected(store: SliceStore[Any], start: int) -> bytes | None:
    value = whole(store, start)
    return None if not value else dumps(value)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_slice_bytes_is_the_whole_slice_encoded(history: list[tuple[Any, ...]]) -> None:
    tickets, agents, _surveys = slice_stores(CFG)
    for step in history:
        kind = step[0]
        if kind == "add":
            _, k, team, channel, prio, field, value, sign = step
            tickets.add(k * S, (team, channel, prio), field, value, sign)
        elif kind == "agent":
            _, k, team, agent, field, value, sign = step
            agents.add(k * S, (team, agent), field, value, sign)
        elif kind == "seal":
            for store in (tickets, agents):
                store.seal(step[1] * S)
        elif kind == "evict":
            for store in (tickets, agents):
                store.evict(step[1] * S)
        elif kind == "reload":  # a restore: the slice replaced by its own value
            for store in (tickets, agents):
                if (value := whole(store, step[1] * S)) is not None:
                    store.load_slice(step[1] * S, value)
        elif kind == "pop":  # a replica drops a slice a tombstone deleted
            for store in (tickets, agents):
                store.slices.pop(step[1] * S, None)
        for store in (tickets, agents):  # the worker encodes what a drain would
            for start in sorted(store.dirty) if kind != "encode" else range(0, 5 * S, S):
                assert store.slice_bytes(start, dumps) == expected(store, start)
            store.dirty.clear()
    for store in (tickets, agents):
        for start in range(0, 5 * S, S):
            assert store.slice_bytes(start, dumps) == expected(store, start)


def test_a_sealed_slice_keeps_no_encoded_entries() -> None:
    """Memory: only open slices keep their entries and touched keys (a day of sealed
    slices would double the aggregates' footprint)."""
    tickets, _agents, _surveys = slice_stores(CFG)
    tickets.add(0, ("tech", "email", "normal"), 0, 1, 1)
    tickets.add(S, ("tech", "email", "normal"), 0, 1, 1)
    tickets.slice_bytes(S, dumps)
    tickets.add(0, ("tech", "chat", "normal"), 0, 1, 1)  # touched, not encoded yet
    tickets.add(S, ("tech", "chat", "normal"), 0, 1, 1)
    tickets.seal(S)  # slice 0 sealed, S open
    assert set(tickets._encoded) == {S} and set(tickets._changed) == {S}
    for start in (0, S):
        assert tickets.slice_bytes(start, dumps) == expected(tickets, start)
    tickets.seal(2 * S)
    assert tickets._encoded == {} and tickets._changed == {}
