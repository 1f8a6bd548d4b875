"""What real producers do wrong: duplicates, late delivery, malformed messages.

Dirt draws from its own random stream (seeded from the simulation seed), so
switching it on or off never changes the clean operation underneath: the
valid events of a dirty run are exactly those of the clean run, plus copies.
Malformed messages are added next to the event they were derived from, never
instead of it, for the same reason.
"""

from __future__ import annotations

import heapq
import json
import random
import uuid
from collections.abc import Callable, Iterator
from typing import NamedTuple

from cxpulse.core import decode as d
from cxpulse.core.decode import encode, encode_bytes, route_of
from cxpulse.core.events import Event, key_of, role_of
from cxpulse.sim import params as p
from cxpulse.sim.model import SimConfig, Simulation


class SimRecord(NamedTuple):
    """One Kafka message: topic role, key and value bytes."""

    role: str
    key: bytes | None
    value: bytes


def _fresh_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _base(event: Event, rng: random.Random) -> dict[str, object]:
    obj = encode(event)
    obj["event_id"] = _fresh_id(rng)  # never shares an id with a valid event
    return obj


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("ascii")


def _ticket_shaped(event: Event, rng: random.Random, **fields: object) -> dict[str, object]:
    """A status change of the event's ticket, for rules that need specific fields."""
    obj: dict[str, object] = {
        "event_id": _fresh_id(rng),
        "type": "ticket.status_changed",
        "ts": d.format_ts(event.ts),
        "ticket_id": key_of(event),
        "status": "solved",
    }
    obj.update(fields)
    return obj


