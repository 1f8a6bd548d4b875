"""`evaluate`: every KPI of a set of partitions at one instant."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from cxpulse.core.config import CAPPED_DIMENSIONS, CoreConfig
from cxpulse.core.dimensions import top_n_caps
from cxpulse.core.durations import window_label
from cxpulse.core.evaluation.backlog import collect_backlog
from cxpulse.core.evaluation.caps import DIM_OF_VIEW, Caps, cap_view, merge_into
from cxpulse.core.evaluation.counters import all_time
from cxpulse.core.evaluation.evidence import collapse_samples
from cxpulse.core.evaluation.incremental import Incremental
from cxpulse.core.evaluation.model import Evaluation, KpiValue, Sample
from cxpulse.core.evaluation.view import PartitionView
from cxpulse.core.evaluation.windows import agent_kpis, survey_kpis, ticket_kpis
from cxpulse.core.events import SurveyKind
from cxpulse.core.outcome import ROLES
from cxpulse.core.slices import FRT, AgentAgg, Key, SurveyAgg, TicketAgg


def _replies(tv: Mapping[Key, TicketAgg], caps: Caps) -> Counter[Key]:
    """First replies of each capped view in a window's views."""
    replies: Counter[Key] = Counter()
    for view, agg in tv.items():  # counted, not merged: `capped` merges into the window's
        replies[cap_view(view, caps)] += agg.dists[FRT].n  # copies, which ticket_kpis reads
    return replies


def slice_replies(engines: Sequence[PartitionView], start: int, caps: Caps) -> Counter[Key]:
    """First replies of each capped view in the one slice starting at `start`, over every
    partition; views without any are left out. Read from the slices' own aggregates: a
    one-slice `window_views` per partition (the forecast silence reads ten slices per
    evaluation) copied and merged every view's sketches to read one count, about a fifth
    of an exporter's evaluation on a fresh stream (issue 22)."""
    replies: Counter[Key] = Counter()
    for eng in engines:
        store = eng.tickets_store
        views_of = store.views_of
        for key, agg in store.slices.get(start, {}).items():
            frt = agg.opt[FRT] if agg.opt is not None else None
            if frt is not None and frt.n:
                for view in views_of(key):
                    replies[cap_view(view, caps)] += frt.n
    return replies


def _pace(spans: dict[int, Counter[Key]], usual: Counter[Key], usual_ms: int,
          evidence: int, silent: set[Key]) -> dict[Key, float]:
    """First replies per millisecond of each capped view (the team's recent pace, for the
    backlog's breach forecast), over the shortest span in which its replies of the last
    `usual_ms` expect at least `evidence` of them, else over the longest span: the more a
    team answers, the sooner a fall in its pace is evidence (`CoreConfig.forecast_pace_ms`).
    A `silent` view's pace is 0 (`_silent`)."""
    ordered = sorted(spans)
    out: dict[Key, float] = {}
    for view in set(usual).union(*spans.values()):  # exact: integers, no rate rounding
        span = next((w for w in ordered[:-1] if usual[view] * w >= evidence * usual_ms),
                    ordered[-1])
        out[view] = 0.0 if view in silent else spans[span][view] / span
    return out


def _silent(recent: Sequence[Counter[Key]], reference: Counter[Key],
            cfg: CoreConfig) -> set[Key]:
    """Views whose silence is evidence that they stopped answering: `recent[k]` holds the
    first replies of the k-th slice back from now (0: the current one), `reference` those
    of the last `forecast_silence_reference_ms`. A view silent for its last g slices put
    all n of its reference replies in the first R - g of R; were it still answering at its
    pace (a Poisson stream, every instant of R alike), the chance of that is (1 - g/R)^n,
    so it is silent when n x -ln(1 - g/R) >= `forecast_silence_evidence`. Why not only
    the pace spans: a 10 min pace falls by a tenth a minute after a stop, while a team
    answering one a minute has 8 min of silence with a chance of 1 in 3,000 (the
    evidence is in the silence, not in a count that needs 10 replies expected)."""
    out: set[Key] = set()
    ref_ms = cfg.forecast_silence_reference_ms
    for view, n in reference.items():
        g = next((k for k, c in enumerate(recent) if c[view]), len(recent))
        if g and n * -math.log1p(-g * cfg.slice_ms / ref_ms) >= cfg.forecast_silence_evidence:
            out.add(view)
    return out


