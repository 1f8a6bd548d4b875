"""Where a change spends its time inside the exporter: a debug trace, off by default.

Why: produce -> visible at 5k events/s was about 4x the evaluation's own median in the
exporter's part (issue 22), and nobody could say where the rest went. With the logger
`cxpulse.exporter.timing` at DEBUG (only that one: aiokafka's DEBUG prints every fetch
response whole), each evaluation logs one line: when it was wanted, started (the lock
held), ended and handed to the serving process, and every committed changelog batch it
is the first to cover: its partition, the offset and timestamp of its commit marker, when
`getmany` returned it, when its apply got the lock and when it was applied. The
instants are `time.monotonic()`, the system's one clock on Linux, so a benchmark
(`bench/bench_latency.py`) places its own marker tickets on them by changelog offset.
Nothing names a ticket. Collections of the garbage collector are timed too (seconds
spent collecting since the previous line, the longest one, and the number and seconds of
full ones): a large heap pauses every thread of the process at once.

Off (the default) it costs one level check per applied batch and per evaluation.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("cxpulse.exporter.timing")


@dataclass
class Timing:
    """Committed batches applied since the last evaluation, and collection pauses."""

    #: (partition, marker offset, marker timestamp ms, fetched, apply locked, applied)
    batches: list[tuple[int, int, int, float, float, float]] = field(default_factory=list)
    gc_seconds: float = 0.0
    gc_longest: float = 0.0
    #: collections of the oldest generation (a scan of the whole heap) and their seconds
    gc_full: int = 0
    gc_full_seconds: float = 0.0
    _gc_started: float | None = None
    _watching: bool = False

    @staticmethod
    def enabled() -> bool:
        return log.isEnabledFor(logging.DEBUG)

    def applied(self, markers: list[tuple[int, int, int]], fetched: float, locked: float,
                applied: float) -> None:
        """`markers`: (partition, offset, timestamp ms) of each commit marker applied
        between `locked` and `applied`, all returned by one `getmany` at `fetched`."""
        if not self.enabled():
            return
        self._watch_gc()
        self.batches.extend((p, o, ts, fetched, locked, applied) for p, o, ts in markers)

    def evaluated(self, wanted: float, started: float, ended: float, published: float,
                  cpu: float = 0.0) -> None:
        """One evaluation: the lock wanted, then held, the rendering done, then handed over;
        `cpu`: the evaluating thread's own CPU seconds in it (wall minus CPU is what it
        waited for: other threads, other processes, the collector's pauses count as CPU)."""
        if not self.enabled():
            return
        self._watch_gc()
        log.debug("%s", json.dumps({
            "eval": [round(t, 4) for t in (wanted, started, ended, published)],
            "cpu": round(cpu, 4),
            "gc": [round(self.gc_seconds, 4), round(self.gc_longest, 4), self.gc_full,
                   round(self.gc_full_seconds, 4)],
            "batches": [[p, o, ts, round(f, 4), round(lk, 4), round(a, 4)]
                        for p, o, ts, f, lk, a in self.batches],
        }))  # fmt: skip
        self.batches = []
        self.gc_seconds = self.gc_longest = self.gc_full_seconds = 0.0
        self.gc_full = 0

    def _watch_gc(self) -> None:
        if not self._watching:
            self._watching = True
            gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._gc_started = now
        elif self._gc_started is not None:
            took = now - self._gc_started
            self.gc_seconds += took
            self.gc_longest = max(self.gc_longest, took)
            if info["generation"] == 2:
                self.gc_full += 1
                self.gc_full_seconds += took
            self._gc_started = None
