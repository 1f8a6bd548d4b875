"""Loopback ports for the servers the tests start (workers, exporters, Prometheus,
Alertmanager, Kafka's listeners, the wall).

Why not `bind(0)`: a port found that way is released before the server binds it,
and the kernel hands out `bind(0)` and outgoing-connection ports from the same
ephemeral range (32768-60999 here), so another test file running at the same
time (`pytest -n 2`, one process per xdist worker) or any client connection can
take it in between. Each xdist worker takes ports in turn from its own block
below that range, and only ports that it can bind right now.
"""

from __future__ import annotations

import itertools
import os
import socket

BASE = 20_000
BLOCK = 2_000  # ports per xdist worker; 6 blocks fit below 32768
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
_FIRST = BASE + (int(_WORKER) % 6 if _WORKER.isdigit() else 0) * BLOCK
# a different start per process, so that a rerun soon after does not meet the
# previous run's sockets still in TIME_WAIT on the same ports
_START = _FIRST + os.getpid() % BLOCK
_NEXT = itertools.cycle([*range(_START, _FIRST + BLOCK), *range(_FIRST, _START)])


def free_port() -> int:
    """A port of this worker's block that nothing listens on or holds."""
    for _ in range(BLOCK):
        port = next(_NEXT)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_FIRST}-{_FIRST + BLOCK - 1}")
