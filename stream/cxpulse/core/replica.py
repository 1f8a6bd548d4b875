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
import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from cxpulse.core.config import CoreConfig
from cxpulse.core.dimensions import LabelGuard
from cxpulse.core.engine.stores import evict_before, slice_stores
from cxpulse.core.evaluation.view import OpenTicket, open_ticket
from cxpulse.core.events import SURVEYS, TICKETS, event_order
from cxpulse.core.outcome import ROLES, Outcome
from cxpulse.core.slices import AgentAgg, Key, SliceStore, SurveyAgg, TicketAgg, survey_counts
from cxpulse.core.tickets import DeriveParams, derive_all, value_events

#: One open ticket's row: expiry, created, FRT clock start (ms); the indices of
#: its team, channel, priority and assignee in `_Labels`; unanswered. 41 bytes
#: in one object, where a tuple of the same fields took 8 pointers and 3 ints
#: of its own (issue 22: the exporter's memory per open ticket).
_ROW = struct.Struct("<qqqIIIIB")


class _Labels:
    """The label values open tickets hold, each kept once and referred to by index.

    Counted: a value no row refers to any more is dropped and its index reused,
    so a stream of ever-new values (a hostile team name per ticket) does not
    grow it beyond the open tickets' own values."""

    __slots__ = ("_free", "_index", "_refs", "_values")

    def __init__(self) -> None:
        self._index: dict[str | None, int] = {}
        self._values: list[str | None] = []
        self._refs: list[int] = []
        self._free: list[int] = []

    def __getitem__(self, i: int) -> str | None:
        return self._values[i]

    def __len__(self) -> int:
        return len(self._index)

    def ref(self, value: str | None) -> int:
        i = self._index.get(value)
        if i is None:
            if self._free:
                i = self._free.pop()
                self._values[i] = value
            else:
                i = len(self._values)
                self._values.append(value)
                self._refs.append(0)
            self._index[value] = i
        self._refs[i] += 1
        return i

    def unref(self, i: int) -> None:
        self._refs[i] -= 1
        if not self._refs[i]:
            del self._index[self._values[i]]
            self._values[i] = None
            self._free.append(i)


