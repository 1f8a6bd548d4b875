"""The generated dashboards pass the dashboard lint, and each lint rule catches what it
names (a panel stripped of it fails)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cxpulse.mixin.command import load_targets
from cxpulse.mixin.dashboards import dashboards
from cxpulse.mixin.lint import lint, load_exclusions, main

ROOT = Path(__file__).resolve().parents[2]


def models() -> dict[str, dict[str, Any]]:
    return dashboards(load_targets(ROOT / "targets.yaml"))


def test_every_generated_dashboard_is_clean() -> None:
    for name, model in models().items():
        assert lint(model) == [], name
    assert main([str(ROOT / "grafana" / "dashboards")]) == 0


def first(model: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(p for p in model["panels"] if p["type"] == kind and p.get("targets"))


@pytest.mark.parametrize("rule, spoil", [
    ("panel-title-description-rule", lambda p: p.pop("description")),
    ("panel-units-rule", lambda p: p["fieldConfig"]["defaults"].pop("unit")),
    ("panel-datasource-rule", lambda p: p.update(datasource={"uid": "prom-prod"})),
    ("target-rate-interval-rule",
     lambda p: p["targets"][0].update(expr="sum(rate(cxpulse_events_total[5m]))")),
])
def test_each_rule_catches_its_fault(rule: str, spoil: Any) -> None:
    model = copy.deepcopy(models()["oncall.json"])
    spoil(first(model, "timeseries"))
    assert [r for r, _ in lint(model)] == [rule]


def test_the_datasource_variable_is_required() -> None:
    model = copy.deepcopy(models()["wall.json"])
    model["templating"]["list"] = [v for v in model["templating"]["list"]
                                   if v["type"] != "datasource"]
    assert "template-datasource-rule" in [r for r, _ in lint(model)]


def test_an_exclusion_needs_a_reason(tmp_path: Path) -> None:
    cfg = tmp_path / ".lint"
    cfg.write_text("exclusions:\n  panel-units-rule:\n    entries: [{dashboard: oncall}]\n")
    with pytest.raises(ValueError, match="needs a reason"):
        load_exclusions(cfg)
    cfg.write_text("exclusions:\n  panel-units-rule:\n    reason: why\n"
                   "    entries: [{dashboard: oncall}]\n")
    assert load_exclusions(cfg) == {"panel-units-rule": {"oncall"}}
    folder = tmp_path / "dashboards"
    folder.mkdir()
    model = copy.deepcopy(models()["oncall.json"])
    first(model, "timeseries")["fieldConfig"]["defaults"].pop("unit")
    (folder / "oncall.json").write_text(json.dumps(model))
    assert main([str(folder)]) == 0  # excluded with a reason
    cfg.unlink()
    assert main([str(folder)]) == 1
