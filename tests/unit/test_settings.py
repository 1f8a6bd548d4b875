"""Settings: precedence, parsing, and errors that name the setting at fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cxpulse.settings import (
    Secret,
    Settings,
    SettingsError,
    core_config,
    external_names,
    format_duration_ms,
    load_settings,
    parse_duration_ms,
)
from cxpulse.worker.app import create_app


def test_defaults_are_valid_and_documented_values() -> None:
    s = load_settings(env={})
    assert s.topic_tickets == "support.tickets"
    assert s.windows_ms == (900_000, 3_600_000, 86_400_000)
    assert s.slice_ms == 60_000 and s.lateness_ms == 300_000
    assert s.store == "rocksdb://" and s.web_enabled is False


def test_precedence_file_env_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "w.yaml"
    cfg.write_text("group_id: from-file\nbatch_size: 100\nwindows: [1h, 15m]\nslice: 30s\n")
    env = {"CXPULSE_GROUP_ID": "from-env", "CXPULSE_METRICS_PORT": "9999"}
    s = load_settings(cfg, env=env, overrides={"metrics_port": "9100", "datadir": None})
    assert s.group_id == "from-env"
    assert s.batch_size == 100
    assert s.metrics_port == 9100
    assert s.windows_ms == (900_000, 3_600_000)
    assert s.slice_ms == 30_000


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"CXPULSE_BATCH_SIZE": "lots"}, "batch_size"),
        ({"CXPULSE_BATCH_SIZE": "0"}, "batch_size"),
        ({"CXPULSE_SLICE": "60"}, "slice"),
        ({"CXPULSE_LATENESS": "5 minutes"}, "lateness"),
        ({"CXPULSE_STORE": "redis://"}, "store"),
        ({"CXPULSE_WEB_ENABLED": "maybe"}, "web_enabled"),
        ({"CXPULSE_BOOTSTRAP_SERVERS": "localhost"}, "bootstrap_servers"),
        ({"CXPULSE_SECURITY_PROTOCOL": "TLS"}, "security_protocol"),
        ({"CXPULSE_SECURITY_PROTOCOL": "SASL_SSL"}, "sasl_mechanism"),
        ({"CXPULSE_TOPIC_TICKETS": "bad topic"}, "topic_tickets"),
        ({"CXPULSE_TOPIC_DEADLETTER": "support.tickets"}, "topic_deadletter"),
        ({"CXPULSE_WINDOWS": "15m,90s"}, "windows"),
        ({"CXPULSE_RETENTION": "1h"}, "retention"),
        ({"CXPULSE_SSL_CAFILE": "/nonexistent/ca.pem"}, "ssl_cafile"),
        ({"CXPULSE_LABEL_CAPS": "team"}, "label_caps"),
        ({"CXPULSE_LABEL_CAPS": "teams=5"}, "label_caps"),
        ({"CXPULSE_NO_SUCH_THING": "1"}, "no_such_thing"),
        ({"CXPULSE_HEARTBEAT_INTERVAL": "20s"}, "heartbeat_interval"),
        ({"CXPULSE_RUNTIME": "spark"}, "runtime"),
        ({"CXPULSE_STANDBY_REPLICAS": "1"}, "standby_replicas"),
        ({"CXPULSE_WEB_ENABLED": "true"}, "web_enabled"),
    ],
)
def test_wrong_setting_fails_naming_it(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env=env)
    assert str(err.value).startswith(name), str(err.value)


def test_file_errors_name_the_file_or_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch_size: [1, 2]\n")
    with pytest.raises(SettingsError, match=r"^batch_size"):
        load_settings(bad, env={})
    bad.write_text("- a list\n")
    with pytest.raises(SettingsError, match=r"^config"):
        load_settings(bad, env={})
    with pytest.raises(SettingsError, match=r"^config"):
        load_settings(tmp_path / "missing.yaml", env={})
    bad.write_text("slice_ms: 1000\n")  # internal name is not accepted
    with pytest.raises(SettingsError, match=r"^slice_ms"):
        load_settings(bad, env={})


def test_sasl_password_never_shown() -> None:
    env = {
        "CXPULSE_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CXPULSE_SASL_MECHANISM": "SCRAM-SHA-256",
        "CXPULSE_SASL_USERNAME": "svc",
        "CXPULSE_SASL_PASSWORD": "hunter2-very-secret",
    }
    s = load_settings(env=env)
    assert isinstance(s.sasl_password, Secret)
    assert s.sasl_password.reveal() == "hunter2-very-secret"
    for text in (repr(s), str(s), s.describe(), repr(s.sasl_password), str(s.sasl_password)):
        assert "hunter2" not in text
    kwargs = s.aiokafka_security()
    assert kwargs["sasl_plain_password"] == "hunter2-very-secret"
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    app = create_app(s)
    creds = app.conf.broker_credentials
    assert creds is not None and "hunter2" not in repr(creds)


def test_label_caps_from_env_and_file(tmp_path: Path) -> None:
    s = load_settings(env={"CXPULSE_LABEL_CAPS": "team=5,agent=30"})
    assert dict(s.label_caps) == {"team": 5, "agent": 30}
    cfg = tmp_path / "c.yaml"
    cfg.write_text("label_caps: {team: 7}\n")
    assert dict(load_settings(cfg, env={}).label_caps) == {"team": 7}


def test_durations() -> None:
    assert parse_duration_ms("x", "250ms") == 250
    assert parse_duration_ms("x", "2d") == 172_800_000
    with pytest.raises(SettingsError):
        parse_duration_ms("x", 15)


def test_app_factory_uses_settings(tmp_path: Path) -> None:
    s = load_settings(
        env={},
        overrides={
            "group_id": "g1",
            "datadir": str(tmp_path / "w1"),
            "store": "memory://",
            "session_timeout": "6s",
            "heartbeat_interval": "1s",
            "web_enabled": "true",
            "web_port": "16066",
            "runtime": "faust",
        },
    )
    app = create_app(s)
    assert app.conf.id == "g1"
    assert str(tmp_path / "w1") in str(app.conf.datadir)
    assert str(app.conf.store) == "memory:"
    assert app.conf.broker_session_timeout == 6.0
    assert app.conf.broker_heartbeat_interval == 1.0
    assert app.conf.web_enabled is True and app.conf.web_port == 16066
    assert str(app.conf.processing_guarantee.value) == "at_least_once"
    assert create_app(load_settings(env={})).conf.web_enabled is False


def test_deadletter_max_bytes_is_settable_and_bounded() -> None:
    assert load_settings(env={}).deadletter_max_bytes == 1_000_000
    s = load_settings(env={"CXPULSE_DEADLETTER_MAX_BYTES": "200000"})
    assert s.deadletter_max_bytes == 200_000
    for bad in ("100", "2000000", "x"):
        with pytest.raises(SettingsError, match=r"^deadletter_max_bytes"):
            load_settings(env={"CXPULSE_DEADLETTER_MAX_BYTES": bad})


def test_max_events_per_ticket_is_settable_bounded_and_reaches_the_core() -> None:
    assert load_settings(env={}).max_events_per_ticket == 1000
    s = load_settings(env={"CXPULSE_MAX_EVENTS_PER_TICKET": "5000"})
    assert core_config(s).max_events_per_ticket == 5000
    for bad in ("0", "100001", "x"):
        with pytest.raises(SettingsError, match=r"^max_events_per_ticket"):
            load_settings(env={"CXPULSE_MAX_EVENTS_PER_TICKET": bad})


def test_pack_idle_is_a_duration_that_reaches_the_core() -> None:
    assert core_config(load_settings(env={})).pack_idle_ms == 600_000
    s = load_settings(env={"CXPULSE_PACK_IDLE": "1h"})
    assert core_config(s).pack_idle_ms == 3_600_000
    for bad in ("0s", "-5m", "ten"):
        with pytest.raises(SettingsError, match=r"^pack_idle"):
            load_settings(env={"CXPULSE_PACK_IDLE": bad})


def test_transaction_timeout_is_a_bounded_duration() -> None:
    assert load_settings(env={}).transaction_timeout_ms == 60_000
    s = load_settings(env={"CXPULSE_TRANSACTION_TIMEOUT": "10s"})
    assert s.transaction_timeout_ms == 10_000
    for bad in ("500ms", "16m", "0s", "soon"):
        with pytest.raises(SettingsError, match=r"^transaction_timeout"):
            load_settings(env={"CXPULSE_TRANSACTION_TIMEOUT": bad})


@pytest.mark.parametrize(
    "text",
    [
        'sasl_password: "Hunter2-s3cret" x: y\n',  # junk after the value
        "sasl_password: *Hunter2-s3cret\n",  # read as an undefined alias
        "sasl_password: [Hunter2-s3cret\n",  # unclosed flow sequence
        'sasl_password: "Hunter2-s3cret\n',  # unclosed quote
        "sasl_password: Hunter2-s3cret\n\tbatch_size: 3\n",  # a tab
    ],
)
def test_yaml_syntax_error_does_not_print_the_password(tmp_path: Path, text: str) -> None:
    """PyYAML's message quotes the offending line: the error names the place only."""
    path = tmp_path / "cxpulse.yml"
    path.write_text("bootstrap_servers: k:9092\n" + text)
    with pytest.raises(SettingsError) as err:
        load_settings(path, env={})
    message = str(err.value)
    assert message.startswith("config:") and "line " in message
    assert "Hunter2" not in message and "s3cret" not in message


