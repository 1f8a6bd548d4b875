"""Decode+validate throughput on one core, against bare `json.loads` of the same bytes.

The baseline runs in the same process on the same messages, so the ratio
stays meaningful on a noisy shared machine where absolute figures drift.
Input: the busy day of issue 22 (`cxpulse simulate --seed 1 --duration 24h
--tickets-per-day 20000 --duplicates 0.03 --disorder 120 --malformed 0.01`:
realistic mix of event types, duplicates, disorder, 1 % malformed messages of
every kind), each pass timed separately in CPU time of this process (a pass
that waited for the core while other processes ran is not slower), best
pass reported. Besides `decode`, its checked path alone (`_decode_checked`:
the standard library's parser and the per-field checks, which was the whole
decoder before the msgspec fast path) on the same messages.

    .venv/bin/python bench/bench_decode.py [--passes 7] [--tickets-per-day 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable

from cxpulse.core.decode import Rejection, _decode_checked, decode
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig


def _pass(fn: Callable[[bytes], object], values: list[bytes]) -> float:
    started = time.process_time()
    for value in values:
        fn(value)
    return time.process_time() - started


def best_rates(
    contenders: dict[str, tuple[Callable[[bytes], object], list[bytes]]], passes: int
) -> dict[str, float]:
    """Messages/s of each contender, best of `passes`; passes interleave so noise hits all."""
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(passes):
        for name, (fn, values) in contenders.items():
            best[name] = min(best[name], _pass(fn, values))
    return {name: len(contenders[name][1]) / best[name] for name in contenders}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--tickets-per-day", type=float, default=20000.0)
    args = parser.parse_args()

    cfg = SimConfig(seed=1, tickets_per_day=args.tickets_per_day, malformed=0.01,
                    duplicates=0.03, disorder_s=120)  # fmt: skip
    mixed = [record.value for record in generate(cfg)]
    valid = [v for v in mixed if not isinstance(decode(v), Rejection)]
    kinds = Counter(
        r.code if isinstance(r := decode(v), Rejection) else type(r).__name__ for v in mixed
    )
    size = sum(map(len, valid)) / len(valid)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    rates = best_rates(
        {
            "json.loads (valid)": (json.loads, valid),
            "decode (valid)": (decode, valid),
            "decode (mix, 1% malformed)": (decode, mixed),
            "checked path only (valid)": (_decode_checked, valid),
        },
        args.passes,
    )
    cpu = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"machine: {cpu}, Python {platform.python_version()}")
    print(f"messages: {len(mixed)}, {len(valid)} valid (mean {size:.0f} bytes)")
    print(f"mix: {dict(kinds.most_common())}")
    for name, rate in rates.items():
        print(f"{name:28s} {rate:>10,.0f} msg/s  {1e6 / rate:6.2f} us/msg")
    ratio = rates["decode (valid)"] / rates["json.loads (valid)"]
    print(f"ratio decode/json.loads on the same valid bytes: {ratio:.2f}")
    fast = rates["decode (valid)"] / rates["checked path only (valid)"]
    print(f"ratio decode/checked path only on the same valid bytes: {fast:.2f}")
    headroom = rates["decode (mix, 1% malformed)"] / 50_000
    print(f"headroom over 50,000 events/s (the per-worker goal) on one core: {headroom:.1f}x")


if __name__ == "__main__":
    main()
