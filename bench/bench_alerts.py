"""Pages and tickets of the generated alert rules on simulated days (the full run).

The test suite replays a few days (tests/integration/test_alert_days.py); this
script runs the acceptance set that is too long for CI: 7 normal days for each
of 3 seeds, and every named scenario, and prints per scenario the pages per
day, the alerts that fired, and for the scenarios with a known onset the
detection time (first page after onset) and reset time (page resolved after
recovery). Results go to docs/alerts.md.

Run it: `.venv/bin/python bench/bench_alerts.py [--days 7] [--seeds 1 2 3]
[--scenarios normal incident ...] [--tickets-per-day 200 2000 10000]` (about 40 s
per simulated day at 2,000 tickets a day).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cxpulse.mixin.command import load_targets  # noqa: E402
from cxpulse.sim import params as p  # noqa: E402

from tests.support.alert_days import DayAlerts, replay  # noqa: E402

#: scenario -> (team, onset, recovery) in seconds from the UTC midnight of the first day
KNOWN_ONSET = {
    "incident": (p.INCIDENT.team, p.INCIDENT.start_after / 1000,
                 (p.INCIDENT.start_after + p.INCIDENT.length) / 1000),
}
for _name in ("surge", "surge-overload"):
    _s = p.SCENARIO_TABLE[_name].surges[0]
    KNOWN_ONSET[_name] = (_s.team, _s.start_after / 1000, (_s.start_after + _s.length) / 1000)


def describe(scenario: str, seed: int, days: list[DayAlerts], start_hour: int = 0) -> str:
    lines = [f"{scenario} seed {seed}:"]
    for d in days:
        pages = {t: int(v.get("episodes", 0)) for t, v in d.pages.items()}
        tickets = sorted(f"{a}/{t}" for a, t in d.fired("ticket"))
        lines.append(f"  day {d.day}: pages {pages or 0}  tickets {tickets or '-'}")
        for (alert, team, sev), v in sorted(d.per_alert.items()):
            if sev == "none":
                continue
            lines.append(
                f"    {alert} {team} {sev}: {int(v.get('episodes', 0))} episode(s), "
                f"first {v['first'] / 60:.1f} min, last {v['last'] / 60:.1f} min"
            )
    if scenario in KNOWN_ONSET:
        team, onset, recovery = KNOWN_ONSET[scenario]
        onset -= start_hour * 3600
        recovery -= start_hour * 3600
        page = days[0].pages.get(team)
        if page:
            lines.append(
                f"  {team}: detection {(page['first'] - onset) / 60:.1f} min after onset, "
                f"page open until {(page['last'] - recovery) / 60:+.1f} min after recovery"
            )
        else:
            lines.append(f"  {team}: no page")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--scenarios", nargs="+", default=list(p.SCENARIOS))
    parser.add_argument("--replicas", type=int, default=2, help="exporter replicas (1 or 2)")
    parser.add_argument("--tickets-per-day", type=float, nargs="+", default=[None],
                        help="organisation volumes (team sizes scale with it; default the "
                             "simulator's 2,000 a day)")
    args = parser.parse_args()
    targets = load_targets(ROOT / "targets.yaml")
    for scenario in args.scenarios:
        n_days = args.days if scenario in ("normal", "chronic") else 1
        for volume in args.tickets_per_day:
            for seed in args.seeds:
                t0 = time.monotonic()
                _, days = replay(targets, scenario, seed, hours=24 * n_days,
                                 replicas=args.replicas, tickets_per_day=volume)
                if volume is not None:
                    print(f"[{volume:g} tickets a day]")
                print(describe(scenario, seed, days))
                print(f"  ({n_days} day(s) in {time.monotonic() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
