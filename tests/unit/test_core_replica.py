"""The changelog replica evaluates exactly like the engines it mirrors.

The exporter serves organisation-wide KPIs from `PartitionReplica`s fed with
the committed state values the workers write (`drain_dirty` per batch). These
tests feed replicas the same values and require `evaluate` to be *equal*
(dataclass equality: every KPI, gauge, counter, histogram) at the stream time
and at later instants (idle time passing), on generated histories with
disorder and duplicates and on two simulated days (sealing, eviction,
tombstones, expiry).
"""

from __future__ import annotations

from collections.abc import Iterable

from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode
from cxpulse.core.engine import PartitionEngine, evaluate
from cxpulse.core.events import Event, role_of
from cxpulse.core.partitioning import partition_for
from cxpulse.core.replica import PartitionReplica
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_core_reference import arrivals

CFG = CoreConfig()
HOUR = 3_600_000


def feed(replica: PartitionReplica, eng: PartitionEngine) -> int:
    drained = eng.drain_dirty()
    for name, raw in drained.items():
        replica.apply(name, raw)
    return len(drained)


def assert_same(engines: list[PartitionEngine], replicas: list[PartitionReplica],
                later: Iterable[int] = (0,)) -> None:  # fmt: skip
    base = evaluate(engines)
    assert evaluate(replicas) == base
    if base.at_ms is None:
        return
    for dt in later:
        assert evaluate(replicas, base.at_ms + dt) == evaluate(engines, base.at_ms + dt)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals(), st.integers(1, 3), st.data())
def test_replica_equals_engine_on_generated_histories(
    events: list[tuple[str, Event]], partitions: int, data: st.DataObject
) -> None:
    engines = [PartitionEngine(CFG, p) for p in range(partitions)]
    replicas = [PartitionReplica(CFG, p) for p in range(partitions)]
    cuts = set(data.draw(st.lists(st.integers(1, max(1, len(events))), max_size=4)))
    for i, (role, e) in enumerate(events):
        engines[partition_for(e.ticket_id or e.event_id, partitions)].apply(role, e)
        if i + 1 in cuts:
            for eng, rep in zip(engines, replicas, strict=True):
                feed(rep, eng)
            assert_same(engines, replicas, (0, 7 * 60_000, 3 * HOUR))
    for eng, rep in zip(engines, replicas, strict=True):
        feed(rep, eng)
    assert_same(engines, replicas, (0, 20 * 60_000))


def test_replica_equals_engine_over_two_simulated_days() -> None:
    """Sealing, eviction beyond 24 h, expiry and tombstones all reach the replica."""
    sim = SimConfig(seed=7, duration_ms=48 * HOUR, tickets_per_day=1500,
                    duplicates=0.03, disorder_s=120)  # fmt: skip
    partitions = 3
    engines = [PartitionEngine(CFG, p) for p in range(partitions)]
    replicas = [PartitionReplica(CFG, p) for p in range(partitions)]
    deleted = 0
    for n, rec in enumerate(generate(sim)):
        e = decode(rec.value)
        if isinstance(e, Rejection):
            continue
        engines[partition_for(e.ticket_id or e.event_id, partitions)].apply(role_of(e), e)
        if n % 997 == 0:
            for eng, rep in zip(engines, replicas, strict=True):
                drained = eng.drain_dirty()
                deleted += sum(v is None for v in drained.values())
                for name, raw in drained.items():
                    rep.apply(name, raw)
            if n % (997 * 10) == 0:
                assert_same(engines, replicas, (0, HOUR))
    for eng, rep in zip(engines, replicas, strict=True):
        feed(rep, eng)
    assert deleted > 0  # evictions and expiries were exercised
    assert_same(engines, replicas, (0, 15 * 60_000, 30 * HOUR))
    for rep in replicas:  # label values no open ticket holds were let go
        held = {v for t in rep.open_tickets(0) for v in (t.team, t.channel, t.priority, t.assignee)}
        assert len(rep._labels) == len(held)
