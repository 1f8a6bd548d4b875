"""The settings flags every long-running command shares (worker, exporter, ingest).

One convention: the same flag for the same setting on every command, with the
setting's default in its help, and `--set NAME=VALUE` for everything else.
Secrets are refused on the command line (they would show in `ps`).
"""

from __future__ import annotations

import argparse
from typing import Literal, get_args, get_origin

from cxpulse.settings.model import Settings, refuse_secret_on_command_line
from cxpulse.settings.types import SettingsError

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


def add_settings_flags(p: argparse.ArgumentParser) -> None:
    """The settings flags every long-running command shares (worker, exporter)."""
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
