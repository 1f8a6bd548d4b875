"""Crash exactness of the state <-> table logic, without a broker.

The model: a *changelog* is the list of writes in the order they were sent
(one producer, one partition: the broker keeps a prefix of it after a crash);
a table is the compacted changelog (last value per key, None = tombstone);
the *local store* (RocksDB) receives every write at once, before the
changelog, and survives a kill. Each test crashes at every possible point and
checks that recovery yields exactly the state of the last committed batch.
"""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.worker.persistence import (
    CorruptState,
    Marker,
    PartitionStore,
    Record,
    Write,
    decode_record,
    encode_record,
    marker_key,
    state_key,
)

P = 3
KEYS = [f"k{i}" for i in range(6)]

Batch = dict[str, bytes | None]
batches_st = st.lists(
    st.dictionaries(
        st.sampled_from(KEYS), st.one_of(st.none(), st.binary(min_size=0, max_size=4)), max_size=4
    ),
    min_size=1,
    max_size=6,
)


def compact(writes: Iterable[Write], base: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
    table = dict(base or {})
    for k, v in writes:
        if v is None:
            table.pop(k, None)
        else:
            table[k] = v
    return table


def apply_truth(state: dict[str, bytes], batch: Batch) -> dict[str, bytes]:
    out = dict(state)
    for k, v in batch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def run(store: PartitionStore, batches: list[Batch]) -> tuple[list[Write], list[int]]:
    """Writes of all batches, and the index just past each batch's marker."""
    writes: list[Write] = []
    ends: list[int] = []
    for i, b in enumerate(batches):
        store.count("applied:tickets", len(b))
        store.marker.offsets["tickets"] = i
        writes += store.batch_writes(b, wall_ms=i)
        ends.append(len(writes))
    return writes, ends


def fresh(epoch: int = 11) -> tuple[PartitionStore, list[Write]]:
    store, rec = PartitionStore.recover(P, [], epoch=epoch)
    assert rec.items == {}
    return store, rec.repairs


def truths(batches: list[Batch]) -> list[dict[str, bytes]]:
    out: list[dict[str, bytes]] = [{}]
    for b in batches:
        out.append(apply_truth(out[-1], b))
    return out


def test_record_roundtrip_and_corruption() -> None:
    for rec in (Record(1, 2, b"n", b"p"), Record(3, 4, None, b""), Record(5, 6, b"", None)):
        assert decode_record(encode_record(rec)) == rec
    for bad in (b"", b"XX" + bytes(30), encode_record(Record(1, 1, b"abc", None))[:-1]):
        try:
            decode_record(bad)
        except CorruptState:
            continue
        raise AssertionError(f"accepted {bad!r}")


@settings(max_examples=150, deadline=None)
@given(batches_st)
def test_changelog_prefix_recovers_last_committed_batch(batches: list[Batch]) -> None:
    """Crash anywhere: a rebuild from the changelog is the last batch whose marker landed."""
    store, init = fresh()
    writes, ends = run(store, batches)
    log = init + writes
    truth = truths(batches)
    base = len(init)
    for cut in range(base, len(log) + 1):
        committed = sum(1 for e in ends if base + e <= cut)
        rebuilt, rec = PartitionStore.recover(P, compact(log[:cut]).items(), epoch=99)
        assert rec.items == truth[committed], (cut, committed)
        assert rebuilt.marker.offsets.get("tickets", -1) == committed - 1
        assert rebuilt.marker.counters.get("applied:tickets", 0) == sum(
            len(b) for b in batches[:committed]
        )
        # after the repairs land, the table alone says the same
        healed = compact(rec.repairs, compact(log[:cut]))
        _again, rec2 = PartitionStore.recover(P, healed.items(), epoch=100)
        assert rec2.items == truth[committed]
        assert rec2.reverted == 0


@settings(max_examples=300, deadline=None)
@given(batches_st, batches_st, st.data())
def test_local_store_ahead_of_changelog_same_worker(
    first: list[Batch], later: list[Batch], data: st.DataObject
) -> None:
    """kill -9 while a batch's writes are in flight; the worker restarts on its RocksDB.

    The local store has the whole batch; the changelog a prefix. Recovery
    from the local store must re-send what the changelog may lack, so that a
    later rebuild from the changelog alone (another worker) agrees.
    """
    store, init = fresh()
    writes, ends = run(store, first)
    log = init + writes
    start_last = len(init) + (ends[-2] if len(ends) > 1 else 0)
    cut = data.draw(st.integers(start_last, len(log)))
    local = compact(log)  # every write reached RocksDB
    changelog = log[:cut]
    truth = truths(first)[-1]
    # restart on the local store (faust replays changelog[persisted:], a subset of local)
    w, rec = PartitionStore.recover(P, local.items(), epoch=21)
    assert rec.items == truth
    if data.draw(st.booleans()):  # killed again while the repairs were in flight
        cut2 = data.draw(st.integers(0, len(rec.repairs)))
        changelog += rec.repairs[:cut2]
        local = compact(rec.repairs, local)
        w, rec = PartitionStore.recover(P, local.items(), epoch=24)
        assert rec.items == truth
    changelog += rec.repairs
    local = compact(rec.repairs, local)
    more, _ = run(w, later)
    changelog += more
    final = truth
    for b in later:
        final = apply_truth(final, b)
    _, from_changelog = PartitionStore.recover(P, compact(changelog).items(), epoch=22)
    assert from_changelog.items == final
    _, from_local = PartitionStore.recover(P, compact(more, local).items(), epoch=23)
    assert from_local.items == final


@settings(max_examples=300, deadline=None)
@given(batches_st, batches_st, st.data())
def test_phantoms_after_takeover_fall_back(
    first: list[Batch], other: list[Batch], data: st.DataObject
) -> None:
    """W1 dies mid-flush; W2 rebuilds from the changelog and goes on; W1 gets p back.

    W1's RocksDB holds writes of its last batch that never reached the
    changelog (phantoms). faust brings W1's store up to date by replaying the
    changelog from W1's persisted offset, which does not overwrite phantom
    keys W2 never wrote. W1 must end up with exactly W2's state.
    """
    store, init = fresh(epoch=31)
    writes, ends = run(store, first)
    log = init + writes
    start_last = len(init) + (ends[-2] if len(ends) > 1 else 0)
    cut = data.draw(st.integers(start_last, len(log)))
    w1_local = compact(log)
    changelog = log[:cut]
    w2, rec = PartitionStore.recover(P, compact(changelog).items(), epoch=32)
    committed = sum(1 for e in ends if len(init) + e <= cut)
    truth = truths(first)[committed]
    assert rec.items == truth
    changelog += rec.repairs
    w2_writes, _ = run(w2, other)
    changelog += w2_writes
    for b in other:
        truth = apply_truth(truth, b)
    # W1 returns: local store + changelog replay from its persisted offset (= cut)
    w1_view = compact(changelog[cut:], w1_local)
    _, back = PartitionStore.recover(P, w1_view.items(), epoch=33)
    assert back.items == truth


def test_deletes_become_tombstones_one_batch_later() -> None:
    store, _ = fresh()
    w1 = store.batch_writes({"a": b"1"}, 0)
    w2 = store.batch_writes({"a": None}, 1)
    raw = dict(w2)[state_key(P, "a")]
    assert raw is not None and decode_record(raw).new is None  # delete record keeps prev
    w3 = store.batch_writes({}, 2)
    assert (state_key(P, "a"), None) in w3  # real tombstone now that the delete is committed
    table = compact(w1 + w2 + w3)
    assert set(table) == {marker_key(P)}
    _, rec = PartitionStore.recover(P, table.items(), epoch=5)
    assert rec.items == {}


def test_other_partitions_keys_are_ignored() -> None:
    store, _ = fresh()
    writes = store.batch_writes({"x": b"1"}, 0)
    foreign: list[Write] = [(b"13/s/x", b"garbage"), (b"4/m", b"garbage")]
    _, rec = PartitionStore.recover(P, compact(writes + foreign).items(), epoch=7)
    assert rec.items == {"x": b"1"}


def test_marker_roundtrip() -> None:
    m = Marker(epoch=5, seq=9, committed={2: 3}, offsets={"tickets": 4}, counters={"a:b": 1})
    assert Marker.decode(m.encode()) == m
    try:
        Marker.decode(b"{}")
    except CorruptState:
        pass
    else:
        raise AssertionError("accepted an empty marker")
