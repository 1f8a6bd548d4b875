"""KPI arithmetic on exact counts: survey shares, NPS, intervals, ratios.

Pure functions of integers so the brute-force reference, the report and the
exporter share one definition of each formula and agree to the last bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cxpulse.core.events import SCALES, Scale, SurveyKind
from cxpulse.core.slices import N_SURVEY_SLOTS, OFFERS_SLOT, SLOT_OTHER_SCALE

#: Two-sided 95 % standard normal quantile (Phi^-1(0.975)).
Z95 = 1.959963984540054


def ratio(num: int, den: int) -> float | None:
    """`num / den`, or None when nothing was counted (a 0/0 KPI is undefined, not 0)."""
    return num / den if den else None


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval: unlike the normal interval it stays in [0, 1] and
    is honest at p near 0 or 1 and for small n, which is where CSAT/CES live."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def nps_interval(promoters: int, detractors: int, n: int, z: float = Z95) -> (
    tuple[float, float] | None
):
    """Normal approximation, Var(NPS) = 100^2 (p + d - (p - d)^2) / n, clipped to [-100, 100]."""
    if n <= 0:
        return None
    p, d = promoters / n, detractors / n
    nps = 100.0 * (p - d)
    var = 100.0**2 * (p + d - (p - d) ** 2) / n
    half = z * math.sqrt(max(var, 0.0))
    return max(-100.0, nps - half), min(100.0, nps + half)


#: Scores that count as the "good" share of each survey kind.
GOOD_SCORES: dict[SurveyKind, range] = {
    SurveyKind.CSAT: range(4, 6),
    SurveyKind.CES: range(5, 8),
    SurveyKind.NPS: range(9, 11),
}
NPS_DETRACTORS = range(0, 7)

#: (1.1) Satisfied CSAT answers on the other scales, by the idea of 4-5 of 5
#: (the top two of five boxes): the top two of seven, the happy face of three
#: (Freshdesk 103), good of good / bad (docs/contract.md, "Scales").
SATISFIED_OTHER: dict[Scale, frozenset[int]] = {
    Scale.SEVEN_POINT: frozenset({6, 7}),
    Scale.THREE_POINT: frozenset({103}),
    Scale.TWO_POINT: frozenset({1}),
}


@dataclass(frozen=True, slots=True)
class SurveyStats:
    """One survey KPI from its score histogram (counts[score] for the kind's scale)."""

    value: float | None  # share 0-1 (CSAT, CES) or NPS -100..100
    mean: float | None
    n: int
    ci_low: float | None
    ci_high: float | None
    below_min_sample: bool
    #: Responses on the kind's own scale: the mean's sample (1.1: other CSAT
    #: scales count in the share, never in the mean).
    mean_n: int = 0
    #: (1.1) Surveys offered, and responses / offers (None without offers).
    offers: int = 0
    response_rate: float | None = None


def good_and_answers(kind: SurveyKind, counts: list[int]) -> tuple[int, int]:
    """(good answers, answers) of a histogram: the share's numerator and n, every
    scale included (1.1: other CSAT scales count in the share)."""
    lo, hi = SCALES[kind]
    good = sum(counts[s] for s in GOOD_SCORES[kind])
    n = sum(counts[lo : hi + 1])
    for slot, (scale, score) in SLOT_OTHER_SCALE.items():
        c = counts[slot] if slot < len(counts) else 0
        if c:  # only CSAT ever fills these slots (decode checks the scale)
            n += c
            if score in SATISFIED_OTHER[scale]:
                good += c
    return good, n


def survey_stats(kind: SurveyKind, counts: list[int], min_sample: int) -> SurveyStats:
    if len(counts) < N_SURVEY_SLOTS:  # a v1-sized histogram: no 1.1 slots
        counts = [*counts, *[0] * (N_SURVEY_SLOTS - len(counts))]
    lo, hi = SCALES[kind]
    native = sum(counts[lo : hi + 1])
    total = sum(score * counts[score] for score in range(lo, hi + 1))
    mean = total / native if native else None
    good, n = good_and_answers(kind, counts)
    offers = counts[OFFERS_SLOT]
    ci: tuple[float, float] | None
    if kind is SurveyKind.NPS:
        bad = sum(counts[s] for s in NPS_DETRACTORS)
        value = 100.0 * (good - bad) / n if n else None
        ci = nps_interval(good, bad, n)
    else:
        value = ratio(good, n)
        ci = wilson(good, n)
    return SurveyStats(
        value=value,
        mean=mean,
        n=n,
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
        below_min_sample=n < min_sample,
        mean_n=native,
        offers=offers,
        response_rate=ratio(n, offers),
    )
