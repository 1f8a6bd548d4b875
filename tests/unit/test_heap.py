"""`FrozenHeap`: after each evaluation the exporter's state leaves the collector's sight,
and cyclic garbage the freeze kept is still freed by the periodic full collection."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from cxpulse.heap import FrozenHeap


class Node:
    """A reference cycle's member: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test run is collected as usual


def test_after_an_evaluation_what_lives_is_frozen() -> None:
    kept = [Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    FrozenHeap().settle(0.0)
    assert gc.get_freeze_count() >= before + len(kept)  # full collections skip them


def test_cyclic_garbage_kept_by_the_freeze_is_freed_by_the_periodic_full_collection() -> None:
    heap = FrozenHeap(unfreeze_every_s=600.0)
    node = Node()
    gone = weakref.ref(node)
    heap.settle(0.0)  # frozen while still referenced
    del node
    heap.settle(599.0)
    gc.collect()  # frozen objects are out of reach of any collection
    assert gone() is not None
    heap.settle(600.0)  # due: unfrozen and collected in full
    assert gone() is None


def test_the_exporter_freezes_after_each_evaluation() -> None:
    import asyncio

    from cxpulse.core.config import CoreConfig
    from cxpulse.exporter.service import ExporterState, _tick
    from cxpulse.settings import Settings

    settings = Settings.model_validate({"eval_interval": "100ms", "eval_min_interval": "10ms"})
    state = ExporterState(settings, CoreConfig(), 1)
    state.caught_up_once = True
    seen: list[bool] = []

    class Recording(FrozenHeap):
        def settle(self, now: float) -> None:
            seen.append(state.snapshot.ready)  # an evaluation was rendered before

    async def run() -> None:
        consume = asyncio.create_task(asyncio.sleep(0.05))  # stops: so does `_tick`
        await _tick(state, consume, asyncio.Lock(), heap=Recording())

    with pytest.raises(RuntimeError, match="consumer stopped"):
        asyncio.run(run())
    assert seen == [True]
