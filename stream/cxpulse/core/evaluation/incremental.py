"""`Incremental`: what an evaluation of changelog replicas keeps for the next one.

Why: the exporter evaluates every partition about twice a second under load, and a
full evaluation rebuilt every window's merged views from each partition's window
cache (a copy of every view of every window, the unsealed slices folded into each
window again) and recomputed every KPI of every view: 0.6-1.1 s for 5.8k series at
5k events/s, most of the produce -> visible latency (issue 22). Between two
evaluations only a few slices change (the filling one, late events in the last
minutes) and the windows move by a slice a minute.

What is kept, per store and window (the KPI windows, and the breach forecast's pace
spans for the ticket store): the views merged over every partition, which each
evaluation moves by the slices that changed, entered or left, key by key (the
aggregates are integer vectors: subtracting is exact), and the set of views touched
since the last evaluation; per window and kind, the KPI values of each capped view,
recomputed only for the views touched and those whose raw members the read-time caps
moved (`_moved`). Everything else is time-driven or cheap and is computed in full each time,
exactly as `evaluate` without it: the backlog gauges (ages, at-risk and breached
counts, the forecast move with the clock, without new state), the collapse evidence
(memoised per sealed slice already), counters, caps and the ticket and survey
universes (the agent universe is the longest agents window's `ActiveAgents`).

How a change is seen: a replica replaces a slice's dict whenever a new value arrives
(it never mutates one), so a slice whose dict is the one folded last time is
unchanged, and a new dict is compared with the old key by key (aggregates equal by
content are skipped). An engine mutates its slices in place: it cannot be evaluated
incrementally (`advance` refuses it). The results equal a full evaluation's
(tests/unit/test_evaluation_incremental.py, at every step of simulated days).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, cast

from cxpulse.core.dimensions import OTHER, UNKNOWN, LabelGuard
from cxpulse.core.evaluation.backlog import Backlog, peeked
from cxpulse.core.evaluation.caps import Caps, cap_view
from cxpulse.core.evaluation.view import OpenTicket, PartitionView
from cxpulse.core.evaluation.windows import Memo
from cxpulse.core.events import SurveyKind
from cxpulse.core.slices import Key, SliceStore

#: A slice's content: key -> aggregate (never mutated once a replica stored it)
Slice = dict[Key, Any]
#: One changed key of a slice: (key, aggregate before or None, aggregate now or None)
Change = tuple[Key, Any, Any]

_STORES: dict[str, Callable[[PartitionView], SliceStore[Any]]] = {
    "T": lambda e: e.tickets_store,
    "A": lambda e: e.agents_store,
    "S": lambda e: e.surveys_store,
}


def same(a: Any, b: Any) -> bool:
    """Equal content of two aggregates of one store (ticket, agent or survey)."""
    if a.counts != b.counts:
        return False
    if not hasattr(a, "opt"):
        return True
    for i in range(3):
        da = a.opt[i] if a.opt is not None else None
        db = b.opt[i] if b.opt is not None else None
        na = da.n if da is not None else 0
        nb = db.n if db is not None else 0
        if na != nb:
            return False
        if not na or da is None or db is None:
            continue
        if da.total != db.total or da.hist != db.hist:
            return False
        sa, sb = da.sketch, db.sketch
        if (sa is None) != (sb is None):
            return False
        if sa is not None and (sa.zeros != sb.zeros or sa.bins != sb.bins):
            return False
    return True


def changes(old: Slice | None, new: Slice | None) -> list[Change]:
    """The keys whose aggregate differs between two contents of one slice."""
    if old is None:
        return [(k, None, a) for k, a in (new or {}).items()]
    if new is None:
        return [(k, b, None) for k, b in old.items()]
    out: list[Change] = []
    for k, a in new.items():
        b = old.get(k)
        if b is None or (b is not a and not same(a, b)):
            out.append((k, b, a))
    out.extend((k, b, None) for k, b in old.items() if k not in new)
    return out


class ActiveAgents:
    """The agents active in one agents window (their view there is not empty): raw agent
    -> its ("agent", agent) view, and raw team -> the agents of its non-empty ("ta",
    team, agent) views. Kept as the window folds (`note`), so that an evaluation reads
    them instead of scanning every agent view of the window for the active-agent counts
    and the `other` agent's sums, about a quarter of an evaluation on a fresh stream,
    where nearly every evaluation sees an agent change (issue 22)."""

    __slots__ = ("agents", "teams")

    def __init__(self) -> None:
        self.agents: dict[str, Any] = {}
        self.teams: dict[str, set[str]] = {}

    def note(self, view: Key, agg: Any | None) -> None:
        """`view` is now `agg` in the window (None: absent)."""
        active = agg is not None and not agg.is_empty()
        if view[0] == "agent":
            if active:
                self.agents[view[1]] = agg
            else:
                self.agents.pop(view[1], None)
        elif view[0] == "ta":
            team, agent = view[1], view[2]
            if active:
                self.teams.setdefault(team, set()).add(agent)
            elif (members := self.teams.get(team)) is not None:
                members.discard(agent)
                if not members:
                    del self.teams[team]


class _Window:
    """The views of one store merged over every partition's slices in [end - width, end)."""

    __slots__ = ("active", "dirty", "views", "views_of", "width")

    def __init__(self, width: int, views_of: Callable[[Key], Iterable[Key]],
                 active: ActiveAgents | None = None) -> None:  # fmt: skip
        self.width = width
        self.views_of = views_of
        self.views: dict[Key, Any] = {}
        #: raw views touched since the last evaluation read them (None: all may have)
        self.dirty: set[Key] | None = None
        #: the agents store's windows: its active agents, kept as it folds
        self.active = active

    def fold(self, delta: Delta) -> None:
        """Add `delta`'s change, subtract its minus and add its plus, view by view (all
        shared between windows: copied, never kept). Each step leaves every view a sum of
        slices' aggregates (the change first: the views the minus leaves still hold it);
        a view left empty is dropped once all three are in."""
        views, dirty, active = self.views, self.dirty, self.active
        minus, change, plus = delta
        for held, sign in ((change, 1), (minus, -1)):
            for view, m in held.items():
                v = views.get(view)
                if v is None:
                    raise AssertionError("incremental window lost a view")
                v.merge(m, sign)
        for view, p in plus.items():
            v = views.get(view)
            if v is None:
                views[view] = p.copy()
            else:
                v.merge(p)
        for held in (change, minus, plus):
            for view in held:
                v = views.get(view)
                if v is not None and v.is_empty():
                    del views[view]
                    v = None
                if dirty is not None:
                    dirty.add(view)
                if active is not None:
                    active.note(view, v)


