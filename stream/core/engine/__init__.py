"""The per-partition KPI engine (`partition.py`: apply, expiry, surveys, snapshot).

`evaluate` and its result types live in `stream.core.evaluation`; they are
re-exported here because most callers need an engine and its evaluation together.
"""

from stream.core.engine.partition import PartitionEngine
from stream.core.evaluation import Evaluation, HistogramValue, KpiValue, Sample, evaluate
from stream.core.outcome import ROLES, Outcome

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
