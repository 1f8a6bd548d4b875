"""Changelog format 4 (issue 22, the trickle): a commit marker carries the batch's
small changes (its delta) and cycles through journal slots; keyed records are
written at checkpoints. Recovery and the follower must rebuild exactly the values
the batches wrote, after any restart, from the full log and from a compacted one,
however the slots were overwritten; and formats 3 and 4 must hand over to each
other (a worker upgraded, or the journal turned off).

The reference is the truth dict (latest value of every key, `apply_truth`) and,
for the engine, `PartitionEngine.restore` / a replica against the live engine.
"""

from __future__ import annotations

from cxpulse.changelog.follow import PartitionFollower
from cxpulse.changelog.records import (
    DELTA_PATCH,
    DELTA_VALUE,
    META_KEY,
    CorruptState,
    Marker,
    Write,
    delta_patch,
    journal_key,
    make_patch,
    marker_key,
)
from cxpulse.changelog.store import PartitionStore, Recovery, latest_marker
from cxpulse.core.config import CoreConfig
from cxpulse.core.decode import Rejection, decode
from cxpulse.core.engine import PartitionEngine, evaluate
from cxpulse.core.events import role_of
from cxpulse.core.partitioning import partition_for
from cxpulse.core.replica import PartitionReplica
from cxpulse.sim.dirt import generate
from cxpulse.sim.model import SimConfig
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_persistence import (
    KEYS,
    PART,
    PATCH,
    P,
    apply_truth,
    compact,
    compacted,
    follower_of,
    values_st,
)

#: an engine-meta-like value: a few numbers that change from batch to batch
meta_st = st.builds(
    lambda n, t: b'{"o":[%d,0],"sealed":[1793578200000],"st":[%d,null]}' % (n, t),
    st.integers(0, 12), st.integers(0, 10**6),
)  # fmt: skip
#: long runs of small batches, so that slots are overwritten and checkpoints happen;
#: most batches also change the engine meta (`META_KEY`, never deleted)
long_batches_st = st.lists(
    st.builds(
        lambda d, meta: d if meta is None else {**d, META_KEY: meta},
        st.dictionaries(st.sampled_from(KEYS), values_st, max_size=3),
        st.one_of(st.none(), meta_st, meta_st),
    ),
    min_size=1,
    max_size=40,
)


