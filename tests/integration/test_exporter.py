"""`cxpulse exporter`: one exact value per KPI series, whatever the number of workers.

Users run several workers behind one Prometheus and read KPIs through
Prometheus. So these tests do exactly that: real Kafka, real workers (SIGKILL
and a worker added mid-run), two exporter replicas (HA), a real Prometheus
2.42 scraping every second, and the values read back through its HTTP API,
compared with `cxpulse report` of the same events (rendered by the same
exporter code into a second Prometheus, so both sides go through PromQL).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest
from cxpulse.importer.replay import read_lines

from tests.integration.test_worker_pipeline import (
    CXPULSE,
    PARTITIONS,
    ROOT,
    Expected,
    Topics,
    WorkerProc,
    expected,
    make_topics,
    parse_metrics,
    replay,
    simulate,
    wait_consumed,
    wait_for,
)
from tests.support.ports import free_port
from tests.support.prom import LoopbackServer

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus]


class ExporterProc:
    """One `cxpulse exporter` subprocess."""

    #: how `cxpulse` is started (bench/bench_latency.py: with the timing trace on)
    command: ClassVar[list[str]] = CXPULSE

    def __init__(self, bootstrap: str, topics: Topics, workdir: Path, name: str,
                 *extra: str) -> None:  # fmt: skip
        self.bootstrap, self.topics, self.name, self.extra = bootstrap, topics, name, extra
        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ExporterProc:
        cmd = [
            *self.command, "exporter", "--bootstrap-servers", self.bootstrap,
            "--group-id", self.topics.group, "--metrics-port", str(self.port),
            "--topic-tickets", self.topics.tickets, "--topic-surveys", self.topics.surveys,
            "--set", "eval_interval=1s", *self.extra,
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        return self

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as r:
            body: bytes = r.read()
            return body.decode()

    def gauge(self, name: str) -> float | None:
        try:
            samples = parse_metrics(self.scrape()).get(name)
        except OSError:
            return None
        return samples[0][1] if samples else None

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            return self.proc.wait(30)
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def prometheus(jobs: dict[str, list[int]], interval: str = "1s") -> LoopbackServer:
    scrape = "".join(
        f"  - job_name: {job}\n    scrape_interval: {interval}\n    static_configs:\n"
        f"      - targets: [{', '.join(repr(f'127.0.0.1:{p}') for p in ports)}]\n"
        for job, ports in jobs.items()
    )
    return LoopbackServer("prometheus", f"global:\n  scrape_interval: {interval}\n"
                          f"scrape_configs:\n{scrape}").start()  # fmt: skip


def query(server: LoopbackServer, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
    url = f"{server.url}/api/v1/query?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = json.load(resp)
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def as_map(result: list[dict[str, Any]]) -> dict[tuple[Any, ...], str]:
    """Label set (without `instance`) -> value; replicas may repeat a series, never disagree."""
    out: dict[tuple[Any, ...], str] = {}
    for r in result:
        labels = tuple(sorted((k, v) for k, v in r["metric"].items() if k != "instance"))
        value = r["value"][1]
        assert out.setdefault(labels, value) == value, f"replicas disagree: {labels}"
    return out


class StaticMetrics:
    """Serves fixed Prometheus text (the report's evaluation) for a reference Prometheus."""

    def __init__(self, body: bytes) -> None:
        import http.server
        import threading

        payload = body

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def report_text(exp: Expected) -> bytes:
    from cxpulse.exposition.render import KpiCollector
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: exp.evaluation))
    return generate_latest(registry)


#: the exporter's own families (freshness, timestamps, its Kafka credentials), not KPIs
SELF_PREFIXES = ("kpi_delay", "exporter", "evaluation", "kafka_auth")
#: every KPI family the exporter serves, read deduplicated across replicas
KPI_SELECTOR = ('{job="cxpulse-exporter",__name__=~"cxpulse_.+",'
                f'__name__!~"cxpulse_({"|".join(SELF_PREFIXES)}).*"}}')


class Scraped(Protocol):
    """An exporter process of a test (plain here, with the ACL test's users there)."""

    def scrape(self) -> str: ...


def wait_settled(exporters: Sequence[Scraped], exp: Expected, timeout: float = 180) -> None:
    """Every exporter serves exactly the report's KPI series (every partition applied).

    Stream time alone is not enough: one partition can reach the last event time
    while another is still being applied, so the served series are compared."""
    want = kpi_samples(report_text(exp).decode())
    assert want

    def settled() -> bool:
        for e in exporters:
            try:
                text = e.scrape()
            except OSError:
                return False
            if kpi_samples(text) != want:
                return False
            delay = parse_metrics(text).get("cxpulse_kpi_delay_seconds")
            if not delay or delay[0][1] > 5:
                return False
        return True

    wait_for(settled, timeout, "both exporters serving the report's KPI series")


