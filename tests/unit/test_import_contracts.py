"""The import contracts of `.importlinter` (docs/architecture.md's layers) hold, and they
catch a sibling reaching into another: the exporter importing a worker module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "stream")}
    return subprocess.run([str(LINT), "--config", str(tree / ".importlinter"), "--no-cache"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def copy_tree(dst: Path) -> Path:
    shutil.copytree(ROOT / "stream", dst / "stream",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / ".importlinter", dst / ".importlinter")
    return dst


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    out = lint(copy_tree(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_an_exporter_module_importing_the_worker_breaks_the_layers(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    service = tree / "stream/cxpulse/exporter/service.py"
    service.write_text(service.read_text() + "\nimport cxpulse.worker.shared  # noqa\n")
    out = lint(tree)
    assert out.returncode != 0
    assert "cxpulse.exporter.service -> cxpulse.worker.shared" in out.stdout


def test_the_core_importing_a_client_library_breaks_purity(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    kpis = tree / "stream/cxpulse/core/kpis.py"
    kpis.write_text(kpis.read_text() + "\nimport aiokafka  # noqa\n")
    out = lint(tree)
    assert out.returncode != 0
    assert "The core does no I/O" in out.stdout and "BROKEN" in out.stdout
