"""Where an input message spends its time inside the direct worker: a debug trace, off by
default.

Why: produce -> visible at 5k events/s spends about a third of its time between the send
and the changelog commit (issue 22), and nobody could say whether that is the wait to be
fetched, the apply, the wait for the batch before to be durable, or the commit itself.
With the logger `cxpulse.worker.timing` at DEBUG (only that one: aiokafka's DEBUG prints
every fetch response), each batch logs one line once it is durable: when `getmany`
returned it, when it was applied and its writes built, when the batch before it was
durable, when it was, and the last offset it applied of each input partition (by topic).
The instants are `time.monotonic()`, the system's one clock on Linux, so a benchmark
(`bench/bench_latency.py`) places its marker tickets on them by input offset. Nothing
names a ticket.

Off (the default) it costs one level check per batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

log = logging.getLogger("cxpulse.worker.timing")


def enabled() -> bool:
    return log.isEnabledFor(logging.DEBUG)


def batch_durable(
    fetched: float, applied: float, settled: float, durable: float,
    offsets: Mapping[str, Mapping[int, int]],
) -> None:  # fmt: skip
    """One durable batch: `offsets`: topic -> input partition -> last offset applied."""
    if not enabled():
        return
    log.debug("%s", json.dumps({
        "batch": [round(t, 4) for t in (fetched, applied, settled, durable)],
        "offsets": {topic: {str(p): o for p, o in sorted(by_p.items())}
                    for topic, by_p in sorted(offsets.items())},
    }))  # fmt: skip
