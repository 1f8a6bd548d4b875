"""Loopback ports for the servers the tests start (workers, exporters, Prometheus,
Alertmanager, Kafka's listeners, the wall), through the package's one port helper.

Each xdist worker (`pytest -n 2`, one process per worker) takes ports from its
own block below the ephemeral range and below the demo's `DEMO_PORTS`, so two
test files running at the same time never hand out the same port.
"""

from __future__ import annotations

import os

from cxpulse.ports import PortPool

BASE = 20_000
BLOCK = 2_000  # ports per xdist worker; 6 blocks fit below 32768
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
_FIRST = BASE + (int(_WORKER) % 6 if _WORKER.isdigit() else 0) * BLOCK
_POOL = PortPool(range(_FIRST, _FIRST + BLOCK))


def free_port() -> int:
    """A port of this worker's block that nothing listens on or holds."""
    return _POOL.take()
