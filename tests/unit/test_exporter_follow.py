"""The exporter's changelog follower and clock, without a broker.

The follower must release exactly the state a worker's own recovery would
restore, after any sequence of batches and crashes (a crash leaves a prefix of
a batch in the log, then the next incarnation writes its repairs and a new
marker), from the full log and from a compacted one.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import pytest
from cxpulse.changelog.follow import PartitionFollower
from cxpulse.changelog.records import Write
from cxpulse.exporter.clock import EvaluationClock, Freshness
from cxpulse.exporter.service import EVAL_DUTY, _next_evaluation, spacing
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


def _old_spacing(started: float, ended: float, min_gap: float) -> float:
    """The rule before issue 22's round 3: from the end, at least max(min_gap, duration)."""
    return max(min_gap, ended - started)


def _schedule(
    durations: list[float], rule: Callable[[float, float, float], float], min_gap: float = 0.5
) -> list[tuple[float, float]]:
    """(start, end) of each evaluation on a fake clock, new state always waiting: each
    starts as soon as `rule` lets it after the previous one."""
    runs: list[tuple[float, float]] = []
    t = 0.0
    for took in durations:
        runs.append((t, t + took))
        t = t + took + rule(t, t + took, min_gap)
    return runs


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.001, 3.0), min_size=1, max_size=60))
def test_spacing_keeps_the_ceiling_on_evaluation_time_and_rate(durations: list[float]) -> None:
    """Under a steady stream (new state always waiting): evaluations start at least
    `eval_min_interval` apart and take at most `EVAL_DUTY` of the time from the first
    start to the instant the next one may start (each run plus the gap after it)."""
    runs = _schedule(durations, spacing)
    for (s0, _), (s1, _) in itertools.pairwise(runs):
        assert s1 - s0 >= 0.5 - 1e-9
    for i in range(len(runs)):
        for j in range(i, len(runs)):
            busy = sum(e - s for s, e in runs[i : j + 1])
            s_j, e_j = runs[j]
            span = e_j + spacing(s_j, e_j, 0.5) - runs[i][0]
            assert busy <= EVAL_DUTY * span + 1e-9


def test_spacing_lets_fresh_state_in_sooner_than_the_old_rule() -> None:
    """What the rule is for: a change applied as a 0.6 s evaluation ended (the typical one
    at 5k events/s) waits half of it, not a whole one; after a light one (0.1 s) the next
    may start `eval_min_interval` after its start, not after its end. The old rule
    (`_old_spacing`) fails both; its ceiling was half of the time, this one two thirds."""
    assert spacing(10.0, 10.6, 0.5) == pytest.approx(0.3)
    assert _old_spacing(10.0, 10.6, 0.5) == pytest.approx(0.6)
    assert spacing(10.0, 10.1, 0.5) == pytest.approx(0.4)
    assert _old_spacing(10.0, 10.1, 0.5) == pytest.approx(0.5)
    assert spacing(10.0, 13.0, 0.5) == pytest.approx(1.5)  # a long one: still half of it
    # steady 0.6 s evaluations: one every 0.9 s instead of every 1.2 s
    new, old = _schedule([0.6] * 5, spacing), _schedule([0.6] * 5, _old_spacing)
    assert new[-1][0] == pytest.approx(3.6) and old[-1][0] == pytest.approx(4.8)
