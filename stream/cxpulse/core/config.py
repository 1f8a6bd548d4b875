"""Configuration of the pure KPI core.

Everything that changes a KPI's value lives here, so the batch report and the
live worker compute the same numbers from the same file. Times are integer
milliseconds (see `events.py`); seconds only appear at the edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cxpulse.core.evidence import EvidenceSpec

#: Dimensions whose label values are capped (priority is a closed enum).
CAPPED_DIMENSIONS: tuple[str, ...] = ("team", "channel", "agent", "touchpoint")

#: Label values that are never folded into `other` by top-N.
RESERVED_LABELS: frozenset[str] = frozenset({"other", "unknown"})

DEFAULT_TOP_N: Mapping[str, int] = {"team": 50, "channel": 20, "agent": 200, "touchpoint": 20}

#: The breach forecast's pace spans (`CoreConfig.forecast_pace_ms`); the generated page's
#: text reads them from here.
FORECAST_PACE_MS: tuple[int, ...] = (120_000, 300_000, 600_000)
#: The silence that zeroes the breach forecast's pace, in nats
#: (`CoreConfig.forecast_silence_evidence`); the generated page's text reads it from here.
FORECAST_SILENCE_EVIDENCE = 8.0

#: Classic histogram bounds (ms) at the SLA-relevant thresholds: 1, 5, 15, 30 min, 1, 4, 24 h.
#: The collapse tests of targets.yaml's defaults (`cxpulse.core.evidence`).
DEFAULT_EVIDENCE: tuple[EvidenceSpec, ...] = (
    EvidenceSpec("csat", 0.80),
    EvidenceSpec("ces", 0.85),
    EvidenceSpec("fcr", 0.80),
)

DEFAULT_HISTOGRAM_BUCKETS_MS: tuple[int, ...] = (
    60_000,
    300_000,
    900_000,
    1_800_000,
    3_600_000,
    14_400_000,
    86_400_000,
)


@dataclass(frozen=True)
class CoreConfig:
    """KPI semantics: slices, windows, lateness, retention, targets and label caps.

    `allowed_labels[dim]`, when given, is a static allow-list applied when an
    aggregate is written (anything else becomes `other`): it is the only cap
    that is identical on every worker, so configure it when counters must sum
    exactly across workers. `top_n[dim]` is applied at read time, ranking
    values by activity. `max_label_values` is a memory guard against hostile
    input: per partition and dimension, at most that many distinct values are
    ever admitted (first come), later newcomers become `other`.
    """

    slice_ms: int = 60_000
    windows_ms: tuple[int, ...] = (900_000, 3_600_000, 86_400_000)
    lateness_ms: int = 300_000
    retention_ms: int = 7 * 86_400_000
    frt_target_ms: int = 900_000
    frt_target_by_priority: Mapping[str, int] = field(default_factory=dict)
    min_sample: int = 30
    at_risk_fractions: tuple[float, ...] = (0.5, 0.75)
    #: The breach forecast counts unanswered tickets from this fraction of their FRT target
    #: on: a ticket that has just arrived says nothing about the team's pace (a team whose
    #: queue was empty sent no first reply in 15 minutes because nothing waited, and a
    #: burst of fresh tickets then "forecast" as many breaches: docs/alerts.md).
    forecast_from_fraction: float = 0.25
    #: The breach forecast's pace: the team's first replies over the shortest of these spans
    #: (multiples of `slice_ms`, shortest first; they need not be KPI windows) in which its
    #: pace over the shortest KPI window expects at least `forecast_pace_evidence` of them;
    #: the last span otherwise. A stalled team's pace then falls as fast as its volume can
    #: show it: over 2 min for a team answering 5 a minute, over 10 min for a small one
    #: (a 5-min pace for every team paged healthy small teams; docs/alerts.md, "Breach
    #: forecast").
    forecast_pace_ms: tuple[int, ...] = FORECAST_PACE_MS
    forecast_pace_evidence: int = 10
    #: ... unless the team's silence says its pace is nothing: when its last g whole slices
    #: (up to the longest pace span) hold no first reply, and its replies of the last
    #: `forecast_silence_reference_ms` make that silence improbable for a team still
    #: answering at its pace, the pace is 0. For n replies in the reference span R, all of
    #: them in its first R - g (a Poisson team: each reply anywhere in R alike), the chance
    #: is (1 - g/R)^n; the pace is 0 when it is at most exp(-`forecast_silence_evidence`)
    #: (8: about 1 in 3,000; 7 paged a shift change of a normal week). A team answering 1 a
    #: minute is read as stopped after 8 min of silence, where its 10 min pace still showed
    #: 2 of 10 (docs/alerts.md "The forecast's silence").
    forecast_silence_evidence: float = FORECAST_SILENCE_EVIDENCE
    forecast_silence_reference_ms: int = 3_600_000
    histogram_buckets_ms: tuple[int, ...] = DEFAULT_HISTOGRAM_BUCKETS_MS
    sketch_relative_accuracy: float = 0.01
    #: How long a survey waits for its ticket's partition to catch up before
    #: it is attributed from whatever the ticket state holds.
    survey_park_max_ms: int = 86_400_000
    allowed_labels: Mapping[str, frozenset[str]] = field(default_factory=dict)
    top_n: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_TOP_N))
    max_label_values: int = 10_000
    #: Events stamped more than this after they were received are rejected
    #: (`cxpulse.core.timeguard`): they would poison stream time.
    max_event_ahead_ms: int = 3_600_000
    #: Events kept per ticket (its state record and its derivation cost grow
    #: with them). Beyond it a ticket's new events are rejected, as
    #: `TICKET_EVENT_CAP` dead letters (`PartitionEngine.apply`); docs/kpis.md.
    max_events_per_ticket: int = 1000
    #: A live ticket whose newest event is this much older than the tickets stream time
    #: is kept packed (one bytes value: its events' JSON, its expiry and its derivation's
    #: loop state) rather than as objects, and unpacked on its next event
    #: (`cxpulse.core.engine.upkeep`). Most open tickets wait for hours or days between
    #: events; packed, one costs about half the memory (issue 22). 10 minutes: on the
    #: busy day 12 % of the ticket events meet a packed ticket, each unpack a third of
    #: what it cost with a decode and a derivation; per event CPU 0.91-1.34 (median 1.09)
    #: of main at 1 hour, and 939-942 bytes per open ticket on the memory bench against
    #: 1,182 with this code at 1 hour (docs/benchmark-history.md, memory section).
    pack_idle_ms: int = 600_000
    #: Sequential collapse tests of share KPIs (targets.yaml: target, collapse,
    #: paging.false_alarm_days): `cxpulse.core.evidence`.
    evidence: tuple[EvidenceSpec, ...] = DEFAULT_EVIDENCE

    def __post_init__(self) -> None:
        if self.slice_ms <= 0:
            raise ValueError("slice_ms must be positive")
        if not self.windows_ms:
            raise ValueError("at least one window is required")
        if len(set(self.windows_ms)) != len(self.windows_ms):
            raise ValueError("windows_ms has duplicates")
        for w in self.windows_ms:
            if w <= 0 or w % self.slice_ms:
                raise ValueError(f"window {w} ms is not a positive multiple of slice_ms")
        spans = self.forecast_pace_ms
        if not spans or list(spans) != sorted(set(spans)):
            raise ValueError("forecast_pace_ms must be strictly increasing")
        if any(w <= 0 or w % self.slice_ms for w in spans):
            raise ValueError("forecast_pace_ms are not positive multiples of slice_ms")
        if max(spans) > self.retention_ms:
            raise ValueError("retention_ms must cover forecast_pace_ms")
        if self.forecast_pace_evidence < 1:
            raise ValueError("forecast_pace_evidence must be >= 1")
        if self.forecast_silence_evidence <= 0:
            raise ValueError("forecast_silence_evidence must be positive")
        ref = self.forecast_silence_reference_ms
        if ref % self.slice_ms or not max(spans) < ref <= self.retention_ms:
            raise ValueError("forecast_silence_reference_ms must be a multiple of slice_ms, "
                             "longer than forecast_pace_ms, within retention_ms")
        if self.lateness_ms < 0:
            raise ValueError("lateness_ms must be >= 0")
        if self.lateness_ms >= max(self.windows_ms):
            raise ValueError("lateness_ms must be shorter than the longest window")
        if self.retention_ms < max(self.windows_ms):
            raise ValueError("retention_ms must cover the longest window")
        targets = [self.frt_target_ms, *self.frt_target_by_priority.values()]
        if any(t <= 0 for t in targets):
            raise ValueError("FRT targets must be positive")
        if self.min_sample < 1:
            raise ValueError("min_sample must be >= 1")
        if list(self.histogram_buckets_ms) != sorted(set(self.histogram_buckets_ms)):
            raise ValueError("histogram_buckets_ms must be strictly increasing")
        if not 0.0 < self.sketch_relative_accuracy < 1.0:
            raise ValueError("sketch_relative_accuracy must be in (0, 1)")
        if self.survey_park_max_ms < 0:
            raise ValueError("survey_park_max_ms must be >= 0")
        if self.max_events_per_ticket < 1:
            raise ValueError("max_events_per_ticket must be >= 1")
        if self.pack_idle_ms <= 0:
            raise ValueError("pack_idle_ms must be positive")
        if self.max_label_values < 1:
            raise ValueError("max_label_values must be >= 1")
        for dim in (*self.allowed_labels, *self.top_n):
            if dim not in CAPPED_DIMENSIONS:
                raise ValueError(f"unknown label dimension {dim!r}")

    @property
    def longest_window_ms(self) -> int:
        return max(self.windows_ms)

    def frt_target_for(self, priority: str) -> int:
        return self.frt_target_by_priority.get(priority, self.frt_target_ms)

    def slice_of(self, ts: int) -> int:
        """Start of the epoch-aligned slice holding `ts` (floor, also for negative ts)."""
        return ts - ts % self.slice_ms
