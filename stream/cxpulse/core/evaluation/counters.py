"""All-time counters and histograms: folded from sealed slices, so they never decrease."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from cxpulse.core.config import CoreConfig
from cxpulse.core.dimensions import top_n_caps
from cxpulse.core.evaluation.caps import Caps
from cxpulse.core.evaluation.model import HistogramValue, Sample
from cxpulse.core.evaluation.view import PartitionView
from cxpulse.core.outcome import ROLES, Outcome
from cxpulse.core.slices import (
    CREATED,
    CUSTOMER_MSGS,
    DIST_NAMES,
    N_COUNTS,
    N_NATIVE_SLOTS,
    N_SURVEY_SLOTS,
    OFFERS_SLOT,
    ONE_TOUCH,
    REOPENS,
    RESOLUTION,
    SLA_BREACHED,
    SLA_MET,
    SLOT_OTHER_SCALE,
    SOLVES,
    Key,
    TicketAgg,
)

_COUNTERS = (
    ("tickets_created_total", CREATED),
    ("customer_messages_total", CUSTOMER_MSGS),
    ("frt_sla_met_total", SLA_MET),
    ("frt_sla_breached_total", SLA_BREACHED),
    ("one_touch_solves_total", ONE_TOUCH),
    ("solves_total", SOLVES),
    ("reopens_total", REOPENS),
)


def all_time(
    engines: Sequence[PartitionView], cfg: CoreConfig
) -> tuple[list[Sample], list[HistogramValue]]:
    """All-time counters (final: folded from sealed slices only, so they never decrease)."""
    counters: list[Sample] = []
    for role in ROLES:
        for o in Outcome:
            n = sum(e.outcome_counts(role)[o] for e in engines)
            counters.append(Sample("events_total", {"role": role, "outcome": o.value}, float(n)))
    dropped = sum(e.dropped_contributions for e in engines)
    counters.append(Sample("dropped_contributions_total", {}, float(dropped)))
    for role in ROLES:
        n = sum(e.duplicate_conflicts.get(role, 0) for e in engines)
        counters.append(Sample("duplicate_conflicts_total", {"role": role}, float(n)))
    merged: dict[Key, TicketAgg] = {}
    for eng in engines:
        for key, agg in eng.cumulative_tickets().items():
            mine = merged.get(key)
            if mine is None:
                merged[key] = mine = TicketAgg(len(cfg.histogram_buckets_ms) + 1, False)
            mine.merge(agg)
    weights: dict[str, Counter[str]] = {"team": Counter(), "channel": Counter()}
    for (team, channel, _), agg in merged.items():
        weights["team"][team] += agg.counts[CREATED] + 1
        weights["channel"][channel] += agg.counts[CREATED] + 1
    caps = Caps({d: top_n_caps(weights[d], cfg.top_n.get(d)) for d in weights})
    capped: dict[Key, TicketAgg] = {}
    for (team, channel, priority), agg in merged.items():
        ck = (caps("team", team), caps("channel", channel), priority)
        mine = capped.get(ck)
        if mine is None:
            capped[ck] = agg
        else:
            mine.merge(agg)
    histograms: list[HistogramValue] = []
    bounds = [b / 1000.0 for b in cfg.histogram_buckets_ms] + [float("inf")]
    for key in sorted(capped):
        agg = capped[key]
        labels = {"team": key[0], "channel": key[1], "priority": key[2]}
        for name, idx in _COUNTERS:
            counters.append(Sample(name, labels, float(agg.counts[idx])))
        counters.append(Sample("first_responses_total", labels, float(agg.dists[0].n)))
        counters.append(Sample("first_solves_total", labels, float(agg.dists[RESOLUTION].n)))
        for i, dname in enumerate(DIST_NAMES):
            d = agg.dists[i]
            cumulative, acc = [], 0
            for b, c in zip(bounds, d.hist, strict=True):
                acc += c
                cumulative.append((b, acc))
            histograms.append(
                HistogramValue(f"{dname}_seconds", labels, tuple(cumulative), d.total / 1000.0, d.n)
            )
    surveys: dict[str, list[int]] = {}
    for eng in engines:
        for kind, counts in eng.cumulative_surveys().items():
            mine_s = surveys.setdefault(kind, [0] * N_SURVEY_SLOTS)
            for i, c in enumerate(counts):
                mine_s[i] += c
    for kind in sorted(surveys):
        counts = surveys[kind]
        for score, n in enumerate(counts[:N_NATIVE_SLOTS]):
            if n:
                labels = {"survey": kind, "score": str(score)}
                counters.append(Sample("survey_responses_total", labels, float(n)))
        # 1.1: other CSAT scales in a counter of their own, so the v1 one keeps
        # meaning "score on the kind's own scale" (sum by score stays sound).
        for slot, (scale, score) in SLOT_OTHER_SCALE.items():
            if counts[slot]:
                labels = {"survey": kind, "scale": scale.value, "score": str(score)}
                counters.append(
                    Sample("survey_other_scale_responses_total", labels, float(counts[slot]))
                )
        counters.append(
            Sample("survey_offers_total", {"survey": kind}, float(counts[OFFERS_SLOT]))
        )
    assert N_COUNTS == 7
    return counters, histograms
