"""Evaluation: every KPI of a set of partitions at one instant (the read model).

It reads partitions only through `PartitionView` (`view.py`), so the live
engine and the changelog replica are evaluated by the same code:

| module | job |
|---|---|
| `view.py` | the protocol a partition offers the evaluation; `OpenTicket` |
| `model.py` | the result: `Evaluation`, `KpiValue`, `Sample`, `HistogramValue` |
| `evaluate.py` | merges window views of every partition, ranks labels, builds the result |
| `windows.py` | ticket, agent and survey KPIs of merged window views |
| `backlog.py` | open-ticket gauges at evaluation time |
| `counters.py` | all-time counters and histograms |
| `caps.py` | read-time top-N label caps |
"""

from cxpulse.core.evaluation.evaluate import evaluate
from cxpulse.core.evaluation.model import Evaluation, HistogramValue, KpiValue, Sample
from cxpulse.core.evaluation.view import OpenTicket, PartitionView

__all__ = [
    "Evaluation",
    "HistogramValue",
    "KpiValue",
    "OpenTicket",
    "PartitionView",
    "Sample",
    "evaluate",
]
