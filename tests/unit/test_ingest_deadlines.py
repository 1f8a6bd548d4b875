"""The gateway's shared produce deadline (`Deadlines`): a wait past its deadline is
cancelled and known as ours (503), a wait that ended in time is never touched, and a
cancellation from elsewhere (client gone, shutdown) is not mistaken for a deadline."""

from __future__ import annotations

import asyncio
import contextlib

from cxpulse.ingest.gateway import Deadlines


async def _produce(deadlines: Deadlines, fut: asyncio.Future[None], log: list[str]) -> None:
    """What the gateway's handler does around its produce."""
    watched = deadlines.watch(asyncio.get_running_loop())
    try:
        await fut
        log.append("acked")
    except asyncio.CancelledError:
        if not deadlines.expired(watched):
            log.append("cancelled elsewhere")
            raise
        log.append("503")
    finally:
        watched[1] = None


def test_a_wait_past_its_deadline_answers_503_and_one_in_time_is_untouched() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        d = Deadlines(timeout_s=0.2, tick_s=0.02)
        sweeper = asyncio.create_task(d.run())
        log: list[str] = []
        slow, quick = loop.create_future(), loop.create_future()
        t0 = loop.time()
        slow_task = asyncio.create_task(_produce(d, slow, log))
        quick_task = asyncio.create_task(_produce(d, quick, log))
        await asyncio.sleep(0.05)
        quick.set_result(None)
        await quick_task
        await slow_task  # returns (no CancelledError): the deadline was ours
        waited = loop.time() - t0
        assert log == ["acked", "503"]
        assert slow.cancelled()
        assert 0.2 <= waited < 0.2 + 0.02 + 0.15, waited  # a tick late at most (+ slack)
        assert not slow_task.cancelled() and slow_task.cancelling() == 0
        # an entry whose produce ended is dropped by the next sweep, never cancelled
        assert d.sweep(loop.time() + 10) == 0 and not d._entries
        sweeper.cancel()

    asyncio.run(main())


def test_a_cancellation_from_elsewhere_is_not_taken_for_the_deadline() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        d = Deadlines(timeout_s=60)
        log: list[str] = []
        task = asyncio.create_task(_produce(d, loop.create_future(), log))
        await asyncio.sleep(0)
        task.cancel()  # the client went away
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled() and log == ["cancelled elsewhere"]

    asyncio.run(main())


def test_the_sweep_stops_at_the_first_live_wait_and_keeps_order() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        d = Deadlines(timeout_s=1.0)
        futs = [loop.create_future() for _ in range(3)]
        log: list[str] = []
        tasks = [asyncio.create_task(_produce(d, f, log)) for f in futs]
        await asyncio.sleep(0)
        start = d._entries[0][0] - 1.0
        assert d.sweep(start + 0.5) == 0 and len(d._entries) == 3
        futs[0].set_result(None)
        await tasks[0]
        assert d.sweep(start + 2.0) == 2  # the two still waiting, not the acked one
        await asyncio.gather(*tasks[1:])
        assert log == ["acked", "503", "503"] and not d._entries

    asyncio.run(main())
