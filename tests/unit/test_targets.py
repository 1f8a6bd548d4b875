"""The targets file: defaults are the catalogue's, and bad values name their setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cxpulse.core.durations import DurationError, parse_duration_ms, window_label
from cxpulse.core.targets import TargetsError, parse_targets

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_file_holds_the_catalogue_defaults() -> None:
    t = parse_targets(yaml.safe_load((ROOT / "targets.yaml").read_text()))
    # kpis.md "Default targets": NPS > 70, CSAT > 80 %, CES > 85 %, FRT < 15 min, FCR > 80 %.
    assert t.score_for("nps") == 70
    assert t.score_for("csat") == pytest.approx(0.80)
    assert t.score_for("ces") == pytest.approx(0.85)
    assert t.score_for("fcr") == pytest.approx(0.80)
    assert t.frt.target_seconds == 15 * 60
    assert t.min_sample == 30


def test_team_override_and_priority_target() -> None:
    t = parse_targets(
        {"teams": {"billing": {"csat": 0.9}}, "frt": {"by_priority": {"urgent": 300}}}
    )
    assert t.score_for("csat", "billing") == pytest.approx(0.9)
    assert t.score_for("csat", "tech") == pytest.approx(0.8)
    assert t.frt.target_for("urgent") == 300
    assert t.frt.target_for("low") == 900


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ({"csat": {"target": 80}}, "csat.target"),  # a percentage where a ratio belongs
        ({"nps": {"target": 170}}, "nps.target"),
        ({"frt": {"target_seconds": "15m"}}, "frt.target_seconds"),
        ({"frt": {"window": "an hour"}}, "frt.window"),
        ({"frt": {"by_priority": {"critical": 60}}}, "frt.by_priority"),
        ({"frt": {"burn_rates": [{"long": "1h", "short": "5m", "factor": 4,
                                  "severity": "sms"}]}}, "frt.burn_rates[0].severity"),
        ({"teams": {"billing": {"cast": 0.9}}}, "teams.billing"),
        ({"csta": {"target": 0.8}}, "targets"),
        ({"min_sample": True}, "min_sample"),
    ],
)
def test_bad_values_fail_naming_the_setting(raw: dict[str, Any], names: str) -> None:
    with pytest.raises(TargetsError) as err:
        parse_targets(raw)
    assert str(err.value).startswith(names)


@pytest.mark.parametrize(
    ("text", "label"),
    [("15m", "15m"), ("1h", "1h"), ("24h", "24h"), ("1d", "24h"), ("90s", "90s"),
     ("7d", "168h"), ("1h30m", "90m"), ("250ms", "250ms")],
)
def test_durations_parse_to_the_engines_window_label(text: str, label: str) -> None:
    assert window_label(parse_duration_ms(text)) == label


@pytest.mark.parametrize("text", ["15", "", "m", "1.5h", "15 m", "-5m", "0s", "1h 30m"])
def test_durations_without_a_unit_or_malformed_are_refused(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration_ms(text)


def test_target_windows_use_the_engines_labels() -> None:
    # A window written `1d` must select the series the engine labels `24h`.
    t = parse_targets({"csat": {"window": "1d"}, "frt": {"window": "60m"}})
    assert t.scores["csat"].window == "24h"
    assert t.frt.window == "1h"


def test_stall_page_settings_are_read_and_checked() -> None:
    t = parse_targets({"paging": {"stall": {"min_breached": 3, "silent_min_arrivals": 6,
                                            "for": "2m"}},
                       "frt": {"min_count_short": 5}})
    assert (t.paging.stall.min_breached, t.paging.stall.silent_min_arrivals) == (3, 6)
    assert t.paging.stall.for_ == "2m" and t.frt.min_count_short == 5
    with pytest.raises(TargetsError, match=r"paging\.stall"):
        parse_targets({"paging": {"stall": {"min_overdue": 2}}})
    with pytest.raises(TargetsError, match=r"paging\.stall\.min_breached"):
        parse_targets({"paging": {"stall": {"min_breached": 0}}})


def test_quiet_shift_band_must_be_an_exported_threshold() -> None:
    # The rule reads `cxpulse_frt_at_risk_tickets{threshold=...}`: a band the core does not
    # export would select nothing, and the clause could never fire.
    t = parse_targets({"paging": {"stall": {"quiet_band": 0.5, "quiet_min_waiting": 3}}})
    assert (t.paging.stall.quiet_band, t.paging.stall.quiet_min_waiting) == (0.5, 3)
    with pytest.raises(TargetsError, match=r"paging\.stall\.quiet_band.*0\.5, 0\.75"):
        parse_targets({"paging": {"stall": {"quiet_band": 0.8}}})
    with pytest.raises(TargetsError, match=r"paging\.stall\.quiet_min_waiting"):
        parse_targets({"paging": {"stall": {"quiet_min_waiting": 0}}})


def test_at_risk_threshold_must_be_an_exported_threshold() -> None:
    # The predictive page reads `cxpulse_frt_at_risk_tickets{threshold=...}`: a fraction
    # the core does not export selects no series and the page could never fire.
    from cxpulse.core.config import CoreConfig

    for f in CoreConfig.at_risk_fractions:
        assert parse_targets({"paging": {"at_risk": {"threshold": f}}}).paging.at_risk \
            .threshold == f
    with pytest.raises(TargetsError, match=r"paging\.at_risk\.threshold.*0\.5, 0\.75, "
                                           r"got 0\.6"):
        parse_targets({"paging": {"at_risk": {"threshold": 0.6}}})


def test_at_risk_reply_share_is_read_and_checked() -> None:
    # the share of arrivals the team's first replies must fall below for the queue to count
    # as growing: above 1 a team answering more than arrives would still "grow"
    assert parse_targets({"paging": {"at_risk": {"max_reply_share": 0.5}}}).paging.at_risk \
        .max_reply_share == 0.5
    with pytest.raises(TargetsError, match=r"paging\.at_risk\.max_reply_share.*outside"):
        parse_targets({"paging": {"at_risk": {"max_reply_share": 1.5}}})


def test_a_bad_threshold_is_one_clear_line_from_the_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    text = (root / "targets.yaml").read_text()
    assert "threshold: 0.5 " in text
    bad = tmp_path / "targets.yaml"
    bad.write_text(text.replace("threshold: 0.5 ", "threshold: 0.6 ", 1))
    out = subprocess.run([str(Path(sys.executable).parent / "cxpulse"), "generate",
                          "--targets", str(bad), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert out.returncode != 0
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert len(lines) == 1 and "paging.at_risk.threshold" in lines[0], lines


def test_forecast_page_settings_are_read_and_checked() -> None:
    t = parse_targets({"paging": {"forecast": {"min_tickets": 8, "for": "2m"}}})
    assert (t.paging.forecast.min_tickets, t.paging.forecast.for_) == (8, "2m")
    with pytest.raises(TargetsError, match=r"paging\.forecast\.min_tickets"):
        parse_targets({"paging": {"forecast": {"min_tickets": 0}}})
    with pytest.raises(TargetsError, match=r"paging\.forecast"):
        parse_targets({"paging": {"forecast": {"horizon": "5m"}}})
