"""Keep Python's cyclic garbage collector off a process's long-lived state.

Shared by the worker (its engines' state, once a second) and the exporter (its
replicas and evaluation, after each evaluation). Why, as measured in the exporter:
the replicas, the merged window views and the KPI memos are hundreds of
thousands to millions of small objects (aggregates, their count lists and sketches)
that live for hours, and an evaluation allocates and drops tens of thousands more.
With the default collector, what survives two young collections is promoted and
every full collection walks the whole heap again: at 5k events/s on a fresh
stream, 24 full collections of ~0.3 s each, 7.8 of the exporter's 20.8 CPU seconds
over the run, pausing the evaluation thread, the apply thread and the loop alike
(the timing trace, `cxpulse.exporter.timing`; issue 22). The replicas and the
evaluation make no reference cycles, so that state never needs the cyclic
collector: after each evaluation the young generations are collected (cheap) and
everything left is frozen (`gc.freeze`), so later full collections walk only what
was allocated since. Cyclic garbage that reached the frozen set (client internals
after a reconnect, say) would never be freed, so every `UNFREEZE_EVERY_S`
everything is unfrozen and collected in full once (a young-only collection
after `gc.unfreeze` would not reach them: unfrozen objects join the oldest
generation). In the worker the same policy took a busy day from 21k events/s
with the default collector to 27k (docs/benchmark-history.md).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

#: Seconds between the full collections that free cyclic garbage the freeze kept.
UNFREEZE_EVERY_S = 600.0
#: The worker settles at most this often (after a batch): a young collection and a
#: freeze per batch would cost more than the collections it saves on small batches.
WORKER_SETTLE_EVERY_S = 1.0


@dataclass
class FrozenHeap:
    """`settle(now)` after each unit of work (an evaluation, a second of batches)."""

    unfreeze_every_s: float = UNFREEZE_EVERY_S
    _collected_at: float | None = None

    def settle(self, now: float) -> None:
        """Collect the young generations and freeze the rest; in full when due."""
        if self._collected_at is None:
            self._collected_at = now
        if now - self._collected_at >= self.unfreeze_every_s:
            gc.unfreeze()
            gc.collect()
            self._collected_at = now
        else:
            gc.collect(1)
        gc.freeze()
