"""The result of an evaluation: every KPI, gauge, counter and histogram, in base units."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KpiValue:
    """One windowed KPI. Base units: seconds, ratios 0-1, NPS -100..100.

    `value` is None when undefined (a ratio or mean of nothing)."""

    name: str
    window: str
    labels: Mapping[str, str]
    value: float | None
    n: int | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    below_min_sample: bool | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """A gauge or an all-time counter value."""

    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class HistogramValue:
    """Classic cumulative histogram: `buckets` are (upper bound in s, cumulative count),
    the last bound being +inf."""

    name: str
    labels: Mapping[str, str]
    buckets: tuple[tuple[float, int], ...]
    sum: float
    count: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    at_ms: int | None
    windows: tuple[str, ...]
    kpis: tuple[KpiValue, ...] = ()
    gauges: tuple[Sample, ...] = ()
    counters: tuple[Sample, ...] = ()
    histograms: tuple[HistogramValue, ...] = ()

    def kpi(self, name: str, window: str, **labels: str) -> KpiValue:
        """The KPI with exactly these labels (tests and the report use it)."""
        for k in self.kpis:
            if k.name == name and k.window == window and dict(k.labels) == labels:
                return k
        raise KeyError((name, window, labels))

    def sample(self, kind: str, name: str, **labels: str) -> float:
        for s in self.gauges if kind == "gauge" else self.counters:
            if s.name == name and dict(s.labels) == labels:
                return s.value
        raise KeyError((kind, name, labels))


