"""The settings flags every long-running command shares (worker, exporter, ingest).

One convention: the same flag for the same setting on every command, with the
setting's default in its help, and `--set NAME=VALUE` for everything else.
Secrets are refused on the command line (they would show in `ps`).
"""

from __future__ import annotations

import argparse
import os
from typing import Literal, get_args, get_origin

from cxpulse.settings.load import load_settings
from cxpulse.settings.model import Settings, refuse_secret_on_command_line
from cxpulse.settings.types import SettingsError

#: The settings the worker and the exporter take as flags; everything else via --set or
#: file/env. Other commands name their own few (the gateway's `ingest_port`, ...).
SERVING_FLAGS = (
    "bootstrap_servers", "group_id", "datadir", "metrics_host", "metrics_port", "store",
    "runtime", "topic_tickets", "topic_surveys", "topic_deadletter", "log_level",
)


def add_settings_flags(p: argparse.ArgumentParser,
                       names: tuple[str, ...] = SERVING_FLAGS) -> None:
    """`--config`, a `--flag` for each setting in `names` (its help shows the default and
    the choices), and `--set NAME=VALUE` for any other; read back with
    `settings_overrides`."""
    p.add_argument("--config", metavar="YAML", help="settings file (or CXPULSE_CONFIG)")
    for name in names:
        info = Settings.model_fields[name]
        external = info.alias or name
        choices = get_args(info.annotation) if get_origin(info.annotation) is Literal else ()
        one_of = f": {', '.join(map(str, choices))}" if choices else ""
        p.add_argument(
            "--" + external.replace("_", "-"), dest=f"setting_{external}",
            metavar=external.upper(), help=f"setting {external}{one_of} (default: {info.default})",
        )  # fmt: skip
    p.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="any setting, e.g. --set batch_size=2000 --set session_timeout=6s",
    )  # fmt: skip


def settings_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The settings given on a command line built by `add_settings_flags`."""
    out: dict[str, object] = {
        key.removeprefix("setting_"): value
        for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise SettingsError(f"{item}: --set takes NAME=VALUE")
        refuse_secret_on_command_line(name.strip())
        out[name.strip()] = value
    return out


def settings_from_args(args: argparse.Namespace,
                       overrides: dict[str, object] | None = None) -> Settings:
    """The settings of a command: `--config` (or `CXPULSE_CONFIG`) < environment <
    `overrides` (the command line; by default `settings_overrides(args)`, for a parser
    built by `add_settings_flags`). One place, so every command reads the file the same
    way; raises `SettingsError` with a one-line message naming the setting."""
    if overrides is None:
        overrides = settings_overrides(args)
    return load_settings(args.config or os.environ.get("CXPULSE_CONFIG"), None, overrides)
