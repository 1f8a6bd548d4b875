"""`cxpulse report --window 7d,30d`: the summary and its "vs previous period" column
against the brute-force reference (tests/unit/kpi_reference.py) on 62 simulated days.

The CSV is the summary as shown, so each of its cells must equal the reference's
value rounded the same way; the text's change column must be the reference's
current minus previous period. Quantiles come from a sketch: they are checked
on the engine's evaluations (one window earlier for the previous period) within
its relative accuracy.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode, parse_ts
from cxpulse.core.events import Event, SurveyKind, role_of
from cxpulse.report.command import _report_config, compute
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig

from tests.unit.kpi_reference import Reference, exact_quantile, in_window, reference
from tests.unit.test_core_report import BIN

DAY = 86_400_000
WINDOWS = {"7d": 7 * DAY, "30d": 30 * DAY}
RECEIVED = "2027-06-01T00:00:00Z"  # after the simulated days: no event is "ahead"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes], Reference]:
    cfg = SimConfig(seed=21, duration_ms=62 * DAY, tickets_per_day=24.0)
    lines = [r.value for r in generate(cfg)]
    path = tmp_path_factory.mktemp("report") / "62d.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    events: list[tuple[str, Event]] = []
    for line in lines:
        e = decode(line)
        assert not isinstance(e, Rejection)
        events.append((role_of(e), e))
    core = _report_config(CoreConfig(), list(WINDOWS.values()))
    return path, lines, reference(events, core)


def _expected(ref: Reference, cfg: CoreConfig, at: int, w: int, team: str | None
              ) -> dict[str, tuple[float | None, int]]:
    """Shown values (as the CSV rounds them) and sample sizes, from the reference."""
    facts = [f for f in ref.facts if in_window(f.ts, at, w, cfg)
             and (team is None or f.team == team)]
    by = Counter(f.kind for f in facts)

    def pct(good: int, n: int) -> tuple[float | None, int]:
        return (round(100.0 * good / n, 1) if n else None), n

    out = {
        "tickets_created_count": (float(by["created"]), -1),
        "within_frt_target_pct": pct(by["met"], by["met"] + by["breached"]),
        "fcr_pct": pct(by["one_touch"], by["resolution"]),
        "reopen_rate_pct": pct(by["reopen"], by["solve"]),
    }
    scores = {k: [r[0].score for r in ref.surveys if r[0].survey is k
                  and in_window(r[0].ts, at, w, cfg) and (team is None or r[1] == team)]
              for k in SurveyKind}  # fmt: skip
    out["csat_pct"] = pct(sum(s >= 4 for s in scores[SurveyKind.CSAT]),
                          len(scores[SurveyKind.CSAT]))
    out["ces_easy_pct"] = pct(sum(s >= 5 for s in scores[SurveyKind.CES]),
                              len(scores[SurveyKind.CES]))
    nps = scores[SurveyKind.NPS]
    out["nps_score"] = ((float(round(100.0 * (sum(s >= 9 for s in nps) - sum(s <= 6 for s in nps))
                                     / len(nps))) if nps else None), len(nps))
    return out


def _ms(text: str) -> int:
    ts = parse_ts(text)
    assert isinstance(ts, int)
    return ts


def _cell(text: str) -> float | None:
    return float(text) if text else None


def test_csv_summary_and_previous_period_equal_the_reference(
    history: tuple[Path, list[bytes], Reference],
) -> None:
    path, _, ref = history
    cfg = _report_config(CoreConfig(), list(WINDOWS.values()))
    out = subprocess.run([str(BIN), "report", str(path), "--window", "7d,30d", "--csv",
                          "--final", "--received-at", RECEIVED],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    teams = sorted({f.team for f in ref.facts})
    assert rows[0]["team"] == "all teams" and {r["team"] for r in rows} >= set(teams)
    assert [r["window"] for r in rows[:2]] == ["7d", "30d"]
    checked = 0
    for row in rows:
        w = WINDOWS[row["window"]]
        team = None if row["team"] == "all teams" else row["team"]
        if team == "unknown":
            continue
        assert row["window_complete"] == "yes"
        now = _expected(ref, cfg, ref.at_ms, w, team)
        before = _expected(ref, cfg, ref.at_ms - w, w, team)
        for column, (value, n) in now.items():
            assert _cell(row[column]) == value, (row["team"], row["window"], column)
            assert _cell(row[f"{column}_prev"]) == before[column][0], (row["team"], column)
            if n >= 0:
                stem = column.rsplit("_", 1)[0]
                assert int(row[f"{stem}_n"]) == n
                assert int(row[f"{stem}_n_prev"]) == before[column][1]
            checked += 1
    assert checked >= 2 * 4 * 7  # two windows, org + three teams at least, seven columns


def test_frt_quantile_of_both_periods_within_the_sketch_accuracy(
    history: tuple[Path, list[bytes], Reference],
) -> None:
    _, lines, ref = history
    cfg = _report_config(CoreConfig(), list(WINDOWS.values()))
    result = compute(lines, cfg, final=True, received_ms=_ms(RECEIVED),
                     previous_of=list(WINDOWS.values()))
    assert result.evaluation.at_ms == ref.at_ms
    for label, w in WINDOWS.items():
        engine_label = {"7d": "168h", "30d": "720h"}[label]
        for at, ev in ((ref.at_ms, result.evaluation), (ref.at_ms - w, result.previous[w])):
            frt = [f.value for f in ref.facts if f.kind == "frt" and in_window(f.ts, at, w, cfg)]
            exact = exact_quantile(frt, 0.9) / 1000.0
            got = ev.kpi("frt_p90_seconds", engine_label).value
            assert got is not None and abs(got - exact) <= cfg.sketch_relative_accuracy * exact


def test_text_change_column_is_now_minus_previous(
    history: tuple[Path, list[bytes], Reference],
) -> None:
    path, _, ref = history
    cfg = _report_config(CoreConfig(), list(WINDOWS.values()))
    text = subprocess.run([str(BIN), "report", str(path), "--window", "7d,30d", "--final",
                           "--received-at", RECEIVED, "--team", "all"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    head = next(ln for ln in text.splitlines() if "last 7d" in ln)
    assert re.split(r"\s{2,}", head.strip()) == ["last 7d", "vs prev 7d", "last 30d",
                                                  "vs prev 30d"]
    created = next(ln for ln in text.splitlines() if ln.startswith("Tickets created"))
    cells = re.split(r"\s{2,}", created.strip())[1:]
    for i, w in enumerate(WINDOWS.values()):
        now = _expected(ref, cfg, ref.at_ms, w, None)["tickets_created_count"][0]
        before = _expected(ref, cfg, ref.at_ms - w, w, None)["tickets_created_count"][0]
        assert now is not None and before is not None
        assert cells[2 * i].replace(" ", "") == f"{now:.0f}"
        change = f"{now - before:+.0f} ({(now - before) / before * 100:+.0f} %)"
        assert cells[2 * i + 1] == change, created
    sla = next(ln for ln in text.splitlines() if ln.startswith("Within FRT target"))
    now_v, n = _expected(ref, cfg, ref.at_ms, 7 * DAY, None)["within_frt_target_pct"]
    before_v, _ = _expected(ref, cfg, ref.at_ms - 7 * DAY, 7 * DAY, None)["within_frt_target_pct"]
    assert now_v is not None and before_v is not None
    assert f"{now_v:.1f} % (n={n})" in sla
    assert (f"{round(now_v - before_v, 1):+.1f} pt" in sla) or (now_v == before_v and " = " in sla)