# --- every error names the setting and where its value came from (issue #12)


@pytest.mark.parametrize(
    ("file", "env", "overrides", "start", "source"),
    [
        ("batch_size: lots\n", {}, {}, "batch_size: 'lots' is not an integer", "set in "),
        ("", {"CXPULSE_BATCH_SIZE": "0"}, {}, "batch_size: '0' is below the minimum",
         "set by environment variable CXPULSE_BATCH_SIZE"),
        ("", {}, {"batch_size": "x"}, "batch_size: 'x' is not an integer",
         "set on the command line"),
        # the highest source is the one named
        ("lateness: 1h\n", {"CXPULSE_LATENESS": "2h"}, {"lateness": "2d"}, "lateness: 2d ",
         "set on the command line"),
        ("lateness: 2d\n", {"CXPULSE_GROUP_ID": "g"}, {}, "lateness: 2d must be shorter",
         "set in "),
        ("", {}, {"windows": "15m,90s"}, "windows: 90s is not a whole number of slices",
         "set on the command line; slice: default value"),
        ("windows: [1h]\n", {"CXPULSE_RETENTION": "1h"}, {}, "retention: 1h must cover",
         "set by environment variable CXPULSE_RETENTION; windows: set in "),
        ("", {"CXPULSE_SECURITY_PROTOCOL": "SASL_SSL"}, {}, "sasl_mechanism: required",
         "security_protocol: set by environment variable CXPULSE_SECURITY_PROTOCOL"),
        ("", {}, {"label_caps": "team=0"}, "label_caps.team: '0' is below the minimum",
         "set on the command line"),
    ],
)  # fmt: skip
def test_error_names_setting_and_source(
    tmp_path: Path, file: str, env: dict[str, str], overrides: dict[str, object], start: str,
    source: str,
) -> None:
    cfg = tmp_path / "w.yaml"
    cfg.write_text(file)
    with pytest.raises(SettingsError) as err:
        load_settings(cfg, env=env, overrides=overrides)
    message = str(err.value)
    assert message.startswith(start), message
    assert source in message, message
    if source == "set in ":
        assert f"set in {cfg}" in message, message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("file", "env", "overrides", "source"),
    [
        ("slice: 30\n", {}, {}, "set in "),
        ("", {"CXPULSE_SLICE": "30"}, {}, "set by environment variable CXPULSE_SLICE"),
        ("", {}, {"slice": "30"}, "set on the command line"),
        ("", {}, {"slice": 30}, "set on the command line"),
    ],
)
def test_bare_number_duration_is_refused(
    tmp_path: Path, file: str, env: dict[str, str], overrides: dict[str, object], source: str
) -> None:
    cfg = tmp_path / "w.yaml"
    cfg.write_text(file)
    with pytest.raises(SettingsError) as err:
        load_settings(cfg, env=env, overrides=overrides)
    assert str(err.value).startswith("slice: "), str(err.value)
    assert "needs a unit" in str(err.value) or "is not a duration" in str(err.value)
    assert source in str(err.value), str(err.value)


