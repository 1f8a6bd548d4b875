"""`cxpulse worker`: run one worker process (direct or faust runtime), serve its health.

Why `/metrics` is served from the worker's own event loop (aiohttp) rather
than `prometheus_client.start_http_server`'s thread: collectors read the live
PartitionEngines, which the loop mutates between awaits. Scraping on the loop
sees them between batches steps, never mid-mutation, without locks in the core.
The socket is bound before faust starts, so a taken port fails the start with
a message naming `metrics_port` instead of a stack trace after a rebalance.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stream.settings import (
    Settings,
    SettingsError,
    load_settings,
    refuse_secret_on_command_line,
)

log = logging.getLogger("cxpulse.worker")

#: Ctrl-C before the worker started (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

#: CLI flag -> setting (external name). Everything else via --set or file/env.
_FLAGS = {
    "bootstrap_servers": "bootstrap_servers",
    "group_id": "group_id",
    "datadir": "datadir",
    "metrics_host": "metrics_host",
    "metrics_port": "metrics_port",
    "store": "store",
    "runtime": "runtime",
    "topic_tickets": "topic_tickets",
    "topic_surveys": "topic_surveys",
    "topic_deadletter": "topic_deadletter",
    "log_level": "log_level",
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "worker",
        help="consume events, keep state, serve /metrics",
        description="Run one worker. Settings: defaults < --config YAML (or CXPULSE_CONFIG) "
        "< CXPULSE_* environment < flags/--set.",
    )
    add_settings_flags(p)
    p.set_defaults(func=run)


def add_settings_flags(p: argparse.ArgumentParser) -> None:
    """The settings flags every long-running command shares (worker, exporter)."""
    from typing import Literal, get_args, get_origin

    p.add_argument("--config", help="YAML settings file (or CXPULSE_CONFIG)")
    for flag in _FLAGS:
        info = Settings.model_fields[flag]
        choices = get_args(info.annotation) if get_origin(info.annotation) is Literal else ()
        one_of = f": {', '.join(choices)}" if choices else ""
        p.add_argument(
            "--" + flag.replace("_", "-"), dest=flag, metavar=flag.upper(),
            help=f"setting {flag}{one_of} (default: {info.default})",
        )  # fmt: skip
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any setting, e.g. --set batch_size=2000 --set session_timeout=6s",
    )


def settings_overrides(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {ext: getattr(args, flag) for flag, ext in _FLAGS.items()}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise SettingsError(f"{item}: --set takes NAME=VALUE")
        refuse_secret_on_command_line(name.strip())
        out[name.strip()] = value
    return out


def bind_metrics_socket(settings: Settings) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            settings.metrics_host, settings.metrics_port, type=socket.SOCK_STREAM
        )
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(64)
    except OSError as exc:
        raise SettingsError(
            f"metrics_port: cannot listen on {settings.metrics_host}:{settings.metrics_port}: "
            f"{exc.strerror} ({settings.source_of('metrics_port')})"
        ) from None
    sock.setblocking(False)
    return sock


class SelfMetrics:
    """Prometheus collector of the worker's own counters and gauges.

    Counters come from the partitions' commit markers, so they are exact
    across restarts and move with a partition to whichever worker owns it:
    summed over workers (as PromQL does) they give the totals. Label values
    are topic names, roles, partition numbers and reason codes only.
    """

    def __init__(self, worker: Any) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from stream import metric_names as mn

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
            "cxpulse_messages_lost_to_retention_total",
            "Messages deleted by topic retention before this worker could read them",
            labels=["topic", "partition"],
        )
        pointers = CounterMetricFamily(
            "cxpulse_deadletter_pointers",
            "Dead letters too large to copy, sent as a pointer (source offset, size, SHA-256)",
            labels=["role", "partition"],
        )
        capped = CounterMetricFamily(
            "cxpulse_label_values_capped",
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
            "cxpulse_worker_partitions_owned", "Partitions whose state this worker holds"
        )
        owned.add_metric([], len(st.partitions))
        yield owned
        rebuilds = CounterMetricFamily(
            "cxpulse_local_store_rebuilds",
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
<li><a href="http://{host}:9470/">the wall</a> (when <code>cxpulse wall</code> runs on its
default port)</li></ul>"""


