"""`cxpulse` command line: one subcommand per shell module.

Each command module exposes `register(subparsers)`, which adds its parser and
sets `func` (taking the parsed args, returning an exit code). Modules are
imported lazily so `cxpulse --help` stays fast and faust is only imported by
the commands that need it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from cxpulse import __version__

#: (module path) of every subcommand, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "cxpulse.mixin.command",
    "cxpulse.sim.command",
    "cxpulse.importer.replay",
    "cxpulse.report.command",
    "cxpulse.worker.command",
    "cxpulse.exporter.command",
    "cxpulse.wall.server",
    "cxpulse.wall.top",
    "cxpulse.demo.command",
    "cxpulse.ingest.command",
    "cxpulse.mapstage.command",
    "cxpulse.importer.command",
)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every flag's help ends with its default, unless it has none or says it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, [], argparse.SUPPRESS)
            and "default" not in text
            and text != argparse.SUPPRESS
        ):
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxpulse",
        description="Live customer-support KPIs from Kafka events.",
    )
    parser.add_argument("--version", action="version", version=f"cxpulse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_path in COMMAND_MODULES:
        importlib.import_module(module_path).register(sub)
    for command in sub.choices.values():  # one convention for every command's help
        command.formatter_class = DefaultsHelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        code: int = func(args)
    except BrokenPipeError:  # `cxpulse report ... | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
