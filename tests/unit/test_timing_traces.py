"""The timing traces bench_latency splits produce -> visible with: the exporter's
(`cxpulse.exporter.timing`) and the worker's (`cxpulse.worker.timing`). Off, they keep and
log nothing; on, each exporter evaluation logs the commit markers applied since the
previous one, and each durable worker batch its instants and input offsets, which the
bench places its marker tickets in by changelog and input offset."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from cxpulse.core.config import CoreConfig
from cxpulse.exporter.service import ExporterState, _apply_batch
from cxpulse.exporter.timing import Timing, log
from cxpulse.settings import Settings

from bench.bench_latency import STAGES, stages
from tests.unit.test_persistence import P, recover


def test_off_it_keeps_and_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, log.name)
    t = Timing()
    t.applied([(0, 5, 1)], 1.0, 1.1, 1.2)
    t.evaluated(1.3, 1.4, 1.5, 1.6)
    assert t.batches == [] and not caplog.records


def test_on_each_evaluation_logs_the_batches_applied_since_the_previous_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, log.name)
    t = Timing()
    t.applied([(0, 5, 100), (2, 9, 101)], 1.0, 1.1, 1.2)
    t.evaluated(1.3, 1.4, 1.5, 1.6)
    t.applied([(1, 7, 102)], 2.0, 2.1, 2.2)
    t.evaluated(2.3, 2.4, 2.5, 2.6)
    lines = [json.loads(r.getMessage()) for r in caplog.records]
    assert [ln["eval"] for ln in lines] == [[1.3, 1.4, 1.5, 1.6], [2.3, 2.4, 2.5, 2.6]]
    assert [ln["batches"] for ln in lines] == [
        [[0, 5, 100, 1.0, 1.1, 1.2], [2, 9, 101, 1.0, 1.1, 1.2]], [[1, 7, 102, 2.0, 2.1, 2.2]]
    ]


def test_the_evaluation_line_carries_its_own_cpu_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An evaluation that burns CPU reports it, and never more than its wall time (the
    bench reads the gap as the time the evaluating thread waited for others)."""
    caplog.set_level(logging.DEBUG, log.name)
    state = ExporterState(Settings(), CoreConfig(), P + 1)
    store, _ = recover(P, [])
    records = [ConsumerRecord("changelog", P, i, 1000 + i, 0, k, v, None, 0, 0, ())
               for i, (k, v) in enumerate(store.batch_writes({"P:a": b"1"}, wall_ms=0))]
    _apply_batch(state, {TopicPartition("changelog", P): records})
    state.evaluate_and_render(1_800_000_000_000)
    (line,) = [json.loads(r.getMessage()) for r in caplog.records]
    wall = line["eval"][2] - line["eval"][1]
    assert 0 < line["cpu"] <= wall + 1e-3


def test_apply_batch_names_the_commit_markers_it_applied() -> None:
    store, _ = recover(P, [])
    log_: list[Any] = []
    for i, batch in enumerate(({"P:a": b"1"}, {"P:b": b"1", "P:c": b"1"})):
        log_ += store.batch_writes(batch, wall_ms=i)
    records = [ConsumerRecord("changelog", P, 100 + i, 1000 + i, 0, k, v, None, 0, 0, ())
               for i, (k, v) in enumerate(log_)]  # fmt: skip
    rests = [k.decode().split("/", 1)[1] for k, _ in log_]
    is_marker = [rest == "m" or rest.startswith("j/") for rest in rests]  # the marker keys
    state = ExporterState(Settings(), CoreConfig(), P + 1)
    got = _apply_batch(state, {TopicPartition("changelog", P): records})
    assert got == [(P, r.offset, r.timestamp) for r, m in zip(records, is_marker, strict=True)
                   if m]  # fmt: skip
    assert len(got) == 2
    assert state.replicas[P].parked_surveys() == 3


def test_bench_places_a_marker_in_the_first_commit_after_its_record() -> None:
    line = {"eval": [5.0, 5.1, 5.6, 5.7], "gc": [0, 0],
            "batches": [[1, 10, 0, 4.0, 4.2, 4.5], [1, 30, 0, 4.6, 4.7, 4.8],
                        [0, 20, 0, 4.0, 4.2, 4.5]]}  # fmt: skip
    log_text = f"x INFO other: y\n2026 DEBUG cxpulse.exporter.timing: {json.dumps(line)}\n"
    watch = {"a": (3.5, 1, 12), "b": (3.9, 1, 31), "c": (3.8, 0, 19), "d": (3.0, 1, 9)}
    split = stages(log_text, watch, {"a": 6.0, "c": 5.9, "d": 6.1})
    # b: no commit after it yet; d: placed in the batch at 10
    assert [split[s] for s in ("fetch", "apply")] == [
        pytest.approx([1.1, 0.2, 1.0]), pytest.approx([0.1, 0.3, 0.3])]  # a, c, d by watch order
    total = [sum(split[s][i] for s in STAGES) for i in range(3)]
    assert total == pytest.approx([6.0 - 3.5, 5.9 - 3.8, 6.1 - 3.0])


def test_the_worker_trace_is_off_by_default_and_one_line_per_durable_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from cxpulse.worker import timing as wt

    caplog.set_level(logging.INFO, wt.log.name)
    wt.batch_durable(1.0, 1.1, 1.2, 1.3, {"t": {0: 5}})
    assert not caplog.records
    caplog.set_level(logging.DEBUG, wt.log.name)
    wt.batch_durable(1.0, 1.1, 1.2, 1.3, {"t": {1: 7, 0: 5}})
    (line,) = [json.loads(r.getMessage()) for r in caplog.records]
    assert line == {"batch": [1.0, 1.1, 1.2, 1.3], "offsets": {"t": {"0": 5, "1": 7}}}


def test_bench_places_a_marker_in_the_first_worker_batch_that_applied_its_offset() -> None:
    from bench.bench_latency import STAGES, WORKER_STAGES, worker_stages

    assert not set(STAGES) & set(WORKER_STAGES)  # one table of results holds both

    def line(batch: list[float], offsets: dict[str, dict[str, int]]) -> str:
        return (f"2026 DEBUG cxpulse.worker.timing: "
                f"{json.dumps({'batch': batch, 'offsets': offsets})}\n")  # fmt: skip

    log_text = (line([2.0, 2.1, 2.2, 2.5], {"tk": {"0": 9, "1": 3}})
                + line([3.0, 3.2, 3.5, 3.6], {"tk": {"0": 20}, "sv": {"0": 99}}))  # fmt: skip
    sent = {"a": 1.5, "b": 1.8, "c": 2.5, "d": 2.9}
    inputs = {"a": (0, 9), "b": (1, 3), "c": (0, 10), "d": (1, 4)}  # d: never applied
    watch = {"a": (2.7, 0, 1), "b": (2.6, 0, 2), "c": (3.9, 0, 3), "d": (4.0, 0, 4)}
    split = worker_stages(log_text, "tk", sent, inputs, watch)
    assert [split[s] for s in ("queue", "process", "commit", "read")] == [
        pytest.approx([0.5, 0.2, 0.5]), pytest.approx([0.1, 0.1, 0.2]),
        pytest.approx([0.3, 0.3, 0.1]),
        pytest.approx([0.2, 0.1, 0.3])]  # fmt: skip
    totals = [sum(split[s][i] for s in WORKER_STAGES) for i in range(3)]
    assert totals == pytest.approx([2.7 - 1.5, 2.6 - 1.8, 3.9 - 2.5])
