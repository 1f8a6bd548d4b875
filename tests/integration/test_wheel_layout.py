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


def test_demo_runs_from_the_installed_wheel(tmp_path: Path) -> None:
    """The wheel in a fresh venv outside the checkout runs the demo's smoke path: every
    part started from the installed package (the broker launcher included), "running",
    Ctrl-C, exit 0. Dependencies come from this checkout's venv by a path in a `.pth`
    (no network; that venv's own `.pth` files, the editable install among them, are not
    processed from there, so `cxpulse` can only come from the wheel)."""
    import signal
    import sysconfig
    import time

    from tests.support.signals import default_sigint

    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
                    str(ROOT)], check=True, cwd=tmp_path, timeout=300)
    (wheel,) = dist.glob("cxpulse-*.whl")
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    py = env / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, timeout=300)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (Path(site) / "checkout-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run([str(py), "-c", "import cxpulse; print(cxpulse.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(env)), where
    # run from the clone (targets.yaml, alerts/), the package from the wheel
    proc = subprocess.Popen([str(env / "bin" / "cxpulse"), "demo", "--speed", "60", "--dir",
                             str(tmp_path / "demo")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=default_sigint)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
                break
        assert any("Ctrl-C stops everything" in ln for ln in lines), "".join(lines)
        assert any(ln.strip().startswith("prometheus") and "http://" in ln for ln in lines)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, "".join(lines) + rest
        assert "Traceback" not in "".join(lines) + rest
    finally:
        if proc.poll() is None:  # the demo stops its parts on SIGINT; kill only as a last resort
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