def test_workers_come_and_go_prometheus_holds_one_exact_value_per_series(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    """1 -> 3 workers, then one SIGKILLed, over a dirty 6 h; 2 exporters; Prometheus = report.

    Every worker exit fails the test (`supervise`), so the rebalances converge
    without any worker being fenced or evicted by its own restore."""
    topics = make_topics(topic_factory)
    capture = simulate(tmp_path / "sim.jsonl", seed=909)
    lines = list(read_lines(capture))
    exp = expected(lines)
    half = len(lines) // 2
    idle = ("--set", "idle_timeout=1h")  # the reference is at the last event's time
    workers = [WorkerProc(kafka_bootstrap, topics, tmp_path, f"w{i}") for i in range(3)]
    exporters = [ExporterProc(kafka_bootstrap, topics, tmp_path, f"x{i}", *idle)
                 for i in range(2)]  # fmt: skip
    for w in workers:  # ports are fixed for Prometheus' static config
        w.keep_port = True
    live = prometheus({
        "cxpulse-worker": [w.port for w in workers],
        "cxpulse-exporter": [e.port for e in exporters],
    })  # fmt: skip
    ref_http = StaticMetrics(report_text(exp))
    ref = prometheus({"cxpulse-exporter": [ref_http.port]})
    started = time.time()
    try:
        workers[0].start()
        for e in exporters:
            e.start()
        wait_for(lambda: "assigned" in workers[0].log_text(), 60, "first worker", workers[0])
        replay(capture, kafka_bootstrap, topics, lines[:half])
        workers[1].start()  # workers added mid-run: rebalances up to three members
        workers[2].start()
        wait_for(lambda: all("partitions assigned" in w.log_text() for w in workers), 120,
                 "three workers in the group", *workers)  # fmt: skip
        wait_consumed(workers, half // 2)
        workers[0].kill()  # SIGKILL mid-run: its partitions move to the other two
        replay(capture, kafka_bootstrap, topics, lines[half:])
        wait_consumed(workers[1:], exp.consumed - half // 2, timeout=300)
        wait_settled(exporters, exp)
        time.sleep(3)  # a few scrapes of the settled values
        now = time.time()
        # 1. Every KPI series: one value per label set once `instance` is dropped
        # (the two replicas agree), equal to the report's.
        got = query(live, KPI_SELECTOR, now)
        want = query(ref, KPI_SELECTOR, now)
        assert len(want) > 2000
        assert len(got) == 2 * len(want)  # both replicas serve every series
        assert as_map(got) == as_map(want)
        # 2. Every dashboard panel query and alert expression without a range
        # evaluates the same on live data as on the report's (range functions
        # over counters see the live history, which the reference cannot have).
        import yaml

        from tests.unit.test_mixin import panel_queries

        rules = yaml.safe_load((ROOT / "alerts" / "cxpulse-rules.yml").read_text())
        rule_exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
        compared = 0
        for expr in [*panel_queries(), *rule_exprs]:
            live_result = query(live, expr, now)
            ref_result = query(ref, expr, now)
            if "[" in expr or not ref_result or "up{" in expr or "ALERTS" in expr:
                continue  # range over live history, or pipeline panels (no KPI in them)
            assert as_map(live_result) == as_map(ref_result), expr
            compared += 1
        assert compared > 10
        # 3. No `_total` series ever went backwards over the whole run.
        span = int(time.time() - started) + 5
        named = 'label_replace({__name__=~"cxpulse_.+_total"}, "name", "$1", "__name__", "(.+)")'
        resets = query(live, f"resets(({named})[{span}s:1s]) > 0")
        assert resets == []
        counters = query(live, 'count({__name__=~"cxpulse_.+_total"})')
        assert float(counters[0]["value"][1]) > 100
        # 4. Per-worker and per-exporter series counts (for the note).
        per_job = query(live, 'count by (job, instance) ({__name__=~"cxpulse_.+"})')
        print("series per instance:", {(r["metric"]["job"], r["metric"]["instance"]):
                                       r["value"][1] for r in per_job})  # fmt: skip
        for e in exporters:  # followed from the start: nothing skipped, nothing corrupt
            own = parse_metrics(e.scrape())
            assert own["cxpulse_exporter_corrupt_records_total"][0][1] == 0
            assert own["cxpulse_exporter_stale_patches_total"][0][1] == 0
        m = parse_metrics(exporters[0].scrape())
        nbytes = m["cxpulse_exporter_changelog_bytes_total"][0][1]
        nrec = m["cxpulse_exporter_changelog_records_total"][0][1]
        print(f"changelog read per exporter: {nrec:.0f} records, {nbytes:.0f} bytes for "
              f"{exp.consumed} input messages ({nbytes / exp.consumed:.0f} B/message)")
    finally:
        for w in workers:
            if w.proc is not None and w.alive():
                w.stop()
        for e in exporters:
            if e.proc is not None:
                e.stop()
        live.stop()
        ref.stop()
        ref_http.close()


def kpi_samples(text: str) -> dict[str, set[tuple[tuple[tuple[str, str], ...], float]]]:
    """Series of a scrape without the exporter's own (freshness, timestamps)."""
    from tests.integration.test_worker_pipeline import _samples

    skip = tuple(f"cxpulse_{p}" for p in SELF_PREFIXES)
    return {n: v for n, v in _samples(text).items() if not n.startswith(skip)}


def report_samples(lines: list[bytes], at_ms: int) -> dict[str, Any]:
    from cxpulse.exposition.render import KpiCollector
    from cxpulse.report.command import compute
    from prometheus_client import CollectorRegistry, generate_latest

    from tests.integration.test_worker_pipeline import _samples

    ev = compute(lines, partitions=PARTITIONS, at_ms=at_ms).evaluation
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: ev))
    return _samples(generate_latest(registry).decode())


def created_15m(samples: dict[str, Any]) -> float:
    for labels, v in samples["cxpulse_tickets_created"]:
        d = dict(labels)
        if d["window"] == "15m" and d["team"] == d["channel"] == d["priority"] == "all":
            return float(v)
    raise AssertionError("no org-wide 15m tickets_created")


def test_quiet_half_hour_empties_windows_and_poison_times_change_nothing(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path, runtime: str
) -> None:
    """Events up to 30 min ago, then nothing: the 15m window empties (= report --at),
    freshness stays low; then a duplicate of an old event, one stamped next year and
    one stamped 0001: no window moves, freshness does not move, reasons are counted.
    Both runtimes write the changelog the exporter follows."""
    from cxpulse.sim.dirt import generate
    from cxpulse.sim.model import SimConfig

    topics = make_topics(topic_factory)
    now_ms = int(time.time() * 1000)
    sim = SimConfig(seed=5, start_ms=now_ms - 50 * 60_000, duration_ms=20 * 60_000,
                    tickets_per_day=30_000)  # fmt: skip
    lines = [rec.value for rec in generate(sim)]
    capture = tmp_path / "recent.jsonl"
    capture.write_bytes(b"".join(v + b"\n" for v in lines))
    w = WorkerProc(kafka_bootstrap, topics, tmp_path, "w0", runtime=runtime).start()
    x = ExporterProc(kafka_bootstrap, topics, tmp_path, "x0", "--set", "idle_timeout=3s").start()
    try:
        wait_for(lambda: "assigned" in w.log_text(), 60, "worker up", w)
        replay(capture, kafka_bootstrap, topics)
        wait_consumed([w], len(lines))

        def idle_now() -> bool:
            at = x.gauge("cxpulse_evaluation_timestamp_seconds")
            return at is not None and at > time.time() - 20

        wait_for(idle_now, 120, "evaluation instant advanced to the wall clock", w)
        text = x.scrape()
        metrics = parse_metrics(text)
        at_ms = round(metrics["cxpulse_evaluation_timestamp_seconds"][0][1] * 1000)
        assert metrics["cxpulse_kpi_delay_seconds"][0][1] < 5
        got = kpi_samples(text)
        want = report_samples(lines, at_ms)
        assert created_15m(got) == created_15m(want) == 0
        assert got == want  # every KPI series, at the same instant, equals report --at
        # Poison: a producer retry of an old event, next year, year 0001.
        next_year = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 400 * 86_400))
        future = {"event_id": "ev-future", "ticket_id": "T-future", "type": "ticket.created",
                  "ts": next_year, "team": "tech", "channel": "email",
                  "priority": "high"}  # fmt: skip
        ancient = dict(future, event_id="ev-ancient", ticket_id="T-ancient",
                       ts="0001-01-01T00:00:00Z")  # fmt: skip
        extra = [lines[10], json.dumps(future).encode(), json.dumps(ancient).encode()]
        replay(capture, kafka_bootstrap, topics, extra)
        wait_consumed([w], len(lines) + 3)
        time.sleep(3)  # a few evaluations
        text = x.scrape()
        metrics = parse_metrics(text)
        assert metrics["cxpulse_kpi_delay_seconds"][0][1] < 5
        at_ms = round(metrics["cxpulse_evaluation_timestamp_seconds"][0][1] * 1000)
        assert abs(at_ms / 1000 - time.time()) < 30  # not pushed to next year
        assert kpi_samples(text) == report_samples(lines + extra, at_ms)
        own = parse_metrics(w.scrape("/metrics"))
        reasons = {d["reason"]: v for d, v in own["cxpulse_deadletter_messages_total"]}
        assert reasons.get("timestamp_ahead") == 1 and reasons.get("timestamp_too_old") == 1
    finally:
        w.stop()
        x.stop()


def test_exporter_user_errors_are_one_line(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A missing input topic, a bad setting: one line naming it, exit 2, no traceback."""
    cases = [
        (["--topic-tickets", "no.such.topic"], "no.such.topic"),
        (["--set", "eval_interval=0s"], "eval_interval"),
    ]
    for extra, named in cases:
        out = subprocess.run(
            [*CXPULSE, "exporter", "--bootstrap-servers", kafka_bootstrap,
             "--metrics-port", str(free_port()), *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 2, out.stderr
        lines = [x for x in out.stderr.splitlines() if x.startswith("cxpulse exporter:")]
        assert len(lines) == 1 and named in lines[0], out.stderr
        assert "Traceback" not in out.stderr
