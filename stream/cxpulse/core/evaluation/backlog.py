"""Backlog gauges at evaluation time, from the open tickets of every partition."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import ceil

from cxpulse.core.config import CoreConfig
from cxpulse.core.dimensions import UNKNOWN
from cxpulse.core.evaluation.caps import Caps, labels_of
from cxpulse.core.evaluation.model import Sample
from cxpulse.core.evaluation.view import OpenTicket, PartitionView
from cxpulse.core.slices import Key


class Group:
    """The open tickets of one raw (team, channel, priority): counts, and the FRT clock
    starts of the unanswered ones, sorted, so that what the clock changes (ages, at-risk
    and breached counts, the forecast's slacks) is read by bisection at any instant."""

    __slots__ = ("clocks", "open", "target", "unassigned")

    def __init__(self, target: int) -> None:
        self.target = target
        self.open = 0
        self.unassigned = 0
        self.clocks: list[int] = []

    def add(self, t: OpenTicket, sign: int) -> None:
        """Count ticket `t` in (sign 1) or out (-1)."""
        self.open += sign
        self.unassigned += sign * (t.assignee is None)
        if t.unanswered:
            if sign > 0:
                insort(self.clocks, t.clock_ts)
            else:
                del self.clocks[bisect_left(self.clocks, t.clock_ts)]


def _aged(clocks: list[int], at_ms: int, low: int, high: int) -> tuple[int, int]:
    """The index range of `clocks` whose age at `at_ms`, max(0, at - clock), lies in the
    integers [low, high] (0 <= low <= high): clocks are sorted, ages descend."""
    lo = bisect_left(clocks, at_ms - high)
    hi = len(clocks) if low <= 0 else bisect_right(clocks, at_ms - low)
    return lo, max(lo, hi)


@dataclass
class Backlog:
    """Open-ticket gauges by raw (team, channel, priority) group, plus per-agent open
    assigned. Time-independent (an incremental evaluation keeps one, `Incremental`):
    `samples` reads it at an instant."""

    groups: dict[tuple[str, str, str], Group] = field(default_factory=dict)
    agents: Counter[str] = field(default_factory=Counter)

    def add(self, t: OpenTicket, team: str, channel: str, agent: str | None, target: int,
            sign: int = 1) -> None:
        """Count open ticket `t` (its team, channel, agent label values as peeked) in or out."""
        key = (team, channel, t.priority)
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = Group(target)
        g.add(t, sign)
        if not g.open:
            del self.groups[key]
        if agent is not None:
            self.agents[agent] += sign
            if not self.agents[agent]:
                del self.agents[agent]

    @property
    def weights(self) -> Counter[tuple[str, str]]:
        """Open tickets per (dimension, value), for the read-time caps."""
        out: Counter[tuple[str, str]] = Counter()
        for (team, channel, _), g in self.groups.items():
            out[("team", team)] += g.open
            out[("channel", channel)] += g.open
        for agent, n in self.agents.items():
            out[("agent", agent)] += n
        return out

    def samples(self, at_ms: int, caps: Caps, cfg: CoreConfig,
                pace: Mapping[Key, float] | None = None) -> list[Sample]:
        """The gauges at `at_ms`. Ages count from each ticket's FRT clock start, at least 0.
        `pace`: first replies per millisecond of each (capped) view, recently (`evaluate`
        passes it over the span `CoreConfig.forecast_pace_ms` chooses for the view's
        volume, 0 once its silence is evidence); views without one answer nothing. It
        drives `frt_forecast_breaches` (`forecast_breaches`)."""
        # open, unassigned, unanswered, oldest age, breached unanswered, then at-risk bands
        width = 5 + len(cfg.at_risk_fractions)
        views: dict[Key, list[int]] = {("all",): [0] * width}
        slack: dict[Key, list[int]] = {("all",): []}
        for (team, channel, priority), g in self.groups.items():
            target, clocks = g.target, g.clocks
            row = [0] * width
            row[0], row[1], row[2] = g.open, g.unassigned, len(clocks)
            gslack: list[int] = []
            if clocks:
                row[3] = max(0, at_ms - clocks[0])
                row[4] = bisect_left(clocks, at_ms - target)  # age > target
                for i, f in enumerate(cfg.at_risk_fractions):
                    lo, hi = _aged(clocks, at_ms, ceil(f * target), target)
                    row[5 + i] = hi - lo
                lo, hi = _aged(clocks, at_ms, ceil(cfg.forecast_from_fraction * target), target)
                gslack = [target - max(0, at_ms - c) for c in clocks[lo:hi]]
            group_views: tuple[Key, ...] = (
                ("all",),
                ("team", caps("team", team)),
                ("channel", caps("channel", channel)),
                ("priority", priority),
            )
            for view in group_views:
                v = views.setdefault(view, [0] * width)
                for i in (0, 1, 2, 4, *range(5, width)):
                    v[i] += row[i]
                v[3] = max(v[3], row[3])
                if gslack:
                    slack.setdefault(view, []).extend(gslack)
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


def peeked(eng: PartitionView, t: OpenTicket) -> tuple[str, str, str | None, int]:
    """An open ticket's team, channel and agent label values as its partition's guard
    admits them, and its FRT target."""
    peek = eng.guard.peek
    agent = None if t.assignee is None else peek("agent", t.assignee)
    return (peek("team", t.team or UNKNOWN), peek("channel", t.channel or UNKNOWN), agent,
            eng.config.frt_target_for(t.priority))  # fmt: skip


def collect_backlog(engines: Sequence[PartitionView], at_ms: int) -> Backlog:
    """The open tickets of every partition at `at_ms` (those not yet expired)."""
    b = Backlog()
    for eng in engines:
        for t in eng.open_tickets(at_ms):
            b.add(t, *peeked(eng, t))
    return b
