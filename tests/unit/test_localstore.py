"""The direct runtime's local copy of a changelog partition (memory and RocksDB)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cxpulse.changelog.store import PartitionStore
from cxpulse.worker.localstore import MemoryStore, RocksStore, open_store


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


# ----------------------------------------------------------------------------- corruption


def _filled(path: Path, n: int = 20_000) -> dict[bytes, bytes]:
    """A closed RocksDB copy with `n` records in `.sst` files (close flushes)."""
    import random

    rng = random.Random(7)
    data = {f"0/s/t{i:06d}".encode(): rng.randbytes(100) for i in range(n)}
    store = RocksStore(path)
    store.apply(list(data.items()), n)
    store.close()
    assert list(path.glob("*.sst")), "close() must flush the memtable to .sst files"
    return data


def test_corrupt_block_is_reported_not_a_short_read(tmp_path: Path) -> None:
    """Random bytes over part of an `.sst`: reading raises instead of ending early
    (rocksdict's `items()` stops silently at the bad block)."""
    import os

    from cxpulse.worker.localstore import LocalStoreCorrupt

    path = tmp_path / "p0"
    data = _filled(path)
    sst = max(path.glob("*.sst"), key=lambda f: f.stat().st_size)
    with sst.open("r+b") as fh:
        fh.seek(sst.stat().st_size // 3)
        fh.write(os.urandom(64 * 1024))
    store = RocksStore(path)
    with pytest.raises(LocalStoreCorrupt) as err:
        got = dict(store.items())
        assert len(got) < len(data)  # only reached if the scan was silently cut short
    assert err.value.reason == "read"
    assert "checksum" in str(err.value)
    aside = store.quarantine()
    assert aside is not None and Path(aside).is_dir() and ".corrupt-" in aside
    assert store.offset() is None and list(store.items()) == []  # a fresh, empty copy
    store.apply([(b"0/s/x", b"1")], 3)
    assert dict(store.items()) == {b"0/s/x": b"1"}
    store.close()


@pytest.mark.parametrize("damage", ["missing_current", "removed_sst"])
def test_copy_that_does_not_open_is_moved_aside(tmp_path: Path, damage: str) -> None:
    from cxpulse.worker.localstore import LocalStoreCorrupt, open_or_quarantine, store_path

    path = store_path(str(tmp_path), "cl", 2)
    _filled(path, 2000)
    if damage == "missing_current":
        (path / "CURRENT").unlink()
    else:
        for sst in path.glob("*.sst"):
            sst.unlink()
    with pytest.raises(LocalStoreCorrupt):
        RocksStore(path)
    store, bad, aside = open_or_quarantine("rocksdb://", str(tmp_path), "cl", 2)
    assert bad is not None and bad.reason == "open"
    assert aside is not None and Path(aside).is_dir()
    assert store.offset() is None and list(store.items()) == []
    store.close()


def test_a_held_lock_is_not_corruption(tmp_path: Path) -> None:
    """Two workers on one datadir: an error, but the healthy copy stays where it is."""
    from cxpulse.worker.localstore import LocalStoreCorrupt, open_or_quarantine

    first = open_store("rocksdb://", str(tmp_path), "cl", 0)
    first.apply([(b"0/s/a", b"1")], 0)
    with pytest.raises(Exception) as err:
        open_or_quarantine("rocksdb://", str(tmp_path), "cl", 0)
    assert not isinstance(err.value, LocalStoreCorrupt)
    assert not list((tmp_path / "direct").glob("*.corrupt-*"))
    assert dict(first.items()) == {b"0/s/a": b"1"}
    first.close()
