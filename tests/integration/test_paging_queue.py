"""The instrument behind "no degradation forecast" (issue 20, docs/alerts.md) can see.

`paging_eval.queue_evidence` reports when the at-risk band of a team's queue would
have forecast a breach; docs/alerts.md uses it to show that a response time
doubling every hour leaves no trace in the queue before the team breaches. That
negative finding is only worth something if the measure sees a queue that does
pile up: a stall by day on a 200/day team must show in the band (share of the
recent cohort still unanswered well above 0.6), and one slow ticket on a 20/day
team must not. No promtool: the simulator, the core and the exporter's
rendering only (about 45 s).
"""

from __future__ import annotations

from pathlib import Path

from cxpulse.mixin.command import load_targets

from tests.support import paging_eval as pe

ROOT = Path(__file__).resolve().parents[2]
TARGETS = load_targets(ROOT / "targets.yaml")


def _case(prefix: str, size: float) -> pe.Case:
    return next(c for c in pe.cases((size,)) if c.name.startswith(prefix))


def test_a_stall_fills_the_band_and_one_slow_ticket_does_not() -> None:
    stall = pe.queue_evidence(_case("stall by day", 200), 1, TARGETS)
    # the team answers nothing from 10:00: every ticket created since is unanswered
    assert stall.band_signal is not None and 0 < stall.band_signal < 60, stall
    assert stall.max_share > 1.0, stall
    assert stall.first_breach is not None and stall.first_breach < 60, stall
    slow = pe.queue_evidence(_case("one slow ticket", 20), 1, TARGETS)
    assert slow.first_breach is not None, slow  # the slow ticket breached ...
    assert slow.band_signal is None and slow.max_share == 0.0, slow  # ... one is no evidence
