"""Review of changelog format 4 (the journal): reproductions of suspected bugs.

Each of the four reproductions failed on land 46d2c6d (docs/runtimes.md, "Gaps
found in review and closed", says which fix made each pass); the two guards after
them passed there too. The reference is the truth dict (`apply_truth`).
"""

from __future__ import annotations

import random

from cxpulse.changelog.records import META_KEY, Write
from cxpulse.changelog.store import PartitionStore, Recovery
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_changelog_journal import long_batches_st, recover4
from tests.unit.test_persistence import apply_truth, compact, compacted, follower_of


def purged(log: list[Write]) -> list[Write]:
    """A compacted log once its tombstones are older than `delete.retention.ms`
    (Kafka's default: 24 h; the changelog topic sets no other): the cleaner drops
    them, so a key whose last record was a tombstone is gone altogether."""
    return [(k, v) for k, v in compacted(log) if v is not None]


def test_follower_of_a_purged_log_has_no_value_a_keyed_delete_removed() -> None:
    """A value keyed at a checkpoint, then changed in a delta, then deleted in a
    checkpoint batch (a keyed delete, so the checkpoint's delta does not list it),
    then tombstoned. The marker that carried the delta is still in its slot (fewer
    than `slots` batches since): once the tombstone is purged, an exporter started
    then must not release the delta's value as live (format 3 never would: the
    key has no record left at all)."""
    slots = 8
    store, rec = recover4([], slots, epoch=5)
    log = list(rec.repairs)
    truth: dict[str, bytes] = {}
    seq = 0

    def batch(b: dict[str, bytes | None]) -> None:
        nonlocal log, truth, seq
        seq += 1
        log += store.batch_writes(b, wall_ms=seq)
        truth = apply_truth(truth, b)

    batch({"x": b"a"})  # seq 1: x rides in the delta
    while store.last_kind != "checkpoint":
        batch({"y": b"%d" % (seq % 10)})  # until the slots force a checkpoint: x keyed
    batch({"x": b"b"})  # x in a delta again (x is keyed and pending)
    while store.last_kind == "journal":
        batch({"y": b"%d" % (seq % 10)})
        if seq % slots == slots - 2:
            break
    # a checkpoint batch that deletes x: force it with a delta too big for the marker
    big = {f"z{i}": b"%03d" % (i % 1000) for i in range(400)}
    batch({"x": None, **big})
    assert store.last_kind == "checkpoint"
    batch({"y": b"q"})  # the tombstone of x
    assert "x" not in truth
    assert follower_of(compacted(log))[0] == truth  # tombstone still there: fine
    assert follower_of(purged(log))[0] == truth  # tombstone purged: x comes back


def test_follower_of_a_compacted_log_reads_markers_written_before_the_names_record() -> None:
    """A counter seen for the first time rewrites the partition's names record
    (`<p>/n`); compaction keeps only that last one, after the journal markers of
    the batches before it, which list their counters by position (`k`). In format
    3 the only marker is the latest, written after the names record; in format 4
    the markers since the checkpoint are still needed, so the follower must not
    drop them (a `CorruptState` for want of names) and lose their deltas."""
    store, rec = recover4([], 8, epoch=5)
    log = list(rec.repairs)
    store.count("a")
    log += store.batch_writes({"x": b"a"}, wall_ms=1)  # x rides in marker 1 only
    store.count("b")  # a new counter name: the names record is written again
    log += store.batch_writes({"y": b"b"}, wall_ms=2)
    truth = {"x": b"a", "y": b"b"}
    assert follower_of(log)[0] == truth  # the full log: fine
    state, f = follower_of(compacted(log))
    assert (state, f.corrupt) == (truth, 0)


def cleaned(log: list[Write], d: int) -> list[Write]:
    """The log as Kafka's cleaner leaves it when it cleaned up to `d` (a segment
    boundary; the active segment from `d` on is never cleaned): a record before
    `d` is kept only if no later record of its key comes before `d`."""
    last = {k: i for i, (k, _) in enumerate(log[:d])}
    return [w for i, w in enumerate(log) if i >= d or last[w[0]] == i]


def test_follower_of_a_log_cleaned_between_a_recovery_marker_and_its_slot_tombstones() -> None:
    """A recovery writes its marker into the latest slot and only then tombstones
    the other slots (one transaction, but a segment may end between two of its
    records, and the cleaner cleans up to there). The latest marker it replaces
    was a checkpoint whose delta deleted a value that only rode in deltas; the
    recovery marker does not say so, and the older slot that set the value is
    still there: an exporter reading the log then releases the value as live."""
    store, rec = recover4([], 2, epoch=5)
    log = list(rec.repairs)
    log += store.batch_writes({"x": b"a"}, wall_ms=1)  # seq 1, slot 1: x in the delta
    log += store.batch_writes({"x": None}, wall_ms=2)  # seq 2: a checkpoint deleting x
    assert store.last_kind == "checkpoint"
    store, rec = recover4(compact(log).items(), 2)  # a restart
    assert rec.items == {}
    log += rec.repairs
    d = max(i for i, (k, v) in enumerate(log) if k.endswith(b"/j/0") and v is not None) + 1
    assert follower_of(log)[0] == {}  # the full log: fine
    assert follower_of(cleaned(log, len(log)))[0] == {}  # cleaned to its end: fine
    assert follower_of(cleaned(log, d))[0] == {}  # cleaned to just after the marker


