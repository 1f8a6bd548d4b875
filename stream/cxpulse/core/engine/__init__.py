"""The per-partition KPI engine (`partition.py`: apply, expiry, surveys, snapshot).

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
