"""A real Prometheus fed by a tiny exporter whose KPI values a test sets.

The wall and `cxpulse top` read Prometheus' HTTP API; to see them in known
states (healthy, one team in an incident, Prometheus gone) the test serves
series with the exporter's names and label scheme from `prometheus_client`,
lets a real Prometheus 2.42 scrape them every second, and changes values.
With `history=True` the same series also get 26 h of past before Prometheus
starts (tests/support/wallhistory.py), so the wall has sparklines and a change
against yesterday. `teams=` serves another team set (the wall's paging test uses
12 teams); the history is written for the default `TEAMS` only.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from cxpulse import metric_names as m
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily

from tests.support.ports import free_port
from tests.support.prom import LoopbackServer

TEAMS = ("accounts", "billing", "shipping", "tech")
TICKET = {"channel": "all", "priority": "all"}
SURVEY = {"channel": "all", "agent": "all", "touchpoint": "all"}

#: A healthy team against the default targets (FRT 900 s, SLA 90 %, CSAT 80 %, NPS 70,
#: CES 85 %, FCR 80 %, min sample 30); a tenth of the evidence a CSAT collapse page needs.
HEALTHY: dict[str, float] = {
    "frt": 320.0, "frt_n": 60, "sla": 0.96, "met": 96, "breached": 4, "backlog": 42,
    "oldest": 240.0, "at_risk": 1, "overdue": 0, "csat": 0.91, "csat_n": 80, "nps": 76, "nps_n": 80,
    "ces": 0.9, "ces_n": 80, "fcr": 0.86, "fcr_n": 70, "csat_collapse": 0.1,
}
#: Per-team series only (the exporter has no `team="all"` collapse evidence: the test is
#: per team); the wall's organisation row shows the worst team.
PER_TEAM_ONLY = ("csat_collapse",)


class Feed:
    """Per-team KPI values served as Prometheus series; `set()` changes them live."""

    def __init__(self, teams: tuple[str, ...] = TEAMS) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, dict[str, float]] = {
            team: dict(HEALTHY) for team in (*teams, m.ALL)
        }
        self.delay = 4.0
        #: Every sample carries an explicit timestamp: now, or this one once set (s). Then
        #: Prometheus keeps answering with the newest sample it has, older and older, for
        #: its 5 min lookback: what a stuck or cut-off source looks like (series with
        #: explicit timestamps get no staleness marker, so the values look live).
        self.frozen_at: float | None = None

    def set(self, team: str, **kpis: float) -> None:
        with self.lock:
            self.values[team].update(kpis)

    def shown(self, team: str, key: str) -> float:
        """The value the wall shows for `team`: the organisation's row of a per-team-only
        series is its worst team's."""
        with self.lock:
            if key in PER_TEAM_ONLY and team == m.ALL:
                return max(v[key] for t, v in self.values.items() if t != m.ALL)
            return self.values[team][key]

    def collect(self) -> Iterator[Any]:
        with self.lock:
            values = {t: dict(v) for t, v in self.values.items()}
            delay = self.delay
            stamp = self.frozen_at if self.frozen_at is not None else time.time()
        yield from families(values, delay, stamp)


