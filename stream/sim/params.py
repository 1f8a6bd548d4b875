"""Parameters of the simulated support operation, and the targets they are tuned to.

The numbers are plausible for a mid-size B2C helpdesk (orders of magnitude
from public Zendesk/Freshdesk benchmark reports), and tuned so the stream
exercises every KPI: most first replies beat the 15-minute target, some
breach it, peaks and thin night shifts make delays vary during the day.
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

FRT_MEDIAN_RANGE_MIN = (5.0, 12.0)
FRT_P90_MAX_MIN = 40.0
CSAT_SHARE = 0.86

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
    "phone": (1.0, 0.6),
    "chat": (2.5, 0.8),
    "web": (11.0, 0.85),
    "email": (16.0, 0.8),
}
PRIORITY_FACTOR: dict[str, float] = {"low": 1.3, "normal": 1.0, "high": 0.7, "urgent": 0.4}
#: Delay multiplier = (relative load) ** LOAD_EXPONENT, clamped to LOAD_CLAMP.
LOAD_EXPONENT = 0.8
LOAD_CLAMP = (0.5, 3.0)
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
ONE_TOUCH = {"phone": 0.85, "chat": 0.80, "web": 0.68, "email": 0.62}
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
NPS_RESPONSE = 0.04
#: Relationship NPS surveys not tied to a ticket, per ticket created.
STANDALONE_NPS_PER_TICKET = 0.03
#: Share of surveys the helpdesk already enriched with team/agent/channel.
SURVEY_ENRICHED = 0.5

#: Score distributions: value -> weight.
CSAT_SATISFIED = {5: 0.72, 4: 0.28}
CSAT_UNSATISFIED = {3: 0.45, 2: 0.25, 1: 0.30}
NPS_SCORES = {
    10: 0.33, 9: 0.22, 8: 0.15, 7: 0.12, 6: 0.06,
    5: 0.04, 4: 0.02, 3: 0.02, 2: 0.01, 1: 0.01, 0: 0.02,
}  # fmt: skip
CES_SCORES = {7: 0.35, 6: 0.30, 5: 0.17, 4: 0.08, 3: 0.05, 2: 0.03, 1: 0.02}


@dataclass(frozen=True, slots=True)
class Incident:
    """One team's replies slow down and its customers get unhappy, then it recovers."""

    team: str = "tech"
    start_after: int = 9 * HOUR  # from the simulation start
    length: int = 3 * HOUR
    delay_factor: float = 4.0
    csat_share: float = 0.45


INCIDENT = Incident()
SCENARIOS = ("normal", "incident")

#: Dirt: share of events held back when --disorder is on.
DISORDER_SHARE = 0.2
#: The worker's default allowed lateness; disorder at or beyond it makes late events.
DEFAULT_LATENESS_S = 300.0
