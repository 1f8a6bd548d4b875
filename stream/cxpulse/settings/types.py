"""The value types settings are written in, each one pydantic `Annotated` type.

A field's type says how its text (from the YAML file, an environment variable
or the command line) is read, so a new setting of a known kind is one line in
`model.py`. Validators raise `ValueError` with a message that does not repeat
the setting's name or source: `load.py` adds both to every error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, get_args

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

from cxpulse.core.durations import DurationError, format_duration_ms
from cxpulse.core.durations import parse_duration_ms as _parse_duration


class SettingsError(ValueError):
    """A setting is wrong: one line that starts with the setting's external name
    (as written in the file) and says where the value came from."""


class Secret(SecretStr):
    """A string that never shows itself: `repr`/`str` print `**********`, and the
    settings' errors and `describe()` never quote it. `reveal()` where it is used."""

    def reveal(self) -> str:
        return self.get_secret_value()


def parse_duration_ms(name: str, value: object, *, allow_zero: bool = False) -> int:
    """`"15m"` -> 900000, the project's one duration format (`cxpulse.core.durations`).

    A bare number is refused: `15` could be seconds or minutes. Raises
    `SettingsError` naming `name`, for callers outside a settings model."""
    try:
        return _duration(value, allow_zero=allow_zero)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def _duration(value: object, *, allow_zero: bool = False) -> int:
    bare = str(value).strip() if isinstance(value, int | str) else ""
    if bare.isdigit() and not isinstance(value, bool):  # `15`: seconds? minutes?
        raise ValueError(f"{value!r} needs a unit (ms, s, m, h, d), e.g. '{bare}s'")
    try:
        ms = _parse_duration(value, allow_zero=True)
    except DurationError as exc:
        raise ValueError(str(exc)) from None
    if ms == 0 and not allow_zero:
        raise ValueError(f"{value!r} must be longer than zero")
    return ms


def _positive_duration(value: object) -> int:
    return _duration(value)


def _duration_or_zero(value: object) -> int:
    return _duration(value, allow_zero=True)


def _windows(value: object) -> object:
    """`15m,1h,24h` (environment, command line) or a YAML list."""
    if isinstance(value, str):
        return [v for v in value.split(",") if v.strip()]
    return value


def _distinct_sorted(windows: tuple[int, ...]) -> tuple[int, ...]:
    if not windows:
        raise ValueError("at least one window is needed")
    if len(set(windows)) != len(windows):
        raise ValueError(f"windows repeat: {', '.join(map(format_duration_ms, windows))}")
    return tuple(sorted(windows))


def _not_a_bool(value: object) -> object:
    """YAML reads `yes`/`no` as booleans; pydantic would take `True` as 1."""
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {str(value).lower()}")
    return value


def _pairs(value: object) -> object:
    """`team=50,agent=200` (environment, command line) or a YAML mapping."""
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        key, sep, item = part.partition("=")
        if not sep:
            raise ValueError(f"{part.strip()!r} is not name=value")
        pairs[key.strip()] = item.strip()
    return pairs


def _label_lists(value: object) -> object:
    """`team=billing|tech;channel=email` (environment, command line) or a YAML mapping
    of lists; values are kept sorted and distinct. (`;` and `|`, not `,` and `=`
    alone: a list of values per name needs a second separator.)"""
    if isinstance(value, str):
        pairs: dict[str, list[str]] = {}
        for part in value.split(";"):
            if not part.strip():
                continue
            key, sep, items = part.partition("=")
            if not sep:
                raise ValueError(f"{part.strip()!r} is not dimension=a|b|c")
            pairs[key.strip()] = [x.strip() for x in items.split("|") if x.strip()]
        value = pairs
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping dimension -> list of label values")
    out: dict[str, tuple[str, ...]] = {}
    for key, items in value.items():
        if isinstance(items, str) or not isinstance(items, list | tuple) or not items:
            raise ValueError(f"{key}: expected a non-empty list of label values")
        if not all(isinstance(x, str | int) and not isinstance(x, bool) for x in items):
            raise ValueError(f"{key}: label values must be strings")
        out[str(key)] = tuple(sorted({str(x) for x in items}))
    return out


def _is_file(path: str | None) -> str | None:
    """Checked at start: a missing CA file should not wait for the first TLS handshake."""
    if path is not None and not Path(path).is_file():
        raise ValueError(f"no such file: {path}")
    return path


def _empty_is_none(value: object) -> object:
    """`CXPULSE_SSL_CAFILE=` unsets an optional setting rather than naming file ''."""
    return None if isinstance(value, str) and not value.strip() else value


#: A duration with a unit, held as int milliseconds, > 0 (`30s`).
Duration = Annotated[int, BeforeValidator(_positive_duration)]
#: The same, where `0s` means "none" (lateness, idle timeout).
DurationOrZero = Annotated[int, BeforeValidator(_duration_or_zero)]
#: Distinct durations, sorted: `[15m, 1h, 24h]` or `15m,1h,24h`.
Windows = Annotated[
    tuple[Duration, ...], BeforeValidator(_windows), AfterValidator(_distinct_sorted)
]
#: An integer; bounds go on the field: `Field(default=20000, ge=1, le=1_000_000)`.
Int = Annotated[int, BeforeValidator(_not_a_bool)]
#: Name -> positive integer: `{team: 50}` or `team=50,agent=200`.
Caps = Annotated[Mapping[str, Annotated[Int, Field(ge=1)]], BeforeValidator(_pairs)]
#: Name -> distinct label values: `{team: [billing, tech]}` or `team=billing|tech;channel=email`.
LabelLists = Annotated[Mapping[str, tuple[str, ...]], BeforeValidator(_label_lists)]
#: Optional text where empty means unset (file paths, user names).
OptionalStr = Annotated[str | None, BeforeValidator(_empty_is_none)]
#: Optional path of a file that must exist when set (kept as text).
ExistingFile = Annotated[OptionalStr, AfterValidator(_is_file)]
#: Optional secret; never printed.
OptionalSecret = Annotated[Secret | None, BeforeValidator(_empty_is_none)]


def is_secret(annotation: object) -> bool:
    """Whether a field of this type holds a secret (its input is never quoted)."""
    return annotation is Secret or Secret in get_args(annotation)
