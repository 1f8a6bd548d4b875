"""Settings flags of a long-running command: `--config`, `--set NAME=VALUE`, and a few
named settings as `--flag` (the worker's convention, for the commands that are not
the worker: `ingest`, `map`, `import`).

Why here and not in each command: the same setting is the same flag with the same
help (naming its default) on every command, and a secret is refused on the command
line the same way everywhere (`refuse_secret_on_command_line`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Literal, get_args, get_origin

from stream.settings.model import Settings, refuse_secret_on_command_line
from stream.settings.types import SettingsError


def add_flags(p: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """`--config`, one `--name` per setting in `names`, and `--set`."""
    p.add_argument("--config", help="YAML settings file (or CXPULSE_CONFIG)")
    for name in names:
        info = Settings.model_fields[name]
        choices = get_args(info.annotation) if get_origin(info.annotation) is Literal else ()
        one_of = f": {', '.join(choices)}" if choices else ""
        external = info.alias or name
        p.add_argument(
            "--" + external.replace("_", "-"), dest=f"setting_{external}",
            metavar=external.upper(), help=f"setting {external}{one_of} (default: {info.default})",
        )  # fmt: skip
    p.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="any setting, e.g. --set ingest_max_body_bytes=2097152",
    )  # fmt: skip


def overrides(args: argparse.Namespace) -> dict[str, object]:
    """The command line's settings (external name -> text), for `load_settings`."""
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
