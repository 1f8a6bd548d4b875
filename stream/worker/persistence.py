"""State <-> changelog-table logic of one partition, exact under crashes.

No faust here: this module decides *what* to write to the state table and how
to rebuild a partition from whatever the table holds after a crash; the shell
(`stream.worker.agents`) only performs the writes and awaits them. That split
is what makes the crash logic unit-testable without a broker.

Why the scheme looks like this (see docs/benchmarks.md, "faust findings"):

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
"""

from __future__ import annotations

import json
import secrets
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAGIC = b"C1"
_HEADER = struct.Struct(">2sQQBI")  # magic, epoch, seq, flags, len(new)
_HAS_NEW = 1
_HAS_PREV = 2

#: Table writes: (table key, value or None for a tombstone).
Write = tuple[bytes, bytes | None]


class CorruptState(RuntimeError):
    """The state table holds bytes this code never wrote."""


@dataclass(frozen=True, slots=True)
class Record:
    epoch: int
    seq: int
    new: bytes | None
    prev: bytes | None


def encode_record(rec: Record) -> bytes:
    flags = (_HAS_NEW if rec.new is not None else 0) | (_HAS_PREV if rec.prev is not None else 0)
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
    )


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


class PartitionStore:
    """Bookkeeping of one partition's table content; produces the writes.

    `current` mirrors the committed value of every live key (needed as the
    `prev` of the next write, without a table read per key).
    """

    def __init__(self, partition: int, marker: Marker, current: dict[str, bytes]) -> None:
        self.partition = partition
        self.marker = marker
        self.current = current
        self._deleted_last_batch: list[str] = []

    @classmethod
    def recover(
        cls,
        partition: int,
        table_items: Iterable[tuple[bytes, bytes | None]],
        epoch: int | None = None,
    ) -> tuple[PartitionStore, Recovery]:
        """Rebuild from the table's keys of `partition` (other keys are ignored).

        Starts a new epoch; the returned repairs (rewrites of uncommitted keys,
        re-sends of the last committed batch, then the new marker) must be
        written and awaited before the first batch is processed.
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
        items: dict[str, bytes] = {}
        repairs: list[Write] = []
        referenced: dict[int, int] = {}
        tombstones: list[str] = []
        reverted = resent = 0
        skey_prefix = len(prefix) + 2  # "<p>/s/"
        for name in old.tombstones:  # the last batch's tombstones may exist only locally
            k = state_key(partition, name)
            if k not in records:
                repairs.append((k, None))
                tombstones.append(name)
        for k, rec in records.items():
            name = k[skey_prefix:].decode()
            if old.is_committed(rec):
                if rec.new is None:
                    repairs.append((k, None))  # committed delete: tombstone it
                    tombstones.append(name)
                    continue
                items[name] = rec.new
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
                    tombstones.append(name)
                else:
                    items[name] = rec.prev
                    repairs.append((k, encode_record(Record(epoch, old.seq, rec.prev, rec.prev))))
        marker_new = Marker(
            epoch=epoch,
            seq=old.seq,
            committed=referenced,
            offsets=dict(old.offsets),
            counters=dict(old.counters),
            wall_ms=old.wall_ms,
            tombstones=tombstones,
        )
        repairs.append((mkey, marker_new.encode()))
        store = cls(partition, marker_new, dict(items))
        return store, Recovery(items, repairs, reverted, resent)

    def batch_writes(self, dirty: Mapping[str, bytes | None], wall_ms: int) -> list[Write]:
        """Writes of one batch: tombstones of last batch's deletes, records, marker.

        Call after updating `marker.offsets`/`marker.counters` for the batch.
        The batch counts as committed once all writes are durable.
        """
        m = self.marker
        seq = m.seq + 1
        writes: list[Write] = []
        tombstones = [
            name
            for name in self._deleted_last_batch
            if name not in self.current and name not in dirty
        ]
        writes += [(state_key(self.partition, name), None) for name in tombstones]
        m.tombstones = tombstones
        self._deleted_last_batch = []
        for name, new in dirty.items():
            prev = self.current.get(name)
            if new is None:
                if prev is None:
                    continue
                del self.current[name]
                self._deleted_last_batch.append(name)
            else:
                self.current[name] = new
            writes.append(
                (state_key(self.partition, name), encode_record(Record(m.epoch, seq, new, prev)))
            )
        m.seq = seq
        m.wall_ms = wall_ms
        writes.append((marker_key(self.partition), m.encode()))
        return writes

    def count(self, name: str, n: int = 1) -> None:
        self.marker.counters[name] = self.marker.counters.get(name, 0) + n
