"""Parameters of the simulated support operation, and the targets they are tuned to.

The numbers are plausible for a well-run mid-size B2C helpdesk (orders of
magnitude from public Zendesk/Freshdesk benchmark reports). A `normal` day
is *healthy*: it meets the default targets of `targets.yaml` (FRT p90 under
15 minutes per team in most hours, CSAT > 0.80, NPS > 70, CES > 0.85,
FCR > 0.80) with the variance of real traffic: peaks, thin night shifts,
quiet hours, a quieter weekend. Alerts are only worth something if a normal
day does not trigger them, so the named scenarios (`SCENARIOS`) add one
clearly defined problem each on top of this healthy operation.
The simulated operation runs on UTC: its local hour is the UTC hour.

Targets the defaults are tested against (tests/unit/test_simulate.py), for
the `normal` scenario over a full day:

* first response time of customer-created tickets: median in
  `FRT_MEDIAN_RANGE_MIN`, p90 under `FRT_P90_MAX_MIN`;
* CSAT satisfied share (scores 4 and 5) near `CSAT_SHARE`.
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

FRT_MEDIAN_RANGE_MIN = (1.5, 6.0)
FRT_P90_MAX_MIN = 13.0
CSAT_SHARE = 0.88

#: Share of the day's tickets arriving in each UTC hour (normalised on use).
HOURLY_PROFILE: tuple[float, ...] = (
    0.010, 0.007, 0.006, 0.006, 0.007, 0.012, 0.022, 0.040,  # 00-07
    0.062, 0.075, 0.078, 0.074, 0.064, 0.066, 0.072, 0.070,  # 08-15
    0.063, 0.055, 0.045, 0.036, 0.030, 0.024, 0.018, 0.014,  # 16-23
)  # fmt: skip
#: Volume by weekday (Monday first) relative to `tickets_per_day`.
WEEKDAY_FACTOR: tuple[float, ...] = (1.15, 1.0, 1.0, 1.0, 0.95, 0.55, 0.5)

CHANNELS: dict[str, float] = {"email": 0.40, "chat": 0.30, "phone": 0.12, "web": 0.18}
PRIORITIES: dict[str, float] = {"low": 0.20, "normal": 0.55, "high": 0.20, "urgent": 0.05}

#: Shift name -> (start hour, end hour), end exclusive, may wrap midnight.
SHIFTS: dict[str, tuple[int, int]] = {
    "night": (22, 6),
    "early": (6, 14),
    "day": (9, 17),
    "late": (14, 22),
}


@dataclass(frozen=True, slots=True)
class TeamSpec:
    share: float  # of tickets
    agents: dict[str, int]  # per shift, for 2,000 tickets a day (scaled with volume)


TEAMS: dict[str, TeamSpec] = {
    "billing": TeamSpec(0.28, {"night": 1, "early": 3, "day": 4, "late": 3}),
    "tech": TeamSpec(0.36, {"night": 2, "early": 4, "day": 5, "late": 4}),
    "accounts": TeamSpec(0.16, {"night": 1, "early": 2, "day": 2, "late": 2}),
    "shipping": TeamSpec(0.20, {"night": 1, "early": 2, "day": 3, "late": 2}),
}
STAFF_REFERENCE_VOLUME = 2000.0

# ---- delays: lognormal (median in minutes, sigma) -------------------------
FRT: dict[str, tuple[float, float]] = {
    "phone": (0.6, 0.5),
    "chat": (1.2, 0.6),
    "web": (3.5, 0.65),
    "email": (4.5, 0.65),
}
PRIORITY_FACTOR: dict[str, float] = {"low": 1.3, "normal": 1.0, "high": 0.7, "urgent": 0.4}
#: Delay multiplier = (relative load) ** LOAD_EXPONENT, clamped to LOAD_CLAMP.
LOAD_EXPONENT = 0.5
LOAD_CLAMP = (0.6, 1.6)
CUSTOMER_REPLY: dict[str, tuple[float, float]] = {
    "phone": (3.0, 0.8),
    "chat": (2.0, 0.8),
    "web": (45.0, 1.1),
    "email": (90.0, 1.1),
}
NEXT_REPLY: dict[str, tuple[float, float]] = {
    "phone": (2.0, 0.6),
    "chat": (1.5, 0.7),
    "web": (20.0, 0.9),
    "email": (35.0, 0.9),
}
SOLVE_AFTER_REPLY: dict[str, tuple[float, float]] = {
    "phone": (2.0, 0.6),
    "chat": (3.0, 0.7),
    "web": (15.0, 0.9),
    "email": (20.0, 0.9),
}
ON_HOLD = (180.0, 0.8)
REOPEN_AFTER = (360.0, 1.0)
SURVEY_DELAY = (90.0, 1.1)
CLOSE_AFTER_HOURS = (24.0, 72.0)  # uniform

# ---- probabilities -------------------------------------------------------
AGENT_CREATED = 0.04
BOT_GREETING = {"chat": 0.7, "web": 0.5}
INTERNAL_NOTE = 0.12
ONE_TOUCH = {"phone": 0.93, "chat": 0.90, "web": 0.85, "email": 0.82}
EXTRA_ROUND = 0.4  # chance of one more back-and-forth, repeated, at most MAX_ROUNDS
MAX_ROUNDS = 5
ASK_PENDING = 0.6
PUT_ON_HOLD = 0.07
TRANSFER_BEFORE_REPLY = 0.05
TRANSFER_LATER = 0.04
TRANSFER_FRT_FACTOR = 1.6
REOPEN = 0.06
CUSTOMER_POOL_PER_TICKET = 20  # distinct customers ~ this x tickets/day

CSAT_RESPONSE = 0.25
CES_RESPONSE = 0.08
NPS_RESPONSE = 0.06
#: Relationship NPS surveys not tied to a ticket, per ticket created.
STANDALONE_NPS_PER_TICKET = 0.03
#: Share of surveys the helpdesk already enriched with team/agent/channel.
SURVEY_ENRICHED = 0.5

# ---- contract 1.1 shapes (`--contract 1.1`; drawn from a random stream of their
# own, so the 1.0 operation underneath stays the same draw for draw) ----------
#: Greeted tickets that start in a bot's hands (`bot`, then `ticket.handoff`).
BOT_HANDLED = 0.8
#: Handoff after the bot's greeting, seconds (uniform).
HANDOFF_AFTER_S = (5.0, 90.0)
#: One-touch tickets whose only reply is saved together with the solve.
REPLY_AND_SOLVE = 0.3
#: Solved tickets offered a CSAT survey (`survey.offered`), answered or not.
CSAT_OFFERED = 0.9
#: CSAT scale per ticket (the rest: five_point, the v1 scale); helpdesks in front.
CSAT_OTHER_SCALES = {"two_point": 0.15, "three_point": 0.10, "seven_point": 0.05}
#: A 1-5 answer on another scale, keeping satisfied (4-5) satisfied and the rest not.
CSAT_ON_SCALE = {
    "two_point": {5: 1, 4: 1, 3: 0, 2: 0, 1: 0},
    "three_point": {5: 103, 4: 103, 3: 100, 2: -103, 1: -103},
    "seven_point": {5: 7, 4: 6, 3: 4, 2: 2, 1: 1},
}

#: Score distributions: value -> weight.
CSAT_SATISFIED = {5: 0.72, 4: 0.28}
CSAT_UNSATISFIED = {3: 0.45, 2: 0.25, 1: 0.30}
NPS_SCORES = {
    10: 0.52, 9: 0.30, 8: 0.08, 7: 0.05, 6: 0.015,
    5: 0.01, 4: 0.005, 3: 0.005, 2: 0.005, 1: 0.005, 0: 0.005,
}  # fmt: skip  (promoters 82 %, detractors 5 %: NPS about 77)
CES_SCORES = {7: 0.45, 6: 0.32, 5: 0.15, 4: 0.04, 3: 0.02, 2: 0.01, 1: 0.01}  # easy 92 %


@dataclass(frozen=True, slots=True)
class Slowdown:
    """One team works slower than usual for a while: its replies take `factor` times longer.

    It acts on the team's *clock of work*, not on tickets created during the
    window only: a reply still owed when the slowdown starts has its remaining
    work stretched too, the way a tool outage or a team pulled into an
    escalation stalls the queue that is already waiting. That is what makes
    the problem visible (tickets ageing unanswered) before any ticket breaches.
    """

    team: str
    start_after: int  # from the UTC midnight of the simulation's first day
    length: int
    factor: float
    csat_share: float = CSAT_SHARE  # for tickets whose first reply it delayed


@dataclass(frozen=True, slots=True)
class Surge:
    """`volume` times the usual arrivals of one team for a while, with `staff` times
    its agents on shift (callbacks from a rota). Replies slow down by the load
    per agent to the power `SURGE_EXPONENT` (a queue grows faster than linearly)."""

    team: str
    start_after: int
    length: int
    volume: float
    staff: float

    @property
    def factor(self) -> float:
        slowdown: float = (self.volume / self.staff) ** SURGE_EXPONENT
        return max(1.0, slowdown)


SURGE_EXPONENT = 1.3


@dataclass(frozen=True, slots=True)
class Scenario:
    """What a named scenario adds to the healthy operation (every field optional)."""

    description: str
    slowdowns: tuple[Slowdown, ...] = ()
    surges: tuple[Surge, ...] = ()
    #: team -> (CSAT satisfied share, FRT delay factor), every day
    chronic: dict[str, tuple[float, float]] | None = None
    volume: float = 1.0  # of the whole operation


#: The `incident` scenario: team tech stalls from 09:00 to 12:00 on the first day.
INCIDENT = Slowdown("tech", 9 * HOUR, 3 * HOUR, factor=5.0, csat_share=0.45)

SCENARIO_TABLE: dict[str, Scenario] = {
    "normal": Scenario("a healthy, well-run operation"),
    "incident": Scenario(
        "team tech stalls (replies 5x slower) from 09:00 to 12:00", slowdowns=(INCIDENT,)
    ),
    "chronic": Scenario(
        "team billing misses its CSAT target every day (satisfied share 0.62; no acute "
        "incident: its replies are as fast as usual)",
        chronic={"billing": (0.62, 1.0)},
    ),
    "surge": Scenario(
        "team tech gets 3x its volume 14:00-16:00, absorbed by 2.5x its staff",
        surges=(Surge("tech", 14 * HOUR, 2 * HOUR, volume=3.0, staff=2.5),),
    ),
    "surge-overload": Scenario(
        "team tech gets 3x its volume 14:00-16:00 with the usual staff: overwhelmed",
        surges=(Surge("tech", 14 * HOUR, 2 * HOUR, volume=3.0, staff=1.0),),
    ),
    "quiet": Scenario("a holiday: a tenth of the usual volume, all day", volume=0.1),
}
SCENARIOS = tuple(SCENARIO_TABLE)

#: Dirt: share of events held back when --disorder is on.
DISORDER_SHARE = 0.2
#: The worker's default allowed lateness; disorder at or beyond it makes late events.
DEFAULT_LATENESS_S = 300.0
