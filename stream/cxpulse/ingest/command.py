"""`cxpulse ingest`: the helpdesk webhook gateway (docs/helpdesks.md).

Exit codes (docs/runbook.md): 0 stopped (SIGTERM, Ctrl-C), 2 bad setting, web
config or port. Kafka being unreachable is not an exit: the gateway serves and
answers 503 until it can produce (the vendors retry), and /healthz says so.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from cxpulse.cliargs import Subcommands

#: the settings a flag names (everything else: --set, the file, CXPULSE_*)
FLAGS = ("bootstrap_servers", "topic_raw_deliveries", "ingest_host", "ingest_port",
         "web_config_file", "log_level")  # fmt: skip


def register(sub: Subcommands) -> None:
    from cxpulse.settings.flags import add_settings_flags

    p = sub.add_parser(
        "ingest",
        help="helpdesk webhook gateway: authenticate, persist to Kafka, then ack",
        description="Receive Zendesk, Chatwoot, Freshdesk and Zammad webhooks on "
        "/webhooks/{vendor}, check each vendor's signature, write the raw delivery to "
        "topic_raw_deliveries and answer 200 only once Kafka acknowledged it (503 while it "
        "cannot). Secrets: CXPULSE_<VENDOR>_WEBHOOK_SECRET (Freshdesk: "
        "CXPULSE_FRESHDESK_WEBHOOK_PASSWORD) or the config file. TLS: web_config_file.",
    )
    add_settings_flags(p, FLAGS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxpulse.settings import SettingsError
    from cxpulse.settings.flags import settings_from_args
    from cxpulse.web.server import WebConfigError, bind_socket, load_web_config

    try:
        settings = settings_from_args(args)
        web_config = load_web_config(settings.web_config_file)
    except (SettingsError, WebConfigError) as exc:
        print(f"cxpulse ingest: bad setting: {exc}", file=sys.stderr)
        return 2
    try:
        sock = bind_socket(settings.ingest_host, settings.ingest_port)
    except OSError as exc:
        print(f"cxpulse ingest: ingest_port: cannot listen on {settings.ingest_host}:"
              f"{settings.ingest_port}: {exc.strerror} ({settings.source_of('ingest_port')})",
              file=sys.stderr)  # fmt: skip
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    missing = [v for v in ("zendesk", "chatwoot", "freshdesk", "zammad")
               if getattr(settings, "freshdesk_webhook_password" if v == "freshdesk"
                          else f"{v}_webhook_secret") is None]  # fmt: skip
    if len(missing) == 4:
        print("cxpulse ingest: bad setting: no webhook secret set: every delivery would be "
              "refused (set CXPULSE_ZENDESK_WEBHOOK_SECRET, ... : docs/helpdesks.md)",
              file=sys.stderr)  # fmt: skip
        return 2
    if missing:
        logging.getLogger("cxpulse.ingest").warning(
            "no secret for %s: their deliveries are refused (401)", ", ".join(missing))
    from cxpulse.ingest.gateway import run_gateway

    return asyncio.run(run_gateway(settings, sock, web_config))
