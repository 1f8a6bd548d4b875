"""The exporter's changelog follower and clock, without a broker.

The follower must release exactly the state a worker's own recovery would
restore, after any sequence of batches and crashes (a crash leaves a prefix of
a batch in the log, then the next incarnation writes its repairs and a new
marker), from the full log and from a compacted one.
"""

from __future__ import annotations

import asyncio
import time

from cxpulse.changelog.follow import PartitionFollower
from cxpulse.changelog.records import Write
from cxpulse.exporter.clock import EvaluationClock, Freshness
from cxpulse.exporter.service import _next_evaluation
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_persistence import (
    P,
    apply_truth,
    batches_st,
    compact,
    compacted,
    follower_of,
    recover,
)


def follow(log: list[Write]) -> dict[str, bytes]:
    state, f = follower_of(log)
    assert f.corrupt == 0  # split values always join (parts match their descriptor)
    return state


@settings(max_examples=300, deadline=None)
@given(batches_st, st.data())
def test_follower_releases_what_recovery_restores(batches: list[dict[str, bytes | None]],
                                                  data: st.DataObject) -> None:  # fmt: skip
    log: list[Write] = []
    store, rec = recover(P, [])
    log += rec.repairs
    truth: dict[str, bytes] = {}
    for i, batch in enumerate(batches):
        writes = store.batch_writes(batch, wall_ms=i)
        if data.draw(st.booleans()):
            cut = data.draw(st.integers(0, len(writes)))  # crash: a prefix reached the log
            log += writes[:cut]
            if cut == len(writes):
                truth = apply_truth(truth, batch)
            assert follow(log) == truth  # half a batch is never visible
            store, rec = recover(P, compact(log).items())
            log += rec.repairs
            assert rec.items == truth
        else:
            log += writes
            truth = apply_truth(truth, batch)
        assert follow(log) == truth
    assert follow(log) == truth
    assert follow(compacted(log)) == truth


def test_garbage_and_foreign_keys_are_counted_not_fatal() -> None:
    f = PartitionFollower(P)
    assert f.feed(None, b"x") is None
    assert f.feed(b"9/s/k", b"x") is None  # another partition's key
    assert f.feed(f"{P}/s/k".encode(), b"not a record") is None
    assert f.feed(f"{P}/m".encode(), b"{}") is None
    assert f.corrupt == 4


def test_freshness_counts_only_what_was_present_and_not_applied() -> None:
    fr = Freshness()
    src = ("tickets", 0)
    fr.observe(1_000, {src: 10})
    fr.observe(2_000, {src: 15})
    fr.observe(3_000, {src: 15})  # quiet: the end offset does not move
    assert fr.as_of({src: 14}) == (3_000, True)  # everything applied
    assert fr.as_of({src: 9}) == (1_000, False)  # what existed at 1 s is applied
    assert fr.as_of({src: 3}) == (1_000, False)  # never caught up: the oldest sample
    fr.observe(4_000, {src: 16})  # a duplicate arrives and is applied at once
    assert fr.as_of({src: 15}) == (4_000, True)


def test_evaluation_instant_follows_the_wall_clock_only_when_idle_and_caught_up() -> None:
    c = EvaluationClock(idle_timeout_ms=60_000)
    assert c.at(0, 5_000, True) == 5_000
    assert c.at(30_000, 5_000, True) == 5_000  # not idle long enough
    assert c.at(50_000, 5_000, False) == 5_000  # behind: stream time rules
    assert c.at(600_000, 5_000, True) == 540_000  # idle: now - idle_timeout
    assert c.at(601_000, 6_000, True) == 540_000  # an old event: never backwards
    assert c.at(700_000, 690_000, True) == 690_000


def test_new_state_is_evaluated_after_the_minimum_gap_not_the_idle_interval() -> None:
    """Evaluate when a batch was applied (not on the next idle tick), never sooner than
    `eval_min_interval` after the previous evaluation; without new state, idle ticks go on."""

    async def scenario() -> list[tuple[bool, float]]:
        fresh = asyncio.Event()
        out = []
        last = time.monotonic()
        out.append((await _next_evaluation(fresh, last, 0.05, 0.2), time.monotonic() - last))
        fresh.set()  # a batch was applied meanwhile: it waits for the minimum gap only
        last = time.monotonic()
        out.append((await _next_evaluation(fresh, last, 0.3, 60), time.monotonic() - last))
        last = time.monotonic() - 1.0  # the previous evaluation ended long ago: at once
        out.append((await _next_evaluation(fresh, last, 0.3, 60), time.monotonic() - last))
        return out

    (idle, idle_s), (new, new_s), (late, late_s) = asyncio.run(scenario())
    assert idle is False and idle_s >= 0.2  # nothing new: woke for the idle re-evaluation
    assert new is True and 0.3 <= new_s < 30  # the ceiling holds; not the 60 s idle tick
    assert late is True and late_s < 30
