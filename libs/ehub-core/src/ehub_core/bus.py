"""The event bus: one interface, one Kafka implementation.

:class:`EventBus` and :class:`Subscription` are the interface every service uses; the
Kafka implementation is split along its seams, and every name is importable from here:

- :mod:`ehub_core.bus_message`: :class:`Message`, :data:`Handler`, :data:`BatchHandler`,
  :class:`BusUnavailable`,
  :data:`REFUSED_FOR_GOOD` and the trace context a message carries;
- :mod:`ehub_core.bus_producer`: :class:`KafkaBus`, which writes;
- :mod:`ehub_core.bus_consumer`: :class:`KafkaSubscription`, the consumer loop;
- :mod:`ehub_core.bus_audit`: the checks for a broker that lost its log.

These are the only modules that import aiokafka. Producers send with ``acks=all`` and no
idempotence (the embedded broker rejects InitProducerId); the outbox relay and the inbox
make delivery effectively exactly-once instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ehub_core.bus_consumer import KafkaSubscription
from ehub_core.bus_message import (
    REFUSED_FOR_GOOD,
    BatchHandler,
    BusUnavailable,
    Handler,
    Message,
    SpanFactory,
)
from ehub_core.bus_producer import KafkaBus

__all__ = [
    "REFUSED_FOR_GOOD",
    "BatchHandler",
    "BusUnavailable",
    "EventBus",
    "Handler",
    "KafkaBus",
    "KafkaSubscription",
    "Message",
    "SpanFactory",
    "Subscription",
]


class EventBus(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, messages: Sequence[Message]) -> dict[int, str]:
        """Send all messages and wait until the broker acknowledged each (acks=all).

        Returns the messages refused for good (index -> reason), which no retry would
        get through; every other message was acknowledged. Raises
        :class:`BusUnavailable` if any could not be sent for a reason that may pass."""

    async def ping(self) -> None:
        """Raise :class:`BusUnavailable` if the broker cannot be reached."""

    async def lost_topics(self) -> set[str]:
        """Topics the broker lost acknowledged records of, found since the last call."""

    def subscribe(
        self,
        topics: Sequence[str],
        group_id: str,
        handler: Handler,
        *,
        batch: BatchHandler | None = None,
    ) -> Subscription:
        """Consume ``topics``: ``handler`` per message, or ``batch`` per fetch when given
        (its transaction covers the fetch; offsets are committed after it returned)."""


class Subscription(Protocol):
    async def run(self) -> None: ...
    async def stop(self) -> None: ...