def families(values: dict[str, dict[str, float]], delay: float,
             timestamp: float | None = None) -> Iterator[Any]:
    """The exporter's series for per-team `values`: what the feed serves live and what
    the history (tests/support/wallhistory.py) backfills, so both are the same series."""

    def fam(name: str, extra: dict[str, str], key: str, labels: dict[str, str]) -> Any:
        names = ["team", *labels, *extra]
        g = GaugeMetricFamily(name, name, labels=names)
        for team, v in values.items():
            if key in PER_TEAM_ONLY and team == m.ALL:
                continue
            g.add_metric([team, *labels.values(), *extra.values()], v[key], timestamp=timestamp)
        return g

    w1 = {"window": "1h"}
    w24 = {"window": "24h"}
    yield fam(m.FRT, {"percentile": "90"}, "frt", {**w1, **TICKET})
    yield fam(m.FRT_COUNT, {}, "frt_n", {**w1, **TICKET})
    yield fam(m.SLA_COMPLIANCE, {}, "sla", {**w1, **TICKET})
    yield fam(m.SLA_MET, {}, "met", {**w1, **TICKET})
    yield fam(m.SLA_BREACHED, {}, "breached", {**w1, **TICKET})
    yield fam(m.BACKLOG, {}, "backlog", TICKET)
    yield fam(m.OLDEST_UNANSWERED, {}, "oldest", TICKET)
    yield fam(m.AT_RISK, {"threshold": "0.75"}, "at_risk", TICKET)
    yield fam(m.BREACHED_UNANSWERED, {}, "overdue", TICKET)
    for kpi, metric in (("csat", m.CSAT), ("nps", m.NPS), ("ces", m.CES)):
        yield fam(metric, {}, kpi, {**w24, **SURVEY})
        yield fam(m.SURVEY_RESPONSES[kpi], {}, f"{kpi}_n", {**w24, **SURVEY})
    yield fam(m.FCR, {}, "fcr", {**w24, **TICKET})
    yield fam(m.FIRST_SOLVES, {}, "fcr_n", {**w24, **TICKET})
    yield fam(m.COLLAPSE_EVIDENCE["csat"], {}, "csat_collapse", {})
    d = GaugeMetricFamily("cxpulse_kpi_delay_seconds", "KPI delay")
    d.add_metric([], delay, timestamp=timestamp)
    yield d


PAGE_RULE = """groups:
- name: test-pages
  rules:
  - alert: CxpulseTestFrtPage
    expr: max without (instance) (cxpulse_first_response_time_seconds{window="1h",team!="all",channel="all",priority="all",percentile="90"}) > 900
    labels: {severity: page}
"""  # noqa: E501


class FedPrometheus:
    """The feed's exporter on a free port and a real Prometheus scraping it every second."""

    def __init__(self, history: bool = False, teams: tuple[str, ...] = TEAMS) -> None:
        if history and teams != TEAMS:
            raise ValueError("the backfilled history has the default TEAMS only")
        self.feed = Feed(teams)
        self.registry = CollectorRegistry()
        self.registry.register(self.feed)  # type: ignore[arg-type]
        self.exporter_port = free_port()
        self.server, self.thread = start_http_server(
            self.exporter_port, addr="127.0.0.1", registry=self.registry)
        config = (
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [rules.yml]\n"
            "scrape_configs:\n"
            "- job_name: cxpulse-exporter\n"
            f"  static_configs: [{{targets: ['127.0.0.1:{self.exporter_port}']}}]\n"
        )
        self.prom = LoopbackServer("prometheus", config, extra_files={"rules.yml": PAGE_RULE})
        # Imported here: wallhistory builds its samples from this module's `families`.
        from tests.support.wallhistory import History

        #: 26 h of past for the same series (sparklines, change vs yesterday), or None.
        self.history = History(
            int(time.time()), job="cxpulse-exporter",
            instance=f"127.0.0.1:{self.exporter_port}") if history else None

    def start(self) -> FedPrometheus:
        if self.history is not None:
            self.history.backfill(self.prom.workdir / "data")
        self.prom.start()
        self.wait_scraped()
        return self

    def wait_scraped(self, timeout_s: float = 30.0) -> None:
        """Until Prometheus has scraped the feed once (its target discovery takes ~5 s):
        before that the newest samples are the history's, not the values a test set."""
        url = f"{self.url}/api/v1/query?query=" + urllib.parse.quote('up{job="cxpulse-exporter"}')
        deadline = time.monotonic() + timeout_s
        while True:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if json.load(resp)["data"]["result"]:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Prometheus at {self.url} never scraped the feed")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return self.prom.url

    def stop(self) -> None:
        self.prom.stop()
        self.server.shutdown()
        self.server.server_close()
