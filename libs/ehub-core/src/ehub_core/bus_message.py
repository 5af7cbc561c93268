"""What travels on the event bus: :class:`Message`, the handler type, the two kinds of
send failure (:class:`BusUnavailable`, :data:`REFUSED_FOR_GOOD`) and the trace context a
message carries in its headers. Used by :mod:`ehub_core.bus_producer` and
:mod:`ehub_core.bus_consumer`; callers import these names from :mod:`ehub_core.bus`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from contextvars import Token
from typing import NamedTuple

from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.context import Context


def trace_context(headers: Sequence[tuple[str, bytes]]) -> Context | None:
    """The trace context a message carries, or None.

    A record can carry ``traceparent`` twice: the one stored with the event (outbox)
    and, after it, the one the Kafka instrumentation added for its producer span (a
    child of the first). The last one wins, so a consumer continues from the send.
    """
    carrier = {k: v.decode("latin-1") for k, v in headers if k in ("traceparent", "tracestate")}
    if "traceparent" not in carrier:
        return None
    return propagate.extract(carrier)


def attach_trace(headers: Sequence[tuple[str, bytes]]) -> Token[Context] | None:
    ctx = trace_context(headers)
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
# Enters the trace a message carries (a CONSUMER span) for the work done on it.
SpanFactory = Callable[[Message], AbstractContextManager[None]]
# Handles what one fetch returned (in order per partition), entering each message's span.
BatchHandler = Callable[[Sequence[Message], SpanFactory], Awaitable[None]]


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
