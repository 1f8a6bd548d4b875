"""Every dashboard panel query is valid PromQL for the real Prometheus 2.42.

(The worker equivalence tests additionally run them against live data.)
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.support.prom import LoopbackServer
from tests.unit.test_mixin import panel_queries

pytestmark = pytest.mark.prometheus


def test_every_panel_query_parses_and_evaluates() -> None:
    server = LoopbackServer("prometheus", "global:\n  scrape_interval: 15s\n").start()
    try:
        exprs = panel_queries()
        assert len(exprs) > 20
        for expr in exprs:
            url = f"{server.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    body = json.load(resp)
            except urllib.error.HTTPError as err:
                pytest.fail(f"{expr!r}: {err.read().decode()}")
            assert body["status"] == "success", expr
    finally:
        server.stop()
