"""Brute-force reference: every KPI recomputed from the raw event list, by the
catalogue's definitions, without slices, sketches, caches or incremental state.

It shares no code with the engine except the event model, the interval
formulas of `cxpulse.core.kpis` (those are checked by hand-worked tests) and
the canonical encoding that decides between conflicting copies of an event
(`cxpulse.core.duplicates.canonical`: the rule itself, tested on its own).
Quantiles here are exact: the item of rank floor(q (n - 1)).

Contract 1.1 (docs/contract.md) is written out here from the document, not
from the engine: the same-timestamp order by type, bot tickets whose FRT
runs from the first handoff, CSAT on other scales judged satisfied by the
document's table, and survey offers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from cxpulse.core.config import CoreConfig
from cxpulse.core.duplicates import canonical
from cxpulse.core.durations import window_label
from cxpulse.core.events import (
    SURVEYS,
    TICKETS,
    Author,
    Creator,
    Event,
    StatusChanged,
    SurveyKind,
    SurveyOffered,
    SurveyResponse,
    TicketAssigned,
    TicketCreated,
    TicketHandoff,
    TicketMessage,
)
from cxpulse.core.partitioning import partition_for


@dataclass
class Accepted:
    """Events that survived dedup, with their late flag, per partition."""

    tickets: dict[str, list[tuple[Event, bool]]] = field(default_factory=dict)
    surveys: list[SurveyResponse | SurveyOffered] = field(default_factory=list)
    st: dict[tuple[int, str], int] = field(default_factory=dict)
    conflicts: int = 0
    survey_conflicts: int = 0
    #: index in `surveys` -> its ticket's events (on time or late) when the survey
    #: was attributed: at once, or when released from parking (docs/kpis.md)
    seen_by: dict[int, list[Event]] = field(default_factory=dict)


def accept(arrivals: list[tuple[str, Event]], cfg: CoreConfig, partitions: int = 1) -> Accepted:
    """Dedup and lateness, written out plainly. Copies of a ticket event_id with
    different content: the byte-wise smallest canonical encoding wins while
    the kept copy and the arriving one are both within the lateness (and the
    kept one was not late); an on-time conflicting copy moves stream time.

    Parking, as docs/kpis.md words it: a survey missing team, agent or channel
    of a ticket waits until its ticket partition's stream time is past its ts +
    lateness (or the surveys stream time past its ts + `survey_park_max_ms`, or
    the end of the input); it is attributed from the ticket events that arrived
    by then, so a late ticket event arriving after its release does not move it."""
    out = Accepted()
    seen_ticket: dict[str, dict[str, int]] = defaultdict(dict)  # ticket -> id -> index
    seen_survey: dict[str, int] = {}  # event_id -> index in out.surveys
    parked: dict[int, int] = {}  # index in out.surveys -> its partition

    def attribute(index: int) -> None:
        tid = out.surveys[index].ticket_id
        out.seen_by[index] = [t for t, _ in out.tickets.get(tid, [])] if tid else []

    def take(index: int, p: int) -> None:
        """A survey copy just counted at `index`: park it or attribute it now."""
        parked.pop(index, None)
        s = out.surveys[index]
        st_t = out.st.get((p, TICKETS))
        needs = s.ticket_id is not None and None in (s.team, s.agent_id, s.channel)
        if needs and (st_t is None or st_t <= s.ts + cfg.lateness_ms):
            parked[index] = p
        else:
            attribute(index)

    def release(everything: bool = False) -> None:
        for index, p in list(parked.items()):
            ts = out.surveys[index].ts
            st_t = out.st.get((p, TICKETS))
            st_s = out.st[(p, SURVEYS)]
            if (everything or (st_t is not None and ts + cfg.lateness_ms < st_t)
                    or st_s - ts > cfg.survey_park_max_ms):  # fmt: skip
                del parked[index]
                attribute(index)

    for role, e in arrivals:
        release()  # what the previous arrival released
        p = partition_for(e.ticket_id or e.event_id, partitions)
        st = out.st.get((p, role))
        late = st is not None and e.ts < st - cfg.lateness_ms
        if role == TICKETS:
            assert not isinstance(e, SurveyResponse | SurveyOffered)
            items = out.tickets.setdefault(e.ticket_id, [])
            index = seen_ticket[e.ticket_id].get(e.event_id)
            if index is not None:
                kept, kept_late = items[index]
                if canonical(kept) == canonical(e):
                    continue  # a plain duplicate
                out.conflicts += 1
                if late:
                    continue
                assert st is not None
                if (
                    canonical(e) < canonical(kept)
                    and not kept_late
                    and kept.ts >= st - cfg.lateness_ms
                ):
                    items[index] = (e, False)
                if e.ts > st:
                    out.st[(p, role)] = e.ts
                continue
            seen_ticket[e.ticket_id][e.event_id] = len(items)
            items.append((e, late))
        else:
            assert isinstance(e, SurveyResponse | SurveyOffered)
            index = seen_survey.get(e.event_id)
            if index is not None:
                kept_s = out.surveys[index]
                if canonical(kept_s) == canonical(e):
                    continue
                out.survey_conflicts += 1
                if late:
                    continue
                assert st is not None
                if e.ts > st:
                    out.st[(p, role)] = e.ts
                if canonical(e) < canonical(kept_s) and kept_s.ts >= st - cfg.lateness_ms:
                    out.surveys[index] = e
                    take(index, p)
                continue
            if late:
                continue
            seen_survey[e.event_id] = len(out.surveys)
            out.surveys.append(e)
            if st is None or e.ts > st:
                out.st[(p, role)] = e.ts
            take(len(out.surveys) - 1, p)
            continue
        if not late and (st is None or e.ts > st):
            out.st[(p, role)] = e.ts
    release()
    release(everything=True)  # the end of the input (`end_of_stream`)
    return out


@dataclass
class Ticket:
    created: TicketCreated | None
    seq: list[tuple[int, Event]]  # (clamped time, event), after the creation, cut after close


#: docs/contract.md, "Order of events with the same timestamp", as written there.
SAME_TS_ORDER = ["ticket.created", "ticket.assigned", "ticket.handoff", "ticket.message",
                 "ticket.status_changed"]  # fmt: skip
_WIRE_TYPE = {TicketCreated: "ticket.created", TicketAssigned: "ticket.assigned",
              TicketHandoff: "ticket.handoff", TicketMessage: "ticket.message",
              StatusChanged: "ticket.status_changed"}  # fmt: skip


def ticket_of(events: list[Event]) -> Ticket:
    ordered = sorted(
        events, key=lambda e: (e.ts, SAME_TS_ORDER.index(_WIRE_TYPE[type(e)]), e.event_id)
    )
    creations = [e for e in ordered if isinstance(e, TicketCreated)]
    created = creations[0] if creations else None
    c = created.ts if created else None
    seq: list[tuple[int, Event]] = []
    for e in ordered:
        if isinstance(e, TicketCreated):
            continue
        seq.append((e.ts if c is None else max(e.ts, c), e))
        if isinstance(e, StatusChanged) and e.status.value == "closed":
            break
    return Ticket(created, seq)


def timeline_before(t: Ticket, index: int) -> tuple[str | None, str | None]:
    """(team, assignee) after the first `index` events of the sequence."""
    team = t.created.team if t.created else None
    agent = None
    for _, e in t.seq[:index]:
        if isinstance(e, TicketAssigned):
            agent = e.agent_id
            if e.team is not None:
                team = e.team
    return team, agent


def timeline_at(t: Ticket, ts: int) -> tuple[str | None, str | None]:
    """(team, assignee) after every event at clamped time <= ts."""
    n = sum(1 for when, _ in t.seq if when <= ts)
    return timeline_before(t, n)


@dataclass
class Fact:
    """One windowed observation: at event time `ts`, with its dimensions."""

    ts: int
    kind: str
    team: str
    channel: str
    priority: str
    value: int = 1
    agent: str | None = None


def statuses(t: Ticket) -> list[tuple[int, str, str, int]]:
    """Transitions (time, from, to, sequence index)."""
    out = []
    status = "new"
    for i, (when, e) in enumerate(t.seq):
        if isinstance(e, StatusChanged) and e.status.value != status:
            out.append((when, status, e.status.value, i))
            status = e.status.value
    return out


def ticket_facts(t: Ticket, cfg: CoreConfig, st: int | None) -> list[Fact]:
    if t.created is None:
        return []
    cr = t.created
    c = cr.ts
    prio = cr.priority.value
    facts: list[Fact] = []

    def fact(ts: int, kind: str, index: int, value: int = 1, agent: str | None = None) -> None:
        team, _ = timeline_before(t, index)
        assert team is not None
        facts.append(Fact(ts, kind, team, cr.channel, prio, value, agent))

    fact(c, "created", 0)
    for i, (when, e) in enumerate(t.seq):
        if isinstance(e, TicketMessage) and e.public and e.author is Author.CUSTOMER:
            fact(when, "customer_msg", i)
    agent_msgs = [
        (i, when, e)
        for i, (when, e) in enumerate(t.seq)
        if isinstance(e, TicketMessage) and e.public and e.author is Author.AGENT
    ]
    for i, when, e in agent_msgs:
        assert isinstance(e, TicketMessage)
        agent = e.agent_id or timeline_before(t, i)[1]
        if agent is not None:
            fact(when, "agent_reply", i, agent=agent)
    target = cfg.frt_target_for(prio)
    deadline = c + target
    handoffs = [(i, when) for i, (when, e) in enumerate(t.seq) if isinstance(e, TicketHandoff)]
    if cr.created_by is Creator.CUSTOMER and cr.bot:
        # A bot ticket: the clock starts at the first handoff; a reply before
        # any handoff is measured from the creation and judged at the reply.
        first = agent_msgs[0] if agent_msgs else None
        hand = handoffs[0] if handoffs else None
        if first is not None and (hand is None or first[0] < hand[0]):
            i, when, _ = first
            fact(when, "frt", i, when - c)
            fact(when, "met" if when <= c + target else "breached", i)
        elif hand is not None:
            start = hand[1]
            deadline = start + target
            if first is not None:
                i, when, _ = first
                fact(when, "frt", i, when - start)
                if when <= deadline:
                    fact(when, "met", i)
            if (first is None or first[1] > deadline) and st is not None and st > deadline:
                team, _ = timeline_at(t, deadline)
                assert team is not None
                facts.append(Fact(deadline, "breached", team, cr.channel, prio))
    elif cr.created_by is Creator.CUSTOMER:
        if agent_msgs:
            i, when, _ = agent_msgs[0]
            fact(when, "frt", i, when - c)
            if when <= deadline:
                fact(when, "met", i)
        if (not agent_msgs or agent_msgs[0][1] > deadline) and st is not None and st > deadline:
            team, _ = timeline_at(t, deadline)
            assert team is not None
            facts.append(Fact(deadline, "breached", team, cr.channel, prio))
    trans = statuses(t)
    first_solve = next((x for x in trans if x[2] == "solved"), None)
    for when, old, new, i in trans:
        if new == "solved":
            fact(when, "solve", i)
            assignee = timeline_before(t, i)[1]
            if assignee is not None:
                fact(when, "agent_solve", i, agent=assignee)
        if old == "solved" and new == "open":
            fact(when, "reopen", i)
    if first_solve is not None:
        when, _, _, i = first_solve
        fact(when, "resolution", i, when - c)
        # Wait: time in new/open/on_hold from creation to the first solve.
        wait, since = 0, c
        for t2, old, _, _ in trans[: trans.index(first_solve) + 1]:
            if old in ("new", "open", "on_hold"):
                wait += t2 - since
            since = t2
        fact(when, "wait", i, wait)
        before = sum(1 for j, _, _ in agent_msgs if j < i)
        if before <= 1:
            fact(when, "one_touch", i)
    return facts


def exact_quantile(values: list[int], q: float) -> int:
    s = sorted(values)
    return s[math.floor(q * (len(s) - 1))]


@dataclass
class Reference:
    at_ms: int
    facts: list[Fact]
    surveys: list[tuple[SurveyResponse, str, str, str, str]]  # event, team, channel, agent, tp
    backlog: list[tuple[str, str, str, int, bool, bool, int]]  # team, ch, prio, age, unassigned,
    # unanswered, target
    offers: list[tuple[SurveyOffered, str, str, str, str]] = field(default_factory=list)  # 1.1


def reference(
    arrivals: list[tuple[str, Event]],
    cfg: CoreConfig,
    partitions: int = 1,
    at_ms: int | None = None,
) -> Reference:
    acc = accept(arrivals, cfg, partitions)
    at = at_ms if at_ms is not None else max(acc.st.values())
    facts: list[Fact] = []
    backlog = []
    for tid, items in acc.tickets.items():
        p = partition_for(tid, partitions)
        ontime = ticket_of([e for e, late in items if not late])
        facts.extend(ticket_facts(ontime, cfg, acc.st.get((p, TICKETS))))
        full = ticket_of([e for e, _ in items])
        if full.created is None:
            continue
        trans = statuses(full)
        final = trans[-1][2] if trans else "new"
        if final in ("solved", "closed"):
            continue
        team, agent = timeline_before(full, len(full.seq))
        assert team is not None
        answered = any(
            isinstance(e, TicketMessage) and e.public and e.author is Author.AGENT
            for _, e in full.seq
        )
        prio = full.created.priority.value
        # A bot ticket waits for the agents only from its first handoff on.
        since: int | None = full.created.ts
        if full.created.bot:
            since = next((w for w, e in full.seq if isinstance(e, TicketHandoff)), None)
        backlog.append((
            team, full.created.channel, prio,
            max(0, at - (full.created.ts if since is None else since)), agent is None,
            full.created.created_by is Creator.CUSTOMER and not answered and since is not None,
            cfg.frt_target_for(prio),
        ))  # fmt: skip
    surveys = []
    offers = []
    for index, s in enumerate(acc.surveys):
        team, agent, channel = s.team, s.agent_id, s.channel
        if s.ticket_id is not None and (team is None or agent is None or channel is None):
            seen = acc.seen_by[index]
            t = ticket_of(seen) if seen else None
            if t is not None and t.created is not None and t.created.ts <= s.ts:
                t_team, t_agent = timeline_at(t, s.ts)
                team, agent = team or t_team, agent or t_agent
                channel = channel or t.created.channel
        row = (team or "unknown", channel or "unknown", agent or "unknown",
               s.touchpoint or "unknown")  # fmt: skip
        if isinstance(s, SurveyOffered):
            offers.append((s, *row))
        else:
            surveys.append((s, *row))
    return Reference(at, facts, surveys, backlog, offers=offers)


def in_window(ts: int, at: int, window_ms: int, cfg: CoreConfig) -> bool:
    end = at - at % cfg.slice_ms + cfg.slice_ms
    return end - window_ms <= ts < end


def ticket_view_facts(ref: Reference, cfg: CoreConfig, window_ms: int,
                      labels: dict[str, str]) -> list[Fact]:  # fmt: skip
    out = []
    for f in ref.facts:
        if not in_window(f.ts, ref.at_ms, window_ms, cfg):
            continue
        if all(getattr(f, k) == v for k, v in labels.items()):
            out.append(f)
    return out


def windows(cfg: CoreConfig) -> list[tuple[str, int]]:
    return [(window_label(w), w) for w in cfg.windows_ms]


SURVEY_SCALES = {SurveyKind.CSAT: (1, 5), SurveyKind.NPS: (0, 10), SurveyKind.CES: (1, 7)}

#: docs/contract.md, "Scales": the scores that count as good, per (survey, scale).
GOOD = {
    ("csat", None): {4, 5}, ("csat", "five_point"): {4, 5}, ("csat", "seven_point"): {6, 7},
    ("csat", "three_point"): {103}, ("csat", "two_point"): {1},
    ("ces", None): {5, 6, 7}, ("ces", "seven_point"): {5, 6, 7},
    ("nps", None): {9, 10}, ("nps", "eleven_point"): {9, 10},
}  # fmt: skip


def is_good(s: SurveyResponse) -> bool:
    return s.score in GOOD[(s.survey.value, None if s.scale is None else s.scale.value)]


#: The v1 scale of each kind: the only one counted in the mean (no false precision).
OWN_SCALE = {"csat": "five_point", "ces": "seven_point", "nps": "eleven_point"}


def on_own_scale(s: SurveyResponse) -> bool:
    return s.scale is None or s.scale.value == OWN_SCALE[s.survey.value]
