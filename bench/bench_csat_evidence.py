"""Where a CSAT collapse's time to page goes: the core's evidence against the answers.

`bench/bench_paging.py --csat` times the page of `CxpulseCSATCollapse` through the
generated rules (minutes of a 20 h replay each). This replays the same cases
(`tests.support.paging_eval.csat_cases`: tech's CSAT falls to 0.5 for tickets served
from 08:00) through the KPI core alone, evaluating the collapse evidence every
minute as the exporter does, and prints per case: when the evidence reached 1 (the
rule fires on the first evaluation after that: compare with bench_paging's page),
the team's threshold then, and per half hour after the onset how many of the team's
CSAT answers came and how many were unsatisfied. The answers are what lags: a
survey is answered a delay after its ticket's solve (the simulator's
`SURVEY_DELAY`), so the first hours after the onset still rate tickets served
before it. docs/alerts.md ("Collapse evidence") puts this beside the computed
table, whose last columns model that delay.

Run it: `.venv/bin/python bench/bench_csat_evidence.py [--sizes 720 5000] [--seeds 1 2 3]`
(seconds per case: no rules, no promtool).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cxpulse.core.engine import PartitionEngine  # noqa: E402
from cxpulse.core.evaluation.caps import Caps  # noqa: E402
from cxpulse.core.evaluation.evidence import DAY_MS, collapse_samples  # noqa: E402
from cxpulse.core.events import (  # noqa: E402
    SurveyKind,
    SurveyResponse,
    TicketCreated,
    role_of,
)
from cxpulse.core.evidence import HORIZON_MS, threshold  # noqa: E402
from cxpulse.core.kpis import GOOD_SCORES  # noqa: E402
from cxpulse.mixin.command import load_targets  # noqa: E402
from cxpulse.sim.model import first_midnight  # noqa: E402
from cxpulse.sim.params import HOUR, MINUTE  # noqa: E402

from tests.support import paging_eval as pe  # noqa: E402
from tests.support.alert_days import core_config  # noqa: E402

BUCKET_MIN = 30
BUCKETS = 8


def one(size: float, seed: int) -> None:
    targets = load_targets(ROOT / "targets.yaml")
    (case,) = pe.csat_cases((size,))
    assert case.onset_h is not None
    cfg, stream = pe.events(case, seed)
    engine = PartitionEngine(core_config(targets), 0)
    (spec,) = [s for s in engine.config.evidence if s.kpi == "csat"]
    onset = first_midnight(cfg.start_ms) + int(case.onset_h * HOUR)
    team_of: dict[str, str] = {}
    answers: list[tuple[int, bool]] = []  # TEAM's CSAT answers: (ts, satisfied)
    reached: float | None = None
    h_then = 0
    pending = next(stream, None)
    for minute in range(cfg.duration_ms // MINUTE):
        boundary = cfg.start_ms + (minute + 1) * MINUTE
        while pending is not None and pending.ts < boundary:
            if isinstance(pending, TicketCreated):
                team_of[pending.ticket_id] = pending.team
            elif isinstance(pending, SurveyResponse) and pending.survey == SurveyKind.CSAT:
                team = pending.team or team_of.get(pending.ticket_id or "")
                if team == pe.TEAM:
                    answers.append((pending.ts, pending.score in GOOD_SCORES[SurveyKind.CSAT]))
            engine.apply(role_of(pending), pending)
            pending = next(stream, None)
        if boundary <= onset or reached is not None:
            continue
        for sample in collapse_samples([engine], engine.config, boundary - 1, Caps()):
            if sample.name == "csat_collapse_evidence" and sample.labels["team"] == pe.TEAM \
                    and sample.value >= 1:
                reached = (boundary - onset) / MINUTE
                day = [a for a in answers if boundary - HORIZON_MS <= a[0] < boundary]
                h_then = threshold(spec.target_for(pe.TEAM), spec.collapse,
                                   spec.false_alarm_days, len(day) * DAY_MS / HORIZON_MS)
        if reached is not None and boundary >= onset + BUCKETS * BUCKET_MIN * MINUTE:
            break
    before = [a for a in answers if a[0] < onset]
    print(f"{case.name} seed {seed}: evidence reached 1 at "
          + (f"+{reached:.0f} min (threshold {h_then} points)" if reached else "- (never)")
          + f"; {pe.TEAM}'s answers in the {(onset - cfg.start_ms) / HOUR:.0f} h before the "
          f"onset: {len(before)}")
    for k in range(BUCKETS):
        lo, hi = onset + k * BUCKET_MIN * MINUTE, onset + (k + 1) * BUCKET_MIN * MINUTE
        got = [good for ts, good in answers if lo <= ts < hi]
        bad = got.count(False)
        print(f"  +{k * BUCKET_MIN:3d}-{(k + 1) * BUCKET_MIN:3d} min: {len(got):3d} answers, "
              f"{bad:3d} unsatisfied ({bad / max(len(got), 1):.2f})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[720, 5000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    for size in args.sizes:
        for seed in args.seeds:
            one(size, seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
