"""`cxpulse exporter`: every KPI of every partition, from the changelog, on `/metrics`.

Takes the worker's settings (same file, environment and flags): it needs the
broker and its security settings, the group id and state table (to name the
changelog), the input topics (for freshness), the KPI time model and targets
(to evaluate like the workers), and `metrics_host`/`metrics_port` to serve.
Serves behind the same web-config (TLS, basic auth) as the worker. Exit codes as the
worker's (docs/runbook.md): 0 stopped, 2 bad setting, web config, port or topics,
69 broker unreachable, 77 credentials or ACL, 78 TLS or protocol mismatch.
"""

from __future__ import annotations

import argparse
import logging
import sys

from cxpulse.cliargs import Subcommands
from cxpulse.exporter.service import run_exporter
from cxpulse.kafka.access import KafkaAccessError
from cxpulse.lifecycle import run_until_signal
from cxpulse.settings import SettingsError, core_config
from cxpulse.settings.flags import add_settings_flags, settings_from_args
from cxpulse.startup import prepare_serving


def register(sub: Subcommands) -> None:
    p = sub.add_parser(
        "exporter",
        help="serve every KPI of all partitions (read from the state changelog) on /metrics",
        description="Follow the state changelog of every partition (written by the workers of "
        "group_id) and serve the merged, exact KPIs. Run one or two per group; Prometheus "
        "scrapes these for KPIs and the workers for their own health. Settings: defaults < "
        "--config YAML (or CXPULSE_CONFIG) < CXPULSE_* environment < flags/--set; "
        "eval_min_interval (500ms), eval_interval (5s) and idle_timeout (1m) are the "
        "exporter's own.",
    )
    add_settings_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        config = core_config(settings)
    except SettingsError as exc:
        print(f"cxpulse exporter: bad setting: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # the exporter reads only end offsets of the input topics: Describe is its grant
    prepared = prepare_serving("cxpulse exporter", settings, input_grant="Describe")
    if isinstance(prepared, int):
        return prepared
    try:  # SIGTERM/SIGINT: the consumer and the server close, exit 0
        return run_until_signal(
            run_exporter(settings, config, prepared.sock, prepared.web_config)
        )
    except KafkaAccessError as exc:  # credentials refused while running, a missing ACL
        print(f"cxpulse exporter: kafka: {exc}", file=sys.stderr)
        return exc.code
