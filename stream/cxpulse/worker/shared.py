"""What both worker runtimes share: topic checks, one message's fate, status.

The two runtimes (`cxpulse.worker.direct`, the default, and the faust agent in
`cxpulse.worker.agents`) differ only in how messages reach a partition's
engine and how the changelog is written. What happens to *one* message, which
counter it moves and what the exporter reads back must not differ, so it
lives here once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from cxpulse.core.deadletter import DEFAULT_MAX_BYTES, DeadLetter, bounded, dead_letter
from cxpulse.core.decode import Rejection, decode
from cxpulse.core.engine import PartitionEngine
from cxpulse.core.events import SURVEYS, TICKETS, key_of, role_of
from cxpulse.core.timeguard import time_rejection

if TYPE_CHECKING:
    from cxpulse.kafka.access import KafkaAccessError

ROLES = (TICKETS, SURVEYS)
#: Reason code for a valid event on the other role's topic (the worker's own code;
#: `decode` cannot know which topic the bytes came from).
WRONG_TOPIC = "wrong_topic"
#: Reason code for a valid event whose Kafka key is absent or is not the key the
#: contract prescribes (`key_of`: the ticket id, else the event id). Such an
#: event may sit on another partition than the rest of its ticket, where it
#: would silently split the ticket in two (a reply that never meets its
#: ticket: no first response, a ticket unanswered forever). The worker cannot
#: move it to the right partition's state without breaking the per-partition
#: exactness, so it is dead-lettered (counted, original bytes kept); the fix
#: is the producer's key, then a re-produce of the dead letters.
KEY_MISMATCH = "key_mismatch"




def counter_name(kind: str, role: str, detail: str = "") -> str:
    """Marker counter key, e.g. `consumed:tickets`, `deadletter:tickets:not_json`."""
    return f"{kind}:{role}:{detail}" if detail else f"{kind}:{role}"












def handle_message(
    engine: PartitionEngine,
    role: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    counts: dict[str, int],
    now_ms: int,
    received_ms: int | None = None,
    deadletter_max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[DeadLetter | None, int | None]:
    """Apply one source message to `engine`, or say how to dead-letter it.

    Every message moves exactly one outcome counter besides `consumed`
    (applied, duplicate, late, or deadletter by reason), so the counters
    always add up to what was consumed. A dead letter larger than
    `deadletter_max_bytes` becomes a pointer record and also moves
    `deadletter_pointer:<role>` (never a record the producer or broker
    refuses: that failed the batch again at every restart). Returns (dead
    letter or None, event time of the applied event or None). `received_ms` is
    the Kafka record timestamp (the batch's wall clock when unknown): an event
    stamped too far after it, or before the contract's floor, is dead-lettered
    (`cxpulse.core.timeguard`) so it cannot poison stream time.
    """
    k = _CONSUMED[role]
    counts[k] = counts.get(k, 0) + 1
    result = decode(value)
    if not isinstance(result, Rejection):
        if role_of(result) != role:
            result = Rejection(WRONG_TOPIC, f"a {role_of(result)} event on the {role} topic")
        elif key != key_of(result).encode("utf-8"):
            result = Rejection(
                KEY_MISMATCH,
                "the message has no Kafka key; the key must be the ticket_id (else event_id)"
                if key is None
                else "the Kafka key is not the event's ticket_id (else event_id)",
            )
        else:
            bad_time = time_rejection(
                result.ts,
                now_ms if received_ms is None or received_ms <= 0 else received_ms,
                engine.config.max_event_ahead_ms,
            )
            if bad_time is not None:
                result = Rejection(*bad_time)
    if not isinstance(result, Rejection):
        outcome = engine.apply(role, result)
        if not isinstance(outcome, Rejection):
            k = _OUTCOME[role].get(outcome) or _outcome_key(role, outcome)
            counts[k] = counts.get(k, 0) + 1
            return None, result.ts
        result = outcome  # refused by the engine (`ticket_event_cap`): dead-lettered
    k = counter_name("deadletter", role, result.code)
    counts[k] = counts.get(k, 0) + 1
    record = dead_letter(
        key=key,
        value=value,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        rejection=result,
        rejected_at_ms=now_ms,
    )
    record, is_pointer = bounded(record, deadletter_max_bytes)
    if is_pointer:
        k = _POINTER[role]
        counts[k] = counts.get(k, 0) + 1
    return record, None


def count_label_caps(engine: PartitionEngine, counts: dict[str, int]) -> None:
    """Move the label guard's cap counts (`LabelGuard.take_capped`) into `counts`.

    Stored in the commit marker like every other worker counter, so
    `cxpulse_label_values_capped_total{dimension,cap,partition}` is exact
    across restarts and moves with the partition. The key is
    `label_capped:<dimension>:<cap>` (the role slot holds the dimension).
    """
    for (dim, cap), n in engine.guard.take_capped().items():
        k = f"{LABEL_CAPPED}:{dim}:{cap}"
        counts[k] = counts.get(k, 0) + n


#: Marker counter kind of `count_label_caps`.
LABEL_CAPPED = "label_capped"

#: Counter keys computed once: `handle_message` runs 20,000 times a second.
_CONSUMED = {role: counter_name("consumed", role) for role in ROLES}
_OUTCOME: dict[str, dict[object, str]] = {role: {} for role in ROLES}
_POINTER = {role: counter_name("deadletter_pointer", role) for role in ROLES}


def _outcome_key(role: str, outcome: object) -> str:
    key = counter_name(str(getattr(outcome, "name", outcome)).lower(), role)
    _OUTCOME[role][outcome] = key
    return key


@dataclass
class PartitionStatus:
    partition: int
    counters: dict[str, int]
    stream_time_ms: dict[str, int | None]
    last_event_ms: int | None
    lag: dict[str, int]


@dataclass
class WorkerStatus:
    """What the exporter reads besides the engines (self-metrics)."""

    partitions: list[PartitionStatus] = field(default_factory=list)
    #: wall clock (s) of the last batch made durable (None before the first)
    last_success_s: float | None = None
    #: now - event time of the last applied event, max over partitions (s)
    processing_delay_s: float | None = None
    topics: dict[str, str] = field(default_factory=dict)
    #: (partition, reason) -> local state copies found corrupt and rebuilt from
    #: the changelog by this process (direct runtime; `localstore`)
    local_store_rebuilds: dict[tuple[int, str], int] = field(default_factory=dict)
    #: the broker refuses this worker's credentials or TLS now (`kafkaconn.AuthWatch`)
    kafka_auth_failing: bool = False
    #: probes the broker refused since the process started
    kafka_auth_failures: int = 0


def partition_lag(
    highwater: Callable[[str], int | None], offsets: Mapping[str, int], topics: Mapping[str, str]
) -> dict[str, int]:
    """Per role: the live consumer's highwater minus the next offset to apply.

    `highwater(topic)` is None when the consumer has not fetched the topic's
    partition yet (or no longer owns it): no lag is reported then.
    """
    out: dict[str, int] = {}
    for role, topic in topics.items():
        hw = highwater(topic)
        if hw is not None:
            out[role] = max(0, int(hw) - (offsets.get(role, -1) + 1))
    return out


def worker_status(
    partitions: Iterable[PartitionStatus],
    last_success_s: float | None,
    topics: Mapping[str, str],
    local_store_rebuilds: Mapping[tuple[int, str], int] | None = None,
    kafka_auth_failing: bool = False,
    kafka_auth_failures: int = 0,
) -> WorkerStatus:
    """The status both runtimes report; processing delay from the partitions."""
    parts = list(partitions)
    now_ms = int(time.time() * 1000)
    delays = [(now_ms - ps.last_event_ms) / 1000 for ps in parts if ps.last_event_ms is not None]
    return WorkerStatus(
        partitions=parts,
        last_success_s=last_success_s,
        processing_delay_s=max(delays) if delays else None,
        topics=dict(topics),
        local_store_rebuilds=dict(local_store_rebuilds or {}),
        kafka_auth_failing=kafka_auth_failing,
        kafka_auth_failures=kafka_auth_failures,
    )


async def await_all(futures: Sequence[Awaitable[object]]) -> None:
    """Wait until every write is acknowledged, even if cancelled meanwhile.

    A batch is all or nothing: cancellation (shutdown, revocation) must not cut
    it short, since the faust runtime acks the batch's messages on the way out
    regardless and the direct runtime's marker must follow its records."""
    if not futures:
        return
    done = asyncio.ensure_future(asyncio.gather(*futures))
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        await done
        raise


def exit_with(err: KafkaAccessError) -> NoReturn:
    """End the process at once with the one line and exit code of `err` (77/78).

    Used where the worker cannot unwind normally (a batch half applied, a
    rebalance step inside aiokafka's listener); no traceback: a missing ACL or
    a refused password is a user error, and a restart repeats it."""
    print(f"cxpulse worker: kafka: {err}", file=sys.stderr, flush=True)
    logging.shutdown()
    os._exit(err.code)
