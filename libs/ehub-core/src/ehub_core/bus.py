"""The event bus: one interface, one Kafka implementation.

This is the only module that imports aiokafka. Producers send with ``acks=all`` and no
idempotence (the embedded broker rejects InitProducerId); the outbox relay and the inbox
make delivery effectively exactly-once instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    OffsetOutOfRangeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

log = logging.getLogger("ehub.bus")
_tracer = trace.get_tracer("ehub_core.bus")


def _trace_context(headers: Sequence[tuple[str, bytes]]) -> Context | None:
    """The trace context a message carries, or None.

    A record can carry ``traceparent`` twice: the one stored with the event (outbox)
    and, after it, the one the Kafka instrumentation added for its producer span (a
    child of the first). The last one wins, so a consumer continues from the send.
    """
    carrier = {k: v.decode("latin-1") for k, v in headers if k in ("traceparent", "tracestate")}
    if "traceparent" not in carrier:
        return None
    return propagate.extract(carrier)


def _attach_trace(headers: Sequence[tuple[str, bytes]]) -> Token[Context] | None:
    ctx = _trace_context(headers)
    return None if ctx is None else otel_context.attach(ctx)


class Message(NamedTuple):
    """One record on the bus (a NamedTuple: the relay builds thousands per second)."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None
    offset: int | None = None

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode()
        return None


Handler = Callable[[Message], Awaitable[None]]


class BusUnavailable(RuntimeError):
    """The broker could not be reached; the caller retries later."""


# What no retry can fix: the message itself is refused (too large, an invalid topic
# name, a record the broker cannot read). The outbox relay dead-letters such a row.
REFUSED_FOR_GOOD = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    CorruptRecordException,
    UnsupportedForMessageFormatError,
)


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

    def subscribe(self, topics: Sequence[str], group_id: str, handler: Handler) -> Subscription: ...


