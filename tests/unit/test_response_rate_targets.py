"""`response_rate_floor` (csat / nps / ces in targets.yaml): off by default, checked like
every target, and when set one ticket rule per survey kind that has one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from cxpulse.core.targets import TargetsError, parse_targets
from cxpulse.mixin.alerts import alert_rules

ROOT = Path(__file__).resolve().parents[2]


def _names(raw: Mapping[str, object]) -> set[str]:
    return {r["alert"] for g in alert_rules(parse_targets(raw))["groups"] for r in g["rules"]}


def test_off_by_default_also_in_the_shipped_targets_file() -> None:
    shipped = yaml.safe_load((ROOT / "targets.yaml").read_text())
    raws: tuple[dict[str, Any], ...] = ({}, shipped)
    for raw in raws:
        assert not any("ResponseRate" in n for n in _names(raw))
        assert all(parse_targets(raw).scores[k].response_rate_floor is None
                   for k in ("csat", "nps", "ces"))


def test_a_floor_gives_one_ticket_rule_per_kind_with_a_runbook_section() -> None:
    raw = {"csat": {"response_rate_floor": 0.15}, "ces": {"response_rate_floor": 0.1}}
    names = {n for n in _names(raw) if "ResponseRate" in n}
    assert names == {"CxpulseCSATResponseRateLow", "CxpulseCESResponseRateLow"}
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    for name in names:
        assert f"## {name}\n" in runbook


@pytest.mark.parametrize("raw, where", [
    ({"csat": {"response_rate_floor": 1.5}}, "csat.response_rate_floor"),
    ({"nps": {"response_rate_floor": "lots"}}, "nps.response_rate_floor"),
    ({"fcr": {"response_rate_floor": 0.2}}, "fcr"),  # FCR has no survey to answer
])  # fmt: skip
def test_a_bad_floor_is_refused_naming_the_key(raw: dict[str, object], where: str) -> None:
    with pytest.raises(TargetsError, match=where):
        parse_targets(raw)
