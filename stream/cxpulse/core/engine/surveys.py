"""Survey events: dedup and conflicts, parking until the ticket partition has
caught up, attribution, sealing."""

from __future__ import annotations

import heapq

from cxpulse.core.dimensions import UNKNOWN
from cxpulse.core.duplicates import Verdict, resolve
from cxpulse.core.engine.state import EngineState
from cxpulse.core.events import (
    SURVEYS,
    TICKETS,
    SurveyEvent,
    SurveyOffered,
)
from cxpulse.core.outcome import Outcome
from cxpulse.core.slices import OFFERS_SLOT, survey_counts, survey_slot
from cxpulse.core.tickets import (
    Attribution,
)


def _slot(e: SurveyEvent) -> int:
    """Where a survey event counts in its histogram (`slices.survey_slot`)."""
    if isinstance(e, SurveyOffered):
        return OFFERS_SLOT
    return survey_slot(e.survey, e.scale, e.score)


class SurveyEvents(EngineState):
    """How one survey event changes the engine (`PartitionEngine.apply` calls `_apply_survey`)."""

    def _apply_survey(self, e: SurveyEvent) -> Outcome:
        cfg = self.config
        if self._stale:
            self.settle()  # attribution reads ticket state; releases admit labels
        if e.event_id in self._dedup:
            return self._survey_duplicate(e)
        st = self._st[SURVEYS]
        if st is not None and e.ts < st - cfg.lateness_ms:
            return Outcome.LATE
        self._accept_survey(e)
        return Outcome.APPLIED

    def _survey_duplicate(self, e: SurveyEvent) -> Outcome:
        """A survey whose event_id is known: the rule of `_duplicate` for surveys
        (the smallest canonical copy counts, within the lateness; conflicts
        counted). Replacing retracts the kept copy from its slice (or its parking
        place) and applies the winner as if it arrived alone."""
        eid = e.event_id
        entry = self._survey_kept.get(eid)
        if entry is None:  # restored from a value without the copy: cannot compare
            return Outcome.DUPLICATE
        kept, key = entry
        if kept == e:
            return Outcome.DUPLICATE
        verdict = resolve(kept, e).verdict
        if verdict is Verdict.SAME:
            return Outcome.DUPLICATE
        self.duplicate_conflicts[SURVEYS] += 1
        cfg = self.config
        st = self._st[SURVEYS]
        assert st is not None  # the kept copy was applied
        if e.ts < st - cfg.lateness_ms:
            return Outcome.DUPLICATE
        if verdict is Verdict.REPLACE and kept.ts >= st - cfg.lateness_ms:
            if key is None:
                del self._parked[eid]  # its heap entry is skipped from now on
                self._dirty.add("P:" + eid)
            elif not self.surveys_store.add(cfg.slice_of(kept.ts), key, _slot(kept), 1, -1):
                self.dropped_contributions += 1
            s = self._dedup.pop(eid)
            self._dedup_slices[s].discard(eid)
            self._dirty.add(f"D:{s}")
            del self._survey_kept[eid]
            self._accept_survey(e)
        elif e.ts > st:
            # either copy could have arrived first and moved the stream time
            self._st[SURVEYS] = e.ts
            self._survey_tail(e.ts)
        return Outcome.DUPLICATE

    def _accept_survey(self, e: SurveyEvent) -> None:
        """Record an on-time survey (dedup), move the stream time, park or
        attribute it."""
        cfg = self.config
        st = self._st[SURVEYS]
        s = cfg.slice_of(e.ts)
        self._dedup[e.event_id] = s
        ids = self._dedup_slices.get(s)
        if ids is None:
            ids = self._dedup_slices[s] = set()
            heapq.heappush(self._dedup_heap, s)
        ids.add(e.event_id)
        self._dirty.add(f"D:{s}")
        if st is None or e.ts > st:
            self._st[SURVEYS] = st = e.ts
        needs = e.ticket_id is not None and (
            e.team is None or e.agent_id is None or e.channel is None
        )
        st_t = self._st[TICKETS]
        if needs and (st_t is None or st_t <= e.ts + cfg.lateness_ms):
            self._parked[e.event_id] = e
            self._survey_kept[e.event_id] = (e, None)
            heapq.heappush(self._park_heap, (e.ts, e.event_id))
            self._dirty.add("P:" + e.event_id)
        else:
            self._attribute(e)
        self._survey_tail(st)

    def _survey_tail(self, st: int) -> None:
        """After the surveys stream time moved to `st`: release surveys parked too
        long, forget ids beyond the retention, seal."""
        cfg = self.config
        heap = self._park_heap
        while (head := self._parked_head()) is not None and st - head > cfg.survey_park_max_ms:
            _, eid = heapq.heappop(heap)
            self._release(eid)
        evict = cfg.slice_of(st - cfg.retention_ms)
        if evict > self._dedup_evicted:
            dedup_heap = self._dedup_heap
            while dedup_heap and dedup_heap[0] < evict:
                old = heapq.heappop(dedup_heap)
                for eid in self._dedup_slices.pop(old):
                    del self._dedup[eid]
                    self._survey_kept.pop(eid, None)
                self._dirty.add(f"D:{old}")
            self._dedup_evicted = evict
        self._seal_surveys()

    def _parked_head(self) -> int | None:
        """Time of the oldest parked survey, dropping heap entries of surveys no
        longer parked under that time (released, or replaced by a copy)."""
        heap = self._park_heap
        parked = self._parked
        while heap:
            ts, eid = heap[0]
            e = parked.get(eid)
            if e is not None and e.ts == ts:
                return ts
            heapq.heappop(heap)
        return None

    def _release(self, eid: str) -> None:
        e = self._parked.pop(eid)
        self._dirty.add("P:" + eid)
        self._attribute(e)

    def attribution_of(self, ticket_id: str) -> Attribution | None:
        state = self._tickets.get(ticket_id)
        if state is not None:
            if ticket_id in self._stale:
                self._rederive(ticket_id, self._stale[ticket_id])
            return self._view(ticket_id, state).attribution()
        tomb = self._tombs.get(ticket_id)
        return tomb[1] if tomb is not None else None

    def _attribute(self, e: SurveyEvent) -> None:
        team, agent, channel = e.team, e.agent_id, e.channel
        if e.ticket_id is not None and (team is None or agent is None or channel is None):
            att = self.attribution_of(e.ticket_id)
            if att is not None:
                t2, a2, c2 = att.at(e.ts)
                team, agent, channel = team or t2, agent or a2, channel or c2
        admit = self.guard.admit
        key = (
            e.survey.value,
            admit("team", team or UNKNOWN),
            admit("channel", channel or UNKNOWN),
            admit("agent", agent or UNKNOWN),
            admit("touchpoint", e.touchpoint or UNKNOWN),
        )
        if not self.surveys_store.add(self.config.slice_of(e.ts), key, _slot(e), 1, 1):
            self.dropped_contributions += 1
        s = self._dedup.get(e.event_id)
        if s is not None:
            self._survey_kept[e.event_id] = (e, key)
            self._dirty.add(f"D:{s}")

    def _seal_surveys(self) -> None:
        st = self._st[SURVEYS]
        if st is None:
            return
        cfg = self.config
        frontier = st - cfg.lateness_ms
        head = self._parked_head()
        if head is not None:
            frontier = min(frontier, head)
        upto = cfg.slice_of(frontier)
        sealed = self.surveys_store.seal(upto)
        if sealed:
            for _, sl in sealed:
                for key, agg in sl.items():
                    cum = self._cum_surveys.setdefault(key[0], survey_counts(()))
                    for i, c in enumerate(agg.counts):
                        cum[i] += c
            self._dirty.add("c")
        self.surveys_store.evict(self._evict_before(st))