#: What one slice's change does to every view it reaches, each summed per view: (the old
#: aggregates of the keys it lost, the signed differences new - old of the keys whose
#: aggregate changed (`TicketAgg.minus`), the new aggregates of the keys it gained)
Delta = tuple[dict[Key, Any], dict[Key, Any], dict[Key, Any]]


def delta(views_of: Callable[[Key], Iterable[Key]], before: Slice | None,
          after: Slice | None) -> Delta:
    """The change from `before` to `after` per view, computed once per slice and applied
    to every window holding it (the changed keys of a slice mostly reach the same few
    views: all, a team, a channel, a priority). A key whose aggregate changed counts by
    its signed difference, a few buckets and sketch bins for a batch's events: summing
    those per view and merging the sum into each window is cheaper than summing every
    changed key's whole old and new aggregates per view (with sketches of ~100 bins)
    and merging both (moving the windows was 37-46 % of an evaluation at 5k events/s,
    issue 22)."""
    sides: Delta = ({}, {}, {})
    owned: set[tuple[int, Key]] = set()  # sums that are copies (a key's own: not yet)
    for key, old, new in changes(before, after):
        which, agg = (0, old) if new is None else (2, new) if old is None else (1, new.minus(old))
        side = sides[which]
        for view in views_of(key):
            mine = side.get(view)
            if mine is None:
                side[view] = agg  # the key's own: copied if another key sums into it
                continue
            if (which, view) not in owned:
                side[view] = mine = mine.copy()
                owned.add((which, view))
            if which == 1:
                mine.absorb(agg)
            else:
                mine.merge(agg)
    return sides


