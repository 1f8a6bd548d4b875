"""`PartitionReplica`: a read-only partition rebuilt from committed state values.

Why it exists: with several workers each owns some partitions, so no worker
can evaluate an organisation-wide KPI. Every partition's state already goes to
the changelog, key by key (`PartitionEngine.drain_dirty`). A replica applies
those committed values as they come and offers the evaluation the same
`PartitionView` as the engine, so `evaluate(replicas)` over all partitions is
exactly `evaluate(engines)` of one worker owning them all, whatever worker
owns what, through rebalances and crashes (the changelog only ever holds
committed values once its markers are honoured, see `cxpulse.exporter`).

It is pure, like the engine: no clock, no I/O. It never runs the ticket state
machine's contributions; a changed ticket is re-derived only for its view
(backlog gauges need status, team, first response).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cxpulse.core.config import CoreConfig
from cxpulse.core.dimensions import LabelGuard
from cxpulse.core.engine.stores import evict_before, slice_stores
from cxpulse.core.evaluation.view import OpenTicket, open_ticket
from cxpulse.core.events import SURVEYS, TICKETS, event_order
from cxpulse.core.outcome import ROLES, Outcome
from cxpulse.core.slices import AgentAgg, Key, SliceStore, SurveyAgg, TicketAgg, survey_counts
from cxpulse.core.tickets import DeriveParams, decode_ticket_event, derive_all


class PartitionReplica:
    """The committed state of source partition `partition`, key by key."""

    def __init__(self, config: CoreConfig, partition: int) -> None:
        self.partition = partition
        self.config = config
        self._params = DeriveParams(
            config.slice_ms, config.frt_target_ms, dict(config.frt_target_by_priority)
        )
        self.tickets_store: SliceStore[TicketAgg]
        self.agents_store: SliceStore[AgentAgg]
        self.surveys_store: SliceStore[SurveyAgg]
        self.tickets_store, self.agents_store, self.surveys_store = slice_stores(config)
        self._nb = len(config.histogram_buckets_ms) + 1
        self.guard = LabelGuard(config)
        self.dropped_contributions = 0
        self.duplicate_conflicts: dict[str, int] = dict.fromkeys(ROLES, 0)
        self._st: dict[str, int | None] = {TICKETS: None, SURVEYS: None}
        self._outcomes: dict[str, dict[str, int]] = {r: {o: 0 for o in Outcome} for r in ROLES}
        #: ticket -> (expiry, *the `OpenTicket` fields): one tuple per open ticket
        #: rather than a pair and an object (issue 22: the exporter's memory per
        #: open ticket); the row is built when an evaluation reads it.
        self._open: dict[str, tuple[Any, ...]] = {}
        self._live: set[str] = set()
        self._parked: set[str] = set()
        self._cum_tickets: dict[Key, TicketAgg] = {}
        self._cum_surveys: dict[str, list[int]] = {}

    # ----------------------------------------------------------------- input

    def apply(self, name: str, raw: bytes | None) -> None:
        """Set state key `name` to its committed value (None: the key was deleted).

        Apply every key of a committed batch before evaluating: a batch may seal
        a slice (meta) and write its last change together."""
        value: Any = None if raw is None else json.loads(raw)
        tag, _, rest = name.partition(":")
        if name == "m":
            if value is not None:
                self._load_meta(value)
        elif name == "c":
            self._load_cum(value or {"t": [], "s": {}})
        elif name == "l":
            self.guard = LabelGuard(self.config)
            if value is not None:
                self.guard.load(value)
        elif tag == "t":
            self._load_ticket(rest, value)
        elif tag in ("T", "A", "S"):
            stores: dict[str, SliceStore[Any]] = {
                "T": self.tickets_store, "A": self.agents_store, "S": self.surveys_store
            }
            store = stores[tag]
            if value is None:
                store.slices.pop(int(rest), None)
            else:
                store.load_slice(int(rest), value)
        elif tag == "P":
            if value is None:
                self._parked.discard(rest)
            else:
                self._parked.add(rest)
        # `D:` (survey dedup ids) matters to the engine only.

    def _load_meta(self, meta: Mapping[str, Any]) -> None:
        self._st[TICKETS], self._st[SURVEYS] = meta["st"]
        for r in ROLES:
            self._outcomes[r] = dict(zip(list(Outcome), meta["o"][r], strict=True))
        self.tickets_store.sealed = self.agents_store.sealed = meta["sealed"][0]
        self.surveys_store.sealed = meta["sealed"][1]
        self.dropped_contributions = meta["dropped"]
        self.duplicate_conflicts = dict(zip(ROLES, meta.get("dc", (0, 0)), strict=True))
        # Deleted slices lie before the engine's eviction frontier, which trails
        # this one: caches then rebuild rather than subtract a slice now gone.
        cfg = self.config
        st_t, st_s = self._st[TICKETS], self._st[SURVEYS]
        for store, st in (
            (self.tickets_store, st_t), (self.agents_store, st_t), (self.surveys_store, st_s)
        ):
            if st is not None:
                store.evicted = max(store.evicted, evict_before(cfg, st))

    def _load_cum(self, cum: Mapping[str, Any]) -> None:
        self._cum_tickets = {
            tuple(k): TicketAgg.from_json(v, self._nb, with_sketch=False) for k, v in cum["t"]
        }
        self._cum_surveys = {k: survey_counts(v) for k, v in cum["s"].items()}

    def _load_ticket(self, tid: str, value: Mapping[str, Any] | None) -> None:
        self._open.pop(tid, None)
        self._live.discard(tid)
        if value is None or "x" in value:
            return  # deleted, or a tombstone (attribution for late surveys only)
        self._live.add(tid)
        events = [decode_ticket_event(raw) for raw in value["e"]]
        events.sort(key=event_order)  # as written; sorted again, as a restore does
        view = derive_all(events, self._params, None).view
        if view.is_open:
            t = open_ticket(view)
            self._open[tid] = (
                view.last_ts + self.config.retention_ms, t.team, t.channel, t.priority,
                t.created_ts, t.assignee, t.unanswered, t.clock_ts,
            )  # fmt: skip

    # ------------------------------------------------------------- read model

    def stream_time(self, role: str) -> int | None:
        return self._st[role]

    def outcome_counts(self, role: str) -> Mapping[str, int]:
        return self._outcomes[role]

    def open_tickets(self, at_ms: int) -> Iterator[OpenTicket]:
        for row in self._open.values():
            if row[0] >= at_ms:
                yield OpenTicket(*row[1:])

    def cumulative_tickets(self) -> Mapping[Key, TicketAgg]:
        return self._cum_tickets

    def cumulative_surveys(self) -> Mapping[str, Sequence[int]]:
        return self._cum_surveys

    def parked_surveys(self) -> int:
        return len(self._parked)

    def tickets_tracked(self) -> int:
        return len(self._live)
