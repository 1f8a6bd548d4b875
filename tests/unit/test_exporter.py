"""The exporter: every KPI of the core reaches /metrics under its documented name,
in base units, with bounded labels and no ids, and passes `promtool check metrics`."""

from __future__ import annotations

import re
import subprocess

import pytest
from cxpulse import metric_names as m
from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode
from cxpulse.core.engine import Evaluation, PartitionEngine, evaluate
from cxpulse.core.events import SurveyKind, SurveyOffered, role_of
from cxpulse.exposition.render import (
    COUNTER_FAMILIES,
    GAUGE_FAMILIES,
    KPI_FAMILIES,
    KpiCollector,
    render,
)
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

HOURS = 6


@pytest.fixture(scope="module")
def evaluation() -> tuple[Evaluation, list[str]]:
    # contract 1.1: the day carries CSAT survey offers, so the response-rate panel's series
    # exist; the simulator offers no NPS or CES survey, so one offer of each is added below
    cfg = SimConfig(seed=3, duration_ms=HOURS * 3_600_000, tickets_per_day=1500, contract="1.1")
    engine = PartitionEngine(CoreConfig(), 0)
    ids: set[str] = set()
    for rec in generate(cfg):
        event = decode(rec.value)
        assert not isinstance(event, Rejection)
        engine.apply(role_of(event), event)
        last = event.ts
        ids.add(event.event_id)
        for attr in ("ticket_id", "customer_id"):
            value = getattr(event, attr, None)
            if value:
                ids.add(value)
    for n, kind in enumerate((SurveyKind.NPS, SurveyKind.CES)):
        offer = SurveyOffered(f"offer-{n}", last - 60_000, kind, customer_id=f"c-offer-{n}",
                              touchpoint="after_purchase")
        engine.apply(role_of(offer), offer)
        ids |= {offer.event_id, f"c-offer-{n}"}
    return evaluate([engine]), sorted(ids)


def _scrape(ev: Evaluation) -> str:
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: ev))
    return generate_latest(registry).decode()


def test_every_core_name_is_mapped(evaluation: tuple[Evaluation, list[str]]) -> None:
    ev, _ = evaluation
    assert {k.name for k in ev.kpis} <= set(KPI_FAMILIES)
    assert {s.name for s in ev.gauges} <= set(GAUGE_FAMILIES)
    assert {s.name for s in ev.counters} <= set(COUNTER_FAMILIES)
    render(ev)  # raises UnmappedName for anything new


def test_values_round_trip_through_the_text_format(
    evaluation: tuple[Evaluation, list[str]],
) -> None:
    ev, _ = evaluation
    parsed = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(_scrape(ev))
        for s in fam.samples
    }

    def value(name: str, **labels: str) -> float:
        return parsed[(name, tuple(sorted(labels.items())))]

    org = {"team": "all", "channel": "all", "priority": "all"}
    for window in ev.windows:
        frt90 = ev.kpi("frt_p90_seconds", window)
        assert frt90.value is not None
        assert value(m.FRT, window=window, percentile="90", **org) == frt90.value
        created = ev.kpi("tickets_created", window).value
        assert value(m.CREATED, window=window, **org) == created
        csat = ev.kpi("csat", window)
        sv = {"window": window, "team": "all", "channel": "all", "agent": "all",
              "touchpoint": "all"}
        if csat.value is None:  # no response in the window: the series is absent, not NaN
            assert (m.CSAT, tuple(sorted(sv.items()))) not in parsed
            continue
        assert 0 <= csat.value <= 1
        assert value(m.CSAT, **sv) == csat.value
        assert value(m.SURVEY_RESPONSES["csat"], **sv) == csat.n
        assert value(m.SURVEY_CI_LOWER["csat"], **sv) <= csat.value
        assert value(m.SURVEY_CI_UPPER["csat"], **sv) >= csat.value
    assert ev.kpi("csat", "24h").value is not None
    # counters keep `_total`; team roll-ups are sums of the team series
    teams = [k.labels["team"] for k in ev.kpis
             if k.name == "tickets_created" and "team" in k.labels and k.window == "24h"]
    assert len(teams) >= 2
    total = sum(v for (n, _), v in parsed.items() if n == m.CREATED_TOTAL)
    assert total == sum(s.value for s in ev.counters if s.name == "tickets_created_total")
    # Counters hold sealed slices only (never decrease): at most the 24 h window's count.
    assert 0 < total <= value(m.CREATED, window="24h", **org)


def test_no_ids_in_labels(evaluation: tuple[Evaluation, list[str]]) -> None:
    ev, ids = evaluation
    text = _scrape(ev)
    label_values = set(re.findall(r'="([^"]*)"', text))
    assert not label_values & set(ids)


@pytest.mark.prometheus
def test_promtool_check_metrics_is_clean(
    evaluation: tuple[Evaluation, list[str]],
) -> None:
    out = subprocess.run(["promtool", "check", "metrics"], input=_scrape(evaluation[0]),
                         capture_output=True, text=True)
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), (
        out.stdout + out.stderr
    )


def test_series_names_used_by_alerts_and_dashboards_exist(
    evaluation: tuple[Evaluation, list[str]],
) -> None:
    from tests.unit.test_mixin import panel_queries

    exposed = {fam.name for fam in text_string_to_metric_families(_scrape(evaluation[0]))}
    exposed |= {f"{n}_total" for n in exposed} | {f"{n}_bucket" for n in exposed}
    self_metrics = {m.CONSUMED_TOTAL, m.EVENTS_TOTAL, m.DEADLETTER_TOTAL, m.STREAM_TIME,
                    m.PROCESSING_DELAY, m.CONSUMER_LAG, m.LAST_PROCESSED, m.KPI_DELAY,
                    m.EVALUATION_TIMESTAMP, m.EXPORTER_EVAL_SECONDS, m.EXPORTER_PARTITIONS,
                    m.EXPORTER_RECORDS, m.EXPORTER_CORRUPT, m.EXPORTER_BYTES,
                    m.EXPORTER_STALE_PATCHES}
    for expr in panel_queries():
        for name in re.findall(r"\b(cxpulse_[a-z0-9_]+)", expr):
            assert name in exposed or name in self_metrics, (name, expr)


def test_the_exporters_own_text_writer_writes_what_prometheus_client_writes(
    evaluation: tuple[Evaluation, list[str]],
) -> None:
    """`exposition` replaces `generate_latest` on the exporter's hot path: the same
    bytes for a whole evaluation, and for label values that need escaping."""
    from cxpulse.exposition.render import exposition
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    ev, _ = evaluation
    odd = GaugeMetricFamily("cxpulse_odd", 'help with \\ and\nnewline', labels=["team", "b"])
    for value in ('q"uote', "back\\slash", "new\nline", "ünï €", "", "plain"):
        odd.add_metric([value, "x"], 0.1 + 1e-17)
    odd.add_metric(["big", "y"], 1234567890123.0)
    odd.add_metric(["inf", "y"], float("inf"))
    odd.add_metric(["nan", "y"], float("nan"))
    bare = CounterMetricFamily("cxpulse_bare", "no labels")
    bare.add_metric([], 3)
    families = [*render(ev), odd, bare]

    class Static:
        def collect(self) -> list[Metric]:
            return families

    registry = CollectorRegistry()
    registry.register(Static())  # type: ignore[arg-type]
    expected = generate_latest(registry)
    assert len(expected) > 100_000  # a whole evaluation, histograms and counters included
    assert exposition(families) == expected
