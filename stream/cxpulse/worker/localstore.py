"""The local copy of one partition's changelog (direct runtime): memory or RocksDB.

Why a local copy at all: rebuilding a partition from the changelog alone
means reading the whole compacted partition at every start. With RocksDB the
worker reads only the changelog records written after its local copy.

Why the copy is written *after* the broker acknowledged the changelog writes,
together with the changelog offset, in one RocksDB write batch: the local copy
is then always a prefix of the changelog. It can lag behind (a kill -9 between
the ack and the local write, or another worker that owned the partition
meanwhile), never run ahead, and the tail read at restore closes any lag.

Why corruption is checked, and what happens then: the copy is a cache of the
changelog, never the truth. RocksDB's `items()` simply *stops* at a block
whose checksum does not match, so a corrupt copy used to restore a partition
with part of its keys, and the recovery's re-sends then wrote that wrong
state on into the changelog. Every read here therefore checks the
iterator's status at the end, an open that reports `Corruption` is caught,
and the caller (`direct._restore`) moves the unusable copy aside and rebuilds
it from the changelog (`RocksStore.quarantine`). Other errors (the LOCK held
by a second worker on the same datadir, a full disk) are not corruption and
still end the process: moving a healthy copy aside would hide them.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cxpulse.changelog.records import Write

if TYPE_CHECKING:
    from rocksdict import Options, Rdict

#: Outside every `<p>/` prefix, so `PartitionStore.recover` never sees it.
_OFFSET_KEY = b"\x00changelog-offset"
_OFFSET = struct.Struct(">q")


class LocalStoreCorrupt(RuntimeError):
    """The local copy cannot be trusted (RocksDB reported corruption).

    `reason` is a bounded code for the metric label: `open` (the database
    does not open: missing CURRENT, a removed `.sst`, a bad MANIFEST) or
    `read` (a block failed its checksum while reading it)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _is_corruption(exc: BaseException) -> bool:
    """RocksDB's status text: every corruption, and a missing file it expected,
    is reported as `Corruption: ...` (a held LOCK or a full disk are `IO error`)."""
    return "Corruption" in str(exc)


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


class LocalStore(Protocol):
    """Raw changelog records (key -> value) of one partition, plus how far they go."""

    def items(self) -> Iterator[tuple[bytes, bytes]]: ...

    def offset(self) -> int | None:
        """Changelog offset of the last record applied (None: nothing yet)."""
        ...

    def apply(self, writes: Iterable[Write], offset: int | None) -> None: ...

    def reset(self) -> None:
        """Forget everything (the changelog was recreated)."""
        ...

    def close(self) -> None: ...

    def quarantine(self) -> str | None:
        """Move the unusable copy aside and start empty; returns where it went."""
        ...


