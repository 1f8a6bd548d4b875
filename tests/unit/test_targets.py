"""The targets file: defaults are the catalogue's, and bad values name their setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.core.targets import (
    TargetsError,
    format_duration,
    parse_duration_ms,
    parse_targets,
)

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


@pytest.mark.parametrize("text", ["15m", "1h", "24h", "90s", "7d", "250ms"])
def test_durations_round_trip(text: str) -> None:
    assert format_duration(parse_duration_ms(text)) == text
