"""`cxpulse report` for people: summary first, human durations, filters, CSV, and a
clear exit when no line is valid."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import subprocess
from pathlib import Path

from cxpulse.report.command import EXIT_NO_VALID_LINE

from tests.unit.test_core_report import BIN, LINES


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "report", *args], capture_output=True, text=True)


def test_summary_per_team_reads_like_a_person_wrote_it(tmp_path: Path) -> None:
    out = _run(str(_file(tmp_path)), "--final").stdout
    assert out.startswith("cxpulse report to 2026-11-22 09:30 UTC: 8 lines, 2 rejected")
    blocks = out.split("\n== ")
    assert [b.split(" ==")[0] for b in blocks[1:]] == ["all teams", "billing"]
    billing = blocks[2].splitlines()
    assert re.split(r"\s{2,}", billing[1].strip()) == ["last 24h", "vs prev 24h", "last 7d",
                                                         "vs prev 7d"]
    # FRT of T-1: created 09:00:00, first public reply 09:04:30 -> 270 s (sketch: 1 %), in
    # minutes with the sample it comes from; the file starts inside both windows (*) and
    # does not reach back to the previous periods (-).
    frt = next(ln for ln in billing if ln.startswith("First reply p90"))
    assert re.split(r"\s{2,}", frt.strip())[1:] == ["4.5 min (n=1) *", "-"] * 2
    assert "270" not in out and "4m 30s" not in out
    assert "vs prev -: the input does not reach back" in out
    # Every series stays one flag away, durations there as people read them too.
    day = _run(str(_file(tmp_path)), "--final", "--all").stdout.split("== window 24h ==")[1]
    frt_line = next(ln for ln in day.splitlines() if ln.startswith("frt_p90_seconds"))
    assert re.search(r"\s4m 3\ds\s", frt_line) and "27" not in frt_line, frt_line
    # JSON keeps seconds.
    doc = json.loads(_run(str(_file(tmp_path)), "--json", "--final").stdout)
    frt_json = next(k for k in doc["kpis"] if k["name"] == "frt_p90_seconds"
                    and k["window"] == "24h" and k["labels"] == {"team": "billing"})
    assert abs(frt_json["value"] - 270) < 270 * 0.02


def test_window_and_team_filters(tmp_path: Path) -> None:
    out = _run(str(_file(tmp_path)), "--window", "1h,30d", "--team", "billing").stdout
    assert "last 1h" in out and "last 30d" in out and "last 24h" not in out
    assert "== billing ==" in out and "== all teams ==" not in out
    detail = _run(str(_file(tmp_path)), "--all", "--window", "1h", "--team", "billing").stdout
    assert "== window 1h ==" in detail and "== window 24h ==" not in detail
    assert "team=billing" in detail.split("== window 1h ==")[1] and "(all)" not in detail
    # the project's one duration format: `1d` is the engine's `24h` window
    day = _run(str(_file(tmp_path)), "--all", "--window", "1d", "--team", "billing").stdout
    assert "== window 24h ==" in day and "== window 1h ==" not in day
    for bad in ("60", "90s"):
        out_bad = _run(str(_file(tmp_path)), "--window", bad)
        assert out_bad.returncode == 2 and "--window" in out_bad.stderr
        assert "Traceback" not in out_bad.stderr
        assert "--window" in out_bad.stderr.strip().splitlines()[-1]


def test_unknown_team_exits_2_naming_the_known_teams(tmp_path: Path) -> None:
    out = _run(str(_file(tmp_path)), "--team", "biling")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == (
        "cxpulse report: --team biling: no such team in " f"{_file(tmp_path)}; known teams: "
        "billing (or 'all' for the organisation)")


def test_empty_input_exits_with_the_documented_code(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\n\n")
    out = _run(str(empty))
    assert out.returncode == EXIT_NO_VALID_LINE == 3 and out.stdout == ""
    assert "empty" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    helptext = _run("--help").stdout
    assert f"{EXIT_NO_VALID_LINE} the input is empty" in " ".join(helptext.split())


def test_csv_summary_is_rounded_as_shown_with_units_in_the_header(tmp_path: Path) -> None:
    out = _run(str(_file(tmp_path)), "--csv", "--final")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["team"], r["window"]) for r in rows] == [
        ("all teams", "24h"), ("all teams", "7d"), ("billing", "24h"), ("billing", "7d")]
    billing = rows[2]
    # 270 s -> 4.5 min, exactly the table's "4.5 min"; shares in percent, one decimal.
    assert billing["first_reply_p90_min"] == "4.5" and billing["first_reply_p90_n"] == "1"
    assert billing["within_frt_target_pct"] == "100.0" and billing["tickets_created_count"] == "1"
    assert billing["first_reply_p90_min_prev"] == "" and billing["window_complete"] == "no"
    header = out.stdout.splitlines()[0].split(",")
    units = ("_count", "_min", "_pct", "_score", "_n")
    assert all(h.endswith(units) or h.endswith(tuple(u + "_prev" for u in units))
               for h in header[2:-1]), header


def test_csv_all_every_windowed_kpi_rounded_with_its_unit(tmp_path: Path) -> None:
    out = _run(str(_file(tmp_path)), "--csv", "--all", "--final", "--team", "billing").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and all(r["team"] == "billing" for r in rows)
    frt = next(r for r in rows if r["kpi"] == "frt_p90_seconds" and r["window"] == "24h"
               and r["channel"] == "all" and r["priority"] == "all")
    assert frt["unit"] == "seconds" and frt["n"] == "1"
    assert frt["value"] in {"268", "269", "270", "271", "272"}  # whole seconds (sketch: 1 %)
    sla = next(r for r in rows if r["kpi"] == "frt_sla_compliance" and r["window"] == "24h"
               and r["channel"] == "all" and r["priority"] == "all")
    assert sla["unit"] == "ratio" and sla["value"] == "1.000"


def test_no_valid_line_exits_with_a_hint(tmp_path: Path) -> None:
    csv_file = tmp_path / "export.csv"
    csv_file.write_text("ticket_id,team,created\nT-1,billing,2026-11-22\n")
    out = _run(str(csv_file))
    assert out.returncode == EXIT_NO_VALID_LINE
    assert out.stdout == ""
    assert "no valid event" in out.stderr and "not CSV" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    gz = tmp_path / "events.jsonl.gz"
    gz.write_bytes(gzip.compress(b"\n".join(LINES)))
    out = _run(str(gz))
    assert out.returncode == EXIT_NO_VALID_LINE and "zcat" in out.stderr
