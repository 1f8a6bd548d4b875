"""`cxpulse worker` end to end on the real broker: equivalence, catch-up, start-up errors.

The reference is the pure core fed the same file offline, partition by
partition in file order (what `cxpulse report --partitions N` computes).
Each test compares three things:

* the self-metric counters scraped from `/metrics` (consumed, applied,
  duplicate, late, dead-lettered by reason) against offline counts;
* the *durable* state: the changelog topic read back, rebuilt with the same
  recovery code a restarting worker uses, evaluated with `evaluate`, equal to
  the offline evaluation (exact, sketches included: same state, same bytes);
* the dead-letter topic: every rejected message present, original bytes.

Helpers here are shared by the other `test_worker_*` modules.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest
from cxpulse.changelog.store import PartitionStore
from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode, route_of
from cxpulse.core.engine import Evaluation, PartitionEngine, evaluate
from cxpulse.core.partitioning import partition_for
from cxpulse.importer.replay import read_lines

from tests.support.ports import free_port
from tests.support.signals import default_sigint

ROOT = Path(__file__).resolve().parents[2]
CXPULSE = [sys.executable, "-m", "cxpulse.cli"]
PARTITIONS = 4
#: Simulated span of the standard run; CXPULSE_TEST_FULL_DAY=1 runs a whole day.
SPAN = "24h" if os.environ.get("CXPULSE_TEST_FULL_DAY") else "6h"

pytestmark = pytest.mark.kafka


# ----------------------------------------------------------------------------- data


def simulate(
    out: Path,
    seed: int,
    span: str = SPAN,
    per_day: int = 6000,
    start: str = "2026-11-02T08:00:00Z",
    contract: str = "1.0",
) -> Path:
    """A dirty simulated capture: duplicates, disorder within lateness, malformed lines."""
    subprocess.run(
        [*CXPULSE, "simulate", "--seed", str(seed), "--duration", span,
         "--tickets-per-day", str(per_day), "--duplicates", "0.03", "--disorder", "120",
         "--malformed", "0.01", "--start", start, "--contract", contract, "--out", str(out)],
        check=True, cwd=ROOT, capture_output=True,
    )  # fmt: skip
    return out


def replay(
    path: Path, bootstrap: str, topics: Topics, lines: Iterable[bytes] | None = None
) -> None:
    src = path
    if lines is not None:  # a slice of the file
        src = path.with_suffix(f".part{random.randrange(10**9)}.jsonl")
        src.write_bytes(b"".join(line + b"\n" for line in lines))
    subprocess.run(
        [*CXPULSE, "replay", "--bootstrap-servers", bootstrap, "--topic-tickets", topics.tickets,
         "--topic-surveys", topics.surveys, str(src)],
        check=True, cwd=ROOT, capture_output=True,
    )  # fmt: skip


@dataclass
class Expected:
    engines: dict[int, PartitionEngine]
    outcomes: Counter[tuple[str, str]]  # (role, outcome) -> n
    deadletters: Counter[tuple[str, str]]  # (role, reason) -> n
    consumed: int
    evaluation: Evaluation = field(init=False)

    def __post_init__(self) -> None:
        self.evaluation = evaluate([self.engines[p] for p in sorted(self.engines)])


def expected(
    lines: Iterable[bytes], partitions: int = PARTITIONS, config: CoreConfig | None = None
) -> Expected:
    """The offline reference: the core fed each partition's messages in order."""
    config = config or CoreConfig()
    engines = {p: PartitionEngine(config, p) for p in range(partitions)}
    outcomes: Counter[tuple[str, str]] = Counter()
    dls: Counter[tuple[str, str]] = Counter()
    n = 0
    for value in lines:
        n += 1
        role, key = route_of(value)
        event = decode(value)
        if isinstance(event, Rejection):
            dls[(role, event.code)] += 1
            continue
        assert key is not None
        outcome = engines[partition_for(key, partitions)].apply(role, event)
        if isinstance(outcome, Rejection):  # refused by the engine: dead-lettered
            dls[(role, outcome.code)] += 1
            continue
        outcomes[(role, str(outcome))] += 1
    return Expected(engines, outcomes, dls, n)


# ----------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class Topics:
    tickets: str
    surveys: str
    deadletter: str
    group: str

    @property
    def changelog(self) -> str:
        return f"{self.group}-state-changelog"


