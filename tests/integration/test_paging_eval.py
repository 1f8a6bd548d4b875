"""Issue 20 in CI: a small team that stops answering is paged, one slow ticket is not
(by day, nor on a quiet night), a stall by day is paged before its first breach.

The short version of the paging evaluation (tests/support/paging_eval.py): the
cheapest cases, one seed, two to three minutes on a quiet machine. The full set,
every incident class at ~20 to 5,000 tickets a day on three seeds, is `make
paging` (bench/bench_paging.py), with its summary in docs/alerts.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cxpulse.mixin.command import load_targets

from tests.support import paging_eval as pe

ROOT = Path(__file__).resolve().parents[2]
TARGETS = load_targets(ROOT / "targets.yaml")

pytestmark = pytest.mark.prometheus


def _case(prefix: str, size: float) -> pe.Case:
    return next(c for c in pe.cases((size,)) if c.name.startswith(prefix))


def test_a_team_of_twenty_tickets_a_day_that_stops_answering_is_paged() -> None:
    case = _case("stall by day", 20)
    o = pe.run_case(case, 1, TARGETS)
    assert o.second_breach_after_onset is not None, pe.describe(o)  # the case hurts
    assert o.episodes == 1, pe.describe(o)
    assert o.page_after_second_breach is not None and o.page_after_second_breach <= 5, \
        pe.describe(o)
    assert o.open_after_recovery is not None and o.open_after_recovery <= 15, pe.describe(o)
    assert not o.other_team_pages and not o.problems(), pe.describe(o)


def test_a_night_stall_pages_once_and_stays_open_while_nothing_new_arrives() -> None:
    o = pe.run_case(_case("stall by night", 200), 1, TARGETS)
    assert o.episodes == 1, pe.describe(o)  # no resolve in the middle of the stall
    assert o.open_after_recovery is not None and 0 <= o.open_after_recovery <= 15, \
        pe.describe(o)
    assert not o.problems(), pe.describe(o)


def test_one_slow_ticket_while_the_team_answers_the_others_pages_nobody() -> None:
    o = pe.run_case(_case("one slow ticket", 20), 1, TARGETS)
    assert o.episodes == 0 and not o.other_team_pages, pe.describe(o)


def test_one_slow_ticket_on_a_quiet_night_pages_nobody() -> None:
    # The quiet-shift clause's look-alike: one customer waits 2 h from 02:00 on a night
    # with one or two tickets an hour, while the team answers the others.
    o = pe.run_case(_case("one slow ticket by night", 200), 1, TARGETS)
    assert o.episodes == 0 and not o.other_team_pages, pe.describe(o)


def test_a_stall_by_day_is_paged_before_its_first_breach() -> None:
    # The breach forecast's case, cut to 08:00-11:00 (the stall from 10:00) to stay short:
    # a 200/day team stops answering and the page comes before any ticket breaches.
    full = _case("stall by day", 200)
    case = pe.Case("stall by day 200/day, 3 h", full.team_per_day, 8, 3, full.onset_h,
                   None, full.slowdowns, due=pe.BEFORE)
    o = pe.run_case(case, 1, TARGETS)
    assert o.first_breach_after_onset is not None, pe.describe(o)  # the case hurts
    assert o.page_after_breach is not None and o.page_after_breach < 0, pe.describe(o)
    assert o.episodes == 1 and not o.problems(), pe.describe(o)
