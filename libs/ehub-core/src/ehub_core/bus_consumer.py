"""The Kafka side of :class:`~ehub_core.bus.EventBus` that reads: :class:`KafkaSubscription`,
the consumer loop that hands each message to a handler inside the trace it carries (or
what one fetch returned to a batch handler, which enters each message's trace itself) and
commits only after the handler returned. Its checks for a broker that lost its log are
in :mod:`ehub_core.bus_audit`. Callers import it from :mod:`ehub_core.bus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from ehub_core.bus_audit import rewind_if_replaced, rewind_if_truncated
from ehub_core.bus_message import BatchHandler, Handler, Message, trace_context

log = logging.getLogger("ehub.bus")
_tracer = trace.get_tracer("ehub_core.bus")


@dataclass
class KafkaSubscription:
    """A consumer-group member that calls ``handler`` per message, committing offsets
    only after the handler returned (at-least-once; the inbox makes it exactly-once)."""

    bootstrap: str
    topics: list[str]
    group_id: str
    handler: Handler
    client_id: str = "ehub"
    # Given, each fetch goes to it in chunks of ``batch_size`` instead of to ``handler``
    # message by message (one transaction per chunk instead of per message).
    batch: BatchHandler | None = None
    batch_size: int = 200
    retry_delay: float = 1.0
    truncation_check_interval: float = 2.0
    replaced_check_interval: float = 5.0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False, repr=False)
    _rewound: dict[Any, int] = field(default_factory=dict, init=False, repr=False)
    # The last record handled per partition: (offset, event id), to tell a log that was
    # replaced (a broker that lost its log and was written again) from the one we read.
    _last: dict[Any, tuple[int, str | None]] = field(default_factory=dict, init=False, repr=False)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer %s failed; restarting", self.group_id)
                await self._sleep(self.retry_delay)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
        )
        self._consumer = consumer
        await consumer.start()
        truncation_at = checked_at = time.monotonic()
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                # Every few seconds, busy or not: one subscription reads several topics,
                # and traffic on one must not hide a partition stuck past its log's end.
                if time.monotonic() - truncation_at > self.truncation_check_interval:
                    truncation_at = time.monotonic()
                    await rewind_if_truncated(
                        consumer, group_id=self.group_id, rewound=self._rewound
                    )
                rewound: set[tuple[str, int]] = set()
                if time.monotonic() - checked_at > self.replaced_check_interval:
                    checked_at = time.monotonic()
                    rewound = await rewind_if_replaced(
                        consumer,
                        bootstrap=self.bootstrap,
                        client_id=self.client_id,
                        group_id=self.group_id,
                        last=self._last,
                    )
                fetched = [
                    Message(
                        topic=rec.topic,
                        value=rec.value,
                        key=rec.key,
                        headers=tuple(rec.headers or ()),
                        partition=rec.partition,
                        offset=rec.offset,
                    )
                    for tp, records in batches.items()
                    # fetched from a replaced log: read again from 0
                    if (tp.topic, tp.partition) not in rewound
                    for rec in records
                ]
                if self.batch is not None:
                    for i in range(0, len(fetched), self.batch_size):
                        await self.batch(fetched[i : i + self.batch_size], self._processing)
                else:
                    for message in fetched:
                        with self._processing(message):
                            await self.handler(message)
                for message in fetched:
                    self._last[(message.topic, message.partition)] = (
                        message.offset or 0,
                        message.header("event_id"),
                    )
                if batches:
                    await consumer.commit()
        finally:
            self._consumer = None
            await consumer.stop()

    @contextlib.contextmanager
    def _processing(self, message: Message) -> Iterator[None]:
        """Handle ``message`` in a CONSUMER span of the trace the message carries.

        The Kafka instrumentation's ``receive`` spans end before ``getmany`` returns, so
        without this the handler would run outside any trace: what it writes to the
        outbox (a command's reply, the saga's next command, an event for a peer) would
        start a new trace instead of continuing the producer's. A message without
        ``traceparent`` starts a trace of its own.
        """
        with _tracer.start_as_current_span(
            f"{message.topic} process",
            context=trace_context(message.headers),
            kind=SpanKind.CONSUMER,
        ) as span:
            if span.is_recording():
                span.set_attributes(
                    {
                        "messaging.system": "kafka",
                        "messaging.operation.type": "process",
                        "messaging.operation.name": "process",
                        "messaging.destination.name": message.topic,
                        "messaging.destination.partition.id": str(message.partition),
                        "messaging.kafka.offset": -1 if message.offset is None else message.offset,
                        "messaging.consumer.group.name": self.group_id,
                        "messaging.message.id": message.header("event_id") or "",
                        "ehub.event_type": message.header("event_type") or "",
                    }
                )
            yield

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def stop(self) -> None:
        self._stopping.set()
