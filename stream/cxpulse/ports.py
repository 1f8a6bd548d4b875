"""Loopback ports for the servers cxpulse starts itself (the demo's parts, the
broker launcher, the tests' servers): the one free-port helper.

Why not `bind(0)`: a port found that way is released before the server binds
it, and the kernel hands out `bind(0)` and outgoing-connection ports from the
same ephemeral range (32768-60999 on Linux; every Kafka client opens several).
Once Alertmanager found its port taken in between ("bind: address already in
use"), which stopped the demo. Ports below that range are only ever taken on
purpose, so a pool of them, checked free when handed out, is safe.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

#: The demo's and the launcher's range: below the ephemeral range and below the
#: blocks the test suite takes its ports from (tests/support/ports.py).
DEMO_PORTS = range(10_000, 20_000)


class PortPool:
    """Hands out the ports of `ports`, skipping any that cannot be bound right now.

    In turn, from a start that differs per process (a rerun soon after does not
    meet the previous run's sockets still in TIME_WAIT), when the range is this
    process's own (a test worker's block); at random when several processes draw
    from the same range (`randomly`: two clones' demos side by side, whose pids,
    and so their starts, are close: walking in turn, the second took a port the
    first had chosen but not yet bound)."""

    def __init__(self, ports: range, host: str = "127.0.0.1", randomly: bool = False) -> None:
        self.ports = ports
        self.host = host
        self.randomly = randomly
        start = os.getpid() % len(ports)
        self._next = itertools.cycle([*ports[start:], *ports[:start]])

    def take(self) -> int:
        """A port of the pool that nothing listens on or holds at this moment."""
        for _ in range(len(self.ports)):
            port = random.choice(self.ports) if self.randomly else next(self._next)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((self.host, port))
                except OSError:
                    continue
                return int(port)
        raise RuntimeError(f"no free port in {self.ports.start}-{self.ports.stop - 1}")


#: `cxpulse wall`'s default port (the worker's index page links to it).
WALL_PORT = 9470

_DEFAULT = PortPool(DEMO_PORTS, randomly=True)


def free_port() -> int:
    """A free loopback port of `DEMO_PORTS` (see the module docstring for why not 0)."""
    return _DEFAULT.take()
