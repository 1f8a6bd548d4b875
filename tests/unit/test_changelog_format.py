"""Changelog format 2 (issue 22): no `prev` with transactional writes, the engine
meta in the marker, content-defined parts keyed by digest; and format 1 (what
workers before it wrote) still read.

The crash tests of `test_persistence.py` cover the `with_prev` store (the faust
runtime, non-transactional writes) in the new format; here the transactional
store, whose batches land whole or not at all (read_committed), and the reading
of records the old code wrote (`data/changelog_format1.json`, written by
`data/gen_changelog_format1.py` with the code of main 691881a).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from cxpulse.changelog.follow import PartitionFollower
from cxpulse.changelog.records import (
    META_KEY,
    CorruptState,
    Marker,
    Record,
    Write,
    _trim_literals,
    apply_patch,
    content_chunks,
    decode_record,
    encode_record,
    make_patch,
    marker_key,
    state_key,
)
from cxpulse.changelog.store import PartitionStore, Recovery
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_persistence import (
    PART,
    PATCH,
    P,
    apply_truth,
    batches_st,
    compact,
    compacted,
    follower_of,
)

DATA = Path(__file__).parent / "data" / "changelog_format1.json"


def recover_tx(items: object, epoch: int | None = None) -> tuple[PartitionStore, Recovery]:
    return PartitionStore.recover(
        P, items, epoch=epoch, part_bytes=PART, with_prev=False, patch_bytes=PATCH  # type: ignore[arg-type]
    )


def follow(log: list[Write]) -> tuple[dict[str, bytes], int]:
    """The follower's state and how many values it found corrupt."""
    state, f = follower_of(log)
    return state, f.corrupt


@settings(max_examples=200, deadline=None)
@given(batches_st, st.data())
def test_transactional_store_writes_no_prev_and_recovers_at_every_batch(
    batches: list[dict[str, bytes | None]], data: st.DataObject
) -> None:
    """Whole batches only (a transaction lands whole or not at all); a restart after
    any of them, from the changelog or after its repairs, gives the truth; so does
    the follower, from the full log and from a compacted one."""
    store, rec = recover_tx([], epoch=5)
    log = list(rec.repairs)
    truth: dict[str, bytes] = {}
    for i, batch in enumerate(batches):
        writes = store.batch_writes(batch, wall_ms=i)
        for k, v in writes:
            if v is not None and k != marker_key(P):
                r = decode_record(v)
                assert r.prev is None and r.no_prev
        log += writes
        truth = apply_truth(truth, batch)
        if data.draw(st.booleans()):  # a restart: the next incarnation goes on
            store, rec = recover_tx(compact(log).items())
            assert rec.items == truth and rec.reverted == 0
            log += rec.repairs
        assert follow(log) == (truth, 0)
        assert follow(compacted(log)) == (truth, 0)
    _, rec = recover_tx(compact(log).items())
    assert rec.items == truth


def test_an_uncommitted_record_without_prev_is_corrupt_state() -> None:
    store, _ = recover_tx([], epoch=5)
    log = store.batch_writes({"a": b"1"}, 0)
    log += store.batch_writes({"a": b"2"}, 1)[:-1]  # its marker never came
    try:
        recover_tx(compact(log).items())
    except CorruptState:
        pass
    else:
        raise AssertionError("an uncommitted record without prev was accepted")
    assert follow(log)[1] == 0  # nothing released yet: the follower waits for a marker


def test_the_engine_meta_travels_in_the_marker() -> None:
    store, _ = recover_tx([], epoch=5)
    w = store.batch_writes({META_KEY: b'{"st":[1,2]}', "a": b"1"}, 0)
    assert state_key(P, META_KEY) not in dict(w)
    assert [k for k, _ in w] == [state_key(P, "a"), marker_key(P)]
    w += store.batch_writes({META_KEY: b'{"st":[3,4]}'}, 1)
    marker = Marker.decode(w[-1][1] or b"")
    assert marker.meta == b'{"st":[3,4]}'
    _, rec = recover_tx(compact(w).items())
    assert rec.items == {"a": b"1", META_KEY: b'{"st":[3,4]}'}
    assert follow(w) == ({"a": b"1", META_KEY: b'{"st":[3,4]}'}, 0)


def _json_value(n: int, start: int = 0) -> bytes:
    """A ticket-like JSON value of `n` events."""
    events = (b'["m","ev-%06d",%d,"T-1","agent"]' % (i, i) for i in range(start, start + n))
    return b'{"e":[' + b",".join(events) + b"]}"


