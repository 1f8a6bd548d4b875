"""The per-partition KPI engine, one module per job (like `cxpulse.core.evaluation`):

| module | job |
|---|---|
| `partition.py` | `PartitionEngine`: `apply` (how an event flows) and the read model |
| `state.py` | `EngineState`: every field of a partition's state, the base of the mixins below |
| `ticket_events.py` | a ticket event: dedup, lateness, event cap, derivation, contribution diff |
| `deferral.py` | deferred re-derivation per batch (`begin_batch`/`end_batch`) and why it is exact |
| `upkeep.py` | when the tickets stream time advances: breaches, releases, expiry, sealing |
| `surveys.py` | a survey event: dedup, parking, attribution, sealing |
| `snapshot.py` | changelog values: `drain_dirty` and `restore` |
| `stores.py` | the three slice stores and their eviction frontier (shared with the replica) |

`evaluate` and its result types live in `cxpulse.core.evaluation`; they are
re-exported here because most callers need an engine and its evaluation together.
"""

from cxpulse.core.engine.partition import PartitionEngine
from cxpulse.core.evaluation import Evaluation, HistogramValue, KpiValue, Sample, evaluate
from cxpulse.core.outcome import ROLES, Outcome

__all__ = [
    "ROLES",
    "Evaluation",
    "HistogramValue",
    "KpiValue",
    "Outcome",
    "PartitionEngine",
    "Sample",
    "evaluate",
]
