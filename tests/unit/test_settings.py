"""Settings: precedence, parsing, and errors that name the setting at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.settings import (
    Secret,
    SettingsError,
    core_config,
    load_settings,
    parse_duration_ms,
)
from stream.worker.app import create_app


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
    assert app.conf.processing_guarantee.value == "at_least_once"
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
