"""State <-> changelog-table logic of one partition, exact under crashes.

No faust here: this module decides *what* to write to the state table and how
to rebuild a partition from whatever the table holds after a crash; the shell
(`cxpulse.worker.agents`) only performs the writes and awaits them. That split
is what makes the crash logic unit-testable without a broker.

Why the scheme looks like this (see docs/runtimes.md, "faust-streaming 0.15.3"):

* The table's changelog partition `p` receives every write of partition `p`
  from one producer, in order. After a crash the changelog therefore holds a
  *prefix* of the writes: possibly the first half of a batch, never a later
  batch without the earlier ones.
* A batch = one record per dirty state key, then the partition's *marker*
  (batch sequence number, last source offset applied per role, and the
  self-metric counters). Each record carries `(epoch, seq, new, prev)`. A
  record is *committed* iff `seq <= committed[epoch]`, which the marker holds.
  A record of a batch whose marker never landed is not committed: its `prev`
  (the committed value before that batch) is used instead, and the key is
  rewritten so the table is clean again. Deletions are records with no `new`
  (a tombstone would lose `prev`); the real tombstone follows one batch later,
  once the delete is committed.
* The local RocksDB store is written before the changelog and survives a
  kill -9, so it can hold writes the changelog never got ("phantoms"). Each
  worker incarnation of a partition writes under a fresh random `epoch`; the
  marker it writes at recovery records how far every earlier epoch got. A
  phantom is then an uncommitted record of an old epoch, and falls back to
  its `prev` like a half-written batch. Records of the latest committed batch
  are re-sent at recovery, since the local store may be the only place they
  reached before the crash.
* Counters and source offsets live in the marker, so they are exactly as
  durable as the state they describe: a re-delivered message (offset <= the
  marker's) is skipped, never counted twice, never lost.
* Large values are split (`part_bytes`, derived from `max_record_bytes`): the
  key's record then carries a small *descriptor* (total length and a digest
  per part) and the bytes go to part keys `<p>/x/<i>/<name>`, each an
  ordinary record with the same `(epoch, seq, new, prev)` rule. A part whose
  bytes equal its committed value is not rewritten, so an append-mostly value
  (a ticket's events) costs per batch about what changed, not its whole
  history; parts past a shrunken value's end are deleted like keys. Every
  record (header + new + prev) stays under `max_record_bytes`, far below the
  broker's `message.max.bytes`, whatever a value grows to: a value of 1 MB
  used to make a record the producer refused, at every restart.
  Recovery and the exporter's follower decide each part's committed value
  by the same rule as the key's, then join the parts and check them against
  the descriptor's digests.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAGIC = b"C1"
_HEADER = struct.Struct(">2sQQBI")  # magic, epoch, seq, flags, len(new)
_HAS_NEW = 1
_HAS_PREV = 2
_NEW_SPLIT = 4  # `new` is a descriptor of parts, not the value
_PREV_SPLIT = 8  # `prev` is a descriptor of parts, not the value
_DESC = struct.Struct(">2sQ")  # magic, total length; then one digest per part
_DESC_MAGIC = b"D1"
_DIGEST_BYTES = 8

#: Default bound of every state record (header + key + new + prev). The broker's
#: default message.max.bytes and the producer's max_request_size are about 1 MB.
DEFAULT_MAX_RECORD_BYTES = 256 * 1024
#: Smallest `max_record_bytes` accepted (below it keys alone could not fit).
MIN_MAX_RECORD_BYTES = 16 * 1024
#: Upper bound of a part. Small parts keep the rewrite of an append-mostly value
#: small (each batch rewrites the last part, 2x for new + prev); larger ones
#: cost fewer keys. 1,000 tickets x 1,000 events wrote 901 B of changelog per
#: event with 16 KiB parts, 300 B with 4 KiB (bench/bench_hostile_volume.py).
MAX_PART_BYTES = 4 * 1024
#: Room kept in a record for its header, key and Kafka's per-record overhead.
_RECORD_SLACK = 4 * 1024

#: Table writes: (table key, value or None for a tombstone).
Write = tuple[bytes, bytes | None]


class CorruptState(RuntimeError):
    """The state table holds bytes this code never wrote."""


@dataclass(frozen=True, slots=True)
class Record:
    """One changelog record of a state key or a part.

    `new_split`/`prev_split`: that side is a descriptor (`encode_descriptor`)
    of a value held in part keys, not the value itself."""

    epoch: int
    seq: int
    new: bytes | None
    prev: bytes | None
    new_split: bool = False
    prev_split: bool = False


def encode_record(rec: Record) -> bytes:
    flags = (_HAS_NEW if rec.new is not None else 0) | (_HAS_PREV if rec.prev is not None else 0)
    if rec.new_split and rec.new is not None:
        flags |= _NEW_SPLIT
    if rec.prev_split and rec.prev is not None:
        flags |= _PREV_SPLIT
    new = rec.new or b""
    return _HEADER.pack(MAGIC, rec.epoch, rec.seq, flags, len(new)) + new + (rec.prev or b"")


def decode_record(raw: bytes) -> Record:
    if len(raw) < _HEADER.size:
        raise CorruptState("state record too short")
    magic, epoch, seq, flags, n = _HEADER.unpack_from(raw)
    if magic != MAGIC or len(raw) < _HEADER.size + n:
        raise CorruptState("state record has a bad header")
    body = raw[_HEADER.size :]
    return Record(
        epoch,
        seq,
        body[:n] if flags & _HAS_NEW else None,
        body[n:] if flags & _HAS_PREV else None,
        bool(flags & _NEW_SPLIT and flags & _HAS_NEW),
        bool(flags & _PREV_SPLIT and flags & _HAS_PREV),
    )


def part_key(partition: int, name: str, index: int) -> bytes:
    """Key of part `index` of state key `name` (outside the `s/` namespace)."""
    return f"{partition}/x/{index}/{name}".encode()


def parse_part_suffix(rest: str) -> tuple[str, int] | None:
    """`"<i>/<name>"` (a part key after `<p>/x/`) -> (name, i); None if malformed."""
    idx, sep, name = rest.partition("/")
    if not sep or not idx.isdigit():
        return None
    return name, int(idx)


def part_digest(part: bytes) -> bytes:
    return hashlib.blake2b(part, digest_size=_DIGEST_BYTES).digest()


def encode_descriptor(total: int, digests: list[bytes]) -> bytes:
    return _DESC.pack(_DESC_MAGIC, total) + b"".join(digests)


def decode_descriptor(raw: bytes) -> tuple[int, list[bytes]]:
    """(total length, digest of each part) of a split value's descriptor."""
    if len(raw) < _DESC.size or (len(raw) - _DESC.size) % _DIGEST_BYTES:
        raise CorruptState("bad split-value descriptor")
    magic, total = _DESC.unpack_from(raw)
    if magic != _DESC_MAGIC:
        raise CorruptState("bad split-value descriptor")
    body = raw[_DESC.size :]
    return total, [body[i : i + _DIGEST_BYTES] for i in range(0, len(body), _DIGEST_BYTES)]


