"""The Kafka side of :class:`~ehub_core.bus.EventBus` that writes: :class:`KafkaBus`.

Producers send with ``acks=all`` and no idempotence (the embedded broker rejects
InitProducerId); the outbox relay and the inbox make delivery effectively exactly-once
instead. The bus remembers the offsets the broker acknowledged, so that
:meth:`KafkaBus.lost_topics` can tell when the broker lost them (the audit itself is in
:mod:`ehub_core.bus_audit`). Callers import :class:`KafkaBus` from :mod:`ehub_core.bus`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from opentelemetry import context as otel_context

from ehub_core.bus_audit import lost_acknowledged
from ehub_core.bus_consumer import KafkaSubscription
from ehub_core.bus_message import (
    REFUSED_FOR_GOOD,
    BatchHandler,
    BusUnavailable,
    Handler,
    Message,
    attach_trace,
)


@dataclass
class KafkaBus:
    """aiokafka-backed :class:`~ehub_core.bus.EventBus`."""

    bootstrap: str
    client_id: str = "ehub"
    request_timeout_ms: int = 10_000
    _producer: AIOKafkaProducer | None = field(default=None, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    # Per (topic, partition), as the broker acknowledged our writes: the lowest offset of
    # the last publish that wrote there and the highest offset; and the topics found to
    # have lost acknowledged records (see :meth:`lost_topics`).
    _last_low: dict[tuple[str, int], int] = field(default_factory=dict, init=False, repr=False)
    _acked_max: dict[tuple[str, int], int] = field(default_factory=dict, init=False, repr=False)
    _lost: set[str] = field(default_factory=set, init=False, repr=False)
    _suspect: set[tuple[str, int]] = field(default_factory=set, init=False, repr=False)

    async def start(self) -> None:
        async with self._lock:
            if self._producer is not None:
                return
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                acks="all",
                enable_idempotence=False,
                linger_ms=2,
                max_batch_size=256 * 1024,
                request_timeout_ms=self.request_timeout_ms,
            )
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                await producer.stop()
                raise BusUnavailable(f"broker {self.bootstrap} unreachable: {exc}") from exc
            self._producer = producer

    async def stop(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, messages: Sequence[Message]) -> dict[int, str]:
        if self._producer is None:
            await self.start()
        producer = self._producer
        assert producer is not None
        # Offsets acknowledged before this publish began: the broker gives ours later ones.
        before = dict(self._acked_max)
        refused: dict[int, str] = {}
        try:
            futures: list[tuple[int, asyncio.Future[Any]]] = []
            for i, m in enumerate(messages):
                # Send inside the trace the event was recorded in (its stored
                # traceparent), so the producer span and any header the Kafka
                # instrumentation adds continue that trace, not the relay's.
                token = attach_trace(m.headers)
                try:
                    sent = await producer.send(
                        m.topic,
                        m.value,
                        key=m.key,
                        headers=list(m.headers),
                        partition=m.partition,
                    )
                    futures.append((i, sent))
                except REFUSED_FOR_GOOD as exc:
                    refused[i] = f"{type(exc).__name__}: {exc}"
                finally:
                    if token is not None:
                        otel_context.detach(token)
            results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
        except KafkaError as exc:
            raise BusUnavailable(f"publish failed: {exc!r}") from exc
        acks = []
        for (i, _), result in zip(futures, results, strict=True):
            if isinstance(result, REFUSED_FOR_GOOD):
                refused[i] = f"{type(result).__name__}: {result}"
            elif isinstance(result, KafkaError):
                raise BusUnavailable(f"publish failed: {result!r}") from result
            elif isinstance(result, BaseException):
                raise result
            else:
                acks.append(result)
        self._note_acks(acks, before)
        return refused

    def _note_acks(self, acks: Sequence[Any], before: dict[tuple[str, int], int]) -> None:
        low: dict[tuple[str, int], int] = {}
        high: dict[tuple[str, int], int] = {}
        for meta in acks:
            tp = (meta.topic, meta.partition)
            low[tp] = min(low.get(tp, meta.offset), meta.offset)
            high[tp] = max(high.get(tp, meta.offset), meta.offset)
        for tp, first in low.items():
            if first <= before.get(tp, -1):
                # Offsets the broker had given an earlier, finished write: it lost its log.
                self._lost.add(tp[0])
                self._acked_max[tp] = high[tp]
            else:
                self._acked_max[tp] = max(self._acked_max.get(tp, -1), high[tp])
        self._last_low.update(low)

    async def lost_topics(self) -> set[str]:
        """Topics whose partitions lost records the broker acknowledged to us.

        Kafka with replication and ``acks=all`` keeps what it acknowledged; the embedded
        broker keeps its log in memory and forgets it when it restarts (and a real
        cluster can lose a tail in an unclean leader election). Two signs: a write that
        is given offsets an earlier, finished write had; or a partition whose log now
        ends at or before the first record of our last write there
        (:func:`~ehub_core.bus_audit.lost_acknowledged`). The outbox relay then publishes
        its recent rows again, and the consumers' inboxes skip what they had. A broker
        that cannot be reached reports nothing new (the next audit asks again).
        """
        lost, self._lost = self._lost, set()
        if not self._last_low:
            return lost
        return await lost_acknowledged(
            bootstrap=self.bootstrap,
            client_id=self.client_id,
            request_timeout_ms=self.request_timeout_ms,
            last_low=self._last_low,
            suspect=self._suspect,
            lost=lost,
        )

    async def ping(self) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap, request_timeout_ms=3000, client_id=self.client_id
        )
        try:
            await asyncio.wait_for(admin.start(), 5)
            await asyncio.wait_for(admin.list_topics(), 5)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise BusUnavailable(f"broker {self.bootstrap} unreachable: {exc!r}") from exc
        finally:
            await admin.close()

    def subscribe(
        self,
        topics: Sequence[str],
        group_id: str,
        handler: Handler,
        *,
        batch: BatchHandler | None = None,
    ) -> KafkaSubscription:
        return KafkaSubscription(
            self.bootstrap, list(topics), group_id, handler, self.client_id, batch=batch
        )