def read_while_cleaned(log: list[Write], r: int, d: int) -> list[Write]:
    """What a reader of `log` from its start reads when the cleaner (cleaning up
    to `d`) swaps in the cleaned segments while the reader is at offset `r`."""
    last = {k: i for i, (k, _) in enumerate(log[:d])}
    return log[:r] + [w for i, w in enumerate(log) if i >= r and (i >= d or last[w[0]] == i)]


def test_follower_reading_while_the_cleaner_runs_keeps_no_deleted_value() -> None:
    """An exporter reads a partition from its start while the cleaner swaps in the
    cleaned segments: what it read before offset `r` was the full log, what it
    reads after is cleaned. A value set in one journal marker and deleted in the
    next one's delta: the first was read, the second is already overwritten in
    its slot by a later marker (after a checkpoint, which keys nothing for it:
    it was deleted) and is dropped by the cleaner. Nothing else says it is gone.
    (Format 3 has no such window: a key's latest record is never dropped.)"""
    store, rec = recover4([], 3, epoch=5)
    log = list(rec.repairs)
    log += store.batch_writes({"x": b"a"}, wall_ms=1)  # seq 1, slot 1: x in the delta
    r = len(log)  # the reader is here when the cleaner swaps the segments
    log += store.batch_writes({"x": None}, wall_ms=2)  # seq 2, slot 2: x deleted
    log += store.batch_writes({"y": b"1"}, wall_ms=3)  # seq 3: a checkpoint
    assert store.last_kind == "checkpoint"
    log += store.batch_writes({"y": b"2"}, wall_ms=4)  # seq 4, slot 1
    log += store.batch_writes({"y": b"3"}, wall_ms=5)  # seq 5, slot 2: seq 2 overwritten
    assert follower_of(log)[0] == {"y": b"3"}
    assert follower_of(read_while_cleaned(log, r, len(log)))[0] == {"y": b"3"}


@settings(max_examples=200, deadline=None)
@given(long_batches_st, st.sampled_from([1, 2, 3, 5, 8]), st.data())
def test_follower_of_a_log_cleaned_up_to_any_offset_holds_the_truth(
    batches: list[dict[str, bytes | None]], slots: int, data: st.DataObject
) -> None:
    """The compacted logs of test_changelog_journal are cleaned to their end; Kafka's
    cleaner stops at a segment boundary, any offset: the journal markers after it
    are all there, those before it only if their slot was not written again before
    it. The follower must end at the truth wherever the boundary is (no restart:
    finding 3 is the one case found with restarts)."""
    store, rec = recover4([], slots, epoch=5)
    log = list(rec.repairs)
    truth: dict[str, bytes] = {}
    for i, batch in enumerate(batches):
        log += store.batch_writes(batch, wall_ms=i)
        truth = apply_truth(truth, batch)
    d = data.draw(st.integers(0, len(log)))
    assert follower_of(cleaned(log, d))[0] == truth


#: value sizes at the boundaries that matter: the 64-byte delta pieces, a part
#: (4 KiB, `_MAX_INNER` too) and the largest patch base (64 KiB)
SIZES = [0, 1, 63, 64, 65, 4095, 4096, 4097, 8000, 65535, 65536, 65537]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([1, 3, 256]), st.integers(1, 25))
def test_real_part_sizes_recover_and_follow_the_truth(seed: int, slots: int, n: int) -> None:
    """The journal with the default part size (4 KiB) and values at its boundaries,
    edited a few bytes at a time (so that they ride as patches) or replaced whole;
    restarts with another slot count. Recovery after each restart, the follower on
    the full and the compacted log, and a last recovery all give the truth."""
    rng = random.Random(seed)

    def recover(items: object, r: int, epoch: int | None = None) -> tuple[PartitionStore, Recovery]:
        return PartitionStore.recover(3, items, epoch=epoch, with_prev=False, journal_slots=r)  # type: ignore[arg-type]

    store, rec = recover([], slots, epoch=5)
    log = list(rec.repairs)
    truth: dict[str, bytes] = {}
    for i in range(n):
        batch: dict[str, bytes | None] = {}
        for k in rng.sample(["k0", "k1", "k2", "c"], rng.randint(0, 3)):
            old, roll = truth.get(k), rng.random()
            if roll < 0.1:
                batch[k] = None
            elif old is None or roll < 0.3:
                size = rng.choice(SIZES)
                batch[k] = (rng.randbytes(min(size, 200)) * (size // 200 + 1))[:size]
            else:
                v = bytearray(old)
                for _ in range(rng.randint(1, 3)):
                    at = rng.randint(0, len(v))
                    if rng.random() < 0.5:
                        v[at:at] = b"],[%d" % rng.randint(0, 99999)
                    else:
                        v[at : at + rng.randint(1, 5)] = b"%d" % rng.randint(0, 9)
                batch[k] = bytes(v)
        if rng.random() < 0.7:
            batch[META_KEY] = b'{"o":[%d,0],"st":[%d]}' % (i, rng.randint(0, 10**9))
        log += store.batch_writes(batch, wall_ms=i)
        truth = apply_truth(truth, batch)
        if rng.random() < 0.2:
            store, rec = recover(compact(log).items(), rng.choice([0, 1, 3, 8, 256]))
            assert rec.items == truth
            log += rec.repairs
    state, f = follower_of(log)
    assert (state, f.corrupt, f.stale_patches) == (truth, 0, 0)
    assert follower_of(compacted(log))[0] == truth
    assert recover(compact(log).items(), slots)[1].items == truth
