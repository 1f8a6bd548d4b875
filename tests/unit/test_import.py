"""`cxpulse import`: history gets the live path's ids; the Zendesk export poller over real
HTTP (a local server serving pages written here in the export's shape): pagination,
429 with Retry-After, a resumable state file."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cxpulse.cli import main
from cxpulse.helpdesks import load_mapping

from tests.support.helpdesk_lifecycles import MAPPING_YAML, export_items, zendesk
from tests.unit.test_helpdesks import map_all

T0 = 1_795_000_000.0


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING_YAML)
    return path


def test_export_and_webhooks_of_one_ticket_are_the_same_events(
    tmp_path: Path, mapping_file: Path
) -> None:
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"ticket_events": export_items(7, T0), "end_of_stream": True}))
    out = tmp_path / "events.jsonl"
    assert main(["import", "zendesk", str(page), "--out", str(out),
                 "--mapping-file", str(mapping_file)]) == 0  # fmt: skip
    imported = read_jsonl(out)
    live = map_all("zendesk", zendesk(7, T0), load_mapping(str(mapping_file)))
    key = lambda e: e["event_id"]  # noqa: E731
    assert sorted(imported, key=key) == sorted(live, key=key)
    # created, 7 comments, 1 assignment, 5 status changes, 1 rating
    assert len(imported) == 1 + 7 + 1 + 5 + 1


def test_recorded_webhooks_import_like_the_map_stage(tmp_path: Path, mapping_file: Path) -> None:
    bodies = tmp_path / "deliveries.jsonl"
    from tests.support.helpdesk_lifecycles import zammad

    deliveries = zammad(3, T0)
    bodies.write_text("".join(json.dumps(d) + "\n" for d in deliveries) + "not json\n")
    out = tmp_path / "events.jsonl"
    assert main(["import", "zammad", str(bodies), "--out", str(out),
                 "--mapping-file", str(mapping_file)]) == 0  # fmt: skip
    assert read_jsonl(out) == map_all("zammad", deliveries, load_mapping(str(mapping_file)))


def test_nothing_mappable_is_exit_3_and_a_missing_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    assert main(["import", "chatwoot", str(junk), "--out", str(tmp_path / "o")]) == 3
    assert "nothing could be mapped" in capsys.readouterr().err
    assert main(["import", "chatwoot", str(tmp_path / "absent.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cxpulse import: cannot read") and "Traceback" not in err


class Export:
    """A local Zendesk export: two time-based pages; page 2 answers 429 once, or 500s."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items, self.fail_page2, self.requests = items, False, {"p1": 0, "p2": 0}
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                base = f"http://127.0.0.1:{owner.port}"
                if self.path.startswith("/api/v2/incremental/ticket_events.json"):
                    owner.requests["p1"] += 1
                    body = {"ticket_events": owner.items[:6], "next_page": f"{base}/p2",
                            "end_time": 1, "end_of_stream": False}  # fmt: skip
                elif self.path == "/p2":
                    owner.requests["p2"] += 1
                    if owner.fail_page2:
                        self.send_response(500)
                        self.end_headers()
                        return
                    if owner.requests["p2"] == 1:
                        self.send_response(429)
                        self.send_header("Retry-After", "1")
                        self.end_headers()
                        return
                    body = {"ticket_events": owner.items[6:], "next_page": f"{base}/p2",
                            "end_time": 2, "end_of_stream": True}  # fmt: skip
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2/incremental/ticket_events.json?start_time=0"


@pytest.fixture
def export() -> Iterator[Export]:
    server = Export(export_items(9, T0))
    try:
        yield server
    finally:
        server.server.shutdown()


def test_poller_pages_waits_out_429_and_resumes_from_its_state(
    export: Export, tmp_path: Path, mapping_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    args = ["import", "zendesk", "--poll", export.url, "--state-file", str(state),
            "--mapping-file", str(mapping_file)]  # fmt: skip
    export.fail_page2 = True
    first = tmp_path / "first.jsonl"
    assert main([*args, "--out", str(first)]) == 69
    err = capsys.readouterr().err
    assert "HTTP 500" in err and "resume with the same --state-file" in err
    assert json.loads(state.read_text())["next_url"].endswith("/p2")  # page 1 is done
    export.fail_page2 = False
    export.requests["p2"] = 0
    second = tmp_path / "second.jsonl"
    assert main([*args, "--out", str(second)]) == 0
    assert export.requests == {"p1": 1, "p2": 2}  # resumed at page 2; asked again after 429
    whole = tmp_path / "whole.jsonl"
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"ticket_events": export.items}))
    assert main(["import", "zendesk", str(page), "--out", str(whole),
                 "--mapping-file", str(mapping_file)]) == 0  # fmt: skip
    assert read_jsonl(first) + read_jsonl(second) == read_jsonl(whole)
