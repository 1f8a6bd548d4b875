"""`cxpulse worker`: run one worker process (direct or faust runtime), serve its health.

The socket is bound before faust starts (`cxpulse.startup`), so a taken port
fails the start with a message naming `metrics_port` instead of a stack trace
after a rebalance; what `/metrics` serves is `cxpulse.worker.metrics`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys

from aiohttp import web

from cxpulse.cliargs import Subcommands
from cxpulse.kafka.access import KafkaAccessError, authorization_error
from cxpulse.kafka.topics import check_group_access
from cxpulse.settings import Settings, SettingsError, core_config
from cxpulse.settings.flags import add_settings_flags, settings_from_args
from cxpulse.startup import prepare_serving
from cxpulse.web.server import WebConfig
from cxpulse.worker.direct import run_direct
from cxpulse.worker.metrics import WorkerView, build_registries, serve_metrics

log = logging.getLogger("cxpulse.worker")


def register(sub: Subcommands) -> None:
    p = sub.add_parser(
        "worker",
        help="consume events, keep state, serve /metrics",
        description="Run one worker. Settings: defaults < --config YAML (or CXPULSE_CONFIG) "
        "< CXPULSE_* environment < flags/--set.",
    )
    add_settings_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except SettingsError as exc:
        print(f"cxpulse worker: bad setting: {exc}", file=sys.stderr)
        return 2
    return run_worker(settings)


def run_worker(settings: Settings) -> int:
    try:  # the targets file and time model first: nothing is logged before they are valid
        core_config(settings)
    except SettingsError as exc:
        print(f"cxpulse worker: {exc}", file=sys.stderr)
        return 2
    stale = _stale_generated(settings)
    if stale:
        print(stale, file=sys.stderr)
        return 2
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

    async def serve(worker: WorkerView) -> web.AppRunner:
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


def _stale_generated(settings: Settings) -> str | None:
    """The line naming `make generate` when the rules and dashboards next to the targets
    file were generated from an older version of it: the worker would export KPIs that
    the alerts judge against other targets."""
    if settings.targets_file is None:
        return None
    from pathlib import Path

    from cxpulse.mixin.command import load_targets, stale_line, stale_outputs

    path = Path(settings.targets_file)
    stale = stale_outputs(load_targets(path), path.resolve().parent)
    return stale_line("cxpulse worker", path, stale) if stale else None


def _run_faust(
    settings: Settings, partitions: int, sock: socket.socket, web_config: WebConfig | None = None
) -> int:
    # faust (heavy, only for `runtime: faust`): imported when that runtime starts
    from faust.worker import Worker as FaustWorker

    from cxpulse.worker.agents import Worker, exit_on_missing_acl  # imports faust

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
    runners: list[web.AppRunner] = []

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


