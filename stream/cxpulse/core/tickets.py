"""The ticket state machine: a ticket's few events, kept sorted, and what follows.

A ticket has a handful of events, so instead of an incremental state machine
that would have to undo itself when an event arrives out of order, the state
keeps the events sorted by (ts, event_id) and `derive` recomputes everything
from them. The same function yields the ticket's *contributions* to the
slice aggregates; the engine applies the difference between the previous and
the new contributions, which makes windowed KPIs order-insensitive too.

Rules the catalogue leaves open, decided here (also in docs/kpis.md):

* A ticket's events are ordered by (ts, type rank, event_id) (contract 1.1,
  `events.event_order`): in one helpdesk update the reply comes before the
  solve, whatever the producer's ids.
* The first `ticket.created` in that order is the creation; later
  ones are ignored. Without a creation a ticket contributes nothing and is
  not in the backlog (its timelines still serve survey attribution).
* Event times before the creation count as the creation time (durations are
  never negative).
* `closed` is final: events after it (in sorted order) are ignored.
* Reopen = a `solved` -> `open` transition; `solved` -> `pending`/`on_hold`
  leaves `solved` without being a reopen. A status change to the current
  status is no transition.
* An agent message without `agent_id` is attributed to the assignee of the
  moment (for per-agent replies), and counts for FRT/FCR regardless.
* FRT SLA: met only by a public agent reply by the deadline; a ticket solved
  or closed without one still breaches at the deadline.
* Bot tickets (contract 1.1: created with `bot`): the FRT clock starts at the
  first `ticket.handoff`, and there is no deadline before it. An agent reply
  before any handoff is measured from the creation and judged at once (met
  by creation + target, else a breach in the reply's slice): its deadline was
  never pending, so the breach cannot land in a sealed slice.
"""

from __future__ import annotations

import struct
import sys
from base64 import urlsafe_b64decode
from binascii import b2a_base64
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

import msgspec

from cxpulse.core.events import (
    Author,
    Creator,
    Event,
    Priority,
    Scale,
    Status,
    StatusChanged,
    SurveyKind,
    SurveyOffered,
    SurveyResponse,
    TicketAssigned,
    TicketCreated,
    TicketEvent,
    TicketHandoff,
    TicketMessage,
    event_order,
)
from cxpulse.core.slices import (
    A_REPLIES,
    A_SOLVES,
    CREATED,
    CUSTOMER_MSGS,
    F_FRT,
    F_RESOLUTION,
    F_WAIT,
    ONE_TOUCH,
    REOPENS,
    SLA_BREACHED,
    SLA_MET,
    SOLVES,
)

#: Contribution store codes.
TICKET_STORE, AGENT_STORE = 0, 1
#: (store, slice start, key, field, value): one additive unit of a slice aggregate.
Contribution = tuple[int, int, tuple[str, ...], int, int]
#: `Derivation.contribs` of a kept derivation once its contributions are in the
#: slices (the engine does not keep them, `TicketEvents._applied`): one shared
#: empty list instead of one per ticket. Never appended to: the engine gives a
#: derivation a new list before each step (`TicketEvents._resume`).
APPLIED: list[Contribution] = []
Labeler = Callable[[str, str], str]
#: A value over time, flat: (t0, value0, t1, value1, ...), times ascending. Flat
#: rather than pairs: one tuple per ticket instead of one per change plus one.
Timeline = tuple[Any, ...]

WAITING_STATUSES = ("new", "open", "on_hold")
OPEN_STATUSES = frozenset({"new", "open", "pending", "on_hold"})


@dataclass(slots=True)
class TicketView:
    """Everything derived from a ticket's events (state, not contributions)."""

    created_ts: int | None = None
    by_customer: bool = True
    team: str | None = None
    channel: str | None = None
    priority: str = Priority.NORMAL.value
    status: str = "new"
    status_since: int | None = None
    #: (1.1) Created with `bot`: in a bot's hands until the first handoff.
    bot: bool = False
    #: Where the FRT clock starts: the creation, or for a bot ticket its first
    #: handoff (None until then: no deadline, not unanswered).
    frt_start: int | None = None
    #: Time spent so far in the waiting statuses (`WAITING_STATUSES`): all that
    #: the first solve's wait needs, one int instead of a dict per ticket.
    waited: int = 0
    assignee: str | None = None
    first_response_ts: int | None = None
    first_solve_ts: int | None = None
    closed_ts: int | None = None
    last_ts: int = 0
    #: Team and assignee over time (`Timeline`, see `team_tl`), kept as when
    #: the current value started plus the values before it: most tickets keep
    #: one team and one assignee, and a one-entry timeline was a 64-byte tuple
    #: each (issue 22); the int it started at is held by the view anyway.
    team_since: int | None = None
    team_before: Timeline = ()
    agent_since: int | None = None
    agent_before: Timeline = ()

    @property
    def is_open(self) -> bool:
        """In the backlog: created, and neither solved nor closed."""
        return self.created_ts is not None and self.status in OPEN_STATUSES

    @property
    def team_tl(self) -> Timeline:
        """The team's changes: (creation, team, change, team, ...)."""
        since = self.team_since
        return self.team_before if since is None else (*self.team_before, since, self.team)

    @property
    def agent_tl(self) -> Timeline:
        """The assignee's changes: (assignment, agent, ...)."""
        since = self.agent_since
        return self.agent_before if since is None else (*self.agent_before, since, self.assignee)

    def set_team(self, t: int, team: str) -> None:
        """The team from `t` on (the creation's, or a transfer)."""
        since = self.team_since
        if since is not None:
            self.team_before += (since, self.team)
        self.team, self.team_since = team, t

    def set_assignee(self, t: int, agent: str) -> None:
        """The assignee from `t` on."""
        since = self.agent_since
        if since is not None:
            self.agent_before += (since, self.assignee)
        self.assignee, self.agent_since = agent, t

    def team_at(self, ts: int) -> str | None:
        since = self.team_since
        if since is not None and ts >= since:
            return self.team
        return _at(self.team_before, ts)

    def assignee_at(self, ts: int) -> str | None:
        since = self.agent_since
        if since is not None and ts >= since:
            return self.assignee
        return _at(self.agent_before, ts)

    def attribution(self) -> Attribution:
        return Attribution(self.created_ts, self.channel, self.team_tl, self.agent_tl)


