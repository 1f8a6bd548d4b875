"""Crash exactness of the state <-> table logic, without a broker.

The model: a *changelog* is the list of writes in the order they were sent
(one producer, one partition: the broker keeps a prefix of it after a crash);
a table is the compacted changelog (last value per key, None = tombstone);
the *local store* (RocksDB) receives every write at once, before the
changelog, and survives a kill. Each test crashes at every possible point and
checks that recovery yields exactly the state of the last committed batch.

Values are drawn around the part size (`PART`, tiny here), often sharing a
prefix with earlier ones, so splits, unchanged parts, growth, shrinking and
the switch between whole and split values are all crashed into.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cxpulse.changelog.follow import PartitionFollower
from cxpulse.changelog.records import (
    DEFAULT_MAX_RECORD_BYTES,
    CorruptState,
    Marker,
    Record,
    ValueTooLarge,
    Write,
    decode_record,
    encode_record,
    marker_key,
    state_key,
)
from cxpulse.changelog.store import PartitionStore, Recovery
from hypothesis import given, settings
from hypothesis import strategies as st

P = 3
KEYS = [f"k{i}" for i in range(6)]
#: part size of the stores under test: values up to ~18 bytes make up to 6 parts
PART = 3
#: patch bound of the stores under test: a split value's head then often carries a
#: patch of its parts (format 3), and as often is cut into parts again
PATCH = 24

Batch = dict[str, bytes | None]
#: short values, and values with a shared (append-mostly) prefix plus a tail
values_st = st.one_of(
    st.none(),
    st.binary(min_size=0, max_size=4),
    st.builds(
        bytes.__add__,
        st.sampled_from([b"abcdef", b"abcdefghi", b"abcdefghijkl", b"xbcdefghijkl"]),
        st.binary(max_size=6),
    ),
)
batches_st = st.lists(
    st.dictionaries(st.sampled_from(KEYS), values_st, max_size=4),
    min_size=1,
    max_size=6,
)


def recover(
    partition: int, items: Iterable[tuple[bytes, bytes | None]], epoch: int | None = None
) -> tuple[PartitionStore, Recovery]:
    """`PartitionStore.recover` with tiny parts (and patches of them)."""
    return PartitionStore.recover(
        partition, items, epoch=epoch, part_bytes=PART, patch_bytes=PATCH
    )


def compact(writes: Iterable[Write], base: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
    table = dict(base or {})
    for k, v in writes:
        if v is None:
            table.pop(k, None)
        else:
            table[k] = v
    return table


def follower_of(
    log: Iterable[Write], partition: int = P
) -> tuple[dict[str, bytes], PartitionFollower]:
    """What an exporter's follower of `log` has released, and the follower (its counts)."""
    f = PartitionFollower(partition)
    state: dict[str, bytes] = {}
    for k, v in log:
        for name, value in f.feed(k, v) or []:
            if value is None:
                state.pop(name, None)
            else:
                state[name] = value
    return state, f


def compacted(log: list[Write]) -> list[Write]:
    """What a compacted topic may keep: the last record of each key, in log order."""
    last = {k: i for i, (k, _) in enumerate(log)}
    return [w for i, w in enumerate(log) if last[w[0]] == i]


def apply_truth(state: dict[str, bytes], batch: Mapping[str, bytes | None]) -> dict[str, bytes]:
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
    store, rec = recover(P, [], epoch=epoch)
    assert rec.items == {}
    return store, rec.repairs


def truths(batches: list[Batch]) -> list[dict[str, bytes]]:
    out: list[dict[str, bytes]] = [{}]
    for b in batches:
        out.append(apply_truth(out[-1], b))
    return out


def test_record_roundtrip_and_corruption() -> None:
    split = (Record(7, 8, b"d", b"p", True, False), Record(9, 9, b"n", b"d", False, True))
    for rec in (Record(1, 2, b"n", b"p"), Record(3, 4, None, b""), Record(5, 6, b"", None), *split):
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
        rebuilt, rec = recover(P, compact(log[:cut]).items(), epoch=99)
        assert rec.items == truth[committed], (cut, committed)
        assert rebuilt.marker.offsets.get("tickets", -1) == committed - 1
        assert rebuilt.marker.counters.get("applied:tickets", 0) == sum(
            len(b) for b in batches[:committed]
        )
        # after the repairs land, the table alone says the same
        healed = compact(rec.repairs, compact(log[:cut]))
        _again, rec2 = recover(P, healed.items(), epoch=100)
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
    w, rec = recover(P, local.items(), epoch=21)
    assert rec.items == truth
    if data.draw(st.booleans()):  # killed again while the repairs were in flight
        cut2 = data.draw(st.integers(0, len(rec.repairs)))
        changelog += rec.repairs[:cut2]
        local = compact(rec.repairs, local)
        w, rec = recover(P, local.items(), epoch=24)
        assert rec.items == truth
    changelog += rec.repairs
    local = compact(rec.repairs, local)
    more, _ = run(w, later)
    changelog += more
    final = truth
    for b in later:
        final = apply_truth(final, b)
    _, from_changelog = recover(P, compact(changelog).items(), epoch=22)
    assert from_changelog.items == final
    _, from_local = recover(P, compact(more, local).items(), epoch=23)
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
    w2, rec = recover(P, compact(changelog).items(), epoch=32)
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
    _, back = recover(P, w1_view.items(), epoch=33)
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
    _, rec = recover(P, table.items(), epoch=5)
    assert rec.items == {}


