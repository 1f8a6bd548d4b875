"""A helpdesk's webhooks to a number on /metrics: `cxpulse ingest` -> Kafka -> `cxpulse
map` -> worker -> exporter, all real (HTTP, broker, subprocesses), one broker.

Per vendor one ticket lifecycle as the vendor sends it (tests/support/
helpdesk_lifecycles.py), every delivery posted twice (a vendor retry): the
exporter's first response time, first resolution time, reopens and CSAT of the
vendor's team equal what the vendor reports for that ticket, i.e. each
delivery counted once. Then each vendor's backfill of the same tickets (Zendesk's
incremental export; Chatwoot's, Freshdesk's and Zammad's API exports with their
status history) is imported to Kafka: every imported event is a duplicate for the
worker and no KPI moves. An unmappable delivery is on the dead-letter topic with
its bytes and reason, and the stage went on.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from tests.conftest import run_sync
from tests.integration.test_exporter import ExporterProc
from tests.integration.test_worker_pipeline import (
    CXPULSE,
    Topics,
    WorkerProc,
    parse_metrics,
    wait_for,
)
from tests.support.helpdesk_lifecycles import (
    CSAT,
    FRT_S,
    LIFECYCLES,
    MAPPING_YAML,
    REOPENS,
    RESOLUTION_S,
    TEAM,
    export_items,
    iso,
)
from tests.support.ingest import Ingest, MapProc
from tests.support.kafka_io import read_records
from tests.unit.test_import_exports import chatwoot_export, freshdesk_export, zammad_export

#: vendor -> its API export with status history (ticket, shift, t0), as the unit tests write it
API_EXPORTS = {"chatwoot": chatwoot_export, "freshdesk": freshdesk_export,
               "zammad": zammad_export}  # fmt: skip

pytestmark = pytest.mark.kafka


class Proc(Protocol):
    """One of the pipeline's processes in a test: its log for a failure, its exit code."""

    def log_text(self) -> str: ...

    def stop(self) -> int: ...


