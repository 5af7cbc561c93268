"""One ASGI middleware for the per-request observability of every service: a W3C
trace-context-aware server span, Prometheus request metrics and the access log.

It replaces the generic OpenTelemetry ASGI instrumentation, which cost ~85 µs per request
here (measured in process: 45 µs bare FastAPI POST vs 130 µs instrumented, spans
unsampled); this one does only what ehub needs: extract ``traceparent``, one SERVER span
named by route template with the stable HTTP semantic-convention attributes, and the
counters/histogram, for a few µs.

The access log is one line per request on the ``ehub.access`` logger (JSON through
:class:`ehub_core.telemetry.JsonFormatter`): method, route template, status, latency in
ms, trace id, and the partner id when the request was authenticated as a partner's (what
authenticated it left in ``scope["state"]["partner"]``). ``EHUB_ACCESS_LOG=false`` turns
it off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ehub_core import metrics

UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
access_log = logging.getLogger("ehub.access")


class _ScopeHeaders(Getter[list[tuple[bytes, bytes]]]):
    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        wanted = key.lower().encode("latin-1")
        values = [v.decode("latin-1") for k, v in carrier if k.lower() == wanted]
        return values or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER = _ScopeHeaders()


class ObservabilityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        service: str,
        untraced: Iterable[str] = UNTRACED,
        access: bool = True,
    ) -> None:
        self.app = app
        self.service = service
        self.access = access
        self.untraced = frozenset(untraced)
        self.tracer = trace.get_tracer("ehub_core.observability")
        # Label lookups cost more than the increments; keep the children.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"]
        trace_id: str | None = None
        try:
            if scope["path"] in self.untraced:
                await self.app(scope, receive, send_wrapper)
            else:
                parent = propagate.extract(scope.get("headers") or [], getter=_GETTER)
                with self.tracer.start_as_current_span(
                    method,
                    context=parent,
                    kind=SpanKind.SERVER,
                    attributes={"http.request.method": method, "url.path": scope["path"]},
                    record_exception=True,
                    set_status_on_exception=True,
                ) as span:
                    context = span.get_span_context()
                    trace_id = f"{context.trace_id:032x}" if context.is_valid else None
                    await self.app(scope, receive, send_wrapper)
                    if span.is_recording():
                        route = getattr(scope.get("route"), "path", None)
                        if route:
                            span.update_name(f"{method} {route}")
                            span.set_attribute("http.route", route)
                        span.set_attribute("http.response.status_code", status)
                        if status >= 500:
                            span.set_status(StatusCode.ERROR)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            seconds = time.perf_counter() - start
            self._observe(method, route, status, seconds)
            if self.access and access_log.isEnabledFor(logging.INFO):
                self._log(scope, method, route, status, seconds, trace_id)

    @staticmethod
    def _log(
        scope: Scope, method: str, route: str, status: int, seconds: float, trace_id: str | None
    ) -> None:
        state = scope.get("state")
        partner = getattr(state.get("partner"), "partner_id", None) if state else None
        ms = round(seconds * 1000, 2)
        fields = {
            "method": method,
            "route": route,
            "status": status,
            "latency_ms": ms,
            "trace_id": trace_id,
            "partner_id": partner,
        }
        access_log.info("%s %s %s %.2f ms", method, route, status, ms, extra={"access": fields})

    def _observe(self, method: str, path: str, status: int, seconds: float) -> None:
        key = (method, path, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = metrics.HTTP_REQUESTS.labels(self.service, method, path, str(status))
            self._counters[key] = counter
        counter.inc()
        timer = self._timers.get(path)
        if timer is None:
            timer = self._timers[path] = metrics.HTTP_LATENCY.labels(self.service, path)
        timer.observe(seconds)
