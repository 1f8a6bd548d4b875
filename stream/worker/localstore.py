"""The local copy of one partition's changelog (direct runtime): memory or RocksDB.

Why a local copy at all: rebuilding a partition from the changelog alone
means reading the whole compacted partition at every start. With RocksDB the
worker reads only the changelog records written after its local copy.

Why the copy is written *after* the broker acknowledged the changelog writes,
together with the changelog offset, in one RocksDB write batch: the local copy
is then always a prefix of the changelog. It can lag behind (a kill -9 between
the ack and the local write, or another worker that owned the partition
meanwhile), never run ahead, and the tail read at restore closes any lag.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from stream.worker.persistence import Write

#: Outside every `<p>/` prefix, so `PartitionStore.recover` never sees it.
_OFFSET_KEY = b"\x00changelog-offset"
_OFFSET = struct.Struct(">q")


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


class RocksStore:
    """`rocksdb://` (rocksdict): survives restarts, so a start reads only the tail."""

    def __init__(self, path: Path) -> None:
        from rocksdict import Options, Rdict

        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._options = Options(raw_mode=True)
        self._db = Rdict(str(path), options=self._options)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for k, v in self._db.items():
            if k != _OFFSET_KEY and isinstance(k, bytes) and isinstance(v, bytes):
                yield k, v

    def offset(self) -> int | None:
        raw = self._db.get(_OFFSET_KEY)
        return None if raw is None else int(_OFFSET.unpack(raw)[0])

    def apply(self, writes: Iterable[Write], offset: int | None) -> None:
        from rocksdict import WriteBatch

        wb = WriteBatch(raw_mode=True)
        for k, v in writes:
            if v is None:
                wb.delete(k)
            else:
                wb.put(k, v)
        if offset is not None:
            wb.put(_OFFSET_KEY, _OFFSET.pack(offset))
        self._db.write(wb)

    def reset(self) -> None:
        from rocksdict import Rdict

        self._db.close()
        Rdict.destroy(str(self._path), self._options)
        self._db = Rdict(str(self._path), options=self._options)

    def close(self) -> None:
        self._db.close()


def open_store(kind: str, datadir: str, changelog_topic: str, partition: int) -> LocalStore:
    if kind == "memory://":
        return MemoryStore()
    return RocksStore(Path(datadir) / "direct" / f"{changelog_topic}-{partition}")
