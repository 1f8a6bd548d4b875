"""A corrupt local state copy (RocksDB) is noticed and rebuilt from the changelog.

The worker is stopped, its datadir damaged the three ways disks and people
damage it (random bytes over part of an `.sst`, `CURRENT` deleted, an `.sst`
deleted: one partition each), and started again. It must say so, count it,
rebuild those partitions from the changelog, serve exactly what
`cxpulse report` computes, and leave the changelog uncontaminated (the
durable state read back from the changelog alone equals the offline result).
Before the fix the corrupt block made the restore silently stop at the bad
block and the re-sent records carried the loss into the changelog.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cxpulse.importer.replay import read_lines

from tests.integration.test_worker_pipeline import (
    PARTITIONS,
    WorkerProc,
    assert_counts,
    assert_durable_state,
    assert_kpi_series,
    expected,
    make_topics,
    parse_metrics,
    replay,
    simulate,
    wait_consumed,
)

pytestmark = pytest.mark.kafka


def _partition_dir(w: WorkerProc, p: int) -> Path:
    return w.datadir / "direct" / f"{w.topics.changelog}-{p}"


def test_corrupt_local_store_is_rebuilt_from_the_changelog(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topics = make_topics(topic_factory)
    capture = simulate(tmp_path / "sim.jsonl", seed=1010, span="4h", per_day=12000)
    lines = list(read_lines(capture))
    exp = expected(lines)
    # the reference is what `cxpulse report` prints for the same file
    from cxpulse.report.command import compute

    report = compute(capture.read_bytes().splitlines(), partitions=PARTITIONS).evaluation
    assert (report.kpis, report.gauges, report.counters) == (
        exp.evaluation.kpis, exp.evaluation.gauges, exp.evaluation.counters,
    )  # fmt: skip
    w = WorkerProc(kafka_bootstrap, topics, tmp_path, "w1", "--store", "rocksdb://").start()
    try:
        replay(capture, kafka_bootstrap, topics)
        wait_consumed([w], exp.consumed)
        assert w.stop() == 0

        # partition 0: 64 KiB (at most a quarter of the file) of random bytes in its data
        p0 = _partition_dir(w, 0)
        sst = max(p0.glob("*.sst"), key=lambda f: f.stat().st_size)
        size = sst.stat().st_size
        with sst.open("r+b") as fh:
            fh.seek(size // 4)
            fh.write(os.urandom(min(64 * 1024, size // 4)))
        # partition 1: CURRENT deleted; partition 2: an .sst deleted
        (_partition_dir(w, 1) / "CURRENT").unlink()
        next(_partition_dir(w, 2).glob("*.sst")).unlink()

        w.start()
        t = wait_consumed([w], exp.consumed)
        assert_counts(t, exp)  # nothing re-processed, nothing lost
        metrics_text = w.scrape()
        assert_kpi_series(metrics_text, exp)
        rebuilds = {
            (labels["partition"], labels["reason"]): v
            for labels, v in parse_metrics(metrics_text).get(
                "cxpulse_local_store_rebuilds_total", []
            )
        }
        assert rebuilds == {("0", "read"): 1, ("1", "open"): 1, ("2", "open"): 1}
        second = w.log_text().split("===== start 1 =====", 1)[1]
        loud = re.findall(r"ERROR .*partition (\d+): local state store is corrupt", second)
        assert sorted(loud) == ["0", "1", "2"]
        # the rebuilt partitions read their whole changelog partition; p3 only its tail
        tails = dict(re.findall(r"partition (\d+) restored: \d+ keys \((\d+) read", second))
        assert tails["3"] == "0" and all(int(tails[p]) > 0 for p in "012"), tails
        for p in range(3):
            assert list(w.datadir.joinpath("direct").glob(f"{topics.changelog}-{p}.corrupt-*"))
        assert w.stop() == 0
        assert_durable_state(kafka_bootstrap, topics, exp)
    finally:
        w.stop()
