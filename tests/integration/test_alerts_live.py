"""Pages end to end: real worker, exporter, Prometheus with the generated rules,
Alertmanager with the project's routing, and a webhook receiver run by the test.

On-call judges cxpulse by what reaches the pager. An outage of team tech (a
healthy simulated morning in which tech stops answering at 08:30, replayed
at 300x) must page tech, and nobody else; killing the worker (kill -9) must page WorkerDown
within 2 minutes and never send a RESOLVED for a KPI alert (the exporter keeps
serving the KPIs from the changelog; `keep_firing_for` covers a dying
exporter); restarting the worker must not page again.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cxpulse.core.decode import Rejection, decode
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig

from tests.integration.test_exporter import ExporterProc, query
from tests.integration.test_worker_pipeline import (
    CXPULSE,
    ROOT,
    WorkerProc,
    make_topics,
    wait_for,
)
from tests.support.prom import LoopbackServer

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus]

HOUR = 3_600_000
DAY0 = 1_793_577_600_000  # 2026-11-02T00:00:00Z, the simulator's default first day


class Receiver:
    """Collects every webhook notification Alertmanager sends: (receiver, payload)."""

    def __init__(self) -> None:
        got: list[tuple[float, str, dict[str, Any]]] = []
        self.got = got

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got.append((time.time(), self.path.strip("/"), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, status: str | None = None) -> list[tuple[float, str, dict[str, Any]]]:
        """(time, receiver, alert) of every alert in every notification."""
        return [(t, rcv, a) for t, rcv, n in self.got for a in n["alerts"]
                if status is None or a["status"] == status]  # fmt: skip


def alertmanager_config(receiver_port: int) -> str:
    config = yaml.safe_load((ROOT / "alerts" / "alertmanager.yml").read_text())
    for rec in config["receivers"]:
        for hook in rec.get("webhook_configs", []):
            hook["url"] = f"http://127.0.0.1:{receiver_port}/{rec['name']}"
    return yaml.safe_dump(config)


def test_incident_pages_its_team_and_a_dying_worker_sends_no_all_clear(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    # A healthy morning (08:00-10:00 of a normal simulated day); from 08:30 team tech
    # stops answering (its tickets get no reply, assignment or solve): an outage.
    team = "tech"
    sim = SimConfig(seed=1, start_ms=DAY0, duration_ms=11 * HOUR)
    lo, hi, outage = DAY0 + 8 * HOUR, DAY0 + 10 * HOUR, DAY0 + 8 * HOUR + 30 * 60_000
    stalled: set[str] = set()
    lines: list[bytes] = []
    for r in generate(sim):
        e = decode(r.value)
        if isinstance(e, Rejection) or not lo <= e.ts < hi:
            continue
        d = json.loads(r.value)
        if d["type"] == "ticket.created" and d.get("team") == team and e.ts >= outage:
            stalled.add(d["ticket_id"])
        elif d.get("ticket_id") in stalled and d["type"].startswith("ticket."):
            continue
        lines.append(r.value)
    assert len(stalled) > 30
    capture = tmp_path / "incident.jsonl"
    capture.write_bytes(b"".join(v + b"\n" for v in lines))
    topics = make_topics(topic_factory)
    worker = WorkerProc(kafka_bootstrap, topics, tmp_path, "w0")
    worker.keep_port = True
    exporter = ExporterProc(kafka_bootstrap, topics, tmp_path, "x0", "--set", "idle_timeout=1h")
    receiver = Receiver()
    am = LoopbackServer("alertmanager", alertmanager_config(receiver.port)).start()
    prom = LoopbackServer("prometheus", yaml.safe_dump({
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(ROOT / "alerts" / "cxpulse-rules.yml")],
        "alerting": {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{am.port}"]}]}]},
        "scrape_configs": [
            {"job_name": "cxpulse-worker", "scrape_interval": "2s",
             "static_configs": [{"targets": [f"127.0.0.1:{worker.port}"]}]},
            {"job_name": "cxpulse-exporter", "scrape_interval": "2s",
             "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]},
        ],
    })).start()  # fmt: skip
    try:
        worker.start()
        exporter.start()
        wait_for(lambda: "assigned" in worker.log_text(), 60, "worker up", worker)
        subprocess.run(
            [*CXPULSE, "replay", str(capture), "--bootstrap-servers", kafka_bootstrap,
             "--topic-tickets", topics.tickets, "--topic-surveys", topics.surveys,
             "--speed", "300"],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip

        def paged() -> bool:
            worker.supervise()
            return any(rcv == "oncall" and a["labels"].get("team") == team
                       for _, rcv, a in receiver.alerts("firing"))  # fmt: skip

        wait_for(paged, 360, f"a page for team {team}", worker)
        pages = [a for _, rcv, a in receiver.alerts("firing") if a["labels"].get("team")]
        assert {a["labels"]["team"] for a in pages} == {team}  # nobody else is paged
        # kill -9: WorkerDown within 2 minutes, no all-clear for the KPI page.
        killed = time.time()
        worker.kill()

        def worker_down() -> bool:
            return any(a["labels"]["alertname"] == "CxpulseWorkerDown"
                       for _, _, a in receiver.alerts("firing"))  # fmt: skip

        wait_for(worker_down, 150, "CxpulseWorkerDown")
        down_at = min(t for t, _, a in receiver.alerts("firing")
                      if a["labels"]["alertname"] == "CxpulseWorkerDown")  # fmt: skip
        assert down_at - killed < 120
        # The worker comes back: the page state is the same, no new page.
        first_pages = len([a for a in pages if a["labels"].get("team") == team])
        worker.start()
        wait_for(lambda: "assigned" in worker.log_text().rsplit("===== start", 1)[-1], 60,
                 "worker back", worker)  # fmt: skip
        time.sleep(20)
        again = [a for _, _, a in receiver.alerts("firing") if a["labels"].get("team") == team]
        assert len(again) == first_pages
        resolved_kpi = [a["labels"]["alertname"] for _, _, a in receiver.alerts("resolved")
                        if a["labels"].get("component") == "kpi"]  # fmt: skip
        assert resolved_kpi == []
        # Alertmanager would only send a RESOLVED after its group_interval (5 min), longer
        # than this test waits: the proof that the page never let go is Prometheus' own
        # ALERTS series, firing at every instant from before the kill until now.
        paged_names = {a["labels"]["alertname"] for a in pages}
        gaps = [round(t - killed) for t in range(int(killed) - 4, int(time.time()), 3)
                if not paged_names & {r["metric"]["alertname"] for r in query(
                    prom, f'ALERTS{{alertstate="firing",team="{team}"}}', at=t)}]
        assert gaps == [], f"the page for {team} stopped firing at kill + {gaps} s"
        print(f"page after replay start: {pages[0]['startsAt']}, WorkerDown "
              f"{down_at - killed:.0f}s after kill -9")
    finally:
        if worker.alive():
            worker.stop()
        exporter.stop()
        prom.stop()
        am.stop()
        receiver.server.shutdown()
