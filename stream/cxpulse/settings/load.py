"""`load_settings`: sources in, validated `Settings` or one `SettingsError` line out.

The line is `<setting>: <what is wrong> (<where it was set>)`, e.g.
`lateness: 2d must be shorter than the longest window (1d) (set by environment
variable CXPULSE_LATENESS; windows: default value)`. pydantic's `ValidationError`
is never shown as such: its text is several lines and starts with the model.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from cxpulse.core.config import DEFAULT_TOP_N, CoreConfig
from cxpulse.core.targets import Targets, TargetsError, parse_targets
from cxpulse.settings.model import Settings, external_name, external_names
from cxpulse.settings.sources import CURRENT, Inputs
from cxpulse.settings.types import SettingsError, is_secret
from cxpulse.yamlfile import YamlFileError, read_yaml_mapping


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Build validated `Settings`: defaults < YAML file < `CXPULSE_*` environment < overrides.

    `overrides` (the command line) use the external names, like the file; `None`
    values are skipped (a flag not given). `env` defaults to `os.environ`;
    unknown `CXPULSE_*` variables and file keys are errors, because a typo in a
    name would otherwise be silently ignored.
    """
    environ = os.environ if env is None else env
    inputs = Inputs.collect(None if path is None else Path(path), environ, overrides or {})
    token = CURRENT.set(inputs)
    try:
        settings = Settings()
    except ValidationError as exc:
        raise SettingsError(error_line(exc.errors(include_url=False), inputs)) from None
    finally:
        CURRENT.reset(token)
    settings._origins = inputs.origins()
    return settings


def error_line(errors: list[ErrorDetails], inputs: Inputs) -> str:
    """The first error as one line naming the setting and its source."""
    err = errors[0]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})  # pydantic's own type for it
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if err["type"] == "settings":  # `model._fail`: a check between settings
        name = external_name(ctx["setting"])
        where = inputs.origin(name)
        for other in map(external_name, ctx["related"]):
            where += f"; {other}: {inputs.origin(other)}"
        return f"{name}: {ctx['text']} ({where}){more}"
    loc = err["loc"]
    name = str(loc[0]) if loc else "settings"
    path = name + "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in loc[1:])
    return f"{path}: {_problem(err, name)} ({inputs.origin(name)}){more}"


def _problem(err: ErrorDetails, name: str) -> str:
    """pydantic's error in our words; the input only when it is not a secret."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(name, external_names(), n=1)
        return "unknown setting" + (
            f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(external_names())}"
        )
    value = err["input"]
    if _is_secret(name):
        shown = "the value given"
    else:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    if kind == "value_error":  # our validators' own words; a secret's value masked anyway
        text = str(ctx["error"])
        return text.replace(str(value), "***") if _is_secret(name) and value else text
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{shown} is not an integer"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{shown} is below the minimum ({_bound(ctx)})"
    if kind in ("less_than_equal", "less_than"):
        return f"{shown} is above the maximum ({_bound(ctx)})"
    if kind in ("bool_parsing", "bool_type"):
        return f"expected true or false, got {shown}"
    if kind == "literal_error":
        return f"{shown} is not one of {ctx['expected']}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("string_type", "dict_type", "mapping_type", "tuple_type", "list_type"):
        what = {"string_type": "text", "tuple_type": "a list"}.get(kind, "a mapping")
        return f"expected {what}, got {'nothing' if value is None else type(value).__name__}"
    message = err["msg"]
    return f"{message[:1].lower()}{message[1:]}, got {shown}"


def _bound(ctx: Mapping[str, object]) -> str:
    ops = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return " ".join(f"{ops[k]} {v}" for k, v in ctx.items() if k in ops)


def _is_secret(name: str) -> bool:
    for field_name, info in Settings.model_fields.items():
        if name in (field_name, info.alias):
            return is_secret(info.annotation)
    return True  # an unknown name might be a misspelt password variable


def core_config(settings: Settings) -> CoreConfig:
    """The core's `CoreConfig` from worker settings (targets file included).

    The batch report builds its config from the same targets file, so the
    worker and `cxpulse report` agree on every KPI definition.
    """
    kwargs: dict[str, Any] = {  # `CoreConfig`'s keyword arguments, of several types
        "slice_ms": settings.slice_ms,
        "windows_ms": settings.windows_ms,
        "lateness_ms": settings.lateness_ms,
        "retention_ms": settings.retention_ms,
        # the forecast's silence reads the last hour, or all the state keeps when less
        "forecast_silence_reference_ms": min(
            CoreConfig.forecast_silence_reference_ms,
            settings.retention_ms - settings.retention_ms % settings.slice_ms,
        ),
        "max_event_ahead_ms": settings.max_event_ahead_ms,
        "top_n": {**DEFAULT_TOP_N, **settings.label_caps},
        "max_label_values": settings.max_label_values,
        "max_events_per_ticket": settings.max_events_per_ticket,
        "pack_idle_ms": settings.pack_idle_ms,
        "allowed_labels": {d: frozenset(v) for d, v in settings.allowed_labels.items()},
    }
    if settings.targets_file is not None:
        try:
            targets = load_targets_file(settings.targets_file)
        except TargetsError as exc:
            raise SettingsError(
                f"targets_file: {exc} ({settings.source_of('targets_file')})"
            ) from None
        kwargs["min_sample"] = targets.min_sample
        kwargs["evidence"] = targets.evidence()
        kwargs["frt_target_ms"] = round(targets.frt.target_seconds * 1000)
        kwargs["frt_target_by_priority"] = {
            k: round(v * 1000) for k, v in targets.frt.by_priority.items()
        }
    try:
        return CoreConfig(**kwargs)
    except ValueError as exc:  # a combination `Settings._check` does not know about
        raise SettingsError(f"KPI time model: {exc}") from None


def load_targets_file(path: str | Path) -> Targets:
    """Read a targets file: the one reader every command uses.

    Errors are one line naming the file and the key (YAML errors by line and
    column, without PyYAML's snippet of the line)."""
    p = Path(path)
    try:
        raw = read_yaml_mapping(p)
    except YamlFileError as exc:
        raise TargetsError(str(exc)) from None
    try:
        return parse_targets(raw)
    except TargetsError as exc:
        raise TargetsError(f"{p}: {exc}") from None
