"""What every broker-backed benchmark needs: a broker (the given one or a throw-away
one from cxpulse.kafka.broker) and its topics. One copy, imported by each bench."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PARTITIONS = 4


async def create_topics(bootstrap: str, names: list[str], partitions: int = PARTITIONS) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """Yield `bootstrap` if given, else start a throw-away broker and remove it after."""
    if bootstrap is not None:
        yield bootstrap
        return
    from cxpulse.kafka.broker import KafkaBroker

    started = KafkaBroker().start()
    try:
        yield started.bootstrap
    finally:
        started.stop(remove_data=True)
