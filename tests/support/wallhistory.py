"""26 hours of the wall feed's series, backfilled into Prometheus before it starts.

Why: the feed (tests/support/wallfeed.py) serves values from the moment its
Prometheus starts, so without history the wall has no sparkline (a range query
over `tiles.SPARK_RANGE` with one point) and no change against the same time
yesterday (an `offset 1d` query with nothing there): the screenshots would not
show what the wall is for. Here the same series (names, labels, and the `job` /
`instance` labels the scrape adds) get a plausible past: busier in the working
hours (UTC), each team a little different from today 24 h ago, and the
incident team's first reply time rising through the last hour. `promtool tsdb
create-blocks-from openmetrics` writes it as TSDB blocks into the storage
directory; Prometheus then opens them and live scraping continues from now.

The history is a pure function of (team, KPI, timestamp, t0), so a test can
compute the change the wall should show from the data that was backfilled,
independently of the page. Around 24 h before `t0` it is flat for an hour each
way, so that expectation is exact for the first hour after the backfill
(Prometheus' `offset 1d` reads the last sample at or before now - 1 d).
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

from cxpulse import metric_names as m

from tests.support.prom import binary
from tests.support.wallfeed import HEALTHY, PER_TEAM_ONLY, TEAMS, families

DAY_S = 86_400
SPAN_S = 26 * 3600
STEP_S = 120  # well inside Prometheus' 5 min lookback; the wall's spark step is 6 min
FLAT_S = 3600
INCIDENT_TEAM = "tech"

#: The KPIs that have a tile (the tile keys are the feed's value keys).
TILE_KEYS = ("frt", "sla", "backlog", "oldest", "at_risk", "csat", "nps", "ces", "fcr",
             "csat_collapse")
#: Yesterday = today's healthy value + DRIFT[kpi] * TEAM_K[team] (before clamping).
DRIFT = {"frt": 90.0, "sla": -0.03, "backlog": 8.0, "oldest": 60.0, "at_risk": 2.0,
         "csat": -0.04, "nps": -5.0, "ces": 0.02, "fcr": -0.03, "csat_collapse": 0.1}
TEAM_K = {m.ALL: 1, "accounts": 2, "billing": -1, "shipping": 1, "tech": 2}
#: Extra at the busiest hour of the day (a load of 1) relative to the load at t0.
SWING = {"frt": 120.0, "sla": -0.03, "backlog": 30.0, "oldest": 120.0, "at_risk": 2.0,
         "csat": -0.02, "nps": -4.0, "ces": -0.02, "fcr": -0.02, "csat_collapse": 0.05}
#: The incident team in the last hour: this much worse at t0, linearly from an hour ago.
#: FRT stays under the 900 s page threshold so the feed's page rule does not fire on it.
RAMP = {"frt": 400.0, "oldest": 420.0, "at_risk": 6.0, "sla": -0.12}
RATIOS = {"sla", "csat", "ces", "fcr", "csat_collapse"}
COUNTS = {"backlog", "at_risk"}


def load(ts: float) -> float:
    """0 at night, 1 at 13:00 UTC: a support day's shape."""
    hour = (ts % DAY_S) / 3600
    return max(0.0, math.sin(math.pi * (hour - 7) / 12))


def value(team: str, key: str, ts: float, t0: float) -> float:
    """The backfilled value of `key` for `team` at `ts` (t0 = the backfill's "now")."""
    base = HEALTHY[key]
    if key not in TILE_KEYS:
        return base
    age = t0 - ts
    k = TEAM_K[team]
    if abs(age - DAY_S) <= FLAT_S:
        v = base + DRIFT[key] * k
    else:
        v = base + SWING[key] * (load(ts) - load(t0)) + DRIFT[key] * k * min(age / DAY_S, 1.0)
    if team == INCIDENT_TEAM and key in RAMP and age < 3600:
        v += RAMP[key] * (1 - age / 3600)
    if key in RATIOS:
        v = min(1.0, max(0.0, v))
    elif key in COUNTS:
        v = float(max(0, round(v)))
    elif key == "nps":
        v = min(100.0, max(-100.0, v))
    else:
        v = max(0.0, v)
    return v


class History:
    """The past of every feed series from t0 - 26 h to t0 - STEP_S, every STEP_S."""

    def __init__(self, t0: int, job: str, instance: str) -> None:
        self.t0 = t0
        self.extra = {"job": job, "instance": instance}

    def timestamps(self) -> range:
        return range(self.t0 - SPAN_S, self.t0, STEP_S)

    def yesterday(self, team: str, key: str) -> float:
        """What `offset 1d` reads while a test runs (flat within an hour of t0 - 1 d); the
        organisation's row of a per-team-only series is the worst team's."""
        if key in PER_TEAM_ONLY and team == m.ALL:
            return max(value(t, key, self.t0 - DAY_S, self.t0) for t in TEAMS)
        return value(team, key, self.t0 - DAY_S, self.t0)

    def openmetrics(self) -> str:
        """The samples as OpenMetrics text (timestamps in seconds, `# EOF` last),
        in time order: promtool appends each series' samples in file order."""
        lines: list[str] = []
        for ts in self.timestamps():
            values = {team: {key: value(team, key, ts, self.t0) for key in HEALTHY}
                      for team in (*TEAMS, m.ALL)}
            for fam in families(values, 4.0):
                for sample in fam.samples:
                    lines.append(f"{sample.name}{_labels({**sample.labels, **self.extra})} "
                                 f"{sample.value!r} {ts}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"

    def backfill(self, data_dir: Path) -> None:
        """Write the history as TSDB blocks into a Prometheus storage dir (not running)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        src = data_dir.parent / "history.om"
        src.write_text(self.openmetrics())
        out = subprocess.run(
            [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q",
             str(src), str(data_dir)], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"promtool backfill failed: {out.stdout}{out.stderr}"[-2000:])
        src.unlink()


def _labels(labels: dict[str, Any]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
