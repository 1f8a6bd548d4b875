"""`make paging`: every incident class of issue 20 at every team size, on several seeds.

The long form of tests/integration/test_paging_eval.py (too long for CI: the
5,000-tickets-a-day team alone takes minutes per case). For each case of
`tests.support.paging_eval.cases` (stall by day and by night, response times
doubling every hour, an absorbed surge, one slow ticket; tech at ~20, 200, 720
and 5,000 tickets a day) and each seed it prints the outcome, then a Markdown
table over the seeds for docs/alerts.md; the exit status is 1 when any case
misses the acceptance (`Outcome.problems`).

Run it: `make paging` or `.venv/bin/python bench/bench_paging.py [--seeds 1 2 3]
[--sizes 20 200 720 5000] [--only stall]`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cxpulse.mixin.command import load_targets  # noqa: E402

from tests.support import paging_eval as pe  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--sizes", type=float, nargs="+", default=[20, 200, 720, 5000])
    parser.add_argument("--only", nargs="*", default=[], help="case name substrings")
    parser.add_argument("--csat", action="store_true",
                        help="also the CSAT collapse (to 0.5 from 08:00): when its ticket fires")
    args = parser.parse_args()
    targets = load_targets(ROOT / "targets.yaml")
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


if __name__ == "__main__":
    sys.exit(main())
