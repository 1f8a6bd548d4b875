"""Sends dead-letter records to Kafka.

Kept apart from the pure `cxpulse.core.deadletter` so the record can be built
and tested without a broker; this shell only hands it to a producer the
caller owns (the worker shares one producer for all its output).
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from cxpulse.core.deadletter import DeadLetter


class DeadLetterWriter:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    async def send(self, record: DeadLetter) -> asyncio.Future[RecordMetadata]:
        """Queue the record; the returned future resolves once the broker acknowledged it.

        The key is the original key, so the record lands on the partition its
        source key would use and per-key order survives into the dead letter.
        """
        future: asyncio.Future[RecordMetadata] = await self._producer.send(
            self.topic, value=record.value, key=record.key, headers=record.headers
        )
        return future

    async def send_and_wait(self, record: DeadLetter) -> RecordMetadata:
        return await (await self.send(record))
