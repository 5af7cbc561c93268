"""Start and stop the order machinery with the gateway."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from ehub_core import http_client
from ehub_core.app import ServiceContext
from ehub_gateway.orders.service import Orders
from ehub_gateway.partners.door import KeyCache
from ehub_gateway.saga.runner import Saga
from ehub_gateway.settings import GatewaySettings
from ehub_gateway.webhooks.worker import WebhookWorker


async def start_orders(app: FastAPI, ctx: ServiceContext) -> None:
    settings = ctx.settings
    assert isinstance(settings, GatewaySettings)
    fed = app.state.fed
    relay = ctx.relay

    def notify() -> None:
        # New outbox rows (commands) and federation rows (events to the peer) go out now.
        if relay is not None:
            relay.notify()
        fed.delivery.notify()

    saga = Saga(
        ctx.db,
        settings.hub_id,
        fed.keyring.active_key,
        notify=notify,
        resend_after=settings.saga_resend_after,
        resend_max=settings.saga_resend_max,
        accept_window=settings.order_accept_window,
    )
    ctx.subscribe(
        saga.topics,
        f"ehub-{settings.hub_id.lower()}-gateway-orders",
        saga.handle,
        batch=saga.handle_batch,
    )
    # The hub's own calls to its services (offers, pricing) go to their operator routes
    # with the internal credential; partner calls are forwarded by partners/proxy.py.
    token = settings.internal_token.get_secret_value() if settings.internal_token else None
    services = http_client.client(
        timeout=httpx.Timeout(10.0, connect=3.0),
        headers={"Authorization": f"Bearer {token}"} if token else None,
    )
    app.state.orders = Orders(
        fed=fed,
        saga=saga,
        services=services,
        offer_budget=settings.order_offer_budget,
        return_window_days=settings.order_return_window_days,
    )
    ctx.tasks.append(asyncio.create_task(saga.run(), name="order-saga-timer"))
    keys = KeyCache(ctx.db, reload_interval=settings.partner_reload_interval)
    await keys.load()
    app.state.keys = keys
    ctx.tasks.append(asyncio.create_task(keys.run(), name="partner-keys"))
    webhooks = WebhookWorker.from_settings(ctx.db, settings)
    app.state.webhooks = webhooks
    ctx.tasks.append(asyncio.create_task(webhooks.run(), name="webhook-delivery"))
    fetch = getattr(app.state, "openapi_fetch", None)
    if fetch is not None:
        ctx.tasks.append(asyncio.create_task(fetch(), name="openapi-fetch"))


async def stop_orders(app: FastAPI, ctx: ServiceContext) -> None:
    webhooks: WebhookWorker | None = getattr(app.state, "webhooks", None)
    if webhooks is not None:
        webhooks.stop()  # its task finishes the attempts underway, then closes its client
    orders: Orders | None = getattr(app.state, "orders", None)
    if orders is None:
        return
    orders.saga.stop()
    keys = getattr(app.state, "keys", None)
    if keys is not None:
        keys.stop()
    for task in ctx.tasks:
        if task.get_name() == "openapi-fetch":
            task.cancel()
    await orders.services.aclose()
