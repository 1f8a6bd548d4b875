"""The one name for a JSON object the shell builds or reads back.

Grafana dashboards (`cxpulse.mixin`), the demo's state file, an answer of
Prometheus' HTTP API: their values are JSON's own mix of strings, numbers,
lists and objects, genuinely untyped, so they stay `dict[str, Any]`, under
this one name rather than as a bare `Any` at every use.
"""

from __future__ import annotations

from typing import Any, TypeAlias

JSON: TypeAlias = dict[str, Any]