def test_an_insertion_rewrites_the_parts_around_it_not_every_later_part() -> None:
    """A fat ticket's events arriving newest first: each is inserted at the front.
    Fixed-size parts rewrote the whole value per insertion."""
    store, _ = PartitionStore.recover(P, [], epoch=3, with_prev=False)
    value = _json_value(2_000, start=10)
    assert len(value) > 40 * store.part_bytes // 4
    log = store.batch_writes({"t:fat": value}, 0)
    for i in range(9, -1, -1):
        value = _json_value(2_010 - i, start=i)
        w = store.batch_writes({"t:fat": value}, 10 - i)
        parts = [k for k, v in w if b"/y/" in k and v is not None]
        assert len(parts) <= 3, len(parts)
        log += w
    _, rec = PartitionStore.recover(P, compact(log).items(), epoch=4, with_prev=False)
    assert rec.items == {"t:fat": value}
    assert follow(log) == ({"t:fat": value}, 0)
    chunks = content_chunks(value, store.part_bytes)
    assert b"".join(chunks) == value and max(map(len, chunks)) <= store.part_bytes


def test_parts_no_value_lists_are_tombstoned_by_the_next_batch_or_by_recovery() -> None:
    store, _ = PartitionStore.recover(P, [], epoch=3, with_prev=False)
    log = store.batch_writes({"t:x": _json_value(800)}, 0)
    log += store.batch_writes({"t:x": _json_value(800, start=400)}, 1)
    before = {k for k in compact(log) if b"/y/" in k}
    # recovery now: the parts the first value alone listed are garbage
    _, rec = PartitionStore.recover(P, compact(log).items(), epoch=4, with_prev=False)
    healed = compact(rec.repairs, compact(log))
    _, again = PartitionStore.recover(P, healed.items(), epoch=5, with_prev=False)
    assert again.items == rec.items == {"t:x": _json_value(800, start=400)}
    garbage = {k for k, v in rec.repairs if v is None}
    assert garbage and garbage < before
    # or the next batch of the same store tombstones them
    log += store.batch_writes({}, 2)
    assert {k for k in compact(log) if b"/y/" in k} == before - garbage
    log += store.batch_writes({"t:x": b"small"}, 3)
    log += store.batch_writes({}, 4)
    assert sorted(compact(log)) == sorted([marker_key(P), state_key(P, "t:x")])


def _format1() -> tuple[list[Write], dict[str, bytes]]:
    d = json.loads(DATA.read_text())
    assert d["partition"] == P
    log = [(bytes.fromhex(k), None if v is None else bytes.fromhex(v)) for k, v in d["log"]]
    return log, {k: v.encode() for k, v in d["truth"].items()}


def test_records_the_old_code_wrote_are_read_then_rewritten_in_the_new_format() -> None:
    """A worker of this version restores from a changelog an older worker wrote (split
    values by index, the meta as a key, a batch cut short by a crash), and so does
    the exporter's follower; the next batches move each key to the new format and
    delete what the old one left (`x/` parts, the `m` key)."""
    log, truth = _format1()
    assert any(b"/x/" in k for k, _ in log) and state_key(P, META_KEY) in dict(log)
    assert follow(log) == (truth, 0)
    for with_prev in (True, False):
        store, rec = PartitionStore.recover(
            P, compact(log).items(), epoch=9, part_bytes=512, with_prev=with_prev
        )
        assert rec.items == truth
        new_log = log + rec.repairs
        assert follow(new_log) == (truth, 0)
        now = dict(truth)
        for i, batch in enumerate((
            {META_KEY: b'{"st":[10,10]}', "t:big": truth["t:big"] + b" ", "t:a": b"{}"},
            {META_KEY: b'{"st":[11,11]}', "t:shrink": b'{"e":[]}', "c": truth["c"]},
            {},
        )):  # fmt: skip
            new_log += store.batch_writes(batch, wall_ms=2000 + i)
            now = apply_truth(now, batch)
            _, again = PartitionStore.recover(
                P, compact(new_log).items(), epoch=10 + i, part_bytes=512, with_prev=with_prev
            )
            assert again.items == now
            assert follow(new_log) == (now, 0)
            assert follow(compacted(new_log)) == (now, 0)
        left = compact(new_log)
        assert not any(b"/x/" in k for k in left)
        assert state_key(P, META_KEY) not in left


def test_record_flags_roundtrip() -> None:
    for rec in (Record(1, 2, b"n", None, no_prev=True), Record(1, 2, None, None, no_prev=True)):
        assert decode_record(encode_record(rec)) == rec