def test_other_partitions_keys_are_ignored() -> None:
    store, _ = fresh()
    writes = store.batch_writes({"x": b"1"}, 0)
    foreign: list[Write] = [(b"13/s/x", b"garbage"), (b"4/m", b"garbage")]
    _, rec = recover(P, compact(writes + foreign).items(), epoch=7)
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


def _record_sizes(writes: list[Write]) -> list[int]:
    return [len(k) + len(v or b"") for k, v in writes]


def test_large_values_are_split_under_the_record_bound_and_rewritten_by_what_changed() -> None:
    """A value of several MB (a slice of 20,000 agents, a ticket of 20,000 events)
    used to be one record the broker refused. Split: every record stays under
    `max_record_bytes`; appending writes the changed last part, not the history."""
    store, _ = PartitionStore.recover(P, [], epoch=3)
    assert store.max_record_bytes == DEFAULT_MAX_RECORD_BYTES
    value = b"".join(b'{"id":"ev-%06d","ts":%d},' % (i, i * 1000) for i in range(100_000))
    assert len(value) > 3_000_000
    log = store.batch_writes({"t:big": value, "small": b"s"}, 0)
    assert max(_record_sizes(log)) <= DEFAULT_MAX_RECORD_BYTES
    for i in range(5):  # append-mostly: the prefix is stable
        value += b'{"id":"late-%d"},' % i
        w = store.batch_writes({"t:big": value}, i + 1)
        # the last part (new + prev), the descriptor (new + prev), the marker
        assert sum(_record_sizes(w)) < 4 * store.part_bytes + 2 * 8 * 400 + 1_000
        log += w
    _, rec = PartitionStore.recover(P, compact(log).items(), epoch=4)
    assert rec.items == {"t:big": value, "small": b"s"}
    # shrink to two parts, then to a whole value: stale parts are deleted and
    # tombstoned one batch later; nothing else is left in the table
    for i, v in enumerate((value[: store.part_bytes + 5], b"tiny")):
        log += store.batch_writes({"t:big": v}, 10 + i)
        _, rec = PartitionStore.recover(P, compact(log).items(), epoch=5)
        assert rec.items == {"t:big": v, "small": b"s"}
    log += store.batch_writes({}, 20)
    table = compact(log)
    assert sorted(table) == sorted([marker_key(P), state_key(P, "small"), state_key(P, "t:big")])


def test_a_changed_part_that_does_not_match_its_descriptor_is_corrupt() -> None:
    store, _ = recover(P, [], epoch=3)
    table = compact(store.batch_writes({"k": b"abcdefghij"}, 0))
    part = next(k for k in table if b"/y/" in k)
    rec = decode_record(table[part])
    table[part] = encode_record(Record(rec.epoch, rec.seq, b"zzz", rec.prev))
    try:
        recover(P, table.items(), epoch=4)
    except CorruptState:
        return
    raise AssertionError("a part that does not match its descriptor was accepted")


def test_tombstones_named_by_a_marker_are_bounded_and_the_rest_follow_later() -> None:
    """Thousands of keys deleted in one batch (tickets evicted at once): the marker
    names the tombstones it writes, so it would outgrow the record bound."""
    store, _ = PartitionStore.recover(P, [], epoch=3, max_record_bytes=16 * 1024)
    names = {f"t:{i:05d}-{'x' * 40}": b"v" for i in range(2_000)}
    log = store.batch_writes(names, 0)
    log += store.batch_writes(dict.fromkeys(names), 1)  # delete records
    batches = 0
    while True:
        w = store.batch_writes({}, 2 + batches)
        log += w
        marker = dict(w)[marker_key(P)]
        assert marker is not None and len(marker) <= store.max_record_bytes // 2
        batches += 1
        if not any(v is None for _, v in w):
            break
    assert batches > 3  # spread over several batches
    assert set(compact(log)) == {marker_key(P)}
    _, rec = PartitionStore.recover(P, compact(log).items(), epoch=4)
    assert rec.items == {}


def test_values_beyond_the_descriptors_reach_get_larger_parts() -> None:
    """Small records (16 KiB): 766 parts of 4 KiB would hold 3 MB; larger values
    use larger parts (up to what a record holds), and still fit and join."""
    store, _ = PartitionStore.recover(P, [], epoch=3, max_record_bytes=16 * 1024)
    value = bytes(range(256)) * (4_000_000 // 256)
    log = store.batch_writes({"c": value}, 0)
    assert max(_record_sizes(log)) <= 16 * 1024
    assert len(log) < 1_000
    _, rec = PartitionStore.recover(P, compact(log).items(), epoch=4)
    assert rec.items == {"c": value}
    try:
        store.batch_writes({"c": value * 3}, 1)
    except ValueTooLarge:
        return
    raise AssertionError("a value beyond every part size was accepted")
