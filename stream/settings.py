"""Worker configuration: defaults < YAML file < `CXPULSE_*` environment < CLI.

Every setting is a field of `Settings`; the YAML file uses the same names
(flat mapping), the environment the upper-cased name with the `CXPULSE_`
prefix (`CXPULSE_BOOTSTRAP_SERVERS`, `CXPULSE_SASL_PASSWORD`...).

Why this shape:

* A wrong value must stop the worker at start with a message that names the
  setting (`SettingsError("batch_size: ...")`), not surface minutes later as a
  faust traceback on the first rebalance. So everything is parsed and checked
  here, once, and the rest of the code receives typed values.
* Secrets (SASL password, the key file path is not secret but the password
  is) are wrapped in `Secret`, whose `repr`/`str` never show the value, and
  `Settings.__repr__`/`describe()` mask them: settings get logged at start.
* Durations are written with a unit (`500ms`, `30s`, `15m`, `1h`, `1d`) and
  held as integer milliseconds like event time in the core, so a bare `15`
  (seconds? minutes?) is refused instead of guessed.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stream.core.config import DEFAULT_TOP_N, CoreConfig
from stream.core.targets import Targets, TargetsError, parse_targets

ENV_PREFIX = "CXPULSE_"


class SettingsError(ValueError):
    """A setting is wrong; the message starts with the setting's name."""


class Secret:
    """A string that never shows itself in logs, reprs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION_RE = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")


def parse_duration_ms(name: str, value: object) -> int:
    """`"15m"` -> 900000. Units are required: a bare number is ambiguous."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SettingsError(f"{name}: expected a duration like '15m', got {type(value).__name__}")
    if isinstance(value, int):
        raise SettingsError(f"{name}: duration {value!r} needs a unit (ms, s, m, h, d)")
    match = _DURATION_RE.match(value)
    if match is None:
        raise SettingsError(f"{name}: {value!r} is not a duration like '500ms', '30s', '15m'")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def format_duration_ms(ms: int) -> str:
    """Inverse of `parse_duration_ms`, with the largest exact unit (for labels/logs)."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
STORES = ("rocksdb://", "memory://")
RUNTIMES = ("direct", "faust")


@dataclass(frozen=True)
class Settings:
    """All knobs of one worker. Build with `load_settings`, which validates."""

    # --- Kafka connection
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # --- topics and group
    topic_tickets: str = "support.tickets"
    topic_surveys: str = "support.surveys"
    topic_deadletter: str = "support.deadletter"
    group_id: str = "cxpulse"
    #: faust table holding per-partition state; its changelog topic is
    #: `<group_id>-<state_table>-changelog`.
    state_table: str = "state"
    #: Replication factor of the changelog topic faust creates (1 on a single broker).
    changelog_replication: int = 1
    #: Standby replicas of the state table kept warm on other workers.
    standby_replicas: int = 0
    # --- KPI time model (passed to the core)
    windows_ms: tuple[int, ...] = (900_000, 3_600_000, 86_400_000)
    slice_ms: int = 60_000
    lateness_ms: int = 300_000
    retention_ms: int = 7 * 86_400_000
    #: events stamped further ahead of their Kafka record timestamp are dead-lettered
    max_event_ahead_ms: int = 3_600_000
    #: events kept per ticket; a ticket's further events are dead-lettered as
    #: `ticket_event_cap` (bounds its state record and cost; docs/kpis.md)
    max_events_per_ticket: int = 1000
    #: label value caps: dimension -> max distinct values before `other`
    label_caps: Mapping[str, int] = field(default_factory=dict)
    targets_file: str | None = None
    # --- serving
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    web_enabled: bool = False
    web_port: int = 6066
    # --- processing
    #: `direct`: aiokafka batches straight into the core (the fast default);
    #: `faust`: a faust-streaming agent (see stream/worker/direct.py for why two).
    runtime: str = "direct"
    #: direct runtime: each batch of a partition is one Kafka transaction of a
    #: transactional id owned by that partition, which fences a worker that
    #: lost the partition without noticing (needs transactions on the broker)
    transactional_writes: bool = True
    datadir: str = "./cxpulse-data"
    store: str = "rocksdb://"
    #: a batch is at most this many messages; getmany returns early when fewer are
    #: waiting, so it only fills during catch-up, where larger batches write each
    #: dirty key once for more events (20,000: ~25 % faster than 5,000)
    batch_size: int = 20000
    batch_timeout_ms: int = 200
    # --- exporter (`cxpulse exporter`)
    #: how often the exporter evaluates every KPI (scrapes read the last evaluation)
    eval_interval_ms: int = 5_000
    #: caught up and no stream time progress for this long: windows move with the wall clock
    idle_timeout_ms: int = 60_000
    session_timeout_ms: int = 30_000
    heartbeat_interval_ms: int = 3_000
    rebalance_timeout_ms: int = 60_000
    log_level: str = "info"
    #: largest dead-letter record (bytes, envelope headers included); a rejected
    #: message whose copy would be larger is dead-lettered as a pointer (source
    #: topic/partition/offset, size, SHA-256: `stream.core.deadletter.bounded`).
    #: The direct runtime also keeps under the dead-letter topic's max.message.bytes.
    deadletter_max_bytes: int = 1_000_000
    #: exporter-toolkit web-config file (TLS and basic auth for /metrics and every
    #: HTTP endpoint of the process; `stream.web.server`); none: plain HTTP
    web_config_file: str | None = None

    def __repr__(self) -> str:
        return f"Settings({self.describe()})"

    def describe(self) -> str:
        """One line for the start-up log: every setting, secrets masked."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "sasl_password" and value is not None:
                value = "***"
            parts.append(f"{f.name}={value!r}")
        return ", ".join(parts)

    @property
    def topics(self) -> dict[str, str]:
        """Role -> topic name for the two input topics."""
        return {"tickets": self.topic_tickets, "surveys": self.topic_surveys}

    @property
    def changelog_topic(self) -> str:
        return f"{self.group_id}-{self.state_table}-changelog"

    def aiokafka_security(self) -> dict[str, Any]:
        """Connection keyword arguments for a plain aiokafka client (admin, lag probe)."""
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = self.ssl_context()
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = (
                self.sasl_password.reveal() if self.sasl_password else None
            )
        return kwargs

    def ssl_context(self) -> Any:
        from aiokafka.helpers import create_ssl_context

        return create_ssl_context(
            cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
        )


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_DURATIONS = {
    "slice_ms": "slice",
    "lateness_ms": "lateness",
    "retention_ms": "retention",
    "max_event_ahead_ms": "max_event_ahead",
    "batch_timeout_ms": "batch_timeout",
    "eval_interval_ms": "eval_interval",
    "idle_timeout_ms": "idle_timeout",
    "session_timeout_ms": "session_timeout",
    "heartbeat_interval_ms": "heartbeat_interval",
    "rebalance_timeout_ms": "rebalance_timeout",
}
#: External (file/env) name -> field name. Durations are written without `_ms`.
_ALIASES = {ext: name for name, ext in _DURATIONS.items()} | {"windows": "windows_ms"}
_INTS: tuple[str, ...] = (
    "batch_size", "metrics_port", "web_port", "changelog_replication", "standby_replicas",
)
_INTS += ("deadletter_max_bytes", "max_events_per_ticket")
_BOOLS = ("web_enabled", "transactional_writes")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def external_names() -> list[str]:
    """Names accepted in the YAML file and (upper-cased, prefixed) the environment."""
    inverse = {v: k for k, v in _ALIASES.items()}
    return sorted(inverse.get(name, name) for name in _FIELDS)


