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


def layered_modules(config: str) -> set[str]:
    """The modules the layers contract names (`a | b` on one line: siblings)."""
    lines = config.split("type = layers", 1)[1].split("layers =", 1)[1].split("\n[", 1)[0]
    return {name.strip() for line in lines.splitlines() for name in line.split("|")
            if name.strip()}  # fmt: skip


def top_level_modules(package: Path) -> set[str]:
    """cxpulse's direct children: packages (with __init__.py) and modules."""
    out = set()
    for child in package.iterdir():
        if child.is_dir() and (child / "__init__.py").exists():
            out.add(f"cxpulse.{child.name}")
        elif child.suffix == ".py" and child.name != "__init__.py":
            out.add(f"cxpulse.{child.stem}")
    return out


def test_every_module_of_cxpulse_is_in_a_layer() -> None:
    """A module outside the layers is checked by no contract: any sibling could import it
    and it could import any sibling. The layering must name every module and package."""
    named = layered_modules((ROOT / ".importlinter").read_text())
    missing = top_level_modules(ROOT / "stream/cxpulse") - named
    assert not missing, f"not in the layers of .importlinter: {sorted(missing)}"
    assert named <= top_level_modules(ROOT / "stream/cxpulse"), "a layer names a missing module"


def test_the_layer_check_sees_a_new_loose_module(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    (tree / "stream/cxpulse/loose.py").write_text('"""A module no layer names."""\n')
    named = layered_modules((tree / ".importlinter").read_text())
    assert top_level_modules(tree / "stream/cxpulse") - named == {"cxpulse.loose"}
