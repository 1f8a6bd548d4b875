"""The breach forecast (`cxpulse_frt_forecast_breach_tickets`) against a brute force.

`forecast_breaches` claims: if the team keeps sending first replies at its pace,
at least this many of the waiting tickets pass their deadline whatever order it
answers them in. The brute force tries every order: the team's j-th reply comes
at j / pace, a ticket answered after its slack breaches, and the best order's
breaches are the true minimum. The forecast is the fluid bound of that minimum
(replies as a flow, not whole replies), so it must never exceed it (the page
never claims more breaches than any order gives) and be less than one below it.
The engine-level value (views, caps, the pace window) is checked against the
independent reference in tests/unit/test_core_reference.py.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
from cxpulse.core.evaluation.backlog import forecast_breaches


def fewest_breaches(slack_ms: list[int], pace_per_ms: float) -> int:
    """The fewest breaches over every order of answering, replies at 1/pace, 2/pace, ..."""
    if not slack_ms:
        return 0
    if pace_per_ms <= 0:
        return len(slack_ms)
    best = len(slack_ms)
    for order in itertools.permutations(slack_ms):
        missed = sum(1 for j, s in enumerate(order, start=1) if j / pace_per_ms > s)
        best = min(best, missed)
    return best


@pytest.mark.parametrize("seed", range(300))
def test_the_forecast_is_the_fewest_breaches_any_order_gives_within_one(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(0, 6)
    slack = [rng.choice([0, 1, 30_000, 60_000, rng.randint(0, 900_000)]) for _ in range(n)]
    pace = rng.choice([0.0, 1 / 900_000, 4 / 900_000, rng.uniform(0, 30) / 900_000])
    got = forecast_breaches(slack, pace)
    true = fewest_breaches(slack, pace)
    assert got <= true + 1e-3, (slack, pace, got, true)
    assert got > true - 1 - 1e-3, (slack, pace, got, true)


def test_a_healthy_queue_forecasts_nothing_and_a_stalled_one_every_ticket() -> None:
    # 1 reply a minute; four young tickets are reached in time, whatever the order
    minute = 60_000
    young = [14 * minute, 13 * minute, 12 * minute, 10 * minute]
    assert forecast_breaches(young, 1 / minute) == 0
    # the same tickets near their deadlines: 4 due within 2 min, 2 replies in that time
    old = [1 * minute, 1 * minute, 2 * minute, 2 * minute]
    assert math.isclose(forecast_breaches(old, 1 / minute), 2.0)
    # nothing answered in the window: every waiting ticket breaches
    assert forecast_breaches(young, 0.0) == 4
    assert forecast_breaches([], 0.0) == 0
