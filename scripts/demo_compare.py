"""Print headline KPIs side by side: live (scraped from a worker) and batch (`cxpulse report`).

Used by scripts/demo; handy whenever someone asks "are the numbers right?".
Usage: demo_compare.py METRICS_URL REPORT_JSON
"""

from __future__ import annotations

import json
import sys
import urllib.request

from cxpulse import metric_names as m
from prometheus_client.parser import text_string_to_metric_families

ORG_T = {"team": "all", "channel": "all", "priority": "all"}
ORG_S = {"team": "all", "channel": "all", "agent": "all", "touchpoint": "all"}
ROWS = [  # (label, metric, labels, report KPI name)
    ("tickets created", m.CREATED, ORG_T, "tickets_created"),
    ("first reply p90 (s)", m.FRT, {**ORG_T, "percentile": "90"}, "frt_p90_seconds"),
    ("FRT SLA compliance", m.SLA_COMPLIANCE, ORG_T, "frt_sla_compliance"),
    ("FCR", m.FCR, ORG_T, "fcr"),
    ("reopen rate", m.REOPEN, ORG_T, "reopen_rate"),
    ("CSAT", m.CSAT, ORG_S, "csat"),
    ("NPS", m.NPS, ORG_S, "nps"),
    ("CES", m.CES, ORG_S, "ces"),
]


def main(url: str, report_path: str, window: str = "24h") -> int:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - operator's own URL
        text = resp.read().decode()
    live = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    with open(report_path, encoding="utf-8") as fh:
        report = json.load(fh)
    batch = {k["name"]: k["value"] for k in report["kpis"]
             if k["window"] == window and not k["labels"]}
    print(f"{'KPI (' + window + ', all teams)':28} {'live /metrics':>14} {'batch report':>14}")
    for label, metric, labels, name in ROWS:
        lv = live.get((metric, tuple(sorted({**labels, "window": window}.items()))))
        bv = batch.get(name)
        print(f"{label:28} {_fmt(lv):>14} {_fmt(bv):>14}")
    return 0


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}".rstrip("0").rstrip(".")


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
