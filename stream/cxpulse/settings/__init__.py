"""Worker configuration: defaults < YAML file < `CXPULSE_*` environment < command line.

Every setting is a field of `Settings` (`model.py`). The YAML file uses the
external names (a flat mapping), the environment the upper-cased name with the
`CXPULSE_` prefix (`CXPULSE_BOOTSTRAP_SERVERS`, `CXPULSE_LATENESS`), the
command line `--set name=value` or a flag. Durations are written with a unit
(`500ms`, `30s`, `15m`, `1h30m`, `1d`: `cxpulse.core.durations`, the one format
of the project) and held as integer milliseconds in `*_ms` fields; a bare `15`
is refused rather than guessed.

Why pydantic-settings (pydantic v2) rather than the hand-written parser it
replaces: it is maintained and widely used, each setting's parsing and bounds
are its declared type (`types.py`) instead of a parse function per kind, its
errors carry the setting's location, and sources are pluggable
(`Settings.settings_customise_sources`). We add what it does not do for us:
sources that remember where each value came from (`sources.py`), so every
error is one line naming the setting *and* its source (`load.py`); unknown
`CXPULSE_*` variables and file keys as errors; YAML errors that never quote
the offending line (it may hold the password).

A wrong value stops the process at start with that line (exit 2), never as a
traceback minutes later. Secrets (`sasl_password`) are `Secret`: `repr`,
`describe()` and errors never show them; `.reveal()` where they are used.

Adding a setting is one field of `Settings` in `model.py` (its name is the file
key and, upper-cased with `CXPULSE_`, the variable), plus a row of the README
table and a test. By kind:

    max_record_bytes: Int = Field(default=1_000_000, ge=1024, le=10_000_000)
    auth_failure_exit_after_ms: Duration = Field(
        default=ms("5m"), alias="auth_failure_exit_after")  # `_ms` in code only
    sasl_password_file: ExistingFile = None  # must exist when set
    label_caps: Caps = Field(default_factory=dict)  # name -> positive int

`DurationOrZero` where `0s` means none. A mapping of another value type (say
dimension -> list of label values) is one more `Annotated` type in `types.py`:
the value type plus a `BeforeValidator` reading the one-line form used in the
environment. A check against other settings is a line in `Settings._check`:
`_fail("field", "what is wrong", "other_field")`; the error then names both
fields' sources.
"""

from cxpulse.changelog.records import MIN_MAX_RECORD_BYTES
from cxpulse.core.durations import format_duration_ms
from cxpulse.settings.load import core_config, error_line, load_settings, load_targets_file
from cxpulse.settings.model import (
    RUNTIMES,
    SASL_MECHANISMS,
    SECURITY_PROTOCOLS,
    STORES,
    Settings,
    refuse_secret_on_command_line,
)
from cxpulse.settings.model import external_names as external_names
from cxpulse.settings.sources import ENV_PREFIX
from cxpulse.settings.types import Secret, SettingsError, parse_duration_ms

__all__ = [
    "ENV_PREFIX",
    "MIN_MAX_RECORD_BYTES",
    "RUNTIMES",
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "STORES",
    "Secret",
    "Settings",
    "SettingsError",
    "core_config",
    "error_line",
    "external_names",
    "format_duration_ms",
    "load_settings",
    "load_targets_file",
    "parse_duration_ms",
    "refuse_secret_on_command_line",
]
