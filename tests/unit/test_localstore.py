"""The direct runtime's local copy of a changelog partition (memory and RocksDB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.worker.localstore import MemoryStore, RocksStore, open_store
from stream.worker.persistence import PartitionStore


@pytest.mark.parametrize("kind", ["memory", "rocksdb"])
def test_writes_deletes_and_offset(tmp_path: Path, kind: str) -> None:
    store = MemoryStore() if kind == "memory" else RocksStore(tmp_path / "p0")
    assert store.offset() is None and list(store.items()) == []
    store.apply([(b"0/s/a", b"1"), (b"0/s/b", b"2")], 41)
    store.apply([(b"0/s/a", None), (b"0/s/c", b"3")], 43)
    assert dict(store.items()) == {b"0/s/b": b"2", b"0/s/c": b"3"}
    assert store.offset() == 43
    store.apply([], None)  # no changelog record: the offset stays
    assert store.offset() == 43
    store.reset()
    assert store.offset() is None and list(store.items()) == []
    store.close()


def test_rocksdb_survives_reopen_and_hides_its_offset_key(tmp_path: Path) -> None:
    """After a restart the copy and its offset are back; the offset key is never
    mistaken for state (recovery of partition 0 sees only `0/` keys)."""
    path = tmp_path / "direct" / "changelog-0"
    store = RocksStore(path)
    store.apply([(b"0/s/a", b"x"), (b"0/m", b"not-a-marker")], 7)
    store.close()
    again = open_store("rocksdb://", str(tmp_path), "changelog", 0)
    assert again.offset() == 7
    assert dict(again.items()) == {b"0/s/a": b"x", b"0/m": b"not-a-marker"}
    again.close()


def test_memory_store_rebuilds_the_same_partition_state() -> None:
    """What recovery reads from the copy equals what it reads from the writes."""
    ps, _ = PartitionStore.recover(0, [], epoch=5)
    writes = ps.batch_writes({"t:1": b"a", "t:2": b"b"}, 1000)
    writes += ps.batch_writes({"t:1": None}, 2000)
    store = MemoryStore()
    store.apply(writes, len(writes) - 1)
    _, rec = PartitionStore.recover(0, store.items(), epoch=6)
    assert rec.items == {"t:2": b"b"}