def test_counters_are_values_in_the_order_of_the_names_record() -> None:
    """The marker lists counter values only; their names (written when one is new)
    come from the partition's names record, in recovery and in the follower."""
    store, rec = recover_tx([], epoch=5)
    log = list(rec.repairs)
    expected: dict[str, int] = {}
    for i, name in enumerate(("consumed:tickets", "applied:tickets", "consumed:tickets", "a:z")):
        store.count(name, i + 1)
        expected[name] = expected.get(name, 0) + i + 1
        log += store.batch_writes({}, i)
    marker = log[-1][1] or b""
    assert b"consumed:tickets" not in marker
    again, _ = recover_tx(compact(log).items())
    assert again.marker.counters == expected
    f = PartitionFollower(P)
    for k, v in compacted(log):
        f.feed(k, v)
    assert f.marker is not None and f.marker.counters == expected and f.corrupt == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=30), st.data())
def test_a_patch_gives_the_value_back_and_respects_its_bound(
    elements: list[bytes], data: st.DataObject
) -> None:
    """JSON-like values (elements joined by `],[`, where pieces are cut) edited in
    a few places: the patch turns the old value into the new one, or is None when
    it would be longer than the bound."""
    base = b"],[".join(elements)
    edited = list(elements)
    for _ in range(data.draw(st.integers(0, 3))):
        i = data.draw(st.integers(0, len(edited)))
        edited.insert(i, data.draw(st.binary(max_size=40)))
    drop: bool = data.draw(st.booleans())
    if edited and drop:
        del edited[data.draw(st.integers(0, len(edited) - 1))]
    value = b"],[".join(edited)
    limit = data.draw(st.integers(0, 2 * len(value) + 20))
    patch = make_patch(base, value, limit)
    if patch is not None:
        assert len(patch) <= limit
        assert apply_patch(base, patch) == value
    assert apply_patch(base, make_patch(base, value, 10**9) or b"") == value


@settings(max_examples=300, deadline=None)
@given(st.randoms(use_true_random=False), st.sampled_from([b"01", b"01],[", b"abcdefgh"]))
def test_a_patch_of_bytes_edited_anywhere_gives_the_value_back(
    rnd: random.Random, alphabet: bytes
) -> None:
    """Bytes replaced, inserted or deleted anywhere (not at element boundaries),
    in values up to 300 bytes of few distinct bytes: runs that repeat, shift and
    nearly match are what trimming and the runs found inside literals must get
    exactly right. (Drawn with `random`: hypothesis' own binaries are mostly too
    short to reach the runs inside literals.)"""

    def text(n: int, extra: bytes = b"") -> bytes:
        return bytes(rnd.choice(alphabet + extra) for _ in range(n))

    for _ in range(10):
        base = text(rnd.randint(0, 300))
        value = base
        for _ in range(rnd.randint(1, 4)):
            at = rnd.randint(0, len(value))
            value = value[:at] + text(rnd.randint(0, 30), b"x") + value[at + rnd.randint(0, 30) :]
        for piece in (16, 64, 512):
            patch = make_patch(base, value, 10**6, piece)
            assert patch is not None and apply_patch(base, patch) == value


def _patch_ops(patch: bytes) -> list[tuple[str, int]]:
    """A patch's ops: ("C", bytes copied) and ("L", literal bytes), in order."""
    ops, i = [], 0
    while i < len(patch):
        if patch[i : i + 1] == b"C":
            ops.append(("C", int.from_bytes(patch[i + 5 : i + 9], "big")))
            i += 9
        else:
            n = int.from_bytes(patch[i + 1 : i + 5], "big")
            ops.append(("L", n))
            i += 5 + n
    return ops


#: meta-like JSON without element boundaries (`],[`): its pieces are cut by size
_FLAT = b'{"dc":[0,0],"dd":-4611686018427387904,"o":{"surveys":[0,0,0],"tickets":[%d,3,0]},"sealed":[1793578200000,-4611686018427387904],"st":[%d,null],"zz":"%s"}'  # noqa: E501


def test_a_patch_costs_the_bytes_that_changed_not_their_pieces() -> None:
    """One byte changed anywhere (in any piece, at any place of it): the patch is a
    copy, that byte, a copy; two changes far apart in one piece: their bytes and
    the run between them copied (a meta's count and stream time, a few counts of
    the cumulative aggregates). For values up to 4 KiB (compared whole) and for
    longer ones (cut into pieces first)."""
    for numbers, step in ((100, 1), (1500, 7)):
        filler = b"".join(b"%04d" % i for i in range(numbers))  # no piece repeats another
        base = _FLAT % (41, 1793578557624, filler)
        for piece in (64, 512):
            for i in [*range(0, len(base), step), len(base) - 1]:
                value = base[:i] + (b"#" if base[i : i + 1] != b"#" else b"$") + base[i + 1 :]
                patch = make_patch(base, value, 10**6, piece)
                assert patch is not None and apply_patch(base, patch) == value
                want = [("L", 1), ("C", len(base) - 1)] if i == 0 else [("C", i), ("L", 1)]
                if 0 < i < len(base) - 1:
                    want.append(("C", len(base) - i - 1))
                assert _patch_ops(patch) == want, (numbers, piece, i)
        value = _FLAT % (42, 1793578557999, filler)
        for piece in (64, 512):
            patch = make_patch(base, value, 10**6, piece)
            assert patch is not None and apply_patch(base, patch) == value
            ops = _patch_ops(patch)
            assert [op for op, _n in ops] == ["C", "L", "C", "L", "C"], piece
            assert sum(n for op, n in ops if op == "L") == 4  # "2" and "999"
            first = b"#" + base[1:40] + b"#" + base[41:]  # both in the first piece
            patch = make_patch(base, first, 10**6, piece)
            assert patch is not None and apply_patch(base, patch) == first
            assert _patch_ops(patch) == [("L", 1), ("C", 39), ("L", 1), ("C", len(base) - 41)]