@pytest.fixture
def topics(topic_factory: Callable[..., str]) -> Topics:
    return make_topics(topic_factory)


def make_topics(topic_factory: Callable[..., str]) -> Topics:
    """Fresh co-partitioned input topics, a dead-letter topic and a group id."""
    t = topic_factory("wt.tickets", PARTITIONS)
    suffix = t.rsplit(".", 1)[1]
    return Topics(
        tickets=t,
        surveys=topic_factory("wt.surveys", PARTITIONS),
        deadletter=topic_factory("wt.dl", PARTITIONS),
        group=f"wt-{suffix}",
    )


# ----------------------------------------------------------------------------- worker


class WorkerProc:
    """One `cxpulse worker` subprocess with its own datadir, port and log file."""

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        workdir: Path,
        name: str,
        *extra: str,
        runtime: str = "direct",
    ) -> None:
        self.bootstrap, self.topics, self.name = bootstrap, topics, name
        self.runtime = runtime
        self.datadir = workdir / f"{name}-data"
        self.log_path = workdir / f"{name}.log"
        self.port = free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.known_crashes = 0

    #: keep the port across restarts (a test whose Prometheus scrapes a fixed target)
    keep_port = False
    #: how `cxpulse` is run (a benchmark's traced worker runs it under a logging setup)
    command: ClassVar[list[str]] = CXPULSE

    def start(self) -> WorkerProc:
        self.stopping = False
        if not self.keep_port:
            self.port = free_port()
        cmd = [
            *self.command, "worker", "--bootstrap-servers", self.bootstrap,
            "--group-id", self.topics.group, "--datadir", str(self.datadir),
            "--metrics-port", str(self.port), "--topic-tickets", self.topics.tickets,
            "--topic-surveys", self.topics.surveys, "--topic-deadletter", self.topics.deadletter,
            "--set", "session_timeout=6s", "--set", "heartbeat_interval=1s",
            "--set", "rebalance_timeout=20s", "--set", f"runtime={self.runtime}", *self.extra,
        ]  # fmt: skip
        log = self.log_path.open("ab")
        log.write(f"\n===== start {self.starts} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=default_sigint)
        self.starts += 1
        return self

    stopping = False
    #: (exit code, log text) of an exit the test provokes on purpose: restarted
    expected_exit: tuple[int, str] | None = None
    expected_exits = 0

    def kill(self) -> None:
        assert self.proc is not None
        self.stopping = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 60) -> int:
        self.stopping = True
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{self.name} ignored SIGTERM for {timeout}s") from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def supervise(self) -> None:
        """Restart after a crash, as systemd/Kubernetes would (crash-only design).

        Only the known faust/aiokafka fetcher race of the faust runtime is
        tolerated (a KeyError in aiokafka's `fetched_records` right after a
        rebalance, which kills the faust Fetcher and the worker); any other
        exit, and any exit of the direct runtime, fails the test.
        """
        if self.proc is None or self.proc.poll() is None or self.stopping:
            return
        tail = self.log_text()[-6000:]
        if self.expected_exit is not None and self.proc.returncode == self.expected_exit[0] and (
            self.expected_exit[1] in tail
        ):
            self.expected_exits += 1
            self.start()
            return
        if self.runtime == "faust" and "fetched_records" in tail and "KeyError" in tail:
            self.known_crashes += 1
            self.start()
            return
        raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def scrape(self, path: str = "/metrics/partitions") -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
            body: bytes = r.read()
            return body.decode()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


@dataclass
class Totals:
    consumed: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    deadletters: Counter[tuple[str, str]] = field(default_factory=Counter)


def totals(workers: Iterable[WorkerProc]) -> Totals:
    """Counters summed over workers, as `sum by (...)` in PromQL would."""
    t = Totals()
    for w in workers:
        w.supervise()
        if not w.alive():
            continue
        try:
            m = parse_metrics(w.scrape("/metrics/worker"))
        except OSError:
            continue
        for _labels, v in m.get("cxpulse_messages_consumed_total", []):
            t.consumed += int(v)
        for labels, v in m.get("cxpulse_events_total", []):
            t.outcomes[(labels["role"], labels["outcome"])] += int(v)
        for labels, v in m.get("cxpulse_deadletter_messages_total", []):
            t.deadletters[(labels["role"], labels["reason"])] += int(v)
    return t


class Logged(Protocol):
    """A test's child process whose log a failed wait shows."""

    def log_text(self) -> str: ...


