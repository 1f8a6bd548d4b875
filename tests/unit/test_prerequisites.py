"""`scripts/prerequisites`: a fresh machine gets what the demo and the tests need.

Simulated: a PATH holding none of the tools (only `env`, `id` and a fake installer
that records its arguments). It must ask the installer for every package, saying
one line per package; on a PATH that has every tool it must not call the installer
at all; without root and sudo it prints the exact command and exits 69.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "prerequisites"
TOOLS = ("prometheus", "prometheus-alertmanager", "promtool", "java", "chromium", "tmux",
         "mvn", "make", "ss")
PACKAGES = {"prometheus", "prometheus-alertmanager", "default-jre-headless", "chromium",
            "tmux", "maven", "make", "iproute2", "python3.11-venv"}


def _bin(tmp_path: Path, *tools: str, uid: int | None = None) -> Path:
    b = tmp_path / "bin"
    b.mkdir()
    for name in ("env",):
        (b / name).symlink_to(shutil.which(name) or f"/usr/bin/{name}")
    if uid is None:
        (b / "id").symlink_to(shutil.which("id") or "/usr/bin/id")
    else:
        (b / "id").write_text(f"#!/bin/sh\n[ \"$1\" = -u ] && echo {uid} || echo someone\n")
        (b / "id").chmod(0o755)
    for tool in tools:
        (b / tool).write_text("#!/bin/sh\nexit 0\n")
        (b / tool).chmod(0o755)
    return b


def _fake_apt(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "apt.log"
    apt = tmp_path / "fake-apt"
    apt.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    apt.chmod(0o755)
    return apt, log


def _run(path: Path, apt: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/bash", str(SCRIPT)], capture_output=True, text=True,
                          env={"PATH": str(path), "CXPULSE_APT": str(apt),
                               "HOME": os.environ.get("HOME", "/root")}, timeout=60)


def test_fresh_machine_installs_every_package_one_line_each(tmp_path: Path) -> None:
    apt, log = _fake_apt(tmp_path)
    b = _bin(tmp_path)
    (b / "sudo").write_text('#!/bin/sh\nexec "$@"\n')  # a non-root run goes through sudo
    (b / "sudo").chmod(0o755)
    out = _run(b, apt)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    installing = {ln.split()[2] for ln in lines if ln.startswith("prerequisites: installing ")}
    assert installing == PACKAGES and len(lines) == len(PACKAGES), out.stdout
    calls = log.read_text().splitlines()
    assert calls[0] == "update -qq"
    assert calls[1].startswith("install -y -qq ") and set(calls[1].split()[3:]) == PACKAGES


def test_machine_with_everything_installs_nothing(tmp_path: Path) -> None:
    apt, log = _fake_apt(tmp_path)
    b = _bin(tmp_path, *TOOLS)
    (b / "python3.11").symlink_to(Path(sys.executable).resolve())  # the real one, not a shim
    out = _run(b, apt)
    assert out.returncode == 0 and out.stdout == "" and out.stderr == "", out
    assert not log.exists(), "the installer was called on a machine that has everything"


def test_without_root_or_sudo_prints_the_exact_command(tmp_path: Path) -> None:
    apt, log = _fake_apt(tmp_path)
    out = _run(_bin(tmp_path, *(t for t in TOOLS if t != "tmux"), uid=1000), apt)
    assert out.returncode == 69
    assert "run as root: apt-get install -y tmux python3.11-venv" in out.stderr, out.stderr
    assert not log.exists()
