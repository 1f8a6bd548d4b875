"""Incidents of every size through the generated rules: the paging evaluation of issue 20.

Why this exists: the simulator's named scenarios are one mid-size operation
(2,000 tickets a day). Whether a page comes "for every incident that hurts, at
any team size" needs traffic the scenarios do not have: a team of ~20 tickets a
day and one of ~5,000, a 24/7 team whose night shift stops answering, a decline
that doubles response times every hour, a CSAT collapse without any slowdown,
and the look-alikes that must stay silent (a surge the team absorbs, one slow
ticket while the team answers the others, by day and by night, and a whole
normal day with its night).

Each `Case` is the simulated operation at one volume (the simulator's four
teams keep their shares: tech 36 %, billing 28 %, shipping 20 %, accounts 16 %;
every team has a thin night shift, 22:00-06:00) plus one incident on `tech`,
expressed with the simulator's own levers (`Slowdown` on the team's clock of
work, its CSAT share, a surge scenario) or, for the one slow ticket, two
events merged into the stream. The rest is `tests/support/alert_days.py`:
every minute applied to the KPI core, rendered by the exporter's code, and the
generated rules run by `promtool test rules`. `measure` turns what fired into
the figures the acceptance speaks of: time to page from onset and from the
first breach, pages on other teams, flaps, how long the page stayed open
after recovery, the first ticket-severity alert of a KPI.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cxpulse import metric_names as m
from cxpulse.core.engine import PartitionEngine, evaluate
from cxpulse.core.events import Author, Creator, Event, TicketCreated, TicketMessage, role_of
from cxpulse.core.targets import Targets
from cxpulse.exposition.render import render
from cxpulse.mixin.alerts import alert_rules
from cxpulse.sim import params as p
from cxpulse.sim.model import SimConfig, Simulation, first_midnight
from cxpulse.sim.params import DAY as DAY_MS
from cxpulse.sim.params import HOUR, MINUTE

from tests.support.alert_days import (
    DayAlerts,
    Minutes,
    _series_text,
    core_config,
    only_wanted,
    rule_metric_names,
    run_rules,
)

TEAM = "tech"
#: Teams with at least this many tickets a day are paged before their first breach by day.
BIG = 200
BEFORE, FIRST, SECOND = "before first breach", "first breach + 5 min", "second breach + 5 min"
#: The simulator's share of the day's tickets for TEAM (volumes below are per TEAM).
SHARE = p.TEAMS[TEAM].share
#: A stall: the team's work runs this many times slower (nothing is answered until it ends).
STALL = 10_000.0


@dataclass(frozen=True)
class Case:
    """One incident (or look-alike) on TEAM at one volume, replayed from `start_h`."""

    name: str
    team_per_day: float  # TEAM's tickets a day (the organisation's is this / SHARE)
    start_h: int
    hours: int
    onset_h: float | None = None  # None: nothing should page
    recovery_h: float | None = None
    slowdowns: tuple[p.Slowdown, ...] = ()
    scenario: str = "normal"
    slow_ticket_h: float | None = None  # one ticket created then, answered 2 h later
    expect_page: bool = True
    expect_ticket: str | None = None  # a ticket-severity alert expected (alert name)
    #: The incident hurts whether or not tickets breach (a CSAT collapse): a page is owed.
    hurts: bool = False
    #: When the page is due: "before first breach", "first breach + 5 min",
    #: "second breach + 5 min" (a small team: its second ticket breached with no first
    #: reply between), or "" (any time during the incident)
    due: str = ""

    @property
    def org_per_day(self) -> float:
        return self.team_per_day / SHARE


def _stall(start_h: float, hours: float) -> p.Slowdown:
    return p.Slowdown(TEAM, int(start_h * HOUR), int(hours * HOUR), STALL)


def _doubling(start_h: float, hours: int, steps_per_hour: int = 4) -> tuple[p.Slowdown, ...]:
    """Response times doubling every hour: consecutive slowdowns of factor 2^(t/1 h)."""
    step = HOUR // steps_per_hour
    return tuple(
        p.Slowdown(TEAM, int(start_h * HOUR) + k * step, step,
                   2.0 ** ((k + 1) / steps_per_hour))
        for k in range(hours * steps_per_hour)
    )


def _csat(start_h: float, hours: float, share: float) -> p.Slowdown:
    """Satisfaction falls to `share` for tickets answered in the span; replies barely slow
    (the simulator attributes its CSAT share to tickets whose reply a slowdown touched)."""
    return p.Slowdown(TEAM, int(start_h * HOUR), int(hours * HOUR), 1.05, csat_share=share)


def cases(sizes: tuple[float, ...] = (20, 200, 720, 5000)) -> list[Case]:
    """The acceptance set: every incident class at every team size."""
    out: list[Case] = []
    for n in sizes:
        tag = f"{n:g}/day"
        out += [
            Case(f"stall by day {tag}", n, 7, 9, 10.0, 13.0, (_stall(10.0, 3.0),),
                 due=BEFORE if n >= BIG else SECOND),
            Case(f"stall by night {tag}", n, 0, 7, 1.0, 5.0, (_stall(1.0, 4.0),),
                 due=FIRST if n >= BIG else SECOND),
            Case(f"degradation {tag}", n, 6, 8, 9.0, 12.0, _doubling(9.0, 3),
                 due=BEFORE if n >= BIG else ""),
            Case(f"surge absorbed {tag}", n, 11, 7, scenario="surge", expect_page=False),
            Case(f"one slow ticket {tag}", n, 8, 6, slow_ticket_h=10.0, expect_page=False),
            # the night shift's look-alike of a stall: one customer waits 2 h at 02:00
            Case(f"one slow ticket by night {tag}", n, 0, 7, slow_ticket_h=2.0,
                 expect_page=False),
            Case(f"normal day {tag}", n, 0, 24, expect_page=False),
        ]
    return out


def csat_cases(sizes: tuple[float, ...] = (200, 720, 5000)) -> list[Case]:
    """CSAT falls from the healthy ~0.88 to 0.5 from 08:00 with no slowdown worth a page:
    `CxpulseCSATCollapse` pages (sequential evidence, docs/alerts.md "Collapse evidence");
    the 24 h ticket opens too, later."""
    return [
        Case(f"csat collapse {n:g}/day", n, 0, 20, 8.0, None, (_csat(8.0, 16.0, 0.5),),
             expect_ticket="CxpulseCSATBelowTarget", hurts=True)
        for n in sizes
    ]


def _slow_ticket(cfg: SimConfig, at_h: float) -> list[Event]:
    t0 = first_midnight(cfg.start_ms) + int(at_h * HOUR)
    return [
        TicketCreated("paging-eval-slow-1", t0, "T-SLOW-0000001", TEAM, "email"),
        TicketMessage("paging-eval-slow-2", t0 + 2 * HOUR, "T-SLOW-0000001", Author.AGENT,
                      "a-slow-001"),
    ]


def events(case: Case, seed: int) -> tuple[SimConfig, Iterator[Event]]:
    start = SimConfig().start_ms + case.start_h * HOUR
    cfg = SimConfig(seed=seed, scenario=case.scenario, start_ms=start,
                    duration_ms=case.hours * HOUR, tickets_per_day=case.org_per_day,
                    slowdowns=case.slowdowns)
    stream: Iterator[Event] = iter(Simulation(cfg).events())
    if case.slow_ticket_h is not None:
        extra = _slow_ticket(cfg, case.slow_ticket_h)
        stream = heapq.merge(stream, extra, key=lambda e: e.ts)
    return cfg, stream


def record(case: Case, seed: int, targets: Targets,
           wanted: set[str]) -> tuple[Minutes, list[float]]:
    """`alert_days.record_minutes` over this case's stream, and TEAM's FRT breaches as
    they happened (seconds from the run's start, each at its deadline: the ground truth,
    independent of the core and of the counters, which count a breach only once its
    slice is sealed, a few minutes later)."""
    cfg, stream = events(case, seed)
    engine = PartitionEngine(core_config(targets), 0)
    out = Minutes()
    created: dict[str, int] = {}  # TEAM's customer tickets -> creation instant
    answered: dict[str, int] = {}  # -> first public agent reply
    pending = next(stream, None)
    for minute in range(cfg.duration_ms // MINUTE):
        boundary = cfg.start_ms + (minute + 1) * MINUTE
        while pending is not None and pending.ts < boundary:
            if isinstance(pending, TicketCreated):
                if pending.team == TEAM and pending.created_by == Creator.CUSTOMER:
                    created[pending.ticket_id] = pending.ts
            elif (isinstance(pending, TicketMessage) and pending.author == Author.AGENT
                  and pending.public):
                answered.setdefault(pending.ticket_id, pending.ts)
            engine.apply(role_of(pending), pending)
            pending = next(stream, None)
        for family in render(only_wanted(evaluate([engine], at_ms=boundary - 1), wanted)):
            for sample in family.samples:
                if sample.name in wanted or family.name in wanted:
                    out.add(_series_text(sample.name, sample.labels), minute, sample.value)
        out.n = minute + 1
    target = int(targets.frt.target_seconds * 1000)
    breaches = sorted(
        (t0 + target - cfg.start_ms) / 1000 for tid, t0 in created.items()
        if t0 + target < cfg.end_ms and answered.get(tid, cfg.end_ms) > t0 + target
    )
    return out, breaches


@dataclass
class Outcome:
    """What the rules did in one case (times in minutes; None: did not happen)."""

    case: Case
    seed: int
    page_after_onset: float | None = None
    page_after_breach: float | None = None  # negative: before the first breach
    page_after_second_breach: float | None = None
    first_breach_after_onset: float | None = None
    second_breach_after_onset: float | None = None
    episodes: int = 0
    other_team_pages: dict[str, int] = field(default_factory=dict)
    open_after_recovery: float | None = None  # until resolved (last firing + 1 evaluation)
    ticket_after_onset: float | None = None
    alerts: dict[tuple[str, str, str], dict[str, float]] = field(default_factory=dict)

    @property
    def flaps(self) -> int:
        return max(0, self.episodes - 1)

    def problems(self) -> list[str]:
        """The acceptance of issue 20, as sentences (empty: the case passes)."""
        c, out = self.case, []
        if self.other_team_pages:
            out.append(f"paged other teams {self.other_team_pages}")
        # a small team may get too few tickets in the incident for anyone to wait: then
        # nothing hurt, and a page is not owed (nor wrong)
        hurt = c.hurts or (self.second_breach_after_onset if c.due == SECOND
                           else self.first_breach_after_onset) is not None
        if not c.expect_page:
            if self.episodes:
                out.append(f"paged {TEAM} {self.episodes}x on a day that should be silent")
        elif hurt or self.episodes:
            if self.episodes == 0:
                out.append("no page")
            else:
                if self.flaps > 1:
                    out.append(f"{self.flaps} flaps")
                late = {BEFORE: (self.page_after_breach, 0.0),
                        FIRST: (self.page_after_breach, 5.0),
                        SECOND: (self.page_after_second_breach, 5.0)}.get(c.due)
                if late is not None and late[0] is not None and late[0] > late[1]:
                    out.append(f"page {late[0]:+.1f} min from the breach: due {c.due}")
                if c.due == BEFORE and late is not None and late[0] is not None \
                        and late[0] >= 0:
                    out.append(f"page {late[0]:+.1f} min from the first breach: due before")
                if self.open_after_recovery is not None and self.open_after_recovery > 15:
                    out.append(f"page open {self.open_after_recovery:.1f} min after recovery")
                if self.page_after_onset is not None and self.page_after_onset < 0:
                    out.append("page before the onset")
        if c.expect_ticket and self.ticket_after_onset is None:
            out.append(f"no {c.expect_ticket}")
        return out


def nth_breach_s(breaches: list[float], after_s: float, nth: int = 1) -> float | None:
    """The `nth` breach (deadline passed unanswered) at or after `after_s`."""
    later = [b for b in breaches if b >= after_s]
    return later[nth - 1] if len(later) >= nth else None


def measure(case: Case, seed: int, days: list[DayAlerts], breaches: list[float]) -> Outcome:
    out = Outcome(case, seed)
    pages: dict[str, dict[str, float]] = {}
    for d in days:
        for team, v in d.pages.items():
            agg = pages.setdefault(team, {"episodes": 0.0, "first": math.inf, "last": -math.inf})
            agg["episodes"] += v.get("episodes", 0)
            agg["first"] = min(agg["first"], v.get("first", math.inf))
            agg["last"] = max(agg["last"], v.get("last", -math.inf))
        for k, v in d.per_alert.items():
            out.alerts[k] = v
    out.other_team_pages = {t: int(v["episodes"]) for t, v in pages.items()
                            if t != TEAM and v["episodes"]}
    mine = pages.get(TEAM)
    onset_s = None if case.onset_h is None else (case.onset_h - case.start_h) * 3600
    if mine and mine["episodes"]:
        out.episodes = int(mine["episodes"])
        if onset_s is not None:
            out.page_after_onset = (mine["first"] - onset_s) / 60
            breach = nth_breach_s(breaches, onset_s)
            if breach is not None:
                out.first_breach_after_onset = (breach - onset_s) / 60
                out.page_after_breach = (mine["first"] - breach) / 60
            second = nth_breach_s(breaches, onset_s, 2)
            if second is not None:
                out.page_after_second_breach = (mine["first"] - second) / 60
        if case.recovery_h is not None:
            recovery_s = (case.recovery_h - case.start_h) * 3600
            out.open_after_recovery = (mine["last"] + 30 - recovery_s) / 60
    if onset_s is not None:
        breach = nth_breach_s(breaches, onset_s)
        if breach is not None:
            out.first_breach_after_onset = (breach - onset_s) / 60
        second = nth_breach_s(breaches, onset_s, 2)
        if second is not None:
            out.second_breach_after_onset = (second - onset_s) / 60
    if case.expect_ticket and onset_s is not None:
        firsts = [v["first"] for (a, t, _), v in out.alerts.items()
                  if a == case.expect_ticket and t == TEAM and "first" in v]
        if firsts:
            out.ticket_after_onset = (min(firsts) - onset_s) / 60
    return out


def run_case(case: Case, seed: int, targets: Targets, replicas: int = 1) -> Outcome:
    rules = alert_rules(targets)
    wanted = rule_metric_names(rules) | {m.SLA_BREACHED_TOTAL}
    minutes, breaches = record(case, seed, targets, wanted)
    days = run_rules(rules, minutes, replicas=replicas)
    return measure(case, seed, days, breaches)


def describe(o: Outcome) -> str:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:+.1f}"

    problems = o.problems()
    return (f"{o.case.name:<28} seed {o.seed}: page {f(o.page_after_onset)} min from onset, "
            f"{f(o.page_after_breach)} from 1st breach (breaches at "
            f"{f(o.first_breach_after_onset)}, "
            f"{f(o.second_breach_after_onset)})"
            f", {o.episodes} episode(s), open {f(o.open_after_recovery)} after recovery, "
            f"other teams {o.other_team_pages or 0}, ticket {f(o.ticket_after_onset)}"
            f"  {'OK' if not problems else 'FAIL: ' + '; '.join(problems)}")


def summary_row(outcomes: list[Outcome]) -> dict[str, Any]:
    """One scenario over its seeds, for the table in docs/alerts.md."""
    def span(values: list[float | None]) -> str:
        got = [v for v in values if v is not None]
        if not got:
            return "-"
        lo, hi = min(got), max(got)
        return f"{lo:+.1f}" if lo == hi else f"{lo:+.1f} .. {hi:+.1f}"

    return {
        "scenario": outcomes[0].case.name,
        "seeds": len(outcomes),
        "onset": span([o.page_after_onset for o in outcomes]),
        "breach": span([o.page_after_breach for o in outcomes]),
        "second": span([o.page_after_second_breach for o in outcomes]),
        "episodes": span([float(o.episodes) for o in outcomes]),
        "recovery": span([o.open_after_recovery for o in outcomes]),
        "others": sum(sum(o.other_team_pages.values()) for o in outcomes),
        "ticket": span([o.ticket_after_onset for o in outcomes]),
        "ok": all(not o.problems() for o in outcomes),
    }


@dataclass
class QueueEvidence:
    """What the queue showed TEAM in one case (minutes from onset; None: never), for the
    degradation goal of issue 20: can the queue forecast a breach before it happens?

    `first_breach` is the ground truth the acceptance measures against (the first
    deadline passed unanswered at or after onset); `breaching` is when breaches stop
    being the normal tail (`cluster` of them within 10 min); `band_signal` is the first
    minute the candidate forecast holds: at least `min_band` tickets in the at-risk band
    (unanswered past half their target) and more than `share` of the tickets created in
    the band's span (half the 15 min window). `max_share` is the band share's largest
    value on minutes with at least `min_band` tickets in the band (a normal day's is the
    false-alarm margin)."""

    case: Case
    seed: int
    first_breach: float | None
    breaching: float | None
    band_signal: float | None
    max_share: float


def queue_evidence(case: Case, seed: int, targets: Targets, min_band: int = 4,
                   share: float = 0.6, cluster: int = 3) -> QueueEvidence:
    wanted = {m.AT_RISK, m.CREATED}
    minutes, breaches = record(case, seed, targets, wanted)
    team = f'team="{TEAM}"'

    def series(*parts: str) -> list[float | None]:
        return next(v for k, v in minutes.values.items()
                    if team in k and 'channel="all",priority="all"' in k
                    and all(p in k for p in parts))

    band = series(m.AT_RISK + "{", 'threshold="0.5"')
    created = series(m.CREATED + "{", 'window="15m"')
    onset = 0.0 if case.onset_h is None else (case.onset_h - case.start_h) * 60
    signal, top = None, 0.0
    for i in range(minutes.n):
        b = (band[i] if i < len(band) else None) or 0.0
        c = (created[i] if i < len(created) else None) or 0.0
        ratio = b / max(0.5 * c, 1.0)
        if b >= min_band:
            top = max(top, ratio)
            if ratio > share and signal is None and i >= onset:
                signal = i - onset
    after = [b / 60 - onset for b in breaches if b / 60 >= onset]
    first = after[0] if after else None
    breaching = next((after[k] for k in range(len(after) - cluster + 1)
                      if after[k + cluster - 1] - after[k] <= 10), None)
    return QueueEvidence(case, seed, first, breaching, signal, top)


#: A candidate opening clause of the stall page, on one team's queue at one minute:
#: (ages of its unanswered customer tickets in seconds, first replies in the last 15 min,
#: tickets created in the last 15 min) -> open.
Clause = Callable[[list[float], int, int], bool]


def _past(ages: list[float], fraction: float, target: float) -> int:
    return sum(a >= fraction * target for a in ages)


def night_clauses(targets: Targets) -> dict[str, Clause]:
    """The stall page's clauses and the quiet-shift candidates measured against each other
    (docs/alerts.md, "The night shift"): each as its statement, on ground truth."""
    s, target = targets.paging.stall, targets.frt.target_seconds

    def overdue(ages: list[float]) -> int:
        return sum(a > target for a in ages)

    def before(ages: list[float], rep: int, arr: int) -> bool:
        od = overdue(ages)
        return (od >= s.min_breached and od > rep) or (
            od >= 1 and arr >= s.silent_min_arrivals and rep == 0)

    def quiet(fraction: float, n: int) -> Clause:
        return lambda ages, rep, arr: overdue(ages) >= 1 and rep == 0 and \
            _past(ages, fraction, target) >= n

    return {
        "two overdue or silent arrivals (before)": before,
        "+ a 2nd ticket waiting at all": lambda a, r, n: before(a, r, n) or quiet(0.0, 2)(a, r, n),
        "+ a 2nd ticket past 50 %": lambda a, r, n: before(a, r, n) or quiet(0.5, 2)(a, r, n),
        "+ a 2nd ticket past 75 % (chosen)":
            lambda a, r, n: before(a, r, n) or quiet(0.75, 2)(a, r, n),
        "+ two more tickets past 50 %": lambda a, r, n: before(a, r, n) or quiet(0.5, 3)(a, r, n),
    }


def _episodes(minutes: list[int], for_minutes: int = 1, keep_minutes: int = 3) -> list[int]:
    """Start minutes of firing episodes: `for_minutes` consecutive minutes open it, a gap
    longer than `keep_minutes` ends it (the rule's `for:` and `keep_firing_for:`)."""
    starts: list[int] = []
    run, prev, last_fired = 0, -2, -100
    for mi in minutes:
        run = run + 1 if mi == prev + 1 else 1
        prev = mi
        if run > for_minutes:
            if mi - last_fired > keep_minutes + 1:
                starts.append(mi)
            last_fired = mi
    return starts


def night_screen(case: Case, seed: int, targets: Targets) -> dict[str, dict[str, list[float]]]:
    """Every candidate clause of `night_clauses` on every team's queue, minute by minute,
    from the events themselves (no core, no PromQL: a screen, fast enough for 20 seeds;
    the chosen clause is then measured through the generated rule by `run_case`).
    Returns clause -> team -> episode starts, in minutes from the first ground-truth
    breach at or after the onset (TEAM in an incident) or from the run's start."""
    cfg, stream = events(case, seed)
    created: dict[str, tuple[str, int]] = {}
    answered: dict[str, int] = {}
    for e in stream:
        if isinstance(e, TicketCreated) and e.created_by == Creator.CUSTOMER:
            created[e.ticket_id] = (e.team, e.ts)
        elif isinstance(e, TicketMessage) and e.author == Author.AGENT and e.public:
            answered.setdefault(e.ticket_id, e.ts)
    never = cfg.end_ms + DAY_MS
    per_team: dict[str, list[tuple[int, int]]] = {}
    for tid, (team, t0) in created.items():
        per_team.setdefault(team, []).append((t0, answered.get(tid, never)))
    clauses = night_clauses(targets)
    target_ms = int(targets.frt.target_seconds * 1000)
    onset_ms = None if case.onset_h is None else cfg.start_ms + int(
        (case.onset_h - case.start_h) * HOUR)
    mine = sorted(t0 + target_ms for t0, a in per_team.get(TEAM, [])
                  if a > t0 + target_ms and onset_ms is not None and t0 + target_ms >= onset_ms)
    origin = mine[0] if mine else cfg.start_ms
    out: dict[str, dict[str, list[float]]] = {name: {} for name in clauses}
    window = 15 * MINUTE
    for team, tickets in per_team.items():
        replies = sorted(a for _, a in tickets if a < never)
        arrivals = sorted(t0 for t0, _ in tickets)
        hits: dict[str, list[int]] = {name: [] for name in clauses}
        for minute in range(cfg.duration_ms // MINUTE):
            t = cfg.start_ms + (minute + 1) * MINUTE - 1
            ages = [(t - t0) / 1000 for t0, a in tickets if t0 <= t < a]
            if not ages:
                continue
            rep = bisect.bisect_right(replies, t) - bisect.bisect_right(replies, t - window)
            arr = bisect.bisect_right(arrivals, t) - bisect.bisect_right(arrivals, t - window)
            for name, clause in clauses.items():
                if clause(ages, rep, arr):
                    hits[name].append(minute)
        for name, minutes in hits.items():
            starts = _episodes(minutes)
            if starts:
                out[name][team] = [(cfg.start_ms + (s + 1) * MINUTE - origin) / MINUTE
                                   for s in starts]
    return out


def night_facts(case: Case, seed: int, targets: Targets) -> tuple[int | None, int]:
    """From the events, for TEAM: how many other customers were waiting unanswered 5 min
    after the first breach at or after the onset (None: no such breach), and how many of
    the tickets created at night (22:00-06:00) waited more than 20 min for a first reply
    (a healthy night's look-alikes of a lone overdue ticket)."""
    cfg, stream = events(case, seed)
    created: dict[str, int] = {}
    answered: dict[str, int] = {}
    for e in stream:
        if isinstance(e, TicketCreated) and e.created_by == Creator.CUSTOMER \
                and e.team == TEAM:
            created[e.ticket_id] = e.ts
        elif isinstance(e, TicketMessage) and e.author == Author.AGENT and e.public:
            answered.setdefault(e.ticket_id, e.ts)
    never = cfg.end_ms + DAY_MS
    target_ms = int(targets.frt.target_seconds * 1000)
    midnight = first_midnight(cfg.start_ms)
    night = sum(1 for tid, t0 in created.items()
                if ((t0 - midnight) // HOUR % 24 >= 22 or (t0 - midnight) // HOUR % 24 < 6)
                and answered.get(tid, never) - t0 > 20 * MINUTE and t0 + 20 * MINUTE < cfg.end_ms)
    others: int | None = None
    if case.onset_h is not None:
        onset = midnight + int(case.onset_h * HOUR)
        breaches = sorted(t0 + target_ms for tid, t0 in created.items()
                          if answered.get(tid, never) > t0 + target_ms >= onset)
        if breaches:
            t = breaches[0] + 5 * MINUTE
            others = sum(1 for tid, t0 in created.items()
                         if t0 <= t < answered.get(tid, never)) - 1
    return others, night
