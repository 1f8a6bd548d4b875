"""The demo's simulator part (`python -m cxpulse.demo.simulator --produce BOOTSTRAP ...`):
produces the simulated operation when each event's time comes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time

from cxpulse.core.events import SURVEYS, TICKETS
from cxpulse.demo.incidents import IncidentPlan
from cxpulse.demo.parts import TOPICS
from cxpulse.importer.replay import plan
from cxpulse.kafka.produce import produce
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig


def produce_live(bootstrap: str, speed: float, scenario: str, seed: int,
                 tickets_per_day: float, duration_ms: int, start_ms: int | None = None,
                 incident: IncidentPlan | None = None, live_ms: int | None = None,
                 via_zendesk: str | None = None) -> int:
    """Simulate and produce each event when its time comes (at `speed`x).

    At speed 1 the simulation starts now. Faster, it starts in the past so that
    its clock reaches the wall clock when it ends: events are never stamped
    ahead of the time they are sent (workers dead-letter events more than
    `max_event_ahead` after their Kafka timestamp, `cxpulse.core.timeguard`).
    The demo passes `start_ms` (computed so, a moment before this starts)
    so that it can announce the incidents at the right time. Events before
    `live_ms` (the demo's backfilled history at speed 1) are produced at once.
    `via_zendesk` (a `cxpulse ingest` webhook URL): each event is posted there as the
    Zendesk webhook that would carry it (`cxpulse.demo.zendesk`) instead."""
    if start_ms is None:
        start_ms = int(time.time() * 1000) - int(duration_ms * (1 - 1 / speed))
    slowdowns = () if incident is None else incident.slowdowns(start_ms, duration_ms)
    cfg = SimConfig(seed=seed, start_ms=start_ms, duration_ms=duration_ms,
                    tickets_per_day=tickets_per_day, scenario=scenario, slowdowns=slowdowns)
    topics = {TICKETS: TOPICS[0], SURVEYS: TOPICS[1]}
    outgoing = plan((r.value for r in generate(cfg)), topics, speed, origin_ms=live_ms)
    if via_zendesk is not None:
        from cxpulse.demo.zendesk import post_live

        print(post_live(via_zendesk, outgoing), flush=True)
        return 0
    n = asyncio.run(produce(bootstrap, outgoing))
    print(f"simulator: {n} messages produced", flush=True)
    return 0


def main(argv: list[str]) -> int:
    """`python -m cxpulse.demo.simulator --produce BOOTSTRAP ...`: the part's entry point."""
    p = argparse.ArgumentParser(prog="cxpulse demo (simulator)")
    p.add_argument("--produce", required=True, metavar="BOOTSTRAP")
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--scenario", default="normal")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tickets-per-day", type=float, default=2000.0)
    p.add_argument("--duration-ms", type=int, default=7 * 86_400_000)
    p.add_argument("--start-ms", type=int, default=None)
    p.add_argument("--live-ms", type=int, default=None,
                   help="events before this instant are produced at once (backfill)")
    p.add_argument("--incident", default=None, help="an IncidentPlan as JSON")
    p.add_argument("--via-zendesk", default=None, metavar="URL",
                   help="post Zendesk webhooks to this `cxpulse ingest` URL (the signing "
                   "secret in CXPULSE_ZENDESK_WEBHOOK_SECRET)")
    a = p.parse_args(argv)
    incident = IncidentPlan(**json.loads(a.incident)) if a.incident else None
    with contextlib.suppress(KeyboardInterrupt):
        return produce_live(a.produce, a.speed, a.scenario, a.seed, a.tickets_per_day,
                            a.duration_ms,
                            a.start_ms, incident, a.live_ms, a.via_zendesk)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
