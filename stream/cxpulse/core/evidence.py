"""Sequential evidence of a collapse of a share KPI (CSAT, CES, FCR): Page's CUSUM.

Why a CUSUM and not a window with a `for:`: a fixed window is either too short
for a small team (no evidence in it) or too slow for a big one; a test repeated
on every evaluation (a repeated SPRT, or "95 % interval below target") false-
alarms far more often than its nominal level. Page's CUSUM is the sequential
test built to be repeated: every answer moves one statistic, and its false-alarm
rate is the average run length (ARL) of that statistic, which is computed
exactly here (a finite Markov chain) instead of guessed.

The test, for one team and one KPI (docs/alerts.md, "Collapse evidence"):

* H0: the team's share is its target `p0` (targets.yaml, per-team overrides);
  H1: it fell to `p1` (`collapse`, 0.5 by default).
* Each answer's log-likelihood ratio is `ln(q1/q0)` for a bad answer and
  `ln((1-q1)/(1-q0))` for a good one (q = 1 - p). They are replaced by the
  nearest ratio of small integers (`weights`: 2 and 1 for 0.80 -> 0.50), so the
  statistic is an integer ("points"), exact in any order of addition, and its
  ARL is the exact solution of a small linear system rather than an
  approximation of an integral equation.
* `S = min(H, max(0, S + up * bad - down * good))`: never below 0 (old good
  answers do not bank credit) and never above `H` (old bad answers do not bank
  debt: after a collapse the same amount of evidence, `H` points of good
  answers, closes the alert as opened it).
* `H` is the smallest threshold whose in-control ARL (answers until a false
  alarm while the team is *exactly at its target*) is at least
  `false_alarm_days` x the team's answers per day: a team at its target gets at
  most one false alert per `false_alarm_days` days whatever its volume; its
  volume decides how much evidence is needed, not whether it can ever alert.

The evaluation exports `S / H` (0..1; 1 = the evidence is sufficient) per team.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

#: Largest denominator of the integer weights (up : down). 4 keeps H small (a
#: Markov chain of at most a few hundred states) and the weights within 2 % of
#: the log-likelihood ratio for every target between 0.55 and 0.97.
MAX_WEIGHT_DENOMINATOR = 4
#: The statistic looks back at most this far (and never further than the slices kept).
HORIZON_MS = 86_400_000
#: Thresholds are searched up to this many points (an ARL beyond any volume).
MAX_THRESHOLD = 400


class EvidenceError(ValueError):
    """A test that cannot detect anything (the collapse share is not below the target)."""


@dataclass(frozen=True)
class EvidenceSpec:
    """The collapse test of one share KPI: `csat`, `ces` (survey shares) or `fcr`."""

    kpi: str
    target: float
    collapse: float = 0.5
    #: A team exactly at its target gets at most one false alert per this many days.
    false_alarm_days: float = 30.0
    team_targets: Mapping[str, float] = field(default_factory=dict)

    def target_for(self, team: str) -> float:
        return self.team_targets.get(team, self.target)


@lru_cache(maxsize=256)
def weights(p0: float, p1: float) -> tuple[int, int]:
    """(up, down): points added per bad answer and removed per good one, the
    log-likelihood ratio ln(q1/q0) : -ln((1-q1)/(1-q0)) as a ratio of small integers."""
    if not 0.0 < p1 < p0 < 1.0:
        raise EvidenceError(
            f"collapse share {p1:g} must be below the target {p0:g}, both in (0, 1)"
        )
    q0, q1 = 1.0 - p0, 1.0 - p1
    up = math.log(q1 / q0)
    down = math.log(p0 / p1)
    r = Fraction(up / down).limit_denominator(MAX_WEIGHT_DENOMINATOR)
    if r <= 0:  # pragma: no cover - up and down are both positive
        raise EvidenceError("degenerate weights")
    return r.numerator, r.denominator


def arl(p_good: float, up: int, down: int, h: int) -> float:
    """Expected number of answers until `S` first reaches `h`, starting from 0,
    when each answer is good with probability `p_good` (exact: the Markov chain
    on the integer states 0..h-1, solved by Gaussian elimination)."""
    if h <= 0:
        return 0.0
    q = 1.0 - p_good
    n = h
    a = [[0.0] * n for _ in range(n)]
    b = [1.0] * n
    for s in range(n):
        a[s][s] += 1.0
        if s + up < h:
            a[s][s + up] -= q
        a[s][max(0, s - down)] -= p_good
    for i in range(n):
        piv = max(range(i, n), key=lambda r: abs(a[r][i]))
        if a[piv][i] == 0.0:
            return math.inf  # the state cannot reach h (p_good = 1)
        a[i], a[piv] = a[piv], a[i]
        b[i], b[piv] = b[piv], b[i]
        inv = 1.0 / a[i][i]
        row_i = a[i]
        for r in range(n):
            f = a[r][i]
            if r != i and f != 0.0:
                f *= inv
                row_r = a[r]
                for c in range(i, n):
                    row_r[c] -= f * row_i[c]
                b[r] -= f * b[i]
    return b[0] / a[0][0]


@lru_cache(maxsize=4096)
def _in_control_arl(p0: float, p1: float, h: int) -> float:
    up, down = weights(p0, p1)
    return arl(p0, up, down, h)


def threshold(p0: float, p1: float, false_alarm_days: float, answers_per_day: float) -> int:
    """The smallest H whose in-control ARL (at the target `p0`) covers
    `false_alarm_days` days of `answers_per_day` answers (at least one a day)."""
    need = false_alarm_days * max(answers_per_day, 1.0)
    for h in range(1, MAX_THRESHOLD + 1):
        if _in_control_arl(p0, p1, h) >= need:
            return h
    return MAX_THRESHOLD


def cusum(steps: Iterable[tuple[int, int]], up: int, down: int, h: int) -> int:
    """The capped CUSUM after batches of (good, bad) answers, each batch applied as one
    step (the per-slice form the evaluation uses; docs/alerts.md bounds it by the
    per-answer statistic)."""
    s = 0
    for good, bad in steps:
        s = min(h, max(0, s + up * bad - down * good))
    return s


def expected_hours_to_alert(p0: float, p1: float, false_alarm_days: float,
                            answers_per_day: float) -> float:
    """Mean time from onset to alert when the share falls from `p0` to `p1` at a steady
    `answers_per_day` (answers as a Poisson stream; from a statistic at 0)."""
    up, down = weights(p0, p1)
    h = threshold(p0, p1, false_alarm_days, answers_per_day)
    return arl(p1, up, down, h) / answers_per_day * 24.0


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    if x <= 0.0:
        return 0.0
    return 0.5 * math.erfc(-math.log(x / median) / (sigma * math.sqrt(2.0)))


def expected_hours_to_alert_after_surveys(
        p0: float, p1: float, false_alarm_days: float, answers_per_day: float,
        delay_median_min: float, delay_sigma: float, p_before: float | None = None) -> float:
    """Mean time from onset to alert when each answer comes a survey delay after the
    service it rates (lognormal: `delay_median_min`, `delay_sigma`), so the answers turn
    bad gradually: an answer arriving `t` after the onset rates a service after the onset
    with probability F(t), the delay's distribution, and is good with probability
    `p_before * (1 - F(t)) + p1 * F(t)` (`p_before`: the share before the onset, the
    target `p0` unless given). Why: a page can come no sooner than the answers that carry
    the news, and the simulator's (and a helpdesk's) surveys are answered hours after the
    ticket is solved; this is the part of the time to page the test cannot shorten.

    Answers arrive as a Poisson stream; time runs in steps of 1/50 of the mean gap between
    answers, each holding one answer with probability 0.02 (the rate kept exact; the
    result is checked against a Monte Carlo that draws services, survey delays and
    answers, tests/unit/test_core_evidence.py); the statistic's
    distribution over 0..H-1 is carried step by step from 0 at the onset until what is
    left unalerted is negligible."""
    before = p0 if p_before is None else p_before
    up, down = weights(p0, p1)
    h = threshold(p0, p1, false_alarm_days, answers_per_day)
    rate = answers_per_day / 1440.0  # answers a minute
    step_answer = 0.02
    dt = step_answer / rate  # minutes
    dist = [0.0] * h
    dist[0] = 1.0
    alive, minutes, t = 1.0, 0.0, 0.0
    while alive > 1e-7:
        f = _lognormal_cdf(t + dt / 2, delay_median_min, delay_sigma)
        good = before * (1.0 - f) + p1 * f
        pg, pb = step_answer * good, step_answer * (1.0 - good)
        nxt = [0.0] * h
        for s, w in enumerate(dist):
            if w == 0.0:
                continue
            nxt[s] += w * (1.0 - step_answer)
            nxt[max(0, s - down)] += w * pg
            if s + up < h:
                nxt[s + up] += w * pb
        dist = nxt
        minutes += alive * dt
        alive = sum(dist)
        t += dt
        if t > 365 * 1440:  # pragma: no cover - no volume here takes a year
            raise EvidenceError("the statistic does not reach its threshold")
    return minutes / 60.0
