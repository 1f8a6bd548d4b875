"""State values as the code before compact values wrote them, for
tests/unit/test_compact_values.py (ticket events with their ticket ids and
times as they are, event ids as they came, survey dedup entries with the id
twice).

Run with a checkout of the old code (main at 5961c17):
    python tests/unit/data/gen_state_values_uncompact.py OUT.json.gz /path/to/old/checkout
"""

import gzip
import json
import sys

sys.path.insert(0, sys.argv[2] + "/stream")
from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode
from cxpulse.core.engine import PartitionEngine
from cxpulse.core.events import role_of
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig

HOUR = 3_600_000
sim = SimConfig(seed=5, duration_ms=12 * HOUR, tickets_per_day=300,
                duplicates=0.05, disorder_s=120)  # fmt: skip
messages = [rec.value.decode() for rec in generate(sim) if rec.value is not None]
half = len(messages) // 2
eng = PartitionEngine(CoreConfig(), 0)
values: dict[str, str] = {}
for raw in messages[:half]:
    e = decode(raw.encode())
    if not isinstance(e, Rejection):
        eng.apply(role_of(e), e)
for k, v in eng.drain_dirty().items():
    if v is not None:
        values[k] = v.decode()
with gzip.open(sys.argv[1], "wt") as f:
    json.dump({"messages": messages, "half": half, "values": values}, f)