def recover4(
    items: object, slots: int, epoch: int | None = None
) -> tuple[PartitionStore, Recovery]:
    return PartitionStore.recover(
        P, items, epoch=epoch, part_bytes=PART, with_prev=False, patch_bytes=PATCH,  # type: ignore[arg-type]
        journal_slots=slots,
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(long_batches_st, st.sampled_from([1, 2, 3, 5, 8]), st.data())
def test_journal_recovers_and_follows_the_truth_at_every_batch(
    batches: list[dict[str, bytes | None]], slots: int, data: st.DataObject
) -> None:
    """A restart after any batch (a transaction lands whole or not at all: kill -9
    between batches, or while recovery's own repairs are written, is all a
    transactional writer can leave) gives the truth, from the compacted changelog;
    the follower holds the truth after every batch, from the full log (never a
    patch it cannot apply) and from a compacted one. Restarts may change the slot
    count or turn the journal off and on again."""
    store, rec = recover4([], slots, epoch=5)
    log = list(rec.repairs)
    truth: dict[str, bytes] = {}
    for i, batch in enumerate(batches):
        log += store.batch_writes(batch, wall_ms=i)
        truth = apply_truth(truth, batch)
        if data.draw(st.booleans()):
            slots = data.draw(st.sampled_from([0, 1, 2, 3, 5, 8]))
            store, rec = recover4(compact(log).items(), slots)
            assert rec.items == truth
            # a crash while the repairs were written: any prefix of them, then again
            cut = data.draw(st.integers(0, len(rec.repairs)))
            if cut < len(rec.repairs):
                _store, again = recover4(compact(log + rec.repairs[:cut]).items(), slots)
                assert again.items == truth
            log += rec.repairs
        state, f = follower_of(log)
        assert (state, f.corrupt, f.stale_patches) == (truth, 0, 0)
        assert follower_of(compacted(log))[0] == truth
    assert recover4(compact(log).items(), slots)[1].items == truth


def test_a_trickle_writes_one_record_per_batch_between_checkpoints() -> None:
    """One small change per batch: the marker alone, until the slots run out; then one
    checkpoint writes each key changed since the last one once."""
    slots = 8
    store, rec = recover4([], slots, epoch=5)
    log = list(rec.repairs)
    per_batch = []
    for i in range(40):
        w = store.batch_writes({f"k{i % 3}": b"v%d" % i}, wall_ms=i)
        per_batch.append(len(w))
        log += w
    # a checkpoint at seq 8, 16, ... (seq - ck reached the slot count): 3 keys + marker
    assert per_batch == ([1] * 7 + [4]) * 5
    slots_written = {k for k, _ in log if k.startswith(b"%d/j/" % P)}
    assert slots_written == {journal_key(P, s) for s in range(8)}
    want = {"k0": b"v39", "k1": b"v37", "k2": b"v38"}
    assert recover4(compact(log).items(), slots)[1].items == want
    state, f = follower_of(log)
    # the follower keeps a delta's values only until their keyed records (patch bases)
    assert state == want and f.values == {}


def test_a_split_value_rides_as_a_patch_of_its_previous_value() -> None:
    store, _rec = PartitionStore.recover(
        P, [], epoch=5, part_bytes=64, with_prev=False, patch_bytes=512, journal_slots=8)
    big = b"[[" + b"],[".join(b"%04d" % i for i in range(300)) + b"]]"
    log = store.batch_writes({"c": big}, wall_ms=0)  # no earlier value to patch: keyed
    assert any(k.startswith(b"%d/s/c" % P) for k, _ in log)
    changed = big.replace(b"0150", b"x150")
    w = store.batch_writes({"c": changed}, wall_ms=1)
    assert len(w) == 1 and len(w[0][1] or b"") < 300  # the marker alone, not the value
    kinds = [kind for _n, kind, _d in Marker.decode(w[0][1] or b"", store.marker.names).delta]
    assert kinds == [DELTA_PATCH]
    log += w
    again = changed.replace(b"0007", b"y007")
    w = store.batch_writes({"c": again, "k1": b"x"}, wall_ms=2)
    log += w
    delta = Marker.decode(w[-1][1] or b"", store.marker.names).delta
    assert sorted((n, kind) for n, kind, _d in delta) == [("c", DELTA_PATCH), ("k1", DELTA_VALUE)]
    want = {"c": again, "k1": b"x"}
    _store, rec = PartitionStore.recover(
        P, compact(log).items(), part_bytes=64, with_prev=False, journal_slots=8)
    assert rec.items == want
    assert follower_of(log)[0] == want


def test_a_missing_journal_marker_is_corrupt_state() -> None:
    """A slot the last checkpoint still needs, gone (never written by this code):
    recovery refuses rather than restore a value older than what was committed."""
    store, rec = recover4([], 8, epoch=5)
    log = list(rec.repairs)
    for i in range(5):
        log += store.batch_writes({"k0": b"%d" % i}, wall_ms=i)
    table = compact(log)
    del table[journal_key(P, 3)]
    try:
        recover4(table.items(), 8)
    except CorruptState:
        pass
    else:
        raise AssertionError("a gap in the journal was accepted")


def test_format3_marker_and_journal_the_higher_seq_wins() -> None:
    old = Marker(epoch=1, seq=7)
    j6, j7 = Marker(epoch=1, seq=6, ck=6), Marker(epoch=1, seq=7, ck=6)
    assert latest_marker(old, [j6]) == (old, [])
    assert latest_marker(old, [j6, j7]) == (old, [])  # one seq: the later checkpoint
    j8 = Marker(epoch=1, seq=8, ck=6)
    assert latest_marker(old, [j6, j7, j8]) == (j8, [j7, j8])  # back to the checkpoint
    merged = Marker(epoch=2, seq=8, ck=6, base=6)  # a recovery's: covers 7 and 8
    assert latest_marker(old, [j6, j8, merged]) == (merged, [merged])
    assert latest_marker(None, []) == (Marker(), [])
    # the format-3 marker is tombstoned when the journal takes over
    store, _ = PartitionStore.recover(P, [], epoch=5, with_prev=False)
    log = store.batch_writes({"k0": b"1"}, 0)
    assert marker_key(P) in dict(log)
    _store, rec = recover4(compact(log).items(), 4)
    assert (marker_key(P), None) in rec.repairs


def test_the_journal_needs_transactional_writes() -> None:
    try:
        PartitionStore.recover(P, [], epoch=5, with_prev=True, journal_slots=4)
    except ValueError:
        pass
    else:
        raise AssertionError("a journal without transactions was accepted")


def test_engine_restored_from_a_journal_equals_the_live_engine() -> None:
    """A simulated helpdesk, one message per batch (the trickle) with a small journal:
    after restarts from the compacted changelog the restored engines evaluate as the
    live ones, and replicas fed by the follower as well (the reference: engines
    that never went through the changelog)."""
    cfg = CoreConfig()
    sim = SimConfig(seed=3, duration_ms=8 * 3_600_000, tickets_per_day=2000,
                    duplicates=0.03, disorder_s=120)  # fmt: skip
    parts = 2
    live = [PartitionEngine(cfg, p) for p in range(parts)]
    ref = [PartitionEngine(cfg, p) for p in range(parts)]
    stores = {p: PartitionStore.recover(p, [], epoch=p + 1, with_prev=False, journal_slots=16)
              for p in range(parts)}  # fmt: skip
    logs: dict[int, list[Write]] = {p: list(stores[p][1].repairs) for p in range(parts)}
    followers = {p: PartitionFollower(p) for p in range(parts)}
    replicas = [PartitionReplica(cfg, p) for p in range(parts)]
    journaled = checkpoints = 0

    def follow_into(p: int, writes: list[Write]) -> None:
        for k, v in writes:
            for name, value in followers[p].feed(k, v) or []:
                replicas[p].apply(name, value)

    for p in range(parts):
        follow_into(p, logs[p])
    n = 0
    for rec in generate(sim):
        e = decode(rec.value)
        if isinstance(e, Rejection):
            continue
        p = partition_for(e.ticket_id or e.event_id, parts)
        live[p].apply(role_of(e), e)
        ref[p].apply(role_of(e), e)
        store = stores[p][0]
        w = store.batch_writes(live[p].drain_dirty(), wall_ms=n)
        journaled += len(w) == 1
        checkpoints += store.marker.ck == store.marker.seq
        logs[p] += w
        follow_into(p, w)
        n += 1
        if n % 300 == 0:  # a restart of partition p from its compacted changelog
            stores[p] = PartitionStore.recover(
                p, compact(logs[p]).items(), with_prev=False, journal_slots=16)
            logs[p] += stores[p][1].repairs
            follow_into(p, stores[p][1].repairs)
            live[p] = PartitionEngine.restore(cfg, p, stores[p][1].items.items())
            assert evaluate(live) == evaluate(ref)
    assert n > 800 and journaled > n // 2 and checkpoints > n // 20
    assert evaluate(live) == evaluate(ref)
    assert evaluate(replicas) == evaluate(ref)
    for p in range(parts):
        assert followers[p].corrupt == followers[p].stale_patches == 0
        restored = PartitionEngine.restore(
            cfg, p, PartitionStore.recover(p, compact(logs[p]).items(), with_prev=False,
                                           journal_slots=16)[1].items.items())  # fmt: skip
        live[p] = restored
    assert evaluate(live) == evaluate(ref)


def test_a_small_value_rides_as_a_patch_of_the_value_its_last_delta_carried() -> None:
    """A ticket gaining events: whole in its first delta, then patches of it; whole
    again after the checkpoint wrote it keyed (a follower no longer holds the base)."""
    store, rec = PartitionStore.recover(P, [], epoch=5, with_prev=False, journal_slots=4)
    log = list(rec.repairs)
    events = [b'["c","%08d-0000-0000-0000",0,"T-1","tech","chat","high"]' % i for i in range(8)]
    kinds = []
    for i in range(10):
        events.append(b'["m","%08d-aaaa-bbbb-cccc",%d,"T-1","agent-%d",null,true]' % (i, i, i))
        value = b'{"e":[' + b",".join(events) + b"]}"
        w = store.batch_writes({"t:T-1": value}, wall_ms=i)
        log += w
        kinds.append([k for _n, k, _d in Marker.decode(w[-1][1] or b"", store.marker.names).delta])
        assert recover4(compact(log).items(), 4)[1].items == {"t:T-1": value}
        state, f = follower_of(log)
        assert (state, f.stale_patches) == ({"t:T-1": value}, 0)
    # seq 1-3 journal (whole, then patches), seq 4 a checkpoint (keyed), and again
    assert kinds[:4] == [[DELTA_VALUE], [DELTA_PATCH], [DELTA_PATCH], []]
    assert kinds[4:8] == [[DELTA_VALUE], [DELTA_PATCH], [DELTA_PATCH], []]


def test_a_checkpoint_lists_as_deleted_only_values_that_rode_in_deltas() -> None:
    """A catch-up batch deletes many keys it created itself (survey ids, parked
    surveys): nobody ever saw them, so its marker does not list them."""
    store, _rec = PartitionStore.recover(P, [], epoch=5, with_prev=False, journal_slots=2)
    store.batch_writes({"k0": b"1"}, wall_ms=0)  # rides in the delta
    w = store.batch_writes({"k0": None, "k1": None}, wall_ms=1)  # seq 2: a checkpoint
    assert len(w) == 1  # neither was ever keyed: nothing to delete but in the marker
    marker = Marker.decode(w[-1][1] or b"", store.marker.names)
    assert marker.ck == marker.seq and [(n, k) for n, k, _d in marker.delta] == [("k0", 1)]


def test_the_meta_rides_as_a_patch_of_the_previous_markers() -> None:
    """The engine meta changes by a few digits a batch: a journal marker carries it
    as a patch of the previous marker's (an entry `m`, no `ml`), except the first
    after a checkpoint, which recovery starts from; restarts from the compacted
    log at every batch, and the follower (full and compacted log), give it back."""
    slots = 6
    store, rec = recover4([], slots, epoch=5)
    log = list(rec.repairs)
    whole = []
    for i in range(20):
        meta = b'{"o":[%d,0],"sealed":[1793578200000,-4611686018427387904],"st":[%d,null]}' % (
            i, 1793578557624 + 997 * i)  # fmt: skip
        w = store.batch_writes({META_KEY: meta, f"k{i % 2}": b"v%d" % i}, wall_ms=i)
        log += w
        raw = w[-1][1] or b""
        marker = Marker.decode(raw, store.marker.names)
        entries = [(n, k, len(d)) for n, k, d in marker.delta if n == META_KEY]
        if marker.meta is None:
            assert [e[:2] for e in entries] == [(META_KEY, DELTA_PATCH)]
            assert entries[0][2] < len(meta) * 2 // 3 and b'"ml"' not in raw
        else:
            assert marker.meta == meta and not entries
            whole.append(marker.seq - (marker.ck or 0))
        want = {META_KEY: meta, "k0": b"v%d" % (i - i % 2), "k1": b"v%d" % (i - 1 + i % 2)}
        if i == 0:
            del want["k1"]
        got = recover4(compact(log).items(), slots)[1].items
        assert got == want
        state, f = follower_of(log)
        assert (state, f.stale_patches) == (want, 0)
        assert follower_of(compacted(log))[0] == want
    # whole: at every checkpoint (seq - ck = 0) and the marker after it (1), only
    assert set(whole) == {0, 1} and len(whole) < 10
    # a recovery's marker carries the meta whole; the next batches patch it, also
    # when it did not change
    store, rec = recover4(compact(log).items(), slots)
    log += rec.repairs
    for i, batch in enumerate(({META_KEY: meta.replace(b"[19,", b"[20,")}, {"k1": b"x"})):
        w = store.batch_writes(batch, wall_ms=20 + i)
        delta = Marker.decode(w[-1][1] or b"", store.marker.names).delta
        assert [n for n, _k, _d in delta if n == META_KEY] == [META_KEY]
        log += w
    got = recover4(compact(log).items(), slots)[1].items
    assert got[META_KEY] == meta.replace(b"[19,", b"[20,")
    assert follower_of(log)[0][META_KEY] == got[META_KEY]
    # the engine never deletes its meta, but a marker without one means none (as
    # in format 3), not the one before it
    log += store.batch_writes({META_KEY: None}, wall_ms=22)
    assert store.marker.ck != store.marker.seq  # a journal marker, in the chain
    assert META_KEY not in recover4(compact(log).items(), slots)[1].items


def test_a_meta_patch_whose_base_is_not_in_the_chain_is_corrupt_state() -> None:
    """The first marker after a checkpoint carries the meta whole (the one before
    it is not among the markers recovery applies): a patch there was not written
    by this code, even if it fits the meta of a later marker."""
    a, b = b'{"st":[1,null]}', b'{"st":[2,null]}'
    patch = make_patch(b, b'{"st":[3,null]}', 100)
    assert patch is not None
    markers = [
        Marker(epoch=1, seq=1, ck=1, meta=a),
        Marker(epoch=1, seq=2, ck=1, delta=[(META_KEY, DELTA_PATCH, delta_patch(b, patch))]),
        Marker(epoch=1, seq=3, ck=1, meta=b),
    ]
    table = [(journal_key(P, m.seq), m.encode()) for m in markers]
    try:
        recover4(table, 4)
    except CorruptState:
        pass
    else:
        raise AssertionError("a meta patch without its base was applied")
