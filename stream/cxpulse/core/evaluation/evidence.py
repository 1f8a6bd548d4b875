"""Collapse evidence per team (`cxpulse.core.evidence`) from the merged slices.

Why here and not in the engine: a team's answers are spread over partitions
(the ticket id decides the partition), so a statistic kept per partition would
depend on the number of workers. The evaluation merges every partition's
slices first, exactly as it does for the windows, then runs the CUSUM over the
team's slices of the last `HORIZON_MS` in time order, one step per slice (a
slice's answers have no defined order across partitions): the result is the
same live and in batch, with one worker or many.

Per-slice batching against the per-answer statistic: applying a slice's net
points at once gives a value between the per-answer CUSUM with each slice's
bad answers taken first and the one with its good answers first (both clamps
are monotone), and exactly the per-answer value when no slice holds both a
good and a bad answer. tests/unit/test_core_evidence.py checks both.
"""

from __future__ import annotations

from collections.abc import Sequence

from cxpulse.core.config import CoreConfig
from cxpulse.core.evaluation.caps import Caps
from cxpulse.core.evaluation.model import Sample
from cxpulse.core.evaluation.view import PartitionView
from cxpulse.core.events import SurveyKind
from cxpulse.core.evidence import HORIZON_MS, EvidenceSpec, cusum, threshold, weights
from cxpulse.core.kpis import good_and_answers
from cxpulse.core.slices import ONE_TOUCH, RESOLUTION

DAY_MS = 86_400_000

#: team -> slice start -> [good, bad]
TeamSlices = dict[str, dict[int, list[int]]]


def _answers(engines: Sequence[PartitionView], spec: EvidenceSpec, lo: int, end: int,
             caps: Caps) -> TeamSlices:
    per_team: TeamSlices = {}

    def add(team: str, start: int, good: int, n: int) -> None:
        if n <= 0:
            return
        row = per_team.setdefault(caps("team", team), {}).setdefault(start, [0, 0])
        row[0] += good
        row[1] += n - good

    if spec.kpi == "fcr":
        for eng in engines:
            for start, sl in eng.tickets_store.slices.items():
                if lo <= start < end:
                    for key, agg in sl.items():
                        d = agg.opt[RESOLUTION] if agg.opt is not None else None
                        if d is not None and d.n:
                            add(key[0], start, agg.counts[ONE_TOUCH], d.n)
        return per_team
    kind = SurveyKind(spec.kpi)
    for eng in engines:
        for start, ssl in eng.surveys_store.slices.items():
            if lo <= start < end:
                for key, sagg in ssl.items():
                    if key[0] == kind.value:
                        good, n = good_and_answers(kind, sagg.counts)
                        add(key[1], start, good, n)
    return per_team


def collapse_samples(engines: Sequence[PartitionView], cfg: CoreConfig, end: int,
                     caps: Caps) -> list[Sample]:
    """`<kpi>_collapse_evidence{team}`: the CUSUM over the team's last day of answers
    divided by the team's threshold (1: the evidence is sufficient; 0: none). A team
    without an answer in the horizon has no series."""
    horizon = min(HORIZON_MS, cfg.longest_window_ms)
    lo = end - horizon
    out: list[Sample] = []
    for spec in cfg.evidence:
        per_team = _answers(engines, spec, lo, end, caps)
        for team in sorted(per_team):
            slices = per_team[team]
            answers = sum(g + b for g, b in slices.values())
            p0 = spec.target_for(team)
            up, down = weights(p0, spec.collapse)
            h = threshold(p0, spec.collapse, spec.false_alarm_days, answers * DAY_MS / horizon)
            s = cusum(((slices[k][0], slices[k][1]) for k in sorted(slices)), up, down, h)
            out.append(Sample(f"{spec.kpi}_collapse_evidence", {"team": team}, s / h))
    return out