class PartitionReplica:
    """The committed state of source partition `partition`, key by key."""

    #: A slice's dict is replaced when a new value of it is read, never changed in place:
    #: an incremental evaluation (`cxpulse.core.evaluation.incremental`) relies on it.
    SLICES_REPLACED_WHOLE: ClassVar[bool] = True

    def __init__(self, config: CoreConfig, partition: int) -> None:
        self.partition = partition
        self.config = config
        self._params = DeriveParams(
            config.slice_ms, config.frt_target_ms, dict(config.frt_target_by_priority)
        )
        self._tickets_store: SliceStore[TicketAgg]
        self._agents_store: SliceStore[AgentAgg]
        self._surveys_store: SliceStore[SurveyAgg]
        self._tickets_store, self._agents_store, self._surveys_store = slice_stores(config)
        self._stores: dict[str, SliceStore[Any]] = {
            "T": self._tickets_store, "A": self._agents_store, "S": self._surveys_store
        }
        #: store tag -> slice start -> its latest committed value, not parsed yet.
        #: A worker rewrites the slice that is filling at every commit (several a
        #: second); parsing it took about 40 % of the exporter's apply time, for a
        #: value the next commit replaces. Parsed when an evaluation reads the store, or
        #: when the slice is sealed (`_load_meta`).
        self._unparsed: dict[str, dict[int, bytes]] = {"T": {}, "A": {}, "S": {}}
        self._nb = len(config.histogram_buckets_ms) + 1
        self.guard = LabelGuard(config)
        self.dropped_contributions = 0
        self.duplicate_conflicts: dict[str, int] = dict.fromkeys(ROLES, 0)
        self._st: dict[str, int | None] = {TICKETS: None, SURVEYS: None}
        self._outcomes: dict[str, dict[str, int]] = {r: {o: 0 for o in Outcome} for r in ROLES}
        #: open ticket -> its packed row (`_ROW`); the `OpenTicket` is built when an
        #: evaluation reads it. Tickets tracked but not open: `_closed`.
        self._open: dict[str, bytes] = {}
        self._labels = _Labels()
        self._closed: set[str] = set()
        #: open_changes's bookkeeping (None until an incremental evaluation asks): ticket
        #: -> its row as of the last call (None: it was not open), labels still referenced
        self._retired: dict[str, bytes | None] | None = None
        self._parked: set[str] = set()
        self._cum_tickets: dict[Key, TicketAgg] = {}
        self._cum_surveys: dict[str, list[int]] = {}

    # ----------------------------------------------------------------- input

    def apply(self, name: str, raw: bytes | None) -> None:
        """Set state key `name` to its committed value (None: the key was deleted).

        Apply every key of a committed batch before evaluating: a batch may seal
        a slice (meta) and write its last change together."""
        tag, _, rest = name.partition(":")
        if tag in ("T", "A", "S"):
            unparsed, start = self._unparsed[tag], int(rest)
            if raw is None:
                unparsed.pop(start, None)
                self._stores[tag].slices.pop(start, None)
            else:
                unparsed[start] = raw
            return
        if tag == "D":
            return  # survey dedup ids matter to the engine only
        value: Any = None if raw is None else json.loads(raw)
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
        elif tag == "P":
            if value is None:
                self._parked.discard(rest)
            else:
                self._parked.add(rest)

    def _parsed(self, tag: str) -> SliceStore[Any]:
        """Store `tag` with every slice value received so far loaded."""
        store, unparsed = self._stores[tag], self._unparsed[tag]
        if unparsed:
            for start, raw in unparsed.items():
                store.load_slice(start, json.loads(raw))
            unparsed.clear()
        return store

    def _load_meta(self, meta: Mapping[str, Any]) -> None:
        self._st[TICKETS], self._st[SURVEYS] = meta["st"]
        for r in ROLES:
            self._outcomes[r] = dict(zip(list(Outcome), meta["o"][r], strict=True))
        self._tickets_store.sealed = self._agents_store.sealed = meta["sealed"][0]
        self._surveys_store.sealed = meta["sealed"][1]
        self.dropped_contributions = meta["dropped"]
        self.duplicate_conflicts = dict(zip(ROLES, meta.get("dc", (0, 0)), strict=True))
        # Deleted slices lie before the engine's eviction frontier, which trails
        # this one: caches then rebuild rather than subtract a slice now gone.
        cfg = self.config
        st_t, st_s = self._st[TICKETS], self._st[SURVEYS]
        for store, st in (
            (self._tickets_store, st_t), (self._agents_store, st_t), (self._surveys_store, st_s)
        ):
            if st is not None:
                store.evicted = max(store.evicted, evict_before(cfg, st))
        # A sealed slice is final: parsed now, once, while a catch-up applies the changelog,
        # rather than all at once by the first evaluation after a restart (15-16 s of it
        # at the end of a busy day, issue 22). Live, that is a slice a minute.
        for tag, unparsed in self._unparsed.items():
            store = self._stores[tag]
            for start in [s for s in unparsed if s < store.sealed]:
                store.load_slice(start, json.loads(unparsed.pop(start)))

    def _load_cum(self, cum: Mapping[str, Any]) -> None:
        self._cum_tickets = {
            tuple(k): TicketAgg.from_json(v, self._nb, with_sketch=False) for k, v in cum["t"]
        }
        self._cum_surveys = {k: survey_counts(v) for k, v in cum["s"].items()}

    def _load_ticket(self, tid: str, value: Mapping[str, Any] | None) -> None:
        retired = self._retired
        if (old := self._open.pop(tid, None)) is not None:
            if retired is not None and tid not in retired:
                retired[tid] = old  # as counted: its labels are let go in `open_changes`
            else:
                self._unref(old)
        elif retired is not None:
            retired.setdefault(tid, None)
        self._closed.discard(tid)
        if value is None or "x" in value:
            return  # deleted, or a tombstone (attribution for late surveys only)
        events = value_events(value, tid)
        events.sort(key=event_order)  # as written; sorted again, as a restore does
        view = derive_all(events, self._params, None).view
        if not view.is_open:
            self._closed.add(tid)
            return
        t = open_ticket(view)
        ref = self._labels.ref
        self._open[tid] = _ROW.pack(
            view.last_ts + self.config.retention_ms, t.created_ts, t.clock_ts,
            ref(t.team), ref(t.channel), ref(t.priority), ref(t.assignee), t.unanswered,
        )  # fmt: skip

    def _unref(self, row: bytes) -> None:
        unref = self._labels.unref
        for i in _ROW.unpack(row)[3:7]:
            unref(i)

    # ------------------------------------------------------------- read model

    @property
    def tickets_store(self) -> SliceStore[TicketAgg]:
        return self._parsed("T")

    @property
    def agents_store(self) -> SliceStore[AgentAgg]:
        return self._parsed("A")

    @property
    def surveys_store(self) -> SliceStore[SurveyAgg]:
        return self._parsed("S")

    def stream_time(self, role: str) -> int | None:
        return self._st[role]

    def outcome_counts(self, role: str) -> Mapping[str, int]:
        return self._outcomes[role]

    def open_tickets(self, at_ms: int) -> Iterator[OpenTicket]:
        for expiry, t in map(self.row_ticket, self._open.values()):
            if expiry >= at_ms:
                yield t

    def open_rows(self) -> Mapping[str, bytes]:
        """Open ticket -> its packed row (read only). A changed ticket gets a new row
        object: an incremental evaluation recounts the rows that are not the ones it
        counted (`cxpulse.core.evaluation.incremental`)."""
        return self._open

    def open_changes(self, start: bool = False
                     ) -> list[tuple[tuple[int, OpenTicket] | None, tuple[int, OpenTicket] | None]]:
        """The open tickets that changed since the previous call, each as (expiry, ticket)
        then and now (None: not open). Why: an incremental evaluation keeps the backlog
        and recounts these only. `start`: forget what was kept (the caller counts
        `open_rows` afresh); returns nothing."""
        retired, self._retired = self._retired, {}
        out: list[tuple[tuple[int, OpenTicket] | None, tuple[int, OpenTicket] | None]] = []
        for tid, old in (retired or {}).items():
            if not start:
                row = self._open.get(tid)
                out.append((None if old is None else self.row_ticket(old),
                            None if row is None else self.row_ticket(row)))  # fmt: skip
            if old is not None:
                self._unref(old)
        return out

    def row_ticket(self, row: bytes) -> tuple[int, OpenTicket]:
        """(expiry, the open ticket) of a row of `open_rows`: a ticket with no event for
        `retention_ms` is no longer open from its expiry on."""
        label = self._labels.__getitem__
        expiry, created, clock, team, channel, prio, assignee, unanswered = _ROW.unpack(row)
        priority = label(prio)
        assert priority is not None  # a ticket's priority always has a value
        return expiry, OpenTicket(
            label(team), label(channel), priority, created, label(assignee),
            bool(unanswered), clock,
        )  # fmt: skip

    def cumulative_tickets(self) -> Mapping[Key, TicketAgg]:
        return self._cum_tickets

    def cumulative_surveys(self) -> Mapping[str, Sequence[int]]:
        return self._cum_surveys

    def parked_surveys(self) -> int:
        return len(self._parked)

    def tickets_tracked(self) -> int:
        return len(self._open) + len(self._closed)
