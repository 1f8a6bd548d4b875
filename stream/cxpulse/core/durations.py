"""Durations as people write them (`500ms`, `30s`, `15m`, `1h30m`, `7d`) and as labels.

One parser and one label format for the whole project: the targets file, the
worker settings and the simulator all read durations, and the `window` label
the engine writes must be the very string the generated alerts select on.
"""

from __future__ import annotations

import re

UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PART = re.compile(r"(\d+)(ms|s|m|h|d)")


class DurationError(ValueError):
    """Not a duration; the message says what is expected."""


def parse_duration_ms(text: object, *, allow_zero: bool = False) -> int:
    """`"15m"` -> 900000; `"1h30m"` -> 5400000. A unit is required: a bare `15` is
    refused rather than guessed (seconds? minutes?). Zero (`0s`) only where the
    caller says it means something (a lateness of none, an idle timeout of none)."""
    if not isinstance(text, str):
        raise DurationError(f"expected a duration like '15m', got {type(text).__name__}")
    s = text.strip()
    pos, total = 0, 0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += int(m.group(1)) * UNIT_MS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s) or (total == 0 and not allow_zero):
        raise DurationError(f"{text!r} is not a duration like '500ms', '30s', '15m', '1h', '7d'")
    return total


def format_duration_ms(ms: int) -> str:
    """For people (messages, logs): `1d`, `90m`, `250ms`, the largest exact unit.
    `parse_duration_ms` reads it back."""
    for unit in ("d", "h", "m", "s"):
        if ms and ms % UNIT_MS[unit] == 0:
            return f"{ms // UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def window_label(ms: int) -> str:
    """`15m`, `1h`, `24h`, `168h`: hours when whole, else minutes, seconds, ms.

    Hours rather than days keep the catalogue's `24h` as written; the label is
    the same whichever way the window was configured (`1d` or `24h`)."""
    for unit in ("h", "m", "s"):
        if ms % UNIT_MS[unit] == 0:
            return f"{ms // UNIT_MS[unit]}{unit}"
    return f"{ms}ms"
