"""Render the core's `Evaluation` as Prometheus metric families.

The core names KPIs in its own vocabulary (`frt_p90_seconds`, labels only for
the dimension a view is about); this module is the single translation into
the series names of `cxpulse.metric_names`, which the generated alerts and
dashboards use. Rules applied here, once:

* every dimension label is present on every series, `all` on roll-ups, so a
  PromQL selector never has to guess whether a label is missing or empty;
* quantiles become one family with a `percentile` label (50, 90, 99);
* survey KPIs get sibling families for n and the 95 % interval bounds;
* undefined values (a ratio of nothing) are left out rather than exported as
  NaN, so `absent()` and "no data" tell the truth.

The collector evaluates on scrape. It is registered per worker (an injected
`CollectorRegistry`, never the global one) and also used by the tests to
render a batch `report` evaluation, so both sides pass the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import escape_label_name, escape_metric_name
from prometheus_client.utils import floatToGoString

from cxpulse import metric_names as m
from cxpulse.core.engine import Evaluation, KpiValue, evaluate
from cxpulse.core.evaluation.view import PartitionView

#: `percentile`, not `quantile`: Prometheus reserves `quantile` for summaries, whose
#: _count/_sum must be cumulative; a rolling window's are not.
PERCENTILES = {"p50": "50", "p90": "90", "p99": "99"}


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    labels: tuple[str, ...]
    extra: Mapping[str, str] | None = None  # constant labels added to every sample


_W = ("window",)
_TICKET = (*_W, *m.TICKET_DIMS)
_SURVEY = (*_W, *m.SURVEY_DIMS)


def _dist(prefix: str, quantile_metric: str, mean_metric: str, what: str) -> dict[str, Family]:
    out = {
        f"{prefix}_{p}_seconds": Family(
            quantile_metric, f"{what} quantile in the window (sketch, 1 % relative error)",
            (*_TICKET, "percentile"), {"percentile": q},
        )
        for p, q in PERCENTILES.items()
    }
    out[f"{prefix}_mean_seconds"] = Family(mean_metric, f"Mean {what} in the window", _TICKET)
    return out


#: core KPI name -> family. Names mapped to None are deliberately not exported
#: (duplicates of another series: every solve has exactly one resolution and wait time).
KPI_FAMILIES: dict[str, Family | None] = {
    **_dist("frt", m.FRT, m.FRT_MEAN, "first response time"),
    **_dist("resolution", m.RESOLUTION, m.RESOLUTION_MEAN, "resolution time"),
    **_dist("wait", m.WAIT, m.WAIT_MEAN, "customer wait time (pending excluded)"),
    "frt_count": Family(m.FRT_COUNT, "First responses in the window", _TICKET),
    "resolution_count": None,
    "wait_count": None,
    "tickets_created": Family(m.CREATED, "Tickets created in the window", _TICKET),
    "contacts": Family(m.CONTACTS, "Tickets created + public customer messages", _TICKET),
    "frt_sla_met": Family(m.SLA_MET, "Tickets answered within the FRT target", _TICKET),
    "frt_sla_breached": Family(
        m.SLA_BREACHED, "Tickets whose FRT deadline passed unanswered in the window", _TICKET
    ),
    "frt_sla_compliance": Family(m.SLA_COMPLIANCE, "met / (met + breached)", _TICKET),
    "first_solves": Family(m.FIRST_SOLVES, "First solves in the window", _TICKET),
    "fcr": Family(m.FCR, "Share of first solves with at most one public agent reply", _TICKET),
    "solves": Family(f"{m.PREFIX}_solves", "Transitions to solved in the window", _TICKET),
    "reopens": Family(f"{m.PREFIX}_reopens", "solved -> open transitions in the window", _TICKET),
    "reopen_rate": Family(m.REOPEN, "reopens / solves in the window", _TICKET),
    "active_agents": Family(
        f"{m.PREFIX}_active_agents", "Distinct agents with a public reply or a solve",
        (*_W, "team"),
    ),
    "tickets_per_agent": Family(
        m.TICKETS_PER_AGENT, "First solves / active agents in the window", (*_W, "team")
    ),
    "agent_replies": Family(m.AGENT_REPLIES, "Public replies of the agent", (*_W, "agent")),
    "agent_solves": Family(m.AGENT_SOLVES, "Solves with the agent as assignee", (*_W, "agent")),
    "csat": Family(m.CSAT, "CSAT: share of responses scoring 4-5", _SURVEY),
    "ces": Family(m.CES, "CES: share of responses scoring 5-7 (easy)", _SURVEY),
    "nps": Family(m.NPS, "NPS: promoters % - detractors % (-100..100)", _SURVEY),
    "csat_mean": Family(m.SURVEY_MEAN["csat"], "Mean CSAT score (1-5)", _SURVEY),
    "ces_mean": Family(m.SURVEY_MEAN["ces"], "Mean CES score (1-7)", _SURVEY),
    **{
        f"{k}_response_rate": Family(
            m.SURVEY_RESPONSE_RATE[k], f"{k.upper()} responses / surveys offered", _SURVEY
        )
        for k in ("csat", "ces", "nps")
    },
}
SURVEYS = ("csat", "ces", "nps")
#: KPI name of each survey's response rate -> its survey (n = offers: contract 1.1).
RESPONSE_RATES = {f"{k}_response_rate": k for k in SURVEYS}

_NOW = tuple(m.TICKET_DIMS)
GAUGE_FAMILIES: dict[str, Family | None] = {
    "backlog_open": Family(m.BACKLOG, "Tickets not solved or closed", _NOW),
    "backlog_unassigned": Family(m.UNASSIGNED, "Open tickets without an assignee", _NOW),
    "backlog_unanswered": Family(m.UNANSWERED, "Open tickets without a first reply", _NOW),
    "oldest_unanswered_age_seconds": Family(
        m.OLDEST_UNANSWERED, "Age of the oldest unanswered open ticket", _NOW
    ),
    "frt_breached_unanswered": Family(
        m.BREACHED_UNANSWERED, "Unanswered tickets past their FRT deadline", _NOW
    ),
    "frt_forecast_breaches": Family(
        m.FORECAST_BREACHES, "Unanswered tickets that will pass their FRT deadline at least, "
        "at the team's recent pace of first replies (over 2, 5 or 10 minutes, as its volume "
        "supports), in any order", _NOW
    ),
    "frt_at_risk": Family(
        m.AT_RISK, "Unanswered tickets past this fraction of their FRT target",
        (*_NOW, "threshold"),
    ),
    **{
        f"{k}_collapse_evidence": Family(
            name, f"Evidence that the team's {k.upper()} collapsed: its CUSUM over the "
            "last 24 h / the threshold for its volume (1 = alert)", ("team",),
        )
        for k, name in m.COLLAPSE_EVIDENCE.items()
    },
    "agent_open_assigned": Family(m.AGENT_OPEN, "Open tickets assigned to the agent", ("agent",)),
    "surveys_parked": Family(
        f"{m.PREFIX}_surveys_parked", "Surveys waiting for their ticket's stream to catch up", ()
    ),
    "tickets_tracked": Family(f"{m.PREFIX}_tickets_tracked", "Ticket states held", ()),
    "stream_time_seconds": None,  # per partition from the worker's own status (self-metrics)
}

_TDIM = tuple(m.TICKET_DIMS)
COUNTER_FAMILIES: dict[str, Family | None] = {
    "tickets_created_total": Family(m.CREATED_TOTAL, "Tickets created", _TDIM),
    "customer_messages_total": Family(
        f"{m.PREFIX}_customer_messages_total", "Public customer messages", _TDIM
    ),
    "frt_sla_met_total": Family(m.SLA_MET_TOTAL, "Tickets answered within FRT target", _TDIM),
    "frt_sla_breached_total": Family(
        m.SLA_BREACHED_TOTAL, "Tickets whose FRT deadline passed unanswered", _TDIM
    ),
    "one_touch_solves_total": Family(
        f"{m.PREFIX}_one_touch_solves_total", "First solves with <= 1 public agent reply", _TDIM
    ),
    "solves_total": Family(f"{m.PREFIX}_solves_total", "Transitions to solved", _TDIM),
    "reopens_total": Family(f"{m.PREFIX}_reopens_total", "solved -> open transitions", _TDIM),
    "first_responses_total": Family(
        f"{m.PREFIX}_first_responses_total", "First public agent replies", _TDIM
    ),
    "first_solves_total": Family(f"{m.PREFIX}_first_solves_total", "First solves", _TDIM),
    "survey_responses_total": Family(
        f"{m.PREFIX}_survey_responses_total", "Survey responses by score", ("survey", "score")
    ),
    "survey_other_scale_responses_total": Family(
        m.SURVEY_OTHER_SCALE_TOTAL, "CSAT responses on a scale other than 1-5, by score",
        ("survey", "scale", "score"),
    ),
    "survey_offers_total": Family(m.SURVEY_OFFERS_TOTAL, "Surveys offered", ("survey",)),
    "dropped_contributions_total": Family(
        f"{m.PREFIX}_dropped_contributions_total",
        "Ticket KPI changes that arrived after their slice left the longest window", (),
    ),
    "duplicate_conflicts_total": Family(
        f"{m.PREFIX}_duplicate_conflicts_total",
        "Copies of an event_id with different content (stream/cxpulse/core/duplicates.py decides)",
        ("role",),
    ),
    "events_total": None,  # per partition from the worker's own status (self-metrics)
}

HISTOGRAM_FAMILIES: dict[str, Family] = {
    "frt_seconds": Family(m.FRT_HISTOGRAM, "First response time (all time)", _TDIM),
    "resolution_seconds": Family(m.RESOLUTION_HISTOGRAM, "Resolution time (all time)", _TDIM),
    "wait_seconds": Family(m.WAIT_HISTOGRAM, "Customer wait time (all time)", _TDIM),
}


class UnmappedName(KeyError):
    """The core produced a name the exporter does not know: a new KPI needs a family."""


def _family(table: Mapping[str, Family | None], name: str) -> Family | None:
    try:
        return table[name]
    except KeyError:
        raise UnmappedName(name) from None


def _label_values(fam: Family, window: str | None, labels: Mapping[str, str]) -> list[str]:
    values = []
    for label in fam.labels:
        if label == "window":
            assert window is not None
            values.append(window)
        elif fam.extra and label in fam.extra:
            values.append(fam.extra[label])
        else:
            values.append(labels.get(label, m.ALL))
    return values


def render(ev: Evaluation) -> list[Metric]:
    """All families of one evaluation, in a stable order."""
    gauges: dict[str, GaugeMetricFamily] = {}
    counters: dict[str, CounterMetricFamily] = {}

    def gauge(fam: Family) -> GaugeMetricFamily:
        g = gauges.get(fam.name)
        if g is None:
            g = gauges[fam.name] = GaugeMetricFamily(fam.name, fam.help, labels=list(fam.labels))
        return g

    def survey_side(k: KpiValue, fam: Family) -> None:
        values = _label_values(fam, k.window, k.labels)
        extras = (
            (m.SURVEY_RESPONSES[k.name], "Responses in the window (n)", k.n),
            (m.SURVEY_CI_LOWER[k.name], "95 % interval lower bound", k.ci_low),
            (m.SURVEY_CI_UPPER[k.name], "95 % interval upper bound", k.ci_high),
        )
        for name, help_, value in extras:
            if value is not None:
                gauge(Family(name, help_, fam.labels)).add_metric(values, float(value))

    for k in ev.kpis:
        fam = _family(KPI_FAMILIES, k.name)
        if fam is None:
            continue
        if k.value is not None:
            gauge(fam).add_metric(_label_values(fam, k.window, k.labels), k.value)
        if k.name in SURVEYS:
            survey_side(k, fam)
        elif k.name in RESPONSE_RATES and k.n is not None:
            offers = Family(m.SURVEY_OFFERS[RESPONSE_RATES[k.name]], "Surveys offered in the "
                            "window (the response rate's n)", fam.labels)  # fmt: skip
            gauge(offers).add_metric(_label_values(fam, k.window, k.labels), float(k.n))
    for s in ev.gauges:
        fam = _family(GAUGE_FAMILIES, s.name)
        if fam is not None:
            gauge(fam).add_metric(_label_values(fam, None, s.labels), s.value)
    for s in ev.counters:
        fam = _family(COUNTER_FAMILIES, s.name)
        if fam is None:
            continue
        c = counters.get(fam.name)
        if c is None:
            # prometheus_client appends `_total` itself; give it the base name.
            base = fam.name.removesuffix("_total")
            c = counters[fam.name] = CounterMetricFamily(base, fam.help, labels=list(fam.labels))
        c.add_metric(_label_values(fam, None, s.labels), s.value)
    histograms: dict[str, HistogramMetricFamily] = {}
    for h in ev.histograms:
        fam = HISTOGRAM_FAMILIES[h.name]
        hf = histograms.get(fam.name)
        if hf is None:
            hf = histograms[fam.name] = HistogramMetricFamily(
                fam.name, fam.help, labels=list(fam.labels)
            )
        buckets = [(_le(b), float(c)) for b, c in h.buckets]
        hf.add_metric(_label_values(fam, None, h.labels), buckets, h.sum)
    return [*gauges.values(), *counters.values(), *histograms.values()]


#: prometheus_client's exposition names a family's type so (`generate_latest`)
_TEXT_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}


def exposition(families: Iterable[Metric]) -> bytes:
    """The Prometheus text format of `families`, byte for byte what prometheus_client's
    `generate_latest` writes for them (tests/unit/test_exporter.py compares the two).

    Why not `generate_latest`: at 10k series it took as long as the evaluation itself
    (0.11-0.15 s at the end of a busy day, most of it escaping the same few label names
    again on every sample). The families here are gauges, counters without `_created`
    and histograms, without timestamps: that is all this writes; anything else is
    refused rather than written differently."""
    names: dict[str, str] = {}  # label name -> as written
    snames: dict[str, str] = {}  # sample name -> as written
    out: list[str] = []
    for fam in families:
        mtype = _TEXT_TYPES.get(fam.type)
        if mtype is None:
            raise ValueError(f"{fam.name}: type {fam.type} is not written here")
        name = escape_metric_name(fam.name + "_total" if fam.type == "counter" else fam.name)
        doc = fam.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {mtype}\n")
        for smp in fam.samples:
            if smp.timestamp is not None or smp.name in (
                f"{fam.name}_created", f"{fam.name}_gsum", f"{fam.name}_gcount"
            ):
                raise ValueError(f"{smp.name}: a sample kind not written here")
            value = floatToGoString(smp.value)  # type: ignore[no-untyped-call]  # theirs: same text
            sname = snames.get(smp.name)
            if sname is None:
                sname = snames[smp.name] = escape_metric_name(smp.name)
            if not smp.labels:
                out.append(f"{sname} {value}\n")
                continue
            parts = []
            for k, v in sorted(smp.labels.items()):
                label = names.get(k)
                if label is None:
                    label = names[k] = escape_label_name(k)
                if "\\" in v or "\n" in v or '"' in v:
                    v = v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
                parts.append(f'{label}="{v}"')
            out.append(f"{sname}{{{','.join(parts)}}} {value}\n")
    return "".join(out).encode("utf-8")


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else f"{bound:g}"


@runtime_checkable
class EngineSource(Protocol):
    """A worker, as far as its KPIs go: the engines of the partitions it owns now."""

    def engines(self) -> Mapping[int, PartitionView] | Sequence[PartitionView]: ...


class KpiCollector:
    """A prometheus_client collector over the engines a worker owns right now.

    `source` is either a worker (anything with `engines()` returning a mapping
    or sequence of PartitionEngines) or a zero-argument callable returning an
    `Evaluation` (tests, the report).
    """

    def __init__(self, source: EngineSource | Callable[[], Evaluation]) -> None:
        self._evaluate: Callable[[], Evaluation]
        if isinstance(source, EngineSource):  # has `engines` (whether callable or not)
            worker = source
            self._evaluate = lambda: evaluate(_engine_list(worker.engines()))
        else:
            self._evaluate = source

    def collect(self) -> Iterator[Metric]:
        yield from render(self._evaluate())

    def describe(self) -> Iterable[Metric]:
        # Empty: families depend on the data; prometheus_client then calls collect() lazily.
        return []


def _engine_list(
    engines: Mapping[int, PartitionView] | Sequence[PartitionView],
) -> list[PartitionView]:
    if isinstance(engines, Mapping):
        return [engines[p] for p in sorted(engines)]
    return list(engines)
