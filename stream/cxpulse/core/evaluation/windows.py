"""Windowed KPIs of merged slice views: ticket, agent and survey KPIs per view."""

from __future__ import annotations

from cxpulse.core.config import CoreConfig
from cxpulse.core.evaluation.caps import Caps, capped, labels_of
from cxpulse.core.evaluation.model import KpiValue
from cxpulse.core.events import SurveyKind
from cxpulse.core.kpis import ratio, survey_stats
from cxpulse.core.sketch import LogMapping
from cxpulse.core.slices import (
    A_REPLIES,
    A_SOLVES,
    CREATED,
    CUSTOMER_MSGS,
    ONE_TOUCH,
    REOPENS,
    RESOLUTION,
    SLA_BREACHED,
    SLA_MET,
    SOLVES,
    AgentAgg,
    Key,
    SurveyAgg,
    TicketAgg,
)

_QS = (0.5, 0.9, 0.99)


def dist_kpis(
    prefix: str, agg: TicketAgg, idx: int, wl: str, labels: dict[str, str], mapping: LogMapping
) -> list[KpiValue]:
    d = agg.dists[idx]
    mean = d.total / d.n / 1000.0 if d.n else None
    assert d.sketch is not None
    qs = d.sketch.quantiles(_QS, mapping)
    out = [
        KpiValue(f"{prefix}_count", wl, labels, float(d.n), n=d.n),
        KpiValue(f"{prefix}_mean_seconds", wl, labels, mean, n=d.n),
    ]
    for q, v in zip(("p50", "p90", "p99"), qs, strict=True):
        out.append(
            KpiValue(f"{prefix}_{q}_seconds", wl, labels, None if v is None else v / 1000.0, n=d.n)
        )
    return out


def ticket_kpis(
    wl: str,
    tv: dict[Key, TicketAgg],
    av: dict[Key, AgentAgg],
    caps: Caps,
    universe: set[Key],
    cfg: CoreConfig,
) -> list[KpiValue]:
    nb = len(cfg.histogram_buckets_ms) + 1
    merged = capped(tv, caps)
    # Distinct active agents (raw ids: top-N must not merge people) per capped team.
    agents_all = {v[1] for v, a in av.items() if v[0] == "agent" and not a.is_empty()}
    agents_by_team: dict[str, set[str]] = {}
    for v, a in av.items():
        if v[0] == "ta" and not a.is_empty():
            agents_by_team.setdefault(caps("team", v[1]), set()).add(v[2])
    mapping = LogMapping(cfg.sketch_relative_accuracy)
    out: list[KpiValue] = []
    for view in sorted(universe):
        agg = merged.get(view) or TicketAgg(nb)
        labels = labels_of(view)
        c = agg.counts
        first_solves = agg.dists[RESOLUTION].n
        met, breached = c[SLA_MET], c[SLA_BREACHED]
        out.append(KpiValue("tickets_created", wl, labels, float(c[CREATED])))
        out.append(KpiValue("contacts", wl, labels, float(c[CREATED] + c[CUSTOMER_MSGS])))
        out.extend(dist_kpis("frt", agg, 0, wl, labels, mapping))
        out.append(KpiValue("frt_sla_met", wl, labels, float(met)))
        out.append(KpiValue("frt_sla_breached", wl, labels, float(breached)))
        out.append(
            KpiValue("frt_sla_compliance", wl, labels, ratio(met, met + breached), n=met + breached)
        )
        out.extend(dist_kpis("resolution", agg, 1, wl, labels, mapping))
        out.extend(dist_kpis("wait", agg, 2, wl, labels, mapping))
        out.append(KpiValue("first_solves", wl, labels, float(first_solves)))
        out.append(
            KpiValue("fcr", wl, labels, ratio(c[ONE_TOUCH], first_solves), n=first_solves)
        )
        out.append(KpiValue("solves", wl, labels, float(c[SOLVES])))
        out.append(KpiValue("reopens", wl, labels, float(c[REOPENS])))
        out.append(
            KpiValue("reopen_rate", wl, labels, ratio(c[REOPENS], c[SOLVES]), n=c[SOLVES])
        )
        if view[0] in ("all", "team"):
            active = agents_all if view[0] == "all" else agents_by_team.get(view[1], set())
            out.append(KpiValue("active_agents", wl, labels, float(len(active))))
            out.append(
                KpiValue(
                    "tickets_per_agent", wl, labels, ratio(first_solves, len(active)),
                    n=len(active),
                )
            )
    return out


def agent_kpis(
    wl: str, av: dict[Key, AgentAgg], caps: Caps, universe: set[str]
) -> list[KpiValue]:
    per: dict[str, list[int]] = {a: [0, 0] for a in universe}
    for v, a in av.items():
        if v[0] == "agent":
            counts = per.setdefault(caps("agent", v[1]), [0, 0])
            counts[0] += a.counts[A_REPLIES]
            counts[1] += a.counts[A_SOLVES]
    out: list[KpiValue] = []
    for agent in sorted(per):
        replies, solves = per[agent]
        out.append(KpiValue("agent_replies", wl, {"agent": agent}, float(replies)))
        out.append(KpiValue("agent_solves", wl, {"agent": agent}, float(solves)))
    return out


_SURVEY_KPIS = {
    SurveyKind.CSAT: ("csat", "csat_mean"),
    SurveyKind.NPS: ("nps", None),
    SurveyKind.CES: ("ces", "ces_mean"),
}
#: (1.1) Responses / offers per survey kind (docs/contract.md).
RESPONSE_RATE_KPIS = {k: f"{k.value}_response_rate" for k in SurveyKind}


def survey_kpis(
    wl: str, sv: dict[Key, SurveyAgg], caps: Caps, universe: set[Key], cfg: CoreConfig
) -> list[KpiValue]:
    merged = capped(sv, caps)
    out: list[KpiValue] = []
    for view in sorted(universe):
        kind = SurveyKind(view[0])
        agg = merged.get(view) or SurveyAgg()
        stats = survey_stats(kind, agg.counts, cfg.min_sample)
        labels = labels_of(view)
        share_name, mean_name = _SURVEY_KPIS[kind]
        out.append(
            KpiValue(
                share_name, wl, labels, stats.value, n=stats.n, ci_low=stats.ci_low,
                ci_high=stats.ci_high, below_min_sample=stats.below_min_sample,
            )
        )
        if mean_name is not None:
            out.append(
                KpiValue(
                    mean_name, wl, labels, stats.mean, n=stats.mean_n,
                    below_min_sample=stats.mean_n < cfg.min_sample,
                )
            )
        out.append(
            KpiValue(RESPONSE_RATE_KPIS[kind], wl, labels, stats.response_rate, n=stats.offers)
        )
    return out