def test_unknown_names_are_errors_naming_the_variable_or_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env={"CXPULSE_LATENES": "5m"})
    assert str(err.value) == (
        "latenes: unknown setting (did you mean lateness?) "
        "(set by environment variable CXPULSE_LATENES)"
    )
    cfg = tmp_path / "w.yaml"
    cfg.write_text("lateness_ms: 300000\n")  # the internal name is not a setting
    with pytest.raises(SettingsError, match=r"^lateness_ms: unknown setting .*set in "):
        load_settings(cfg, env={})
    with pytest.raises(SettingsError, match=r"^no_such: unknown setting; known: .*command line"):
        load_settings(env={}, overrides={"no_such": "1"})


def test_errors_never_quote_a_secret() -> None:
    """A misspelt password variable, a password of the wrong type: named, never shown."""
    pw = "hunter2-s3cret"
    for env in ({"CXPULSE_SASL_PASWORD": pw},
                {"CXPULSE_SASL_PASSWORD": pw, "CXPULSE_SECURITY_PROTOCOL": "TLS"},
                {"CXPULSE_SASL_PASSWORD": pw, "CXPULSE_BATCH_SIZE": "x"}):  # fmt: skip
        with pytest.raises(SettingsError) as err:
            load_settings(env=env)
        assert "hunter2" not in str(err.value), str(err.value)
    with pytest.raises(SettingsError) as err:
        load_settings(env={}, overrides={"sasl_password": ["hunter2-s3cret"]})
    assert str(err.value).startswith("sasl_password: expected text")
    assert "hunter2" not in str(err.value)


