"""A simulated support operation as a clean, time-ordered stream of events.

Every random draw comes from one `random.Random(seed)` consumed in a fixed
order (arrival by arrival), so a seed and a configuration replay the same
operation byte for byte. With `contract="1.1"` the shapes contract 1.1 adds
(bot tickets and handoffs, a reply saved with the solve, survey offers, CSAT
on other scales: docs/contract.md) are drawn from a second stream, so the
1.0 operation underneath stays the same, draw for draw. A ticket's whole
life is drawn when it arrives and its events wait in a heap until the clock
of arrivals passes them: memory is bounded by the tickets still open, not by
the length of the run.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

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
    TicketHandoff,
    TicketMessage,
)
from cxpulse.sim import params as p
from cxpulse.sim.params import DAY, HOUR, MINUTE

#: Event contract versions whose shapes the simulator can emit (docs/contract.md).
CONTRACTS = ("1.0", "1.1")


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int = 1
    start_ms: int = 1_793_577_600_000  # 2026-11-02T00:00:00Z, a Monday
    duration_ms: int = DAY
    tickets_per_day: float = 2000.0
    scenario: str = "normal"
    duplicates: float = 0.0  # share of events delivered twice
    disorder_s: float = 0.0  # max hold-back of a delayed event, seconds
    malformed: float = 0.0  # malformed messages injected per valid event
    max_bytes: int = 65536  # the decoder limit an oversized message must exceed
    #: slowdowns on top of the scenario's (the demo's incident schedule); they must not
    #: overlap each other or the scenario's slowdowns of the same team
    slowdowns: tuple[p.Slowdown, ...] = ()
    #: "1.1": also emit the shapes contract 1.1 adds (docs/contract.md)
    contract: str = "1.0"

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


def _weighted(rng: random.Random, table: dict[str, float]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def _score(rng: random.Random, table: dict[int, float]) -> int:
    return rng.choices(list(table), weights=list(table.values()))[0]


def first_midnight(start_ms: int) -> int:
    """Scenario events are placed from the UTC midnight of the simulation's first day,
    so a run that starts at 06:00 still has its incident at 09:00."""
    return start_ms - start_ms % DAY


def _on_shift(hour: int, shift: tuple[int, int]) -> bool:
    start, end = shift
    return start <= hour < end if start < end else hour >= start or hour < end


class Operation:
    """Teams, agents and their shifts, and the demand they face hour by hour."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.scenario = p.SCENARIO_TABLE[cfg.scenario]
        total = sum(p.HOURLY_PROFILE)
        self.profile = [w / total for w in p.HOURLY_PROFILE]
        scale = cfg.tickets_per_day / p.STAFF_REFERENCE_VOLUME
        self.agents: dict[str, dict[str, list[str]]] = {}
        for team, spec in p.TEAMS.items():
            counter = 0
            self.agents[team] = {}
            for shift, n in spec.agents.items():
                names = []
                for _ in range(max(1, round(n * scale))):
                    counter += 1
                    names.append(f"a-{team[:4]}-{counter:03d}")
                self.agents[team][shift] = names
        self.staff = {
            team: [
                sum(len(names) for s, names in shifts.items() if _on_shift(h, p.SHIFTS[s]))
                for h in range(24)
            ]
            for team, shifts in self.agents.items()
        }
        # Reference demand per agent: the demand-weighted average over a weekday,
        # so the load factor is about 1 in a typical hour and above it at peaks.
        self.reference = {
            team: sum(
                self.profile[h] * (self.profile[h] * spec.share / self.staff[team][h])
                for h in range(24)
            )
            for team, spec in p.TEAMS.items()
        }

    def team_weights(self, t: int) -> dict[str, float]:
        """Relative arrivals per team at `t`: the usual shares, times any surge."""
        weights = {name: spec.share for name, spec in p.TEAMS.items()}
        for surge in self.scenario.surges:
            begin = first_midnight(self.cfg.start_ms) + surge.start_after
            if begin <= t < begin + surge.length:
                weights[surge.team] *= surge.volume
        return weights

    def tickets_rate(self, t: int) -> float:
        """Expected ticket arrivals per millisecond at `t` (constant within an hour
        and within a surge)."""
        hour = (t // HOUR) % 24
        weekday = (t // DAY + 3) % 7  # 1970-01-01 was a Thursday
        per_hour = self.cfg.tickets_per_day * p.WEEKDAY_FACTOR[weekday] * self.profile[hour]
        per_hour *= self.scenario.volume * sum(self.team_weights(t).values())
        return per_hour / HOUR

    def next_change(self, t: int) -> int:
        """The next instant after `t` at which the arrival rate may change."""
        edges = [(t // HOUR + 1) * HOUR]
        for surge in self.scenario.surges:
            begin = first_midnight(self.cfg.start_ms) + surge.start_after
            edges += [e for e in (begin, begin + surge.length) if e > t]
        return min(edges)

    def load(self, team: str, t: int) -> float:
        """Delay multiplier from demand per agent on shift, relative to a typical hour."""
        hour = (t // HOUR) % 24
        weekday = (t // DAY + 3) % 7
        demand = p.WEEKDAY_FACTOR[weekday] * self.profile[hour] * p.TEAMS[team].share
        relative = demand / self.staff[team][hour] / self.reference[team]
        low, high = p.LOAD_CLAMP
        factor: float = relative**p.LOAD_EXPONENT
        return min(high, max(low, factor))

    def agent(self, rng: random.Random, team: str, t: int) -> str:
        hour = (t // HOUR) % 24
        on = [
            name
            for shift, names in self.agents[team].items()
            if _on_shift(hour, p.SHIFTS[shift])
            for name in names
        ]
        return rng.choice(on)


class _Life:
    """Draws one ticket's events."""

    def __init__(self, sim: Simulation, ticket_id: str, t0: int) -> None:
        self.sim = sim
        self.rng = sim.rng
        self.ticket_id = ticket_id
        self.t0 = t0
        self.events: list[Event] = []
        self.first_team = ""  # the team the ticket was created for
        self.slowed = False  # its first reply was delayed by a slowdown
        #: contract 1.1 shapes: their own random stream, None for 1.0
        self.rng11 = sim.rng11

    def eid(self) -> str:
        return self.sim.event_id()

    def minutes(self, spec: tuple[float, float], factor: float = 1.0) -> int:
        median, sigma = spec
        value = self.rng.lognormvariate(math.log(median * factor), sigma)
        return max(1000, int(value * MINUTE))

    def status(self, t: int, status: Status) -> None:
        self.events.append(StatusChanged(self.eid(), t, self.ticket_id, status))

    def message(
        self, t: int, author: Author, agent: str | None = None, public: bool = True
    ) -> None:
        self.events.append(TicketMessage(self.eid(), t, self.ticket_id, author, agent, public))

    def assign(self, t: int, agent: str, team: str | None = None) -> None:
        self.events.append(TicketAssigned(self.eid(), t, self.ticket_id, agent, team))

    def other_team(self, team: str) -> str:
        return self.rng.choice([name for name in p.TEAMS if name != team])

    def delay_factor(self, team: str, t: int) -> float:
        """Work needed for a reply, relative to a typical hour: load and chronic slowness.
        Slowdowns and surges act later, on the clock of work (`Simulation.finish`)."""
        return self.sim.op.load(team, t) * self.sim.chronic_frt(team)

    def after_work(self, team: str, t: int, spec: tuple[float, float], factor: float) -> int:
        """When a piece of work of the team drawn from `spec`, started at `t`, is done."""
        return self.sim.finish(team, t, self.minutes(spec, factor))

    def draw(self) -> list[Event]:
        rng, t0 = self.rng, self.t0
        team = _weighted(rng, self.sim.op.team_weights(t0))
        self.first_team = team
        channel = _weighted(rng, p.CHANNELS)
        priority = Priority(_weighted(rng, p.PRIORITIES))
        customer = f"c-{rng.randrange(self.sim.customers):06d}"
        by_agent = rng.random() < p.AGENT_CREATED
        self.events.append(
            TicketCreated(
                event_id=self.eid(),
                ts=t0,
                ticket_id=self.ticket_id,
                team=team,
                channel=channel,
                priority=priority,
                customer_id=customer,
                created_by=Creator.AGENT if by_agent else Creator.CUSTOMER,
            )
        )
        agent = self.sim.op.agent(rng, team, t0)
        if by_agent:
            self.assign(t0 + 1000, agent)
            t = t0 + rng.randint(10_000, 60_000)
            self.message(t, Author.AGENT, agent)
            self.status(t, Status.OPEN)
        else:
            team, agent, t = self._first_response(team, agent, channel, priority)
        drawn = len(self.events)
        t, team, agent = self._conversation(t, team, agent, channel)
        solved = t + self.minutes(p.SOLVE_AFTER_REPLY[channel])
        one_touch = len(self.events) == drawn and not by_agent
        if one_touch and self.rng11 is not None and self.rng11.random() < p.REPLY_AND_SOLVE:
            solved = self._reply_and_solve(t)
        self.status(solved, Status.SOLVED)
        self._surveys(solved, team, agent, channel, customer)
        last = solved
        if rng.random() < p.REOPEN:
            t = solved + self.minutes(p.REOPEN_AFTER)
            self.message(t, Author.CUSTOMER)
            self.status(t, Status.OPEN)
            t = self.after_work(team, t, p.NEXT_REPLY[channel], self.delay_factor(team, t))
            self.message(t, Author.AGENT, agent)
            last = t + self.minutes(p.SOLVE_AFTER_REPLY[channel])
            self.status(last, Status.SOLVED)
        low, high = p.CLOSE_AFTER_HOURS
        self.status(last + int(rng.uniform(low, high) * HOUR), Status.CLOSED)
        return self.events

    def _reply_and_solve(self, reply: int) -> int:
        """(1.1) The only reply and the solve in one save: one timestamp. The
        reply's `open` goes (with both at one time only the type order, not the
        ids, says which status is last); the solve takes its place."""
        for i in range(len(self.events) - 1, -1, -1):
            e = self.events[i]
            if isinstance(e, StatusChanged) and e.ts == reply and e.status is Status.OPEN:
                del self.events[i]
                break
        return reply

    def _first_response(
        self, team: str, agent: str, channel: str, priority: Priority
    ) -> tuple[str, str, int]:
        rng, t0 = self.rng, self.t0
        handoff = None
        if channel in p.BOT_GREETING and rng.random() < p.BOT_GREETING[channel]:
            greeting = t0 + rng.randint(2000, 20_000)
            self.message(greeting, Author.BOT)
            rng11 = self.rng11
            if rng11 is not None and rng11.random() < p.BOT_HANDLED:
                # (1.1) The bot held the ticket until it handed it to the team.
                self.events[0] = dataclasses.replace(self.events[0], bot=True)  # type: ignore[arg-type]
                handoff = greeting + int(rng11.uniform(*p.HANDOFF_AFTER_S) * 1000)
        factor = p.PRIORITY_FACTOR[priority.value] * self.delay_factor(team, t0)
        work = self.minutes(p.FRT[channel], factor)
        transfer = rng.random() < p.TRANSFER_BEFORE_REPLY
        if transfer:
            work = int(work * p.TRANSFER_FRT_FACTOR)
        frt = self.sim.finish(team, t0, work) - t0
        self.slowed = frt > work
        if transfer:
            self.assign(t0 + int(frt * rng.uniform(0.05, 0.3)), agent)
            team = self.other_team(team)
            agent = self.sim.op.agent(rng, team, t0)
            assigned = t0 + int(frt * rng.uniform(0.4, 0.7))
            self.assign(assigned, agent, team)
            if frt > work:
                # The rest of the work is the new team's, on its clock: a stalled team's
                # ticket, transferred late, is not left unanswered by the team that got it.
                left = int(work * (1 - (assigned - t0) / frt))
                frt = self.sim.finish(team, assigned, left) - t0
        else:
            assigned = t0 + int(frt * rng.uniform(0.1, 0.6))
            self.assign(assigned, agent)
        reply = t0 + frt
        if handoff is not None and handoff < reply:
            # (else an agent took the chat over before the bot let go: no handoff)
            self.events.append(TicketHandoff(self.sim.event_id11(), handoff, self.ticket_id))
        if rng.random() < p.INTERNAL_NOTE:
            note = assigned + int((reply - assigned) * rng.uniform(0.2, 0.9))
            self.message(note, Author.AGENT, agent, public=False)
        self.message(reply, Author.AGENT, agent)
        self.status(reply, Status.OPEN)
        return team, agent, reply

    def _conversation(self, t: int, team: str, agent: str, channel: str) -> tuple[int, str, str]:
        rng = self.rng
        if rng.random() < p.ONE_TOUCH[channel]:
            return t, team, agent
        rounds = 1
        while rounds < p.MAX_ROUNDS and rng.random() < p.EXTRA_ROUND:
            rounds += 1
        for n in range(rounds):
            pending = rng.random() < p.ASK_PENDING
            if pending:
                self.status(t, Status.PENDING)
            t += self.minutes(p.CUSTOMER_REPLY[channel])
            self.message(t, Author.CUSTOMER)
            if pending:
                self.status(t, Status.OPEN)
            if rng.random() < p.PUT_ON_HOLD:
                t += MINUTE
                self.status(t, Status.ON_HOLD)
                t += self.minutes(p.ON_HOLD)
                self.status(t, Status.OPEN)
            if n == 0 and rng.random() < p.TRANSFER_LATER:
                team = self.other_team(team)
                agent = self.sim.op.agent(rng, team, t)
                t += MINUTE
                self.assign(t, agent, team)
            t = self.after_work(team, t, p.NEXT_REPLY[channel], self.delay_factor(team, t))
            self.message(t, Author.AGENT, agent)
        return t, team, agent

    def _surveys(self, solved: int, team: str, agent: str, channel: str, customer: str) -> None:
        rng, rng11 = self.rng, self.rng11
        share = self.sim.csat_share(self.first_team, self.slowed)
        scale = None
        if rng11 is not None:
            # (1.1) the helpdesk in front decides the scale; most offer the survey
            pick = _weighted(rng11, {"five_point": 1.0 - sum(p.CSAT_OTHER_SCALES.values()),
                                     **p.CSAT_OTHER_SCALES})  # fmt: skip
            scale = None if pick == "five_point" else Scale(pick)
            if rng11.random() < p.CSAT_OFFERED:
                self.events.append(SurveyOffered(
                    self.sim.event_id11(), solved + rng11.randint(1000, 60_000), SurveyKind.CSAT,
                    ticket_id=self.ticket_id, customer_id=customer,
                    touchpoint="after_resolution", scale=scale,
                ))  # fmt: skip
        if rng.random() < p.CSAT_RESPONSE:
            table = p.CSAT_SATISFIED if rng.random() < share else p.CSAT_UNSATISFIED
            score = _score(rng, table)
            if scale is not None:
                score = p.CSAT_ON_SCALE[scale.value][score]
            self._survey(solved, SurveyKind.CSAT, score, team, agent, channel, customer, scale)
        if rng.random() < p.CES_RESPONSE:
            score = _score(rng, p.CES_SCORES)
            self._survey(solved, SurveyKind.CES, score, team, agent, channel, customer)
        if rng.random() < p.NPS_RESPONSE:
            score = _score(rng, p.NPS_SCORES)
            self._survey(solved, SurveyKind.NPS, score, team, agent, channel, customer)

    def _survey(
        self,
        solved: int,
        kind: SurveyKind,
        score: int,
        team: str,
        agent: str,
        channel: str,
        customer: str,
        scale: Scale | None = None,
    ) -> None:
        t = solved + self.minutes(p.SURVEY_DELAY)
        enriched = self.rng.random() < p.SURVEY_ENRICHED
        self.events.append(
            SurveyResponse(
                event_id=self.eid(),
                ts=t,
                survey=kind,
                score=score,
                ticket_id=self.ticket_id,
                customer_id=customer,
                team=team if enriched else None,
                agent_id=agent if enriched else None,
                channel=channel if enriched else None,
                touchpoint="after_resolution",
                scale=scale,
            )
        )


class Simulation:
    """Arrivals (non-homogeneous Poisson, piecewise constant per hour) and their lives."""

    def __init__(self, cfg: SimConfig) -> None:
        if cfg.scenario not in p.SCENARIOS:
            raise ValueError(f"unknown scenario {cfg.scenario!r}")
        if cfg.contract not in CONTRACTS:
            raise ValueError(f"unknown contract version {cfg.contract!r}")
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        #: contract 1.1 shapes: a stream of their own (the 1.0 draws stay the same)
        self.rng11 = random.Random(cfg.seed * 1_000_003 + 11) if cfg.contract == "1.1" else None
        self.op = Operation(cfg)
        self.customers = max(1, int(cfg.tickets_per_day * p.CUSTOMER_POOL_PER_TICKET))
        scenario = p.SCENARIO_TABLE[cfg.scenario]
        #: team -> [(begin, end, factor)], sorted: when the team's work runs slower
        self.slow: dict[str, list[tuple[int, int, float]]] = {}
        slowdowns = (*scenario.slowdowns, *cfg.slowdowns)
        slows: list[p.Slowdown | p.Surge] = [*slowdowns, *scenario.surges]
        for slow in slows:
            begin = first_midnight(cfg.start_ms) + slow.start_after
            self.slow.setdefault(slow.team, []).append((begin, begin + slow.length, slow.factor))
        for spans in self.slow.values():
            spans.sort()
        self.slow_csat = {s.team: s.csat_share for s in slowdowns}
        self.chronic = scenario.chronic or {}

    def chronic_frt(self, team: str) -> float:
        return self.chronic[team][1] if team in self.chronic else 1.0

    def csat_share(self, team: str, slowed: bool) -> float:
        if slowed and team in self.slow_csat:
            return self.slow_csat[team]
        return self.chronic[team][0] if team in self.chronic else p.CSAT_SHARE

    def finish(self, team: str, t: int, work: int) -> int:
        """When `work` ms of the team's work started at `t` is done: inside a slowdown
        the work progresses `factor` times slower, so work already under way when the
        slowdown starts is delayed too."""
        left = float(work)
        now = float(t)
        for begin, end, factor in self.slow.get(team, ()):
            if end <= now:
                continue
            if now < begin:
                if now + left <= begin:
                    break
                left -= begin - now
                now = float(begin)
            if now + left * factor <= end:
                now += left * factor
                left = 0.0
                break
            left -= (end - now) / factor
            now = float(end)
        return int(now + left)

    def event_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def event_id11(self) -> str:
        """The id of an event only contract 1.1 has (its own stream: see the module)."""
        assert self.rng11 is not None
        return str(uuid.UUID(int=self.rng11.getrandbits(128), version=4))

    def arrivals(self) -> Iterator[int]:
        """Arrival times: exponential gaps, redrawn where the rate changes (memoryless)."""
        rng, end = self.rng, self.cfg.end_ms
        t = float(self.cfg.start_ms)
        while t < end:
            hour_end = self.op.next_change(int(t))
            rate = self.op.tickets_rate(int(t)) * (1.0 + p.STANDALONE_NPS_PER_TICKET)
            gap = rng.expovariate(rate) if rate > 0 else math.inf
            if t + gap >= hour_end:
                t = float(hour_end)
                continue
            t += gap
            if t < end:
                yield int(t)

    def standalone_nps(self, t: int) -> list[Event]:
        rng = self.rng
        customer = f"c-{rng.randrange(self.customers):06d}"
        channel = rng.choice(["email", "web"])
        score = _score(rng, p.NPS_SCORES)
        return [
            SurveyResponse(
                event_id=self.event_id(),
                ts=t,
                survey=SurveyKind.NPS,
                score=score,
                customer_id=customer,
                channel=channel,
                touchpoint="after_purchase",
            )
        ]

    def events(self) -> Iterator[Event]:
        """Every event with `ts` in [start, end), sorted by (ts, order of drawing)."""
        heap: list[tuple[int, int, Event]] = []
        seq = 0
        tickets = 0
        end = self.cfg.end_ms
        nps_share = p.STANDALONE_NPS_PER_TICKET / (1.0 + p.STANDALONE_NPS_PER_TICKET)
        for t in self.arrivals():
            while heap and heap[0][0] < t:
                yield heapq.heappop(heap)[2]
            if self.rng.random() < nps_share:
                drawn = self.standalone_nps(t)
            else:
                tickets += 1
                drawn = _Life(self, f"T-{self.cfg.seed % 10_000:04d}-{tickets:07d}", t).draw()
            for event in drawn:
                if event.ts < end:
                    heapq.heappush(heap, (event.ts, seq, event))
                    seq += 1
        while heap:
            yield heapq.heappop(heap)[2]