def wait_for(pred: Callable[[], bool], timeout: float, what: str, *workers: Logged) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.3)
    logs = "\n".join(w.log_text()[-3000:] for w in workers)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")


def wait_consumed(workers: list[WorkerProc], n: int, timeout: float = 180) -> Totals:
    """Wait until at least n messages are counted, the same totals on two polls 1 s apart.

    Workers are scraped one after the other, so during a rebalance a partition
    can be counted by both (like a PromQL sum over instances during a
    hand-over); a stable reading is what the assertions compare.
    """
    box: list[Totals] = []

    def done() -> bool:
        t = totals(workers)
        if t.consumed < n:
            return False
        time.sleep(1.0)
        again = totals(workers)
        box[:] = [again]
        return again.consumed == t.consumed and again.outcomes == t.outcomes

    wait_for(done, timeout, f"{n} messages consumed", *workers)
    return box[0]


# ----------------------------------------------------------------------------- read back


async def _read_topic(bootstrap: str, topic: str) -> list[Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    # read_committed, as the worker restores: a fenced or killed owner's aborted
    # batch is not state (and for non-transactional writes it changes nothing)
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await c.start()
    try:
        parts = c.partitions_for_topic(topic) or set()
        if not parts:
            await c._client.force_metadata_update()
            parts = c.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        ends = await c.end_offsets(tps)
        records: list[Any] = []
        while [tp for tp in tps if await c.position(tp) < ends[tp]]:
            batch = await c.getmany(timeout_ms=1000)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await c.stop()


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    return asyncio.run(_read_topic(bootstrap, topic))


def durable_engines(
    bootstrap: str, topics: Topics, config: CoreConfig | None = None
) -> dict[int, PartitionEngine]:
    """Engines rebuilt from the changelog alone, with the worker's recovery code."""
    tables: dict[int, dict[bytes, bytes]] = {}
    for r in read_topic(bootstrap, topics.changelog):
        t = tables.setdefault(r.partition, {})
        if r.value is None:
            t.pop(r.key, None)
        else:
            t[r.key] = r.value
    config = config or CoreConfig()
    engines = {}
    for p in range(PARTITIONS):
        _, rec = PartitionStore.recover(p, tables.get(p, {}).items())
        engines[p] = PartitionEngine.restore(config, p, rec.items.items())
    return engines


def assert_counts(t: Totals, exp: Expected) -> None:
    assert t.consumed == exp.consumed
    assert +t.outcomes == +exp.outcomes
    assert +t.deadletters == +exp.deadletters


def _samples(text: str) -> dict[str, set[tuple[tuple[tuple[str, str], ...], float]]]:
    return {
        name: {(tuple(sorted(labels.items())), v) for labels, v in samples}
        for name, samples in parse_metrics(text).items()
    }


def assert_kpi_series(metrics_text: str, exp: Expected) -> None:
    """The KPI series a worker serves equal the offline evaluation rendered the same way."""
    from cxpulse.exposition.render import KpiCollector
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: exp.evaluation))
    want = _samples(generate_latest(registry).decode())
    got = _samples(metrics_text)
    assert sum(len(v) for v in want.values()) > 200
    for name, samples in want.items():
        assert got.get(name) == samples, name


def assert_durable_state(
    bootstrap: str, topics: Topics, exp: Expected, config: CoreConfig | None = None
) -> None:
    engines = durable_engines(bootstrap, topics, config)
    got = evaluate([engines[p] for p in sorted(engines)])
    assert got.at_ms == exp.evaluation.at_ms
    assert got.counters == exp.evaluation.counters
    assert got.histograms == exp.evaluation.histograms
    assert got.gauges == exp.evaluation.gauges
    assert got.kpis == exp.evaluation.kpis
    assert len(got.kpis) > 50  # not an empty comparison


def assert_deadletters(bootstrap: str, topics: Topics, exp: Expected, exactly_once: bool) -> None:
    from cxpulse.core.deadletter import DeadLetter

    records = read_topic(bootstrap, topics.deadletter)
    envs = [DeadLetter.from_headers(r.key, r.value, r.headers) for r in records]
    sources = Counter((e.envelope.source_topic, e.envelope.source_partition,
                       e.envelope.source_offset) for e in envs)  # fmt: skip
    assert len(sources) == sum(exp.deadletters.values())  # none lost
    if exactly_once:
        assert max(sources.values()) == 1
    reasons = Counter(e.envelope.reason for e in envs)
    assert set(reasons) == {reason for _, reason in exp.deadletters}


