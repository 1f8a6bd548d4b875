"""The changelog's bytes: records, split values' descriptors and patches, part keys
and the commit marker of one partition (formats 1-5), exact under crashes.

Pure and without faust: `cxpulse.changelog.store` decides which of these to write
for a batch and how to rebuild a partition from them; `cxpulse.changelog.follow`
reads them back on the exporter. The shells only perform the writes and await them.

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

Format 2 (written since issue 22; format 1 above is still read, so a worker
restores from a changelog an older worker wrote, and rewrites each key in the
new format the next time it changes):

* **No `prev` with transactional writes** (`with_prev=False`): read_committed
  never shows an aborted batch and the local store is written only after the
  broker acknowledged, so every record recovery or the follower ever sees is
  committed; `prev` (half of every record) is never used. Such records carry
  `_NO_PREV`, and recovery stops with `CorruptState` if one is ever found
  uncommitted (something other than this code wrote the table).
* **The engine meta (`m`) travels in the commit marker**: it changes in every
  batch, so a record of its own cost a record and a header per commit.
* **Content-defined parts keyed by digest** (descriptor `D2`, part keys
  `<p>/y/<digest>/<name>`): a split value is cut at JSON element boundaries
  (`"],["`) chosen by a hash of the bytes before them, so an insertion near
  the front changes the parts around it and the later cuts fall where they
  did; a part whose digest is already in the table is never written again.
  A part is immutable (its key is its content): it needs no `prev`, and the
  follower keeps it until its tombstone. Parts no committed descriptor lists
  any more are tombstoned one batch later (recovery tombstones any it finds).

Format 3 (since the trickle work of issue 22; formats 1 and 2 are still read):

* **A split value's head may carry a patch** (descriptor `D3`: the parts it
  lists, joined, then patched: copies of their byte ranges and literal
  bytes, `make_patch`/`apply_patch`). A value that changes a little in several
  places (the cumulative aggregates `c`: each sealed minute adds to a few keys
  across it) then costs one head record per change, not every part it touched
  plus their tombstones; once the patch would exceed `patch_bytes` (a part's
  size) the value is cut into parts again and the patch starts empty. The
  parts a patched head lists are the ones the previous head listed, so the
  crash rules are those of format 2 unchanged. Only values up to
  `MAX_PATCH_BASE` are patched (their parts stay joined in memory).
  A reader older than format 3 sees `D3` as corrupt: upgrade exporters first
  (docs/runtimes.md).

Format 4, the journal (since the trickle work of issue 22; formats 1-3 are still
read; written only with transactional writes, `changelog_journal_slots` > 0):

* **A batch's small changes ride in its commit marker** (`Marker.delta`): each
  changed key as its whole value (up to a part), a deletion, or, for a longer
  value, a patch (`make_patch`) of its value as of the previous marker, named by
  that value's digest. A single-event commit (a real helpdesk: 2 events a second)
  then writes one record, where format 3 wrote the marker, the ticket, its slices,
  the cumulative aggregates and survey keys (3.2 records). A batch whose delta
  exceeds `DELTA_BYTES` (a catch-up) is written as in format 3.
* **Markers cycle through journal slots** `<p>/j/<seq mod R>`, so compaction keeps
  the last R of them (R = `JOURNAL_SLOTS`). **A checkpoint** writes every value
  changed since the last one (its latest value, once) as keyed records in the
  batch whose marker says `ck = seq`; the writer checkpoints before a slot it
  would overwrite is still needed (seq - ck < R), before the pending values pass
  `pending_limit` and whenever a batch's delta is too large.
* **Recovery** takes the marker of highest seq among `<p>/m` and the slots (of
  two with one seq, the one needing fewer others), follows each marker's `base`
  (default seq - 1) back to its checkpoint (a missing link is `CorruptState`:
  the writer never overwrites a needed slot) and applies their deltas oldest
  first over the keyed values, except where a keyed record is newer than the
  marker (its seq is higher: a value that outgrew the delta). It writes one
  marker that carries every value since the checkpoint (`base = ck`) into its
  slot, then tombstones every other slot and a format-3 `<p>/m`: no stale slot
  can outlive, in a compacted log, the values written after it.
* **Exactly once across kill -9**: the delta, the source offsets and the counters
  are one record, committed in one transaction with the batch's keyed records,
  so a batch is in the changelog whole or not at all (read_committed; the local
  store is written after the broker acknowledged). That is why format 4 needs
  transactional writes: it orders a keyed record against a marker by seq, and a
  record reverted to its `prev` (non-transactional writes) has no seq of its own.
* **Followers** apply the delta after the batch's keyed records. Reading a
  compacted log from its start, a follower meets the surviving slots in log
  order, the stale ones (before the last checkpoint) before the keyed records
  that checkpoint wrote; a whole value of a stale slot is overwritten by them,
  and a patch whose base digest does not match what the follower holds is
  skipped (`stale_patches`): only a stale slot can carry one.
* **The engine meta rides in the delta too** (entry `META_KEY`, a patch of the
  previous marker's meta; the marker then has no `meta`), except in a
  checkpoint's marker, the first marker after it and a recovery's: those carry
  it whole. Recovery resolves it along the chain of markers it applies, whose
  first carries it whole; a follower against the meta it holds (a mismatch,
  only in a stale slot, is a stale patch). A reader of format 4 before this
  skips the meta patches as stale (an exporter then updates the meta only from
  markers that carry it whole) and a worker of it cannot restore from them
  (docs/runtimes.md: upgrade exporters first; roll back through
  `changelog_journal_slots: 0`).
* A value deleted that only ever rode in deltas has no keyed record to delete:
  the checkpoint's marker lists it as deleted (for followers; recovery never
  reads the delta of a marker at its checkpoint).
  A reader older than format 4 counts the slots' keys as corrupt and never sees
  a marker again, so it releases nothing: upgrade exporters first, or set
  `changelog_journal_slots: 0` until they are (docs/runtimes.md).

Format 5, compact values (issue 22; formats 1-4 are still read): **a record
without `prev`** has the header `C2` (magic, epoch, flags, the sequence and the
length as varints: 16 bytes where `C1` has 23). The values themselves
are compact too (`cxpulse.core.tickets`: a ticket's events without its id,
their times as distances, UUID ids in 22 characters), which this module does
not look into. An older reader counts a `C2` record corrupt: upgrade
exporters first, then every worker together (docs/runtimes.md).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

MAGIC = b"C1"
_HEADER = struct.Struct(">2sQQBI")  # magic, epoch, seq, flags, len(new)
#: A record without `prev` (all a transactional worker writes): magic, epoch,
#: flags, then `seq` and the length of `new` as varints, then `new` (a length
#: still, so that a truncated record is corrupt, not a shorter value). Some 7
#: bytes less per record than `_HEADER` (issue 22: 2 of a busy day's 150 B per event).
MAGIC2 = b"C2"
_HEADER2 = struct.Struct(">2sQB")
_HAS_NEW = 1
_HAS_PREV = 2
_NEW_SPLIT = 4  # `new` is a descriptor of parts, not the value
_PREV_SPLIT = 8  # `prev` is a descriptor of parts, not the value
_DESC = struct.Struct(">2sQ")  # magic, total length; then one digest per part
_DESC_MAGIC = b"D1"  # parts by index: `<p>/x/<i>/<name>` (format 1, read only)
_DESC2_MAGIC = b"D2"  # parts by digest: `<p>/y/<hex digest>/<name>`
_DESC3_MAGIC = b"D3"  # parts by digest, then a patch of the joined parts (format 3)
_DESC3 = struct.Struct(">2sQI")  # magic, total length of the parts, number of parts
_COPY = struct.Struct(">cII")  # b"C", offset and length of bytes copied from the parts
_LIT = struct.Struct(">cI")  # b"L", length of the literal bytes that follow
_NO_PREV = 16  # written without `prev`: valid only if committed (format 2)
#: The flags a `C2` record can carry (it has no `prev`).
_FLAGS2 = _HAS_NEW | _NEW_SPLIT | _NO_PREV
#: The flags a `C1` record can carry.
_FLAGS1 = _FLAGS2 | _HAS_PREV | _PREV_SPLIT
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
#: Split values up to this long keep their joined parts in memory, so that a
#: change can be written as a patch of them (format 3); longer ones (a ticket
#: with thousands of events) are cut into parts at every change, as in format 2.
MAX_PATCH_BASE = 64 * 1024
#: Room kept in a record for its header, key and Kafka's per-record overhead.
RECORD_SLACK = 4 * 1024

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
    #: written without `prev` (format 2): an uncommitted one is corrupt state
    no_prev: bool = False


def encode_record(rec: Record) -> bytes:
    flags = (_HAS_NEW if rec.new is not None else 0) | (_HAS_PREV if rec.prev is not None else 0)
    if rec.no_prev:
        flags |= _NO_PREV
    if rec.new_split and rec.new is not None:
        flags |= _NEW_SPLIT
    if rec.prev_split and rec.prev is not None:
        flags |= _PREV_SPLIT
    new = rec.new or b""
    if rec.prev is None:
        return _HEADER2.pack(MAGIC2, rec.epoch, flags) + _varint(rec.seq) + _varint(len(new)) + new
    return _HEADER.pack(MAGIC, rec.epoch, rec.seq, flags, len(new)) + new + rec.prev


def _varint(n: int) -> bytes:
    """`n` >= 0 in 7-bit groups, least significant first, the high bit set on all but the last."""
    if n < 0x4000:  # the usual lengths and sequence numbers: no loop
        return bytes((n,)) if n < 0x80 else bytes((n & 0x7F | 0x80, n >> 7))
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _decode_record2(raw: bytes) -> Record:
    if len(raw) < _HEADER2.size + 1:
        raise CorruptState("state record too short")
    _, epoch, flags = _HEADER2.unpack_from(raw)
    seq, i = _read_varint(raw, _HEADER2.size)
    n, i = _read_varint(raw, i)
    # exactly what `encode_record` writes: no other flag, a body only with `_HAS_NEW`
    if flags & ~_FLAGS2 or len(raw) != i + n or (n and not flags & _HAS_NEW):
        raise CorruptState("state record has a bad header")
    new = raw[i:] if flags & _HAS_NEW else None
    return Record(epoch, seq, new, None, bool(flags & _NEW_SPLIT and new is not None), False,
                  bool(flags & _NO_PREV))  # fmt: skip


def _read_varint(raw: bytes, i: int) -> tuple[int, int]:
    """The `_varint` at `raw[i:]` and the index after it."""
    n = shift = 0
    while True:
        if i >= len(raw) or shift > 63:
            raise CorruptState("state record has a bad header")
        b = raw[i]
        n |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return n, i
        shift += 7


def decode_record(raw: bytes) -> Record:
    if raw[:2] == MAGIC2:
        return _decode_record2(raw)
    if len(raw) < _HEADER.size:
        raise CorruptState("state record too short")
    magic, epoch, seq, flags, n = _HEADER.unpack_from(raw)
    body = raw[_HEADER.size :]
    # exactly what `encode_record` (and every format before) writes: no other flag, a
    # body only with `_HAS_NEW`, bytes after it only with `_HAS_PREV`
    if (
        magic != MAGIC
        or len(body) < n
        or flags & ~_FLAGS1
        or (n and not flags & _HAS_NEW)
        or (len(body) != n and not flags & _HAS_PREV)
    ):
        raise CorruptState("state record has a bad header")
    return Record(
        epoch,
        seq,
        body[:n] if flags & _HAS_NEW else None,
        body[n:] if flags & _HAS_PREV else None,
        bool(flags & _NEW_SPLIT and flags & _HAS_NEW),
        bool(flags & _PREV_SPLIT and flags & _HAS_PREV),
        bool(flags & _NO_PREV),
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


def digest_part_key(partition: int, name: str, digest: bytes) -> bytes:
    """Key of the part with `digest` of state key `name` (format 2)."""
    return f"{partition}/y/{digest.hex()}/{name}".encode()


def parse_digest_suffix(rest: str) -> tuple[str, bytes] | None:
    """`"<hex>/<name>"` (a part key after `<p>/y/`) -> (name, digest); None if malformed."""
    hx, sep, name = rest.partition("/")
    if not sep or len(hx) != 2 * _DIGEST_BYTES:
        return None
    try:
        return name, bytes.fromhex(hx)
    except ValueError:
        return None


def part_digest(part: bytes) -> bytes:
    return hashlib.blake2b(part, digest_size=_DIGEST_BYTES).digest()


def encode_descriptor(total: int, digests: list[bytes]) -> bytes:
    return _DESC.pack(_DESC_MAGIC, total) + b"".join(digests)


def encode_descriptor2(total: int, digests: list[bytes]) -> bytes:
    return _DESC.pack(_DESC2_MAGIC, total) + b"".join(digests)


def encode_descriptor3(total: int, digests: list[bytes], patch: bytes) -> bytes:
    """Parts (joined: `total` bytes) plus a patch that turns them into the value."""
    return _DESC3.pack(_DESC3_MAGIC, total, len(digests)) + b"".join(digests) + patch


def is_digest_descriptor(raw: bytes) -> bool:
    """Does this descriptor name its parts by digest (format 2 or 3), not by index?"""
    return raw[:2] in (_DESC2_MAGIC, _DESC3_MAGIC)


def _split_descriptor(raw: bytes) -> tuple[int, list[bytes], bytes | None]:
    """(total length of the parts, digest of each part, patch or None)."""
    if raw[:2] == _DESC3_MAGIC:
        if len(raw) < _DESC3.size:
            raise CorruptState("bad split-value descriptor")
        _magic, total, n = _DESC3.unpack_from(raw)
        end = _DESC3.size + n * _DIGEST_BYTES
        if len(raw) < end:
            raise CorruptState("bad split-value descriptor")
        body = raw[_DESC3.size : end]
        patch: bytes | None = raw[end:]
    else:
        if len(raw) < _DESC.size or (len(raw) - _DESC.size) % _DIGEST_BYTES:
            raise CorruptState("bad split-value descriptor")
        magic, total = _DESC.unpack_from(raw)
        if magic not in (_DESC_MAGIC, _DESC2_MAGIC):
            raise CorruptState("bad split-value descriptor")
        body, patch = raw[_DESC.size :], None
    return total, [body[i : i + _DIGEST_BYTES] for i in range(0, len(body), _DIGEST_BYTES)], patch


def decode_descriptor(raw: bytes) -> tuple[int, list[bytes]]:
    """(total length, digest of each part) of a split value's descriptor (any
    format; for a patched one, the length of the parts joined, before the patch)."""
    total, digests, _patch = _split_descriptor(raw)
    return total, digests


#: Patches are computed on content-defined pieces of at most this many bytes.
_PATCH_PIECE = 512


def make_patch(
    base: bytes, value: bytes, limit: int, piece_bytes: int = _PATCH_PIECE,
    where: Mapping[bytes, int] | None = None,
) -> bytes | None:
    """A patch turning `base` into `value` (copies of `base` ranges and literal
    bytes, `apply_patch`), or None if it would be longer than `limit` bytes.

    Both are cut at the same content-defined points (`content_chunks`), so the
    pieces an edit did not touch are found in `base` by their bytes and cost a
    copy (9 B), the changed ones their bytes (pieces: at most `piece_bytes`).
    A split value that changes a little in several places (the cumulative
    aggregates `c`: a sealed minute adds to a few keys all over it) then
    rewrites one small head record rather than every part it touched (and
    their tombstones a batch later). Each literal is then trimmed to the bytes
    that differ (`_trim_literals`, `_inner_copies`): a count that changed inside
    a piece costs its digits, not the piece. A change that would cost more than
    about 4x `limit` before trimming (a catch-up) is given up untrimmed.

    `where` (`piece_offsets(base, piece_bytes)`) may be given when the caller keeps
    it: a store patches an open slice against the same base at every commit."""
    ops: list[list[int] | bytes] = []  # [offset, length] copies and literal bytes
    if len(base) <= _MAX_INNER and len(value) <= _MAX_INNER:
        return _encode_ops(_trim_literals(base, [value] if value else []), limit)
    if where is None:
        where = piece_offsets(base, piece_bytes)
    size = 0
    bound = 4 * limit + 4 * piece_bytes  # the untrimmed patch's bound
    for piece in content_chunks(value, piece_bytes):
        at = where.get(piece)
        last = ops[-1] if ops else None
        if at is None:
            if isinstance(last, bytes):
                ops[-1] = last + piece
            else:
                ops.append(piece)
            size += len(piece) + (0 if isinstance(last, bytes) else _LIT.size)
        elif isinstance(last, list) and last[0] + last[1] == at:
            last[1] += len(piece)
        else:
            ops.append([at, len(piece)])
            size += _COPY.size
        if size > bound:
            return None
    return _encode_ops(_trim_literals(base, ops), limit)


def piece_offsets(base: bytes, piece_bytes: int = _PATCH_PIECE) -> dict[bytes, int]:
    """Where each content-defined piece of `base` first starts (`make_patch`'s lookup)."""
    where: dict[bytes, int] = {}
    off = 0
    for piece in content_chunks(base, piece_bytes):
        where.setdefault(piece, off)
        off += len(piece)
    return where


def _encode_ops(ops: list[list[int] | bytes], limit: int) -> bytes | None:
    """The patch of `ops` (`apply_patch`'s format), or None if over `limit` bytes."""
    out: list[bytes] = []
    size = 0
    for op in ops:
        if isinstance(op, bytes):
            out.append(_LIT.pack(b"L", len(op)) + op)
        else:
            out.append(_COPY.pack(b"C", op[0], op[1]))
        size += len(out[-1])
        if size > limit:
            return None
    return b"".join(out)


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix of `a` and `b`."""
    n = min(len(a), len(b))
    lo, hi = 0, n  # a[:lo] == b[:lo]; binary search on slices (C speed)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _trim_literals(base: bytes, ops: list[list[int] | bytes]) -> list[list[int] | bytes]:
    """`ops` with each literal's bytes that equal the base bytes right after the
    copy before it (or the start of `base`) moved into that copy, and those
    that equal the base bytes right before the copy after it (or the end of
    `base`) into that one; contiguous copies merged. The value is unchanged:
    only bytes already equal to where a copy extends are taken from `base`."""
    out: list[list[int] | bytes] = []
    for i, op in enumerate(ops):
        if not isinstance(op, bytes):
            last = out[-1] if out else None
            if isinstance(last, list) and last[0] + last[1] == op[0]:
                last[1] += op[1]
            else:
                out.append(list(op))
            continue
        data = op
        prev = out[-1] if out else None
        start = prev[0] + prev[1] if isinstance(prev, list) else 0 if not out else -1
        if start >= 0:
            n = _common_prefix(data, base[start : start + len(data)])
            if n:
                if isinstance(prev, list):
                    prev[1] += n
                else:
                    out.append([0, n])
                data = data[n:]
        nxt = ops[i + 1] if i + 1 < len(ops) else None
        end = nxt[0] if isinstance(nxt, list) else len(base) if nxt is None else -1
        tail: list[int] | None = None
        if end >= 0 and data:
            n = _common_prefix(data[::-1], base[max(0, end - len(data)) : end][::-1])
            if n:
                data = data[: len(data) - n]
                end -= n
                if isinstance(nxt, list):
                    nxt[0] -= n
                    nxt[1] += n
                else:
                    tail = [end, n]
        if data:
            last = out[-1] if out else [0, 0]  # a first literal replaces base[0:end]
            start = last[0] + last[1] if isinstance(last, list) else -1
            out += _inner_copies(base, start, end, data)
        if tail is not None:
            out.append(tail)
    return out


#: Shortest run worth a copy inside a literal (a copy, 9 B, splits the literal,
#: whose remainder then costs another 5 B header); also the step at which the
#: literal's bytes are looked up in the base bytes it replaces.
_MIN_INNER_COPY = 16
#: Most base bytes a literal's runs are looked up in.
_MAX_INNER = 4096


def _inner_copies(base: bytes, start: int, end: int, data: bytes) -> list[list[int] | bytes]:
    """`data` (a trimmed literal that replaces base[start:end]) as literals and
    copies of the runs it shares with those base bytes: a literal holding two
    edits (the meta's count and stream time) keeps only their bytes. Every
    `_MIN_INNER_COPY` bytes of `data`, the next that many are searched for in the
    base bytes (`bytes.find`); a hit is extended both ways as far as they agree
    (so a shared run of twice that length is always found)."""
    k = _MIN_INNER_COPY
    if start < 0 or not k <= end - start <= _MAX_INNER or len(data) < 2 * k:
        return [data]
    gap = base[start:end]
    out: list[list[int] | bytes] = []
    j = lit = 0
    while j + k <= len(data):
        a = gap.find(data[j : j + k])
        if a < 0:
            j += k
            continue
        back = 0  # the run may start up to k - 1 bytes before j
        while back < min(k - 1, j - lit, a) and data[j - back - 1] == gap[a - back - 1]:
            back += 1
        n = back + k + _common_prefix(data[j + k :], gap[a + k :])
        if j - back > lit:
            out.append(data[lit : j - back])
        out.append([start + a - back, n])
        j = lit = j - back + n
    if lit < len(data):
        out.append(data[lit:])
    return out


def apply_patch(base: bytes, patch: bytes) -> bytes:
    """`value` back from `base` and `make_patch(base, value)`."""
    out: list[bytes] = []
    i, n = 0, len(patch)
    try:
        while i < n:
            op = patch[i : i + 1]
            if op == b"C":
                _op, at, length = _COPY.unpack_from(patch, i)
                if at + length > len(base):
                    raise CorruptState("a patch copies beyond its parts")
                out.append(base[at : at + length])
                i += _COPY.size
            elif op == b"L":
                _op, length = _LIT.unpack_from(patch, i)
                i += _LIT.size
                if i + length > n:
                    raise CorruptState("a patch is cut short")
                out.append(patch[i : i + length])
                i += length
            else:
                raise CorruptState("bad patch")
    except struct.error:
        raise CorruptState("a patch is cut short") from None
    return b"".join(out)


def join_parts(descriptor: bytes, parts: Mapping[int, bytes] | Mapping[bytes, bytes]) -> bytes:
    """The whole value from its committed parts, checked against the descriptor.

    `parts`: by index for a format-1 descriptor, by digest for a format-2 or 3
    one (format 3: the joined parts are then patched)."""
    total, digests, patch = _split_descriptor(descriptor)
    by_digest = is_digest_descriptor(descriptor)
    lookup: Mapping[object, bytes] = parts  # type: ignore[assignment]
    chunks = []
    for i, digest in enumerate(digests):
        part = lookup.get(digest if by_digest else i)
        if part is None or part_digest(part) != digest:
            raise CorruptState(f"part {i} of a split value is missing or does not match")
        chunks.append(part)
    value = b"".join(chunks)
    if len(value) != total:
        raise CorruptState("a split value has the wrong length")
    return value if patch is None else apply_patch(value, patch)


def part_bytes_for(max_record_bytes: int) -> int:
    """Largest part such that a part record (new + prev + header + key) fits."""
    return max(256, min(MAX_PART_BYTES, (max_record_bytes - RECORD_SLACK) // 2))


def max_parts_for(max_record_bytes: int) -> int:
    """Most parts a descriptor may list: the head record holds two descriptors."""
    return max(1, ((max_record_bytes - RECORD_SLACK) // 2 - _DESC.size) // _DIGEST_BYTES)


#: Cut candidates of the content-defined split: between two JSON array elements.
_CUT = b"],["
#: Bytes before the first candidate hashed when no element precedes it.
_CUT_WINDOW = 64


def content_chunks(value: bytes, hi: int) -> list[bytes]:
    """`value` cut into parts of at most `hi` bytes at content-defined points.

    A candidate (after `],` of `],[`) is a cut when a hash of the element
    before it says so: rarely (1/16) below `hi // 4` bytes into the part,
    often (1/2) beyond; never below `hi // 16`; a part with no cut by `hi`
    bytes is cut there. Each cut depends only on where the part started and
    on the bytes around it, so after an insertion the cuts fall back onto the
    old ones within a part or two and the later parts keep their digests
    (fixed-size parts made an insertion rewrite every later part: a fat
    ticket applied newest first wrote 20x what it wrote in order).
    """
    lo, target = hi // 16, hi // 4
    out: list[bytes] = []
    start, n = 0, len(value)
    find = value.find
    while start < n:
        end = min(start + hi, n)
        cut = end
        i = find(_CUT, start + max(lo, 1) - 2)
        prev = value.rfind(_CUT, 0, i) if i > 0 else -1
        while i != -1 and i + 2 < end:
            c = i + 2
            # the whole element before the candidate: its ids and times vary,
            # its last bytes alone may not (`"...",null,true],[` in every event)
            h = zlib.crc32(value[prev + 2 if prev >= 0 else max(0, c - _CUT_WINDOW) : c])
            if (h & 15) == 0 or (c - start >= target and not h & 1):
                cut = c
                break
            prev = i
            i = find(_CUT, i + 1)
        out.append(value[start:cut])
        start = cut
    return out or [b""]


class ValueTooLarge(ValueError):
    """A state value needs more parts than one descriptor record can list."""


def state_key(partition: int, key: str) -> bytes:
    return f"{partition}/s/{key}".encode()


def marker_key(partition: int) -> bytes:
    return f"{partition}/m".encode()


def names_key(partition: int) -> bytes:
    """Key of the partition's counter names (a JSON list, only ever appended to)."""
    return f"{partition}/n".encode()


def decode_names(raw: bytes) -> list[str]:
    try:
        names = json.loads(raw)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("not a list of names")
        return names
    except ValueError as exc:
        raise CorruptState(f"bad counter names: {exc}") from None


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
    #: digest part keys (`"<hex>/<name>"`) this batch tombstoned (format 2)
    digest_tombstones: list[str] = field(default_factory=list)
    #: the engine's meta value (state key `m`), carried here since format 2
    meta: bytes | None = None
    #: counter names in the order of the partition's name record (`names_key`):
    #: when set, counters are encoded as a list of values in that order
    #: (format 2; the names cost more than the values and rarely change)
    names: list[str] | None = field(default=None, compare=False, repr=False)
    #: format 4: seq of the last checkpoint (every value as of it is in keyed
    #: records); None in formats 1-3, where every value is keyed at `seq`
    ck: int | None = None
    #: format 4: the seq this marker's `delta` applies on top of (None: seq - 1)
    base: int | None = None
    #: format 4: values changed since `base` that ride in this marker instead of
    #: a keyed record: (name, DELTA_VALUE / DELTA_DELETED / DELTA_PATCH, bytes)
    delta: list[tuple[str, int, bytes]] = field(default_factory=list)

    def checkpoint(self) -> int:
        """Seq as of which every value is in keyed records."""
        return self.seq if self.ck is None else self.ck

    def base_seq(self) -> int:
        """Seq of the state this marker's delta applies to."""
        return self.seq - 1 if self.base is None else self.base

    def committed_for(self, epoch: int) -> int | None:
        if epoch == self.epoch and epoch != 0:
            return self.seq
        return self.committed.get(epoch)

    def is_committed(self, rec: Record) -> bool:
        last = self.committed_for(rec.epoch)
        return last is not None and rec.seq <= last

    def encode(self) -> bytes:
        """Compact JSON; empty lists left out; the meta value last, as written
        (its length in `ml`, so decoding hands back the very bytes), unless it
        rides in the delta as a patch (an entry named `META_KEY`, format 4)."""
        meta = None if any(n == META_KEY for n, _k, _b in self.delta) else self.meta
        body = json.dumps(
            {
                "v": 2,
                "epoch": self.epoch,
                "seq": self.seq,
                **({"committed": {str(k): v for k, v in self.committed.items()}}
                   if self.committed else {}),
                "offsets": self.offsets,
                **({"k": [self.counters.get(n, 0) for n in self.names]}
                   if self.names is not None else {"counters": self.counters}),
                "wall_ms": self.wall_ms,
                **({"tombstones": self.tombstones} if self.tombstones else {}),
                **({"part_tombstones": self.part_tombstones} if self.part_tombstones else {}),
                **({"gc": self.digest_tombstones} if self.digest_tombstones else {}),
                **({"ml": len(meta)} if meta is not None else {}),
                **({"ck": self.ck} if self.ck is not None else {}),
                **({"b": self.base} if self.base is not None else {}),
                **({"dl": [[n, kind, len(b)] for n, kind, b in self.delta]}
                   if self.delta else {}),
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()  # fmt: skip
        if meta is not None:
            body = body[:-1] + b',"meta":' + meta + b"}"
        if self.delta:  # the delta's bytes after a NUL, which JSON text never holds
            body += b"\x00" + b"".join(b for _n, _k, b in self.delta)
        return body

    @classmethod
    def decode(cls, raw: bytes, names: list[str] | None = None, *,
               unnamed_counters: bool = False) -> Marker:  # fmt: skip
        """Either format: 1 (every field present, no meta) or 2 (`names`: the
        partition's counter names, needed when the counters are a list).

        `unnamed_counters`: counter values beyond `names` are dropped instead of
        making the marker corrupt. For the exporter's follower, which reads a
        marker's offsets, meta and delta but never its counters: a compacted log
        keeps only the latest names record, which can come after journal markers
        (format 4) that are still needed. Recovery keeps the strict default (it
        restores the counters and reads the names record first)."""
        try:
            raw, _nul, tail = raw.partition(b"\x00")
            d = json.loads(raw)
            delta: list[tuple[str, int, bytes]] = []
            at = 0
            for n, kind, length in d.get("dl", []):
                if kind not in (DELTA_VALUE, DELTA_DELETED, DELTA_PATCH) or at + length > len(tail):
                    raise ValueError("bad delta entry")
                delta.append((str(n), int(kind), tail[at : at + length]))
                at += length
            if at != len(tail):
                raise ValueError("delta bytes do not match their lengths")
            if "k" in d:
                values = d["k"]
                names = names or []
                if len(values) > len(names):
                    if not unnamed_counters:
                        raise ValueError("counter values without their names")
                    values = values[: len(names)]
                d["counters"] = dict(zip(names, values, strict=False))
            meta = None
            if "ml" in d:
                meta = raw[len(raw) - 1 - int(d["ml"]) : -1]
                if json.loads(meta) != d["meta"]:
                    raise ValueError("meta length does not match")
            return cls(
                epoch=int(d["epoch"]),
                seq=int(d["seq"]),
                committed={int(k): int(v) for k, v in d.get("committed", {}).items()},
                offsets={str(k): int(v) for k, v in d["offsets"].items()},
                counters={str(k): int(v) for k, v in d["counters"].items()},
                wall_ms=int(d.get("wall_ms", 0)),
                tombstones=[str(k) for k in d.get("tombstones", [])],
                part_tombstones=[str(k) for k in d.get("part_tombstones", [])],
                digest_tombstones=[str(k) for k in d.get("gc", [])],
                meta=meta,
                names=list(names[: len(d["k"])]) if "k" in d and names is not None else None,
                ck=int(d["ck"]) if "ck" in d else None,
                base=int(d["b"]) if "b" in d else None,
                delta=delta,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptState(f"bad marker: {exc}") from None


#: The state key whose value travels in the marker (format 2).
META_KEY = "m"

#: Kinds of a format-4 delta entry: the whole value; the key deleted (no bytes);
#: a patch (`make_patch`) of the value as of the marker's base, after the
#: 8-byte digest (`part_digest`) of that value.
DELTA_VALUE, DELTA_DELETED, DELTA_PATCH = 0, 1, 2
#: Journal slots a format-4 writer cycles its commit markers through (module docs).
JOURNAL_SLOTS = 256
#: Most bytes of one marker's delta (format 4): a bigger batch is a checkpoint.
DELTA_BYTES = 4 * 1024
#: Pieces of a delta patch of a value that rode in an earlier delta (format 4):
#: small, since those values are small (a ticket's events, a minute's slice) and a
#: change touches a piece or two (an event appended, a few counts)
DELTA_PIECE = 64


def journal_key(partition: int, slot: int) -> bytes:
    """Key of journal slot `slot` (format 4: the commit marker of seq = slot mod R)."""
    return f"{partition}/j/{slot}".encode()


def apply_delta_entry(kind: int, data: bytes, value: bytes | None) -> bytes | None:
    """The value after one delta entry, given the value before it (None: absent).

    A patch whose base digest does not match `value` raises CorruptState: the
    entry was written against another value (a reader that did not see the
    marker the entry builds on)."""
    if kind == DELTA_VALUE:
        return data
    if kind == DELTA_DELETED:
        return None
    if value is None or part_digest(value) != data[:_DIGEST_BYTES]:
        raise CorruptState("a delta patch does not match the value it patches")
    return apply_patch(value, data[_DIGEST_BYTES:])


def delta_patch(value: bytes, patch: bytes) -> bytes:
    """A DELTA_PATCH entry's bytes: the digest of `value`, then the patch."""
    return part_digest(value) + patch