def build_registries(worker: Any) -> tuple[Any, Any]:
    """(KPIs of the owned partitions + self-metrics, self-metrics only).

    `/metrics` serves only the worker's own health: a worker holds some
    partitions, so its KPI values are partial, and Prometheus must get each
    KPI series once, from `cxpulse exporter`. The partial view stays on
    `/metrics/partitions` for debugging and for single-worker tests; it
    evaluates every KPI (O(state), about 0.5 s at the end of a busy day) on
    the worker's loop, so nothing should scrape it routinely.
    """
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    own = CollectorRegistry()
    registry.register(SelfMetrics(worker))
    own.register(SelfMetrics(worker))
    try:
        from stream.worker.exporter import KpiCollector  # the lead's KPI renderer
    except ImportError:
        log.warning("stream.worker.exporter.KpiCollector not available: KPI series not served")
    else:
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

    def __init__(self, render: Any, worker: Any) -> None:
        self._render, self._worker = render, worker
        self._body: bytes | None = None
        self._key: object = None
        self._at = 0.0

    def body(self) -> bytes:
        import time

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
    sock: socket.socket, registry: Any, own: Any, web_config: Any = None, worker: Any = None
) -> Any:
    """`/metrics`, `/metrics/worker`, `/healthz`, behind the web-config's TLS and
    basic auth when one is given (`stream.web.server`)."""
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from stream.web.server import serve

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
        return web.Response(content_type="text/html", text=_INDEX.format(host=host))

    routes = {
        "/": index,
        "/metrics": worker_metrics,
        "/metrics/worker": worker_metrics,
        "/metrics/partitions": metrics,
        "/healthz": health,
        "/readyz": ready,
    }
    return await serve(sock, routes, web_config)


def not_ready_reason(worker: Any) -> str | None:
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


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(
            args.config or os.environ.get("CXPULSE_CONFIG"), None, settings_overrides(args)
        )
    except SettingsError as exc:
        print(f"cxpulse worker: bad setting: {exc}", file=sys.stderr)
        return 2
    return run_worker(settings)


@dataclass(frozen=True)
class Prepared:
    """What a serving command (worker, exporter) has checked and holds before it runs."""

    partitions: int
    web_config: Any
    sock: socket.socket