def join_parts(descriptor: bytes, parts: Mapping[int, bytes]) -> bytes:
    """The whole value from its committed parts, checked against the descriptor."""
    total, digests = decode_descriptor(descriptor)
    chunks = []
    for i, digest in enumerate(digests):
        part = parts.get(i)
        if part is None or part_digest(part) != digest:
            raise CorruptState(f"part {i} of a split value is missing or does not match")
        chunks.append(part)
    value = b"".join(chunks)
    if len(value) != total:
        raise CorruptState("a split value has the wrong length")
    return value


def part_bytes_for(max_record_bytes: int) -> int:
    """Largest part such that a part record (new + prev + header + key) fits."""
    return max(256, min(MAX_PART_BYTES, (max_record_bytes - _RECORD_SLACK) // 2))


def max_parts_for(max_record_bytes: int) -> int:
    """Most parts a descriptor may list: the head record holds two descriptors."""
    return max(1, ((max_record_bytes - _RECORD_SLACK) // 2 - _DESC.size) // _DIGEST_BYTES)


class ValueTooLarge(ValueError):
    """A state value needs more parts than one descriptor record can list."""


def state_key(partition: int, key: str) -> bytes:
    return f"{partition}/s/{key}".encode()


def marker_key(partition: int) -> bytes:
    return f"{partition}/m".encode()


def partition_prefix(partition: int) -> bytes:
    return f"{partition}/".encode()


@dataclass
class Marker:
    """The commit point of a partition; written last in every batch."""

    epoch: int = 0
    seq: int = 0
    #: last committed seq of earlier epochs still referenced by records
    committed: dict[int, int] = field(default_factory=dict)
    #: role -> offset of the last source message applied (or skipped as bad)
    offsets: dict[str, int] = field(default_factory=dict)
    #: counter name -> value (self-metrics, exact across restarts)
    counters: dict[str, int] = field(default_factory=dict)
    #: wall clock (ms) of the batch that wrote this marker
    wall_ms: int = 0
    #: state keys this batch tombstoned: a tombstone leaves no record behind, so
    #: recovery from a local store that got it (when the changelog may not have)
    #: can only re-send it if the marker names it
    tombstones: list[str] = field(default_factory=list)
    #: part keys (`"<i>/<name>"`) this batch tombstoned, for the same reason
    part_tombstones: list[str] = field(default_factory=list)

    def committed_for(self, epoch: int) -> int | None:
        if epoch == self.epoch and epoch != 0:
            return self.seq
        return self.committed.get(epoch)

    def is_committed(self, rec: Record) -> bool:
        last = self.committed_for(rec.epoch)
        return last is not None and rec.seq <= last

    def encode(self) -> bytes:
        return json.dumps(
            {
                "v": 1,
                "epoch": self.epoch,
                "seq": self.seq,
                "committed": {str(k): v for k, v in self.committed.items()},
                "offsets": self.offsets,
                "counters": self.counters,
                "wall_ms": self.wall_ms,
                "tombstones": self.tombstones,
                **({"part_tombstones": self.part_tombstones} if self.part_tombstones else {}),
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Marker:
        try:
            d = json.loads(raw)
            return cls(
                epoch=int(d["epoch"]),
                seq=int(d["seq"]),
                committed={int(k): int(v) for k, v in d["committed"].items()},
                offsets={str(k): int(v) for k, v in d["offsets"].items()},
                counters={str(k): int(v) for k, v in d["counters"].items()},
                wall_ms=int(d.get("wall_ms", 0)),
                tombstones=[str(k) for k in d.get("tombstones", [])],
                part_tombstones=[str(k) for k in d.get("part_tombstones", [])],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptState(f"bad marker: {exc}") from None


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


#: A committed physical value: (bytes, is a descriptor of parts).
_Phys = tuple[bytes, bool]


class PartitionStore:
    """Bookkeeping of one partition's table content; produces the writes.

    `current` mirrors the committed record value of every live key (the
    value itself, or its descriptor when split) and `parts` the committed
    parts of split keys: needed as the `prev` of the next write, and to
    see which parts did not change, without a table read per key.
    """

    def __init__(
        self,
        partition: int,
        marker: Marker,
        current: dict[str, bytes],
        parts: dict[str, list[bytes]] | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        part_bytes: int | None = None,
    ) -> None:
        self.partition = partition
        self.marker = marker
        self.current = current
        self.parts: dict[str, list[bytes]] = parts if parts is not None else {}
        self.max_record_bytes = max_record_bytes
        #: `part_bytes` overrides the derived size (tests: tiny parts)
        self.part_bytes = part_bytes or part_bytes_for(max_record_bytes)
        self.max_parts = max_parts_for(max_record_bytes)
        self._deleted_last_batch: list[str] = []
        self._deleted_parts_last_batch: list[tuple[str, int]] = []

    @classmethod
    def recover(
        cls,
        partition: int,
        table_items: Iterable[tuple[bytes, bytes | None]],
        epoch: int | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        part_bytes: int | None = None,
    ) -> tuple[PartitionStore, Recovery]:
        """Rebuild from the table's keys of `partition` (other keys are ignored).

        Starts a new epoch; the returned repairs (rewrites of uncommitted keys,
        re-sends of the last committed batch, then the new marker) must be
        written and awaited before the first batch is processed. Keys and
        parts are decided alike (committed: `new`, else `prev`); split values
        are then joined and checked against their descriptor.
        """
        prefix = partition_prefix(partition)
        mkey = marker_key(partition)
        marker: Marker | None = None
        records: dict[bytes, Record] = {}
        raw_by_key: dict[bytes, bytes] = {}
        for k, v in table_items:
            if not k.startswith(prefix) or v is None:
                continue
            if k == mkey:
                marker = Marker.decode(v)
            else:
                records[k] = decode_record(v)
                raw_by_key[k] = v
        old = marker or Marker()
        epoch = epoch if epoch is not None else new_epoch()
        heads: dict[str, _Phys] = {}
        part_values: dict[str, dict[int, bytes]] = {}
        repairs: list[Write] = []
        referenced: dict[int, int] = {}
        tombstones: list[str] = []
        part_tombstones: list[str] = []
        reverted = resent = 0
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
                if rec.new is None:
                    repairs.append((k, None))  # committed delete: tombstone it
                    gone.append(suffix)
                    continue
                value = (rec.new, rec.new_split)
                last = old.committed_for(rec.epoch)
                assert last is not None
                referenced[rec.epoch] = last
                if rec.seq == old.seq:
                    # last committed batch (or an earlier recovery's repairs):
                    # may have reached only the local store before a crash
                    repairs.append((k, raw_by_key[k]))
                    resent += 1
            else:
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
        for name, (raw, split) in heads.items():
            current[name] = raw
            if split:
                have = part_values.get(name, {})
                items[name] = join_parts(raw, have)  # checks parts 0..n-1
                parts[name] = [have[i] for i in range(len(decode_descriptor(raw)[1]))]
            else:
                items[name] = raw
        marker_new = Marker(
            epoch=epoch,
            seq=old.seq,
            committed=referenced,
            offsets=dict(old.offsets),
            counters=dict(old.counters),
            wall_ms=old.wall_ms,
            tombstones=tombstones,
            part_tombstones=part_tombstones,
        )
        repairs.append((mkey, marker_new.encode()))
        store = cls(partition, marker_new, current, parts, max_record_bytes, part_bytes)
        return store, Recovery(items, repairs, reverted, resent)

    def batch_writes(self, dirty: Mapping[str, bytes | None], wall_ms: int) -> list[Write]:
        """Writes of one batch: tombstones of last batch's deletes, records, marker.

        Call after updating `marker.offsets`/`marker.counters` for the batch.
        The batch counts as committed once all writes are durable. A value
        longer than `part_bytes` is written as parts (only those that
        changed) plus a descriptor under its own key.
        """
        m = self.marker
        seq = m.seq + 1
        p = self.partition
        records: list[Write] = []
        deleted: list[str] = []
        deleted_parts: list[tuple[str, int]] = []
        written_parts: set[tuple[str, int]] = set()
        pb = self.part_bytes
        for name, new in dirty.items():
            prev = self.current.get(name)
            old_parts = self.parts.get(name, [])
            prev_split = name in self.parts
            if new is None:
                if prev is None:
                    continue
                head = Record(m.epoch, seq, None, prev, False, prev_split)
                del self.current[name]
                deleted.append(name)
                chunks: list[bytes] = []
            elif len(new) <= pb:
                head = Record(m.epoch, seq, new, prev, False, prev_split)
                self.current[name] = new
                chunks = []
            else:
                size = self._part_size(len(new))
                chunks = [new[o : o + size] for o in range(0, len(new), size)]
                old_digests = decode_descriptor(prev)[1] if prev_split and prev else []
                digests = []
                for i, chunk in enumerate(chunks):
                    before = old_parts[i] if i < len(old_parts) else None
                    if before == chunk and i < len(old_digests):
                        digests.append(old_digests[i])
                        continue
                    digests.append(part_digest(chunk))
                    rec = Record(m.epoch, seq, chunk, before)
                    records.append((part_key(p, name, i), encode_record(rec)))
                    written_parts.add((name, i))
                desc = encode_descriptor(len(new), digests)
                head = Record(m.epoch, seq, desc, prev, True, prev_split)
                self.current[name] = desc
            for i in range(len(chunks), len(old_parts)):  # past the new end: delete
                records.append((part_key(p, name, i), encode_record(Record(
                    m.epoch, seq, None, old_parts[i]))))  # fmt: skip
                deleted_parts.append((name, i))
                written_parts.add((name, i))
            if chunks:
                self.parts[name] = chunks
            else:
                self.parts.pop(name, None)
            records.append((state_key(p, name), encode_record(head)))
        # last batch's committed deletes become real tombstones, written before
        # this batch's records (a key written again in this batch needs none)
        # The marker names them (for recovery from a local store), so their
        # number per batch is bounded by bytes: the rest wait for a later batch
        # (their committed delete records say "deleted" meanwhile).
        budget = self.max_record_bytes // 4
        tombstones: list[str] = []
        deferred: list[str] = []
        for name in self._deleted_last_batch:
            if name in self.current or name in dirty:
                continue
            if budget - (len(name) + 4) < 0:
                deferred.append(name)
                continue
            budget -= len(name) + 4
            tombstones.append(name)
        part_tombstones: list[tuple[str, int]] = []
        deferred_parts: list[tuple[str, int]] = []
        for name, i in self._deleted_parts_last_batch:
            if (name, i) in written_parts or i < len(self.parts.get(name, ())):
                continue
            if budget - (len(name) + 12) < 0:
                deferred_parts.append((name, i))
                continue
            budget -= len(name) + 12
            part_tombstones.append((name, i))
        writes: list[Write] = [(state_key(p, name), None) for name in tombstones]
        writes += [(part_key(p, name, i), None) for name, i in part_tombstones]
        writes += records
        m.tombstones = tombstones
        m.part_tombstones = [f"{i}/{name}" for name, i in part_tombstones]
        self._deleted_last_batch = deferred + deleted
        self._deleted_parts_last_batch = deferred_parts + deleted_parts
        m.seq = seq
        m.wall_ms = wall_ms
        writes.append((marker_key(p), m.encode()))
        return writes

    def _part_size(self, length: int) -> int:
        """`part_bytes`, doubled (up to what a record holds) while a value of
        `length` would need more parts than a descriptor lists: boundaries stay
        put while the value grows within one size, so appends stay cheap."""
        size = self.part_bytes
        cap = max(size, (self.max_record_bytes - _RECORD_SLACK) // 2)
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
