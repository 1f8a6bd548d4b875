"""A Quix Streams peer of the worker, the yardstick `bench_worker.py` compares with.

Why a peer: a ratio to a raw consumer says how close to the client's ceiling
cxpulse is, not whether its cost is reasonable for the work it does. This is
what a developer would write with a mainstream Python stream processor
(Quix Streams, `pip install '.[bench]'`) for a *subset* of cxpulse's KPIs:

* per ticket, the team it belongs to (stateful: from its creation or a
  transfer), so every ticket event can be attributed to a team;
* regrouped by team (a repartition topic, as Quix windows are keyed by the
  message key);
* five numbers per team in one 15-minute tumbling window with a 2-minute
  grace: tickets created, customer messages, agent replies, solves, closes.

Not computed (cxpulse does): FRT / resolution / wait distributions, SLA
breaches, one-touch, reopens, agent stores, surveys and NPS/CSAT attribution,
three windows, dedup, exactly-once state. Surveys are consumed and counted
only. Malformed JSON is skipped and counted.

The clock starts at the first message consumed and stops when all n
messages (tickets after the regrouping, plus surveys) went through; the peer
then prints `PEER <seconds> <late dropped> <windows emitted>` and exits.

    python bench/quix_peer.py BOOTSTRAP TICKETS SURVEYS N
"""

from __future__ import annotations

import atexit
import json
import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

KINDS = ("created", "customer_msgs", "agent_replies", "solves", "closes")


def _ts_ms(value: bytes, headers: Any, timestamp: float, ts_type: Any) -> int:
    """Event time for the windows (the Kafka timestamp when the value is not JSON)."""
    try:
        ts = json.loads(value)["ts"]
        return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)
    except (ValueError, KeyError, TypeError, AttributeError):
        return int(timestamp)


def main(bootstrap: str, tickets: str, surveys: str, n: int) -> int:
    from quixstreams import Application
    from quixstreams.dataframe.windows import Sum

    state_dir = tempfile.mkdtemp(prefix="quix-peer-")
    atexit.register(shutil.rmtree, state_dir, True)  # its RocksDB state, ~1 MB a run
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-peer-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    seen = {"n": 0, "t0": 0.0, "late": 0, "windows": 0, "bad": 0}

    def done(count: int) -> None:
        if seen["t0"] == 0.0:
            seen["t0"] = time.perf_counter()
        seen["n"] += count
        if seen["n"] >= n:
            secs = time.perf_counter() - seen["t0"]
            print(f"PEER {secs:.3f} {seen['late']} {seen['windows']} {seen['bad']}", flush=True)
            app.stop()

    def enrich(raw: bytes, state: Any) -> dict[str, Any] | None:
        """Parse, remember the ticket's team, and say which of the 5 counters moves."""
        if seen["t0"] == 0.0:
            seen["t0"] = time.perf_counter()
        try:
            e = json.loads(raw)
            kind = e["type"]
        except (ValueError, KeyError, TypeError):
            seen["bad"] += 1
            done(1)
            return None
        if kind == "ticket.created" or (kind == "ticket.assigned" and e.get("team")):
            state.set("team", e.get("team"))
        row: dict[str, Any] = dict.fromkeys(KINDS, 0)
        if kind == "ticket.created":
            row["created"] = 1
        elif kind == "ticket.message" and e.get("public"):
            row["customer_msgs" if e.get("author") == "customer" else "agent_replies"] = 1
        elif kind == "ticket.status_changed":
            status = e.get("status")
            if status in ("solved", "closed"):
                row["solves" if status == "solved" else "closes"] = 1
        row["team"] = state.get("team") or "unknown"
        return row

    def late(*_args: Any, **_kwargs: Any) -> bool:
        seen["late"] += 1
        return False  # do not log each one

    raw_opts: dict[str, Any] = {"value_deserializer": "bytes", "timestamp_extractor": _ts_ms}
    sdf = app.dataframe(app.topic(tickets, **raw_opts))
    sdf = sdf.apply(enrich, stateful=True).filter(lambda row: row is not None)
    sdf = sdf.group_by(lambda row: row["team"], name="team")
    sdf = sdf.update(lambda _row: done(1))
    windows = sdf.tumbling_window(
        timedelta(minutes=15), grace_ms=timedelta(minutes=2), on_late=late
    ).agg(**{k: Sum(k) for k in KINDS})
    windows.final().update(lambda _w: seen.__setitem__("windows", seen["windows"] + 1))
    survey_sdf = app.dataframe(app.topic(surveys, value_deserializer="bytes"))
    survey_sdf.update(lambda _v: done(1))
    app.run()
    return 0


if __name__ == "__main__":
    b, t, s, count = sys.argv[1:5]
    sys.exit(main(b, t, s, int(count)))
