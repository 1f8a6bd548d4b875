"""The worker's own `/metrics`: health counters, and the partial KPI view.

Why `/metrics` is served from the worker's own event loop (aiohttp) rather
than `prometheus_client.start_http_server`'s thread: collectors read the live
PartitionEngines, which the loop mutates between awaits. Scraping on the loop
sees them between batch steps, never mid-mutation, without locks in the core.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from cxpulse import metric_names as mn
from cxpulse.exposition.render import EngineSource, KpiCollector
from cxpulse.ports import WALL_PORT
from cxpulse.web.server import WebConfig, serve
from cxpulse.worker.shared import WorkerStatus

log = logging.getLogger("cxpulse.worker")


class WorkerView(EngineSource, Protocol):
    """What `/metrics` reads of a runtime (`DirectWorker`, the faust `Worker`): its
    status, and (`EngineSource`) the engines of the partitions it owns now. A
    protocol so this module needs neither runtime (the faust one imports faust)."""

    def status(self) -> WorkerStatus: ...


class SelfMetrics:
    """Prometheus collector of the worker's own counters and gauges.

    Counters come from the partitions' commit markers, so they are exact
    across restarts and move with a partition to whichever worker owns it:
    summed over workers (as PromQL does) they give the totals. Label values
    are topic names, roles, partition numbers and reason codes only.
    """

    def __init__(self, worker: WorkerView) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        st = self.worker.status()
        consumed = CounterMetricFamily(
            mn.CONSUMED_TOTAL,
            "Messages consumed (each counted once)",
            labels=["topic", "partition"],
        )
        outcomes = CounterMetricFamily(
            mn.EVENTS_TOTAL, "Valid events by outcome", labels=["role", "outcome", "partition"]
        )
        dead = CounterMetricFamily(
            mn.DEADLETTER_TOTAL,
            "Messages rejected to the dead-letter topic",
            labels=["role", "reason", "partition"],
        )
        stream_time = GaugeMetricFamily(
            mn.STREAM_TIME, "Largest event time seen", labels=["role", "partition"]
        )
        lag = GaugeMetricFamily(
            mn.CONSUMER_LAG, "Highwater minus processed position", labels=["topic", "partition"]
        )
        lost = CounterMetricFamily(
            mn.LOST_TO_RETENTION_TOTAL,
            "Messages deleted by topic retention before this worker could read them",
            labels=["topic", "partition"],
        )
        pointers = CounterMetricFamily(
            mn.DEADLETTER_POINTERS_TOTAL,
            "Dead letters too large to copy, sent as a pointer (source offset, size, SHA-256)",
            labels=["role", "partition"],
        )
        capped = CounterMetricFamily(
            mn.LABEL_VALUES_CAPPED_TOTAL,
            "Label values aggregated as `other` because a cap bit (cap: allowed_labels, "
            "max_label_values), counted per admission",
            labels=["dimension", "cap", "partition"],
        )
        for ps in st.partitions:
            part = str(ps.partition)
            for key, value in sorted(ps.counters.items()):
                kind, role, *rest = key.split(":")
                if kind == "label_capped":
                    capped.add_metric([role, rest[0] if rest else "unknown", part], value)
                elif kind == "deadletter_pointer":
                    pointers.add_metric([role, part], value)
                elif kind == "consumed":
                    consumed.add_metric([st.topics.get(role, role), part], value)
                elif kind == "lost_to_retention":
                    lost.add_metric([st.topics.get(role, role), part], value)
                elif kind == "deadletter":
                    dead.add_metric([role, rest[0] if rest else "unknown", part], value)
                else:
                    outcomes.add_metric([role, kind, part], value)
            for role, t in ps.stream_time_ms.items():
                if t is not None:
                    stream_time.add_metric([role, part], t / 1000)
            for role, n in ps.lag.items():
                lag.add_metric([st.topics.get(role, role), part], n)
        yield from (consumed, outcomes, dead, pointers, capped, lost, stream_time, lag)
        delay = GaugeMetricFamily(
            mn.PROCESSING_DELAY, "Wall clock minus event time of the last applied event"
        )
        if st.processing_delay_s is not None:
            delay.add_metric([], st.processing_delay_s)
        yield delay
        last = GaugeMetricFamily(mn.LAST_PROCESSED, "Wall clock of the last durable batch")
        if st.last_success_s is not None:
            last.add_metric([], st.last_success_s)
        yield last
        owned = GaugeMetricFamily(
            mn.WORKER_PARTITIONS_OWNED, "Partitions whose state this worker holds"
        )
        owned.add_metric([], len(st.partitions))
        yield owned
        rebuilds = CounterMetricFamily(
            mn.LOCAL_STORE_REBUILDS_TOTAL,
            "Local state copies found corrupt, moved aside and rebuilt from the changelog "
            "(reason: open, read, record)",
            labels=["partition", "reason"],
        )
        for (p, reason), n in sorted(st.local_store_rebuilds.items()):
            rebuilds.add_metric([str(p), reason], n)
        yield rebuilds
        failing = GaugeMetricFamily(
            mn.KAFKA_AUTH_FAILING,
            "1 while the broker refuses this worker's Kafka credentials or TLS (a rotated "
            "password, a deleted user, a changed certificate); it exits after "
            "auth_failure_exit_after",
        )
        failing.add_metric([], 1 if st.kafka_auth_failing else 0)
        yield failing
        refused = CounterMetricFamily(
            mn.KAFKA_AUTH_FAILURES_TOTAL,
            "Connection probes (one every 15 s) the broker refused: credentials or TLS",
        )
        refused.add_metric([], st.kafka_auth_failures)
        yield refused


_INDEX = """<!doctype html><title>cxpulse worker</title><h1>cxpulse worker</h1><ul>
<li><a href="/metrics">/metrics</a> this worker's health: lag, owned partitions, counters</li>
<li><a href="/metrics/partitions">/metrics/partitions</a> KPIs of the partitions this worker
owns right now (debugging only: organisation-wide KPIs come from <code>cxpulse exporter</code>)</li>
<li><a href="/healthz">/healthz</a> liveness</li>
<li><a href="/readyz">/readyz</a> readiness (503 while the broker refuses this worker's
credentials)</li>
<li><a href="http://{host}:{wall_port}/">the wall</a> (when <code>cxpulse wall</code> runs on its
default port)</li></ul>"""


def build_registries(worker: WorkerView) -> tuple[CollectorRegistry, CollectorRegistry]:
    """(KPIs of the owned partitions + self-metrics, self-metrics only).

    `/metrics` serves only the worker's own health: a worker holds some
    partitions, so its KPI values are partial, and Prometheus must get each
    KPI series once, from `cxpulse exporter`. The partial view stays on
    `/metrics/partitions` for debugging and for single-worker tests; it
    evaluates every KPI (O(state), about 0.5 s at the end of a busy day) on
    the worker's loop, so nothing should scrape it routinely.
    """

    registry = CollectorRegistry()
    own = CollectorRegistry()
    registry.register(SelfMetrics(worker))
    own.register(SelfMetrics(worker))
    registry.register(KpiCollector(worker))
    return registry, own


class _Throttled:
    """`/metrics/partitions` rendered at most once a minute while the worker is behind.

    Each render evaluates every KPI on the worker's loop (up to 0.5 s at the end
    of a busy day), so scrapes in a loop could stall consumption. While the
    worker is behind (consumer lag > 0) the last render is served (at most a
    minute old: the exporter is what dashboards read); once it has caught up,
    or when nothing changed, it is exact.
    """

    def __init__(self, render: Callable[[], bytes], worker: WorkerView | None) -> None:
        self._render, self._worker = render, worker
        self._body: bytes | None = None
        self._key: object = None
        self._at = 0.0

    def body(self) -> bytes:
        key: object = None
        behind = False
        if self._worker is not None:
            st = self._worker.status()
            key = (st.last_success_s, tuple(ps.partition for ps in st.partitions))
            behind = any(n > 0 for ps in st.partitions for n in ps.lag.values())
        now = time.time()
        fresh = self._body is not None and key == self._key and self._worker is not None
        busy = behind and now - self._at < _BUSY_EVERY_S
        if self._body is None or not (fresh or busy):
            self._body, self._key, self._at = self._render(), key, now
        return self._body


_BUSY_EVERY_S = 60.0


async def serve_metrics(
    sock: socket.socket,
    registry: CollectorRegistry,
    own: CollectorRegistry,
    web_config: WebConfig | None = None,
    worker: WorkerView | None = None,
) -> web.AppRunner:
    """`/metrics`, `/metrics/worker`, `/healthz`, behind the web-config's TLS and
    basic auth when one is given (`cxpulse.web.server`)."""
    partial = _Throttled(lambda: generate_latest(registry), worker)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=partial.body(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def worker_metrics(_: web.Request) -> web.Response:
        body = generate_latest(own)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def ready(_: web.Request) -> web.Response:
        reason = not_ready_reason(worker)
        if reason is not None:
            return web.Response(status=503, text=f"not ready: {reason}\n")
        return web.Response(text="ready\n")

    async def index(request: web.Request) -> web.Response:
        # A browser pointed at the metrics port finds its way instead of a 404.
        host = request.host.rsplit(":", 1)[0]
        page = _INDEX.format(host=host, wall_port=WALL_PORT)
        return web.Response(content_type="text/html", text=page)

    routes = {
        "/": index,
        "/metrics": worker_metrics,
        "/metrics/worker": worker_metrics,
        "/metrics/partitions": metrics,
        "/healthz": health,
        "/readyz": ready,
    }
    return await serve(sock, routes, web_config)


def not_ready_reason(worker: WorkerView | None) -> str | None:
    """Why the worker is not ready (None: ready).

    `/healthz` stays liveness (the process and its loop answer: restarting
    it would not help); `/readyz` says whether it can do its job now. A
    broker that refuses its credentials (a password rotated while it runs)
    makes it not ready at once; `auth_failure_exit_after` later it exits 77.
    """
    if worker is None:
        return None
    st = worker.status()
    if st.kafka_auth_failing:
        last = getattr(getattr(worker, "auth", None), "last", None)
        return "kafka refuses this worker's credentials" + (f": {last}" if last else "")
    return None
