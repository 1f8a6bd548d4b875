"""`Settings`: every knob of a worker (and of the exporter, replay, report), typed.

A field's name is the attribute the code reads; its alias, when it has one, is
the external name users write (`lateness` for `lateness_ms`: durations carry a
unit in the file, milliseconds in the code). Checks of one value are the
field's type and bounds (`types.py`); checks between values are `_check`,
each failing with the setting at fault (`_fail`). Loading and error messages:
`load.py`.
"""

from __future__ import annotations

import importlib.util
import re
import ssl
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeAlias, get_args

from pydantic import Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cxpulse.changelog.records import (
    DEFAULT_MAX_RECORD_BYTES,
    JOURNAL_SLOTS,
    MIN_MAX_RECORD_BYTES,
)
from cxpulse.core.config import CAPPED_DIMENSIONS
from cxpulse.core.durations import format_duration_ms as human
from cxpulse.core.durations import parse_duration_ms as ms
from cxpulse.settings.sources import CURRENT, Inputs, RawSource
from cxpulse.settings.types import (
    Caps,
    Duration,
    DurationOrZero,
    ExistingFile,
    Int,
    LabelLists,
    OptionalSecret,
    OptionalStr,
    Secret,
    SettingsError,
    Windows,
)

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
Store = Literal["rocksdb://", "memory://"]
Runtime = Literal["direct", "faust"]
#: producer compression codecs of the changelog (aiokafka's names; `none`: off)
Compression = Literal["none", "gzip", "lz4", "zstd"]
#: Keyword arguments of an aiokafka client (`security_protocol`, `ssl_context`,
#: `sasl_*`): values of several types, as aiokafka's own `**kwargs`.
ClientOptions: TypeAlias = dict[str, Any]
SECURITY_PROTOCOLS = get_args(SecurityProtocol)
SASL_MECHANISMS = get_args(SaslMechanism)
STORES = get_args(Store)
RUNTIMES = get_args(Runtime)
COMPRESSIONS = get_args(Compression)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _has_cramjam() -> bool:
    """Can aiokafka use lz4 and zstd here? (its codecs come from `cramjam`; looked
    up without importing aiokafka, which settings do not load)"""
    return importlib.util.find_spec("cramjam") is not None


def _fail(setting: str, message: str, *related: str) -> NoReturn:
    """A cross-field error. `setting` is the field at fault (its source is named),
    `related` the fields it was checked against (their sources are named too)."""
    raise PydanticCustomError(
        "settings", "{text}", {"text": message, "setting": setting, "related": related}
    )


