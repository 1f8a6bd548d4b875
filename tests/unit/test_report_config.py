"""`cxpulse report` reads the worker's settings and targets, so its numbers are
comparable with the live ones under the same definitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cxpulse.cli import main

# One ticket answered after 10 minutes: met under the default 15-minute target,
# breached under a 5-minute one (breach at created + 300 s, stream time passes it).
EVENTS = [
    '{"event_id":"e1","type":"ticket.created","ts":"2026-11-22T09:00:00Z","ticket_id":"T1",'
    '"team":"billing","channel":"email"}',
    '{"event_id":"e2","type":"ticket.message","ts":"2026-11-22T09:10:00Z","ticket_id":"T1",'
    '"author":"agent","agent_id":"a1"}',
]


def _report(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, float]:
    f = tmp_path / "events.jsonl"
    f.write_text("\n".join(EVENTS) + "\n")
    assert main(["report", str(f), "--json", *extra]) == 0
    data = json.loads(capsys.readouterr().out)
    found = {}
    for k in data["kpis"]:
        if k["window"] == "1h" and not k["labels"] and k["name"].startswith("frt_sla_"):
            found[k["name"]] = k["value"]
    return found


def test_targets_file_changes_the_sla_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    default = _report(tmp_path, capsys)
    assert (default["frt_sla_met"], default["frt_sla_breached"]) == (1, 0)
    (tmp_path / "t.yaml").write_text("frt: {target_seconds: 300}\n")
    strict = _report(tmp_path, capsys, "--targets", str(tmp_path / "t.yaml"))
    assert (strict["frt_sla_met"], strict["frt_sla_breached"]) == (0, 1)


def test_bad_settings_fail_naming_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "events.jsonl").write_text(EVENTS[0] + "\n")
    (tmp_path / "w.yaml").write_text("lateness: 5\n")
    assert main(["report", str(tmp_path / "events.jsonl"), "--config",
                 str(tmp_path / "w.yaml")]) == 2
    assert "lateness" in capsys.readouterr().err