def test_one_duration_format_with_the_targets_file() -> None:
    """Settings read durations with `cxpulse.core.durations`, like targets and simulate."""
    s = load_settings(env={"CXPULSE_SESSION_TIMEOUT": "1m30s", "CXPULSE_LATENESS": "0s",
                           "CXPULSE_IDLE_TIMEOUT": "0s"})  # fmt: skip
    assert s.session_timeout_ms == 90_000 and s.lateness_ms == 0 and s.idle_timeout_ms == 0
    for text in ("15 m", "1.5h", "-5m", "15"):
        with pytest.raises(SettingsError, match=r"^slice: "):
            load_settings(env={"CXPULSE_SLICE": text})
    with pytest.raises(SettingsError, match=r"^slice: '0s' must be longer than zero"):
        load_settings(env={"CXPULSE_SLICE": "0s"})
    assert format_duration_ms(86_400_000) == "1d" and format_duration_ms(1500) == "1500ms"
    for ms in (250, 90_000, 5_400_000, 86_400_000):
        assert parse_duration_ms("x", format_duration_ms(ms)) == ms


def test_external_names_and_sources_of_a_loaded_settings(tmp_path: Path) -> None:
    names = external_names()
    assert "lateness" in names and "windows" in names and "lateness_ms" not in names
    cfg = tmp_path / "w.yaml"
    cfg.write_text("batch_size: 10\n")
    s = load_settings(cfg, env={"CXPULSE_GROUP_ID": "g"}, overrides={"runtime": "faust"})
    assert s.source_of("batch_size") == f"set in {cfg}"
    assert s.source_of("group_id") == "set by environment variable CXPULSE_GROUP_ID"
    assert s.source_of("runtime") == "set on the command line"
    assert s.source_of("slice") == "default value"


def test_environment_is_os_environ_by_default_and_settings_alone_ignore_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CXPULSE_BATCH_SIZE", "7")
    monkeypatch.setenv("CXPULSE_CONFIG", "/not/read/here")  # the file's path, not a setting
    assert load_settings().batch_size == 7
    assert Settings().batch_size == 20000  # sources come from `load_settings` only
    assert Settings(batch_size=3).batch_size == 3


def test_an_error_of_any_kind_on_a_secret_does_not_quote_it() -> None:
    from cxpulse.settings import error_line
    from cxpulse.settings.sources import Inputs

    err: dict[str, object] = {"type": "string_pattern_mismatch", "loc": ("sasl_password",),
           "msg": "String should match pattern", "input": "hunter2-s3cret"}  # fmt: skip
    line = error_line([err], Inputs(env={"sasl_password": "hunter2-s3cret"},  # type: ignore[list-item]
                                    env_names={"sasl_password": "CXPULSE_SASL_PASSWORD"}))
    assert line.startswith("sasl_password: string should match pattern, got the value given")
    assert "CXPULSE_SASL_PASSWORD" in line and "hunter2" not in line
    err = {"type": "value_error", "loc": ("sasl_password",), "msg": "Value error, ...",
           "input": "hunter2-s3cret", "ctx": {"error": ValueError("'hunter2-s3cret' is short")}}
    line = error_line([err], Inputs())  # type: ignore[list-item]
    assert line == "sasl_password: '***' is short (default value)", line


