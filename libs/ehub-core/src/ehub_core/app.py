"""The service application factory: every ehub service is built by
:func:`create_service_app`, so all four share health, readiness, metrics, problem+json
errors, tracing, logging, migrations at start, the event bus and the outbox relay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from ehub_core import apidocs, openapi, telemetry
from ehub_core.bus import (
    BatchHandler,
    BusUnavailable,
    EventBus,
    Handler,
    KafkaBus,
    Subscription,
)
from ehub_core.db import Database
from ehub_core.errors import install_problem_handlers
from ehub_core.limits import BodyLimit
from ehub_core.migrations import upgrade
from ehub_core.observability import ObservabilityMiddleware
from ehub_core.outbox import OutboxRelay
from ehub_core.settings import CoreSettings

log = logging.getLogger("ehub.app")

Hook = Callable[[FastAPI, "ServiceContext"], Awaitable[None]]


@dataclass
class ServiceContext:
    """What a running service holds; reachable as ``request.app.state.ctx``."""

    settings: CoreSettings
    db: Database
    bus: EventBus | None = None
    relay: OutboxRelay | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    _broker_checked: tuple[float, str | None] = (0.0, "unchecked")

    def subscribe(
        self,
        topics: Sequence[str],
        group_id: str,
        handler: Handler,
        *,
        batch: BatchHandler | None = None,
    ) -> None:
        """Consume ``topics`` in the background while the service runs (``batch``: see
        :meth:`ehub_core.bus.EventBus.subscribe`)."""
        if self.bus is None:
            log.warning("no broker configured; not subscribing %s to %s", group_id, topics)
            return
        sub = self.bus.subscribe(topics, group_id, handler, batch=batch)
        self.subscriptions.append(sub)
        self.tasks.append(asyncio.create_task(sub.run(), name=f"consumer:{group_id}"))

    async def broker_status(self) -> str | None:
        """None when reachable, else a reason; cached for one second."""
        if self.bus is None:
            return None
        checked_at, status = self._broker_checked
        if time.monotonic() - checked_at < 1.0:
            return status
        try:
            await asyncio.wait_for(self.bus.ping(), 5)
            status = None
        except (BusUnavailable, TimeoutError) as exc:
            status = str(exc) or "timeout"
        self._broker_checked = (time.monotonic(), status)
        return status


def _ops_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        """Answers 200 while the process runs; checks nothing else (see /readyz)."""
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: database and broker reachable",
        responses={
            200: {
                "content": {
                    "application/json": {
                        "example": {
                            "status": "ready",
                            "service": "catalog",
                            "hub": "CN",
                            "checks": {"database": "ok", "broker": "ok"},
                        }
                    }
                }
            },
            503: {
                "description": "Not ready: the failing check is named",
                "content": {
                    "application/json": {
                        "example": {
                            "status": "not ready",
                            "service": "catalog",
                            "hub": "CN",
                            "checks": {"database": "ok", "broker": "error: timeout"},
                        }
                    }
                },
            },
        },
    )
    async def readyz(request: Request) -> JSONResponse:
        """200 when the database answers `SELECT 1` and the broker (if configured) a metadata
        request; 503 naming the failing check otherwise."""
        ctx: ServiceContext = request.app.state.ctx
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(ctx.db.ping(), 5)
            checks["database"] = "ok"
        except Exception as exc:  # any failure means not ready
            checks["database"] = f"error: {exc.__class__.__name__}: {exc}"[:300]
        if ctx.bus is None:
            checks["broker"] = "not configured"
        else:
            reason = await ctx.broker_status()
            checks["broker"] = "ok" if reason is None else f"error: {reason}"[:300]
        ready = all(v in ("ok", "not configured") for v in checks.values())
        body = {
            "status": "ready" if ready else "not ready",
            "service": ctx.settings.service,
            "hub": ctx.settings.hub_id,
            "checks": checks,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "content": {
                    "text/plain": {
                        "schema": {"type": "string"},
                        "example": 'ehub_http_requests_total{service="catalog",method="GET",'
                        'route="/v1/products",status="200"} 42.0\n',
                    }
                }
            }
        },
    )
    async def prometheus() -> Response:
        """Prometheus text exposition: request counts and latencies by route template, outbox
        and inbox counters, domain metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def create_service_app(
    settings: CoreSettings,
    *,
    title: str,
    description: str,
    migrations_package: str,
    routers: Sequence[APIRouter] = (),
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    middleware: Sequence[Callable[[ASGIApp], ASGIApp]] = (),
    body_limits: Mapping[str, int] | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    """Build a service's FastAPI app; start-up runs migrations, then the relay, then hooks.

    Every request body is bounded by ``EHUB_MAX_BODY_BYTES`` and ``EHUB_BODY_TIMEOUT``
    (:class:`~ehub_core.limits.BodyLimit`); ``body_limits`` gives exact paths their own
    limit, and ``EHUB_MAX_BODY_BYTES_PATHS`` overrides both.
    """
    service = settings.service

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        telemetry.setup_logging(service, settings.hub_id, settings.log_level, settings.log_json)
        telemetry.setup_tracing(service, settings.hub_id, settings.otlp_endpoint)
        db = Database(settings.resolved_database_url)
        telemetry.instrument_engine(db.engine)
        if settings.migrate_on_start:
            await upgrade(db, migrations_package)
        ctx = ServiceContext(settings=settings, db=db)
        if settings.kafka_bootstrap:
            ctx.bus = KafkaBus(
                settings.kafka_bootstrap, client_id=f"ehub-{settings.hub_id}-{service}"
            )
            ctx.relay = OutboxRelay(
                db,
                ctx.bus,
                service=service,
                batch_size=settings.relay_batch_size,
                poll_interval=settings.relay_poll_interval,
                audit_interval=settings.relay_audit_interval,
                replay_window=settings.relay_replay_window,
                replay_on_start=settings.relay_replay_on_start,
            )
            ctx.tasks.append(asyncio.create_task(ctx.relay.run(), name="outbox-relay"))
        app.state.ctx = ctx
        app.state.settings = settings
        for hook in on_startup:
            await hook(app, ctx)
        log.info("%s service of hub %s started", service, settings.hub_id)
        try:
            yield
        finally:
            for sub in ctx.subscriptions:
                await sub.stop()
            if ctx.relay:
                ctx.relay.stop()
            for hook in on_shutdown:
                await hook(app, ctx)
            if ctx.tasks:
                _done, pending = await asyncio.wait(ctx.tasks, timeout=5)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            if ctx.bus:
                await ctx.bus.stop()
            await db.dispose()
            telemetry.shutdown_tracing()

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        docs_url=None,  # served from the service's own files: apidocs.install
        redoc_url=None,
        # Tracing and metrics come from ObservabilityMiddleware (cheaper, and one scheme
        # for all services); FastAPI's own OpenTelemetry layer would double them.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_problem_handlers(app)
    app.include_router(_ops_router())
    for router in routers:
        app.include_router(router)
    openapi.document_problems(app)
    openapi.install(app)
    apidocs.install(app)
    for layer in middleware:  # inside observability: refusals are logged and counted too
        app.add_middleware(layer)
    # Outside the service's own layers (a too-large Content-Length is refused before
    # anything else looks at the request), inside observability (refusals are counted).
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout,
        paths={**(body_limits or {}), **settings.max_body_bytes_paths},
    )
    app.add_middleware(ObservabilityMiddleware, service=service, access=settings.access_log)
    return app
