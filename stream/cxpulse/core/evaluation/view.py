"""What the evaluation may read of a partition: the `PartitionView` protocol.

The evaluation merges partitions; it never reaches into how a partition is
kept. Two things implement this protocol: the live `PartitionEngine` (the
worker, `cxpulse report`) and `PartitionReplica`, a read-only copy rebuilt
from the state changelog (`cxpulse exporter`, which merges every partition
whatever worker owns it). Keeping the surface this small is what lets the
replica stay exact without re-running the engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cxpulse.core.config import CoreConfig
from cxpulse.core.dimensions import LabelGuard
from cxpulse.core.slices import AgentAgg, Key, SliceStore, SurveyAgg, TicketAgg
from cxpulse.core.tickets import TicketView


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """One open ticket as the backlog gauges need it (raw label values)."""

    team: str | None
    channel: str | None
    priority: str
    created_ts: int
    assignee: str | None
    unanswered: bool
    #: Where its FRT clock started (the creation; a bot ticket's handoff): the
    #: unanswered age and the at-risk fraction count from here.
    clock_ts: int


def open_ticket(v: TicketView) -> OpenTicket:
    """Unanswered: customer-created, no public agent reply yet, and (a bot
    ticket) handed off to the agents: a bot still holding it waits for no one."""
    assert v.created_ts is not None
    start = v.frt_start
    return OpenTicket(
        v.team, v.channel, v.priority, v.created_ts, v.assignee,
        v.by_customer and v.first_response_ts is None and start is not None,
        v.created_ts if start is None else start,
    )


class PartitionView(Protocol):
    """Read-only view of one source partition's state."""

    @property
    def partition(self) -> int: ...
    @property
    def config(self) -> CoreConfig: ...
    @property
    def tickets_store(self) -> SliceStore[TicketAgg]: ...
    @property
    def agents_store(self) -> SliceStore[AgentAgg]: ...
    @property
    def surveys_store(self) -> SliceStore[SurveyAgg]: ...
    @property
    def guard(self) -> LabelGuard: ...
    @property
    def dropped_contributions(self) -> int: ...
    @property
    def duplicate_conflicts(self) -> Mapping[str, int]: ...

    def stream_time(self, role: str) -> int | None: ...
    def outcome_counts(self, role: str) -> Mapping[str, int]: ...
    def open_tickets(self, at_ms: int) -> Iterator[OpenTicket]: ...
    def cumulative_tickets(self) -> Mapping[Key, TicketAgg]: ...
    def cumulative_surveys(self) -> Mapping[str, Sequence[int]]: ...
    def parked_surveys(self) -> int: ...
    def tickets_tracked(self) -> int: ...
