"""Freshness and the evaluation instant of the exporter (pure: wall times are passed in).

**Freshness** (`cxpulse_kpi_delay_seconds`) answers the on-call question "how
far behind real time are these numbers?". The exporter samples each source
partition's log end offset every `eval_min_interval`. The KPIs are current *as of* the
latest sample instant t at which every message then in the log has been
applied (the partition's commit marker, as read from the changelog, is at or
past that end offset). The delay is now minus that instant, the worst source
counting. Duplicates and late events are applied messages like any other, and
a quiet partition's end offset does not move, so neither moves the delay; a
stopped worker, a lagging one, or an exporter behind on the changelog does.

**Evaluation instant** (`cxpulse_evaluation_timestamp_seconds`). Windows are
evaluated at the largest stream time of any partition, as `cxpulse report`
does. When every source is caught up and stream time has not moved for
`idle_timeout`, nothing is on its way, so the instant follows the wall clock:
`max(stream time, now - idle_timeout)` (the idle notion of Flink's
`withIdleness`, and Kafka Streams' wall-clock punctuation). Windows then
empty out in a quiet hour instead of freezing on the last busy minutes; with
live events stamped near real time this is continuous, and a replay of old
data leaves the live windows once it is done (they show the last 15 minutes
of real time, which had no events). The instant never goes backwards while
the exporter runs, and `cxpulse report --at <that instant>` computes the same
numbers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

#: (role, source partition)
Source = tuple[str, int]


@dataclass
class Freshness:
    """Samples of (wall ms, log end offset) per source, over `horizon_ms`."""

    horizon_ms: int = 3_600_000
    _history: dict[Source, deque[tuple[int, int]]] = field(default_factory=dict)

    def observe(self, wall_ms: int, ends: Mapping[Source, int]) -> None:
        """`ends[source]`: the offset the next message of the source will get."""
        for src, end in ends.items():
            h = self._history.setdefault(src, deque())
            if h and h[-1][1] == end:
                # unchanged: only the newest instant matters for "covered"
                h[-1] = (wall_ms, end)
            else:
                h.append((wall_ms, end))
            while len(h) > 1 and h[0][0] < wall_ms - self.horizon_ms:
                h.popleft()

    def as_of(self, applied: Mapping[Source, int]) -> tuple[int | None, bool]:
        """(instant the KPIs are current as of, every source caught up at the last sample).

        `applied[source]`: offset of the last message applied or skipped (-1: none)."""
        worst: int | None = None
        all_caught_up = True
        for src, h in self._history.items():
            done = applied.get(src, -1)
            covered = None
            for wall, end in reversed(h):
                if end <= done + 1:
                    covered = wall
                    break
            if covered != h[-1][0]:
                all_caught_up = False
            when = covered if covered is not None else h[0][0]
            worst = when if worst is None else min(worst, when)
        return worst, all_caught_up


@dataclass
class EvaluationClock:
    """The event-time instant to evaluate windows at (see the module docstring)."""

    idle_timeout_ms: int = 60_000
    _last_st: int | None = None
    _since_wall: int = 0
    _last_at: int | None = None

    def at(self, wall_ms: int, max_stream_time: int | None, all_caught_up: bool) -> int | None:
        if max_stream_time is None:
            return self._last_at
        if max_stream_time != self._last_st:
            self._last_st, self._since_wall = max_stream_time, wall_ms
        at = max_stream_time
        if all_caught_up and wall_ms - self._since_wall >= self.idle_timeout_ms:
            at = max(at, wall_ms - self.idle_timeout_ms)
        if self._last_at is not None:
            at = max(at, self._last_at)
        self._last_at = at
        return at
