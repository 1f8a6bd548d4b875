"""How every long-running asyncio command stops: SIGTERM or SIGINT -> clean exit 0.

Why one helper: a supervisor (systemd, Kubernetes, the demo) stops a service with
SIGTERM, a person with Ctrl-C, and both mean "finish what you are doing and
leave". Without a handler Python dies of SIGTERM at once (exit -15, no offsets
committed, no consumer closed, sockets left to the kernel), and Ctrl-C raises
KeyboardInterrupt at an arbitrary line. Here both cancel the main task, so its
`finally` blocks run (consumers stop, servers clean up, the terminal is
restored) and the command exits 0. The worker's direct runtime has its own
request_stop (it commits its last batch first); faust handles its signals itself.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: The signals that ask a service to stop.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Seconds between repeated cancels of a main task that swallowed one.
RECANCEL_S = 0.5


def run_until_signal(main: Coroutine[Any, Any, T]) -> T | int:
    """`asyncio.run(main)`, but SIGTERM/SIGINT cancel `main` and the result is exit code 0.

    The handlers are installed even when the process inherited SIGINT ignored
    (a command started in the background by a shell), so Ctrl-C on a foreground
    job and a test's SIGINT both reach it."""

    async def guarded() -> T | int:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(main)
        asked = False

        def stop() -> None:
            nonlocal asked
            asked = True
            task.cancel()
            loop.call_later(RECANCEL_S, again)

        def again() -> None:
            # A library that turns the CancelledError into its own error (aiohttp while
            # connecting; `top` then shows "unreachable" and refreshes on) swallows the
            # cancel: ask again until the task is done.
            if not task.done():
                task.cancel()
                loop.call_later(RECANCEL_S, again)

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop)
        try:
            return await task
        except asyncio.CancelledError:
            if asked:
                return 0
            raise
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    return asyncio.run(guarded())
