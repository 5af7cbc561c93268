"""Tracing (OpenTelemetry) and structured JSON logs that carry the trace id.

Spans are always created, so every log line has a trace id; they are recorded and
exported only when ``EHUB_OTLP_ENDPOINT`` is set. Incoming HTTP requests are traced by
:class:`ehub_core.observability.ObservabilityMiddleware`; httpx, SQLAlchemy and aiokafka
by their OpenTelemetry instrumentations; the handling of each consumed message by
:class:`ehub_core.bus.KafkaSubscription`, in the trace the message carries.

One order is one trace: the trace context travels in HTTP headers, in outbox rows and
Kafka headers, and in signed envelopes. Work that arrives on its own but belongs to an
earlier trace (a carrier's tracking webhook for a shipment booked by an order) stores
that trace's ``traceparent`` (:func:`current_traceparent`) and continues it with
:func:`resumed_trace`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import AttributeValue

_state: dict[str, Any] = {"provider": None, "db_provider": None, "libs": False}
_tracer = trace.get_tracer("ehub_core.telemetry")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, service, hub, trace."""

    def __init__(self, service: str, hub: str) -> None:
        super().__init__()
        self.service = service
        self.hub = hub

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
            "hub": self.hub,
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = f"{ctx.trace_id:032x}"
            entry["span_id"] = f"{ctx.span_id:016x}"
        access = getattr(record, "access", None)
        if access is not None:  # an access-log line (ehub_core.observability)
            entry.update(access)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(service: str, hub: str, level: str = "INFO", as_json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter(service, hub))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    logging.getLogger("aiokafka").setLevel("WARNING")
    logging.getLogger("httpx").setLevel("WARNING")


def setup_tracing(service: str, hub: str, otlp_endpoint: str | None) -> None:
    """Install the tracer provider once per process and instrument client libraries."""
    if _state["provider"] is None:
        # Without an exporter nothing would ever read a recorded span: spans are then
        # created unsampled (cheap, non-recording) but still carry trace ids, so logs
        # and propagated traceparent headers keep one trace across services and hubs.
        resource = Resource.create(
            {"service.name": f"ehub-{service}", "service.namespace": "ehub", "ehub.hub": hub}
        )
        provider = TracerProvider(
            resource=resource, sampler=ParentBased(ALWAYS_ON) if otlp_endpoint else ALWAYS_OFF
        )
        # Database statements are recorded only inside a trace. On their own they are a
        # background loop polling (the outbox relay every 0.1-0.5 s, the federation
        # delivery worker, the saga timer): each statement would be a one-span trace.
        db_provider = TracerProvider(
            resource=resource, sampler=ParentBased(ALWAYS_OFF) if otlp_endpoint else ALWAYS_OFF
        )
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = otlp_endpoint.rstrip("/")
            if not endpoint.endswith("/v1/traces"):
                endpoint += "/v1/traces"
            processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
            provider.add_span_processor(processor)
            db_provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        _state["provider"] = provider
        _state["db_provider"] = db_provider
    if not _state["libs"]:
        from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument()
        AIOKafkaInstrumentor().instrument()
        _state["libs"] = True


def instrument_engine(engine: Any) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=_state["db_provider"]
    )


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to store with work that continues
    later (see :func:`resumed_trace`); None outside a trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def resumed_trace(
    traceparent: str | None,
    name: str,
    attributes: dict[str, AttributeValue] | None = None,
) -> Iterator[None]:
    """Run the block in a span of the stored trace ``traceparent``, linked to the
    current span.

    For work that arrives on its own yet belongs to an earlier trace: a carrier's
    tracking webhook starts a trace of its own (the carrier's), but what the hub does
    with the event (the outbox rows it writes, and so everything downstream) continues
    the trace of the order that booked the shipment. The link keeps the way back to the
    request that brought the event. Without a valid ``traceparent`` the block runs in
    the current trace.
    """
    parent = propagate.extract({"traceparent": traceparent}) if traceparent else None
    stored = trace.get_current_span(parent).get_span_context() if parent else None
    if stored is None or not stored.is_valid:
        yield
        return
    current = trace.get_current_span().get_span_context()
    links = [Link(current)] if current.is_valid and current.trace_id != stored.trace_id else []
    with _tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.INTERNAL, links=links, attributes=attributes
    ):
        yield


def shutdown_tracing() -> None:
    provider = _state["provider"]
    if provider is not None:
        provider.force_flush(2000)  # the database spans share its span processor
