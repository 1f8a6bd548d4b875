"""Lint the generated Grafana dashboards: the rules of grafana/dashboard-linter that
apply to cxpulse, in Python.

Why not the Go tool itself: it is not available from the registries this project
installs from, and the rules are simple enough to state here, where a test can
show each one failing. Rules (dashboard-linter's names):

| rule | what it wants |
|---|---|
| `template-datasource-rule` | a `datasource` variable of type datasource, query `prometheus` |
| `panel-datasource-rule` | every panel with queries reads `${datasource}` |
| `panel-title-description-rule` | every panel (rows aside) has a title and a description |
| `panel-units-rule` | every panel that shows numbers has a unit |
| `target-rate-interval-rule` | `rate`/`irate` ranges are `$__rate_interval` |

A rule can be switched off per dashboard in `grafana/.lint` (YAML: `exclusions:
{rule: {reason: ..., entries: [{dashboard: ...}]}}`, dashboard-linter's format);
a reason is required. Exit codes: 0 clean, 1 findings, 2 a bad file or config.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

#: panel types that show no number (no unit to give)
_UNITLESS = {"row", "text", "alertlist", "dashlist", "news"}
_RATE = re.compile(r"\b(i?rate)\s*\(([^\[\]]*)\[([^\]]+)\]")


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def lint(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(rule, message) for every finding in one dashboard model."""
    out: list[tuple[str, str]] = []
    variables = dashboard.get("templating", {}).get("list", [])
    ds = [v for v in variables if v.get("type") == "datasource"]
    if not ds or ds[0].get("name") != "datasource" or ds[0].get("query") != "prometheus":
        out.append(("template-datasource-rule",
                    "no `datasource` variable of type datasource with query prometheus"))
    for panel in _panels(dashboard.get("panels", [])):
        kind, title = panel.get("type", "?"), panel.get("title", "")
        where = f"panel {panel.get('id', '?')} {title!r}"
        if kind == "row":
            continue
        if not title or not panel.get("description"):
            out.append(("panel-title-description-rule", f"{where}: missing title or description"))
        targets = panel.get("targets", [])
        if targets:
            uid = str(panel.get("datasource", {}).get("uid", ""))
            if uid not in ("${datasource}", "$datasource"):
                out.append(("panel-datasource-rule", f"{where}: datasource {uid!r}"))
        if kind not in _UNITLESS:
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            if not unit:
                out.append(("panel-units-rule", f"{where}: no unit"))
        for target in targets:
            for func, _, rng in _RATE.findall(str(target.get("expr", ""))):
                if rng.strip() != "$__rate_interval":
                    out.append(("target-rate-interval-rule",
                                f"{where}: {func}(...[{rng}]) instead of $__rate_interval"))
    return out


def load_exclusions(path: Path) -> dict[str, set[str]]:
    """rule -> dashboards (uids or file stems) it is off for; `*` for all."""
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    out: dict[str, set[str]] = {}
    for rule, spec in (data.get("exclusions") or {}).items():
        if not isinstance(spec, dict) or not str(spec.get("reason", "")).strip():
            raise ValueError(f"{path}: exclusion {rule!r} needs a reason")
        entries = spec.get("entries") or [{"dashboard": "*"}]
        out[str(rule)] = {str(e.get("dashboard", "*")) for e in entries}
    return out


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path("grafana/dashboards")
    try:
        excluded = load_exclusions(folder.parent / ".lint")
    except (ValueError, yaml.YAMLError) as exc:
        print(f"dashboard lint: {exc}", file=sys.stderr)
        return 2
    found = 0
    for file in sorted(folder.glob("*.json")):
        try:
            model = json.loads(file.read_text())
        except ValueError as exc:
            print(f"dashboard lint: {file}: not JSON ({exc})", file=sys.stderr)
            return 2
        names = {file.stem, str(model.get("uid", "")), "*"}
        for rule, message in lint(model):
            if names & excluded.get(rule, set()):
                continue
            found += 1
            print(f"{file}: {rule}: {message}")
    print(f"dashboard lint: {found} finding(s)" if found else "dashboard lint: clean")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