class MemoryStore:
    """`memory://`: holds a partition's records only while it is restored.

    Every restore reads the whole changelog partition; the worker drops the
    copy afterwards (see `direct._Partition.local`)."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._offset: int | None = None

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self._data.items()))

    def offset(self) -> int | None:
        return self._offset

    def apply(self, writes: Iterable[Write], offset: int | None) -> None:
        data = self._data
        for k, v in writes:
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v
        if offset is not None:
            self._offset = offset

    def reset(self) -> None:
        self._data.clear()
        self._offset = None

    def close(self) -> None:
        self._data.clear()

    def quarantine(self) -> str | None:
        self.reset()  # nothing on disk: the copy came from the changelog anyway
        return None


class RocksStore:
    """`rocksdb://` (rocksdict): survives restarts, so a start reads only the tail.

    Raises `LocalStoreCorrupt` from the constructor and from `items()` when
    RocksDB reports corruption; `quarantine()` then moves the directory aside.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._options: Options
        self._db: Rdict | None = self._open()

    def _open(self) -> Rdict:
        # rocksdict (a native library) only where a `rocksdb://` store is opened: the
        # memory store, `--help` and the exporter never load it
        from rocksdict import Options, Rdict

        self._options = Options(raw_mode=True)
        # detect a bad file at open (not only when a block is read)
        self._options.set_paranoid_checks(True)
        # without CURRENT RocksDB would silently create an empty database next
        # to the old files
        old_files = any(self._path.glob("*.sst")) or any(self._path.glob("MANIFEST-*"))
        if old_files and not (self._path / "CURRENT").exists():
            raise LocalStoreCorrupt("open", f"{self._path}: CURRENT is missing")
        try:
            return Rdict(str(self._path), options=self._options)
        except Exception as exc:
            if _is_corruption(exc):
                raise LocalStoreCorrupt("open", f"{self._path}: {_first_line(exc)}") from None
            raise

    @property
    def path(self) -> Path:
        return self._path

    @property
    def _live(self) -> Rdict:
        """The open database (`close()` and a failed `quarantine()` leave none)."""
        if self._db is None:
            raise RuntimeError(f"{self._path}: local store used after close")
        return self._db

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every record, then a check that the scan was complete.

        `Rdict.items()` ends silently at a block that fails its checksum; the
        raw iterator's `status()` is what says so (it raises then)."""
        from rocksdict import ReadOptions  # native library: see `_open`

        opts = ReadOptions()
        opts.set_verify_checksums(True)
        it = self._live.iter(opts)
        it.seek_to_first()
        while it.valid():
            k, v = it.key(), it.value()
            if k != _OFFSET_KEY and isinstance(k, bytes) and isinstance(v, bytes):
                yield k, v
            it.next()
        error = None
        try:
            it.status()
        except Exception as exc:
            error = _first_line(exc)
        # a live iterator keeps the database (and its LOCK) open: drop it before
        # raising, since the traceback would keep this frame alive
        del it
        if error is not None:
            raise LocalStoreCorrupt("read", f"{self._path}: {error}")

    def offset(self) -> int | None:
        try:
            raw = self._live.get(_OFFSET_KEY)
        except Exception as exc:
            if _is_corruption(exc):
                raise LocalStoreCorrupt("read", f"{self._path}: {_first_line(exc)}") from None
            raise
        return None if raw is None else int(_OFFSET.unpack(raw)[0])

    def apply(self, writes: Iterable[Write], offset: int | None) -> None:
        from rocksdict import WriteBatch  # native library: see `_open`

        wb = WriteBatch(raw_mode=True)
        for k, v in writes:
            if v is None:
                wb.delete(k)
            else:
                wb.put(k, v)
        if offset is not None:
            wb.put(_OFFSET_KEY, _OFFSET.pack(offset))
        self._live.write(wb)

    def reset(self) -> None:
        from rocksdict import Rdict  # native library: see `_open`

        self._live.close()
        Rdict.destroy(str(self._path), self._options)
        self._db = self._open()

    def quarantine(self) -> str | None:
        """Rename the directory to `<name>.corrupt-<unix time>` and open a new one.

        Kept rather than deleted so the cause can be looked at (the runbook
        says when to delete it); the new copy is empty, so the caller reads
        the whole changelog partition into it."""
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
        aside = _move_aside(self._path)
        self._db = self._open()
        return aside

    def close(self) -> None:
        """Flush the memtable, then close: the next start opens `.sst` files
        instead of replaying the write-ahead log."""
        if self._db is None:
            return
        with contextlib.suppress(Exception):
            self._db.flush()
        self._db.close()
        self._db = None


def open_store(kind: str, datadir: str, changelog_topic: str, partition: int) -> LocalStore:
    """Open a partition's copy; raises `LocalStoreCorrupt` (see `open_or_quarantine`)."""
    if kind == "memory://":
        return MemoryStore()
    return RocksStore(store_path(datadir, changelog_topic, partition))


def store_path(datadir: str, changelog_topic: str, partition: int) -> Path:
    return Path(datadir) / "direct" / f"{changelog_topic}-{partition}"


def open_or_quarantine(
    kind: str, datadir: str, changelog_topic: str, partition: int
) -> tuple[LocalStore, LocalStoreCorrupt | None, str | None]:
    """Open a partition's copy; a copy that does not open is moved aside.

    Returns (store, the corruption found or None, where the bad copy went)."""
    try:
        return open_store(kind, datadir, changelog_topic, partition), None, None
    except LocalStoreCorrupt as exc:
        aside = _move_aside(store_path(datadir, changelog_topic, partition))
        return open_store(kind, datadir, changelog_topic, partition), exc, aside


def _move_aside(path: Path) -> str | None:
    """Rename `path` to `<name>.corrupt-<unix time>[-n]` (None: nothing there)."""
    if not path.exists():
        return None
    stamp = int(time.time())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 0
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, aside)
    return str(aside)