def test_label_guard_settings_reach_the_core_config(tmp_path: Path) -> None:
    from cxpulse.changelog import records as persistence
    from cxpulse.settings import MIN_MAX_RECORD_BYTES, core_config

    assert MIN_MAX_RECORD_BYTES == persistence.MIN_MAX_RECORD_BYTES
    s = load_settings(env={})
    assert s.max_label_values == 10_000 and dict(s.allowed_labels) == {}
    assert s.max_record_bytes == persistence.DEFAULT_MAX_RECORD_BYTES
    env = {
        "CXPULSE_MAX_LABEL_VALUES": "50",
        "CXPULSE_ALLOWED_LABELS": "team=billing|tech; channel=email",
    }
    s = load_settings(env=env)
    cfg = core_config(s)
    assert cfg.max_label_values == 50
    assert dict(cfg.allowed_labels) == {
        "team": frozenset({"billing", "tech"}),
        "channel": frozenset({"email"}),
    }
    path = tmp_path / "c.yaml"
    path.write_text("allowed_labels: {touchpoint: [csat_mail, 7]}\nmax_record_bytes: 65536\n")
    s = load_settings(path, env={})
    assert dict(s.allowed_labels) == {"touchpoint": ("7", "csat_mail")}
    assert s.max_record_bytes == 65_536
    for env, name in [
        ({"CXPULSE_MAX_LABEL_VALUES": "0"}, "max_label_values"),
        ({"CXPULSE_ALLOWED_LABELS": "priority=high"}, "allowed_labels: 'priority'"),
        ({"CXPULSE_ALLOWED_LABELS": "team"}, "allowed_labels"),
        ({"CXPULSE_ALLOWED_LABELS": "team="}, "allowed_labels: team"),
        ({"CXPULSE_MAX_RECORD_BYTES": "1000"}, "max_record_bytes"),
        ({"CXPULSE_MAX_RECORD_BYTES": "2000000"}, "max_record_bytes"),
    ]:
        with pytest.raises(SettingsError, match=rf"^{name}"):
            load_settings(env=env)


def test_changelog_compression_reaches_both_runtimes_producers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = load_settings(env={})
    assert s.changelog_compression == "zstd" and s.producer_compression() == "zstd"
    assert create_app(s).conf.producer_compression_type == "zstd"
    gz = load_settings(env={"CXPULSE_CHANGELOG_COMPRESSION": "gzip"})
    assert create_app(gz).conf.producer_compression_type == "gzip"
    off = load_settings(env={"CXPULSE_CHANGELOG_COMPRESSION": "none"})
    assert off.producer_compression() is None
    assert create_app(off).conf.producer_compression_type is None
    with pytest.raises(SettingsError, match=r"^changelog_compression"):
        load_settings(env={"CXPULSE_CHANGELOG_COMPRESSION": "brotli"})
    # lz4/zstd need a codec library every reader must have too: refused without it
    import importlib.util

    find_spec = importlib.util.find_spec
    def without_cramjam(name: str, *args: Any) -> Any:
        return None if name == "cramjam" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_cramjam)
    assert load_settings(env={"CXPULSE_CHANGELOG_COMPRESSION": "gzip"})
    for name in ("lz4", "zstd"):
        with pytest.raises(SettingsError, match=r"^changelog_compression.*cramjam"):
            load_settings(env={"CXPULSE_CHANGELOG_COMPRESSION": name})


def test_a_short_retention_still_gives_the_core_a_config() -> None:
    """The forecast's silence reads the last hour of first replies: with less state than
    that (short windows, retention 30m) it reads what is kept instead of refusing to start."""
    env = {"CXPULSE_WINDOWS": "15m", "CXPULSE_RETENTION": "30m", "CXPULSE_LATENESS": "1m"}
    cfg = core_config(load_settings(env=env))
    assert cfg.forecast_silence_reference_ms == 1_800_000
    assert core_config(load_settings(env={})).forecast_silence_reference_ms == 3_600_000
