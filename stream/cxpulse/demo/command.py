"""`cxpulse demo`: flags, the checks before anything starts, and `--stop`."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from cxpulse import cliargs
from cxpulse.demo.incidents import INCIDENT_HOUR, incident_plan
from cxpulse.demo.supervisor import EXIT_USAGE, Demo, stop_demo
from cxpulse.sim import params
from cxpulse.wall.server import load_targets_or_exit


def run(args: argparse.Namespace) -> int:
    root = Path.cwd()
    directory = Path(args.dir).resolve() if args.dir else root / "var" / "demo"
    if args.stop:
        return stop_demo(directory)
    if not (root / args.targets).is_file() or not (root / "alerts" / "alertmanager.yml").is_file():
        print("cxpulse demo: run it from the cxpulse clone (targets.yaml and alerts/ not found "
              f"in {root})", file=sys.stderr)
        return EXIT_USAGE
    if args.scenario not in params.SCENARIOS:
        print(f"cxpulse demo: --scenario: choose from {', '.join(params.SCENARIOS)}",
              file=sys.stderr)
        return EXIT_USAGE
    plan = incident_plan(args)
    if isinstance(plan, str):
        print(f"cxpulse demo: {plan}", file=sys.stderr)
        return EXIT_USAGE
    args.incident = plan
    targets = load_targets_or_exit(str(root / args.targets), "cxpulse demo")
    if targets is None:
        return EXIT_USAGE
    from cxpulse.mixin.command import stale_outputs, write_outputs

    stale = stale_outputs(targets, root)
    if stale:  # the demo's rules must judge what targets.yaml says now; a worker would refuse
        write_outputs(targets, root, stale)
        print(f"cxpulse demo: {args.targets} changed since the last generate: regenerated "
              f"{', '.join(stale)} (as `make generate` does)", flush=True)
    missing = [b for b in ("java", "prometheus", "prometheus-alertmanager") if not shutil.which(b)]
    if missing:
        print(f"cxpulse demo: missing {', '.join(missing)} (scripts/prerequisites "
              "installs them; make demo runs it)",
              file=sys.stderr)
        return EXIT_USAGE
    return Demo(args, root, directory).run()


def register(sub: cliargs.Subcommands) -> None:
    p = sub.add_parser(
        "demo", help="run the whole system live: Kafka, workers, Prometheus, Alertmanager, "
        "simulator and the wall",
        description="Start every part on free loopback ports and print where each is. If a "
        "part dies the demo names it with its error and stops the rest; Ctrl-C stops "
        "everything. A healthy operation with an incident on one team every so often "
        "(--incident-*: simulated time from the simulation's start; each pages the team's "
        "on-call through the built-in receiver, at --speed 60 about 3-4 minutes after it "
        f"starts; faster than real time the first one falls at {INCIDENT_HOUR}:00 UTC of the "
        "simulated day, when a team has tickets enough to page). State, logs and a lock "
        "live under --dir: one demo per directory, two "
        "clones run theirs side by side. Exit codes: 0 stopped by Ctrl-C/SIGTERM (or --stop "
        "done), 1 a part died, 2 usage or a demo already runs in --dir.",
        epilog="examples: cxpulse demo   |   cxpulse demo --speed 60 --workers 2 "
        "--dir /tmp/demo   |   cxpulse demo --speed 60 --incident-team billing "
        "--incident-after 30m   |   cxpulse demo --vendor zendesk   |   cxpulse demo --stop",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dir", default=None, metavar="DIR",
                   help="state and logs (default: var/demo in the clone)")
    p.add_argument("--stop", action="store_true",
                   help="stop the demo running in --dir (and any part a killed demo left)")
    p.add_argument("--workers", type=int, default=1, choices=range(1, 5), metavar="N",
                   help="worker processes (1-4)")
    p.add_argument("--speed", type=cliargs.positive, default=1.0, metavar="N",
                   help="simulated seconds per real second (60: an hour a minute)")
    p.add_argument("--scenario", default="normal",
                   help="simulator scenario under the incidents (normal, incident, ...: "
                   "`cxpulse simulate -h`)")
    p.add_argument("--incident-team", default="tech", metavar="TEAM",
                   help="the team that stalls (replies 30x slower) in each incident; "
                   "none: no incidents")
    p.add_argument("--incident-after", type=cliargs.duration_ms, default="10m",
                   metavar="DURATION", help="simulated time from the simulation's start (at "
                   "speed 1: from now, after the backfilled day) to the first incident")
    p.add_argument("--incident-length", type=cliargs.duration_ms, default="3h", metavar="DURATION",
                   help="simulated length of each incident")
    p.add_argument("--incident-every", type=cliargs.duration_ms_or_zero, default="12h",
                   metavar="DURATION", help="simulated time between incident starts (0: a "
                   "single incident)")
    p.add_argument("--seed", type=int, default=1, help="simulator seed")
    p.add_argument("--tickets-per-day", type=cliargs.positive, default=2000.0,
                   help="weekday volume")
    p.add_argument("--duration", type=cliargs.duration_ms, default="7d", metavar="DURATION",
                   help="simulated time to produce (at --speed N it ends N times sooner; "
                   "faster than real time up to a day more, see above)")
    p.add_argument("--vendor", default=None, choices=("zendesk",),
                   help="drive the demo through the helpdesk gateway: the simulator's traffic "
                   "as this vendor's signed webhooks, posted to `cxpulse ingest`, mapped by "
                   "`cxpulse map` (default: the simulator produces contract events directly)")
    p.add_argument("--wall-port", type=int, default=0, help="wall port (0: a free one)")
    p.add_argument("--targets", default="targets.yaml", help="targets file in the clone")
    p.set_defaults(func=run)


