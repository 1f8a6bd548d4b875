"""Memory per open ticket: the RSS slope between two open-ticket counts.

Why a slope: a process's RSS holds the interpreter, the imports and the
slice aggregates whatever the number of tickets; what decides how many open
tickets one worker (or one exporter) can hold is what each more ticket costs.
Each count runs in a fresh process (RSS never shrinks back, so a process
measures one count only), and the figure is

    (RSS at the larger count - RSS at the smaller) / (difference in tickets)

for two holders of the per-ticket state:

* `core`: `cxpulse.core.engine.PartitionEngine` as the worker drives it:
  `begin_batch` / `apply` / `end_batch` per batch of 500 events, then
  `drain_dirty` (its values discarded: the worker's store is not the core).
* `replica`: `cxpulse.core.replica.PartitionReplica` as the exporter drives
  it: every changelog value an engine drained for the same tickets, applied
  in the order written (read from a file the parent wrote, one value a line),
  its slice stores read every `READ_EVERY` values as an evaluation would.

The tickets (`open_tickets`): N tickets created over a fixed 2 hours (the
slices, the labels, hence the per-process constants, do not grow with N),
each customer-created with created, assigned, a customer message, a public
agent reply and a status change to open or pending: 5 events, UUID event ids,
8 teams, 4 channels, 200 agents, and all still open at the end; then one
ticket created 30 hours later, so the stream time passes the longest window
(24 h) and every slice of those tickets is sealed and evicted. What is left
is what a ticket costs for as long as it is open (up to the retention, 7
days): slice aggregates are bounded by windows times label values, not by
open tickets, and with a fixed 2 hours they would still be filling up
between the two counts. Event time only moves forward, so this measures the
state of live tickets, not disorder.

`--breakdown` walks the objects of the larger count (`sys.getsizeof`, each
object counted once, at the first structure that reaches it, shared
strings included) and prints bytes per ticket per structure: where the
memory is. It is a walk, not RSS: allocator overhead is not in it.

Run it: `.venv/bin/python bench/bench_memory.py [--counts 20000,100000] [--breakdown]`
(`--smoke`: 200 and 1,000 tickets, seconds).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from random import Random
from typing import Any

from cxpulse.core.config import CoreConfig
from cxpulse.core.engine import PartitionEngine
from cxpulse.core.events import (
    TICKETS,
    Author,
    Priority,
    Status,
    StatusChanged,
    TicketAssigned,
    TicketCreated,
    TicketEvent,
    TicketMessage,
)
from cxpulse.core.replica import PartitionReplica
from cxpulse.core.tickets import TicketState

START_MS = 1_793_577_600_000  # 2026-11-02T00:00:00Z
SPAN_MS = 2 * 3_600_000
LATER_MS = 30 * 3_600_000
BATCH = 500
TEAMS = tuple(f"team-{i}" for i in range(8))
CHANNELS = ("email", "chat", "phone", "web")
AGENTS = tuple(f"a-agent-{i:03d}" for i in range(200))


def one_ticket(
    rng: Random, tid: str, t: int, status: Status | None = None
) -> Iterator[TicketEvent]:
    """One ticket's 5 events from `t`: created by a customer, assigned, a customer message,
    a public agent reply, a status change (to `status`, else open or pending at random);
    UUID event ids, team, agent, channel and priority drawn from `rng`."""

    def eid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    team = rng.choice(TEAMS)
    agent = rng.choice(AGENTS)
    customer = f"c-{rng.randrange(10**6):06d}"
    yield TicketCreated(eid(), t, tid, team, rng.choice(CHANNELS),
                        rng.choice(list(Priority)), customer)  # fmt: skip
    yield TicketAssigned(eid(), t + 1, tid, agent, team)
    yield TicketMessage(eid(), t + 2, tid, Author.CUSTOMER)
    yield TicketMessage(eid(), t + 3, tid, Author.AGENT, agent)
    yield StatusChanged(eid(), t + 4, tid, status or rng.choice((Status.OPEN, Status.PENDING)))


def open_tickets(n: int, seed: int = 1, span_ms: int = SPAN_MS) -> Iterator[TicketEvent]:
    """`n` open tickets' events in time order (see the module docstring)."""
    rng = Random(seed)
    step = span_ms // n
    for i in range(n):
        yield from one_ticket(rng, f"T-0001-{i:07d}", START_MS + i * step)
    # One more ticket, a day and more later: the stream time passes the longest
    # window, so every slice of the tickets above is sealed, folded and evicted.
    # What stays is what an open ticket costs as long as it stays open (retention:
    # 7 days); slices are bounded by windows x label values, not by open tickets.
    later_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    later = START_MS + span_ms - SPAN_MS + LATER_MS
    yield TicketCreated(later_id, later, "T-0001-later", TEAMS[0], CHANNELS[0])


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build_engine(n: int, values_out: Path | None = None, config: CoreConfig | None = None,
                 span_ms: int = SPAN_MS) -> PartitionEngine:  # fmt: skip
    """An engine holding `n` open tickets, driven as the worker drives it."""
    eng = PartitionEngine(config or CoreConfig(), 0)
    out = None if values_out is None else values_out.open("w")
    batch: list[TicketEvent] = []

    def flush() -> None:
        with eng.batch():
            for e in batch:
                eng.apply(TICKETS, e)
        batch.clear()
        drained = eng.drain_dirty()
        if out is not None:
            for k in sorted(drained):
                v = drained[k]
                out.write(json.dumps([k, None if v is None else v.decode()]) + "\n")

    for e in open_tickets(n, span_ms=span_ms):
        batch.append(e)
        if len(batch) == BATCH:
            flush()
    flush()
    if out is not None:
        out.close()
    return eng