class Replica(PartitionView, Protocol):
    """What an incremental evaluation reads beyond `PartitionView` (`PartitionReplica`)."""

    SLICES_REPLACED_WHOLE: ClassVar[bool]

    def open_rows(self) -> Mapping[str, bytes]: ...
    def row_ticket(self, row: bytes) -> tuple[int, OpenTicket]: ...
    def open_changes(self, start: bool = False
                     ) -> list[tuple[tuple[int, OpenTicket] | None, tuple[int, OpenTicket] | None]]:
        ...


def replicas(engines: Sequence[PartitionView]) -> list[Replica]:
    """`engines` as replicas; a TypeError for anything else (an engine mutates its slices
    in place: what changed could not be seen)."""
    for eng in engines:
        if not getattr(eng, "SLICES_REPLACED_WHOLE", False):
            raise TypeError("incremental evaluation needs slices replaced, never "
                            "mutated in place (a PartitionReplica)")  # fmt: skip
    return [cast(Replica, e) for e in engines]


def _count(b: Backlog, capped: Counter[tuple[str, str]], eng: PartitionView, t: OpenTicket,
           sign: int) -> None:
    """Count `t` in or out of `b`, and its label values counted under `other` in `capped`."""
    team, channel, agent, target = peeked(eng, t)
    b.add(t, team, channel, agent, target, sign)
    for dim, raw, label in (("team", t.team or UNKNOWN, team),
                            ("channel", t.channel or UNKNOWN, channel),
                            ("agent", t.assignee, agent)):  # fmt: skip
        if label == OTHER and raw is not None and raw != OTHER:
            capped[(dim, raw)] += sign
            if not capped[(dim, raw)]:
                del capped[(dim, raw)]


def _same_peeks(old: LabelGuard, new: LabelGuard, capped: Counter[tuple[str, str]]) -> bool:
    """Does every counted ticket peek the same labels through `new` as through `old`? A
    guard only ever admits more values (its allow-lists are the configuration's): a value
    admitted before still is, and one counted under `other` changes only if now admitted."""
    if old is new:
        return True
    if any(not old.seen[d] <= new.seen.get(d, set()) for d in old.seen):
        return False
    return not any(value in new.seen.get(dim, ()) for dim, value in capped)


def _moved(old: Caps, new: Caps) -> dict[str, set[str]] | None:
    """Per dimension, the capped values whose raw members differ between two read-time
    caps (None: they cap different dimensions; every view may have moved). Why: a new
    label value (an agent's first event) changes the caps, and on a fresh stream nearly
    every evaluation sees one; recomputing every view then was most of the evaluation
    (issue 22). A raw value capped otherwise moves both of its capped values; a value
    in neither map is `other` in both."""
    if old.maps.keys() != new.maps.keys():
        return None
    out: dict[str, set[str]] = {}
    for dim, m0 in old.maps.items():
        m1 = new.maps[dim]
        if m0 == m1:
            continue
        changed = out[dim] = set()
        for value in m0.keys() | m1.keys():
            c0, c1 = m0.get(value, OTHER), m1.get(value, OTHER)
            if c0 != c1:
                changed.update((c0, c1))
    return out


