"""Several workers, and the broker going away: totals stay exact.

Scale-out: two workers share 4 partitions; their counters summed (as PromQL
`sum` does) equal one worker's. One is stopped, the other takes its
partitions over (rebuilding their state from the changelog) and goes on with
new data; totals and durable state still equal the offline core.

Broker restart: the broker is restarted while a worker runs; the worker
reconnects by itself (same process) and catches up.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cxpulse.importer.replay import read_lines

from tests.integration.test_worker_pipeline import (
    PARTITIONS,
    WorkerProc,
    assert_counts,
    assert_deadletters,
    assert_durable_state,
    assert_kpi_series,
    expected,
    make_topics,
    parse_metrics,
    replay,
    simulate,
    totals,
    wait_consumed,
    wait_for,
)

pytestmark = pytest.mark.kafka


def owned(w: WorkerProc) -> int:
    w.supervise()  # an exited worker fails with its log's tail, not a bare "connection refused"
    return int(parse_metrics(w.scrape("/metrics/worker"))["cxpulse_worker_partitions_owned"][0][1])


def owned_or_none(w: WorkerProc) -> int | None:
    """`owned`, or None while the worker's endpoint does not answer yet (a worker restarted
    after kill -9 binds its port again only once it is up; a worker that exited still
    fails through `supervise`)."""
    try:
        return owned(w)
    except (OSError, KeyError):
        return None


def wait_both_own(w1: WorkerProc, w2: WorkerProc) -> None:
    def both_own() -> bool:
        n1, n2 = owned_or_none(w1), owned_or_none(w2)
        return bool(n1 and n2)

    wait_for(both_own, 90, "both workers owning partitions", w1, w2)


def test_two_workers_then_one_takes_over(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path, runtime: str
) -> None:
    topics = make_topics(topic_factory)
    day1 = simulate(tmp_path / "day1.jsonl", seed=505, span="3h")
    day2 = simulate(tmp_path / "day2.jsonl", seed=606, span="3h", start="2026-11-02T11:00:00Z")
    lines1, lines2 = list(read_lines(day1)), list(read_lines(day2))
    exp1, exp_all = expected(lines1), expected(lines1 + lines2)
    w1 = WorkerProc(kafka_bootstrap, topics, tmp_path, "w1", runtime=runtime).start()
    w2 = WorkerProc(kafka_bootstrap, topics, tmp_path, "w2", runtime=runtime).start()
    try:

        def both_own() -> bool:
            try:
                return owned(w1) + owned(w2) == 4 and owned(w1) > 0 and owned(w2) > 0
            except (OSError, KeyError):
                return False

        wait_for(both_own, 90, "both workers owning partitions", w1, w2)
        replay(day1, kafka_bootstrap, topics)
        t = wait_consumed([w1, w2], exp1.consumed)
        assert_counts(t, exp1)
        assert owned(w1) in (1, 2, 3) and owned(w1) + owned(w2) == 4

        assert w2.stop() == 0  # graceful: its partitions move to w1
        wait_for(lambda: owned(w1) == 4, 90, "w1 owning all partitions", w1)
        replay(day2, kafka_bootstrap, topics)
        t = wait_consumed([w1], exp_all.consumed)
        assert_counts(t, exp_all)
        assert_kpi_series(w1.scrape(), exp_all)
        assert w1.stop() == 0
        assert_durable_state(kafka_bootstrap, topics, exp_all)
        assert_deadletters(kafka_bootstrap, topics, exp_all, exactly_once=runtime == "direct")
    finally:
        w1.stop()
        w2.stop()


def test_broker_restart_worker_reconnects(
    kafka_broker: object, topic_factory: Callable[..., str], tmp_path: Path, runtime: str
) -> None:
    bootstrap: str = kafka_broker.bootstrap  # type: ignore[attr-defined]
    topics = make_topics(topic_factory)
    capture = simulate(tmp_path / "sim.jsonl", seed=707, span="3h")
    lines = list(read_lines(capture))
    half = len(lines) // 2
    exp_half, exp = expected(lines[:half]), expected(lines)
    w = WorkerProc(bootstrap, topics, tmp_path, "w1", runtime=runtime).start()
    try:
        replay(capture, bootstrap, topics, lines[:half])
        assert_counts(wait_consumed([w], exp_half.consumed), exp_half)
        kafka_broker.restart(down_seconds=3)  # type: ignore[attr-defined]
        assert w.alive(), "worker died with the broker"
        replay(capture, bootstrap, topics, lines[half:])
        t = wait_consumed([w], exp.consumed, timeout=240)
        assert_counts(t, exp)
        # no restart of the worker itself (bar the known faust fetcher race)
        assert w.alive() and w.starts == 1 + w.known_crashes
        assert_kpi_series(w.scrape(), exp)
        assert w.stop() == 0
        assert_durable_state(bootstrap, topics, exp)
    finally:
        w.stop()


def test_sigkill_one_of_two_then_it_returns(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path, runtime: str
) -> None:
    """kill -9 of one worker mid-run: the other takes its partitions over from the
    changelog; the killed one restarts on its own RocksDB (which may hold writes the
    changelog never got) and gets partitions back. Totals and state stay exact."""
    topics = make_topics(topic_factory)
    capture = simulate(tmp_path / "sim.jsonl", seed=808, span="24h")
    lines = list(read_lines(capture))
    exp = expected(lines)
    small = ("--set", "batch_size=200", "--set", "batch_timeout=50ms")
    w1 = WorkerProc(kafka_bootstrap, topics, tmp_path, "w1", *small, runtime=runtime).start()
    w2 = WorkerProc(kafka_bootstrap, topics, tmp_path, "w2", *small, runtime=runtime).start()
    try:
        wait_both_own(w1, w2)
        replay(capture, kafka_bootstrap, topics)
        wait_for(lambda: totals([w1, w2]).consumed > exp.consumed // 3, 120, "a third", w1, w2)
        before = totals([w1, w2]).consumed
        w2.kill()
        assert before < exp.consumed, "the kill must land mid-run"
        wait_for(lambda: totals([w1]).consumed > exp.consumed * 2 // 3, 120, "2/3", w1)
        w2.start()
        t = wait_consumed([w1, w2], exp.consumed, timeout=240)
        assert_counts(t, exp)
        assert w1.stop() == 0
        # w1's partitions move to w2: let it finish restoring them (its restore writes
        # the repairs its own store holds) before stopping it too. Stopped during that
        # restore (faust: "Producer service not yet started"), the repairs wait for the
        # next start, and the changelog alone is not yet the final state.
        wait_for(lambda: owned_or_none(w2) == PARTITIONS, 90, "w2 owning every partition", w2)
        assert w2.stop() == 0
        assert_durable_state(kafka_bootstrap, topics, exp)
        assert_deadletters(kafka_bootstrap, topics, exp, exactly_once=runtime == "direct")
    finally:
        w1.stop()
        w2.stop()


def test_frozen_worker_is_fenced_when_it_wakes(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    """A worker frozen (SIGSTOP: a long GC pause, a stalled VM) past its session
    timeout loses its partitions to the other; when it wakes up it still holds
    their engines and a batch in hand. Its writes must not reach the changelog:
    the new owner's transactional producer fenced it, so its batch aborts and it
    exits (70) and restarts. Totals and durable state stay exact."""
    topics = make_topics(topic_factory)
    capture = simulate(tmp_path / "sim.jsonl", seed=919, span="24h")
    lines = list(read_lines(capture))
    exp = expected(lines)
    # small batches: many transactions, so the freeze lands inside one
    small = ("--set", "batch_size=100", "--set", "batch_timeout=50ms")
    w1 = WorkerProc(kafka_bootstrap, topics, tmp_path, "w1", *small).start()
    w2 = WorkerProc(kafka_bootstrap, topics, tmp_path, "w2", *small).start()
    w2.expected_exit = (70, "fenced")
    try:
        wait_both_own(w1, w2)
        replay(capture, kafka_bootstrap, topics)
        wait_for(lambda: totals([w2]).consumed > 2000, 120, "w2 busy", w1, w2)
        assert w2.proc is not None
        w2.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: owned(w1) == 4, 90, "w1 taking over the frozen worker's share", w1)
            wait_for(lambda: totals([w1]).consumed > exp.consumed // 2, 120, "w1 going on", w1)
        finally:
            w2.proc.send_signal(signal.SIGCONT)
        time.sleep(2)
        t = wait_consumed([w1, w2], exp.consumed, timeout=240)
        assert_counts(t, exp)
        assert w1.stop() == 0 and w2.stop() == 0
        assert_durable_state(kafka_bootstrap, topics, exp)
        # the fenced batch, dead letters included, was aborted: each one once
        assert_deadletters(kafka_bootstrap, topics, exp, exactly_once=True)
    finally:
        w1.stop()
        w2.stop()


def test_stops_on_sigterm_while_the_broker_is_down(tmp_path: Path) -> None:
    """Ops stop a worker during a broker outage: it must exit (0) within its stop
    timeout, not hang on a commit or on leaving the group."""
    import asyncio

    from cxpulse.kafka.broker import KafkaBroker

    from bench.kafka_setup import create_topics
    from tests.integration.test_worker_pipeline import Topics

    broker = KafkaBroker(workdir=tmp_path / "k").start()
    try:
        topics = Topics("down.tickets", "down.surveys", "down.dl", "down-g")
        names = [topics.tickets, topics.surveys, topics.deadletter]
        asyncio.run(create_topics(broker.bootstrap, names))
        capture = simulate(tmp_path / "sim.jsonl", seed=929, span="2h")
        replay(capture, broker.bootstrap, topics)
        w = WorkerProc(broker.bootstrap, topics, tmp_path, "w1").start()
        n = len(list(read_lines(capture)))
        wait_for(lambda: totals([w]).consumed == n, 120, "all consumed", w)
        # counted means applied; let the last batch become durable first (a
        # broker lost *during* a batch's writes ends the worker with 70, by design)
        time.sleep(3)
        broker.stop()
        time.sleep(8)  # the worker keeps looping: monitoring commits, fetches
        assert w.alive()
        t0 = time.monotonic()
        assert w.stop(timeout=60) == 0
        assert time.monotonic() - t0 < 45
    finally:
        broker.stop(remove_data=True)
