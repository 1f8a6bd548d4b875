"""Windowed KPIs of merged slice views: ticket, agent and survey KPIs per view."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from typing import TypeVar

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
V = TypeVar("V", Key, str)  # a capped view, or a capped agent


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


#: The KPI values of each capped view of one window and kind, kept by an incremental
#: evaluation (`cxpulse.core.evaluation.incremental`) for the views that did not change.
Memo = dict[V, list[KpiValue]]
#: The active agents of a window's agent views (not empty): raw agent -> its ("agent",
#: agent) view, and raw team -> the agents of its ("ta", team, agent) views. An
#: incremental evaluation keeps them (`ActiveAgents`); without, they are scanned.
Active = tuple[Mapping[str, AgentAgg], Mapping[str, Set[str]]]


def active_agents(av: Mapping[Key, AgentAgg]) -> Active:
    """`Active` of a window's agent views, by scanning them all."""
    agents: dict[str, AgentAgg] = {}
    teams: dict[str, set[str]] = {}
    for v, a in av.items():
        if a.is_empty():
            continue
        if v[0] == "agent":
            agents[v[1]] = a
        elif v[0] == "ta":
            teams.setdefault(v[1], set()).add(v[2])
    return agents, teams


def by_view(universe: Set[V], memo: Memo[V] | None, dirty: Set[V] | None,
            compute: Callable[[set[V]], Mapping[V, list[KpiValue]]]) -> list[KpiValue]:
    """The values of every view of `universe`, in view order: from `memo` for the views
    not in `dirty` (None: all are), from `compute(views)` for the others (stored in
    `memo`). Without a memo every view is computed. Why dirty views leave the memo even
    outside the universe: a view that leaves and comes back must not find old values."""
    if memo is None:
        done = compute(set(universe))
        return [k for view in sorted(universe) for k in done[view]]
    if dirty is None:
        memo.clear()
    else:
        for view in dirty:
            memo.pop(view, None)
    for view in [v for v in memo if v not in universe]:  # a label gone: forget it
        del memo[view]
    memo.update(compute({v for v in universe if v not in memo}))
    return [k for view in sorted(universe) for k in memo[view]]


def ticket_kpis(
    wl: str,
    tv: Mapping[Key, TicketAgg],
    av: Mapping[Key, AgentAgg],
    caps: Caps,
    universe: set[Key],
    cfg: CoreConfig,
    memo: Memo[Key] | None = None,
    dirty: Set[Key] | None = None,
    active: Active | None = None,
) -> list[KpiValue]:
    """Ticket KPIs of every capped view of `universe` in one window (`by_view`: `memo`
    and `dirty` let an incremental evaluation compute the changed views only; `active`:
    `av`'s active agents, when kept)."""

    def compute(views: set[Key]) -> dict[Key, list[KpiValue]]:
        nb = len(cfg.histogram_buckets_ms) + 1
        merged = capped(tv, caps, views)
        # Distinct active agents (raw ids: top-N must not merge people) per capped team.
        agents_all: Set[str] = set()
        agents_by_team: dict[str, Set[str]] = {}
        if any(view[0] in ("all", "team") for view in views):
            agents, teams = active if active is not None else active_agents(av)
            agents_all = agents.keys()
            by_capped: dict[str, list[Set[str]]] = {}
            for team, members in teams.items():
                by_capped.setdefault(caps("team", team), []).append(members)
            agents_by_team = {c: ms[0] if len(ms) == 1 else set().union(*ms)
                              for c, ms in by_capped.items()}  # fmt: skip
        mapping = LogMapping(cfg.sketch_relative_accuracy)
        done: dict[Key, list[KpiValue]] = {}
        for view in views:
            agg = merged.get(view) or TicketAgg(nb)
            labels = labels_of(view)
            c = agg.counts
            first_solves = agg.dists[RESOLUTION].n
            met, breached = c[SLA_MET], c[SLA_BREACHED]
            out = done[view] = []
            out.append(KpiValue("tickets_created", wl, labels, float(c[CREATED])))
            out.append(KpiValue("contacts", wl, labels, float(c[CREATED] + c[CUSTOMER_MSGS])))
            out.extend(dist_kpis("frt", agg, 0, wl, labels, mapping))
            out.append(KpiValue("frt_sla_met", wl, labels, float(met)))
            out.append(KpiValue("frt_sla_breached", wl, labels, float(breached)))
            out.append(KpiValue("frt_sla_compliance", wl, labels, ratio(met, met + breached),
                                n=met + breached))  # fmt: skip
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
                staff = agents_all if view[0] == "all" else agents_by_team.get(view[1], set())
                out.append(KpiValue("active_agents", wl, labels, float(len(staff))))
                out.append(
                    KpiValue(
                        "tickets_per_agent", wl, labels, ratio(first_solves, len(staff)),
                        n=len(staff),
                    )
                )
        return done

    return by_view(universe, memo, dirty, compute)


def agent_kpis(
    wl: str, av: Mapping[Key, AgentAgg], caps: Caps, universe: set[str],
    memo: Memo[str] | None = None, dirty: Set[str] | None = None,
    active: Active | None = None,
) -> list[KpiValue]:
    """Replies and solves of every capped agent of `universe` in one window (`by_view`;
    `active`: `av`'s active agents, when kept: the empty views add nothing)."""

    def compute(agents: set[str]) -> dict[str, list[KpiValue]]:
        per: dict[str, list[int]] = {a: [0, 0] for a in agents}
        views = (active[0] if active is not None
                 else {v[1]: a for v, a in av.items() if v[0] == "agent"})  # fmt: skip
        for agent, a in views.items():
            if (counts := per.get(caps("agent", agent))) is not None:
                counts[0] += a.counts[A_REPLIES]
                counts[1] += a.counts[A_SOLVES]
        return {
            agent: [KpiValue("agent_replies", wl, {"agent": agent}, float(replies)),
                    KpiValue("agent_solves", wl, {"agent": agent}, float(solves))]
            for agent, (replies, solves) in per.items()
        }  # fmt: skip

    return by_view(universe, memo, dirty, compute)


_SURVEY_KPIS = {
    SurveyKind.CSAT: ("csat", "csat_mean"),
    SurveyKind.NPS: ("nps", None),
    SurveyKind.CES: ("ces", "ces_mean"),
}
#: (1.1) Responses / offers per survey kind (docs/contract.md).
RESPONSE_RATE_KPIS = {k: f"{k.value}_response_rate" for k in SurveyKind}


def survey_kpis(
    wl: str, sv: Mapping[Key, SurveyAgg], caps: Caps, universe: set[Key], cfg: CoreConfig,
    memo: Memo[Key] | None = None, dirty: Set[Key] | None = None,
) -> list[KpiValue]:
    """Survey KPIs of every capped view of `universe` in one window (`by_view`)."""

    def compute(views: set[Key]) -> dict[Key, list[KpiValue]]:
        merged = capped(sv, caps, views)
        done: dict[Key, list[KpiValue]] = {}
        for view in views:
            kind = SurveyKind(view[0])
            agg = merged.get(view) or SurveyAgg()
            stats = survey_stats(kind, agg.counts, cfg.min_sample)
            labels = labels_of(view)
            share_name, mean_name = _SURVEY_KPIS[kind]
            out = done[view] = []
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
                KpiValue(RESPONSE_RATE_KPIS[kind], wl, labels, stats.response_rate,
                         n=stats.offers)
            )  # fmt: skip
        return done

    return by_view(universe, memo, dirty, compute)
