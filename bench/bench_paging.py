"""`make paging`: every incident class of issue 20 at every team size, on several seeds.

The long form of tests/integration/test_paging_eval.py (too long for CI: the
5,000-tickets-a-day team alone takes minutes per case). For each case of
`tests.support.paging_eval.cases` (stall by day and by night, response times
doubling every hour, an absorbed surge, one slow ticket; tech at ~20, 200, 720
and 5,000 tickets a day) and each seed it prints the outcome, then a Markdown
table over the seeds for docs/alerts.md; the exit status is 1 when any case
misses the acceptance (`Outcome.problems`).

Run it: `make paging` or `.venv/bin/python bench/bench_paging.py [--seeds 1 2 3]
[--sizes 20 200 720 5000] [--only stall] [--queue] [--night-screen N]`. With `--queue`
it replays the cases without the rules and prints what the queue showed
(`paging_eval.queue_evidence`): the measurement behind "no degradation forecast" in
docs/alerts.md. With `--night-screen N` it screens the stall page's quiet-shift
candidates on seeds 1..N from the events (`paging_eval.night_screen`): the
measurement behind the quiet band.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cxpulse.core.targets import Targets  # noqa: E402
from cxpulse.mixin.command import load_targets  # noqa: E402

from tests.support import paging_eval as pe  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--sizes", type=float, nargs="+", default=[20, 200, 720, 5000])
    parser.add_argument("--only", nargs="*", default=[], help="case name substrings")
    parser.add_argument("--csat", action="store_true",
                        help="also the CSAT collapse (to 0.5 from 08:00): when it pages")
    parser.add_argument("--queue", action="store_true",
                        help="no rules: when the queue's at-risk band showed each case")
    parser.add_argument("--night-screen", type=int, metavar="N", default=0,
                        help="no rules: the stall page's quiet-shift candidates on seeds 1..N "
                             "(night stalls vs healthy runs, from the events)")
    args = parser.parse_args()
    targets = load_targets(ROOT / "targets.yaml")
    if args.night_screen:
        return night_screen(targets, args.sizes, args.night_screen)
    if args.queue:
        return queue(targets, args.sizes, args.seeds, args.only)
    rows = []
    failed = 0
    extra = pe.csat_cases(tuple(s for s in args.sizes if s >= 200)) if args.csat else []
    for case in pe.cases(tuple(args.sizes)) + extra:
        if args.only and not any(s in case.name for s in args.only):
            continue
        outcomes = []
        for seed in args.seeds:
            t0 = time.monotonic()
            o = pe.run_case(case, seed, targets)
            outcomes.append(o)
            failed += bool(o.problems())
            print(pe.describe(o), f"[{time.monotonic() - t0:.0f} s]", flush=True)
        rows.append(pe.summary_row(outcomes))
    print("\n| case | seeds | page after onset (min) | after 1st breach | after 2nd breach "
          "| episodes | open after recovery | other teams' pages | ok |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['seeds']} | {r['onset']} | {r['breach']} | {r['second']} | "
              f"{r['episodes']} | {r['recovery']} | {r['others']} | "
              f"{'yes' if r['ok'] else '**no**'} |")
    return 1 if failed else 0


def queue(targets: Targets, sizes: list[float], seeds: list[int], only: list[str]) -> int:
    """The queue-forecast table: minutes from onset to the first breach, to sustained
    breaching and to the band signal, and the band share's largest value."""
    print("| case | seed | 1st breach | breaching (3 in 10 min) | band signal "
          "| largest band share |")
    print("|---|---|---|---|---|---|")

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:+.1f}"

    for case in pe.cases(tuple(sizes)):
        if only and not any(s in case.name for s in only):
            continue
        for seed in seeds:
            q = pe.queue_evidence(case, seed, targets)
            print(f"| {case.name} | {seed} | {f(q.first_breach)} | {f(q.breaching)} | "
                  f"{f(q.band_signal)} | {q.max_share:.2f} |", flush=True)
    return 0


def night_screen(targets: Targets, sizes: list[float], n_seeds: int) -> int:
    """Per team size and candidate clause: how many night stalls (seeds 1..n) it pages
    within 5 min of the first breach, the median minutes from it, and how many pages
    it raises over the same seeds on runs that must stay silent (a normal day with its
    night, one slow ticket by day and by night, an absorbed surge; every team counts)
    and on the other teams during the stalls."""
    print("| size | clause | night stalls paged <= +5 min | median from 1st breach "
          "| pages on silent runs (all teams) | other teams during stalls |")
    print("|---|---|---|---|---|---|")
    silent_names = ("normal day", "one slow ticket", "surge absorbed")
    for size in sizes:
        stall = next(c for c in pe.cases((size,)) if c.name.startswith("stall by night"))
        silent = [c for c in pe.cases((size,)) if c.name.startswith(silent_names)]
        firsts: dict[str, list[float | None]] = {}
        others: dict[str, int] = {}
        false: dict[str, int] = {}
        for seed in range(1, n_seeds + 1):
            for name, teams in pe.night_screen(stall, seed, targets).items():
                mine = [v for v in teams.get(pe.TEAM, []) if v > -60]
                firsts.setdefault(name, []).append(mine[0] if mine else None)
                others[name] = others.get(name, 0) + sum(
                    len(v) for t, v in teams.items() if t != pe.TEAM)
            for case in silent:
                for name, teams in pe.night_screen(case, seed, targets).items():
                    false[name] = false.get(name, 0) + sum(len(v) for v in teams.values())
        facts = [pe.night_facts(stall, seed, targets)[0] for seed in range(1, n_seeds + 1)]
        normal = next(c for c in silent if c.name.startswith("normal day"))
        slow = [pe.night_facts(normal, seed, targets)[1] for seed in range(1, n_seeds + 1)]
        lone = sum(1 for f in facts if f == 0)
        print(f"| {size:g}/day | (facts) | {lone}/{len(facts)} stalls with no other customer "
              f"waiting at first breach + 5 min | - | healthy nights: {sum(slow) / len(slow):.1f} "
              f"tickets a night wait > 20 min | - |", flush=True)
        for name, got in firsts.items():
            paged = sorted(v for v in got if v is not None)
            within = sum(v <= 5 for v in paged)
            median = f"{paged[len(paged) // 2]:+.1f}" if paged else "-"
            print(f"| {size:g}/day | {name} | {within}/{len(got)} | {median} | "
                  f"{false.get(name, 0)} in {n_seeds * len(silent)} runs | {others[name]} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
