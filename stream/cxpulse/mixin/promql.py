"""PromQL building blocks shared by every generated query.

Why one place: KPI series are served by one or two identical exporter
replicas (HA) that differ only in their `instance` label. Every rule and
dashboard query must collapse them before comparing or aggregating, or a
second replica would double every count and duplicate every alert. If the
deployment changes (a third replica, a different dedup label), this is the
only function to change.
"""

from __future__ import annotations

#: The label that tells identical replicas apart.
REPLICA_LABEL = "instance"


def one_replica(expr: str) -> str:
    """A gauge selector (or any instant vector) with exporter replicas collapsed.

    `max` rather than `avg`: replicas serve the same exact value, and when one
    lags, the worse (larger) value is the cautious one for ceilings.
    """
    return f"max without ({REPLICA_LABEL}) ({expr})"


def one_replica_increase(counter: str, window: str) -> str:
    """`increase()` of a counter over `window`, replicas collapsed after the rate maths."""
    return one_replica(f"increase({counter}[{window}])")
