"""`cxpulse ingest`'s one job: authenticate a helpdesk webhook and persist it, then ack.

A delivery is answered 2xx only after Kafka acknowledged its record
(`acks=all`, idempotent producer): an answered delivery is in the raw log and
survives anything after it; an unanswered one (503, a timeout) is retried by
the vendor (all four retry on 5xx). The gateway holds no state, so replicas can
run behind any load balancer; a retry that reaches Kafka twice (the first
attempt's record was written after its 503) is the same bytes with the same
vendor ids, a duplicate for the map stage and the worker.

Order of the checks, each failure one 4xx with a one-line reason, counted in
`cxpulse_ingest_deliveries_total{vendor,outcome}`: vendor path (404), body size
(413, before reading the body when Content-Length says so), content type
(415), authenticity (401, `auth.py`), JSON (400). Nothing of a refused
delivery is produced. Logs name the vendor and outcome only: never a secret, a
signature, a ticket or a customer id.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from cxpulse import metric_names as mn
from cxpulse.ingest.auth import verify_any
from cxpulse.ingest.keys import VENDORS, ticket_key

if TYPE_CHECKING:
    import socket

    from cxpulse.settings import Settings
    from cxpulse.web.server import WebConfig

log = logging.getLogger("cxpulse.ingest")

#: request headers kept with the raw bytes (lower-case): what the map stage or an
#: audit may need (delivery ids, the signed timestamp); never Authorization or a signature
KEPT_HEADERS = (
    "content-type", "user-agent",
    "x-zendesk-webhook-id", "x-zendesk-webhook-invocation-id",
    "x-zendesk-webhook-signature-timestamp",
    "x-chatwoot-delivery", "x-chatwoot-timestamp",
    "x-zammad-delivery", "x-zammad-trigger",
)  # fmt: skip
#: the same, as the request's raw header names (lower-cased) -> the record's header name:
#: the raw bytes go to Kafka as they came (no decode + encode per header)
_KEPT_RAW = {h.encode(): h for h in KEPT_HEADERS}
#: record headers the gateway adds: which endpoint received it, and when (unix ms)
VENDOR_HEADER, RECEIVED_HEADER = "cxpulse-vendor", "cxpulse-received-ms"
ACCEPTED = b'{"status": "accepted"}'
#: msgspec's C parser: a fifth of json.loads's time for a delivery (docs/benchmark-history.md);
#: strict JSON (no NaN/Infinity), UTF-8 only, as the vendors send
_JSON = msgspec.json.Decoder()
OUTCOMES = ("accepted", "unauthorized", "too_large", "bad_content_type", "bad_json",
            "unknown_vendor", "unavailable")  # fmt: skip


class KeyPartitioner:
    """aiokafka's default partitioner (murmur2 like Java's: a key's partition is the one
    any Kafka client picks) with recent keys' hashes remembered: its murmur2 is pure
    Python, and a ticket's deliveries come in bursts (created, assigned, reply...)."""

    def __init__(self, size: int = 65536) -> None:
        self._hashes: dict[bytes, int] = {}
        self._size = size

    def __call__(self, key: bytes | None, all_partitions: list[int],
                 available: list[int]) -> int:  # fmt: skip
        from aiokafka.partitioner import DefaultPartitioner, murmur2

        if key is None:
            return int(DefaultPartitioner()(key, all_partitions, available))
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) >= self._size:
                self._hashes.clear()
            h = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[h % len(all_partitions)]