class Subscription(Protocol):
    async def run(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class KafkaBus:
    """aiokafka-backed :class:`EventBus`."""

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
                token = _attach_trace(m.headers)
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
        ends at or before the first record of our last write there. That end is the
        high watermark of a fetch at that record (the embedded broker's ListOffsets
        under-reports, its fetch does not); OFFSET_OUT_OF_RANGE says the same. The
        outbox relay then publishes its recent rows again, and the consumers' inboxes
        skip what they had. A broker that cannot be reached reports nothing new (the
        next audit asks again).
        """
        lost, self._lost = self._lost, set()
        if not self._last_low:
            return lost
        marks = dict(self._last_low)
        partitions = [TopicPartition(t, p) for t, p in marks]
        # A fresh consumer each time: a high watermark it reports comes from this fetch.
        auditor = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-audit",
            enable_auto_commit=False,
            auto_offset_reset="none",
            max_partition_fetch_bytes=4096,
            request_timeout_ms=self.request_timeout_ms,
        )
        try:
            await auditor.start()
            auditor.assign(partitions)
            for tp in partitions:
                mark = marks[(tp.topic, tp.partition)]
                auditor.seek(tp, mark)
                try:
                    got = await auditor.getmany(tp, timeout_ms=1000, max_records=1)
                except OffsetOutOfRangeError:
                    lost.add(tp.topic)
                    continue
                if got.get(tp):
                    self._suspect.discard((tp.topic, tp.partition))
                    continue  # a record at or after our mark: the log is there
                high = auditor.highwater(tp)
                if high is not None and high <= mark:
                    # Twice in a row before it counts: one empty fetch is not proof.
                    key = (tp.topic, tp.partition)
                    if key in self._suspect:
                        self._suspect.discard(key)
                        lost.add(tp.topic)
                    else:
                        self._suspect.add(key)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.debug("broker audit skipped: %r", exc)
            return lost
        finally:
            await auditor.stop()
        for key, mark in marks.items():
            if key[0] in lost:
                log.warning(
                    "%s[%d] no longer holds offset %d, acknowledged to us: the broker lost its log",
                    key[0],
                    key[1],
                    mark,
                )
                if self._last_low.get(key) == mark:
                    del self._last_low[key]
        return lost

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
        self, topics: Sequence[str], group_id: str, handler: Handler
    ) -> KafkaSubscription:
        return KafkaSubscription(self.bootstrap, list(topics), group_id, handler, self.client_id)


@dataclass
class KafkaSubscription:
    """A consumer-group member that calls ``handler`` per message, committing offsets
    only after the handler returned (at-least-once; the inbox makes it exactly-once)."""

    bootstrap: str
    topics: list[str]
    group_id: str
    handler: Handler
    client_id: str = "ehub"
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
                    await self._rewind_if_truncated(consumer)
                rewound: set[tuple[str, int]] = set()
                if time.monotonic() - checked_at > self.replaced_check_interval:
                    checked_at = time.monotonic()
                    rewound = await self._rewind_if_replaced(consumer)
                for tp, records in batches.items():
                    if (tp.topic, tp.partition) in rewound:
                        continue  # fetched from the replaced log: read again from 0
                    for rec in records:
                        message = Message(
                            topic=rec.topic,
                            value=rec.value,
                            key=rec.key,
                            headers=tuple(rec.headers or ()),
                            partition=rec.partition,
                            offset=rec.offset,
                        )
                        with self._processing(message):
                            await self.handler(message)
                        self._last[(rec.topic, rec.partition)] = (
                            rec.offset,
                            message.header("event_id"),
                        )
                if batches:
                    await consumer.commit()
        finally:
            self._consumer = None
            await consumer.stop()

    async def _rewind_if_replaced(self, consumer: AIOKafkaConsumer) -> set[tuple[str, int]]:
        """A broker that lost its log (the embedded one, restarted) numbers new records
        from 0 again; once they pass our position, :meth:`_rewind_if_truncated` sees
        nothing wrong and everything before our position in the new log would be
        skipped. So every few seconds, look again at the last record handled on each
        partition: another event there, or none (the log ends before it), means the log
        was replaced, and the partition is read again from the beginning (the inbox
        skips what was handled). Returns the partitions rewound."""
        assigned = {(tp.topic, tp.partition): tp for tp in consumer.assignment()}
        marks = {k: v for k, v in self._last.items() if k in assigned}
        rewound: set[tuple[str, int]] = set()
        if not marks:
            return rewound
        # A fresh consumer each time: a high watermark it reports comes from this fetch.
        auditor = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-audit",
            enable_auto_commit=False,
            auto_offset_reset="none",
            max_partition_fetch_bytes=64 * 1024,
        )
        try:
            await auditor.start()
            auditor.assign([assigned[k] for k in marks])
            for key, (offset, event_id) in marks.items():
                tp = assigned[key]
                auditor.seek(tp, offset)
                try:
                    got = await auditor.getmany(tp, timeout_ms=1000, max_records=1)
                except OffsetOutOfRangeError:
                    got, gone = {}, True
                else:
                    high = auditor.highwater(tp)
                    gone = not got.get(tp) and high is not None and high <= offset
                records = got.get(tp) or []
                there = next((r for r in records if r.offset == offset), None)
                other = there is not None and dict(there.headers or ()).get(
                    "event_id", b""
                ).decode() != (event_id or "")
                if gone or other:
                    log.warning(
                        "%s: %s[%d] no longer holds the record %d we handled (broker "
                        "lost its log?); reading it again from the beginning",
                        self.group_id,
                        tp.topic,
                        tp.partition,
                        offset,
                    )
                    del self._last[key]
                    await consumer.seek_to_beginning(tp)
                    rewound.add(key)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.debug("%s: replaced-log check skipped: %r", self.group_id, exc)
        finally:
            await auditor.stop()
        return rewound

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
            context=_trace_context(message.headers),
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

    async def _rewind_if_truncated(self, consumer: AIOKafkaConsumer) -> None:
        """A broker that lost its log (the embedded one after a restart) starts the
        partition again at offset 0 while we sit further on; it never answers
        OFFSET_OUT_OF_RANGE, so without this check new messages would be skipped
        forever. Rewinding re-delivers at most what the inbox then skips.

        The embedded broker (Tansu 0.6.0) also under-reports a partition's end after a
        multi-record produce (the last batch's base offset + 1), which looks the same;
        the last fetch's high watermark is right, so it decides, and a partition is
        rewound at most once per end offset it reports."""
        partitions = list(consumer.assignment())
        if not partitions:
            return
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            position = await consumer.position(tp)
            end = ends.get(tp, position)
            # The high watermark of the last fetch is right where end_offsets is not.
            high = consumer.highwater(tp)
            if high is not None and position <= high:
                continue
            if position > end and self._rewound.get(tp) != end:
                log.warning(
                    "%s: log of %s ends at %d, before our position %d (broker lost data?); "
                    "rewinding to the beginning",
                    self.group_id,
                    tp,
                    end,
                    position,
                )
                self._rewound[tp] = end
                await consumer.seek_to_beginning(tp)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def stop(self) -> None:
        self._stopping.set()
