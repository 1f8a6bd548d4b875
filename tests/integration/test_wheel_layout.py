"""The wheel installs the import package `cxpulse` and nothing else at the top level (no
`stream`, a name another PyPI distribution owns), and works outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_holds_only_cxpulse_and_imports_outside_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
                    str(ROOT)], check=True, cwd=tmp_path, timeout=300)
    (wheel,) = dist.glob("cxpulse-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"cxpulse"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "cxpulse/wall/static/index.html" in names and "cxpulse/py.typed" in names

    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    py = env / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, timeout=300)
    # the pure core needs nothing beyond the standard library
    out = subprocess.run(
        [str(py), "-c", "import cxpulse, cxpulse.core.kpis, importlib.util as u; "
         "print(cxpulse.__file__); print(u.find_spec('stream'))"],
        cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60)
    where, stream = out.stdout.split()
    assert where.startswith(str(env)) and stream == "None"