IDS = re.compile(rb'"(?:ticket_id|customer_id)":"([^"]+)"')


def assert_no_personal_data(lines: list[bytes], *texts: str) -> None:
    """No ticket id or customer id of the input appears in labels or log lines."""
    ids = {m.group(1).decode() for line in lines for m in IDS.finditer(line)}
    assert len(ids) > 100
    for text in texts:
        tokens = set(re.findall(r"[A-Za-z0-9_.:-]+", text))
        leaked = sorted(ids & tokens)
        assert not leaked, f"personal ids in output: {leaked[:5]}"


# ----------------------------------------------------------------------------- tests


def test_live_equivalence_one_worker(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, runtime: str
) -> None:
    """Worker running while a simulated day is replayed: metrics = offline core."""
    capture = simulate(tmp_path / "sim.jsonl", seed=101)
    lines = list(read_lines(capture))
    exp = expected(lines)
    # The offline reference is exactly what `cxpulse report --partitions N` prints.
    from cxpulse.report.command import compute

    report = compute(capture.read_bytes().splitlines(), partitions=PARTITIONS).evaluation
    assert (report.kpis, report.gauges, report.counters, report.histograms) == (
        exp.evaluation.kpis,
        exp.evaluation.gauges,
        exp.evaluation.counters,
        exp.evaluation.histograms,
    )
    w = WorkerProc(kafka_bootstrap, topics, tmp_path, "w1", runtime=runtime).start()
    try:
        wait_for(lambda: totals([w]).consumed == 0 and "assigned" in w.log_text(), 60,
                 "worker up", w)  # fmt: skip
        replay(capture, kafka_bootstrap, topics)
        t = wait_consumed([w], exp.consumed)
        assert_counts(t, exp)
        metrics_text = w.scrape()
        assert_kpi_series(metrics_text, exp)
        m = parse_metrics(metrics_text)
        lag = [v for _, v in m.get("cxpulse_consumer_lag_messages", [])]
        assert lag and max(lag) == 0
        assert m["cxpulse_last_processed_timestamp_seconds"][0][1] > time.time() - 120
        assert m["cxpulse_worker_partitions_owned"][0][1] == PARTITIONS
        assert w.stop() == 0
        assert_durable_state(kafka_bootstrap, topics, exp)
        assert_deadletters(kafka_bootstrap, topics, exp, exactly_once=True)
        assert_no_personal_data(lines, metrics_text, w.log_text())
    finally:
        w.stop()


def test_live_equivalence_contract_1_1(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, runtime: str
) -> None:
    """The shapes contract 1.1 adds (bot tickets and handoffs, a reply saved with
    its solve, survey offers, CSAT on other scales), dirty, through the broker
    and a worker: its KPI series and durable state = `cxpulse report`."""
    capture = simulate(tmp_path / "sim11.jsonl", seed=111, span="3h", contract="1.1")
    raw = capture.read_bytes()
    assert b'"ticket.handoff"' in raw and b'"survey.offered"' in raw and b'"two_point"' in raw
    lines = list(read_lines(capture))
    exp = expected(lines)
    from cxpulse.report.command import compute

    report = compute(raw.splitlines(), partitions=PARTITIONS).evaluation
    assert report.kpis == exp.evaluation.kpis
    rates = [k for k in report.kpis if k.name == "csat_response_rate" and k.value is not None]
    assert rates  # the 1.1 KPI is there to compare
    w = WorkerProc(kafka_bootstrap, topics, tmp_path, "w1", runtime=runtime).start()
    try:
        wait_for(lambda: totals([w]).consumed == 0 and "assigned" in w.log_text(), 60,
                 "worker up", w)  # fmt: skip
        replay(capture, kafka_bootstrap, topics)
        assert_counts(wait_consumed([w], exp.consumed), exp)
        text = w.scrape()
        assert_kpi_series(text, exp)
        assert "cxpulse_csat_response_ratio{" in text
        assert w.stop() == 0
        assert_durable_state(kafka_bootstrap, topics, exp)
    finally:
        w.stop()


