"""Backlog gauges at evaluation time, from the open tickets of every partition."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cxpulse.core.config import CoreConfig
from cxpulse.core.dimensions import UNKNOWN
from cxpulse.core.evaluation.caps import Caps, labels_of
from cxpulse.core.evaluation.model import Sample
from cxpulse.core.evaluation.view import PartitionView
from cxpulse.core.slices import Key


@dataclass
class Backlog:
    """Open-ticket gauges by raw (team, channel, priority), plus per-agent open assigned."""

    rows: list[tuple[str, str, str, int, bool, bool, int]] = field(default_factory=list)
    agents: Counter[str] = field(default_factory=Counter)
    weights: Counter[tuple[str, str]] = field(default_factory=Counter)

    def samples(self, caps: Caps, cfg: CoreConfig,
                pace: Mapping[Key, float] | None = None) -> list[Sample]:
        """`pace`: first replies per millisecond of each (capped) view, recently (`evaluate`
        passes it over the span `CoreConfig.forecast_pace_ms` chooses for the view's
        volume, 0 once its silence is evidence); views without one answer nothing. It
        drives `frt_forecast_breaches` (`forecast_breaches`)."""
        # open, unassigned, unanswered, oldest age, breached unanswered, then at-risk bands
        width = 5 + len(cfg.at_risk_fractions)
        views: dict[Key, list[int]] = {("all",): [0] * width}
        slack: dict[Key, list[int]] = {("all",): []}
        for team, channel, priority, age, unassigned, unanswered, target in self.rows:
            row_views: tuple[Key, ...] = (
                ("all",),
                ("team", caps("team", team)),
                ("channel", caps("channel", channel)),
                ("priority", priority),
            )
            for view in row_views:
                v = views.setdefault(view, [0] * width)
                v[0] += 1
                v[1] += unassigned
                if unanswered:
                    v[2] += 1
                    v[3] = max(v[3], age)
                    if age > target:
                        v[4] += 1
                    elif age >= cfg.forecast_from_fraction * target:
                        slack.setdefault(view, []).append(target - age)
                    for i, f in enumerate(cfg.at_risk_fractions):
                        if f * target <= age <= target:
                            v[5 + i] += 1
        out: list[Sample] = []
        for view in sorted(views):
            v = views[view]
            labels = labels_of(view)
            out.append(Sample("backlog_open", labels, float(v[0])))
            out.append(Sample("backlog_unassigned", labels, float(v[1])))
            out.append(Sample("backlog_unanswered", labels, float(v[2])))
            out.append(Sample("oldest_unanswered_age_seconds", labels, v[3] / 1000.0))
            # Past the deadline and still without a public reply: the at-risk band ends at
            # the target, so without this a fully breached queue would read "0 at risk".
            out.append(Sample("frt_breached_unanswered", labels, float(v[4])))
            for i, f in enumerate(cfg.at_risk_fractions):
                risk_labels = {**labels, "threshold": f"{f:g}"}
                out.append(Sample("frt_at_risk", risk_labels, float(v[5 + i])))
            rate = (pace or {}).get(view, 0.0)
            out.append(Sample("frt_forecast_breaches", labels,
                              forecast_breaches(slack.get(view, []), rate)))
        per_agent: Counter[str] = Counter()
        for agent, n in self.agents.items():
            per_agent[caps("agent", agent)] += n
        for agent in sorted(per_agent):
            out.append(Sample("agent_open_assigned", {"agent": agent}, float(per_agent[agent])))
        return out


def forecast_breaches(slack_ms: Sequence[int], pace_per_ms: float) -> float:
    """How many of the unanswered tickets will pass their FRT deadline at least, if the
    team keeps answering at `pace_per_ms` first replies per millisecond, in any order.

    Why this is a forecast from the queue itself: within s ms the team can send at most
    pace x s first replies, so of the N(s) tickets whose deadline is at most s ms away at
    least N(s) - pace x s breach, whichever it answers first; the largest such bound over
    s (it is reached at one of the tickets' own slacks) is the forecast. It needs no
    comparison with the team's past: a healthy queue is young and answered faster than
    it ages (the bound stays 0), a stalling or declining one holds more tickets near
    their deadline than the team's pace reaches in time. `slack_ms`: each not yet
    breached unanswered ticket's time left to its deadline (>= 0; the backlog passes
    those past `forecast_from_fraction` of their target only). Rounded to 1e-3 so
    that equal queues give bit-equal values whatever order partitions are read in."""
    worst = 0.0
    for k, s in enumerate(sorted(slack_ms), start=1):
        worst = max(worst, k - pace_per_ms * s)
    return round(worst, 3)


def collect_backlog(engines: Sequence[PartitionView], at_ms: int) -> Backlog:
    b = Backlog()
    for eng in engines:
        peek = eng.guard.peek
        frt_target_for = eng.config.frt_target_for
        for t in eng.open_tickets(at_ms):
            team = peek("team", t.team or UNKNOWN)
            channel = peek("channel", t.channel or UNKNOWN)
            age = max(0, at_ms - t.clock_ts)
            target = frt_target_for(t.priority)
            b.rows.append(
                (team, channel, t.priority, age, t.assignee is None, t.unanswered, target)
            )
            b.weights[("team", team)] += 1
            b.weights[("channel", channel)] += 1
            if t.assignee is not None:
                agent = peek("agent", t.assignee)
                b.agents[agent] += 1
                b.weights[("agent", agent)] += 1
    return b
