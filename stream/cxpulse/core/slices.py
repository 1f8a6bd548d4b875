"""Event-time slices of mergeable aggregates, and rolling windows over them.

Every aggregate is a vector of integers (counts, integer-ms sums, histogram
bucket counts, sketch bucket counts), so adding *and subtracting* are exact
and order-insensitive. That gives the three properties the catalogue asks for:

* Applying a contribution touches one slice aggregate, whatever the number or
  length of windows.
* Memory is bounded by keys x slices: slices older than the longest window
  are evicted (once sealed, see below).
* Reading is cheap: each window keeps a cache of the merge of its *sealed*
  slices, already reduced to the views the KPIs need (all, per team, ...).
  A read advances the cache by adding the slices that became sealed and
  subtracting the slices that left the window (a scrape every 15 s moves a
  few slices), then adds the few unsealed slices fresh. A slice is sealed
  once no accepted event can change it any more: the engine guarantees that
  every contribution lands at an event time >= stream time - lateness (see
  `engine/partition.py`), so slices ending before that frontier are final. Sealed slices
  are also what the all-time cumulative counters are folded from, which is
  why those counters never decrease.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

from cxpulse.core.events import DEFAULT_SCALE, SCALE_SCORES, Scale, SurveyKind
from cxpulse.core.sketch import LogMapping, Sketch

Key = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AggContext:
    """Shared, configuration-derived parameters of every aggregate."""

    mapping: LogMapping
    bounds_ms: tuple[int, ...]  # classic histogram upper bounds (le), +Inf implied


class Agg(Protocol):
    def add(self, field: int, value: int, sign: int, ctx: AggContext) -> None: ...
    def merge(self, other: Self, sign: int = 1) -> None: ...
    def copy(self) -> Self: ...
    def minus(self, other: Self) -> Self: ...
    def absorb(self, other: Self) -> None: ...
    def is_empty(self) -> bool: ...
    def weight(self) -> int: ...
    def to_json(self) -> list[Any]: ...


# --- ticket aggregates -------------------------------------------------------

#: Count fields of `TicketAgg`.
CREATED, CUSTOMER_MSGS, SLA_MET, SLA_BREACHED, ONE_TOUCH, SOLVES, REOPENS = range(7)
N_COUNTS = 7
#: Distribution fields (field code = N_COUNTS + index).
FRT, RESOLUTION, WAIT = range(3)
F_FRT, F_RESOLUTION, F_WAIT = N_COUNTS + FRT, N_COUNTS + RESOLUTION, N_COUNTS + WAIT
DIST_NAMES = ("frt", "resolution", "wait")


class Dist:
    """Count, exact integer-ms sum, classic histogram and sketch of one duration."""

    __slots__ = ("hist", "n", "sketch", "total")

    def __init__(self, n_buckets: int, with_sketch: bool) -> None:
        self.n = 0
        self.total = 0
        self.hist = [0] * n_buckets
        self.sketch: Sketch | None = Sketch() if with_sketch else None

    def add(self, value: int, sign: int, ctx: AggContext) -> None:
        self.n += sign
        self.total += sign * value
        self.hist[bisect_left(ctx.bounds_ms, value)] += sign
        if self.sketch is not None:
            self.sketch.add(value, ctx.mapping, sign)

    def merge(self, other: Dist, sign: int) -> None:
        self.n += sign * other.n
        self.total += sign * other.total
        hist = self.hist
        for i, c in enumerate(other.hist):
            if c:
                hist[i] += sign * c
        if self.sketch is not None and other.sketch is not None:
            self.sketch.merge(other.sketch, sign)

    def copy(self) -> Dist:
        d = Dist.__new__(Dist)
        d.n, d.total, d.hist = self.n, self.total, list(self.hist)
        d.sketch = self.sketch.copy() if self.sketch is not None else None
        return d

    def is_zero(self) -> bool:
        """Nothing at all, signed differences included (for a plain distribution: n == 0;
        a signed one can count no items yet move values between buckets)."""
        return (not self.n and not self.total and not any(self.hist)
                and (self.sketch is None or self.sketch.is_empty()))  # fmt: skip

    def to_json(self) -> list[Any]:
        out: list[Any] = [self.n, self.total, self.hist]
        if self.sketch is not None:
            out.append(self.sketch.to_json())
        return out

    @classmethod
    def from_json(cls, data: list[Any]) -> Dist:
        d = cls.__new__(cls)
        d.n, d.total, d.hist = int(data[0]), int(data[1]), [int(x) for x in data[2]]
        d.sketch = Sketch.from_json(data[3]) if len(data) > 3 else None
        return d


class TicketAgg:
    """Ticket KPI partials of one (slice, team, channel, priority)."""

    __slots__ = ("counts", "n_buckets", "opt", "with_sketch")

    def __init__(self, n_buckets: int, with_sketch: bool = True) -> None:
        self.counts = [0] * N_COUNTS
        self.n_buckets = n_buckets
        self.with_sketch = with_sketch
        # Most slice aggregates hold a creation or a message and no duration:
        # distributions, and the list of them, are built on first use (a day of
        # slices holds ~100k aggregates, and every list is one more object for
        # each full garbage collection to traverse).
        self.opt: list[Dist | None] | None = None

    @property
    def dists(self) -> list[Dist]:
        """All three distributions (empty ones materialised), for readers."""
        return [
            d if d is not None else Dist(self.n_buckets, self.with_sketch)
            for d in self.opt or _NO_DISTS
        ]

    def _dist(self, i: int) -> Dist:
        opt = self.opt
        if opt is None:
            opt = self.opt = [None, None, None]
        d = opt[i]
        if d is None:
            d = opt[i] = Dist(self.n_buckets, self.with_sketch)
        return d

    def add(self, field: int, value: int, sign: int, ctx: AggContext) -> None:
        if field < N_COUNTS:
            self.counts[field] += sign * value
        else:
            self._dist(field - N_COUNTS).add(value, sign, ctx)

    def merge(self, other: TicketAgg, sign: int = 1) -> None:
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += sign * c
        if other.opt is not None:
            for i, theirs in enumerate(other.opt):
                if theirs is not None and (theirs.n or not theirs.is_zero()):
                    self._dist(i).merge(theirs, sign)

    def copy(self) -> TicketAgg:
        a = TicketAgg.__new__(TicketAgg)
        a.counts = list(self.counts)
        a.n_buckets, a.with_sketch = self.n_buckets, self.with_sketch
        opt = self.opt
        a.opt = None if opt is None else [d.copy() if d is not None else None for d in opt]
        return a

    def minus(self, other: TicketAgg) -> TicketAgg:
        """`self - other`, field by field: a signed aggregate (`Sketch.minus`), merged only
        into one that holds `other`; shares nothing with either."""
        d = TicketAgg.__new__(TicketAgg)
        d.counts = [a - b for a, b in zip(self.counts, other.counts, strict=True)]
        d.n_buckets, d.with_sketch = self.n_buckets, self.with_sketch
        d.opt = None
        if self.opt is not None or other.opt is not None:
            pairs = zip(self.opt or _NO_DISTS, other.opt or _NO_DISTS, strict=True)
            d.opt = [_dist_minus(a, b) for a, b in pairs]
        return d

    def absorb(self, other: TicketAgg) -> None:
        """Add another signed difference (`minus`) to this one: `merge` without its guard
        (a sum of differences may count below zero anywhere)."""
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c
        if other.opt is None:
            return
        opt = self.opt
        if opt is None:
            opt = self.opt = [None, None, None]
        for i, theirs in enumerate(other.opt):
            if theirs is None:
                continue
            mine = opt[i]
            if mine is None:
                opt[i] = theirs.copy()
                continue
            mine.n += theirs.n
            mine.total += theirs.total
            hist = mine.hist
            for j, c in enumerate(theirs.hist):
                if c:
                    hist[j] += c
            if mine.sketch is not None and theirs.sketch is not None:
                mine.sketch.absorb(theirs.sketch)

    def is_empty(self) -> bool:
        return not any(self.counts) and all(d is None or d.n == 0 for d in self.opt or ())

    def weight(self) -> int:
        c = self.counts
        frt = self.opt[FRT] if self.opt is not None else None
        return c[CREATED] + c[CUSTOMER_MSGS] + c[SOLVES] + (frt.n if frt is not None else 0)

    def to_json(self) -> list[Any]:
        opt = self.opt or _NO_DISTS
        return [self.counts, [d.to_json() if d is not None and d.n else None for d in opt]]

    @classmethod
    def from_json(cls, data: list[Any], n_buckets: int, with_sketch: bool = True) -> TicketAgg:
        a = cls(n_buckets, with_sketch)
        a.counts = [int(x) for x in data[0]]
        if any(d is not None for d in data[1]):
            a.opt = [Dist.from_json(d) if d is not None else None for d in data[1]]
        return a


_NO_DISTS: tuple[None, None, None] = (None, None, None)


def _dist_minus(a: Dist | None, b: Dist | None) -> Dist | None:
    """`a - b` (None: nothing, on either side or in the difference)."""
    if b is None or (not b.n and b.is_zero()):
        return None if a is None or (not a.n and a.is_zero()) else a.copy()
    d = Dist.__new__(Dist)
    if a is None:
        d.n, d.total, d.hist = -b.n, -b.total, [-c for c in b.hist]
        d.sketch = None if b.sketch is None else Sketch().minus(b.sketch)
        return d
    d.n, d.total = a.n - b.n, a.total - b.total
    d.hist = [x - y for x, y in zip(a.hist, b.hist, strict=True)]
    d.sketch = (a.sketch.minus(b.sketch) if a.sketch is not None and b.sketch is not None
                else None)  # fmt: skip
    return None if not d.n and d.is_zero() else d


# --- agent activity ----------------------------------------------------------

A_REPLIES, A_SOLVES = range(2)


class AgentAgg:
    """Public replies and solves of one (slice, team, agent)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = [0, 0]

    def add(self, field: int, value: int, sign: int, ctx: AggContext) -> None:
        self.counts[field] += sign * value

    def merge(self, other: AgentAgg, sign: int = 1) -> None:
        self.counts[0] += sign * other.counts[0]
        self.counts[1] += sign * other.counts[1]

    def copy(self) -> AgentAgg:
        a = AgentAgg()
        a.counts = list(self.counts)
        return a

    def minus(self, other: AgentAgg) -> AgentAgg:
        """`self - other` (signed: `TicketAgg.minus`)."""
        a = AgentAgg()
        a.counts = [self.counts[0] - other.counts[0], self.counts[1] - other.counts[1]]
        return a

    def absorb(self, other: AgentAgg) -> None:
        """Add another signed difference (`merge` has no guard to skip here)."""
        self.merge(other)

    def is_empty(self) -> bool:
        return not any(self.counts)

    def weight(self) -> int:
        return self.counts[0] + self.counts[1]

    def to_json(self) -> list[Any]:
        return list(self.counts)

    @classmethod
    def from_json(cls, data: list[Any]) -> AgentAgg:
        a = cls()
        a.counts = [int(data[0]), int(data[1])]
        return a


