"""faust App factory: one App per `Settings`, nothing configured at import time.

Why a factory and not a module-level `app = faust.App(...)` (the faust idiom):
tests and the benchmark run several workers with different group ids, ports
and data directories, and a module-level app would read its configuration at
import time. Choices made here, each against a known faust trap:

* `web_enabled` is off unless configured: port 6066 may be taken, and the
  worker serves its metrics itself (`cxpulse.worker.command`).
* `datadir` comes from the settings and must differ per worker process: two
  workers sharing a RocksDB directory block on its lock.
* Session/heartbeat/rebalance timeouts come from the settings, so tests can
  make group joins and fail-overs take seconds instead of the defaults.
* `processing_guarantee` stays `at_least_once`: exactness comes from
  `cxpulse.changelog.records` (offsets in the state's own commit marker),
  not from faust's `exactly_once` mode, which has open bugs.
* `consumer_auto_offset_reset="earliest"`: a new group must see the whole
  topic, or a fresh worker would silently skip history.
"""

from __future__ import annotations

import logging
from typing import Any

import faust  # at the top: only the faust runtime (`cxpulse.worker.agents`) imports this module
from faust.types.auth import CredentialsT

from cxpulse.settings import Settings


def broker_urls(settings: Settings) -> list[str]:
    return [f"kafka://{hp.strip()}" for hp in settings.bootstrap_servers.split(",")]


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """faust credentials object for TLS/SASL, or None for PLAINTEXT."""
    proto = settings.security_protocol
    if proto == "PLAINTEXT":
        return None
    ctx = settings.ssl_context() if proto in ("SSL", "SASL_SSL") else None
    if proto == "SSL":
        return faust.SSLCredentials(ctx)
    assert settings.sasl_password is not None
    return faust.SASLCredentials(
        username=settings.sasl_username,
        password=settings.sasl_password.reveal(),
        ssl_context=ctx,
        mechanism=settings.sasl_mechanism,
    )


def create_app(settings: Settings, **extra: Any) -> faust.App:
    """A faust App configured from `settings` (`extra` overrides faust options).

    Options stay `Any`: they are `faust.App(**options: Any)`'s own keyword values."""
    options: dict[str, Any] = {
        "broker": broker_urls(settings),
        "broker_credentials": broker_credentials(settings),
        "store": settings.store,
        "datadir": settings.datadir,
        "autodiscover": False,
        "web_enabled": settings.web_enabled,
        "web_port": settings.web_port,
        "web_host": settings.metrics_host,
        "web_bind": settings.metrics_host,
        "processing_guarantee": "at_least_once",
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": settings.session_timeout_ms / 1000,
        "broker_heartbeat_interval": settings.heartbeat_interval_ms / 1000,
        "broker_rebalance_timeout": settings.rebalance_timeout_ms / 1000,
        "broker_request_timeout": max(40.0, settings.session_timeout_ms / 1000 + 5),
        "topic_replication_factor": settings.changelog_replication,
        "table_standby_replicas": settings.standby_replicas,
        "producer_acks": -1,
        "producer_linger": 0.005,
        "producer_compression_type": settings.producer_compression(),
        "stream_buffer_maxsize": max(4096, settings.batch_size * 2),
        "broker_max_poll_records": max(500, settings.batch_size),
        "stream_wait_empty": False,
        "loghandlers": [],
        # cxpulse has no `on_leader` timers, so faust's leader election is not used;
        # without it no `<group>-__assignor-__leader` topic is created or consumed (two
        # ACLs fewer, and no start that fails or not by timing when its Read is missing)
        "topic_disable_leader": True,
    }
    options.update(extra)
    app = faust.App(settings.group_id, **options)
    logging.getLogger("faust").setLevel(settings.log_level.upper())
    return app
