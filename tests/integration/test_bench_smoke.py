"""Every benchmark script still runs (`make bench`'s runner, tiny sizes, seconds each).

Benchmarks are not in CI (too long, too noisy: figures come from `make bench`
into docs/benchmarks.md); this only keeps the scripts from rotting: each one,
through `bench/run_all.py --smoke`, on the session's broker, must exit 0 and
print the rows its section of docs/benchmarks.md is made of. Figures at these
sizes mean nothing and are not judged, except that they are numbers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.kafka

#: bench name -> patterns its smoke output must contain (one per row it promises)
EXPECTED = {
    "worker": [
        r"\| \*\*baseline\*\*: aiokafka `getmany` \+ `json\.loads` \| [\d.]+ \| [\d,]+ \| 1\.000 ",
        r"\| Quix Streams peer \(`bench/quix_peer\.py`\) \| [\d.]+ \| [\d,]+ \| [\d.]+ \| 1\.00 ",
        r"\| `cxpulse worker`, direct, memory \| [\d.]+ \| [\d,]+ \| [\d.]+ \| [\d.]+ \| \d+ ",
    ],
    "core": [r"busy day, 4 engines, .*: [\d,]+ events/s", r"evaluate a day, 3 window"],
    "memory": [
        r"\| core \| [\d.]+ \| [\d.]+ \| -?[\d,]+ \| 1,024 \|",
        r"\| replica \| [\d.]+ \| [\d.]+ \| -?[\d,]+ \| 512 \|",
        r"\| core, 1,000 tickets: structure \| bytes per ticket \|",
    ],
    "scaling": [
        r"\| 2,000 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d,]+ B \| [\d,]+ B \| \d+ \| "
        r"-?[\d.]+ \|"
    ],
    "decode": [r"ratio decode/json\.loads on the same valid bytes: \d\.\d\d"],
    "hostile": [r"\n\s+200 \|\s+[\d,]+ \|"],
    "hostile_volume": [
        r"\| labels \| [\d,]+ \| 0 \| True \|",
        r"\| ticket \| [\d,]+ \| 0 \| True \|",
    ],
    "changelog": [
        r"\| this \w+ \| busy day, batches of 20,000 \| [\d,]+ \| [\d,]+ \| [\d,]+ \| "
        r"[\d.]+ MB \| [\d,]+ \| [\d.]+ ",
        r"\| this \w+ \| trickle, 1 message per batch .* \| [\d,]+ \| [\d.]+ \|",
        r"this: fat ticket reversed / in order: [\d.]+x bytes",
    ],
    "scrape": [r"median catch-up: quiet [\d.]+ s, 4 scrapers [\d.]+ s, ratio [\d.]+"],
    "evaluation": [r"\| this checkout \| \d+ \| exposition \| \d+ \| \d+ \| \d+ \| \d+ "],
    "ingest": [r"\| 1 \| [\d,]+/s \| [\d,]+/s \| \d+\.\d\d "],
    "latency": [
        r"\| on new state \(eval_min_interval=500ms\) \| (\d+)/\1 \| [\d.]+ \| [\d.]+ \| [\d.]+ ",
        r"\| old fixed tick \(eval_min_interval=5s\) \| (\d+)/\1 \| [\d.]+ \| [\d.]+ \| [\d.]+ ",
        r"ratio on new state / old tick \(same run\): p50 [\d.]+, p99 [\d.]+",
    ],
}


def run_all(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bench_script_runs_at_a_tiny_size(name: str, kafka_bootstrap: str) -> None:
    out = run_all("--smoke", "--only", name, "--bootstrap-servers", kafka_bootstrap)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for pattern in EXPECTED[name]:
        assert re.search(pattern, out.stdout), (pattern, out.stdout[-3000:])


def test_the_generated_page_names_commit_command_machine_and_load(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    out = run_all("--smoke", "--only", "decode,hostile", "--out", str(page))
    assert out.returncode == 0, out.stderr[-3000:]
    text = page.read_text()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert f"Commit {commit}" in text
    assert re.search(r"\d+ cores, Python 3\.11", text)
    assert "Command: `.venv/bin/python bench/bench_decode.py --passes 1" in text
    assert "Command: `.venv/bin/python bench/bench_hostile.py --sizes 200`" in text
    assert len(re.findall(r"Load average during the run: [\d.]+ to [\d.]+", text)) == 2


def test_only_refreshes_its_sections_and_drops_hand_written_text(tmp_path: Path) -> None:
    """`make bench BENCH=x` replaces section x, keeps the others with their own commit
    line, and drops anything that no benchmark produced (hand-run records live in
    docs/benchmark-history.md)."""
    page = tmp_path / "benchmarks.md"
    assert run_all("--smoke", "--only", "decode", "--out", str(page)).returncode == 0
    decode = page.read_text().split("## Decoding")[1].split("\n## ")[0]
    page.write_text(page.read_text() + "\n## Hand notes\n\nfigure 1.23 from elsewhere\n")
    assert run_all("--smoke", "--only", "hostile", "--out", str(page)).returncode == 0
    text = page.read_text()
    assert text.split("## Decoding")[1].split("\n## ")[0] == decode
    assert "bench_hostile.py --sizes 200" in text
    assert "figure 1.23" not in text and "## Hand notes" not in text
    assert "Not run since this page was last regenerated: `make bench BENCH=worker`" in text
    stamps = re.findall(r"^Commit \w+.*, \d{4}-\d\d-\d\d \d\d:\d\d UTC; .*cores", text, re.M)
    assert len(stamps) == 2


def test_an_unknown_benchmark_name_is_one_clear_line() -> None:
    out = run_all("--smoke", "--only", "nosuch")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "--only: known benchmarks are worker, core, memory, scaling, decode, hostile, "
        "hostile_volume, changelog, scrape, latency, evaluation, ingest"
    ]


def test_worker_bench_compares_two_checkouts(kafka_bootstrap: str) -> None:
    """`bench_worker.py --compare-pythonpath` (the A/B of docs/benchmarks.md) still runs:
    against this same checkout here, so both sides exist; the figures are not judged."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_worker.py"), "--bootstrap-servers",
         kafka_bootstrap, "--tickets-per-day", "300", "--span", "2h", "--runtimes", "direct",
         "--compare-pythonpath", str(ROOT), "--reps", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for pattern in (
        r"\| `cxpulse worker`, direct, memory, this checkout \(\w+(-dirty)?\), run 1 \| [\d.]+ ",
        r"\| `cxpulse worker`, direct, memory, `[^`]+` \(\w+(-dirty)?\), run 1 \| [\d.]+ ",
        r"events/s ratio per pair: [\d.]+; median [\d.]+",
        r"events per CPU second .* ratio per pair: [\d.]+; median [\d.]+",
    ):
        assert re.search(pattern, out.stdout), (pattern, out.stdout[-3000:])