def test_a_literal_the_base_holds_where_it_stands_vanishes_into_one_copy() -> None:
    """Pieces cut differently in the value than in the base (content-defined cuts
    moved by an edit elsewhere) are literals of bytes the base has at that very
    place: trimmed away, the copies around them become one."""
    base = b"0123abcd89AB"
    ops: list[list[int] | bytes] = [[0, 4], b"abcd", [8, 4]]
    assert _trim_literals(base, ops) == [[0, 12]]
    ops = [[0, 4], b"abXd", [8, 4]]
    assert _trim_literals(base, ops) == [[0, 6], b"X", [7, 5]]


def _cum_like(n_keys: int, bumped: dict[int, int]) -> bytes:
    """Cumulative-aggregate-like JSON: one element per key, a few counters bumped."""
    items = (b'[["team-%03d","email"],[%d,3,[1,2,3,4,5]]]' % (k, 10 + bumped.get(k, 0))
             for k in range(n_keys))  # fmt: skip
    return b'{"t":[' + b",".join(items) + b"]}"


def test_a_small_change_of_a_split_value_writes_one_patched_head() -> None:
    """A few counters bumped across a split value: one record (its head, carrying a
    patch of the parts the table has), no part and no tombstone; read back by
    recovery and by the follower. A change larger than the patch bound cuts the
    value into parts again."""
    store, rec = PartitionStore.recover(P, [], epoch=3, with_prev=False)
    value = _cum_like(300, {})
    assert len(value) > 3 * store.part_bytes
    log = rec.repairs + store.batch_writes({"c": value}, 0)
    bumped: dict[int, int] = {}
    for i in range(1, 6):
        for k in (7 * i, 100 + 13 * i, 250 + i):
            bumped[k] = bumped.get(k, 0) + 1
        value = _cum_like(300, bumped)
        w = store.batch_writes({"c": value}, i)
        assert [k for k, _ in w] == [state_key(P, "c"), marker_key(P)]
        assert decode_record(w[0][1] or b"").new[:2] == b"D3"  # type: ignore[index]
        log += w
        _, rec = PartitionStore.recover(P, compact(log).items(), epoch=4 + i, with_prev=False)
        assert rec.items == {"c": value}
        assert follow(log) == ({"c": value}, 0)
        assert follow(compacted(log)) == ({"c": value}, 0)
    # every key bumped: the patch would be larger than a part: parts again
    value = _cum_like(300, {k: 5 for k in range(300)})
    w = store.batch_writes({"c": value}, 9)
    assert any(b"/y/" in k and v is not None for k, v in w)
    assert decode_record(dict(w)[state_key(P, "c")] or b"").new[:2] == b"D2"  # type: ignore[index]
    log += w + store.batch_writes({}, 10)  # the parts no longer listed go
    _, rec = PartitionStore.recover(P, compact(log).items(), epoch=20, with_prev=False)
    healed = compact(rec.repairs, compact(log))
    assert len([k for k in healed if b"/y/" in k]) == len(store.listed["c"])
    assert rec.items == {"c": value} and follow(log) == ({"c": value}, 0)
    # a recovered store patches the parts it found
    store, rec = PartitionStore.recover(P, compact(log).items(), epoch=21, with_prev=False)
    value = _cum_like(300, {**{k: 5 for k in range(300)}, 3: 6})
    w = store.batch_writes({"c": value}, 11)
    assert [k for k, _ in w] == [state_key(P, "c"), marker_key(P)]
    _, rec = PartitionStore.recover(P, compact(log + w).items(), epoch=22, with_prev=False)
    assert rec.items == {"c": value}


def test_a_bad_patch_is_corrupt_state() -> None:
    for bad in (b"X", b"C\x00", b"C" + bytes(4) + b"\x00\x00\x10\x00", b"L\x00\x00\x00\x09ab"):
        try:
            apply_patch(b"base", bad)
        except CorruptState:
            continue
        raise AssertionError(f"accepted {bad!r}")
