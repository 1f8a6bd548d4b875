"""The three slice stores of a partition and when their slices may be evicted
(shared by the engine and the changelog replica)."""

from __future__ import annotations

from functools import partial

from cxpulse.core.config import CoreConfig
from cxpulse.core.sketch import LogMapping
from cxpulse.core.slices import (
    AgentAgg,
    AggContext,
    Key,
    SliceStore,
    SurveyAgg,
    TicketAgg,
)

#: Extra slices kept beyond the longest window so window caches can subtract
#: the slices that leave them instead of being rebuilt.
_EVICT_MARGIN_SLICES = 16


def _ticket_views(key: Key) -> tuple[Key, ...]:
    team, channel, priority = key
    return (("all",), ("team", team), ("channel", channel), ("priority", priority))


def _agent_views(key: Key) -> tuple[Key, ...]:
    team, agent = key
    return (("agent", agent), ("ta", team, agent))


def _survey_views(key: Key) -> tuple[Key, ...]:
    kind, team, channel, agent, touchpoint = key
    return (
        (kind, "all"),
        (kind, "team", team),
        (kind, "channel", channel),
        (kind, "agent", agent),
        (kind, "touchpoint", touchpoint),
    )


def slice_stores(
    config: CoreConfig,
) -> tuple[SliceStore[TicketAgg], SliceStore[AgentAgg], SliceStore[SurveyAgg]]:
    """The three empty slice stores of a partition (engine and replica alike)."""
    ctx = AggContext(
        LogMapping(config.sketch_relative_accuracy), tuple(config.histogram_buckets_ms)
    )
    nb = len(config.histogram_buckets_ms) + 1
    s = config.slice_ms
    return (
        SliceStore(s, ctx, partial(TicketAgg, nb), lambda d: TicketAgg.from_json(d, nb),
                   _ticket_views),  # partial: no Python frame per new aggregate
        SliceStore(s, ctx, AgentAgg, AgentAgg.from_json, _agent_views),
        SliceStore(s, ctx, SurveyAgg, SurveyAgg.from_json, _survey_views),
    )  # fmt: skip


def evict_before(cfg: CoreConfig, st: int) -> int:
    """Slices starting before this may be evicted at stream time `st`."""
    return (
        cfg.slice_of(st) - cfg.longest_window_ms + cfg.slice_ms
        - _EVICT_MARGIN_SLICES * cfg.slice_ms
    )  # fmt: skip
