"""Every command answers a user error with one line naming the problem and exit 2.

Cases from issue #12: a bad targets file (for every command that reads one),
a KPI time model that cannot work (`CXPULSE_LATENESS=2d`), a secret on the
line a YAML error points at. Commands run as users run them (a subprocess of
the CLI); none may print a traceback or PyYAML's snippet of the line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxpulse.cli", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip


def one_line(out: subprocess.CompletedProcess[str], prog: str, *named: str) -> None:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = [x for x in out.stderr.splitlines() if x.startswith(f"cxpulse {prog}:")]
    assert len(lines) == 1, out.stderr
    for n in named:
        assert n in lines[0], out.stderr


@pytest.fixture
def bad_targets(tmp_path: Path) -> str:
    path = tmp_path / "targets.yaml"
    path.write_text("frt:\n  target_seconds: [900\n")
    return str(path)


@pytest.mark.parametrize("command", [
    ["worker", "--bootstrap-servers", "127.0.0.1:1", "--set", "targets_file={t}"],
    ["exporter", "--bootstrap-servers", "127.0.0.1:1", "--set", "targets_file={t}"],
    ["report", "/dev/null", "--targets", "{t}"],
    ["wall", "--targets", "{t}", "--port", "0"],
    ["top", "--once", "--targets", "{t}"],
    ["generate", "--targets", "{t}", "--check"],
    ["demo", "--targets", "{t}"],
])  # fmt: skip
def test_bad_targets_file(command: list[str], bad_targets: str) -> None:
    out = cli(*[a.format(t=bad_targets) for a in command])
    one_line(out, command[0], bad_targets, "not valid YAML: line ")


def test_lateness_longer_than_the_longest_window() -> None:
    out = cli("worker", "--bootstrap-servers", "127.0.0.1:1", env={"CXPULSE_LATENESS": "2d"})
    one_line(out, "worker", "lateness: 2d must be shorter than the longest window",
             "environment variable CXPULSE_LATENESS")  # fmt: skip


@pytest.mark.parametrize(("args", "env", "named"), [
    (["--set", "slice=60"], {}, ["slice: ", "needs a unit", "command line"]),
    (["--metrics-port", "http"], {}, ["metrics_port: 'http' is not an integer", "command line"]),
    ([], {"CXPULSE_SLICE": "60"}, ["slice: ", "environment variable CXPULSE_SLICE"]),
    ([], {"CXPULSE_BATCHSIZE": "1"}, ["batchsize: unknown setting", "batch_size",
                                      "environment variable CXPULSE_BATCHSIZE"]),
    (["--config", "{cfg}"], {}, ["session_timeout: '30' needs a unit", "set in {cfg}"]),
])  # fmt: skip
def test_setting_errors_name_the_setting_and_its_source(
    tmp_path: Path, args: list[str], env: dict[str, str], named: list[str]
) -> None:
    cfg = tmp_path / "worker.yaml"
    cfg.write_text("session_timeout: '30'\n")
    args = [a.format(cfg=cfg) for a in args]
    for command in ("worker", "exporter"):
        out = cli(command, "--bootstrap-servers", "127.0.0.1:1", *args, env=env)
        one_line(out, command, *[n.format(cfg=cfg) for n in named])


def test_yaml_error_does_not_print_the_line(tmp_path: Path) -> None:
    cfg = tmp_path / "worker.yaml"
    cfg.write_text("sasl_username: u\nsasl_password: s3cr3t-pw: [\n")
    out = cli("worker", "--config", str(cfg))
    one_line(out, "worker", "line 2")
    assert "s3cr3t" not in out.stderr + out.stdout


@pytest.mark.parametrize("command", ["worker", "exporter"])
def test_ctrl_c_while_connecting(command: str) -> None:
    """Ctrl-C while the broker does not answer: one line, exit 130, no traceback."""
    import signal
    import socket
    import time

    from tests.support.ports import free_port
    from tests.support.signals import default_sigint

    port = free_port()  # nothing listens here
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxpulse.cli", command, "--bootstrap-servers", "127.0.0.1:1",
         "--metrics-port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    # connecting: the metrics port is bound before the broker wait (`prepare_serving`);
    # a fixed sleep instead could interrupt the imports on a busy machine
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith(f"cxpulse {command}:")
             and "waiting for Kafka" not in x]  # the 5 s "still waiting" lines
    assert len(lines) == 1 and "interrupted" in lines[0], err


@pytest.mark.parametrize("command", ["worker", "exporter"])
def test_secret_on_the_command_line_is_refused(command: str) -> None:
    """`--set sasl_password=...` is readable by every user in `ps`: refused, one line
    naming the setting and the two safe ways, the value never echoed."""
    out = cli(command, "--bootstrap-servers", "127.0.0.1:1",
              "--set", "sasl_password=Cmd-line-s3cret")  # fmt: skip
    one_line(out, command, "sasl_password", "CXPULSE_SASL_PASSWORD", "sasl_password_file")
    assert "Cmd-line-s3cret" not in out.stderr + out.stdout


def test_sasl_password_file(tmp_path: Path) -> None:
    """The password is the file's first line; a missing or empty file is one line
    naming `sasl_password_file`; the file and `sasl_password` together are refused."""
    from cxpulse.settings import SettingsError, load_settings

    base = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "alice"}  # fmt: skip
    secret = tmp_path / "pw"
    secret.write_text("File-s3cret\n")
    s = load_settings(None, {}, {**base, "sasl_password_file": str(secret)})
    assert s.sasl_password is not None and s.sasl_password.reveal() == "File-s3cret"
    assert "File-s3cret" not in s.describe()
    (tmp_path / "empty").write_text("\n")
    for name, phrase in [("absent", "no such file"), ("empty", "is empty")]:
        with pytest.raises(SettingsError, match=rf"^sasl_password_file: .*{phrase}"):
            load_settings(None, {}, {**base, "sasl_password_file": str(tmp_path / name)})
    with pytest.raises(SettingsError, match=r"^sasl_password_file: .*not both"):
        load_settings(None, {"CXPULSE_SASL_PASSWORD": "x"},
                      {**base, "sasl_password_file": str(secret)})  # fmt: skip
    # from the environment too (the usual way with a mounted secret)
    s = load_settings(None, {"CXPULSE_SASL_PASSWORD_FILE": str(secret)}, base)
    assert s.sasl_password is not None and s.sasl_password.reveal() == "File-s3cret"


def test_auth_failure_exit_after_is_a_duration() -> None:
    from cxpulse.settings import SettingsError, load_settings

    assert load_settings(None, {}, {}).auth_failure_exit_after_ms == 300_000
    assert (
        load_settings(None, {}, {"auth_failure_exit_after": "20s"}).auth_failure_exit_after_ms
        == 20_000
    )
    with pytest.raises(SettingsError, match=r"^auth_failure_exit_after: "):
        load_settings(None, {}, {"auth_failure_exit_after": "300"})
    with pytest.raises(SettingsError, match=r"^auth_failure_exit_after: "):
        load_settings(None, {}, {"auth_failure_exit_after": "0s"})


def test_targets_are_checked_before_any_other_start_up_line(bad_targets: str) -> None:
    """Nothing (no "starting: <settings>") is logged before a broken targets file is named."""
    out = cli("worker", "--bootstrap-servers", "127.0.0.1:1", "--set",
              f"targets_file={bad_targets}")
    one_line(out, "worker", bad_targets)
    assert (out.stdout + out.stderr).strip().count("\n") == 0, out.stdout + out.stderr


def _clone_with_edited_targets(tmp_path: Path) -> Path:
    """A copy of the generated artefacts with targets.yaml edited after the last generate."""
    import shutil

    shutil.copytree(ROOT / "alerts", tmp_path / "alerts")
    shutil.copytree(ROOT / "grafana", tmp_path / "grafana")
    text = (ROOT / "targets.yaml").read_text()
    edited = text.replace("target_seconds: 900", "target_seconds: 600", 1)
    assert edited != text, "targets.yaml no longer has the FRT target this test edits"
    (tmp_path / "targets.yaml").write_text(edited)
    return tmp_path / "targets.yaml"


def test_worker_refuses_rules_stale_against_targets(tmp_path: Path) -> None:
    from cxpulse.mixin.command import load_targets, stale_outputs

    targets = _clone_with_edited_targets(tmp_path)
    out = cli("worker", "--bootstrap-servers", "127.0.0.1:1", "--set",
              f"targets_file={targets}")
    one_line(out, "worker", "alerts/cxpulse-rules.yml", "stale", "make generate")
    assert (out.stdout + out.stderr).strip().count("\n") == 0, out.stderr
    # `generate` makes them fresh again: the check compares with what it writes
    gen = cli("generate", "--targets", str(targets), "--out", str(tmp_path))
    assert gen.returncode == 0, gen.stderr
    assert stale_outputs(load_targets(targets), tmp_path) == []


def test_demo_regenerates_stale_rules(tmp_path: Path) -> None:
    from cxpulse.mixin.command import load_targets, stale_outputs

    targets = _clone_with_edited_targets(tmp_path)
    # no java/prometheus on this PATH: the demo stops right after the regeneration
    out = subprocess.run([sys.executable, "-m", "cxpulse.cli", "demo"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PATH": str(tmp_path / "no-bin")})
    assert "regenerated alerts/cxpulse-rules.yml" in out.stdout, out.stdout + out.stderr
    assert stale_outputs(load_targets(targets), tmp_path) == []


@pytest.mark.parametrize("command", [
    ["worker", "--bootstrap-servers", "127.0.0.1:1"],
    ["exporter", "--bootstrap-servers", "127.0.0.1:1"],
    ["ingest", "--bootstrap-servers", "127.0.0.1:1"],
    ["map", "--bootstrap-servers", "127.0.0.1:1"],
    ["import", "zendesk", "/dev/null", "--bootstrap-servers", "127.0.0.1:1"],
    ["replay", "{empty}", "--bootstrap-servers", "127.0.0.1:1"],
    ["simulate", "--duration", "1h", "--bootstrap-servers", "127.0.0.1:1"],
    ["report", "/dev/null"],
])  # fmt: skip
def test_every_command_reads_settings_one_way(command: list[str], tmp_path: Path) -> None:
    """Every command that reads the settings reads `--config` (else CXPULSE_CONFIG) the
    same way, and a bad value is one line with the command's full name, exit 2."""
    cfg = tmp_path / "settings.yaml"
    cfg.write_text("session_timeout: '30'\n")
    (tmp_path / "empty.jsonl").write_text("")
    command = [a.format(empty=tmp_path / "empty.jsonl") for a in command]
    by_flag = cli(*command, "--config", str(cfg))
    one_line(by_flag, command[0], "session_timeout: '30' needs a unit", f"set in {cfg}")
    by_env = cli(*command, env={"CXPULSE_CONFIG": str(cfg)})
    one_line(by_env, command[0], "session_timeout: '30' needs a unit", f"set in {cfg}")
