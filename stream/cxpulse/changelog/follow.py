"""From changelog records to committed state values, batch by batch (pure, no I/O).

The workers write each batch of partition p to changelog partition p as one
record per dirty state key followed by the partition's commit marker
(`cxpulse.changelog.records`). A record counts only once a marker says its
`(epoch, seq)` is committed: a batch cut short by a crash, or a phantom of an
old incarnation, falls back to the value before it (`prev`), exactly as a
worker's own recovery decides. So the follower buffers a partition's records
until the next marker and then releases the committed value of every key the
batch touched. A replica fed those values holds exactly the state the owning
worker would restore, whoever owns the partition and however often it moved.

A value split into parts (`persistence`: a descriptor under the key, the
bytes under part keys) is released whole: each part's committed value is
decided by the same rule, kept (a later batch may rewrite only its last
part), and joined when the key's descriptor changes. A split value therefore
costs the follower one copy of its bytes besides the replica's parsed state.
Format-2 parts are keyed by their digest: immutable, kept from their record
to their tombstone whatever the marker says (a part of a batch that never
committed is never listed by a committed descriptor, and its writer
tombstones it). The engine meta (`m`) of format 2 comes with the marker.
Format 4 markers (journal slots `<p>/j/<i>`) also carry the batch's small
changes (their delta), released after its keyed records; a delta patch applies
to the value the follower holds, checked by digest (records.py, format 4); the
engine meta may ride there as a patch of the previous marker's meta.

With `read_committed` and transactional writes (the direct runtime's
default) aborted batches are never even seen; the marker rule makes the
non-transactional writers (faust runtime) exact too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cxpulse.changelog.records import (
    DELTA_PATCH,
    META_KEY,
    CorruptState,
    Marker,
    Record,
    apply_delta_entry,
    decode_names,
    decode_record,
    is_digest_descriptor,
    join_parts,
    parse_digest_suffix,
    parse_part_suffix,
)

#: A committed state change: (state key name, value or None when deleted).
Change = tuple[str, bytes | None]


@dataclass
class PartitionFollower:
    """The changelog of one partition, read in order."""

    partition: int
    marker: Marker | None = None
    #: records seen since the last marker, in log order (None value: tombstone)
    pending: list[tuple[str, Record | None]] = field(default_factory=list)
    #: part records seen since the last marker: (name, index, record or None)
    pending_parts: list[tuple[str, int, Record | None]] = field(default_factory=list)
    #: committed descriptor of every key whose value is split
    descriptors: dict[str, bytes] = field(default_factory=dict)
    #: committed parts of split values: name -> index -> bytes (format 1)
    parts: dict[str, dict[int, bytes]] = field(default_factory=dict)
    #: parts present in the log: name -> digest -> bytes (format 2)
    digest_parts: dict[str, dict[bytes, bytes]] = field(default_factory=dict)
    #: records that did not decode (counted, skipped: a replica must not crash)
    corrupt: int = 0
    #: the partition's counter names (format 2: the marker lists values only)
    names: list[str] | None = None
    #: format 4: the value of every name last set by a marker's delta (the base of
    #: its next patch; dropped once a keyed record of the name commits)
    values: dict[str, bytes] = field(default_factory=dict)
    #: format 4: delta patches not applied, their base not the value held: only a
    #: reader that started inside the journal (a compacted log) meets them, for
    #: markers before the checkpoint whose keyed records come later in the log
    stale_patches: int = 0
    #: the engine meta as of the last marker that carried it or a patch of it (the
    #: base of the next patch, format 4)
    meta: bytes | None = None

    def feed(self, key: bytes | None, value: bytes | None) -> list[Change] | None:
        """One changelog record; the batch's committed changes when it was a marker."""
        if key is None:
            self.corrupt += 1
            return None
        text = key.decode("utf-8", "replace")
        head, _, rest = text.partition("/")
        if head != str(self.partition):
            self.corrupt += 1  # not this partition's key: never written by cxpulse
            return None
        if rest == "n":
            try:
                self.names = None if value is None else decode_names(value)
            except CorruptState:
                self.corrupt += 1
            return None
        if rest == "m" or rest.startswith("j/"):  # j: a journal slot (format 4)
            if value is None:
                return None
            try:
                marker = Marker.decode(value, self.names, unnamed_counters=True)
            except CorruptState:
                self.corrupt += 1
                return None
            return self._commit(marker)
        if rest.startswith("x/"):
            parsed = parse_part_suffix(rest[2:])
            if parsed is None:
                self.corrupt += 1
                return None
            try:
                rec = None if value is None else decode_record(value)
            except CorruptState:
                self.corrupt += 1
                return None
            self.pending_parts.append((parsed[0], parsed[1], rec))
            return None
        if rest.startswith("y/"):
            dparsed = parse_digest_suffix(rest[2:])
            if dparsed is None:
                self.corrupt += 1
                return None
            name, digest = dparsed
            if value is None:
                have = self.digest_parts.get(name)
                if have is not None:
                    have.pop(digest, None)
                    if not have:
                        del self.digest_parts[name]
                return None
            try:
                prec = decode_record(value)
            except CorruptState:
                self.corrupt += 1
                return None
            if prec.new is None:
                self.corrupt += 1
                return None
            self.digest_parts.setdefault(name, {})[digest] = prec.new
            return None
        if not rest.startswith("s/"):
            self.corrupt += 1
            return None
        name = rest[2:]
        if value is None:
            self.pending.append((name, None))
            return None
        try:
            self.pending.append((name, decode_record(value)))
        except CorruptState:
            self.corrupt += 1
        return None

    def _commit(self, marker: Marker) -> list[Change]:
        touched: set[str] = set()
        for name, i, prec in self.pending_parts:
            value = None
            if prec is not None:
                value = prec.new if marker.is_committed(prec) else prec.prev
            have = self.parts.setdefault(name, {})
            if value is None:
                have.pop(i, None)
                if not have:
                    del self.parts[name]
            else:
                have[i] = value
            touched.add(name)
        out: list[Change] = []
        for name, rec in self.pending:
            raw: bytes | None = None
            split = False
            if rec is not None:
                if marker.is_committed(rec):
                    raw, split = rec.new, rec.new_split
                elif rec.no_prev:  # never visible under read_committed
                    self.corrupt += 1
                    continue
                else:
                    raw, split = rec.prev, rec.prev_split
            if name == META_KEY and marker.meta is not None:
                continue  # a format-1 `m` key deleted: the marker carries it
            if raw is not None and split:
                self.descriptors[name] = raw
                touched.add(name)  # joined below, once this batch's parts are in
                continue
            self.descriptors.pop(name, None)
            self.values.pop(name, None)
            touched.discard(name)
            out.append((name, raw))
        for name in sorted(touched):
            desc = self.descriptors.get(name)
            if desc is None:
                continue  # parts of a value no longer split (deleted just now)
            got: dict[int, bytes] | dict[bytes, bytes]
            if is_digest_descriptor(desc):
                got = self.digest_parts.get(name, {})
            else:
                got = self.parts.get(name, {})
            self.values.pop(name, None)
            try:
                out.append((name, join_parts(desc, got)))
            except CorruptState:
                self.corrupt += 1
        meta = marker.meta
        for name, kind, data in marker.delta:  # format 4: after the keyed records
            if name == META_KEY:  # the meta as a patch of the previous marker's
                try:
                    meta = apply_delta_entry(kind, data, self.meta)
                except CorruptState:
                    self.stale_patches += 1
                continue
            base = self.values.get(name)
            if base is None and kind == DELTA_PATCH:
                base = self._joined(name)
            try:
                value = apply_delta_entry(kind, data, base)
            except CorruptState:
                self.stale_patches += 1
                continue
            if value is None:
                self.values.pop(name, None)
            else:
                self.values[name] = value
            out.append((name, value))
        if marker.ck is not None and marker.ck == marker.seq and self.values:
            # A checkpoint keyed every value still live that rode in the deltas
            # before it (their keyed records, read above, dropped them from
            # `values`): what is left was deleted, by a delta a compacted or
            # cleaned log no longer holds (its slot reused since).
            for name in sorted(self.values):
                out.append((name, None))
            self.values.clear()
        self.meta = meta
        if meta is not None:
            out.append((META_KEY, meta))
        self.pending = []
        self.pending_parts = []
        self.marker = marker
        return out


    def _joined(self, name: str) -> bytes | None:
        """The keyed value of a split `name`, joined from its parts (None if absent)."""
        desc = self.descriptors.get(name)
        if desc is None:
            return None
        got: dict[int, bytes] | dict[bytes, bytes] = (
            self.digest_parts.get(name, {})
            if is_digest_descriptor(desc)
            else self.parts.get(name, {})
        )
        try:
            return join_parts(desc, got)
        except CorruptState:
            return None


def committed_changes(
    partition: int, records: Iterable[tuple[bytes | None, bytes | None]]
) -> list[Change]:
    """Every committed change in a run of records (tests, one-shot tools)."""
    f = PartitionFollower(partition)
    out: list[Change] = []
    for k, v in records:
        got = f.feed(k, v)
        if got:
            out.extend(got)
    return out
