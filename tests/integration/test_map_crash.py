"""kill -9 of the map stage inside a batch that keeps a Zammad snapshot: after a restart
the derived events are neither lost nor doubled.

The stage's order per batch is: contract events acknowledged, then Zammad's new
snapshots acknowledged (compacted topic), then the consumer offsets committed
(`cxpulse.mapstage.stage`). A test crash point (`cxpulse.crashpoint`) makes the
process `os._exit` exactly between two of those steps, like a SIGKILL there:

* `map-snapshots-written` (snapshots durable, offsets not): the restarted stage
  maps the batch again, diffing it against the snapshot it reads back, so the
  ticket's creation, state and owner changes are *not* produced again (a lost
  snapshot would re-create the ticket and re-derive its changes at new times);
  only the batch's articles come again, with their ids: duplicates.
* `map-events-acked` (events durable, snapshots not): the restarted stage diffs
  the batch against the older snapshot again: the same events, the same ids.

Either way the set of event ids on the tickets topic is exactly that of one
uninterrupted run, every copy of an id has the same content, and `cxpulse report`
over everything on the topic (copies included) gives the KPIs of one clean run.
Real broker, real gateway and map stage processes.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cxpulse.crashpoint import ENV, EXIT_CODE
from cxpulse.helpdesks import load_mapping

from tests.conftest import run_sync
from tests.support.helpdesk_lifecycles import MAPPING_YAML, zammad
from tests.support.ingest import Ingest, MapProc
from tests.support.kafka_io import read_records
from tests.unit.test_helpdesks import map_all, report

pytestmark = pytest.mark.kafka

TICKET = 31


def events_on(bootstrap: str, topic: str, want: set[str], timeout: float = 60
              ) -> list[dict[str, Any]]:  # fmt: skip
    """Everything on the topic once every id of `want` is there (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        records = run_sync(read_records(bootstrap, [topic], len(want), timeout=10))
        events = [json.loads(r.value) for r in records]
        if want <= {e["event_id"] for e in events} or time.monotonic() > deadline:
            return events
        time.sleep(1)


@pytest.mark.parametrize("point", ["map-snapshots-written", "map-events-acked"])
def test_kill_inside_a_snapshot_batch_loses_and_doubles_nothing(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path, point: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    tickets, surveys, dl = (topic_factory(f"mc.{n}", 1) for n in ("t", "s", "dl"))
    raw = topic_factory("mc.raw", 1)
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(MAPPING_YAML)
    deliveries = zammad(TICKET, float(int(time.time()) - 3000))
    expected = map_all("zammad", deliveries, load_mapping(str(mapping_file)))
    group = f"mc-{uuid.uuid4().hex[:8]}"
    gateway = Ingest(kafka_bootstrap, raw, tmp_path).start()
    procs: list[MapProc] = []
    try:
        # the first half is in the raw topic before the stage starts: its first batch
        # holds at least the creation (which keeps the ticket's first snapshot)
        for body in deliveries[:5]:
            assert gateway.post_signed("zammad", body)[0] == 200
        doomed = MapProc(kafka_bootstrap, raw, tickets, surveys, dl, mapping_file, tmp_path,
                         group=group, env={ENV: point}).start(wait=False)  # fmt: skip
        procs.append(doomed)
        assert doomed.proc is not None
        try:
            code = doomed.proc.wait(90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the crash point was not reached: {doomed.log_text()[-3000:]}")
        assert code == EXIT_CODE, doomed.log_text()[-3000:]
        assert f"crash point {point}: exiting" in doomed.log_text()
        # a new process of the same group takes over the uncommitted batch
        survivor = MapProc(kafka_bootstrap, raw, tickets, surveys, dl, mapping_file, tmp_path,
                           group=group).start()  # fmt: skip
        procs.append(survivor)
        for body in deliveries[5:]:
            assert gateway.post_signed("zammad", body)[0] == 200
        got = events_on(kafka_bootstrap, tickets, {e["event_id"] for e in expected})
        assert survivor.stop() == 0, survivor.log_text()[-3000:]
    finally:
        for p in procs:
            p.stop()
        gateway.stop()
    # nothing lost, nothing invented: one run's ids, in one run's order of first sight
    first_seen: dict[str, dict[str, Any]] = {}
    for e in got:
        assert first_seen.setdefault(e["event_id"], e) == e, ("conflicting copy", e)
    assert list(first_seen.values()) == expected
    copies = Counter(e["event_id"] for e in got)
    created, article = f"zm:{TICKET}:created", f"zm:{TICKET}:article:{TICKET * 100 + 1}"
    # the crashed batch was mapped again (offsets were not committed) ...
    assert copies[article] == 2, copies
    if point == "map-snapshots-written":
        # ... against the snapshot that survived: no diff is derived twice
        assert copies[created] == 1, copies
        assert all(n == 1 for i, n in copies.items() if ":article:" not in i), copies
    else:
        # ... against the older snapshot (none): the same diffs, the same ids
        assert copies[created] == 2, copies
    # and the KPIs of everything on the topic are those of one clean run
    assert report(tmp_path, got, capsys) == report(tmp_path, expected, capsys)