#: values between two reads of the replica's slice stores: an exporter evaluates
#: about that often (it parses a slice value when an evaluation reads it, so a
#: replica nobody reads would never hold its slices)
READ_EVERY = 600


def build_replica(values: Path) -> PartitionReplica:
    rep = PartitionReplica(CoreConfig(), 0)
    with values.open() as f:
        for i, line in enumerate(f, start=1):
            k, v = json.loads(line)
            rep.apply(k, None if v is None else v.encode())
            if i % READ_EVERY == 0:
                rep.tickets_store, rep.agents_store, rep.surveys_store  # noqa: B018
    return rep


# ----------------------------------------------------------------- breakdown


def _size(obj: object, seen: set[int]) -> int:
    """Bytes of `obj` and everything it reaches that `seen` does not hold yet."""
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, type) or (callable(o) and not hasattr(o, "__slots__")):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list | tuple | set | frozenset):
            stack.extend(o)
        elif not isinstance(o, str | bytes | int | float | bool | type(None)):
            for cls in type(o).__mro__:
                for name in getattr(cls, "__slots__", ()):
                    if hasattr(o, name):
                        stack.append(getattr(o, name))
            d = getattr(o, "__dict__", None)
            if d is not None:
                stack.append(d)
    return total


_FIRST = ("events", "enc", "ids", "hashes", "late", "view", "contribs", "tail")


def breakdown_engine(eng: PartitionEngine) -> dict[str, int]:
    seen: set[int] = {id(eng.config), id(eng.guard), id(eng.ctx)}
    out: dict[str, int] = {}
    # labels first: the strings every ticket shares are then counted once, here
    out["labels (guard)"] = _size(eng.guard.seen, seen)
    shared = (eng.tickets_store, eng.agents_store, eng.surveys_store, eng._cum_tickets)
    out["slice stores + cumulative"] = sum(_size(x, seen) for x in shared)
    states = [s for s in eng._tickets.values() if isinstance(s, TicketState)]
    slots = [n for cls in TicketState.__mro__ for n in getattr(cls, "__slots__", ())]
    # what a ticket owns before what refers to it again (`derivation` is `view` or None)
    first = [n for n in _FIRST if n in slots]
    names = first + sorted(n for n in slots if n not in first)
    out["ticket ids (keys)"] = sum(_size(t, seen) for t in eng._tickets)
    out["packed tickets (bytes)"] = sum(
        _size(s, seen) for s in eng._tickets.values() if isinstance(s, bytes)
    )
    seen.update(id(s) for s in states)
    out["TicketState objects"] = sum(sys.getsizeof(s) for s in states)
    for name in names:
        out[f"TicketState.{name}"] = sum(_size(getattr(s, name), seen) for s in states)
    for name in ("_tickets", "_expiry_buckets", "_expiry_heap", "_idle_buckets",
                 "_idle_heap", "_deadlines", "_dirty", "_stale"):  # fmt: skip
        if hasattr(eng, name):  # an older checkout's engine may lack one (A/B runs)
            out[f"engine.{name}"] = _size(getattr(eng, name), seen)
    return out


def breakdown_replica(rep: PartitionReplica) -> dict[str, int]:
    seen: set[int] = {id(rep.config)}
    out: dict[str, int] = {}
    out["labels (guard)"] = _size(rep.guard, seen)
    shared = (rep.tickets_store, rep.agents_store, rep.surveys_store, rep._cum_tickets)
    out["slice stores + cumulative"] = sum(_size(x, seen) for x in shared)
    for name, value in vars(rep).items():
        if name.startswith("_") and name not in ("_params", "_cum_tickets"):
            out[f"replica.{name}"] = _size(value, seen)
    return out


# ------------------------------------------------------------------ processes