class Deadlines:
    """One timer for every in-flight produce: the 503-after-`ingest_produce_timeout`
    contract without a timer per delivery.

    `asyncio.timeout` around each produce arms and cancels a timer handle in the
    loop's heap and does the task's cancel bookkeeping per delivery: measured 4-5 µs
    of a delivery's ~60 µs on this project's machine (docs/benchmark-history.md). Here a
    delivery appends `[deadline, task]` to a deque and clears the task when its
    produce ends; one sweeper wakes every `tick` seconds and cancels the tasks whose
    deadline passed, exactly as `asyncio.timeout` would (the waited-on future is
    cancelled, the handler answers 503). All deliveries share one timeout, so the
    deque is in deadline order and the sweeper stops at the first live entry. A
    delivery is answered 503 between `timeout` and `timeout + tick` after it started
    waiting; the vendors' own request timeouts (10 s and more) are above that."""

    EXPIRED = -1.0  # an entry's deadline once the sweeper cancelled its task

    def __init__(self, timeout_s: float, tick_s: float = 0.1) -> None:
        self.timeout_s = timeout_s
        self.tick_s = tick_s
        self._entries: collections.deque[list[Any]] = collections.deque()

    def watch(self, loop: asyncio.AbstractEventLoop) -> list[Any]:
        """Put the current task under the deadline; the caller sets `entry[1] = None`
        once its produce has ended, whatever the outcome."""
        entry = [loop.time() + self.timeout_s, asyncio.current_task()]
        self._entries.append(entry)
        return entry

    def expired(self, entry: list[Any]) -> bool:
        """Whether a CancelledError in the watched task came from this deadline (then
        it is taken back: the task goes on to answer 503) or from elsewhere (the
        client went away, a shutdown: the caller re-raises)."""
        if entry[0] != self.EXPIRED:
            return False
        task = asyncio.current_task()
        return task is not None and task.uncancel() == 0

    def sweep(self, now: float) -> int:
        """Cancel the waits whose deadline passed and drop finished entries; how many
        were cancelled."""
        entries, cancelled = self._entries, 0
        while entries:
            entry = entries[0]
            if entry[1] is not None:
                if entry[0] > now:
                    break
                task, entry[0], entry[1] = entry[1], self.EXPIRED, None
                task.cancel()
                cancelled += 1
            entries.popleft()
        return cancelled

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick_s)
            self.sweep(loop.time())