def worker_duplicates(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        samples = parse_metrics(r.read().decode()).get("cxpulse_events_total", [])
    return sum(v for labels, v in samples if labels.get("outcome") == "duplicate")


def team_value(text: str, name: str, team: str) -> float | None:
    """The 24h-window value of `name` for `team`, every other dimension `all`."""
    for labels, value in parse_metrics(text).get(name, []):
        if labels.get("team") == team and labels.get("window") == "24h" and all(
            v == "all" for k, v in labels.items() if k not in ("team", "window")
        ):
            return value
    return None


def test_four_helpdesks_through_gateway_map_worker_exporter(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    # one partition: every ticket's events move one stream time (surveys are attributed
    # once their ticket stream has passed them, as in production)
    topics = Topics(topic_factory("hd.tickets", 1), topic_factory("hd.surveys", 1),
                    topic_factory("hd.dl", 1), f"hd-{uuid.uuid4().hex[:8]}")  # fmt: skip
    raw = topic_factory("hd.raw", 2)
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(MAPPING_YAML)
    gateway = Ingest(kafka_bootstrap, raw, tmp_path).start()
    stage = MapProc(kafka_bootstrap, raw, topics.tickets, topics.surveys, topics.deadletter,
                    mapping_file, tmp_path, group=f"map-{topics.group}").start()  # fmt: skip
    worker = WorkerProc(kafka_bootstrap, topics, tmp_path, "w1").start()
    exporter = ExporterProc(kafka_bootstrap, topics, tmp_path, "x1").start()
    procs: list[Proc] = [gateway, stage, worker, exporter]
    try:
        # one vendor's lifecycle after the other (each 40 min, an hour apart), so the
        # events arrive in time order as from one helpdesk; creations in whole seconds
        now = int(time.time())
        starts: dict[str, tuple[int, float]] = {}  # vendor -> (ticket, t0)
        for n, (vendor, lifecycle) in enumerate(sorted(LIFECYCLES.items())):
            t0 = float(now - (4 - n) * 3600)
            starts[vendor] = (11 + n, t0)
            for body in lifecycle(11 + n, t0):
                for _ in range(2):  # every delivery twice: a vendor's retry
                    status, text = gateway.post_signed(vendor, body)
                    assert status == 200, (vendor, status, text)
        junk = {"type": "zen:event-type:user.created", "id": "u-1", "detail": {"id": "5"}}
        assert gateway.post_signed("zendesk", junk)[0] == 200
        # a later ticket moves the ticket stream past the surveys (team `elsewhere`)
        tick = {"type": "zen:event-type:ticket.created", "id": "t", "time": iso(time.time()),
                "subject": "zen:ticket:99", "detail": {"id": "99", "group_id": "1"}}
        assert gateway.post_signed("zendesk", tick)[0] == 200
        expected: dict[tuple[str, str], float] = {}
        for vendor, team in TEAM.items():
            expected[(team, "cxpulse_first_response_time_mean_seconds")] = FRT_S
            expected[(team, "cxpulse_resolution_time_mean_seconds")] = RESOLUTION_S
            expected[(team, "cxpulse_reopens")] = REOPENS
            csat = CSAT[vendor]
            if csat is not None:
                expected[(team, "cxpulse_csat_ratio")] = 1.0
                expected[(team, "cxpulse_csat_responses")] = 1.0
        got: dict[tuple[str, str], float | None] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                text = exporter.scrape()
            except OSError:
                text = ""
            got = {k: team_value(text, k[1], k[0]) for k in expected}
            if got == expected:
                break
            time.sleep(1)
        logs = "\n".join(p.log_text()[-2500:] for p in procs)
        assert got == expected, (got, logs)
        # backfill over the period the webhooks covered: Zendesk's export of its ticket,
        # imported to Kafka, is 15 duplicates for the worker and changes no KPI
        duplicates = worker_duplicates(worker.port)
        page = tmp_path / "export.json"
        page.write_text(json.dumps({"ticket_events": export_items(*starts["zendesk"])}))
        run = subprocess.run(
            [*CXPULSE, "import", "zendesk", str(page), "--bootstrap-servers", kafka_bootstrap,
             "--topic-tickets", topics.tickets, "--topic-surveys", topics.surveys,
             "--mapping-file", str(mapping_file)], capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        imported = 15
        # and the other three vendors' API exports with their status history (Chatwoot's
        # activity messages, Freshdesk's activities export, Zammad's ticket_history),
        # dated in the webhooks' seconds: every event is one the webhooks gave
        for vendor, export in API_EXPORTS.items():
            files = []
            for i, doc in enumerate(export(starts[vendor][0], 0, starts[vendor][1])):
                files.append(tmp_path / f"{vendor}-export-{i}.json")
                files[-1].write_text(json.dumps(doc))
            common = ["--topic-tickets", topics.tickets, "--topic-surveys", topics.surveys,
                      "--mapping-file", str(mapping_file)]  # fmt: skip
            out = tmp_path / f"{vendor}-imported.jsonl"
            run = subprocess.run([*CXPULSE, "import", vendor, *map(str, files), "--out", str(out),
                                  *common], capture_output=True, text=True, timeout=60)  # fmt: skip
            assert run.returncode == 0, run.stderr
            events = [json.loads(line) for line in out.read_text().splitlines()]
            assert any(e["type"] == "ticket.status_changed" for e in events), vendor
            imported += len(events)
            run = subprocess.run([*CXPULSE, "import", vendor, *map(str, files),
                                  "--bootstrap-servers", kafka_bootstrap, *common],
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
            assert run.returncode == 0, run.stderr
        wait_for(lambda: worker_duplicates(worker.port) >= duplicates + imported, 60,
                 "duplicates", worker)  # fmt: skip
        assert worker_duplicates(worker.port) == duplicates + imported
        time.sleep(3)  # two evaluations of the exporter
        text = exporter.scrape()
        assert {k: team_value(text, k[1], k[0]) for k in expected} == expected
        letters = run_sync(read_records(kafka_bootstrap, [topics.deadletter], 1, timeout=20))
        # the map stage's one dead letter, and none from the worker: every mapped event
        # is a valid contract 1.1 event
        assert [dict(r.headers).get("cxpulse.reason") for r in letters] == [b"unknown_event"]
        assert json.loads(letters[0].value) == junk
        text = stage.metrics()
        assert 'cxpulse_map_deadletter_total{reason="unknown_event",vendor="zendesk"} 1.0' in text
    finally:
        codes = [p.stop() for p in reversed(procs)]
    # SIGTERM stops the gateway and the map stage with 0 (the others have their own tests)
    assert codes[2:] == [0, 0], (codes, stage.log_text()[-2000:], gateway.log_text()[-2000:])


def test_zammad_snapshots_survive_a_restart_of_the_map_stage(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    """The stage is stopped half-way through a Zammad ticket's life and a new process
    takes over: it reads the ticket's last snapshot back, so its diffs are those of one
    uninterrupted process (a lost snapshot would re-create the ticket, miss the pending
    -> open change and invent an assignment)."""
    from cxpulse.helpdesks import load_mapping

    from tests.support.helpdesk_lifecycles import zammad
    from tests.unit.test_helpdesks import map_all

    tickets, surveys, dl = (topic_factory(f"zs.{n}", 1) for n in ("t", "s", "dl"))
    raw = topic_factory("zs.raw", 2)
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(MAPPING_YAML)
    deliveries = zammad(21, float(int(time.time()) - 3000))
    gateway = Ingest(kafka_bootstrap, raw, tmp_path).start()
    group = f"zs-{uuid.uuid4().hex[:8]}"
    try:
        first = MapProc(kafka_bootstrap, raw, tickets, surveys, dl, mapping_file, tmp_path,
                        group=group).start()  # fmt: skip
        for body in deliveries[:5]:
            assert gateway.post_signed("zammad", body)[0] == 200
        wait_for(lambda: 'outcome="mapped",vendor="zammad"} 5.0' in first.metrics(), 60,
                 "first half mapped", first)  # fmt: skip
        assert first.stop() == 0
        second = MapProc(kafka_bootstrap, raw, tickets, surveys, dl, mapping_file, tmp_path,
                         group=group).start()  # fmt: skip
        for body in deliveries[5:]:
            assert gateway.post_signed("zammad", body)[0] == 200
        wait_for(lambda: 'outcome="mapped",vendor="zammad"} 5.0' in second.metrics(), 60,
                 "second half mapped", second)  # fmt: skip
        assert second.stop() == 0
    finally:
        gateway.stop()
    expected = map_all("zammad", deliveries, load_mapping(str(mapping_file)))
    records = run_sync(read_records(kafka_bootstrap, [tickets], len(expected), timeout=20))
    assert [json.loads(r.value) for r in records] == expected