def _merged(engines: Sequence[PartitionView], width: int, end: int
            ) -> tuple[dict[Key, TicketAgg], dict[Key, AgentAgg], dict[Key, SurveyAgg]]:
    """Every partition's views of one window, merged (fresh copies)."""
    tv: dict[Key, TicketAgg] = {}
    av: dict[Key, AgentAgg] = {}
    sv: dict[Key, SurveyAgg] = {}
    for eng in engines:
        merge_into(tv, eng.tickets_store.window_views(width, end))
        merge_into(av, eng.agents_store.window_views(width, end))
        merge_into(sv, eng.surveys_store.window_views(width, end))
    return tv, av, sv


def evaluate(engines: Sequence[PartitionView], at_ms: int | None = None,
             incremental: Incremental | None = None) -> Evaluation:
    """Every KPI for every window and dimension, gauges, and all-time counters.

    `at_ms` None = the largest stream time of any engine and role. `incremental`: what
    the previous evaluation of the same replicas kept (`Incremental`; the exporter's):
    the windows move by what changed and only changed views are recomputed; the result
    is the same."""
    if not engines:
        return Evaluation(None, ())
    cfg = engines[0].config
    windows = tuple(window_label(w) for w in cfg.windows_ms)
    if at_ms is None:
        times = [t for e in engines for r in ROLES if (t := e.stream_time(r)) is not None]
        at_ms = max(times) if times else None
    counters, histograms = all_time(engines, cfg)
    if at_ms is None:
        return Evaluation(None, windows, (), (), tuple(counters), tuple(histograms))
    end = cfg.slice_of(at_ms) + cfg.slice_ms
    # the pace spans that are not KPI windows: the stores keep their views like any other's
    spans_only = tuple(s for s in cfg.forecast_pace_ms if s not in cfg.windows_ms)
    per_window: list[tuple[str, Mapping[Key, TicketAgg], Mapping[Key, AgentAgg],
                           Mapping[Key, SurveyAgg]]] = []  # fmt: skip
    span_views: dict[int, Mapping[Key, TicketAgg]] = {}
    if incremental is None:
        for w in cfg.windows_ms:
            per_window.append((window_label(w), *_merged(engines, w, end)))
        for span in spans_only:
            span_tv: dict[Key, TicketAgg] = {}
            for eng in engines:
                merge_into(span_tv, eng.tickets_store.window_views(span, end))
            span_views[span] = span_tv
    else:
        incremental.advance(engines, {"T": (*cfg.windows_ms, *spans_only), "A": cfg.windows_ms,
                                      "S": cfg.windows_ms}, end, cfg.slice_ms)  # fmt: skip
        for w in cfg.windows_ms:
            per_window.append((window_label(w), incremental.views("T", w),
                               incremental.views("A", w), incremental.views("S", w)))
        for span in spans_only:
            span_views[span] = incremental.views("T", span)
    backlog = (collect_backlog(engines, at_ms) if incremental is None
               else incremental.backlog(engines, at_ms))  # fmt: skip
    # Read-time top-N: rank on the longest window plus the backlog.
    longest = per_window[cfg.windows_ms.index(cfg.longest_window_ms)]
    weights: dict[str, Counter[str]] = {d: Counter() for d in CAPPED_DIMENSIONS}
    for view, agg in longest[1].items():
        if view[0] in ("team", "channel"):
            weights[view[0]][view[1]] += agg.weight()
    for view, aagg in longest[2].items():
        if view[0] == "agent":
            weights["agent"][view[1]] += aagg.weight()
    for view, sagg in longest[3].items():
        if view[1] in DIM_OF_VIEW:
            weights[view[1]][view[2]] += sagg.weight()
    for (dim, value), n in backlog.weights.items():
        weights[dim][value] += n
    caps = Caps({d: top_n_caps(weights[d], cfg.top_n.get(d)) for d in CAPPED_DIMENSIONS})
    kpis: list[KpiValue] = []
    t_universe: set[Key] = {("all",)}
    s_universe: set[Key] = {(k.value, "all") for k in SurveyKind}
    a_universe: set[str] = set()
    for _, tv, av, sv in per_window:
        t_universe.update(cap_view(v, caps) for v in tv)
        s_universe.update(cap_view(v, caps) for v in sv)
        if incremental is None:
            a_universe.update(caps("agent", v[1]) for v in av if v[0] == "agent")
    if incremental is not None:
        # the windows end together, so an agent active in one is active in the longest:
        # its kept agents, not every agent and team view of every window (~8 % of an
        # evaluation at 5k events/s, issue 22)
        longest_agents = incremental.active_agents(cfg.longest_window_ms).agents
        a_universe.update(caps("agent", agent) for agent in longest_agents)
    for w, (wl, tv, av, sv) in zip(cfg.windows_ms, per_window, strict=True):
        if incremental is None:
            kpis.extend(ticket_kpis(wl, tv, av, caps, t_universe, cfg))
            kpis.extend(agent_kpis(wl, av, caps, a_universe))
            kpis.extend(survey_kpis(wl, sv, caps, s_universe, cfg))
            continue
        dt, da, ds = incremental.kpi_dirty(w, caps)
        kept = incremental.active_agents(w)
        active = (kept.agents, kept.teams)
        kpis.extend(ticket_kpis(wl, tv, av, caps, t_universe, cfg,
                                incremental.memo("tickets", wl), dt, active))  # fmt: skip
        kpis.extend(agent_kpis(wl, av, caps, a_universe, incremental.memo("agents", wl), da,
                               active))  # fmt: skip
        kpis.extend(survey_kpis(wl, sv, caps, s_universe, cfg,
                                incremental.memo("surveys", wl), ds))  # fmt: skip

    def replies(span: int) -> Counter[Key]:
        """First replies of each capped view in the `span` ms before slice start `end`:
        a KPI window's or a pace span's views when they are those, else the stores' (they
        keep any span's views like a KPI window's)."""
        if span in cfg.windows_ms:
            return _replies(per_window[cfg.windows_ms.index(span)][1], caps)
        if span in span_views:
            return _replies(span_views[span], caps)
        span_tv: dict[Key, TicketAgg] = {}
        for eng in engines:
            merge_into(span_tv, eng.tickets_store.window_views(span, end))
        return _replies(span_tv, caps)

    spans = {span: replies(span) for span in cfg.forecast_pace_ms}
    shortest = min(cfg.windows_ms)
    usual = replies(shortest)
    recent = [slice_replies(engines, end - (k + 1) * cfg.slice_ms, caps)
              for k in range(max(cfg.forecast_pace_ms) // cfg.slice_ms)]
    silent = _silent(recent, replies(cfg.forecast_silence_reference_ms), cfg)
    gauges = backlog.samples(
        at_ms, caps, cfg, _pace(spans, usual, shortest, cfg.forecast_pace_evidence, silent))
    gauges.extend(collapse_samples(engines, cfg, end, caps))
    for eng in engines:
        for role in ROLES:
            st = eng.stream_time(role)
            if st is not None:
                labels = {"role": role, "partition": str(eng.partition)}
                gauges.append(Sample("stream_time_seconds", labels, st / 1000.0))
    gauges.append(Sample("surveys_parked", {}, float(sum(e.parked_surveys() for e in engines))))
    gauges.append(Sample("tickets_tracked", {}, float(sum(e.tickets_tracked() for e in engines))))
    if incremental is not None:
        incremental.caps = caps
        incremental.finish(end)
    return Evaluation(
        at_ms, windows, tuple(kpis), tuple(gauges), tuple(counters), tuple(histograms)
    )