def child(kind: str, n: int, values: str | None, breakdown: bool,
          pack_idle_ms: int | None, span_ms: int) -> dict[str, Any]:  # fmt: skip
    """In a fresh process: RSS before and after `n` tickets of `kind`."""
    if kind == "core":
        gc.collect()
        before = rss_bytes()
        config = CoreConfig() if pack_idle_ms is None else CoreConfig(pack_idle_ms=pack_idle_ms)
        held: Any = build_engine(n, config=config, span_ms=span_ms)
    else:
        assert values is not None
        gc.collect()
        before = rss_bytes()
        held = build_replica(Path(values))
    gc.collect()
    after = rss_bytes()
    result: dict[str, Any] = {"rss_before": before, "rss_after": after}
    if breakdown:
        result["breakdown"] = (
            breakdown_engine(held) if kind == "core" else breakdown_replica(held)
        )
    return result


def run_child(kind: str, n: int, values: Path | None, breakdown: bool,
              pack_idle_ms: int | None, span_hours: float) -> dict[str, Any]:  # fmt: skip
    cmd = [sys.executable, __file__, "--child", kind, "--counts", str(n),
           "--span-hours", str(span_hours)]  # fmt: skip
    if pack_idle_ms is not None:
        cmd += ["--pack-idle-ms", str(pack_idle_ms)]
    if values is not None:
        cmd += ["--values", str(values)]
    if breakdown:
        cmd.append("--breakdown")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="20000,100000", help="two open-ticket counts")
    ap.add_argument("--breakdown", action="store_true",
                    help="bytes per ticket per structure at the larger count")  # fmt: skip
    ap.add_argument("--smoke", action="store_true", help="200 and 1,000 tickets")
    ap.add_argument("--child", choices=("core", "replica"), help=argparse.SUPPRESS)
    ap.add_argument("--values", help=argparse.SUPPRESS)
    ap.add_argument("--pack-idle-ms", type=int,
                    help="CoreConfig.pack_idle_ms of the core (default: its default)")  # fmt: skip
    ap.add_argument("--span-hours", type=float, default=SPAN_MS / 3_600_000,
                    help="hours over which the tickets are created (default 2)")  # fmt: skip
    args = ap.parse_args()
    span_ms = int(args.span_hours * 3_600_000)
    if args.child:
        print(json.dumps(child(args.child, int(args.counts), args.values, args.breakdown,
                               args.pack_idle_ms, span_ms)))  # fmt: skip
        return 0
    counts = (200, 1000) if args.smoke else tuple(int(x) for x in args.counts.split(","))
    lo, hi = sorted(counts)
    print(f"python {platform.python_version()} on {platform.machine()}, open tickets "
          f"{lo:,} and {hi:,} (5 events each) created over {args.span_hours:g} h, "
          f"one fresh process per count")  # fmt: skip
    rss: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (lo, hi):
            values = Path(tmp) / f"values-{n}.jsonl"
            # the changelog values of the same tickets, for the replica
            sub = subprocess.run([sys.executable, "-c", (
                "import sys; sys.path.insert(0, sys.argv[1]); "
                "from bench_memory import build_engine; from pathlib import Path; "
                "build_engine(int(sys.argv[2]), Path(sys.argv[3]), span_ms=int(sys.argv[4]))"
            ), str(Path(__file__).parent), str(n), str(values), str(span_ms)],
            check=True)  # fmt: skip
            assert sub.returncode == 0
            for kind in ("core", "replica"):
                rss[kind, n] = run_child(kind, n, values if kind == "replica" else None,
                                         args.breakdown and n == hi, args.pack_idle_ms,
                                         args.span_hours)  # fmt: skip
    print()
    print("| holder | RSS at lo (MB) | RSS at hi (MB) | bytes per open ticket | goal |")
    print("|---|---:|---:|---:|---:|")
    goals = {"core": 1024, "replica": 512}
    for kind in ("core", "replica"):
        a, b = rss[kind, lo]["rss_after"], rss[kind, hi]["rss_after"]
        slope = (b - a) / (hi - lo)
        print(f"| {kind} | {a / 1e6:.1f} | {b / 1e6:.1f} | {slope:,.0f} | {goals[kind]:,} |")
    if args.breakdown:
        for kind in ("core", "replica"):
            parts = rss[kind, hi]["breakdown"]
            print(f"\n| {kind}, {hi:,} tickets: structure | bytes per ticket |")
            print("|---|---:|")
            for name, size in sorted(parts.items(), key=lambda x: -x[1]):
                if size >= hi / 2:  # rounds to 1 byte per ticket or more
                    print(f"| `{name}` | {size / hi:,.0f} |")
            print(f"| total (a `sys.getsizeof` walk: no allocator overhead) | "
                  f"{sum(parts.values()) / hi:,.0f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
