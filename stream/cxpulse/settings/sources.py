"""Where setting values come from: the YAML file, `CXPULSE_*` variables, the command line.

Each source is a pydantic-settings source holding raw values by external name
(`lateness: 2d`), and remembers where each came from, so an error can say
"set by environment variable CXPULSE_LATENESS" rather than only "lateness".

Why our own sources rather than pydantic-settings' `EnvSettingsSource` and
`YamlConfigSettingsSource`: an unknown `CXPULSE_*` variable must be an error
(theirs ignore it), a field's alias must take the prefix (`CXPULSE_LATENESS`
for `lateness_ms`, theirs would read `LATENESS`), the environment is a
mapping the caller passes (tests, subprocesses), and a YAML syntax error must
not quote the offending line (`cxpulse.yamlfile`). Each source is a dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from cxpulse.settings.types import SettingsError
from cxpulse.yamlfile import YamlFileError, read_yaml_mapping

ENV_PREFIX = "CXPULSE_"
#: `CXPULSE_*` variables that are not settings (the config file path itself).
IGNORED_ENV = frozenset({"CXPULSE_CONFIG"})


@dataclass(frozen=True)
class Inputs:
    """The raw values of one `load_settings` call, by source, keyed by external name."""

    file: Mapping[str, object] = field(default_factory=dict)
    file_path: str = ""
    env: Mapping[str, object] = field(default_factory=dict)
    #: external name -> the variable it was read from (`lateness` -> `CXPULSE_LATENESS`)
    env_names: Mapping[str, str] = field(default_factory=dict)
    cli: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def collect(
        cls, path: str | Path | None, environ: Mapping[str, str], overrides: Mapping[str, object]
    ) -> Inputs:
        env_names = {
            key[len(ENV_PREFIX) :].lower(): key
            for key in environ
            if key.startswith(ENV_PREFIX) and key not in IGNORED_ENV
        }
        return cls(
            file=read_yaml_settings(Path(path)) if path is not None else {},
            file_path=str(path or ""),
            env={name: environ[key] for name, key in env_names.items()},
            env_names=env_names,
            cli={k: v for k, v in overrides.items() if v is not None},
        )

    def origin(self, name: str) -> str:
        """Where the value of setting `name` (external) came from, highest source first."""
        if name in self.cli:
            return "set on the command line"
        if name in self.env:
            return f"set by environment variable {self.env_names[name]}"
        if name in self.file:
            return f"set in {self.file_path}"
        return "default value"

    def origins(self) -> dict[str, str]:
        return {name: self.origin(name) for name in {*self.file, *self.env, *self.cli}}


#: The inputs of the `load_settings` call in progress: `Settings.settings_customise_sources`
#: is a classmethod pydantic-settings calls with no way to pass them. Outside a call,
#: `Settings(...)` sees only its defaults and keyword arguments.
CURRENT: ContextVar[Inputs | None] = ContextVar("cxpulse_settings_inputs", default=None)


class RawSource(PydanticBaseSettingsSource):
    """A pydantic-settings source over a dict of raw values (one of `Inputs`)."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, object]) -> None:
        super().__init__(settings_cls)
        self.values = dict(values)

    # `Any` in both signatures: pydantic-settings' own, which these override
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # pydantic-settings only calls this from sources that look fields up one by one
        return self.values.get(field.alias or field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


def read_yaml_settings(path: Path) -> dict[str, object]:
    """The settings file: a flat mapping `name: value`. Errors name the file."""
    try:
        return read_yaml_mapping(path)
    except YamlFileError as exc:
        raise SettingsError(f"config: {exc}") from None
