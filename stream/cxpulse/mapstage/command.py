"""`cxpulse map`: run the map stage (raw deliveries -> contract events).

Exit codes (docs/runbook.md): 0 stopped (SIGTERM, Ctrl-C); 2 bad setting, mapping
file, port, or topics (missing, or a snapshot topic whose partition count differs
from the raw topic's); 69 broker unreachable at start; 77/78 credentials or TLS.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING

from cxpulse.cliargs import Subcommands

if TYPE_CHECKING:
    import socket

    from cxpulse.helpdesks import Mapping
    from cxpulse.settings import Settings
    from cxpulse.web.server import WebConfig

FLAGS = ("bootstrap_servers", "topic_raw_deliveries", "topic_tickets", "topic_surveys",
         "topic_deadletter", "mapping_file", "map_group_id", "metrics_host", "metrics_port",
         "log_level")  # fmt: skip


def register(sub: Subcommands) -> None:
    from cxpulse.settings.flags import add_settings_flags

    p = sub.add_parser(
        "map",
        help="map raw helpdesk deliveries (from `cxpulse ingest`) to contract events",
        description="Consume topic_raw_deliveries, map each delivery with the vendor's mapper "
        "and the deployment's mapping_file, produce contract events (docs/contract.md) to "
        "topic_tickets / topic_surveys, unmappable deliveries to topic_deadletter with a "
        "reason. Event ids come from the vendor's ids: replaying the raw log changes no KPI.",
    )
    add_settings_flags(p, FLAGS)
    p.add_argument("--from-beginning", action="store_true",
                   help="map every kept delivery again (after a mapping fix); duplicates "
                   "change nothing")  # fmt: skip
    p.set_defaults(func=run)


async def check_topics(settings: Settings) -> int:
    """Partitions of the raw topic; the snapshot topic is created (compacted) when missing."""
    from cxpulse.kafka.topics import StartupError, ensure_compacted_topic, topic_partitions

    s = settings
    names = [s.topic_raw_deliveries, s.topic_tickets, s.topic_surveys, s.topic_deadletter]
    counts = await topic_partitions(s, [*names, s.topic_map_snapshots])
    missing = [n for n in names if not counts.get(n)]
    if missing:
        raise StartupError(f"topic(s) {', '.join(missing)} do not exist: create them "
                           "(scripts/kafka topics, or docs/helpdesks.md)")  # fmt: skip
    n = counts[s.topic_raw_deliveries]
    assert n is not None
    have = counts.get(s.topic_map_snapshots)
    if have is None:
        await ensure_compacted_topic(s, s.topic_map_snapshots, n, "the map stage's snapshot topic")
    elif have != n:
        raise StartupError(
            f"topic_map_snapshots: {s.topic_map_snapshots} has {have} partitions, "
            f"{s.topic_raw_deliveries} {n}: they must match (a ticket's snapshot lives in "
            "its delivery's partition)")
    return n


def run(args: argparse.Namespace) -> int:
    from cxpulse.helpdesks import MappingError, load_mapping
    from cxpulse.kafka.access import KafkaAccessError
    from cxpulse.kafka.topics import StartupError
    from cxpulse.settings import SettingsError
    from cxpulse.settings.flags import settings_from_args
    from cxpulse.startup import bind_metrics_socket, wait_for_topics
    from cxpulse.web.server import WebConfigError, load_web_config

    prog = "cxpulse map"
    try:
        settings = settings_from_args(args)
        mapping = load_mapping(settings.mapping_file)
        web_config = load_web_config(settings.web_config_file)
        sock = bind_metrics_socket(settings)
    except (SettingsError, MappingError, WebConfigError) as exc:
        print(f"{prog}: bad setting: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        asyncio.run(wait_for_topics(settings, check_topics))
    except StartupError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except KafkaAccessError as exc:
        print(f"{prog}: kafka: {exc}", file=sys.stderr)
        return exc.code
    return asyncio.run(_serve(settings, mapping, sock, web_config, args.from_beginning))


async def _serve(settings: Settings, mapping: Mapping, sock: socket.socket,
                 web_config: WebConfig,
                 from_beginning: bool) -> int:  # fmt: skip
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from cxpulse.mapstage.stage import MapStage
    from cxpulse.web.server import make_app, start

    stage = MapStage(settings, mapping)
    registry = CollectorRegistry()
    registry.register(stage.counters)  # type: ignore[arg-type]

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})  # fmt: skip

    async def healthz(_: web.Request) -> web.Response:
        if stage.ready:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="no partitions assigned yet\n")

    app = make_app(web_config)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = await start(sock, app, web_config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(stage.run(stop, from_beginning))
    try:
        done, _ = await asyncio.wait([task, asyncio.create_task(stop.wait())],
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if task in done:
            task.result()
        else:
            await task  # finishes its batch, then stops the clients
    finally:
        await runner.cleanup()
    return 0