def _too_large(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    obj = _base(event, rng)
    obj["attachment"] = "A" * (max_bytes + rng.randint(1, 2048))
    return _json(obj)


def _not_utf8(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    raw = _json(_base(event, rng))
    bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe9"])  # Latin-1 'é' too
    return raw[:-1] + b',"comment":"caf' + bad + b'"}'


def _not_json(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    raw = _json(_base(event, rng))
    variant = rng.randrange(4)
    if variant == 0:
        return raw[: rng.randint(1, len(raw) - 1)]  # truncated
    if variant == 1:
        return repr(_base(event, rng)).encode("ascii")  # Python dict, single quotes
    if variant == 2:
        return raw[:-1] + b',"amount":NaN}'
    return b"ticket " + key_of(event).encode("ascii") + b" updated"


def _not_object(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    variant = rng.randrange(3)
    if variant == 0:
        return _json([_base(event, rng)])
    if variant == 1:
        return _json(key_of(event))
    return b"null"


def _unknown_type(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    obj = _base(event, rng)
    obj["type"] = rng.choice(["ticket.merged", "ticket.deleted", "Ticket.Created", "survey.sent"])
    return _json(obj)


_REQUIRED: dict[str, tuple[str, ...]] = {
    "ticket.created": ("ticket_id", "team", "channel"),
    "ticket.assigned": ("ticket_id", "agent_id"),
    "ticket.message": ("ticket_id", "author"),
    "ticket.status_changed": ("ticket_id", "status"),
    "survey.response": ("survey", "score"),
    "ticket.handoff": ("ticket_id",),  # contract 1.1
    "survey.offered": ("survey",),
}


def _missing_field(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    obj = _base(event, rng)
    choices = ("event_id", "ts", "type", *_REQUIRED[str(obj["type"])])
    del obj[rng.choice(choices)]
    return _json(obj)


def _wrong_type(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    obj = _base(event, rng)
    variant = rng.randrange(4)
    if variant == 0:
        obj["ts"] = event.ts  # epoch number instead of a string
    elif variant == 1 and obj["type"] == "survey.response":
        obj["score"] = rng.choice([str(obj["score"]), float(str(obj["score"])), True])
    elif variant == 1 and obj["type"] == "ticket.message":
        obj["public"] = rng.choice(["true", 1])
    elif variant == 2:
        obj["event_id"] = rng.randint(1, 10**9)
    else:
        obj = _ticket_shaped(event, rng, ticket_id=rng.randint(1, 10**6))
    return _json(obj)


def _bad_enum(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    obj = _base(event, rng)
    kind = obj["type"]
    if kind == "ticket.created":
        obj["priority"] = rng.choice(["critical", "P1", "HIGH"])
    elif kind == "ticket.message":
        obj["author"] = rng.choice(["system", "Agent", "end-user"])
    elif kind == "survey.response":
        obj["survey"] = rng.choice(["csat5", "NPS", "ces2"])
    else:
        obj = _ticket_shaped(event, rng, status=rng.choice(["resolved", "new", "Closed"]))
    return _json(obj)


def _bad_scale(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    kind, score = rng.choice([("csat", 0), ("csat", 6), ("nps", -1), ("nps", 11), ("ces", 8)])
    obj: dict[str, object] = {
        "event_id": _fresh_id(rng),
        "type": "survey.response",
        "ts": d.format_ts(event.ts),
        "survey": kind,
        "score": score,
        "ticket_id": key_of(event),
    }
    return _json(obj)


def _bad_timestamp(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    obj = _base(event, rng)
    good = d.format_ts(event.ts)
    obj["ts"] = rng.choice(
        [
            good.replace("T", " "),
            f"{good[8:10]}/{good[5:7]}/{good[:4]} {good[11:19]}",
            good[:10],
            good[:11] + "25" + good[13:],
            "yesterday",
        ]
    )
    return _json(obj)


def _naive_timestamp(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    obj = _base(event, rng)
    good = d.format_ts(event.ts)
    obj["ts"] = rng.choice([good[:-1], good[:19]])
    return _json(obj)


def _bad_length(event: Event, rng: random.Random, max_bytes: int) -> bytes:
    obj = _base(event, rng)
    if rng.random() < 0.5:
        obj["event_id"] = rng.choice(["", "x" * (d.ID_MAX + 1)])
    else:
        obj["ticket_id"] = "" if "ticket_id" in obj else "T" * (d.ID_MAX + 1)
    return _json(obj)


#: Malformed message kind -> builder; each kind is named after the reason
#: code the decoder must give it, and every reason code has a kind.
MALFORMED: dict[str, Callable[[Event, random.Random, int], bytes]] = {
    d.TOO_LARGE: _too_large,
    d.NOT_UTF8: _not_utf8,
    d.NOT_JSON: _not_json,
    d.NOT_OBJECT: _not_object,
    d.UNKNOWN_TYPE: _unknown_type,
    d.MISSING_FIELD: _missing_field,
    d.WRONG_TYPE: _wrong_type,
    d.BAD_ENUM: _bad_enum,
    d.BAD_SCALE: _bad_scale,
    d.BAD_TIMESTAMP: _bad_timestamp,
    d.NAIVE_TIMESTAMP: _naive_timestamp,
    d.BAD_LENGTH: _bad_length,
}
assert set(MALFORMED) == set(d.REASON_CODES)
MALFORMED_KINDS: tuple[str, ...] = tuple(MALFORMED)


def malformed_message(
    kind: str, event: Event, rng: random.Random, max_bytes: int = d.DEFAULT_MAX_BYTES
) -> bytes:
    """A message derived from `event` that breaks exactly the rule `kind` names.

    Never contains a newline byte, so it stays one line of a JSONL file.
    """
    raw = MALFORMED[kind](event, rng, max_bytes)
    if b"\n" in raw:  # pragma: no cover - builders only emit compact JSON
        raise AssertionError(f"malformed {kind} message contains a newline")
    return raw


def record_of(event: Event) -> SimRecord:
    return SimRecord(role_of(event), key_of(event).encode("utf-8"), encode_bytes(event))


def malformed_record(
    kind: str, event: Event, rng: random.Random, max_bytes: int = d.DEFAULT_MAX_BYTES
) -> SimRecord:
    raw = malformed_message(kind, event, rng, max_bytes)
    role, key = route_of(raw)
    return SimRecord(role, key, raw)


def generate(cfg: SimConfig) -> Iterator[SimRecord]:
    """The simulated stream as Kafka messages, in delivery order.

    Without dirt, delivery order is event-time order. With `disorder_s`, a
    share of events is held back by up to that many seconds; duplicates and
    malformed messages are delivered right after their source event (or,
    with disorder, held back the same way).
    """
    rng = random.Random(f"cxpulse-dirt:{cfg.seed}")
    pending: list[tuple[int, int, SimRecord]] = []
    seq = 0

    def delay() -> int:
        if cfg.disorder_s > 0 and rng.random() < p.DISORDER_SHARE:
            return int(rng.uniform(0, cfg.disorder_s) * 1000)
        return 0

    for event in Simulation(cfg).events():
        while pending and pending[0][0] <= event.ts:
            yield heapq.heappop(pending)[2]
        record = record_of(event)
        due = event.ts + delay()
        heapq.heappush(pending, (due, seq, record))
        seq += 1
        if cfg.duplicates > 0 and rng.random() < cfg.duplicates:
            heapq.heappush(pending, (due + delay(), seq, record))
            seq += 1
        if cfg.malformed > 0 and rng.random() < cfg.malformed:
            kind = rng.choice(MALFORMED_KINDS)
            bad = malformed_record(kind, event, rng, cfg.max_bytes)
            heapq.heappush(pending, (event.ts + delay(), seq, bad))
            seq += 1
    while pending:
        yield heapq.heappop(pending)[2]
