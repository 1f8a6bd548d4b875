"""False collapse alerts on healthy simulated days (issue 20, docs/alerts.md).

For the simulator's `normal` scenario (healthy teams: CSAT about 0.88, FCR and CES
above target) at several volumes and seeds, it replays `--days` days and runs, per
team and share KPI, the per-answer CUSUM of `cxpulse.core.evidence` over the answers
in event-time order with the threshold for the team's answers per day (as the
exporter does over 1-minute slices; the per-answer form is the one the ARL speaks
of). It prints, per volume, the answers per team and day and the alerts counted
(an alert = the statistic reaching H; it is then reset to 0, as the rule's hold
releases only at 0). No rules and no promtool: this is the statistic's own false
alarm count, cheap enough for weeks of simulated days.

Run: `.venv/bin/python bench/bench_collapse.py [--days 7] [--seeds 1 2 3]
[--volumes 2000 6000 20000]`.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from cxpulse.core.events import SurveyResponse
from cxpulse.core.evidence import threshold, weights
from cxpulse.core.kpis import GOOD_SCORES, SATISFIED_OTHER
from cxpulse.core.targets import DEFAULT_TARGETS
from cxpulse.sim.model import SimConfig, Simulation
from cxpulse.sim.params import DAY


def _good(e: SurveyResponse) -> bool:
    if e.scale is not None and e.scale in SATISFIED_OTHER:
        return e.score in SATISFIED_OTHER[e.scale]
    return e.score in GOOD_SCORES[e.survey]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--volumes", type=float, nargs="+", default=[2000, 6000, 20000])
    args = parser.parse_args()
    specs = {s.kpi: s for s in DEFAULT_TARGETS.evidence() if s.kpi in ("csat", "ces")}
    print("| organisation tickets a day | seed | team | CSAT answers a day | H | "
          "CSAT share | false CSAT pages | false CES tickets |")
    print("|---|---|---|---|---|---|---|---|")
    for volume in args.volumes:
        for seed in args.seeds:
            cfg = SimConfig(seed=seed, duration_ms=args.days * DAY, tickets_per_day=volume)
            seqs: dict[tuple[str, str], list[bool]] = defaultdict(list)
            for e in Simulation(cfg).events():
                if isinstance(e, SurveyResponse) and e.team and e.survey.value in specs:
                    seqs[(e.survey.value, e.team)].append(_good(e))
            for team in sorted({t for _, t in seqs}):
                row = []
                for kpi in ("csat", "ces"):
                    seq, spec = seqs.get((kpi, team), []), specs[kpi]
                    per_day = len(seq) / args.days
                    up, down = weights(spec.target, spec.collapse)
                    h = threshold(spec.target, spec.collapse, spec.false_alarm_days, per_day)
                    s, alerts = 0, 0
                    for good in seq:
                        s = max(0, s - down if good else s + up)
                        if s >= h:
                            alerts, s = alerts + 1, 0
                    row.append((per_day, h, sum(seq) / max(1, len(seq)), alerts))
                (n, h, share, csat_alerts), (_, _, _, ces_alerts) = row
                print(f"| {volume:,.0f} | {seed} | {team} | {n:.0f} | {h} | {share:.3f} | "
                      f"{csat_alerts} in {args.days} days | {ces_alerts} in {args.days} days |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
