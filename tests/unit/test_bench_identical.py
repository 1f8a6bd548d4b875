"""`bench/bench_identical.py`, the guard that a change to the apply path or to how
the core keeps its state leaves every changelog write and the evaluation as they
were, is itself sound: it runs end to end with every option (CI's smoke of it,
comparing this checkout with itself), two replays hash the same and a different
day does not, and on a small dirty day with late events and restores, packing
idle tickets after 1 minute hashes the same as after the default hour."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench.bench_identical import Day, main, replay

ROOT = Path(__file__).resolve().parents[2]


def test_the_same_checkout_replays_identically() -> None:
    assert main(["--tickets-per-day", "150", "--batch-size", "500", "--restore-every", "4",
                 "--pack-idle-ms", "60000",
                 "--compare-pythonpath", str(ROOT / "stream")]) == 0  # fmt: skip


def test_the_hashes_see_a_different_day() -> None:
    """Different input must change both hashes (else the check compares nothing)."""
    a, b = replay(Day(150.0, batch_size=500)), replay(Day(160.0, batch_size=500))
    assert a["messages"] != b["messages"]
    assert a["writes"] != b["writes"] and a["evaluation"] != b["evaluation"]
    assert replay(Day(150.0, batch_size=500))["writes"] == a["writes"]  # in process too


def test_packing_after_a_minute_hashes_as_the_default() -> None:
    """14 hours at 1,000 a day, 20 % held back up to 10 min (late beyond the 5-minute
    lateness), restored every 2 fetches of 500: packing and unpacking many more
    tickets must change no changelog value and no result; nor may the restores."""
    day = Day(1000.0, hours=14, disorder_s=600.0, batch_size=500, restore_every=2)
    default, packed = replay(day), replay(replace(day, pack_idle_ms=60_000))
    assert default["restores"] >= 4 and packed["pack_idle_ms"] == 60_000
    assert (packed["writes"], packed["evaluation"]) == (default["writes"], default["evaluation"])
    # the restores are the worker's (exact), not a reset: never restored, the same results
    assert replay(replace(day, restore_every=0))["evaluation"] == default["evaluation"]
