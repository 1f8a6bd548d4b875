"""`bench/bench_identity.py` runs (CI's smoke of it), and on a small dirty day with
restores, packing idle tickets after 1 minute hashes the same as after the default hour."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _hashes(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_identity.py"), "--tickets-per-day", "1000",
         "--hours", "14", "--restore-every", "4", *args],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    found = re.search(r"values ([0-9a-f]{64}) evaluation ([0-9a-f]{64})", out.stdout)
    assert found, out.stdout
    return found.group(0)


def test_packing_after_a_minute_hashes_as_the_default() -> None:
    assert _hashes("--pack-idle-ms", "60000") == _hashes()
