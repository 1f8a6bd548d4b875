"""The engine's state as changelog values: `drain_dirty` (what changed) and
`restore` (the exact state back from the latest value of every key)."""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable
from typing import Any, Self

from cxpulse.core.config import CoreConfig
from cxpulse.core.engine.state import EngineState
from cxpulse.core.events import (
    SURVEYS,
    TICKETS,
    SurveyOffered,
    SurveyResponse,
)
from cxpulse.core.outcome import ROLES, Outcome
from cxpulse.core.slices import (
    Key,
    SliceStore,
    TicketAgg,
    survey_counts,
    survey_json,
)
from cxpulse.core.tickets import (
    Attribution,
    TicketState,
    decode_event,
    dumps,
    encode_event,
    packed_encoded,
    value_events,
)


def _key_json(key: Key | None) -> list[str] | None:
    return None if key is None else list(key)


def _dumps(obj: object) -> bytes:
    return dumps(obj)


class Snapshot(EngineState):
    """Serialize what changed; rebuild from the latest values."""

    def _meta_json(self) -> dict[str, Any]:
        return {
            "st": [self._st[TICKETS], self._st[SURVEYS]],
            "o": {r: [self._outcomes[r][o] for o in Outcome] for r in ROLES},
            "sealed": [self.tickets_store.sealed, self.surveys_store.sealed],
            "dd": self._dedup_evicted,
            "dropped": self.dropped_contributions,
            "dc": [self.duplicate_conflicts[r] for r in ROLES],
        }

    def _cum_json(self) -> dict[str, Any]:
        return {
            "t": [[list(k), a.to_json()] for k, a in sorted(self._cum_tickets.items())],
            "s": {k: survey_json(v) for k, v in sorted(self._cum_surveys.items())},
        }

    def _value(self, key: str) -> object | None:
        if key == "m":
            return self._meta_json()
        if key == "c":
            return self._cum_json()
        tag, _, rest = key.partition(":")
        if tag == "t":  # a live ticket's value is `drain_dirty`'s
            tomb = self._tombs.get(rest)
            return {"x": tomb[0], "a": tomb[1].to_json()} if tomb is not None else None
        if tag == "D":
            # [the copy kept, its slice key or None while parked], or the id alone
            # (before issue 22's compact values: [event_id, copy, key], read still)
            ids = self._dedup_slices.get(int(rest))
            if not ids:
                return None
            kept = self._survey_kept
            return [
                [encode_event(kept[eid][0]), _key_json(kept[eid][1])] if eid in kept else eid
                for eid in sorted(ids)
            ]
        if tag == "P":
            e = self._parked.get(rest)
            return encode_event(e) if e is not None else None
        raise KeyError(key)

    def drain_dirty(self) -> dict[str, bytes | None]:
        """Serialized state keys changed since the last drain (None = deleted).

        Keys: `m` meta (stream times, outcome counts, frontiers), `c` cumulative
        counters, `l` admitted labels, `t:<ticket>` a ticket or its tombstone,
        `T:/A:/S:<slice start>` a slice of ticket / agent / survey aggregates,
        `D:<slice start>` survey ids seen in a slice (dedup) with the copy kept
        and its slice key, `P:<event>` a parked survey. Values are
        deterministic compact JSON."""
        self.settle()
        out: dict[str, bytes | None] = {}
        tickets = self._tickets
        for key in self._dirty:
            state = tickets.get(key[2:]) if key[0] == "t" else None
            if state is not None:
                out[key] = (
                    state.encoded()
                    if isinstance(state, TicketState)
                    else packed_encoded(key[2:], state)
                )
                continue
            value = self._value(key)
            out[key] = None if value is None else _dumps(value)
        self._dirty.clear()
        for tag, store in (
            ("T", self.tickets_store),
            ("A", self.agents_store),
            ("S", self.surveys_store),
        ):
            for start in store.dirty:
                out[f"{tag}:{start}"] = store.slice_bytes(start, _dumps)
            store.dirty.clear()
        if self.guard.dirty:
            out["l"] = _dumps(self.guard.to_json())
            self.guard.dirty = False
        return out

    @classmethod
    def restore(
        cls,
        config: CoreConfig,
        partition: int,
        items: Iterable[tuple[str, bytes]],
    ) -> Self:
        """Rebuild the exact state from the latest value of every key."""
        eng = cls(config, partition)
        latest: dict[str, Any] = {}
        for key, raw in items:
            latest[key] = json.loads(raw)
        meta = latest.get("m")
        if meta is not None:
            eng._st[TICKETS], eng._st[SURVEYS] = meta["st"]
            for r in ROLES:
                eng._outcomes[r] = dict(zip(list(Outcome), meta["o"][r], strict=True))
            eng.tickets_store.sealed = eng.agents_store.sealed = meta["sealed"][0]
            eng.surveys_store.sealed = meta["sealed"][1]
            eng._dedup_evicted = meta["dd"]
            eng.dropped_contributions = meta["dropped"]
            eng.duplicate_conflicts = dict(zip(ROLES, meta.get("dc", (0, 0)), strict=True))
        if "l" in latest:
            eng.guard.load(latest["l"])
        if "c" in latest:
            for k, v in latest["c"]["t"]:
                eng._cum_tickets[tuple(k)] = TicketAgg.from_json(v, eng._nb, with_sketch=False)
            eng._cum_surveys = {k: survey_counts(v) for k, v in latest["c"]["s"].items()}
        stores: dict[str, SliceStore[Any]] = {
            "T": eng.tickets_store,
            "A": eng.agents_store,
            "S": eng.surveys_store,
        }
        for key, value in latest.items():
            tag, _, rest = key.partition(":")
            if tag in stores:
                stores[tag].load_slice(int(rest), value)
            elif tag == "D":
                s = int(rest)
                ids: set[str] = set()
                for item in value:
                    if isinstance(item, str):  # an id alone (values written before copies)
                        eid = item
                    else:
                        raw, k = item[-2:]  # [id, copy, key] before compact values
                        kept = decode_event(raw)
                        assert isinstance(kept, SurveyResponse | SurveyOffered)
                        eid = kept.event_id
                        eng._survey_kept[eid] = (kept, None if k is None else tuple(k))
                    ids.add(eid)
                    eng._dedup[eid] = s
                eng._dedup_slices[s] = ids
                eng._dedup_heap.append(s)
            elif tag == "P":
                e = decode_event(value)
                assert isinstance(e, SurveyResponse | SurveyOffered)
                eng._parked[e.event_id] = e
                eng._park_heap.append((e.ts, e.event_id))
        heapq.heapify(eng._park_heap)
        heapq.heapify(eng._dedup_heap)
        for key in sorted(k for k in latest if k.startswith("t:")):
            tid, value = key[2:], latest[key]
            if "x" in value:
                eng._tombs[tid] = (int(value["x"]), Attribution.from_json(value["a"]))
                eng._schedule_expiry(tid, int(value["x"]))
                continue
            state = eng._tickets[tid] = TicketState(tid)
            state.load(value_events(value, tid), set(value.get("l", ())))
            eng._rederive(tid, state, apply=False)
            if state.last_ts is not None:
                eng._file_idle(tid, state.last_ts)  # packed once the stream time moves
        for store in (eng.tickets_store, eng.agents_store):
            st = eng._st[TICKETS]
            store.evicted = eng._evict_before(st) if st is not None else store.evicted
            store.dirty.clear()
        st_s = eng._st[SURVEYS]
        if st_s is not None:
            eng.surveys_store.evicted = eng._evict_before(st_s)
        eng.surveys_store.dirty.clear()
        eng._dirty.clear()
        eng.guard.dirty = False
        return eng
