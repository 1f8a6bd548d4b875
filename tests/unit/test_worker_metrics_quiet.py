"""The worker's /metrics reads its state only between batches.

The direct runtime applies a batch in a thread (so the loop can commit the one before),
holding its batch lock: every handler that reads engines or status holds the worker's
`quiet()` too, so a scrape never sees a batch half applied. Served over real HTTP on a
loopback port; the worker is a stand-in whose `quiet()` is a lock the test holds."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import Mapping

import pytest
from cxpulse.core.config import CoreConfig
from cxpulse.core.engine import PartitionEngine
from cxpulse.worker.metrics import build_registries, serve_metrics
from cxpulse.worker.shared import WorkerStatus


class Worker:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.reads = 0

    def quiet(self) -> asyncio.Lock:
        return self.lock

    def engines(self) -> Mapping[int, PartitionEngine]:
        self.reads += 1
        return {0: PartitionEngine(CoreConfig(), 0)}

    def status(self) -> WorkerStatus:
        self.reads += 1
        return WorkerStatus()


@pytest.mark.parametrize("path", ["/metrics", "/metrics/partitions", "/readyz"])
async def test_a_read_waits_for_the_batch_being_applied(path: str) -> None:
    worker = Worker()
    registry, own = build_registries(worker)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    runner = await serve_metrics(sock, registry, own, worker=worker)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{path}"
    try:
        await worker.lock.acquire()  # a batch is being applied
        get = asyncio.create_task(asyncio.to_thread(lambda: urllib.request.urlopen(url).read()))
        await asyncio.sleep(0.5)
        assert not get.done() and worker.reads == 0
        worker.lock.release()  # the batch is done
        body = await asyncio.wait_for(get, 10)
        assert worker.reads > 0 and body
    finally:
        if worker.lock.locked():
            worker.lock.release()
        await runner.cleanup()
