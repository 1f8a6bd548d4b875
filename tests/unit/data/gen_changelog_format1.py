"""Writes of the format-1 code for tests/unit/test_changelog_format.py.

Run with a checkout of the old code (main at 691881a):
    python tests/unit/data/gen_changelog_format1.py OUT.json /path/to/old/checkout
"""

import json
import sys

sys.path.insert(0, sys.argv[2] + "/stream")
from cxpulse.changelog.store import PartitionStore

P = 3


def ev(i: int) -> bytes:
    return b'["m","ev-%05d",%d,"T-1","customer"]' % (i, 1793577600000 + i)


def ticket(n: int, start: int = 0) -> bytes:
    return b'{"e":[' + b",".join(ev(i) for i in range(start, start + n)) + b"]}"


batches: list[dict[str, bytes | None]] = [
    {"m": b'{"st":[1,2]}', "t:a": ticket(3), "t:big": ticket(40), "c": b'{"t":[]}'},
    {"m": b'{"st":[3,4]}', "t:big": ticket(60), "t:gone": b'{"e":[]}'},
    {"m": b'{"st":[5,6]}', "t:gone": None, "t:shrink": ticket(50)},
    {"m": b'{"st":[7,8]}', "t:shrink": ticket(45), "t:a": ticket(5)},
]
store, rec = PartitionStore.recover(P, [], epoch=77, part_bytes=512)
log = list(rec.repairs)
truth: dict[str, bytes] = {}
for i, b in enumerate(batches):
    store.count("applied:tickets", len(b))
    store.marker.offsets["tickets"] = i
    log += store.batch_writes(b, wall_ms=1000 + i)
    for k, v in b.items():
        if v is None:
            truth.pop(k, None)
        else:
            truth[k] = v
# a fifth batch cut short by a crash: half of it reached the log
store.marker.offsets["tickets"] = 4
half = store.batch_writes({"m": b'{"st":[9,9]}', "t:big": ticket(61), "t:a": None}, wall_ms=1005)
log += half[: len(half) // 2]
out = {
    "written_by": "cxpulse.changelog.records at 691881a (format 1), part_bytes=512",
    "partition": P,
    "log": [[k.hex(), None if v is None else v.hex()] for k, v in log],
    "truth": {k: v.decode() for k, v in truth.items()},
}
with open(sys.argv[1], "w") as f:
    json.dump(out, f, indent=0)
print(len(log), sorted({k.split(b"/")[1] for k, _ in log}))