# --- survey responses --------------------------------------------------------

#: Slots of a survey histogram. 0..10: the score on the kind's own scale (v1:
#: CSAT 1-5, NPS 0-10, CES 1-7). Contract 1.1 adds CSAT on other scales, each
#: score in a slot of its own (never converted into a 1-5 score: no false
#: precision), and offers (surveys sent, answered or not).
N_NATIVE_SLOTS = 11
_OTHER_SCALES: tuple[tuple[Scale, tuple[int, ...]], ...] = (
    (Scale.TWO_POINT, SCALE_SCORES[SurveyKind.CSAT][Scale.TWO_POINT]),
    (Scale.THREE_POINT, SCALE_SCORES[SurveyKind.CSAT][Scale.THREE_POINT]),
    (Scale.SEVEN_POINT, SCALE_SCORES[SurveyKind.CSAT][Scale.SEVEN_POINT]),
)
#: (scale, score) -> slot, for the non-default CSAT scales; and slot -> (scale, score).
OTHER_SCALE_SLOT: dict[tuple[Scale, int], int] = {}
SLOT_OTHER_SCALE: dict[int, tuple[Scale, int]] = {}
for _scale, _scores in _OTHER_SCALES:
    for _score in _scores:
        _slot = N_NATIVE_SLOTS + len(OTHER_SCALE_SLOT)
        OTHER_SCALE_SLOT[(_scale, _score)] = _slot
        SLOT_OTHER_SCALE[_slot] = (_scale, _score)