def prepare_serving(prog: str, settings: Settings, input_grant: str = "Read") -> Prepared | int:
    """The start-up checks of every serving command, each failure one line + exit code.

    Targets and time model, web-config, the metrics port, then the input topics
    (retrying while the broker is unreachable), in that order, so a user error
    is reported at once rather than after a minute of waiting for a broker. Returns the exit code
    (documented in docs/runbook.md) after printing the line, or what was
    prepared. Why one function: the worker and the exporter must fail the same
    way for the same cause, and did not when each had its own copy."""
    from stream.kafkaconn import KafkaAccessError
    from stream.settings import core_config
    from stream.web.server import WebConfigError, load_web_config
    from stream.worker.shared import StartupError, check_topics

    try:
        core_config(settings)  # targets file and time model: fail before connecting
        web_config = load_web_config(settings.web_config_file)
        sock = bind_metrics_socket(settings)
        check = functools.partial(check_topics, input_grant=input_grant)
        partitions = asyncio.run(wait_for_topics(settings, check))
    except (StartupError, SettingsError, WebConfigError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except KafkaAccessError as exc:  # one line naming the cause
        print(f"{prog}: kafka: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted while connecting to {settings.bootstrap_servers}",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    return Prepared(partitions, web_config, sock)


def run_worker(settings: Settings) -> int:
    from stream.kafkaconn import KafkaAccessError

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log.info("starting: %s", settings.describe())
    prepared = prepare_serving("cxpulse worker", settings)
    if isinstance(prepared, int):
        return prepared
    partitions, web_config, sock = prepared.partitions, prepared.web_config, prepared.sock
    if settings.runtime == "faust":
        return _run_faust(settings, partitions, sock, web_config)
    from stream.worker.direct import run_direct

    async def serve(worker: Any) -> Any:
        registry, own = build_registries(worker)
        runner = await serve_metrics(sock, registry, own, web_config, worker)
        log.info(
            "serving /metrics on %s://%s:%d%s", "https" if web_config.tls else "http",
            settings.metrics_host, settings.metrics_port,
            " (basic auth)" if web_config.users else "",
        )  # fmt: skip
        return runner

    try:
        return asyncio.run(run_direct(settings, partitions, serve))
    except KafkaAccessError as exc:  # e.g. no Create ACL on the changelog topic
        print(f"cxpulse worker: kafka: {exc}", file=sys.stderr)
        return exc.code


def _run_faust(
    settings: Settings, partitions: int, sock: socket.socket, web_config: Any = None
) -> int:
    from faust.worker import Worker as FaustWorker

    from stream.kafkaconn import authorization_error
    from stream.worker.agents import Worker, exit_on_missing_acl
    from stream.worker.shared import check_group_access

    try:  # faust would wait for ever without the group ACL (`check_group_access`)
        asyncio.run(check_group_access(settings))
    except Exception as exc:
        found = authorization_error(exc, settings)
        if found is None:
            raise
        print(f"cxpulse worker: kafka: {found}", file=sys.stderr)
        return found.code
    exit_on_missing_acl(settings)
    # faust's ProducerBuffer warns "producer buffer full" on every batch we
    # write (it is its normal back-pressure when a batch writes thousands of keys)
    logging.getLogger("faust.transport.producer").setLevel(logging.ERROR)
    worker = Worker(settings, partitions)
    registry, own = build_registries(worker)
    runners: list[Any] = []

    @worker.app.task  # type: ignore[untyped-decorator,misc]
    async def _metrics_server() -> None:
        runners.append(await serve_metrics(sock, registry, own, web_config, worker))
        log.info("serving /metrics on %s:%d", settings.metrics_host, settings.metrics_port)

    fw = FaustWorker(
        worker.app,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    fw.execute_from_commandline()  # returns via SystemExit
    return 0


async def wait_for_topics(settings: Settings, check: Any) -> int:
    """Check topics, retrying while the broker is unreachable (up to ~60 s).

    A failure that retrying cannot heal (credentials refused, TLS or protocol
    mismatch, an ACL missing) raises `KafkaAccessError` at once, with the
    cause `stream.kafkaconn.diagnose` found; aiokafka's own per-attempt error
    lines are kept out of the output meanwhile (they only say "Unable to
    bootstrap").
    """
    from aiokafka.errors import KafkaConnectionError, KafkaError

    from stream.kafkaconn import EXIT_UNAVAILABLE, KafkaAccessError, classify, diagnose, security_of

    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    sec = security_of(settings)
    task = asyncio.current_task()
    try:
        for _attempt in range(30):
            if task is not None and task.cancelling():  # Ctrl-C: the client swallowed it
                raise asyncio.CancelledError
            try:
                n: int = await check(settings)
                return n
            except KafkaConnectionError:
                found = await diagnose(sec)
                if found is not None:
                    raise found from None
                await asyncio.sleep(2)
            except KafkaError as exc:
                found = classify(
                    exc, settings.bootstrap_servers, sec.security_protocol, sec.sasl_mechanism
                )
                if found is None:
                    raise
                raise found from None
    finally:
        quiet.setLevel(level)
    raise KafkaAccessError(
        EXIT_UNAVAILABLE,
        f"bootstrap_servers: no broker answered at {settings.bootstrap_servers} for 60 s",
    )
