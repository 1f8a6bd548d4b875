"""argparse value types shared by every command.

Why one module: the same kind of value is written the same way on every
command line (`--duration 7d` for `simulate` and `demo`, `--refresh 15s` for
`wall` and `top`, `--incident-after 30m`), with the one duration format of
`cxpulse.core.durations`, and a wrong value is the same one-line usage error
(argparse prints it and exits 2) wherever it is given.
"""

from __future__ import annotations

import argparse
from typing import TypeAlias

from cxpulse.core.durations import DurationError, parse_duration_ms

#: What `cxpulse.cli` hands every command module's `register(sub)`: the subparsers
#: action of the top-level parser. A string because argparse's class is generic
#: only in typeshed, not at run time.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def duration_ms(text: str) -> int:
    """`90m`, `24h`, `1h30m`, `7d` -> milliseconds; zero and bare numbers refused."""
    try:
        return parse_duration_ms(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(f"bad duration: {exc}") from None


def duration_ms_or_zero(text: str) -> int:
    """A duration, or `0` (also `off`, `once`) where none means something (a single
    incident rather than a schedule)."""
    return 0 if text.strip() in ("0", "off", "once") else duration_ms(text)


def positive(text: str) -> float:
    """A number above zero (a speed, a volume)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value
