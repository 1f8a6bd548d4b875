"""From changelog records to committed state values, batch by batch (pure, no I/O).

The workers write each batch of partition p to changelog partition p as one
record per dirty state key followed by the partition's commit marker
(`stream.worker.persistence`). A record counts only once a marker says its
`(epoch, seq)` is committed: a batch cut short by a crash, or a phantom of an
old incarnation, falls back to the value before it (`prev`), exactly as a
worker's own recovery decides. So the follower buffers a partition's records
until the next marker and then releases the committed value of every key the
batch touched. A replica fed those values holds exactly the state the owning
worker would restore, whoever owns the partition and however often it moved.

With `read_committed` and transactional writes (the direct runtime's
default) aborted batches are never even seen; the marker rule makes the
non-transactional writers (faust runtime) exact too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from stream.worker.persistence import CorruptState, Marker, Record, decode_record

#: A committed state change: (state key name, value or None when deleted).
Change = tuple[str, bytes | None]


@dataclass
class PartitionFollower:
    """The changelog of one partition, read in order."""

    partition: int
    marker: Marker | None = None
    #: records seen since the last marker, in log order (None value: tombstone)
    pending: list[tuple[str, Record | None]] = field(default_factory=list)
    #: records that did not decode (counted, skipped: a replica must not crash)
    corrupt: int = 0

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
        if rest == "m":
            if value is None:
                return None
            try:
                marker = Marker.decode(value)
            except CorruptState:
                self.corrupt += 1
                return None
            return self._commit(marker)
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
        out: list[Change] = []
        for name, rec in self.pending:
            if rec is None:
                out.append((name, None))
            elif marker.is_committed(rec):
                out.append((name, rec.new))
            else:
                out.append((name, rec.prev))
        self.pending = []
        self.marker = marker
        return out


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