def test_catch_up_after_downtime(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, runtime: str
) -> None:
    """Stopped while most of the day is produced, then started: same result as live."""
    capture = simulate(tmp_path / "sim.jsonl", seed=202)
    lines = list(read_lines(capture))
    exp = expected(lines)
    first = len(lines) // 5
    w = WorkerProc(kafka_bootstrap, topics, tmp_path, "w1", runtime=runtime).start()
    try:
        replay(capture, kafka_bootstrap, topics, lines[:first])
        wait_consumed([w], first)
        assert w.stop() == 0
        replay(capture, kafka_bootstrap, topics, lines[first:])
        w.start()
        t = wait_consumed([w], exp.consumed)
        assert_counts(t, exp)
        assert_kpi_series(w.scrape(), exp)
        assert w.stop() == 0
        assert_durable_state(kafka_bootstrap, topics, exp)
        assert_deadletters(kafka_bootstrap, topics, exp, exactly_once=True)
        if runtime == "direct":
            # the restart came back from its RocksDB copy: no changelog record re-read
            second = w.log_text().split("===== start 1 =====", 1)[1]
            tails = re.findall(r"partition \d+ restored: \d+ keys \((\d+) read", second)
            assert tails == ["0"] * PARTITIONS, tails
    finally:
        w.stop()


def test_startup_fails_clearly(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    """Missing or not co-partitioned topics stop the worker at once, naming the setting."""
    t4 = topic_factory("wt.tickets", 4)
    s2 = topic_factory("wt.surveys", 2)
    base = [*CXPULSE, "worker", "--bootstrap-servers", kafka_bootstrap,
            "--datadir", str(tmp_path / "d"), "--metrics-port", str(free_port())]  # fmt: skip
    cases = [
        (["--topic-tickets", t4, "--topic-surveys", s2], "topic_surveys"),
        (["--topic-tickets", t4, "--topic-surveys", "wt.absent.x9"], "topic_surveys"),
        (["--set", "batch_size=-1"], "batch_size"),
    ]
    for args, name in cases:
        r = subprocess.run([*base, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stderr[-2000:]
        assert name in r.stderr, r.stderr[-2000:]
    # the absent topic was not auto-created by the check
    from tests.conftest import run_sync

    async def names() -> set[str]:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    assert "wt.absent.x9" not in run_sync(names())


def test_metrics_port_taken_fails_clearly(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = subprocess.run(
            [*CXPULSE, "worker", "--bootstrap-servers", kafka_bootstrap,
             "--topic-tickets", topics.tickets, "--topic-surveys", topics.surveys,
             "--datadir", str(tmp_path / "d"), "--metrics-port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 2
    assert "metrics_port" in r.stderr


async def _end_offset(bootstrap: str, topic: str, partition: int) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tp = TopicPartition(topic, partition)
        return int((await c.end_offsets([tp]))[tp])
    finally:
        await c.stop()


async def _delete_before(bootstrap: str, topic: str, partition: int, offset: int) -> None:
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topic, partition): RecordsToDelete(offset)})
    finally:
        await admin.close()


def test_messages_deleted_before_reading_are_counted_not_hidden(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, runtime: str
) -> None:
    """Retention deleted messages the worker had not read yet (it was down too
    long): it goes on from the log start and counts exactly what it lost."""
    from tests.conftest import run_sync

    capture = simulate(tmp_path / "sim.jsonl", seed=909, span="2h")
    lines = list(read_lines(capture))
    first = len(lines) // 3
    w = WorkerProc(kafka_bootstrap, topics, tmp_path, "w1", runtime=runtime).start()
    try:
        replay(capture, kafka_bootstrap, topics, lines[:first])
        read_upto = run_sync(_end_offset(kafka_bootstrap, topics.tickets, 0))
        wait_consumed([w], first)
        assert w.stop() == 0
        replay(capture, kafka_bootstrap, topics, lines[first:])
        end = run_sync(_end_offset(kafka_bootstrap, topics.tickets, 0))
        lost = min(50, (end - read_upto) // 2)
        assert lost > 0
        run_sync(_delete_before(kafka_bootstrap, topics.tickets, 0, read_upto + lost))
        w.start()
        t = wait_consumed([w], len(lines) - lost)
        assert t.consumed == len(lines) - lost
        m = parse_metrics(w.scrape("/metrics/worker"))
        counted = {
            (labels["topic"], labels["partition"]): v
            for labels, v in m.get("cxpulse_messages_lost_to_retention_total", [])
        }
        assert counted == {(topics.tickets, "0"): lost}
    finally:
        w.stop()