def _parse_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise SettingsError(f"{name}: expected an integer, got a boolean")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise SettingsError(f"{name}: {value!r} is not an integer") from None
    if not isinstance(value, int):
        raise SettingsError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise SettingsError(f"{name}: {value} is out of range ({bound})")
    return value


def _parse_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingsError(f"{name}: expected true/false, got {value!r}")


def _parse_str(name: str, value: object, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise SettingsError(f"{name}: expected a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        if optional:
            return None
        raise SettingsError(f"{name}: must not be empty")
    return text


def _parse_windows(name: str, value: object) -> tuple[int, ...]:
    items: list[object]
    if isinstance(value, str):
        items = [v for v in value.split(",") if v.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise SettingsError(f"{name}: expected a list like [15m, 1h, 24h]")
    if not items:
        raise SettingsError(f"{name}: at least one window is needed")
    windows = tuple(parse_duration_ms(name, v) for v in items)
    if len(set(windows)) != len(windows):
        raise SettingsError(f"{name}: windows repeat")
    return tuple(sorted(windows))


def _parse_caps(name: str, value: object) -> dict[str, int]:
    if isinstance(value, str):  # env form: team=50,agent=200
        pairs: dict[str, object] = {}
        for part in value.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise SettingsError(f"{name}: {part.strip()!r} is not dimension=N")
            k, v = part.split("=", 1)
            pairs[k.strip()] = v
        value = pairs
    if not isinstance(value, Mapping):
        raise SettingsError(f"{name}: expected a mapping dimension -> N")
    return {str(k): _parse_int(f"{name}.{k}", v, 1) for k, v in value.items()}


def _parse_one(name: str, ext: str, value: object) -> object:
    """Parse a raw value (from YAML or env) of field `name`; errors use `ext`."""
    if name in _DURATIONS:
        return parse_duration_ms(ext, value)
    if name == "windows_ms":
        return _parse_windows(ext, value)
    if name in _INTS:
        return _parse_int(ext, value, 0 if name == "standby_replicas" else 1)
    if name in _BOOLS:
        return _parse_bool(ext, value)
    if name == "label_caps":
        return _parse_caps(ext, value)
    if name == "sasl_password":
        text = _parse_str(ext, value, optional=True)
        return Secret(text) if text is not None else None
    optional = _FIELDS[name].default is None
    return _parse_str(ext, value, optional=optional)


def _validate(s: Settings) -> None:
    """Cross-field checks; each error names the setting at fault."""
    if s.security_protocol not in SECURITY_PROTOCOLS:
        raise SettingsError(
            f"security_protocol: {s.security_protocol!r} is not one of {SECURITY_PROTOCOLS}"
        )
    if s.security_protocol.startswith("SASL"):
        if s.sasl_mechanism not in SASL_MECHANISMS:
            raise SettingsError(
                f"sasl_mechanism: {s.sasl_mechanism!r} is not one of {SASL_MECHANISMS} "
                f"(needed by security_protocol {s.security_protocol})"
            )
        if not s.sasl_username:
            raise SettingsError("sasl_username: required with a SASL security_protocol")
        if s.sasl_password is None:
            raise SettingsError("sasl_password: required with a SASL security_protocol")
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "targets_file", "web_config_file"):
        path = getattr(s, name)
        if path is not None and not Path(path).is_file():
            raise SettingsError(f"{name}: no such file: {path}")
    if (s.ssl_certfile is None) != (s.ssl_keyfile is None):
        raise SettingsError("ssl_certfile: ssl_certfile and ssl_keyfile go together")
    for name in ("bootstrap_servers",):
        for hostport in getattr(s, name).split(","):
            host, sep, port = hostport.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise SettingsError(f"{name}: {hostport.strip()!r} is not host:port")
    topics = [s.topic_tickets, s.topic_surveys, s.topic_deadletter]
    if len(set(topics)) != 3:
        raise SettingsError("topic_deadletter: tickets, surveys and deadletter topics must differ")
    for name in ("topic_tickets", "topic_surveys", "topic_deadletter", "group_id", "state_table"):
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", getattr(s, name)):
            raise SettingsError(f"{name}: {getattr(s, name)!r} has characters Kafka refuses")
    if s.runtime not in RUNTIMES:
        raise SettingsError(f"runtime: {s.runtime!r} is not one of {RUNTIMES}")
    if s.runtime == "direct" and s.standby_replicas:
        raise SettingsError("standby_replicas: standby replicas need runtime: faust")
    if s.runtime == "direct" and s.web_enabled:
        raise SettingsError("web_enabled: faust's web server needs runtime: faust")
    if s.store not in STORES:
        raise SettingsError(f"store: {s.store!r} is not one of {STORES}")
    for port_name in ("metrics_port", "web_port"):
        if getattr(s, port_name) > 65535:
            raise SettingsError(f"{port_name}: {getattr(s, port_name)} is not a port")
    if s.web_enabled and s.web_port == s.metrics_port:
        raise SettingsError("web_port: equals metrics_port")
    if s.slice_ms <= 0:
        raise SettingsError("slice: must be positive")
    for w in s.windows_ms:
        if w % s.slice_ms:
            raise SettingsError(
                f"windows: {w} ms is not a whole number of slices ({s.slice_ms} ms)"
            )
    if s.retention_ms < max(s.windows_ms) + s.lateness_ms:
        raise SettingsError("retention: must cover the longest window plus the lateness")
    if s.heartbeat_interval_ms * 3 > s.session_timeout_ms:
        raise SettingsError("heartbeat_interval: must be at most a third of session_timeout")
    if s.batch_timeout_ms <= 0:
        raise SettingsError("batch_timeout: must be positive")
    if s.lateness_ms >= max(s.windows_ms):
        raise SettingsError(
            f"lateness: {s.lateness_ms // 1000}s must be shorter than the longest window "
            f"({max(s.windows_ms) // 1000}s)"
        )
    if s.eval_interval_ms <= 0:
        raise SettingsError("eval_interval: must be positive")
    if s.idle_timeout_ms < 0:
        raise SettingsError("idle_timeout: must be >= 0")
    if s.max_event_ahead_ms <= 0:
        raise SettingsError("max_event_ahead: must be positive")
    if not 1 <= s.max_events_per_ticket <= 100_000:
        raise SettingsError("max_events_per_ticket: must be 1..100000")
    if not 4096 <= s.deadletter_max_bytes <= 1_048_576:
        raise SettingsError(
            "deadletter_max_bytes: must be 4096..1048576 (the producer's max_request_size)"
        )
    if s.log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise SettingsError(f"log_level: {s.log_level!r} is not a log level")


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Build validated `Settings` from a YAML file, the environment and overrides.

    `overrides` use the external names (like the file) and win over all.
    `env` defaults to `os.environ`; unknown `CXPULSE_*` variables are an error,
    because a typo in a variable name would otherwise be silently ignored.
    """
    raw: dict[str, tuple[str, object]] = {}  # field -> (external name, raw value)

    def put(ext: str, value: object, where: str) -> None:
        name = _ALIASES.get(ext, ext)
        if name not in _FIELDS or ext in _DURATIONS or ext == "windows_ms":
            raise SettingsError(f"{ext}: unknown setting ({where}); known: {external_names()}")
        raw[name] = (ext, value)

    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"config: cannot read {p}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise SettingsError(f"config: {p} is not valid YAML: {yaml_error_text(exc)}") from None
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise SettingsError(f"config: {p} must hold a mapping of setting: value")
        for key, value in data.items():
            put(str(key), value, f"file {p}")
    environ = os.environ if env is None else env
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key not in _IGNORED_ENV:
            put(key[len(ENV_PREFIX) :].lower(), value, f"environment {key}")
    for key, value in (overrides or {}).items():
        if value is not None:
            put(key, value, "command line")
    values = {name: _parse_one(name, ext, value) for name, (ext, value) in raw.items()}
    settings = Settings(**values)  # type: ignore[arg-type]
    _validate(settings)
    return settings


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """Where and what, without PyYAML's snippet of the offending line.

    `str(exc)` quotes the line it choked on, which in a settings file is as
    likely as not the `sasl_password:` line: printed to a terminal or a log
    collector, that leaks the secret. The line and column are enough to find it.
    """
    mark = getattr(exc, "problem_mark", None)
    problem = str(getattr(exc, "problem", None) or type(exc).__name__)
    # a few problems quote a token of the file ("found undefined alias 'x'":
    # a password starting with `*`); keep single characters, hide the rest
    problem = re.sub(r"'[^'\s]{2,}'", "'...'", problem)
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


#: `CXPULSE_*` variables that are not settings (the config file path itself).
_IGNORED_ENV = frozenset({"CXPULSE_CONFIG"})


def core_config(settings: Settings) -> CoreConfig:
    """The core's `CoreConfig` from worker settings (targets file included).

    The batch report builds its config from the same targets file, so the
    worker and `cxpulse report` agree on every KPI definition.
    """
    kwargs: dict[str, Any] = {
        "slice_ms": settings.slice_ms,
        "windows_ms": settings.windows_ms,
        "lateness_ms": settings.lateness_ms,
        "retention_ms": settings.retention_ms,
        "max_event_ahead_ms": settings.max_event_ahead_ms,
        "max_events_per_ticket": settings.max_events_per_ticket,
        "top_n": {**DEFAULT_TOP_N, **settings.label_caps},
    }
    if settings.targets_file is not None:
        try:
            targets = load_targets_file(settings.targets_file)
        except TargetsError as exc:
            raise SettingsError(f"targets_file: {exc}") from None
        kwargs["min_sample"] = targets.min_sample
        kwargs["frt_target_ms"] = round(targets.frt.target_seconds * 1000)
        kwargs["frt_target_by_priority"] = {
            k: round(v * 1000) for k, v in targets.frt.by_priority.items()
        }
    try:
        return CoreConfig(**kwargs)
    except ValueError as exc:  # a combination `_validate` does not know about
        raise SettingsError(f"KPI time model: {exc}") from None


def load_targets_file(path: str | Path) -> Targets:
    """Read a targets file: the one reader every command uses.

    Errors are one line naming the file and the key (YAML errors by line and
    column, without PyYAML's snippet of the line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetsError(f"{p}: cannot read it: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise TargetsError(f"{p}: not valid YAML: {yaml_error_text(exc)}") from None
    if not isinstance(raw, Mapping):
        raise TargetsError(f"{p}: must be a mapping of settings, got {type(raw).__name__}")
    try:
        return parse_targets(raw)
    except TargetsError as exc:
        raise TargetsError(f"{p}: {exc}") from None
