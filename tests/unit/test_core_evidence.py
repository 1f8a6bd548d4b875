"""The collapse evidence (issue 20, sequential CSAT) against independent computations.

* The exact ARL (Markov chain) against a Monte Carlo run of the per-answer CUSUM.
* The threshold statement ("a team at its target: at most one false alert per
  `false_alarm_days` days at its volume") against the ARL, and the weights against
  the log-likelihood ratio they stand for.
* The evaluation's gauge, computed from merged per-partition slices, against a
  per-answer brute force over the raw answers: equal when no minute holds both a
  good and a bad answer, and between the "bad answers first" and "good answers
  first" orderings otherwise; identical whatever the partitioning.
* The mean time to alert when answers come a survey delay after the service they rate
  against a Monte Carlo that draws the services, their delays and the answers.
* The table of docs/alerts.md ("Collapse evidence") is what `detection_table` computes.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from cxpulse.core.config import CoreConfig
from cxpulse.core.engine import PartitionEngine, evaluate
from cxpulse.core.events import SurveyKind, SurveyResponse, TicketCreated, role_of
from cxpulse.core.evidence import (
    EvidenceSpec,
    arl,
    cusum,
    expected_hours_to_alert,
    expected_hours_to_alert_after_surveys,
    threshold,
    weights,
)
from cxpulse.core.partitioning import partition_for
from cxpulse.core.targets import DEFAULT_TARGETS

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def _per_answer(answers: list[bool], up: int, down: int, h: int) -> int:
    """The textbook recursion, one answer at a time (True = good)."""
    s = 0
    for good in answers:
        s = min(h, max(0, s - down if good else s + up))
    return s


def _simulated_run_length(rng: random.Random, p_good: float, up: int, down: int,
                          h: int) -> int:
    s, n = 0, 0
    while s < h:
        n += 1
        s = max(0, s - down if rng.random() < p_good else s + up)
    return n


@pytest.mark.parametrize(("p", "up", "down", "h"), [
    (0.8, 2, 1, 6), (0.5, 2, 1, 9), (0.88, 2, 1, 5), (0.85, 9, 4, 20), (0.62, 2, 1, 8),
])
def test_exact_arl_matches_a_monte_carlo_of_the_per_answer_cusum(
        p: float, up: int, down: int, h: int) -> None:
    rng = random.Random(f"{p}-{h}")
    runs = [_simulated_run_length(rng, p, up, down, h) for _ in range(4000)]
    mean = sum(runs) / len(runs)
    sd = math.sqrt(sum((r - mean) ** 2 for r in runs) / (len(runs) - 1))
    exact = arl(p, up, down, h)
    assert abs(mean - exact) < 4 * sd / math.sqrt(len(runs)), (mean, exact)


def _delayed_run_minutes(rng: random.Random, per_day: float, p_before: float, p1: float,
                         median: float, sigma: float, up: int, down: int, h: int,
                         horizon_min: float) -> float:
    """One collapse at t = 0, drawn from scratch: services as a Poisson stream from two
    days before the onset, each answered a lognormal delay later, good with the share of
    its service's side of the onset; the per-answer CUSUM over the answers that arrive
    after the onset, in arrival order, from 0. Minutes to the alert."""
    rate = per_day / 1440.0
    answers: list[tuple[float, bool]] = []
    t = -2 * 1440.0
    while True:
        t += rng.expovariate(rate)
        if t > horizon_min:
            break
        at = t + rng.lognormvariate(math.log(median), sigma)
        if 0.0 <= at <= horizon_min:
            answers.append((at, rng.random() < (p_before if t < 0 else p1)))
    answers.sort()
    s = 0
    for at, good in answers:
        s = max(0, s - down if good else s + up)
        if s >= h:
            return at
    raise AssertionError("no alert within the horizon: make it longer")


@pytest.mark.parametrize(("per_day", "p_before", "horizon_days"),
                         [(100, 0.8, 5.0), (100, 0.88, 5.0), (500, 0.8, 2.0)])
def test_time_to_alert_after_survey_delays_matches_a_monte_carlo(
        per_day: float, p_before: float, horizon_days: float) -> None:
    p0, p1, days, median, sigma = 0.8, 0.5, 30.0, 90.0, 1.1
    up, down = weights(p0, p1)
    h = threshold(p0, p1, days, per_day)
    rng = random.Random(f"delayed-{per_day}-{p_before}")
    runs = [_delayed_run_minutes(rng, per_day, p_before, p1, median, sigma, up, down, h,
                                 horizon_days * 1440) for _ in range(1200)]
    mean = sum(runs) / len(runs)
    sd = math.sqrt(sum((r - mean) ** 2 for r in runs) / (len(runs) - 1))
    exact = 60 * expected_hours_to_alert_after_surveys(p0, p1, days, per_day, median, sigma,
                                                       p_before)
    assert abs(mean - exact) < 4 * sd / math.sqrt(len(runs)), (mean, exact)
    # the delay costs time, never saves it
    assert exact > 60 * expected_hours_to_alert(p0, p1, days, per_day)


def test_time_to_alert_without_a_delay_is_the_exact_arl() -> None:
    for per_day in (10, 100, 1000):
        assert expected_hours_to_alert_after_surveys(0.8, 0.5, 30, per_day, 1e-6, 0.01) == \
            pytest.approx(expected_hours_to_alert(0.8, 0.5, 30, per_day), rel=1e-6)


def test_small_cases_by_hand() -> None:
    # H = 2 with (2, 1): the first bad answer alerts, so the ARL is geometric: 1/q.
    assert arl(0.8, 2, 1, 2) == pytest.approx(5.0)
    # H = 1 likewise; and a team that never answers badly never alerts.
    assert arl(0.5, 2, 1, 1) == pytest.approx(2.0)
    assert arl(1.0, 2, 1, 3) == math.inf


@pytest.mark.parametrize(("p0", "p1"), [(0.8, 0.5), (0.85, 0.5), (0.9, 0.5), (0.95, 0.6),
                                        (0.7, 0.5)])
def test_weights_are_the_log_likelihood_ratio_in_small_integers(p0: float, p1: float) -> None:
    up, down = weights(p0, p1)
    llr = math.log((1 - p1) / (1 - p0)) / math.log(p0 / p1)
    assert down <= 4
    assert abs(up / down - llr) / llr < 0.07, (up, down, llr)


@pytest.mark.parametrize("per_day", [5, 20, 100, 250, 1000, 5000])
@pytest.mark.parametrize("days", [7.0, 30.0])
def test_threshold_is_the_smallest_that_keeps_the_false_alarm_promise(
        per_day: float, days: float) -> None:
    up, down = weights(0.8, 0.5)
    h = threshold(0.8, 0.5, days, per_day)
    assert arl(0.8, up, down, h) >= days * per_day
    assert h == 1 or arl(0.8, up, down, h - 1) < days * per_day


def _events(answers: list[tuple[int, str, bool]], kind: SurveyKind = SurveyKind.CSAT
            ) -> list[TicketCreated | SurveyResponse]:
    """One ticket per answer (its own id, so answers spread over partitions); an
    answer is (minute, team, good), attributed as it arrives (team, agent and channel
    on the survey: none waits for its ticket's partition)."""
    out: list[TicketCreated | SurveyResponse] = []
    for i, (minute, team, good) in enumerate(answers):
        ts = T0 + minute * MIN + 1000 + i % 50
        tid = f"T-{i:06d}"
        out.append(TicketCreated(f"c{i}", ts - 500, tid, team, "email"))
        score = (5 if good else 2) if kind is SurveyKind.CSAT else (6 if good else 3)
        out.append(SurveyResponse(f"s{i}", ts, kind, score, ticket_id=tid, team=team,
                                  agent_id="a-1", channel="email"))
    return out


def _evidence(answers: list[tuple[int, str, bool]], partitions: int,
              cfg: CoreConfig) -> dict[str, float]:
    engines = [PartitionEngine(cfg, p) for p in range(partitions)]
    for e in sorted(_events(answers), key=lambda e: e.ts):
        assert e.ticket_id is not None
        engines[partition_for(e.ticket_id, partitions)].apply(role_of(e), e)
    end = T0 + (max(m for m, _, _ in answers) + 1) * MIN - 1
    ev = evaluate(engines, at_ms=end)
    return {dict(s.labels)["team"]: s.value for s in ev.gauges
            if s.name == "csat_collapse_evidence"}


def _random_answers(rng: random.Random, minutes: int, per_minute: float, p_good: dict[str, float],
                    crowded: bool) -> list[tuple[int, str, bool]]:
    out = []
    for minute in range(minutes):
        for team, p in p_good.items():
            if crowded:
                k = sum(rng.random() < per_minute / 3 for _ in range(3))
            else:
                k = int(rng.random() < per_minute)
            out += [(minute, team, rng.random() < p) for _ in range(k)]
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gauge_equals_the_per_answer_brute_force_when_minutes_hold_one_answer(
        seed: int) -> None:
    rng = random.Random(seed)
    cfg = CoreConfig()
    spec = cfg.evidence[0]
    assert spec.kpi == "csat"
    teams = {"steady": 0.9, "falling": 0.5, "edge": 0.75}
    answers = _random_answers(rng, 600, 0.3, teams, crowded=False)
    got = _evidence(answers, 4, cfg)
    for team in teams:
        seq = [good for _, t, good in answers if t == team]
        up, down = weights(spec.target, spec.collapse)
        h = threshold(spec.target, spec.collapse, spec.false_alarm_days, float(len(seq)))
        assert got[team] == _per_answer(seq, up, down, h) / h, team
    assert got["falling"] > 0  # the data reach the interesting range


@pytest.mark.parametrize("seed", [4, 5])
def test_gauge_lies_between_the_two_extreme_orderings_of_each_minute(seed: int) -> None:
    rng = random.Random(seed)
    cfg = CoreConfig()
    spec = cfg.evidence[0]
    teams = {"a": 0.8, "b": 0.6, "c": 0.95}
    answers = _random_answers(rng, 300, 1.2, teams, crowded=True)
    one = _evidence(answers, 1, cfg)
    four = _evidence(answers, 4, cfg)
    assert one == four  # the partitioning changes nothing
    up, down = weights(spec.target, spec.collapse)
    for team in teams:
        mine = [(m, g) for m, t, g in answers if t == team]
        h = threshold(spec.target, spec.collapse, spec.false_alarm_days, float(len(mine)))
        bad_first = [g for _, g in sorted(mine, key=lambda x: (x[0], x[1]))]
        good_first = [g for _, g in sorted(mine, key=lambda x: (x[0], not x[1]))]
        lo, hi = _per_answer(bad_first, up, down, h), _per_answer(good_first, up, down, h)
        assert lo / h <= one[team] <= hi / h, (team, lo, one[team] * h, hi)


def test_only_the_last_day_counts_and_team_overrides_apply() -> None:
    """Answers older than the 24 h horizon are forgotten; a team with its own target is
    tested against it (a 0.95 team at 0.8 is collapsing, the default 0.8 one is not)."""
    cfg = CoreConfig(evidence=(EvidenceSpec("csat", 0.8, 0.5, 30.0, {"vip": 0.95}),))
    rng = random.Random(9)
    old_bad = [(m, "std", False) for m in range(0, 60)]  # a bad hour, 25 h ago
    recent = [(m, t, rng.random() < 0.8) for m in range(1500, 2940, 3) for t in ("std", "vip")]
    got = _evidence(old_bad + recent, 2, cfg)
    seq = [g for m, t, g in recent if t == "std"]
    up, down = weights(0.8, 0.5)
    h = threshold(0.8, 0.5, 30.0, float(len(seq)))
    assert got["std"] == _per_answer(seq, up, down, h) / h
    vip = [g for m, t, g in recent if t == "vip"]
    up, down = weights(0.95, 0.5)
    h = threshold(0.95, 0.5, 30.0, float(len(vip)))
    assert got["vip"] == _per_answer(vip, up, down, h) / h


def test_cusum_batches() -> None:
    # one batch of 1 good and 1 bad from 0 with (2, 1): net +1
    assert cusum([(1, 1)], 2, 1, 5) == 1
    assert cusum([(0, 3)], 2, 1, 5) == 5  # capped
    assert cusum([(0, 3), (4, 0)], 2, 1, 5) == 1
    assert cusum([(9, 0), (0, 1)], 2, 1, 5) == 2  # no credit banked


VOLUMES = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
#: The simulator's survey delay (minutes after the solve: lognormal median, sigma).
SURVEY_DELAY = (90.0, 1.1)
#: The simulator's healthy teams' CSAT share.
HEALTHY = 0.88


def detection_table() -> str:
    """docs/alerts.md's table: per daily volume of answers, the threshold and the mean
    time from a fall (target -> collapse share) to the alert, for the CSAT defaults:
    with the answers turning bad at the onset (the test's own delay), and with answers
    that come a survey delay after the service they rate (what a page can do no better
    than); then the smallest volume whose mean time to page is <= 2 h."""
    s = DEFAULT_TARGETS.scores["csat"]
    assert s.collapse is not None
    p0, p1 = s.target, s.collapse
    days = DEFAULT_TARGETS.paging.false_alarm_days
    up, down = weights(p0, p1)
    med, sigma = SURVEY_DELAY
    rows = [
        f"| answered surveys a day | threshold (points) | answers to page at {p1 * 100:.0f} % "
        f"| mean time to page | false pages at {p0 * 100:.0f} % (target) "
        f"| at {HEALTHY * 100:.0f} % (the simulator's healthy teams) "
        f"| mean time to page, answers {med:.0f} min (median) after the solve, "
        f"from {p0 * 100:.0f} % | same, from {HEALTHY * 100:.0f} % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in VOLUMES:
        h = threshold(p0, p1, days, v)
        n1 = arl(p1, up, down, h)
        hours = expected_hours_to_alert(p0, p1, days, v)
        at_target = arl(p0, up, down, h) / v
        healthy = arl(HEALTHY, up, down, h) / v
        late = expected_hours_to_alert_after_surveys(p0, p1, days, v, med, sigma)
        late_healthy = expected_hours_to_alert_after_surveys(p0, p1, days, v, med, sigma,
                                                             HEALTHY)
        rows.append(f"| {v:,} | {h} | {n1:.1f} | {_h(hours)} | one per {at_target:,.0f} days "
                    f"| one per {healthy:,.0f} days | {_h(late)} | {_h(late_healthy)} |")
    rows.append("")
    rows.append(f"Mean time to page <= 2 h (answers turning bad at the onset) from "
                f"{two_hours_from(p0, p1, days):,} answered surveys a day.")
    return "\n".join(rows)


def two_hours_from(p0: float, p1: float, days: float) -> int:
    """The smallest daily volume (in steps of 10) from which every larger one up to 5,000
    has a mean time to page <= 2 h (the threshold's integer steps make the time jump)."""
    ok = [v for v in range(10, 5001, 10) if expected_hours_to_alert(p0, p1, days, v) <= 2.0]
    assert ok and ok[-1] == 5000
    first = 5000
    for v in reversed(ok):
        if v != first - 10 and v != first:
            break
        first = v
    return first


def _h(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 2 else f"{hours:.1f} h"


def test_docs_table_is_computed() -> None:
    text = (ROOT / "docs/alerts.md").read_text()
    table = detection_table()
    assert table in text, "docs/alerts.md: paste this table under 'Collapse evidence':\n" + table


@pytest.mark.parametrize("seed", [6, 7])
def test_every_hourly_evaluation_of_a_stream_equals_the_brute_force_of_its_last_day(
        seed: int) -> None:
    """The evaluation keeps the rows of sealed slices between evaluations (incremental);
    each of 48 hourly evaluations over two days, while the stream moves on and the
    horizon slides, equals the per-answer CUSUM of that instant's last 24 h of answers."""
    rng = random.Random(seed)
    cfg = CoreConfig()
    spec = cfg.evidence[0]
    teams = {"steady": 0.9, "edge": 0.75}
    first = _random_answers(rng, 1440, 0.3, {**teams, "falling": 0.85}, crowded=False)
    second = [(m + 1440, t, g) for m, t, g in
              _random_answers(rng, 1440, 0.3, {**teams, "falling": 0.5}, crowded=False)]
    answers = first + second
    engines = [PartitionEngine(cfg, p) for p in range(4)]
    events = sorted(_events(answers), key=lambda e: e.ts)
    stamp = [T0 + m * MIN + 1000 + i % 50 for i, (m, _, _) in enumerate(answers)]  # `_events`
    up, down = weights(spec.target, spec.collapse)
    i, checked, rising = 0, 0, 0
    for minute in range(59, 2880, 60):
        # halfway through the minute's answers (its slice changes after this evaluation:
        # only sealed slices may be kept), then at its end
        for cut in (T0 + minute * MIN + 1025, T0 + (minute + 1) * MIN):
            while i < len(events) and events[i].ts < cut:
                e = events[i]
                assert e.ticket_id is not None
                engines[partition_for(e.ticket_id, 4)].apply(role_of(e), e)
                i += 1
            ev = evaluate(engines, at_ms=cut - 1)
            got = {dict(s.labels)["team"]: s.value for s in ev.gauges
                   if s.name == "csat_collapse_evidence"}
            for team in ("steady", "edge", "falling"):
                seq = [g for (m, t, g), ts in zip(answers, stamp, strict=True)
                       if t == team and minute - 1440 < m <= minute and ts < cut]
                if not seq:
                    assert team not in got
                    continue
                h = threshold(spec.target, spec.collapse, spec.false_alarm_days,
                              float(len(seq)))
                assert got[team] == _per_answer(seq, up, down, h) / h, (minute, team)
                checked += 1
            rising += got.get("falling", 0.0) > 0.5
    assert checked > 100 and rising > 0  # the data reach the interesting range


def test_the_kept_rows_of_sealed_slices_change_nothing_on_replicas_of_a_simulated_day() -> None:
    """CSAT, CES and FCR evidence from replicas fed with drained state as a worker
    commits: every evaluation with the kept rows equals one computed afresh."""
    from cxpulse.core.decode import Rejection, decode
    from cxpulse.core.evaluation import evidence
    from cxpulse.core.replica import PartitionReplica
    from cxpulse.sim.dirt import generate
    from cxpulse.sim.model import SimConfig

    cfg = CoreConfig()
    assert {s.kpi for s in cfg.evidence} >= {"csat", "fcr"}
    sim = SimConfig(seed=5, duration_ms=30 * 60 * MIN, tickets_per_day=3000, duplicates=0.03,
                    disorder_s=120)
    engines = [PartitionEngine(cfg, p) for p in range(2)]
    replicas = [PartitionReplica(cfg, p) for p in range(2)]
    compared = 0
    for n, rec in enumerate(generate(sim)):
        e = decode(rec.value)
        if isinstance(e, Rejection):
            continue
        engines[partition_for(e.ticket_id or e.event_id, 2)].apply(role_of(e), e)
        if n % 1999 == 0:
            for eng, rep in zip(engines, replicas, strict=True):
                for name, raw in eng.drain_dirty().items():
                    rep.apply(name, raw)
            kept = [s for s in evaluate(replicas).gauges if s.name.endswith("_evidence")]
            evidence._SEALED_ROWS.clear()
            fresh = [s for s in evaluate(replicas).gauges if s.name.endswith("_evidence")]
            assert kept == fresh
            compared += len(kept)
    assert compared > 100
