"""`bench/bench_identical.py`, the guard that a change to the apply path leaves
every changelog write and the evaluation as they were, is itself reproducible:
two replays of the same checkout hash the same, and a different day does not."""

from __future__ import annotations

from pathlib import Path

from bench.bench_identical import main, replay

ROOT = Path(__file__).resolve().parents[2]


def test_the_same_checkout_replays_identically() -> None:
    assert main(["--tickets-per-day", "150", "--compare-pythonpath", str(ROOT / "stream")]) == 0


def test_the_hashes_see_a_different_day() -> None:
    """Different input must change both hashes (else the check compares nothing)."""
    a, b = replay(150.0, 500), replay(160.0, 500)
    assert a["messages"] != b["messages"]
    assert a["writes"] != b["writes"] and a["evaluation"] != b["evaluation"]
    assert replay(150.0, 500)["writes"] == a["writes"]  # in process too
