"""Per-ticket cost under hostile order: one ticket's N events, newest first.

Issue #10 measured one ticket with 4,000 events arriving in reverse order
(all within the lateness) at 5.9 s of CPU, 684 events/s: every event sorted
before the ticket's last one re-derived the whole ticket. The engine now
defers that re-derivation to the end of the batch (`PartitionEngine.begin_batch`),
as the worker does around each batch, so the cost per event must not grow with N.

For N = 1,000 / 2,000 / 4,000 / 8,000 (`max_events_per_ticket` raised to N),
measured in one run, pinned to one core, best of 3:

* in order, batched (the worker's path for a normal ticket);
* reverse order, in batches of 500 messages and of 20,000 (the worker's
  `batch_size`: a flood of one ticket's events fills its batches); each
  batch re-derives the ticket once, so with b events of the ticket per batch
  the cost is O(N + N^2 / b): linear while b grows with N, as in a flood;
* reverse order, one event at a time without batching (the cost before
  deferral; up to 4,000 only, it is quadratic).

Events: a creation, then public messages alternating customer / agent (three
agents), 30 ms apart, so 8,000 events span 4 minutes: all within the 5-minute
lateness, none late. The agents are known to the partition already (another
ticket used them), as in a running worker; `ratio` is reverse / in-order
events/s.

Run it: `.venv/bin/python bench/bench_hostile.py`.
"""

from __future__ import annotations

import os
import platform
import time

from cxpulse.core.config import CoreConfig
from cxpulse.core.engine import PartitionEngine, evaluate
from cxpulse.core.events import Author, Event, TicketCreated, TicketMessage, role_of

T0 = 1_795_338_000_000
SIZES = (1000, 2000, 4000, 8000)
BATCH = 500
BIG_BATCH = 20_000
UNBATCHED_UP_TO = 4000


def ticket(tid: str, n: int, t0: int) -> list[Event]:
    events: list[Event] = [TicketCreated(f"{tid}-c", t0, tid, "tech", "email")]
    for i in range(1, n):
        agent = i % 2 == 1
        events.append(
            TicketMessage(
                f"{tid}-{i}", t0 + 30 * i, tid, Author.AGENT if agent else Author.CUSTOMER,
                f"a-{i % 3}" if agent else None, True,
            )
        )  # fmt: skip
    return events


def run(events: list[Event], n: int, batch: int | None) -> tuple[float, object]:
    """CPU seconds to apply `events` (after a warm-up ticket that admits the agents)."""
    eng = PartitionEngine(CoreConfig(max_events_per_ticket=max(n, 1000)), 0)
    for e in ticket("warm", 7, T0 - 1000):
        eng.apply(role_of(e), e)
    t0 = time.process_time()
    if batch is None:
        for e in events:
            eng.apply(role_of(e), e)
    else:
        for i in range(0, len(events), batch):
            eng.begin_batch()
            for e in events[i : i + batch]:
                eng.apply(role_of(e), e)
            eng.end_batch()
    elapsed = time.process_time() - t0
    return elapsed, evaluate([eng])


def best(events: list[Event], n: int, batch: int | None, passes: int) -> tuple[float, object]:
    runs = [run(events, n, batch) for _ in range(passes)]
    return min(r[0] for r in runs), runs[0][1]


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="ticket sizes N")
    sizes = [int(x) for x in ap.parse_args().sizes.split(",")]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"python {platform.python_version()} on {platform.machine()}; events/s "
          "(ratio: reverse / in order)")  # fmt: skip
    print(f"{'N':>6} | {'in order, b=500':>16} | {'reverse, b=500':>22} | "
          f"{'reverse, b=20,000':>22} | {'reverse, one at a time':>28}")  # fmt: skip
    for n in sizes:
        events = ticket("T", n, T0)
        t_in, ev_in = best(events, n, BATCH, 3)
        t_rev, ev_rev = best(events[::-1], n, BATCH, 3)
        t_big, ev_big = best(events[::-1], n, BIG_BATCH, 3)
        assert ev_in == ev_rev == ev_big  # same KPIs whatever the order
        unbatched = "-"
        if n <= UNBATCHED_UP_TO:
            t_old, ev_old = best(events[::-1], n, None, 1)
            assert ev_old == ev_rev
            unbatched = f"{n / t_old:,.0f} ({t_in / t_old:.3f}; {t_old:.2f} s)"
        print(f"{n:>6} | {n / t_in:>16,.0f} | {n / t_rev:>13,.0f} ({t_in / t_rev:.2f}) | "
              f"{n / t_big:>13,.0f} ({t_in / t_big:.2f}) | {unbatched:>28}")  # fmt: skip


if __name__ == "__main__":
    main()