@dataclass
class Counters:
    """The gateway's own metrics (a registry of its own: `/metrics` serves only these)."""

    registry: Any = None
    deliveries: Any = None
    children: Any = None
    produce_seconds: Any = None
    produce_failures: Any = None
    kafka_up: Any = None

    def __post_init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            mn.INGEST_DELIVERIES_TOTAL, "Webhook deliveries by vendor and outcome",
            ["vendor", "outcome"], registry=self.registry,
        )  # fmt: skip
        #: (vendor, outcome) -> its counter child: every series exists from the start
        #: (rate() sees the first delivery), and no label lookup per delivery
        self.children = {(v, o): self.deliveries.labels(v, o)
                         for v in (*VENDORS, "unknown") for o in OUTCOMES
                         if (v == "unknown") == (o == "unknown_vendor")}  # fmt: skip
        self.produce_seconds = Histogram(
            mn.INGEST_PRODUCE_SECONDS, "Seconds from producing a delivery to Kafka's ack",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.produce_failures = Counter(
            mn.INGEST_PRODUCE_FAILURES_TOTAL,
            "Deliveries Kafka did not acknowledge in time (answered 503)", registry=self.registry,
        )  # fmt: skip
        self.kafka_up = Gauge(
            mn.INGEST_KAFKA_UP, "1 while the producer is connected to Kafka",
            registry=self.registry,
        )  # fmt: skip


@dataclass
class Gateway:
    """Handlers and producer of one `cxpulse ingest` process."""

    settings: Settings
    counters: Counters = field(default_factory=Counters)
    producer: Any = None
    #: (monotonic time, reachable) of the last broker probe (/healthz)
    _probed: tuple[float, bool] = (0.0, False)
    #: vendor -> its secrets, read from the settings once (not per delivery)
    _secrets: dict[str, list[bytes]] = field(default_factory=dict)
    #: the 503 deadline of every in-flight produce (one timer for all)
    deadlines: Deadlines = field(init=False)

    #: `aiohttp.web`, imported once here: an import statement in the handler was
    #: 0.5 µs per delivery (the module is imported lazily for the CLI's start-up)
    web: Any = field(init=False)

    def __post_init__(self) -> None:
        from aiohttp import web

        self.deadlines = Deadlines(self.settings.ingest_produce_timeout_ms / 1000)
        self.web = web

    def secrets(self, vendor: str) -> list[bytes]:
        """The vendor's secrets: one, or several separated by commas (one per webhook)."""
        found = self._secrets.get(vendor)
        if found is None:
            found = self._secrets[vendor] = self._read_secrets(vendor)
        return found

    def _read_secrets(self, vendor: str) -> list[bytes]:
        name = "freshdesk_webhook_password" if vendor == "freshdesk" else f"{vendor}_webhook_secret"
        value = getattr(self.settings, name)
        if value is None:
            return []
        text = value.reveal()
        parts = [p.strip() for p in text.split(",")] if vendor != "freshdesk" else [text]
        return [p.encode() for p in parts if p]

    async def keep_producer(self, stop: asyncio.Event) -> None:
        """Start the producer, retrying while Kafka is unreachable (deliveries get 503)."""
        from aiokafka import AIOKafkaProducer

        s = self.settings
        while not stop.is_set():
            producer = AIOKafkaProducer(
                bootstrap_servers=s.bootstrap_servers, acks="all", enable_idempotence=True,
                linger_ms=1, partitioner=KeyPartitioner(),
                max_request_size=max(1_048_576, s.ingest_max_body_bytes + 65536),
                request_timeout_ms=max(10_000, s.ingest_produce_timeout_ms),
                **s.aiokafka_security(),
            )  # fmt: skip
            try:
                await producer.start()
            except Exception as exc:  # unreachable or refused: keep answering 503
                log.warning("kafka unreachable (%s); deliveries are answered 503",
                            type(exc).__name__)  # fmt: skip
                await producer.stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
                continue
            self.producer = producer
            self.counters.kafka_up.set(1)
            log.info("producing to %s", s.topic_raw_deliveries)
            return

    def _count(self, vendor: str, outcome: str) -> None:
        self.counters.children[(vendor, outcome)].inc()

    def _refuse(self, vendor: str, outcome: str, status: int, text: str) -> Any:
        self._count(vendor, outcome)
        log.info("refused a %s delivery: %s (%d)", vendor, outcome, status)
        return self.web.Response(status=status, text=text + "\n")

    async def webhook(self, request: Any) -> Any:
        web = self.web
        s = self.settings
        # a fixed route per vendor (no match_info) or the catch-all `/webhooks/{vendor}`
        vendor = request.match_info.get("vendor") or request.path.removeprefix("/webhooks/")
        if vendor not in VENDORS:
            paths = f"/webhooks/{{{','.join(VENDORS)}}}"
            return self._refuse("unknown", "unknown_vendor", 404, f"unknown vendor; one of {paths}")
        length = request.content_length
        if length is not None and length > s.ingest_max_body_bytes:
            return self._refuse(vendor, "too_large", 413,
                                f"body over {s.ingest_max_body_bytes} bytes")  # fmt: skip
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(vendor, "too_large", 413,
                                f"body over {s.ingest_max_body_bytes} bytes")  # fmt: skip
        if request.content_type != "application/json":
            return self._refuse(vendor, "bad_content_type", 415,
                                "Content-Type must be application/json")  # fmt: skip
        why = verify_any(vendor, request.headers, body, self.secrets(vendor), time.time(),
                         s.ingest_signature_window_ms / 1000)  # fmt: skip
        if why is not None:
            return self._refuse(vendor, "unauthorized", 401, f"unauthorized: {why}")
        try:
            parsed = _JSON.decode(body)
        except msgspec.DecodeError:
            return self._refuse(vendor, "bad_json", 400, "body is not valid JSON")
        if not isinstance(parsed, dict):
            return self._refuse(vendor, "bad_json", 400, "body is not a JSON object")
        key = ticket_key(vendor, parsed)
        headers = [(VENDOR_HEADER, vendor.encode()),
                   (RECEIVED_HEADER, str(int(time.time() * 1000)).encode())]  # fmt: skip
        headers += [(name, value) for raw, value in request.raw_headers
                    if (name := _KEPT_RAW.get(raw.lower())) is not None]  # fmt: skip
        if self.producer is None:
            self.counters.produce_failures.inc()
            return self._unavailable(vendor)
        t0 = time.perf_counter()
        watched = self.deadlines.watch(asyncio.get_running_loop())
        try:
            await self.producer.send_and_wait(
                s.topic_raw_deliveries, body, key=key.encode() if key else None,
                headers=headers,
            )  # fmt: skip
        except asyncio.CancelledError:
            if not self.deadlines.expired(watched):
                raise  # the client went away or the server stops: not ours to answer
            return self._not_acknowledged(vendor, "TimeoutError")
        except Exception as exc:  # not acknowledged: the vendor must retry
            return self._not_acknowledged(vendor, type(exc).__name__)
        finally:
            watched[1] = None
        self.counters.produce_seconds.observe(time.perf_counter() - t0)
        self._count(vendor, "accepted")
        # a constant body: web.json_response's serialisation was a tenth of a delivery's cost
        return web.Response(body=ACCEPTED, content_type="application/json")

    def _not_acknowledged(self, vendor: str, why: str) -> Any:
        self.counters.produce_failures.inc()
        log.warning("kafka did not acknowledge a %s delivery (%s): 503", vendor, why)
        return self._unavailable(vendor)

    def _unavailable(self, vendor: str) -> Any:
        self._count(vendor, "unavailable")
        return self.web.Response(status=503, text="kafka unavailable; retry\n",
                            headers={"Retry-After": "5"})  # fmt: skip

    async def healthz(self, _: Any) -> Any:
        """200 only when Kafka answers (probed at most every 2 s: health checks are frequent)."""
        from aiohttp import web

        from cxpulse.kafka.access import probe, security_of

        at, ok = self._probed
        if time.monotonic() - at > 2.0:
            ok = self.producer is not None and (await probe(security_of(self.settings), 2.0))[0]
            self._probed = (time.monotonic(), ok)
            self.counters.kafka_up.set(1 if ok else 0)
        if ok:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="kafka unreachable\n")

    async def metrics(self, _: Any) -> Any:
        from aiohttp import web
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return web.Response(body=generate_latest(self.counters.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})  # fmt: skip

    async def index(self, _: Any) -> Any:
        from aiohttp import web

        return web.Response(
            content_type="text/html",
            text="<!doctype html><title>cxpulse ingest</title><h1>cxpulse ingest</h1><ul>"
            + "".join(f"<li>POST /webhooks/{v}</li>" for v in VENDORS)
            + "<li><a href='/metrics'>/metrics</a></li><li><a href='/healthz'>/healthz</a>"
            " (200 only when Kafka is reachable)</li></ul>",
        )