#: Surveys offered (contract 1.1 `survey.offered`).
OFFERS_SLOT = N_NATIVE_SLOTS + len(OTHER_SCALE_SLOT)
N_SURVEY_SLOTS = OFFERS_SLOT + 1


def survey_slot(kind: SurveyKind, scale: Scale | None, score: int) -> int:
    """The histogram slot of a response (valid by the contract: decode checked it)."""
    if scale is None or scale is DEFAULT_SCALE[kind]:
        return score
    return OTHER_SCALE_SLOT[(scale, score)]


def survey_json(counts: list[int]) -> list[int]:
    """Counts without trailing zero slots beyond the first 11: a histogram with
    no 1.1 content keeps the exact 1.0 form in the changelog."""
    n = len(counts)
    while n > N_NATIVE_SLOTS and not counts[n - 1]:
        n -= 1
    return counts[:n]


def survey_counts(data: Iterable[Any]) -> list[int]:
    """A histogram read back from its JSON, padded to every slot."""
    counts = [int(x) for x in data]
    counts.extend([0] * (N_SURVEY_SLOTS - len(counts)))
    return counts


class SurveyAgg:
    """Score histogram (slots above) of one (slice, kind, team, channel, agent,
    touchpoint): shares, means, NPS, response rate and their intervals all
    follow exactly from it."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = [0] * N_SURVEY_SLOTS

    def add(self, field: int, value: int, sign: int, ctx: AggContext) -> None:
        self.counts[field] += sign * value

    def merge(self, other: SurveyAgg, sign: int = 1) -> None:
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += sign * c

    def copy(self) -> SurveyAgg:
        a = SurveyAgg()
        a.counts = list(self.counts)
        return a

    def minus(self, other: SurveyAgg) -> SurveyAgg:
        """`self - other` (signed: `TicketAgg.minus`)."""
        a = SurveyAgg()
        a.counts = [x - y for x, y in zip(self.counts, other.counts, strict=True)]
        return a

    def absorb(self, other: SurveyAgg) -> None:
        """Add another signed difference (`merge` has no guard to skip here)."""
        self.merge(other)

    def is_empty(self) -> bool:
        return not any(self.counts)

    def weight(self) -> int:
        return sum(self.counts)

    def to_json(self) -> list[Any]:
        return survey_json(self.counts)

    @classmethod
    def from_json(cls, data: list[Any]) -> SurveyAgg:
        a = cls()
        a.counts = survey_counts(data)
        return a


# --- the slice store ---------------------------------------------------------

A = TypeVar("A", TicketAgg, AgentAgg, SurveyAgg)


@dataclass(slots=True)
class _WindowCache(Generic[A]):
    lo: int  # first slice start covered
    hi: int  # exclusive end of the covered sealed slices
    views: dict[Key, A]


class SliceStore(Generic[A]):
    """Aggregates by (slice start, key), the sealed frontier, and per-window caches."""

    def __init__(
        self,
        slice_ms: int,
        ctx: AggContext,
        new_agg: Callable[[], A],
        load_agg: Callable[[list[Any]], A],
        views_of: Callable[[Key], Iterable[Key]],
    ) -> None:
        self.slice_ms = slice_ms
        self.ctx = ctx
        self.new_agg: Callable[[], A] = new_agg
        self.load_agg: Callable[[list[Any]], A] = load_agg
        self.views_of = views_of
        self.slices: dict[int, dict[Key, A]] = {}
        self.dirty: set[int] = set()
        #: keys added to since their slice was last encoded (`slice_bytes`)
        self._changed: dict[int, set[Key]] = {}
        #: an open slice's aggregates as last encoded: (the slice dict, entry bytes by key)
        self._encoded: dict[int, tuple[dict[Key, A], dict[Key, bytes]]] = {}
        #: Slices starting before this are sealed (final) and folded.
        self.sealed = -(2**62)
        #: Slices starting before this may have been evicted.
        self.evicted = -(2**62)
        self._caches: dict[int, _WindowCache[A]] = {}

    def add(self, start: int, key: Key, field: int, value: int, sign: int) -> bool:
        """Apply one contribution; False (and nothing changed) if its slice is sealed."""
        if start < self.sealed:
            return False
        sl = self.slices.get(start)
        if sl is None:
            sl = self.slices[start] = {}
        agg = sl.get(key)
        if agg is None:
            agg = sl[key] = self.new_agg()
        agg.add(field, value, sign, self.ctx)
        if sign < 0 and agg.is_empty():
            del sl[key]
        self.dirty.add(start)
        changed = self._changed.get(start)
        if changed is None:
            changed = self._changed[start] = set()
        changed.add(key)
        return True

    def seal(self, upto: int) -> list[tuple[int, dict[Key, A]]]:
        """Advance the sealed frontier; return the newly sealed slices (to fold)."""
        if upto <= self.sealed:
            return []
        out = [(s, self.slices[s]) for s in self._starts(self.sealed, upto) if s in self.slices]
        self.sealed = upto
        # final: encoded once more at most, from scratch (an engine that is never drained,
        # a batch report's, would otherwise keep every slice's touched keys)
        for kept in (self._encoded, self._changed):
            for s in [s for s in kept if s < upto]:
                del kept[s]
        return out

    def _starts(self, lo: int, hi: int) -> list[int]:
        """Slice starts in [lo, hi) that may exist: step through the range when it is
        short (the usual minute-by-minute advance), else filter the present keys."""
        if (hi - lo) // self.slice_ms <= len(self.slices):
            first = lo + (-lo) % self.slice_ms
            return list(range(first, hi, self.slice_ms))
        return sorted(s for s in self.slices if lo <= s < hi)

    def evict(self, before: int) -> None:
        """Drop sealed slices starting before `before` (never unsealed ones)."""
        before = min(before, self.sealed)
        if before <= self.evicted:
            return
        for s in self._starts(self.evicted, before):
            if self.slices.pop(s, None) is not None:
                self.dirty.add(s)
        self.evicted = before

    # -- reading --

    def _fold(self, views: dict[Key, A], start: int, end: int, sign: int) -> None:
        views_of = self.views_of
        slices = self.slices
        for s in self._starts(start, end):
            sl = slices.get(s)
            if not sl:
                continue
            for key, agg in sl.items():
                for view in views_of(key):
                    v = views.get(view)
                    if v is None:
                        if sign < 0:
                            raise AssertionError("window cache lost a view")
                        views[view] = agg.copy()
                    else:
                        v.merge(agg, sign)

    def window_views(self, window_ms: int, end: int) -> dict[Key, A]:
        """Merged views of the window of `window_ms` ending before slice start `end`.

        The result is a fresh dict of fresh aggregates (callers may mutate it).
        """
        lo = end - window_ms
        hs = max(lo, min(self.sealed, end))
        c = self._caches.get(window_ms)
        rebuild = c is None or c.lo > lo or c.hi > hs
        if c is not None and not rebuild:
            sub_lo, sub_hi = c.lo, min(lo, c.hi)
            add_lo = max(c.hi, lo)
            work = max(0, sub_hi - sub_lo) + max(0, hs - add_lo)
            if (sub_hi > sub_lo and sub_lo < self.evicted) or work > window_ms:
                rebuild = True
        if rebuild or c is None:
            c = _WindowCache(lo, hs, {})
            self._fold(c.views, lo, hs, +1)
            self._caches[window_ms] = c
        else:
            if sub_hi > sub_lo:
                self._fold(c.views, sub_lo, sub_hi, -1)
                for k in [k for k, v in c.views.items() if v.is_empty()]:
                    del c.views[k]
            if hs > add_lo:
                self._fold(c.views, add_lo, hs, +1)
            c.lo, c.hi = lo, hs
        out = {k: v.copy() for k, v in c.views.items()}
        self._fold(out, hs, end, +1)
        return out

    # -- persistence --

    def slice_bytes(self, start: int, dumps: Callable[[object], bytes]) -> bytes | None:
        """The slice's value: `dumps` of its `[key as a list, aggregate JSON]` pairs in
        key order (what `load_slice` reads), None for a slice with no aggregates; `dumps`
        must be a compact JSON encoder (a list's bytes are its items' joined by commas).

        Why kept encoded: the open slice is rewritten at every commit, and a live batch
        of a thousand events touches a few of its hundreds of aggregates; encoding all of
        them each time was an eighth of the worker's CPU at 5k events/s (issue 22). The
        entries of an open slice are kept as last encoded, and only those `add` touched
        since are encoded again; a sealed slice keeps none (it no longer changes),
        and a slice dict replaced whole (`load_slice`, a replica's pop) is encoded anew."""
        sl = self.slices.get(start)
        changed = self._changed.pop(start, None)
        if not sl:
            self._encoded.pop(start, None)
            return None
        kept = self._encoded.get(start)
        if kept is None or kept[0] is not sl:
            entries = {k: dumps([list(k), agg.to_json()]) for k, agg in sl.items()}
        else:
            entries = kept[1]
            for k in changed or ():
                agg = sl.get(k)
                if agg is None:
                    entries.pop(k, None)
                else:
                    entries[k] = dumps([list(k), agg.to_json()])
        if start >= self.sealed:
            self._encoded[start] = (sl, entries)
        else:
            self._encoded.pop(start, None)
        return b"[" + b",".join([entries[k] for k in sorted(entries)]) + b"]"

    def load_slice(self, start: int, data: list[Any]) -> None:
        self.slices[start] = {tuple(k): self.load_agg(v) for k, v in data}