class Incremental:
    """Merged window views and KPI values of the previous evaluation (see the module).

    One per sequence of evaluations of the same replicas (the exporter keeps one);
    `evaluate(replicas, at, incremental=...)` reads and updates it."""

    def __init__(self) -> None:
        self._reset(())

    def _reset(self, partitions: tuple[int, ...]) -> None:
        self._partitions = partitions
        self._end: int | None = None
        #: (tag, width) -> merged views
        self._windows: dict[tuple[str, int], _Window] = {}
        #: (partition, tag) -> slice start -> the content folded at the last evaluation,
        #: for the starts in [end - the tag's widest window, end)
        self._held: dict[tuple[int, str], dict[int, Slice]] = {}
        #: (kind, window label) -> capped view -> KPI values
        self.memos: dict[tuple[str, str], Memo[Any]] = {}
        #: the read-time caps the memos were computed with
        self.caps: Caps | None = None
        #: `_moved(self.caps, _moved_for)`, for the caps of the evaluation under way
        self._moved_for: Caps | None = None
        self._moved: dict[str, set[str]] | None = None
        #: the open tickets counted (None: count them afresh), with the label guard of
        #: each partition they were peeked with, and the least expiry of any counted
        self._backlog: Backlog | None = None
        self._guards: list[LabelGuard] = []
        #: per partition: (dimension, value) counted under `other` -> open tickets
        self._capped: list[Counter[tuple[str, str]]] = []
        self._expiry = 0

    def backlog(self, engines: Sequence[PartitionView], at_ms: int) -> Backlog:
        """The open tickets at `at_ms` (`collect_backlog`), recounting only the tickets
        that changed since the last call. Counted afresh when a partition's label guard
        changed so that a counted ticket's labels peek otherwise (`_same_peeks`), or when
        a counted ticket may have expired by `at_ms` (the clock only removes tickets so)."""
        reps = replicas(engines)
        b = self._backlog
        if b is not None and len(reps) == len(self._guards) and all(
            _same_peeks(old, e.guard, capped)
            for old, e, capped in zip(self._guards, reps, self._capped, strict=True)
        ):
            for eng, capped in zip(reps, self._capped, strict=True):
                for before, after in eng.open_changes():
                    if before is not None:
                        _count(b, capped, eng, before[1], -1)
                    if after is not None:
                        _count(b, capped, eng, after[1], 1)
                        self._expiry = min(self._expiry, after[0])
            self._guards = [e.guard for e in reps]
            if self._expiry >= at_ms:
                return b
        b, self._expiry = Backlog(), 2**63
        self._capped = [Counter() for _ in reps]
        for eng, capped in zip(reps, self._capped, strict=True):
            eng.open_changes(start=True)
            for row in eng.open_rows().values():
                expiry, t = eng.row_ticket(row)
                self._expiry = min(self._expiry, expiry)
                if expiry >= at_ms:
                    _count(b, capped, eng, t, 1)
        self._guards = [e.guard for e in reps]
        # one expired but not yet deleted: counted afresh at each call until it is gone
        self._backlog = b if self._expiry >= at_ms else None
        return b

    def advance(self, engines: Sequence[PartitionView], widths: dict[str, tuple[int, ...]],
                end: int, slice_ms: int) -> None:
        """Move every window to end before slice start `end` and fold the slices that
        changed since the last call. `widths`: store tag -> window widths (ms)."""
        replicas(engines)
        partitions = tuple(e.partition for e in engines)
        if partitions != self._partitions or any(
            (tag, w) not in self._windows for tag, ws in widths.items() for w in ws
        ):
            self._reset(partitions)  # another set of replicas: start over
        old_end = self._end
        for tag, ws in widths.items():
            widest = max(ws)
            windows = []
            for w in ws:
                win = self._windows.get((tag, w))
                if win is None:
                    win = self._windows[(tag, w)] = _Window(
                        w, _STORES[tag](engines[0]).views_of,
                        ActiveAgents() if tag == "A" else None)  # fmt: skip
                windows.append(win)
            for eng in engines:
                store = _STORES[tag](eng)
                held = self._held.get((eng.partition, tag), {})
                now = {s: sl for s, sl in store.slices.items() if end - widest <= s < end}
                self._held[(eng.partition, tag)] = now
                deltas: dict[tuple[int, int], Delta] = {}  # both alive: ids are theirs

                def delta_of(before: Slice | None, after: Slice | None,
                             views_of: Callable[[Key], Iterable[Key]] = store.views_of,
                             deltas: dict[tuple[int, int], Delta] = deltas) -> Delta:
                    k = (id(before), id(after))
                    if (d := deltas.get(k)) is None:
                        d = deltas[k] = delta(views_of, before, after)
                    return d

                for win in windows:
                    self._move(win, held, now, old_end, end, slice_ms, delta_of)

    @staticmethod
    def _move(win: _Window, held: dict[int, Slice], now: dict[int, Slice],
              old_end: int | None, end: int, slice_ms: int,
              delta_of: Callable[[Slice | None, Slice | None], Delta]) -> None:
        w = win.width
        if old_end is None or end < old_end or end - old_end >= w:
            # first call or a jump: this partition's part is folded from scratch (the
            # other partitions' parts too, each in its turn: `held` is theirs)
            if old_end is not None:
                for s in range(old_end - w, old_end, slice_ms):
                    if (sl := held.get(s)) is not None:
                        win.fold(delta_of(sl, None))
            win.dirty = None
            for s, sl in now.items():
                if end - w <= s:
                    win.fold(delta_of(None, sl))
            return
        for s in range(old_end - w, end - w, slice_ms):  # left the window
            if (sl := held.get(s)) is not None:
                win.fold(delta_of(sl, None))
        for s in range(end - w, old_end, slice_ms):  # in it before and now: changed?
            before, after = held.get(s), now.get(s)
            if before is not after:
                win.fold(delta_of(before, after))
        for s in range(old_end, end, slice_ms):  # entered
            if (sl := now.get(s)) is not None:
                win.fold(delta_of(None, sl))

    def finish(self, end: int) -> None:
        """The evaluation read every window: what it touched is now reflected."""
        self._end = end
        for win in self._windows.values():
            win.dirty = set()

    def views(self, tag: str, width: int) -> dict[Key, Any]:
        """The merged views of one window (read only: kept for the next evaluation)."""
        return self._windows[(tag, width)].views

    def dirty(self, tag: str, width: int) -> set[Key] | None:
        return self._windows[(tag, width)].dirty

    def active_agents(self, width: int) -> ActiveAgents:
        """The active agents of the agents window `width` (read only)."""
        active = self._windows[("A", width)].active
        assert active is not None  # every agents window keeps them
        return active

    def kpi_dirty(self, width: int, caps: Caps
                  ) -> tuple[set[Key] | None, set[str] | None, set[Key] | None]:
        """The capped ticket views, agents and survey views of one KPI window whose values
        may differ from the memo's (None: all): a view any changed key reaches, for a
        ticket view of all or a team, one whose set of active agents may have changed, and
        a view whose raw members changed with the read-time caps (`moved`)."""
        if self._moved_for is not caps:  # once per evaluation, not per window
            self._moved_for = caps
            self._moved = None if self.caps is None else _moved(self.caps, caps)
        moved = self._moved
        if moved is None:
            return None, None, None
        dt, da, ds = self.dirty("T", width), self.dirty("A", width), self.dirty("S", width)
        agents: set[str] | None = None
        tickets: set[Key] | None = None
        if da is not None:
            agents = {caps("agent", v[1]) for v in da if v[0] == "agent"}
            agents.update(moved.get("agent", ()))
            if dt is not None:
                tickets = {cap_view(v, caps) for v in dt}
                if agents:
                    tickets.add(("all",))
                tickets.update(("team", caps("team", v[1])) for v in da if v[0] == "ta")
                tickets.update((dim, c) for dim, cs in moved.items() for c in cs)
        surveys = None if ds is None else {cap_view(v, caps) for v in ds}
        if surveys is not None:
            surveys.update((kind.value, dim, c) for kind in SurveyKind
                           for dim, cs in moved.items() for c in cs)  # fmt: skip
        return tickets, agents, surveys

    def memo(self, kind: str, window: str) -> Memo[Any]:
        return self.memos.setdefault((kind, window), {})