async def run_gateway(settings: Settings, sock: socket.socket, web_config: WebConfig) -> int:
    """Serve until SIGTERM/SIGINT; 0 on a clean stop."""
    import signal

    from cxpulse.web.server import make_app, start

    gateway = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # basic auth of the web config (when it has users) guards /metrics, not the
    # webhooks: a helpdesk cannot send our Prometheus password, it signs instead
    app = make_app(web_config, open_paths=("/webhooks/",),
                   client_max_size=settings.ingest_max_body_bytes)  # fmt: skip
    for path, handler in (("/", gateway.index), ("/metrics", gateway.metrics),
                          ("/healthz", gateway.healthz)):  # fmt: skip
        app.router.add_get(path, handler)
    # each vendor's path a fixed route (a dict lookup: 1 µs less per delivery than the
    # pattern's regex); the pattern catches unknown vendors (404 with the list)
    for vendor in VENDORS:
        app.router.add_post(f"/webhooks/{vendor}", gateway.webhook)
    app.router.add_post("/webhooks/{vendor}", gateway.webhook)
    runner = await start(sock, app, web_config)
    # the start-up's objects (settings, imported modules) live as long as the process:
    # out of the collector's sight, its full collections walk only what deliveries made
    gc.freeze()
    log.info("listening on %s:%d", settings.ingest_host, settings.ingest_port)
    keeper = asyncio.create_task(gateway.keep_producer(stop))
    sweeper = asyncio.create_task(gateway.deadlines.run())
    try:
        await stop.wait()
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        await runner.cleanup()  # in-flight deliveries finish (answered) before this returns
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
        if gateway.producer is not None:
            await gateway.producer.stop()
    log.info("stopped")
    return 0
