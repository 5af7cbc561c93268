"""Tracing (OpenTelemetry) and structured JSON logs that carry the trace id.

Spans are always created, so every log line has a trace id; they are recorded and
exported only when ``EHUB_OTLP_ENDPOINT`` is set. Incoming HTTP requests are traced by
:class:`ehub_core.observability.ObservabilityMiddleware`; httpx, SQLAlchemy and aiokafka
by their OpenTelemetry instrumentations.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased

_state: dict[str, Any] = {"provider": None, "libs": False}


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
        provider = TracerProvider(
            resource=Resource.create(
                {"service.name": f"ehub-{service}", "service.namespace": "ehub", "ehub.hub": hub}
            ),
            sampler=ParentBased(ALWAYS_ON) if otlp_endpoint else ALWAYS_OFF,
        )
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = otlp_endpoint.rstrip("/")
            if not endpoint.endswith("/v1/traces"):
                endpoint += "/v1/traces"
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(provider)
        _state["provider"] = provider
    if not _state["libs"]:
        from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument()
        AIOKafkaInstrumentor().instrument()
        _state["libs"] = True


def instrument_engine(engine: Any) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)


def shutdown_tracing() -> None:
    provider = _state["provider"]
    if provider is not None:
        provider.force_flush(2000)
