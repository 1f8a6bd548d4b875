"""The state of one partition engine, the base of its job modules.

`PartitionEngine` (partition.py) is this state plus one mixin per job
(ticket events, deferral, upkeep, surveys, snapshot); each job module reads
on its own and reaches the others only through the methods declared below.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from cxpulse.core.config import CoreConfig
from cxpulse.core.dimensions import LabelGuard
from cxpulse.core.engine.stores import slice_stores
from cxpulse.core.events import SURVEYS, TICKETS, SurveyEvent, TicketEvent
from cxpulse.core.outcome import ROLES, Outcome
from cxpulse.core.slices import AgentAgg, Key, SliceStore, SurveyAgg, TicketAgg
from cxpulse.core.tickets import Attribution, DeriveParams, TicketState, TicketView

#: Granularity of the packing schedule (`StreamTimeUpkeep._pack_idle`): a ticket is
#: packed between `CoreConfig.pack_idle_ms` and that plus this after its newest event.
IDLE_BUCKET_MS = 300_000


class EngineState:
    """All state of source partition number p: tickets partition p + surveys partition p
    (co-partitioned by key)."""

    def __init__(self, config: CoreConfig, partition: int) -> None:
        self.config = config
        self.partition = partition
        self._params = DeriveParams(
            config.slice_ms, config.frt_target_ms, dict(config.frt_target_by_priority)
        )
        self.tickets_store: SliceStore[TicketAgg]
        self.agents_store: SliceStore[AgentAgg]
        self.surveys_store: SliceStore[SurveyAgg]
        self.tickets_store, self.agents_store, self.surveys_store = slice_stores(config)
        self.ctx = self.tickets_store.ctx
        nb = len(config.histogram_buckets_ms) + 1
        self._nb = nb
        self.guard = LabelGuard(config)
        self._st: dict[str, int | None] = {TICKETS: None, SURVEYS: None}
        self._outcomes: dict[str, dict[str, int]] = {r: {o: 0 for o in Outcome} for r in ROLES}
        #: Live tickets; an idle one packed (bytes, `TicketState.pack`): see
        #: `StreamTimeUpkeep._pack_idle`; `TicketEvents._live` unpacks it.
        self._tickets: dict[str, TicketState | bytes] = {}
        self._tombs: dict[str, tuple[int, Attribution]] = {}
        #: Hour bucket -> ids filed under it (`StreamTimeUpkeep._schedule_expiry`).
        self._expiry_buckets: dict[int, list[str]] = {}
        self._expiry_heap: list[int] = []
        #: Bucket of a newest event time -> ids filed under it, to be packed once idle
        #: (`StreamTimeUpkeep._file_idle`), and the heap of those buckets.
        self._idle_buckets: dict[int, list[str]] = {}
        self._idle_heap: list[int] = []
        #: A bucket's tickets are looked at once the stream time is this past its start.
        self._pack_lag = IDLE_BUCKET_MS + config.pack_idle_ms
        self._deadlines: list[tuple[int, str]] = []
        self._dedup: dict[str, int] = {}
        self._dedup_slices: dict[int, set[str]] = {}
        self._dedup_heap: list[int] = []  # the keys of _dedup_slices, to evict the oldest
        self._dedup_evicted = -(2**62)
        self._parked: dict[str, SurveyEvent] = {}
        #: (ts, event_id) of parked surveys; an entry whose survey was released
        #: or replaced by a conflicting copy is skipped (`_parked_head`)
        self._park_heap: list[tuple[int, str]] = []
        #: Per survey event_id in `_dedup`: the copy kept and the slice key it
        #: was added under (None while parked), to resolve a conflicting copy.
        self._survey_kept: dict[str, tuple[SurveyEvent, Key | None]] = {}
        self._cum_tickets: dict[Key, TicketAgg] = {}
        self._cum_surveys: dict[str, list[int]] = {}
        self.dropped_contributions = 0
        #: Per role: copies of a kept event_id with different content (see
        #: `cxpulse.core.duplicates`); counted, the rule picks the copy that counts.
        self.duplicate_conflicts: dict[str, int] = dict.fromkeys(ROLES, 0)
        self._dirty: set[str] = {"m"}
        # Deferred re-derivation (see `begin_batch`): tickets whose derived state
        # lags their events, and the label budget of the current deferral period.
        self._deferring = False
        self._stale: dict[str, TicketState] = {}
        self._label_room = 0.0
        self._label_cost = 0

    if TYPE_CHECKING:  # what one job calls of another (defined in their modules)

        def settle(self) -> None: ...
        def _defer(self, tid: str, state: TicketState, late: bool, e: TicketEvent) -> bool: ...
        def _unseen_labels(self, events: Iterable[TicketEvent]) -> int: ...
        def _rederive(self, tid: str, state: TicketState, apply: bool = True) -> None: ...
        def _resume(self, tid: str, state: TicketState, event: TicketEvent | None) -> None: ...
        def _drop(self, tid: str, state: TicketState | bytes) -> None: ...
        def _live(self, tid: str, packed: bytes) -> TicketState: ...
        def _view(self, tid: str, state: TicketState | bytes) -> TicketView: ...
        def _file_idle(self, tid: str, last_ts: int) -> None: ...
        def _evict_before(self, st: int) -> int: ...
        def _on_tickets_time(self) -> None: ...
        def _schedule_expiry(self, tid: str, expiry: int) -> None: ...
        def _refile_expiry(self, tid: str, state: TicketState, expiry: int) -> None: ...
        def _parked_head(self) -> int | None: ...
        def _release(self, eid: str) -> None: ...
        def _seal_surveys(self) -> None: ...