def _intern(value: str) -> str:
    """The one copy of a label value (team, channel, agent) all tickets share.

    Why: every decoded event brings its own copy of the same few strings; a
    ticket keeps them in its view, timelines and contribution keys, some
    50 bytes each, per ticket, for values a partition has a few hundred of."""
    return sys.intern(value)


_SHARED_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared(key: tuple[str, ...]) -> tuple[str, ...]:
    """The one copy of a slice key (labels) that all derivations keep, like `_intern`.

    Why: every open ticket keeps its key in its derivation, a 64-byte tuple of
    values a partition has a few hundred combinations of. Only a cache: when
    it holds many (label values beyond any cap), it starts again."""
    shared = _SHARED_KEYS.get(key)
    if shared is None:
        if len(_SHARED_KEYS) >= 1 << 16:
            _SHARED_KEYS.clear()
        shared = _SHARED_KEYS[key] = key
    return shared


def _at(timeline: Timeline, ts: int) -> str | None:
    found = None
    for i in range(0, len(timeline), 2):
        if timeline[i] > ts:
            break
        found = timeline[i + 1]
    return found


@dataclass(frozen=True, slots=True)
class Attribution:
    """What a survey needs from its ticket; outlives the ticket as its tombstone."""

    created_ts: int | None
    channel: str | None
    team_tl: Timeline
    agent_tl: Timeline

    def at(self, ts: int) -> tuple[str | None, str | None, str | None]:
        """(team, agent, channel) at `ts`; nothing for a survey before the creation."""
        if self.created_ts is None or self.created_ts > ts:
            return None, None, None
        return _at(self.team_tl, ts), _at(self.agent_tl, ts), self.channel

    def to_json(self) -> list[Any]:
        return [
            self.created_ts,
            self.channel,
            [[t, v] for t, v in zip(self.team_tl[::2], self.team_tl[1::2], strict=True)],
            [[t, v] for t, v in zip(self.agent_tl[::2], self.agent_tl[1::2], strict=True)],
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> Attribution:
        return cls(
            data[0],
            data[1],
            tuple(x for t, v in data[2] for x in (int(t), _intern(str(v)))),
            tuple(x for t, v in data[3] for x in (int(t), _intern(str(v)))),
        )


@dataclass(frozen=True, slots=True)
class DeriveParams:
    slice_ms: int
    frt_target_ms: int
    frt_target_by_priority: dict[str, int]

    def target(self, priority: str) -> int:
        return self.frt_target_by_priority.get(priority, self.frt_target_ms)


class Derivation(TicketView):
    """The derive loop stopped after some prefix of a ticket's sorted events.

    It is its own `TicketView` (what the loop derived so far) rather than
    holding one: one object per ticket instead of two, and the loop state it
    adds is what a resumed step needs beyond the view (issue 22: with the
    team label read from `key`, the creation time from `created_ts` and
    whether it emits from `key`, some 70 bytes less per open ticket).

    Why resumable: on a busy day most ticket events are appended at the end of
    their ticket's sorted events. Feeding just that event to the saved loop
    state (`step`) gives exactly what re-running the loop over all events
    would: the loop never looks ahead, and its only other input, the labeler,
    returns for a value it has already seen what it returned the first time
    (see `LabelGuard`). Re-deriving from scratch costs O(events) per event;
    resuming costs O(1). Whatever the loop cannot resume from (an event sorted
    before the last one, a first creation, which moves every clamped time) is
    the caller's cue to start a new `Derivation` over all events.

    The last step depends on the stream time (is an unanswered FRT deadline
    breached yet, or still pending?), so it is `finish`, which leaves the
    state untouched and may be called again as the stream time advances.
    """

    __slots__ = ("before_solve", "contribs", "created", "key", "slice_ms", "target")

    def __init__(
        self, events: Sequence[TicketEvent], params: DeriveParams, label: Labeler | None
    ) -> None:
        """Start the loop: find the creation (the first in sorted order) and
        emit its contribution. `events` are only searched, not fed."""
        TicketView.__init__(self)
        view = self
        self.contribs: list[Contribution] = []
        created: TicketCreated | None = None
        for e in events:
            if type(e) is TicketCreated:
                created = e
                break
        self.created = created
        self.slice_ms = slice_ms = params.slice_ms
        #: The slice key (team, channel, priority labels) while it emits
        #: contributions (a labeler and a creation), else empty.
        self.key: tuple[str, ...] = ()
        self.target = 0
        #: Public agent replies before the first solve (FCR: one-touch if <= 1).
        self.before_solve = 0
        if created is not None:
            c = created.ts
            view.created_ts = c
            view.by_customer = created.created_by is Creator.CUSTOMER
            team = _intern(created.team)
            view.set_team(c, team)
            view.channel = channel = _intern(created.channel)
            # The plain string, not the enum member: enum members are objects the
            # garbage collector tracks, and a tuple holding one (every slice key,
            # every contribution) stays tracked and is traversed by every full
            # collection; a tuple of plain strings and ints is untracked.
            view.priority = created.priority.value
            view.status_since = c
            view.last_ts = c
            self.target = params.target(view.priority)
            if created.bot:
                view.bot = True
            else:
                view.frt_start = c
            if label is not None:
                self.key = _shared((label("team", team), label("channel", channel), view.priority))
                self.contribs.append((TICKET_STORE, c - c % slice_ms, self.key, CREATED, 1))

    def step(self, e: TicketEvent, label: Labeler | None) -> None:
        """Feed the next event in (ts, event_id) order (appending its contributions)."""
        view = self
        ts = e.ts
        if ts > view.last_ts:
            view.last_ts = ts
        status = view.status
        if status == "closed" or e is self.created:
            return
        c = view.created_ts
        t = ts if c is None or ts >= c else c
        emit = bool(self.key)
        slice_ms = self.slice_ms
        if isinstance(e, TicketMessage):
            if not e.public:
                return
            if e.author is Author.CUSTOMER:
                if emit:
                    self.contribs.append(
                        (TICKET_STORE, t - t % slice_ms, self.key, CUSTOMER_MSGS, 1)
                    )
            elif e.author is Author.AGENT:
                if view.first_solve_ts is None:
                    self.before_solve += 1
                s = t - t % slice_ms
                if view.first_response_ts is None:
                    view.first_response_ts = t
                    if emit and view.by_customer:
                        assert c is not None
                        start = view.frt_start
                        if start is None:  # a bot ticket taken over before any handoff
                            met = t <= c + self.target
                            self.contribs.append((TICKET_STORE, s, self.key, F_FRT, t - c))
                            outcome = SLA_MET if met else SLA_BREACHED
                            self.contribs.append((TICKET_STORE, s, self.key, outcome, 1))
                        else:
                            self.contribs.append((TICKET_STORE, s, self.key, F_FRT, t - start))
                            assert self.deadline is not None
                            if t <= self.deadline:
                                self.contribs.append((TICKET_STORE, s, self.key, SLA_MET, 1))
                agent = e.agent_id or view.assignee
                if emit and agent is not None:
                    assert label is not None
                    akey = (self.key[0], label("agent", _intern(agent)))
                    self.contribs.append((AGENT_STORE, s, akey, A_REPLIES, 1))
        elif isinstance(e, TicketAssigned):
            view.set_assignee(t, _intern(e.agent_id))
            if e.team is not None and e.team != view.team:
                team = _intern(e.team)
                view.set_team(t, team)
                if emit:
                    assert label is not None
                    key = self.key
                    self.key = _shared((label("team", team), key[1], key[2]))
        elif isinstance(e, TicketHandoff):
            if view.bot and view.frt_start is None and view.first_response_ts is None:
                view.frt_start = t
        elif isinstance(e, StatusChanged):
            new: str = e.status
            if new == status:
                return
            since = view.status_since
            if since is not None and status in WAITING_STATUSES:
                view.waited += t - since
            view.status_since = t
            s = t - t % slice_ms
            if new == "solved":
                if emit:
                    key = self.key
                    self.contribs.append((TICKET_STORE, s, key, SOLVES, 1))
                    if view.assignee is not None:
                        assert label is not None
                        akey = (key[0], label("agent", view.assignee))
                        self.contribs.append((AGENT_STORE, s, akey, A_SOLVES, 1))
                if view.first_solve_ts is None:
                    view.first_solve_ts = t
                    if emit:
                        assert c is not None
                        key = self.key
                        self.contribs.append((TICKET_STORE, s, key, F_RESOLUTION, t - c))
                        self.contribs.append((TICKET_STORE, s, key, F_WAIT, view.waited))
                        if self.before_solve <= 1:
                            self.contribs.append((TICKET_STORE, s, key, ONE_TOUCH, 1))
            elif new == "open" and status == "solved" and emit:  # a reopen
                self.contribs.append((TICKET_STORE, s, self.key, REOPENS, 1))
            view.status = new
            if new == "closed":
                view.closed_ts = t

    @property
    def deadline(self) -> int | None:
        """The FRT deadline; None while a bot ticket waits for its handoff.

        Computed, not kept (an int object per ticket, issue 22): the clock's
        start plus the priority's target, both fixed once set."""
        start = self.frt_start
        return None if start is None else start + self.target

    def fork(self) -> Derivation:
        """An independent copy of the loop state (its view and contributions too).

        Why: re-deriving a ticket after an event sorted before its last one
        needs the contributions of the old and of the new events; both share
        the loop state after the events they have in common
        (`TicketEvents._rederive`), so that prefix is fed once and forked.
        Every slot written out rather than `copy.copy`: its generic protocol
        (`__reduce_ex__`) cost 12 us a fork, this 1 us (issue 22);
        `tests/unit/test_core_tickets_fork.py` fails if a slot is left out."""
        d = Derivation.__new__(Derivation)
        d.created_ts, d.by_customer, d.team, d.channel = (
            self.created_ts, self.by_customer, self.team, self.channel)
        d.priority, d.status, d.status_since, d.bot = (
            self.priority, self.status, self.status_since, self.bot)
        d.frt_start, d.waited, d.assignee = self.frt_start, self.waited, self.assignee
        d.first_response_ts, d.first_solve_ts = self.first_response_ts, self.first_solve_ts
        d.closed_ts, d.last_ts = self.closed_ts, self.last_ts
        d.team_since, d.team_before = self.team_since, self.team_before
        d.agent_since, d.agent_before = self.agent_since, self.agent_before
        d.before_solve, d.created, d.key = self.before_solve, self.created, self.key
        d.slice_ms, d.target = self.slice_ms, self.target
        d.contribs = list(self.contribs)
        return d

    @property
    def view(self) -> TicketView:
        """What the loop derived so far: the derivation itself (one object)."""
        return self

    def finish(
        self, stream_time: int | None, label: Labeler | None
    ) -> tuple[tuple[Contribution, ...], int | None]:
        """The stream-time dependent contributions (an FRT breach) and the FRT
        deadline still pending at `stream_time`, if any. Changes nothing."""
        view = self
        if not (self.key and view.by_customer):
            return (), None
        deadline = self.deadline
        if deadline is None:  # a bot ticket: not handed off, or judged at its reply
            return (), None
        first = view.first_response_ts
        if first is not None and first <= deadline:
            return (), None
        if stream_time is None or stream_time <= deadline:
            return (), deadline
        assert label is not None
        team_d = view.team_at(deadline) or ""
        key = self.key
        dkey = _shared((label("team", team_d), key[1], key[2]))
        ds = deadline - deadline % self.slice_ms
        return ((TICKET_STORE, ds, dkey, SLA_BREACHED, 1),), None


def derive_all(
    events: Sequence[TicketEvent], params: DeriveParams, label: Labeler | None
) -> Derivation:
    """A `Derivation` fed with all of `events` (sorted by (ts, event_id)).

    It forgets the creation event afterwards (`created_ts` says there was
    one): a resumed derivation never meets it again, and the ticket keeps its
    events only as JSON (`TicketState`)."""
    d = Derivation(events, params, label)
    step = d.step
    for e in events:
        step(e, label)
    d.created = None
    return d


def derive(
    events: Sequence[TicketEvent],
    params: DeriveParams,
    stream_time: int | None,
    label: Labeler | None,
) -> tuple[TicketView, list[Contribution], int | None]:
    """Derive state, and (when `label` is given) contributions plus the pending
    FRT deadline (the deadline still to be judged at `stream_time`, if any)."""
    d = derive_all(events, params, label)
    tail, pending = d.finish(stream_time, label)
    return d.view, d.contribs + list(tail), pending


_NONE_LATE: frozenset[str] = frozenset()
#: `TicketState.expiry` of a ticket not derived yet, hence not filed for expiry:
#: before any event time, so an engine that meets it re-derives the ticket.
UNFILED = -(2**62)


class TicketState:
    """A live ticket: its events (as JSON), which of them arrived late, and derivations.

    The contributions currently applied to the slice aggregates are those of
    the events in `base` (re-derived when needed, `TicketEvents._applied`) plus
    `tail` (the stream-time dependent FRT breach, kept). `derivation` is
    the resumable loop state over all events, kept only while no event is
    late: a late event splits state (all events) from contributions (on-time
    events only), and such tickets are re-derived from scratch.

    Memory (issue 22, `bench/bench_memory.py`): a live ticket keeps its events
    only as `enc`, the JSON text the changelog value is made of anyway, not as
    event objects (about 160 bytes each plus their strings) nor a dict of
    their ids. Most events append at the end of their ticket and only feed the
    resumed derivation, which needs no earlier event. Whatever needs them all
    (a re-derivation, an insertion before the end, a duplicate's kept copy)
    decodes them into `events` (`event_list`); `encoded`, which runs when the
    batch is drained, drops that list again. A ticket with no event for
    `CoreConfig.pack_idle_ms` is not kept as this object at all but packed into
    one bytes value (`pack`, `unpack`): its derivation is restored from the
    loop state packed with it on its next event.
    """

    __slots__ = (
        "base", "derivation", "enc", "events", "expiry", "last_ts", "late",
        "n_enc", "pending", "pushed", "tail", "tid", "view",
    )  # fmt: skip

    def __init__(self, tid: str) -> None:
        #: The ticket id (the engine's key string, shared): every event holds it.
        self.tid = tid
        #: The sorted events when decoded (None: `enc` holds them all).
        self.events: list[TicketEvent] | None = None
        #: JSON of the first `n_enc` sorted events, comma-separated; all of them
        #: while `events` is None (see `encoded`). Each event's ticket id, the
        #: same for all, is one byte there (`_compact`).
        self.enc = b""
        self.n_enc = 0
        #: The largest event time: whether an event appends without decoding.
        self.last_ts: int | None = None
        #: Ids of the late events; the shared empty frozenset until there is one
        #: (one container less per ticket for the garbage collector to traverse).
        self.late: AbstractSet[str] = _NONE_LATE
        self.view = TicketView()
        #: The events (JSON or decoded) and late ids the contributions in the
        #: slices were derived from, while they differ from the current ones
        #: (None: the current ones). The contributions are not kept: the engine
        #: derives them again from these when it must subtract them.
        self.base: tuple[bytes | list[TicketEvent], AbstractSet[str]] | None = _NO_EVENTS
        self.tail: tuple[Contribution, ...] = ()
        self.derivation: Derivation | None = None
        self.pending: int | None = None
        self.pushed: int | None = None  # deadline already queued in the engine's heap
        #: When it may be dropped (`TicketEvents._settle`); `UNFILED` until then.
        self.expiry = UNFILED

    def count(self) -> int:
        """How many events the ticket holds."""
        events = self.events
        return self.n_enc if events is None else len(events)

    def event_list(self) -> list[TicketEvent]:
        """The events sorted by `event_order`, decoded from `enc` if need be."""
        events = self.events
        if events is None:
            events = self.events = decode_events(self.enc, self.tid)
            base = self.base
            if base is not None and base[0] is self.enc and events:
                # the same events the slices were derived from: decoded once
                # (`TicketEvents._rederive` compares them by identity)
                self.base = (list(events), base[1])
        return events

    def load(self, events: list[TicketEvent], late: AbstractSet[str]) -> None:
        """Set all events at once (a restore): sorted here, `late` the late ids."""
        events.sort(key=event_order)
        self.events, self.enc, self.n_enc = events, b"", 0
        self.last_ts = max((e.ts for e in events), default=None)
        self.late = set(late) if late else _NONE_LATE

    def find(self, event_id: str) -> TicketEvent | None:
        """The kept event with this id, if the ticket holds one.

        Without decoding, `enc` is searched for the id where only an event's
        own id can stand: right after the one-letter tag that opens each
        event (`["c","<id>",`; a `[` followed by an unescaped `"` occurs
        nowhere else in a ticket's JSON: events hold no nested lists, and a
        quote inside a string is escaped). Only a hit decodes the events."""
        events = self.events
        if events is None:
            if _find_enc(self.enc, dumps(_short_id(event_id) or event_id)) < 0:
                return None
            events = self.event_list()
        for e in reversed(events):
            if e.event_id == event_id:
                return e
        return None

    def _keep_base(self) -> None:
        """Before the events change: remember what the slices were derived from."""
        if self.base is None:
            events = self.events
            if events is None or self.n_enc == len(events):
                self.base = (self.enc, self.late)  # immutable bytes: no copy
            else:
                self.base = (list(events), self.late)

    def insert(self, event: TicketEvent, late: bool) -> bool:
        """Add an event in (ts, event_id) order; True if it went after all others."""
        self._keep_base()
        if late:
            self.late = {*self.late, event.event_id}
        last = self.last_ts
        events = self.events
        if last is None or event.ts > last:
            self.last_ts = event.ts
            if events is None and not self.n_enc:
                # The ticket's first event: kept decoded until the batch is
                # drained (`encoded`), its derivation needs it at once.
                self.events = [event]
            elif events is None:  # the usual case: JSON only, nothing decoded
                more = dumps(_compact(encode_event(event), self.tid, last))
                self.enc = self.enc + b"," + more
                self.n_enc += 1
            else:
                events.append(event)
            return True
        events = self.event_list()
        if event_order(events[-1]) < event_order(event):
            events.append(event)
            return True
        i = bisect_right(events, event_order(event), key=event_order)
        events.insert(i, event)
        if i < self.n_enc:
            self.enc, self.n_enc = b"", 0
        return False

    def replace(self, kept: TicketEvent, winner: TicketEvent) -> None:
        """Swap the kept copy of an event_id for `winner` (same id; lateness kept)."""
        self._keep_base()
        events = self.event_list()
        i = bisect_left(events, event_order(kept), key=event_order)
        assert events[i] is kept
        del events[i]
        if i < self.n_enc:
            self.enc, self.n_enc = b"", 0
        self.last_ts = max((e.ts for e in events), default=None)
        late = self.late
        self.insert(winner, False)
        self.late = late

    def to_json(self) -> dict[str, Any]:
        tid = self.tid
        listed, prev = [], None
        for e in self.event_list():
            d = encode_event(e)
            d[2], d[3] = d[2] - (prev or 0), TICKET_ID_IN_KEY if d[3] == tid else d[3]
            listed.append(d)
            prev = e.ts
        out: dict[str, Any] = {"d": listed}
        if self.late:
            out["l"] = sorted(self.late)
        return out

    def encoded(self) -> bytes:
        """`dumps(self.to_json())`, without re-encoding events encoded before.

        Why: a ticket is written out at every batch that touched it, and its
        events are mostly appended in order, so keeping the JSON text of the
        sorted prefix already encoded makes each write encode only the new
        events. An insert before that prefix's end discards it. Called when
        the batch is drained (nothing is stale then): the decoded events, if
        any, are dropped here, the JSON now holding them all."""
        self._fold()
        return _value(self.enc, self.tid, self.late)

    def _fold(self) -> None:
        """Encode the events not in `enc` yet into it and drop the decoded ones."""
        events = self.events
        if events is not None:
            n = self.n_enc
            if n < len(events):
                tid = self.tid
                prev = events[n - 1].ts if n else None
                out = []
                for e in events[n:]:
                    out.append(_compact(encode_event(e), tid, prev))
                    prev = e.ts
                more = dumps(out)[1:-1]
                self.enc = self.enc + b"," + more if n else more
                self.n_enc = len(events)
            self.events = None

    # --- packed: an idle ticket as one bytes value ------------------------------
    # Why: most open tickets wait hours or days for their next event, and a live
    # ticket's objects (this one, its derivation, their ints: some 500 bytes) are
    # all derived from its events. A packed ticket keeps its events' JSON, its
    # expiry and its derivation's loop state as a few bytes (`_loop_state`): its
    # next event unpacks it without decoding or deriving anything (a third of
    # the time that took, docs/benchmark-history.md).

    def packable(self) -> bool:
        """Whether `pack` keeps all there is: a derivation kept (so no late event,
        and not stale: the slices hold the contributions of the current events,
        no `base`) and no FRT deadline pending. Then the contributions, the
        `tail` and the view are what deriving the events gives (`unpack`). And the
        derivation's newest time is the newest event's (`unpack` restores `last_ts`
        from it, and the next event's time is written as its distance from it): not so
        only for a ticket without its creation whose events all precede 1970 (its
        derivation's time starts at 0), kept unpacked."""
        d = self.derivation
        return d is not None and self.pending is None and d.last_ts == self.last_ts

    def pack(self) -> bytes:
        """The ticket as one bytes value (only when `packable`): its expiry, whether
        it is open (both read without unpacking), its derivation's loop state
        (`_loop_state`), its events' JSON."""
        assert self.base is None, "only a ticket stale or being changed has a base"
        self._fold()
        d = self.derivation
        assert d is not None
        loop = _encode_state(_loop_state(d, self.n_enc))
        enc = self.enc.replace(_times_prefix(d.last_ts), _TIMES_MARK)
        return b"".join((_PACKED.pack(self.expiry, d.is_open, len(loop)), loop, enc))

    @classmethod
    def unpack(
        cls,
        tid: str,
        packed: bytes,
        params: DeriveParams,
        label: Labeler,
        stream_time: int | None,
    ) -> TicketState:
        """The ticket `pack` gave, `label` the engine's `LabelGuard.peek`.

        Exact: the derivation is the one packed, slot by slot (`_restore`), and
        its slice key is what the labeler gave its team and channel (a value
        admitted, or refused, maps to the same label ever after, `LabelGuard`).
        The `tail` is what `finish` gives at any stream time from the one it was
        last derived at: with no deadline pending then, an FRT breach stays a
        breach and no breach stays none. A deadline already queued (`pushed`)
        is forgotten: its heap entry is skipped, and queued again if it is ever
        pending again (a duplicate entry changes nothing). The events stay JSON,
        as after a drain (`event_list` decodes them if an event needs them)."""
        state = cls(tid)
        expiry, _, size = _PACKED.unpack_from(packed)
        start = _PACKED.size + size
        n, d = _restore(_decode_state(memoryview(packed)[_PACKED.size : start]), params, label)
        state.enc, state.n_enc = packed[start:].replace(_TIMES_MARK, _times_prefix(d.last_ts)), n
        state.last_ts = d.last_ts
        state.view = state.derivation = d
        state.base = None
        tail, pending = d.finish(stream_time, label)
        assert pending is None, "a packed ticket had no deadline pending"
        state.tail = tail
        state.expiry = expiry
        return state


#: The head of a packed ticket (`TicketState.pack`): its expiry, whether it is open,
#: the length of the loop state after it (`_loop_state`); then the events' JSON.
_PACKED = struct.Struct("<q?H")
_encode_state = msgspec.msgpack.Encoder().encode
_decode_state = msgspec.msgpack.Decoder().decode
#: Priorities and statuses in a loop state: their index (one byte) here.
_PRIORITIES = tuple(p.value for p in Priority)
_PRIORITY_CODE = {p: i for i, p in enumerate(_PRIORITIES)}
_STATUSES: tuple[str, ...] = ("new", *Status)
_STATUS_CODE = {s: i for i, s in enumerate(_STATUSES)}


#: In a packed ticket's events' JSON: what stands for `_times_prefix` (a byte JSON
#: text never holds, like `_TID`, so `bytes.replace` gives the JSON back exactly).
_TIMES_MARK = b",\x01"


def _times_prefix(last_ts: int) -> bytes:
    """The leading digits (those of a 2.8-hour block) the event times of a ticket
    whose newest event is at `last_ts` mostly share, after the comma before each.

    Why: 5 bytes less per event of a packed ticket. With them, the bench's
    ticket of 5 events fits in 512 bytes, the largest object Python's small
    object allocator serves: beyond it every packed ticket is a `malloc` of
    its own, and the memory its live objects free when it is packed is not
    reused for it (measured: 1,473 bytes per open ticket against 1,160)."""
    return b"," + str(last_ts)[:6].encode()


def _loop_state(d: Derivation, n_events: int) -> tuple[Any, ...]:
    """What `_restore` needs to give `d` back, with `n_events` (`TicketState.n_enc`).

    Why this and not the events: unpacking by decoding and deriving the events
    cost some 50 us a ticket (decoding two thirds of it), restoring these
    fields a third of that, so tickets can be packed after a short idle time (issue 22).
    Times as their distance back from the newest event (msgpack writes small
    ints in fewer bytes: some 50 bytes in all for a usual ticket); the slice
    key, the target and the slice length are not kept: they follow from the
    labels, the priority and the parameters."""
    last = d.last_ts  # each time inline, not through a helper: a call costs 0.1 us
    return (
        n_events, last, None if (t := d.created_ts) is None else last - t, d.by_customer,
        d.team, d.channel,
        _PRIORITY_CODE.get(d.priority, d.priority), _STATUS_CODE.get(d.status, d.status),
        None if (t := d.status_since) is None else last - t, d.bot,
        None if (t := d.frt_start) is None else last - t, d.waited, d.assignee,
        None if (t := d.first_response_ts) is None else last - t,
        None if (t := d.first_solve_ts) is None else last - t,
        None if (t := d.closed_ts) is None else last - t,
        None if (t := d.team_since) is None else last - t, d.team_before,
        None if (t := d.agent_since) is None else last - t, d.agent_before, d.before_solve,
    )  # fmt: skip


def _restore(
    state: list[Any], params: DeriveParams, label: Labeler | None
) -> tuple[int, Derivation]:
    """The event count and the derivation `_loop_state` was given (`label`: as
    `derive_all`'s; None, a view only, no slice key)."""
    (n, last, created, by_customer, team, channel, priority, status, status_since, bot,
     frt_start, waited, assignee, first_response, first_solve, closed, team_since,
     team_before, agent_since, agent_before, before_solve) = state  # fmt: skip
    d = Derivation.__new__(Derivation)
    c = None if created is None else last - created
    d.created_ts, d.by_customer, d.bot, d.waited = c, by_customer, bot, waited
    d.team = None if team is None else _intern(team)
    d.channel = None if channel is None else _intern(channel)
    d.assignee = None if assignee is None else _intern(assignee)
    d.priority = priority = _PRIORITIES[priority] if type(priority) is int else priority
    d.status = _STATUSES[status] if type(status) is int else status

    def at(back: int | None) -> int | None:
        # the creation time's own int where a time is the creation's, as when derived
        return None if back is None else c if back == created else last - back

    d.status_since, d.frt_start, d.team_since = at(status_since), at(frt_start), at(team_since)
    d.first_response_ts, d.first_solve_ts = at(first_response), at(first_solve)
    d.closed_ts, d.agent_since = at(closed), at(agent_since)
    d.last_ts = last
    d.team_before = _timeline(team_before)
    d.agent_before = _timeline(agent_before)
    d.before_solve = before_solve
    d.created, d.contribs, d.slice_ms = None, APPLIED, params.slice_ms
    if c is None:
        d.key, d.target = (), 0
    else:
        d.target = params.target(priority)
        d.key = () if label is None else _shared(
            (label("team", d.team or ""), label("channel", d.channel or ""), priority)
        )
    return n, d


def _timeline(values: list[Any]) -> Timeline:
    """A `Timeline` as msgpack gave it back (a list), its label values shared."""
    return tuple(_intern(v) if isinstance(v, str) else v for v in values) if values else ()


def packed_expiry(packed: bytes) -> int:
    """The `TicketState.expiry` of a packed ticket."""
    expiry: int = _PACKED.unpack_from(packed)[0]
    return expiry


def packed_open(packed: bytes) -> bool:
    """Whether a packed ticket is open (`TicketView.is_open`)."""
    return bool(packed[8])


def packed_view(packed: bytes, params: DeriveParams) -> TicketView:
    """The view of a packed ticket, without unpacking it (read only)."""
    size: int = _PACKED.unpack_from(packed)[2]
    state = _decode_state(memoryview(packed)[_PACKED.size : _PACKED.size + size])
    return _restore(state, params, None)[1]


def packed_encoded(tid: str, packed: bytes) -> bytes:
    """`TicketState.encoded` of a packed ticket."""
    size: int = _PACKED.unpack_from(packed)[2]
    state = _decode_state(memoryview(packed)[_PACKED.size : _PACKED.size + size])
    enc = packed[_PACKED.size + size :].replace(_TIMES_MARK, _times_prefix(state[1]))
    return _value(enc, tid, _NONE_LATE)


def _value(enc: bytes, tid: str, late: AbstractSet[str]) -> bytes:
    """A ticket's changelog value from its events' JSON (`TicketState.enc`).

    Each event's ticket id is `0` there (`TICKET_ID_IN_KEY`): the key names
    the ticket, and the id written in every event was 11 % of a busy day's
    changelog (issue 22). `decode_ticket_event` puts the key's id back. Under
    `d`, each time is its distance from the event before (`_compact`): values
    written before (`e`) hold times as they are and are read still
    (`value_events`)."""
    tail = b',"l":' + dumps(sorted(late)) if late else b""
    return b'{"d":[' + enc.replace(_TID, b"0") + b"]" + tail + b"}"


def _find_enc(enc: bytes, id_json: bytes) -> int:
    """Where the event with this JSON-encoded id starts in `enc`, else -1 (`TicketState.find`)."""
    pattern = b'",' + id_json + b","
    i = enc.find(pattern)
    while i >= 0:
        if i >= 3 and enc[i - 3] == 0x5B and enc[i - 2] == 0x22:  # '["' + tag
            return i - 3
        i = enc.find(pattern, i + 1)
    return -1


_DECODE = msgspec.json.Decoder().decode
#: `TicketState.base` of a new ticket: derived from no events, nothing in the slices.
_NO_EVENTS: tuple[bytes, AbstractSet[str]] = (b"", _NONE_LATE)


def decode_events(enc: bytes | list[TicketEvent], tid: str) -> list[TicketEvent]:
    """The events of ticket `tid` from their comma-separated JSON as `TicketState.enc`
    holds it (a list: as it is)."""
    if not isinstance(enc, bytes):
        return enc
    if not enc:
        return []
    return _events(_DECODE(b"[" + enc.replace(_TID, b"0") + b"]"), tid, True)


def value_events(value: Mapping[str, Any], tid: str) -> list[TicketEvent]:
    """The events of ticket `tid`'s changelog value (`TicketState.encoded`), as
    written now (`d`: times as distances, `_compact`) or before issue 22's
    compact values (`e`: times as they are), in the order written."""
    if "d" in value:
        return _events(value["d"], tid, True)
    return _events(value["e"], tid, False)


def _events(raw: list[list[Any]], tid: str, distances: bool) -> list[TicketEvent]:
    out = []
    ts = 0
    for d in raw:
        if distances:
            ts = d[2] = ts + d[2]
        out.append(decode_ticket_event(d, tid))
    return out


#: A ticket id in `TicketState.enc`: a byte that JSON text never holds outside
#: a string, nor inside one (control characters are escaped there), so
#: `bytes.replace` restores the ids exactly.
_TID = b"\x00"
_TID_RAW = msgspec.Raw(_TID)


def _compact(encoded: list[Any], tid: str, prev_ts: int | None) -> list[Any]:
    """`encode_event` of an event of ticket `tid` with its ticket id (item 3) as
    `_TID`, and its time (item 2) as the distance from `prev_ts`, the time of the
    event before it in `enc` (None: the first, its time as it is).

    Why: the id is the same in every event of a ticket and the ticket keeps it
    anyway (`TicketState.tid`); with UUIDs it was 37 bytes per event kept, a
    third of the events' JSON (issue 22). An event holding another id (only a
    corrupt restored value can) keeps its own. A time is 13 digits, the
    distance from the event before (the events are sorted by time) mostly 4
    to 6; `decode_events` adds them up again."""
    if encoded[3] == tid:
        encoded[3] = _TID_RAW
    if prev_ts is not None:
        encoded[2] -= prev_ts
    return encoded


def dumps(obj: object) -> bytes:
    """Deterministic compact JSON of a state value: sorted keys, UTF-8.

    msgspec rather than the standard library's encoder: state encoding was 16 %
    of the worker's time (issue 22). For what state values hold (dicts with
    string keys, lists, strings, ints within 64 bits, bools, None) the bytes are
    the ones `json.dumps(obj, separators=(",", ":"), sort_keys=True,
    ensure_ascii=False).encode()` gives (`tests/unit/test_state_encoding.py`),
    so a changelog written before reads and compares the same. Not orjson,
    though as fast: the values it returns are kept (the committed bytes of
    every key), and with them the busy day's peak RSS grew by 20 % (296 ->
    362 MB in process), msgspec's by 1 %."""
    return _ENCODE(obj)


_ENCODE = msgspec.json.Encoder(order="sorted").encode


# --- compact, deterministic event encoding for state values ------------------


#: A ticket event's ticket id in a changelog value: the key's (`_value`).
TICKET_ID_IN_KEY = 0


def _short_id(event_id: str) -> str | None:
    """A canonical lower-case UUID as the 22 characters of its 16 bytes in
    URL-safe base64, else None (the id is kept as it is).

    Why: helpdesks and the simulator name events by UUID, 36 characters where
    16 bytes say the same; an event's id was a third of its JSON in a ticket's
    value, and every open ticket holds its events' JSON (issue 22). Exact:
    only an id that `_long_id` gives back character for character is
    shortened, and the event's tag says it (upper case: `encode_event`)."""
    if len(event_id) != 36 or event_id[8] != "-" or event_id[13] != "-" \
            or event_id[18] != "-" or event_id[23] != "-":  # fmt: skip
        return None
    digits = event_id.replace("-", "")
    if len(digits) != 32:
        return None
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return None
    if raw.hex() != digits:  # upper case, or spaces fromhex skipped
        return None
    return b2a_base64(raw, newline=False)[:22].translate(_URL_SAFE).decode()


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _long_id(short: str) -> str:
    """The UUID `_short_id` shortened."""
    h = urlsafe_b64decode(short + "==").hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode_event(e: Event) -> list[Any]:
    """Positional JSON list; never pickle (the changelog is not trusted code).

    The tag is upper case when the id is a UUID written short (`_short_id`);
    values written before that (lower-case tags, the id as it came) read the same."""
    eid = e.event_id
    short = _short_id(eid)
    if short is not None:
        eid = short
    if isinstance(e, TicketCreated):
        out = ["C" if short else "c", eid, e.ts, e.ticket_id, e.team, e.channel,
               e.priority.value, e.customer_id, e.created_by.value]  # fmt: skip
        if e.bot:  # appended only when set: 1.0 values stay byte-identical
            out.append(True)
        return out
    if isinstance(e, TicketAssigned):
        return ["A" if short else "a", eid, e.ts, e.ticket_id, e.agent_id, e.team]
    if isinstance(e, TicketMessage):
        return ["M" if short else "m", eid, e.ts, e.ticket_id, e.author.value, e.agent_id,
                e.public]  # fmt: skip
    if isinstance(e, StatusChanged):
        return ["S" if short else "s", eid, e.ts, e.ticket_id, e.status.value]
    if isinstance(e, TicketHandoff):
        return ["H" if short else "h", eid, e.ts, e.ticket_id]
    if isinstance(e, SurveyOffered):
        return ["O" if short else "o", eid, e.ts, e.survey.value, e.ticket_id, e.customer_id,
                e.team, e.agent_id, e.channel, e.touchpoint,
                None if e.scale is None else e.scale.value]  # fmt: skip
    out = ["R" if short else "r", eid, e.ts, e.survey.value, e.score, e.ticket_id,
           e.customer_id, e.team, e.agent_id, e.channel, e.touchpoint]  # fmt: skip
    if e.scale is not None:  # appended only when set: 1.0 values stay byte-identical
        out.append(e.scale.value)
    return out


def decode_ticket_event(d: list[Any], tid: str) -> TicketEvent:
    """`decode_event` of an event of ticket `tid` as its changelog value holds it
    (`TICKET_ID_IN_KEY` for its id; a survey here is a corrupt value)."""
    if d[3] == TICKET_ID_IN_KEY and type(d[3]) is int:
        d[3] = tid
    e = decode_event(d)
    if isinstance(e, (SurveyResponse, SurveyOffered)):
        raise ValueError("a survey event among a ticket's events")
    return e


def decode_event(d: list[Any]) -> Event:
    tag = d[0]
    if tag in _SHORT_TAGS:  # the id written short (`encode_event`)
        tag = _SHORT_TAGS[tag]
        d[1] = _long_id(d[1])
    if tag == "c":
        return TicketCreated(d[1], int(d[2]), d[3], d[4], d[5], Priority(d[6]), d[7], Creator(d[8]),
                             len(d) > 9 and bool(d[9]))  # fmt: skip
    if tag == "a":
        return TicketAssigned(d[1], int(d[2]), d[3], d[4], d[5])
    if tag == "m":
        return TicketMessage(d[1], int(d[2]), d[3], Author(d[4]), d[5], bool(d[6]))
    if tag == "s":
        return StatusChanged(d[1], int(d[2]), d[3], Status(d[4]))
    if tag == "h":
        return TicketHandoff(d[1], int(d[2]), d[3])
    if tag == "r":
        return SurveyResponse(
            d[1], int(d[2]), SurveyKind(d[3]), int(d[4]), d[5], d[6], d[7], d[8], d[9], d[10],
            Scale(d[11]) if len(d) > 11 else None,
        )
    if tag == "o":
        return SurveyOffered(
            d[1], int(d[2]), SurveyKind(d[3]), d[4], d[5], d[6], d[7], d[8], d[9],
            None if d[10] is None else Scale(d[10]),
        )
    raise ValueError(f"unknown event tag {tag!r}")


#: An event's tag when its id is written short -> its tag (`encode_event`).
_SHORT_TAGS = {t.upper(): t for t in "camshor"}