def _read_secret_file(path: str) -> Secret:
    """The first line of a secret file (a trailing newline is not part of the secret).

    Errors name the path, never the content."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        _fail("sasl_password_file", f"cannot read {p}: {exc.strerror}")
    except UnicodeDecodeError:
        _fail("sasl_password_file", f"{p} is not UTF-8 text")
    lines = text.splitlines()
    if not lines or not lines[0]:
        _fail("sasl_password_file", f"{p} is empty (the secret is its first line)")
    return Secret(lines[0])


#: Settings refused on the command line: any user can read a process's
#: arguments (`ps`, /proc/<pid>/cmdline), so a secret there is disclosed.
SECRET_SETTINGS = {
    "sasl_password": "CXPULSE_SASL_PASSWORD or sasl_password_file",
    "zendesk_webhook_secret": "CXPULSE_ZENDESK_WEBHOOK_SECRET or the config file",
    "chatwoot_webhook_secret": "CXPULSE_CHATWOOT_WEBHOOK_SECRET or the config file",
    "freshdesk_webhook_password": "CXPULSE_FRESHDESK_WEBHOOK_PASSWORD or the config file",
    "zammad_webhook_secret": "CXPULSE_ZAMMAD_WEBHOOK_SECRET or the config file",
    "zendesk_api_token": "CXPULSE_ZENDESK_API_TOKEN or the config file",
}


def refuse_secret_on_command_line(name: str) -> None:
    """`--set sasl_password=...`: one line naming the setting and the safe ways."""
    if name in SECRET_SETTINGS:
        raise SettingsError(
            f"{name}: not accepted on the command line (any user can read it with ps); "
            f"use {SECRET_SETTINGS[name]}"
        )


class Settings(BaseSettings):
    """All knobs of one worker. Build with `load_settings` (file, environment, flags)."""

    model_config = SettingsConfigDict(
        extra="forbid",  # a misspelt name is an error, not a silently ignored key
        frozen=True,
        validate_default=False,  # defaults are trusted (durations are already in ms)
        hide_input_in_errors=True,  # a ValidationError printed anyway shows no password
        coerce_numbers_to_str=True,  # `group_id: 42` in YAML is the string "42"
        str_strip_whitespace=True,
        str_min_length=1,
    )

    # --- Kafka connection
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: OptionalStr = None
    #: file holding the SASL password (its first line; e.g. a mounted Kubernetes
    #: secret): keeps it out of `ps`, the environment and the config file
    sasl_password_file: ExistingFile = None
    sasl_password: OptionalSecret = None
    ssl_cafile: ExistingFile = None
    ssl_certfile: ExistingFile = None
    ssl_keyfile: ExistingFile = None
    # --- topics and group
    topic_tickets: str = "support.tickets"
    topic_surveys: str = "support.surveys"
    topic_deadletter: str = "support.deadletter"
    group_id: str = "cxpulse"
    #: faust table holding per-partition state; its changelog topic is
    #: `<group_id>-<state_table>-changelog`.
    state_table: str = "state"
    #: Replication factor of the changelog topic faust creates (1 on a single broker).
    changelog_replication: Int = Field(default=1, ge=1)
    #: Standby replicas of the state table kept warm on other workers.
    standby_replicas: Int = Field(default=0, ge=0)
    # --- KPI time model (passed to the core)
    windows_ms: Windows = Field(default=(ms("15m"), ms("1h"), ms("24h")), alias="windows")
    slice_ms: Duration = Field(default=ms("1m"), alias="slice")
    lateness_ms: DurationOrZero = Field(default=ms("5m"), alias="lateness")
    retention_ms: Duration = Field(default=ms("7d"), alias="retention")
    #: events stamped further ahead of their Kafka record timestamp are dead-lettered
    max_event_ahead_ms: Duration = Field(default=ms("1h"), alias="max_event_ahead")
    #: label value caps: dimension -> max distinct values before `other`
    label_caps: Caps = Field(default_factory=dict)
    #: memory guard against hostile input: per partition and dimension, at most
    #: this many distinct label values are ever admitted (first come), later
    #: newcomers aggregate as `other` (counted: cxpulse_label_values_capped_total)
    max_label_values: Int = Field(default=10_000, ge=1)
    #: static allow-list per dimension (team, channel, agent, touchpoint): any
    #: other value aggregates as `other` (counted). The only cap identical on
    #: every worker.
    allowed_labels: LabelLists = Field(default_factory=dict)
    #: events kept per ticket; a ticket's further events are dead-lettered as
    #: `ticket_event_cap` (bounds its state record and cost; docs/kpis.md)
    max_events_per_ticket: Int = Field(default=1000, ge=1, le=100_000)
    #: a ticket idle this long (its newest event behind the stream time) is kept packed:
    #: less memory, an unpack on its next event (`CoreConfig.pack_idle_ms`)
    pack_idle_ms: Duration = Field(default=ms("10m"), alias="pack_idle")
    targets_file: ExistingFile = None
    # --- serving
    metrics_host: str = "127.0.0.1"
    metrics_port: Int = Field(default=9464, ge=1, le=65535)
    web_enabled: bool = False
    web_port: Int = Field(default=6066, ge=1, le=65535)
    # --- processing
    #: `direct`: aiokafka batches straight into the core (the fast default);
    #: `faust`: a faust-streaming agent (see stream/cxpulse/worker/direct.py for why two).
    runtime: Runtime = "direct"
    #: direct runtime: each batch of a partition is one Kafka transaction of a
    #: transactional id owned by that partition, which fences a worker that
    #: lost the partition without noticing (needs transactions on the broker)
    transactional_writes: bool = True
    #: with `transactional_writes`: how long the broker lets a batch's transaction
    #: stay open before it aborts it. A worker killed inside a batch leaves its
    #: transaction open; the next transactional worker of that partition aborts it at
    #: once, but until one does (partitions not reassigned, a restart without
    #: transactions) read_committed readers, the exporters, wait at that point of the
    #: partition this long. 1 s to 15 min (the broker's transaction.max.timeout.ms by
    #: default); longer than a batch takes to apply and commit
    transaction_timeout_ms: Duration = Field(default=ms("1m"), alias="transaction_timeout")
    datadir: str = "./cxpulse-data"
    store: Store = "rocksdb://"
    #: a batch is at most this many messages; getmany returns early when fewer are
    #: waiting, so it only fills during catch-up, where larger batches write each
    #: dirty key once for more events (20,000: ~25 % faster than 5,000)
    batch_size: Int = Field(default=20000, ge=1)
    batch_timeout_ms: Duration = Field(default=ms("200ms"), alias="batch_timeout")
    # --- exporter (`cxpulse exporter`)
    #: the exporter evaluates every KPI when new committed state arrived, at most once
    #: per `eval_min_interval` (bounds the CPU under load; the latency floor), and
    #: every `eval_interval` without new state (the idle clock and freshness move on)
    eval_interval_ms: Duration = Field(default=ms("5s"), alias="eval_interval")
    eval_min_interval_ms: Duration = Field(default=ms("500ms"), alias="eval_min_interval")
    #: caught up and no stream time progress for this long: windows move with the wall clock
    idle_timeout_ms: DurationOrZero = Field(default=ms("1m"), alias="idle_timeout")
    session_timeout_ms: Duration = Field(default=ms("30s"), alias="session_timeout")
    heartbeat_interval_ms: Duration = Field(default=ms("3s"), alias="heartbeat_interval")
    rebalance_timeout_ms: Duration = Field(default=ms("1m"), alias="rebalance_timeout")
    log_level: str = "info"
    #: largest dead-letter record (bytes, envelope headers included); a rejected
    #: message whose copy would be larger is dead-lettered as a pointer (source
    #: topic/partition/offset, size, SHA-256: `cxpulse.core.deadletter.bounded`).
    #: The direct runtime also keeps under the dead-letter topic's max.message.bytes.
    #: At most the producer's max_request_size.
    deadletter_max_bytes: Int = Field(default=1_000_000, ge=4096, le=1_048_576)
    #: the broker refuses this worker's credentials (or TLS) while it runs, e.g.
    #: a password rotated on the broker: not ready at once, exit 77 after this long
    auth_failure_exit_after_ms: Duration = Field(
        default=ms("5m"), alias="auth_failure_exit_after"
    )
    #: how often a running worker or exporter opens one fresh connection to check
    #: that the broker still accepts its credentials (`cxpulse.kafka.access.AuthWatch`)
    auth_probe_interval_ms: Duration = Field(default=ms("15s"), alias="auth_probe_interval")
    #: largest state record the worker writes to the changelog (header, key, new
    #: and previous value): larger values are split into parts
    #: (`cxpulse.changelog.records`); at most the broker's default message.max.bytes
    #: and the producer's max_request_size (about 1 MB). The direct runtime also
    #: keeps under the changelog topic's max.message.bytes.
    max_record_bytes: Int = Field(
        default=DEFAULT_MAX_RECORD_BYTES, ge=MIN_MAX_RECORD_BYTES, le=1_000_000
    )
    #: producer compression of what the worker writes (changelog and dead letters):
    #: the broker stores the producer's batches as sent, so this divides the
    #: changelog's disk and replication bytes (bench/bench_changelog.py, stored
    #: bytes). zstd: the smallest for the least CPU (gzip, built into aiokafka,
    #: is about as small but costs ~10x the CPU on large batches); lz4 and zstd need the `cramjam`
    #: package (a dependency of cxpulse) in every reader too: the exporter and a
    #: worker restoring. A commit of one event compresses least.
    changelog_compression: Compression = "zstd"
    #: changelog format 4 (direct runtime with transactional_writes): a batch's
    #: small changes ride in its commit marker, which cycles through this many
    #: journal slots, and keyed records are written at a checkpoint at least once
    #: per this many commits (a trickle of single events then writes ~1.7 records
    #: per event instead of ~3.2); recovery reads at most this many markers.
    #: 0: format 3 (every change a keyed record), for exporters older than format 4
    changelog_journal_slots: Int = Field(default=JOURNAL_SLOTS, ge=0, le=4096)
    #: exporter-toolkit web-config file (TLS and basic auth for /metrics and every
    #: HTTP endpoint of the process; `cxpulse.web.server`); none: plain HTTP
    web_config_file: ExistingFile = None

    # --- helpdesk gateway (`cxpulse ingest`, `cxpulse map`: docs/helpdesks.md)
    #: raw webhook deliveries as received (bytes + selected headers), keyed by ticket
    topic_raw_deliveries: str = "support.raw-deliveries"
    #: where `cxpulse ingest` listens for webhooks (and serves /metrics, /healthz);
    #: TLS through web_config_file, as every HTTP endpoint of cxpulse
    ingest_host: str = "127.0.0.1"
    ingest_port: Int = Field(default=8088, ge=1, le=65535)
    #: larger webhook bodies are refused with 413 (vendors send a few KiB)
    ingest_max_body_bytes: Int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    #: signed deliveries (Zendesk, Chatwoot) stamped further from now are refused
    #: as stale (401): a captured request cannot be replayed later than this
    ingest_signature_window_ms: Duration = Field(default=ms("5m"), alias="ingest_signature_window")
    #: a delivery Kafka has not acknowledged within this long is answered 503
    #: (the vendor retries); below every vendor's own request timeout (10 s+)
    ingest_produce_timeout_ms: Duration = Field(default=ms("8s"), alias="ingest_produce_timeout")
    #: per-vendor webhook credentials; a vendor without one is refused (401). Several
    #: signing secrets (one per Zendesk webhook) separated by commas
    zendesk_webhook_secret: OptionalSecret = None
    chatwoot_webhook_secret: OptionalSecret = None
    #: Freshdesk signs nothing: its webhook action sends this as the basic-auth password
    freshdesk_webhook_password: OptionalSecret = None
    zammad_webhook_secret: OptionalSecret = None
    #: `cxpulse import zendesk --poll`: API token auth (basic `{email}/token:{token}`)
    zendesk_api_email: OptionalStr = None
    zendesk_api_token: OptionalSecret = None
    #: `cxpulse map`: deployment mapping (group ids -> teams, statuses, channels, bots)
    mapping_file: ExistingFile = None
    map_group_id: str = "cxpulse-map"
    #: compacted topic of the map stage's last Zammad snapshot per ticket
    topic_map_snapshots: str = "support.map-snapshots"

    #: external name -> where its value came from (`load_settings` fills it)
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest first: keyword arguments, command line, environment, file (then defaults).

        pydantic-settings' own environment, dotenv and secrets-dir sources are left
        out: `sources.py` says why ours replace them."""
        inputs = CURRENT.get() or Inputs()
        return (
            init_settings,
            RawSource(settings_cls, inputs.cli),
            RawSource(settings_cls, inputs.env),
            RawSource(settings_cls, inputs.file),
        )

    def source_of(self, name: str) -> str:
        """Where setting `name` (external) came from: `set by environment variable ...`."""
        return self._origins.get(name, "default value")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        """Checks between settings; each error names the setting at fault."""
        if self.sasl_password_file is not None:
            if self.sasl_password is not None:
                _fail("sasl_password_file", "set either sasl_password_file or sasl_password, "
                      "not both", "sasl_password")  # fmt: skip
            # frozen model: the one place a value is derived from another
            object.__setattr__(self, "sasl_password", _read_secret_file(self.sasl_password_file))
        if self.auth_failure_exit_after_ms < 1000:
            _fail("auth_failure_exit_after_ms", "must be at least 1s")
        if self.security_protocol.startswith("SASL"):
            for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
                if getattr(self, name) is None:
                    _fail(name, f"required with security_protocol {self.security_protocol}",
                          "security_protocol")  # fmt: skip
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            _fail("ssl_certfile", "ssl_certfile and ssl_keyfile go together", "ssl_keyfile")
        for hostport in self.bootstrap_servers.split(","):
            host, sep, port = hostport.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                _fail("bootstrap_servers", f"{hostport.strip()!r} is not host:port")
        for name in ("topic_tickets", "topic_surveys", "topic_deadletter", "group_id",
                     "state_table", "topic_raw_deliveries", "map_group_id",
                     "topic_map_snapshots"):  # fmt: skip
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", getattr(self, name)):
                _fail(name, f"{getattr(self, name)!r} has characters Kafka refuses")
        if len({self.topic_tickets, self.topic_surveys, self.topic_deadletter}) != 3:
            _fail("topic_deadletter", "tickets, surveys and deadletter topics must differ",
                  "topic_tickets", "topic_surveys")  # fmt: skip
        if self.runtime == "direct" and self.standby_replicas:
            _fail("standby_replicas", "standby replicas need runtime: faust", "runtime")
        if self.runtime == "direct" and self.web_enabled:
            _fail("web_enabled", "faust's web server needs runtime: faust", "runtime")
        if self.web_enabled and self.web_port == self.metrics_port:
            _fail("web_port", "equals metrics_port", "metrics_port")
        for w in self.windows_ms:
            if w % self.slice_ms:
                _fail("windows_ms", f"{human(w)} is not a whole number of slices "
                      f"({human(self.slice_ms)})", "slice_ms")  # fmt: skip
        longest = max(self.windows_ms)
        if self.lateness_ms >= longest:
            _fail("lateness_ms", f"{human(self.lateness_ms)} must be shorter than the longest "
                  f"window ({human(longest)})", "windows_ms")  # fmt: skip
        if self.retention_ms < longest + self.lateness_ms:
            _fail("retention_ms", f"{human(self.retention_ms)} must cover the longest window "
                  f"plus the lateness ({human(longest + self.lateness_ms)})",
                  "windows_ms", "lateness_ms")  # fmt: skip
        if not ms("1s") <= self.transaction_timeout_ms <= ms("15m"):
            _fail("transaction_timeout_ms", f"{human(self.transaction_timeout_ms)} is not between "
                  "1s and 15m (the broker's transaction.max.timeout.ms by default)")  # fmt: skip
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            _fail("heartbeat_interval_ms", "must be at most a third of session_timeout "
                  f"({human(self.session_timeout_ms)})", "session_timeout_ms")  # fmt: skip
        for dim in self.allowed_labels:
            if dim not in CAPPED_DIMENSIONS:
                _fail("allowed_labels", f"{dim!r} is not a capped dimension "
                      f"({', '.join(CAPPED_DIMENSIONS)})")  # fmt: skip
        for dim in self.label_caps:
            if dim not in CAPPED_DIMENSIONS:
                _fail("label_caps", f"{dim!r} is not a capped dimension "
                      f"({', '.join(CAPPED_DIMENSIONS)})")  # fmt: skip
        if self.changelog_compression in ("lz4", "zstd") and not _has_cramjam():
            _fail("changelog_compression", f"{self.changelog_compression} needs the "
                  "cramjam package (pip install cramjam) in every worker and exporter")  # fmt: skip
        if self.log_level.lower() not in LOG_LEVELS:
            _fail("log_level", f"{self.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        return self

    def __repr__(self) -> str:
        return f"Settings({self.describe()})"

    __str__ = __repr__

    def describe(self) -> str:
        """One line for the start-up log: every setting, secrets masked."""
        parts = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            parts.append(f"{name}={'***' if isinstance(value, Secret) else repr(value)}")
        return ", ".join(parts)

    @property
    def topics(self) -> dict[str, str]:
        """Role -> topic name for the two input topics."""
        return {"tickets": self.topic_tickets, "surveys": self.topic_surveys}

    @property
    def changelog_topic(self) -> str:
        return f"{self.group_id}-{self.state_table}-changelog"

    def producer_compression(self) -> str | None:
        """`compression_type` of the worker's producers (aiokafka and faust)."""
        return None if self.changelog_compression == "none" else self.changelog_compression

    def aiokafka_security(self) -> ClientOptions:
        """Connection keyword arguments for a plain aiokafka client (admin, lag probe)."""
        kwargs: ClientOptions = {"security_protocol": self.security_protocol}
        if self.security_protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = self.ssl_context()
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = (
                self.sasl_password.reveal() if self.sasl_password else None
            )
        return kwargs

    def ssl_context(self) -> ssl.SSLContext:
        # aiokafka only when TLS is configured: loading settings (every command,
        # `--help` included) does not import it
        from aiokafka.helpers import create_ssl_context

        context: ssl.SSLContext = create_ssl_context(  # untyped in aiokafka
            cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
        )
        return context


def external_name(field: str) -> str:
    """The name users write for a field (`lateness` for `lateness_ms`)."""
    info = Settings.model_fields.get(field)
    return info.alias if info is not None and info.alias else field


def external_names() -> list[str]:
    """Names accepted in the YAML file and (upper-cased, prefixed) the environment."""
    return sorted(external_name(name) for name in Settings.model_fields)

