"""One partition's changelog bookkeeping: the writes of each batch and recovery.

`cxpulse.changelog.records` says what the bytes are (records, descriptors,
patches, part keys, the commit marker: formats 1-3 and why they look that way);
this module decides which of them to write for a batch of dirty state keys and
how to rebuild a partition from whatever the table holds after a crash. The
shells (`cxpulse.worker.direct`, `cxpulse.worker.agents`) only perform the
writes and await them, which keeps the crash logic unit-testable without a
broker.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cxpulse.changelog.records import (
    DEFAULT_MAX_RECORD_BYTES,
    DELTA_BYTES,
    DELTA_DELETED,
    DELTA_PATCH,
    DELTA_PIECE,
    DELTA_VALUE,
    MAX_PATCH_BASE,
    META_KEY,
    RECORD_SLACK,
    CorruptState,
    Marker,
    Record,
    ValueTooLarge,
    Write,
    apply_delta_entry,
    content_chunks,
    decode_descriptor,
    decode_names,
    decode_record,
    delta_patch,
    digest_part_key,
    encode_descriptor2,
    encode_descriptor3,
    encode_record,
    is_digest_descriptor,
    join_parts,
    journal_key,
    make_patch,
    marker_key,
    max_parts_for,
    names_key,
    parse_digest_suffix,
    parse_part_suffix,
    part_bytes_for,
    part_digest,
    part_key,
    partition_prefix,
    piece_offsets,
    state_key,
)


def new_epoch() -> int:
    """A random epoch id (never 0, which means 'nothing committed yet')."""
    return secrets.randbits(63) or 1


@dataclass
class Recovery:
    """What `PartitionStore.recover` found: engine items and repair writes."""

    items: dict[str, bytes]
    repairs: list[Write]
    reverted: int  # uncommitted records that fell back to their prev value
    resent: int  # records of the last committed batch written again


#: Bases whose pieces a store keeps (`PartitionStore._base_pieces`): a partition's open
#: slices of each kind, with room to spare.
_BASE_PIECES_KEPT = 32

#: A committed physical value: (bytes, is a descriptor of parts).
_Phys = tuple[bytes, bool]



def latest_marker(marker: Marker | None, journal: list[Marker]) -> tuple[Marker, list[Marker]]:
    """The partition's commit point and the markers whose deltas it needs.

    The latest marker is the one of highest seq among `<p>/m` and the journal
    slots `<p>/j/<i>` (format 4). Of two with one seq (a recovery's marker and
    the one it supersedes, while its repairs are being written) the one that
    needs fewer others: the later checkpoint, then the delta that covers more. Its
    deltas since its checkpoint are rebuilt by following each marker's base
    back to the checkpoint; returned oldest first. A missing link is corrupt
    state: the writer never overwrites a slot a checkpoint still needs."""
    cands = [(j.seq, j.checkpoint(), -j.base_seq(), 1, i) for i, j in enumerate(journal)]
    if marker is not None:
        cands.append((marker.seq, marker.checkpoint(), -marker.base_seq(), 0, -1))
    if not cands:
        return Marker(), []
    pick = max(cands)[-1]
    latest = journal[pick] if pick >= 0 else marker
    assert latest is not None
    by_seq: dict[int, Marker] = {}
    for j in journal:
        have = by_seq.get(j.seq)
        if have is None or j.base_seq() < have.base_seq():
            by_seq[j.seq] = j
    ck = latest.checkpoint()
    chain: list[Marker] = []
    cur = latest
    while cur.seq > ck:
        chain.append(cur)
        b = cur.base_seq()
        if b <= ck:
            break
        nxt = by_seq.get(b)
        if nxt is None:
            raise CorruptState(f"journal marker {b} (since checkpoint {ck}) is missing")
        cur = nxt
    chain.reverse()
    return latest, chain


class PartitionStore:
    """Bookkeeping of one partition's table content; produces the writes.

    `current` mirrors the committed record value of every live key (the
    value itself, or its descriptor when split): the `prev` of the next
    write (format 1 and `with_prev`), and how to tell which parts changed.
    `parts` holds the chunks of values still split by index (format 1,
    read from an older changelog: only to delete them once rewritten);
    `digests` the digests of the parts of format-2 split values present in
    the table (not their bytes: a part whose digest is there is not sent
    again), and `listed` those the current descriptor lists.
    """

    def __init__(
        self,
        partition: int,
        marker: Marker,
        current: dict[str, bytes],
        parts: dict[str, list[bytes]] | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        part_bytes: int | None = None,
        digests: dict[str, set[bytes]] | None = None,
        with_prev: bool = True,
        listed: dict[str, set[bytes]] | None = None,
        bases: dict[str, bytes] | None = None,
        patch_bytes: int | None = None,
        journal_slots: int = 0,
        pending: dict[str, bytes | None] | None = None,
    ) -> None:
        if journal_slots and with_prev:
            raise ValueError("a changelog journal (format 4) needs transactional writes")
        self.partition = partition
        self.marker = marker
        self.current = current
        self.parts: dict[str, list[bytes]] = parts if parts is not None else {}
        self.digests: dict[str, set[bytes]] = digests if digests is not None else {}
        #: digests the current descriptor lists, for names whose value is split (format 2)
        self.listed: dict[str, set[bytes]] = listed if listed is not None else {}
        self.max_record_bytes = max_record_bytes
        #: `part_bytes` overrides the derived size (tests: tiny parts)
        self.part_bytes = part_bytes or part_bytes_for(max_record_bytes)
        self.max_parts = max_parts_for(max_record_bytes)
        #: False with transactional writes: records carry no `prev` (module docs)
        self.with_prev = with_prev
        #: a split value's parts joined, while its head can patch them (format 3)
        self.bases: dict[str, bytes] = bases if bases is not None else {}
        #: largest patch a head carries before the value is cut into parts again
        #: (0: never patch; writes format 2)
        self.patch_bytes = self.part_bytes if patch_bytes is None else patch_bytes
        #: format 4: markers cycle through this many journal slots (0: format 3)
        self.journal_slots = journal_slots
        #: format 4: the latest value (None: deleted) of every name changed since the
        #: last checkpoint whose change rode in a marker's delta, not in a keyed record
        self.pending: dict[str, bytes | None] = pending if pending is not None else {}
        #: format 4: the latest value of names longer than a part (and at most
        #: MAX_PATCH_BASE), the base of their next delta patch
        self.values: dict[str, bytes] = {}
        #: format 4: most bytes of one marker's delta, and of the pending values (a
        #: recovery marker carries them all: it must fit a record)
        self.delta_limit = min(DELTA_BYTES, (max_record_bytes - RECORD_SLACK) // 4)
        self.pending_limit = min(MAX_PATCH_BASE, (max_record_bytes - RECORD_SLACK) // 2)
        #: what the last batch was: "journal" (its changes ride in the marker),
        #: "checkpoint" (it wrote pending values as keyed records) or "keyed"
        #: (format 3, or a checkpoint with nothing pending); the worker's crash points
        self.last_kind = "keyed"
        #: the pieces of a few bases (`piece_offsets`), by name: an open slice is
        #: patched against the same base at every commit, and cutting the base anew each
        #: time was a fifth of a patch's cost (issue 22); the latest names only
        self._base_pieces: dict[str, tuple[bytes, dict[bytes, int]]] = {}
        self._deleted_last_batch: list[str] = []
        self._deleted_parts_last_batch: list[tuple[str, int]] = []
        self._dropped_last_batch: list[tuple[str, bytes]] = []

    @classmethod
    def recover(
        cls,
        partition: int,
        table_items: Iterable[tuple[bytes, bytes | None]],
        epoch: int | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        part_bytes: int | None = None,
        with_prev: bool = True,
        patch_bytes: int | None = None,
        journal_slots: int = 0,
    ) -> tuple[PartitionStore, Recovery]:
        """Rebuild from the table's keys of `partition` (other keys are ignored).

        Starts a new epoch; the returned repairs (rewrites of uncommitted keys,
        re-sends of the last committed batch, tombstones of parts no committed
        value lists, then the new marker) must be written and awaited before
        the first batch is processed. Keys and index parts are decided alike
        (committed: `new`, else `prev`); split values are then joined and
        checked against their descriptor. Reads both formats.
        """
        prefix = partition_prefix(partition)
        mkey = marker_key(partition)
        nkey = names_key(partition)
        marker_raw: bytes | None = None
        names: list[str] | None = None
        records: dict[bytes, Record] = {}
        raw_by_key: dict[bytes, bytes] = {}
        dparts: dict[str, dict[bytes, tuple[bytes, Record]]] = {}
        journal_raw: dict[bytes, bytes] = {}
        jprefix = prefix + b"j/"
        for k, v in table_items:
            if not k.startswith(prefix) or v is None:
                continue
            if k == mkey:
                marker_raw = v
                continue
            if k == nkey:
                names = decode_names(v)
                continue
            if k.startswith(jprefix):
                journal_raw[k] = v
                continue
            rec = decode_record(v)
            raw_by_key[k] = v
            if k.startswith(prefix + b"y/"):
                yk = parse_digest_suffix(k[len(prefix) + 2 :].decode())
                if yk is None or rec.new is None:
                    raise CorruptState("bad digest part")
                dparts.setdefault(yk[0], {})[yk[1]] = (k, rec)
            else:
                records[k] = rec
        old, chain = latest_marker(
            None if marker_raw is None else Marker.decode(marker_raw, names),
            [Marker.decode(v, names) for v in journal_raw.values()],
        )
        epoch = epoch if epoch is not None else new_epoch()
        heads: dict[str, _Phys] = {}
        part_values: dict[str, dict[int, bytes]] = {}
        repairs: list[Write] = []
        referenced: dict[int, int] = {}
        tombstones: list[str] = []
        part_tombstones: list[str] = []
        digest_tombstones: list[str] = []
        reverted = resent = 0
        keyed_seq: dict[str, int] = {}  # name -> seq of its committed keyed record
        head_prefix = prefix + b"s/"
        part_prefix = prefix + b"x/"
        cut = len(prefix) + 2  # "<p>/s/" or "<p>/x/"
        for name in old.tombstones:  # the last batch's tombstones may exist only locally
            k = state_key(partition, name)
            if k not in records:
                repairs.append((k, None))
                tombstones.append(name)
        for suffix in old.part_tombstones:
            parsed = parse_part_suffix(suffix)
            if parsed is None:
                raise CorruptState("bad part tombstone in the marker")
            k = part_key(partition, parsed[0], parsed[1])
            if k not in records:
                repairs.append((k, None))
                part_tombstones.append(suffix)
        for suffix in old.digest_tombstones:
            dparsed = parse_digest_suffix(suffix)
            if dparsed is None:
                raise CorruptState("bad part tombstone in the marker")
            if dparsed[1] not in dparts.get(dparsed[0], {}):
                repairs.append((digest_part_key(partition, *dparsed), None))
                digest_tombstones.append(suffix)

        def note_committed(rec: Record) -> None:
            last = old.committed_for(rec.epoch)
            assert last is not None
            referenced[rec.epoch] = last

        for k, rec in records.items():
            suffix = k[cut:].decode()
            if k.startswith(head_prefix):
                gone = tombstones
            elif k.startswith(part_prefix):
                gone = part_tombstones
                if parse_part_suffix(suffix) is None:
                    raise CorruptState("bad part key")
            else:
                raise CorruptState("unknown state key kind")
            value: _Phys | None
            if old.is_committed(rec):
                if gone is tombstones:
                    keyed_seq[suffix] = rec.seq
                if rec.new is None:
                    repairs.append((k, None))  # committed delete: tombstone it
                    gone.append(suffix)
                    continue
                value = (rec.new, rec.new_split)
                note_committed(rec)
                if rec.seq == old.seq:
                    # last committed batch (or an earlier recovery's repairs):
                    # may have reached only the local store before a crash
                    repairs.append((k, raw_by_key[k]))
                    resent += 1
            else:
                if rec.no_prev:
                    raise CorruptState("an uncommitted record written without its prev value")
                reverted += 1
                if rec.prev is None:
                    repairs.append((k, None))
                    gone.append(suffix)
                    continue
                value = (rec.prev, rec.prev_split)
                back = Record(epoch, old.seq, rec.prev, rec.prev, rec.prev_split, rec.prev_split)
                repairs.append((k, encode_record(back)))
            if gone is tombstones:
                heads[suffix] = value
            else:
                name, i = parse_part_suffix(suffix) or ("", 0)
                part_values.setdefault(name, {})[i] = value[0]
        items: dict[str, bytes] = {}
        current: dict[str, bytes] = {}
        parts: dict[str, list[bytes]] = {}
        digests: dict[str, set[bytes]] = {}
        bases: dict[str, bytes] = {}
        for name, (raw, split) in heads.items():
            current[name] = raw
            if split and is_digest_descriptor(raw):
                have = dparts.get(name, {})
                listed = decode_descriptor(raw)[1]
                chunks: dict[bytes, bytes] = {}
                for d in listed:
                    if d in chunks or d not in have:
                        continue
                    pk, prec = have[d]
                    assert prec.new is not None
                    chunks[d] = prec.new
                    if old.is_committed(prec):
                        note_committed(prec)
                    if prec.seq == old.seq or not old.is_committed(prec):
                        repairs.append((pk, raw_by_key[pk]))  # maybe only local so far
                        resent += 1
                items[name] = join_parts(raw, chunks)  # checks every part
                digests[name] = set(listed)
                base_len = decode_descriptor(raw)[0]
                if base_len <= MAX_PATCH_BASE:  # what a format-3 head can patch
                    bases[name] = b"".join(chunks[d] for d in listed)
            elif split:
                have_i = part_values.get(name, {})
                items[name] = join_parts(raw, have_i)  # checks parts 0..n-1
                parts[name] = [have_i[i] for i in range(len(decode_descriptor(raw)[1]))]
            else:
                items[name] = raw
        for name, by_digest in dparts.items():  # parts no committed value lists
            keep = digests.get(name, set())
            for d, (pk, _prec) in by_digest.items():
                if d not in keep:
                    repairs.append((pk, None))
                    digest_tombstones.append(f"{d.hex()}/{name}")
        for name, by_index in part_values.items():  # index parts of values rewritten since
            n = len(parts.get(name, ()))
            for i in by_index:
                if i >= n:
                    repairs.append((part_key(partition, name, i), None))
                    part_tombstones.append(f"{i}/{name}")
        # format 4: the deltas since the last checkpoint, oldest first, over the
        # keyed values (a keyed record written after a marker is newer than its entry)
        pending: dict[str, bytes | None] = {}
        # the meta as of each marker: its own, or its entry patching the one before
        # (never the first of the chain: the one before it is not in the chain)
        meta = None if chain else old.meta
        for mk in chain:
            before, meta = meta, mk.meta
            for name, kind, data in mk.delta:
                if name == META_KEY:
                    meta = apply_delta_entry(kind, data, before)
                    continue
                if keyed_seq.get(name, -1) > mk.seq:
                    continue
                got = apply_delta_entry(kind, data, items.get(name))
                if got is None:
                    items.pop(name, None)
                else:
                    items[name] = got
                pending[name] = got
        if meta is not None:  # newer than a format-1 `m` key, if both exist
            items[META_KEY] = meta
        marker_new = Marker(
            epoch=epoch,
            seq=old.seq,
            committed=referenced,
            offsets=dict(old.offsets),
            counters=dict(old.counters),
            wall_ms=old.wall_ms,
            tombstones=tombstones,
            part_tombstones=part_tombstones,
            digest_tombstones=digest_tombstones,
            meta=meta,
        )
        if pending:  # format 4: one marker carries every value since the checkpoint
            marker_new.ck = marker_new.base = old.checkpoint()
            marker_new.delta = [
                (n, DELTA_DELETED, b"") if v is None else (n, DELTA_VALUE, v)
                for n, v in sorted(pending.items())
            ]
        elif not chain and old.ck == old.seq:
            # The latest marker is a checkpoint, and this one takes its slot: keep
            # the deletions its delta told followers of (values that only rode in
            # deltas), or an older slot setting one, tombstoned only after this
            # marker, could outlive them in a log cleaned in between.
            marker_new.ck = old.seq
            marker_new.delta = [e for e in old.delta if e[1] == DELTA_DELETED]
        # format 2 from here on: the names record first, always re-sent (the
        # last batch may have written it to the local store only)
        marker_new.names = [] if names is None else list(names)
        marker_new.names += sorted(set(old.counters) - set(marker_new.names))
        repairs.append((nkey, json.dumps(marker_new.names).encode()))
        # The new marker covers everything since the checkpoint: every other journal
        # slot is tombstoned (after it), so that no stale slot outlives the values
        # after it in a compacted log (a follower would read its delta last).
        key = journal_key(partition, old.seq % journal_slots) if journal_slots else mkey
        repairs.append((key, marker_new.encode()))
        if journal_slots and marker_raw is not None:  # format 3 superseded by the journal
            repairs.append((mkey, None))
        repairs += [(k, None) for k in journal_raw if k != key]
        store = cls(
            partition, marker_new, current, parts, max_record_bytes, part_bytes, digests,
            with_prev, {n: set(d) for n, d in digests.items()}, bases, patch_bytes,
            journal_slots, pending,
        )  # fmt: skip
        if journal_slots:  # the bases of the next delta patches
            pb = store.part_bytes
            store.values = {
                n: v for n, v in items.items() if pb < len(v) <= MAX_PATCH_BASE and n != META_KEY
            }
        return store, Recovery(items, repairs, reverted, resent)

    def batch_writes(self, dirty: Mapping[str, bytes | None], wall_ms: int) -> list[Write]:
        """Writes of one batch: tombstones of last batch's deletes, records, marker.

        Call after updating `marker.offsets`/`marker.counters` for the batch.
        The batch counts as committed once all writes are durable. A value
        longer than `part_bytes` is written as content-defined parts (only
        those not in the table yet) plus a descriptor under its own key, or
        as a patch of the parts already listed (format 3). The engine meta
        (`m`) goes into the marker.
        """
        m = self.marker
        seq = m.seq + 1
        p = self.partition
        # format 3 writes values a journal held at recovery first, as keyed records
        dirty = self._journal(dirty, seq) if self.journal_slots else self._checkpoint(dirty, seq)
        journal = self.journal_slots
        records: list[Write] = []
        deleted: list[str] = []
        deleted_parts: list[tuple[str, int]] = []
        dropped: list[tuple[str, bytes]] = []
        written: set[str] = set()
        pb = self.part_bytes
        with_prev = self.with_prev
        no_prev = not with_prev
        for name, new in dirty.items():
            if name == META_KEY:
                m.meta = new
                if name not in self.current:
                    continue
                new = None  # a format-1 `m` key: deleted, the marker has it now
            if journal:
                if new is not None and pb < len(new) <= MAX_PATCH_BASE:
                    self.values[name] = new
                else:
                    self.values.pop(name, None)
            prev = self.current.get(name)
            old_parts = self.parts.pop(name, None)
            old_digests = self.digests.get(name)
            prev_split = old_parts is not None or name in self.listed
            prev_out = prev if with_prev else None
            if old_parts is not None:  # format-1 parts: deleted one batch later
                deleted_parts.extend((name, i) for i in range(len(old_parts)))
            if len(new or b"") <= pb or new is None:
                self.bases.pop(name, None)
            if new is None:
                if prev is None:
                    continue
                head = Record(m.epoch, seq, None, prev_out, False, prev_split, no_prev)
                del self.current[name]
                self.listed.pop(name, None)
                deleted.append(name)
                new_digests: set[bytes] = set()
            elif len(new) <= pb:
                head = Record(m.epoch, seq, new, prev_out, False, prev_split, no_prev)
                self.current[name] = new
                self.listed.pop(name, None)
                new_digests = set()
            elif (desc3 := self._patched(name, new)) is not None:
                # the parts stay as they are; the head carries the difference
                # (nothing listed changes: no part to write, none to drop)
                head = Record(m.epoch, seq, desc3, prev_out, True, prev_split, no_prev)
                self.current[name] = desc3
                records.append((state_key(p, name), encode_record(head)))
                written.add(name)
                continue
            else:
                chunks = self._chunks(new)
                listed: list[bytes] = []
                have = old_digests if old_digests is not None else set()
                new_digests = set()
                for chunk in chunks:
                    d = part_digest(chunk)
                    listed.append(d)
                    if d not in have and d not in new_digests:
                        rec = Record(m.epoch, seq, chunk, None, no_prev=True)
                        records.append((digest_part_key(p, name, d), encode_record(rec)))
                    new_digests.add(d)
                desc = encode_descriptor2(len(new), listed)
                head = Record(m.epoch, seq, desc, prev_out, True, prev_split, no_prev)
                self.current[name] = desc
                self.listed[name] = set(new_digests)
                if self.patch_bytes and len(new) <= MAX_PATCH_BASE:
                    self.bases[name] = new
                else:
                    self.bases.pop(name, None)
            if old_digests is not None:
                # parts the new value no longer lists stay in the table until
                # the next batch (a revert to `prev` may need them), then go
                dropped.extend((name, d) for d in old_digests - new_digests)
                new_digests |= old_digests  # present until tombstoned
            if new_digests:
                self.digests[name] = new_digests
            else:
                self.digests.pop(name, None)
            records.append((state_key(p, name), encode_record(head)))
            written.add(name)
        # last batch's committed deletes become real tombstones, written before
        # this batch's records (a key written again in this batch needs none)
        # The marker names them (for recovery from a local store), so their
        # number per batch is bounded by bytes: the rest wait for a later batch
        # (their committed delete records say "deleted" meanwhile).
        budget = self.max_record_bytes // 4
        tombstones: list[str] = []
        deferred: list[str] = []
        for name in self._deleted_last_batch:
            if name in self.current or name in written:
                continue
            if budget - (len(name) + 4) < 0:
                deferred.append(name)
                continue
            budget -= len(name) + 4
            tombstones.append(name)
        part_tombstones: list[tuple[str, int]] = []
        deferred_parts: list[tuple[str, int]] = []
        for name, i in self._deleted_parts_last_batch:
            if budget - (len(name) + 12) < 0:
                deferred_parts.append((name, i))
                continue
            budget -= len(name) + 12
            part_tombstones.append((name, i))
        gc: list[tuple[str, bytes]] = []
        deferred_gc: list[tuple[str, bytes]] = []
        for name, d in self._dropped_last_batch:
            if d in self.listed.get(name, ()):
                continue  # listed again since: still needed
            if budget - (len(name) + 24) < 0:
                deferred_gc.append((name, d))
                continue
            budget -= len(name) + 24
            gc.append((name, d))
            live = self.digests.get(name)
            if live is not None:
                live.discard(d)
                if not live:
                    del self.digests[name]
        writes: list[Write] = [(state_key(p, name), None) for name in tombstones]
        writes += [(part_key(p, name, i), None) for name, i in part_tombstones]
        writes += [(digest_part_key(p, name, d), None) for name, d in gc]
        writes += records
        m.tombstones = tombstones
        m.part_tombstones = [f"{i}/{name}" for name, i in part_tombstones]
        m.digest_tombstones = [f"{d.hex()}/{name}" for name, d in gc]
        self._deleted_last_batch = deferred + deleted
        self._deleted_parts_last_batch = deferred_parts + deleted_parts
        self._dropped_last_batch = deferred_gc + dropped
        m.seq = seq
        m.wall_ms = wall_ms
        if m.names is None:
            m.names = []
        new_names = m.counters.keys() - set(m.names)
        if new_names:  # a counter seen for the first time: the names grow
            m.names = m.names + sorted(new_names)
            writes.append((names_key(p), json.dumps(m.names).encode()))
        key = journal_key(p, seq % journal) if journal else marker_key(p)
        writes.append((key, m.encode()))
        return writes

    def _journal(self, dirty: Mapping[str, bytes | None], seq: int) -> dict[str, bytes | None]:
        """Format 4: put what fits into the marker's delta; return what is keyed.

        The batch rides in the marker if its delta stays within `delta_limit`,
        the pending values within `pending_limit` and the journal still holds
        every marker since the last checkpoint (seq - ck < journal_slots: the
        slot this marker overwrites is older than the checkpoint). Otherwise
        the batch is a checkpoint: every pending value and the batch's own
        changes are keyed records, and the marker says ck = seq."""
        m = self.marker
        keyed: dict[str, bytes | None] = {}
        delta: list[tuple[str, int, bytes]] = []
        size = 0
        for name, new in dirty.items():
            entry = None if name == META_KEY else self._delta_entry(name, new)
            if entry is None:
                keyed[name] = new
            else:
                delta.append(entry)
                size += len(name) + len(entry[2]) + 8
                if size > self.delta_limit:
                    break  # a checkpoint: no more patches to compute (a catch-up)
        ck = m.checkpoint()
        if (delta or self.pending) and seq - ck < self.journal_slots and size <= self.delta_limit:
            pending = dict(self.pending)
            for name in keyed:
                pending.pop(name, None)
            for name, _kind, _data in delta:
                pending[name] = dirty[name]
            if sum(len(n) + len(v or b"") + 8 for n, v in pending.items()) <= self.pending_limit:
                self.pending = pending
                for name, kind, _data in delta:
                    new = dirty[name]
                    if kind == DELTA_PATCH and new is not None:
                        self.values[name] = new
                    else:
                        self.values.pop(name, None)
                meta = self._meta_entry(dirty, seq, ck)
                if meta is not None:
                    delta.append(meta)
                m.ck, m.base, m.delta = ck, None, delta
                self.last_kind = "journal"
                return keyed
        return self._checkpoint(dirty, seq)

    def _checkpoint(self, dirty: Mapping[str, bytes | None], seq: int) -> dict[str, bytes | None]:
        """This batch's changes and every pending value, all as keyed records."""
        pend = self.pending
        out = dict(pend)
        out.update(dirty)
        self.last_kind = "checkpoint" if pend else "keyed"
        self.pending = {}
        # a value that only ever rode in deltas and is deleted now has no keyed
        # record to delete: the checkpoint's own delta says so (for followers;
        # recovery never reads the delta of a marker at its checkpoint)
        cur = self.current
        gone = [
            (n, DELTA_DELETED, b"")
            for n, v in out.items()
            if v is None and n not in cur and pend.get(n) is not None
        ]
        m = self.marker
        m.ck = seq if self.journal_slots or gone else None
        m.base, m.delta = None, gone
        return out

    def _meta_entry(
        self, dirty: Mapping[str, bytes | None], seq: int, ck: int
    ) -> tuple[str, int, bytes] | None:
        """The engine meta as a patch of the previous marker's (format 4), or None
        to carry it whole. Only when that marker is after the checkpoint: recovery
        then finds it in the chain of markers it applies, whose first carries the
        meta whole (the meta changes by a few digits a batch: its patch is a tenth
        of it)."""
        prev = self.marker.meta
        new = dirty.get(META_KEY, prev)
        if prev is None or new is None or seq - 1 <= ck:
            return None
        patch = make_patch(prev, new, len(new), DELTA_PIECE)  # not longer than it
        return None if patch is None else (META_KEY, DELTA_PATCH, delta_patch(prev, patch))

    def _delta_entry(self, name: str, new: bytes | None) -> tuple[str, int, bytes] | None:
        """`name`'s change as a delta entry, or None if it must be a keyed record
        (a value longer than a part with no patch within `patch_bytes`)."""
        if new is None:
            if name in self.pending or name in self.current:
                return (name, DELTA_DELETED, b"")
            return None  # nothing to delete: the keyed path skips it
        if len(new) <= self.part_bytes:
            # a patch of its previous value if that rode in a delta too (a follower
            # holds those until their keyed record: the base is there), else whole
            prev = self.pending.get(name)
            if prev is not None and self.patch_bytes:
                patch = make_patch(prev, new, len(new) // 2, DELTA_PIECE)
                if patch is not None:
                    return (name, DELTA_PATCH, delta_patch(prev, patch))
            return (name, DELTA_VALUE, new)
        prev = self.pending[name] if name in self.pending else self.values.get(name)
        if prev is None or not self.patch_bytes or len(new) > MAX_PATCH_BASE:
            return None
        patch = make_patch(prev, new, self.patch_bytes, DELTA_PIECE)
        return None if patch is None else (name, DELTA_PATCH, delta_patch(prev, patch))

    def _patched(self, name: str, value: bytes) -> bytes | None:
        """A format-3 descriptor of `value`: the parts now listed plus a patch,
        if the patch is at most `patch_bytes` and the head record still fits."""
        base = self.bases.get(name)
        if base is None or name not in self.listed:
            return None
        kept = self._base_pieces.pop(name, None)  # re-inserted: the latest names stay
        if kept is None or kept[0] is not base:
            kept = (base, piece_offsets(base))
        self._base_pieces[name] = kept
        while len(self._base_pieces) > _BASE_PIECES_KEPT:
            del self._base_pieces[next(iter(self._base_pieces))]
        patch = make_patch(base, value, self.patch_bytes, where=kept[1])
        if patch is None:
            return None
        _total, digests = decode_descriptor(self.current[name])
        desc = encode_descriptor3(len(base), digests, patch)
        if len(desc) > (self.max_record_bytes - RECORD_SLACK) // 2:
            return None  # the head holds new and prev: both must fit
        return desc

    def _chunks(self, value: bytes) -> list[bytes]:
        """Content-defined parts of `value`; fixed-size ones when those would
        need more parts than a descriptor lists."""
        size = self._part_size(len(value))
        chunks = content_chunks(value, size)
        if len(chunks) > self.max_parts:
            chunks = [value[o : o + size] for o in range(0, len(value), size)]
        return chunks

    def _part_size(self, length: int) -> int:
        """`part_bytes`, doubled (up to what a record holds) while a value of
        `length` would need more parts than a descriptor lists."""
        size = self.part_bytes
        cap = max(size, (self.max_record_bytes - RECORD_SLACK) // 2)
        while -(-length // size) > self.max_parts and size < cap:
            size = min(size * 2, cap)
        if -(-length // size) > self.max_parts:
            raise ValueTooLarge(
                f"a state value of {length} bytes needs more than {self.max_parts} parts "
                f"of {size} bytes (max_record_bytes {self.max_record_bytes})"
            )
        return size

    def count(self, name: str, n: int = 1) -> None:
        self.marker.counters[name] = self.marker.counters.get(name, 0) + n
