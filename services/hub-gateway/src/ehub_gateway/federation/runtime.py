"""The gateway's federation machinery, started with the service and reachable from routes
as ``request.app.state.fed``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request

from ehub_core import http_client
from ehub_core.app import ServiceContext
from ehub_core.nonce_store import purge_expired_nonces
from ehub_core.signing import HubSigningAuth, KeyRing
from ehub_core.streams import LISTING_CHANGES, fed_topic, hub_topic
from ehub_gateway.federation.backbone import Backbone
from ehub_gateway.federation.delivery import DeliveryWorker
from ehub_gateway.federation.group_writer import IngestWriter
from ehub_gateway.federation.listings import listing_relay
from ehub_gateway.federation.own_keys import LiveKeyRing
from ehub_gateway.federation.trust import TrustStore
from ehub_gateway.federation.wellknown import build_document
from ehub_gateway.settings import GatewaySettings

log = logging.getLogger("ehub.gateway.federation")


@dataclass
class Federation:
    settings: GatewaySettings
    keyring: KeyRing
    trust: TrustStore
    delivery: DeliveryWorker
    backbone: Backbone | None
    client: httpx.AsyncClient
    writer: IngestWriter

    @property
    def hub(self) -> str:
        return self.settings.hub_id

    @property
    def public_origin(self) -> str | None:
        return str(self.settings.public_url).rstrip("/") if self.settings.public_url else None

    def document(self, base_url: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        self.keyring.reload()
        keys = self.keyring.public_keys(now)
        signers = [k for k in self.keyring.all_keys() if k.is_valid_at(now)]
        backbone = None
        if self.backbone is not None and self.settings.resolved_backbone_id:
            backbone = {"id": self.settings.resolved_backbone_id, "topic": fed_topic(self.hub)}
        return build_document(
            hub_id=self.hub,
            name=self.settings.hub_name or f"ehub {self.hub}",
            base_url=self.public_origin or base_url,
            keys=keys,
            signers=signers,
            revoked=self.keyring.revoked_kids(),
            backbone=backbone,
            now=now,
        )


async def get_federation(request: Request) -> Federation:
    fed: Federation = request.app.state.fed
    return fed


async def _purge_nonces(ctx: ServiceContext) -> None:
    while True:
        await asyncio.sleep(60)
        with contextlib.suppress(Exception):
            await purge_expired_nonces(ctx.db)


async def start_federation(app: FastAPI, ctx: ServiceContext) -> None:
    settings = ctx.settings
    assert isinstance(settings, GatewaySettings)
    keyring = LiveKeyRing(settings.resolved_keys_dir, settings.hub_id)
    key = keyring.ensure_active()
    log.info("hub %s signs with %s (fingerprint %s)", settings.hub_id, key.kid, key.fingerprint)
    trust = TrustStore(
        ctx.db,
        settings.hub_id,
        reload_interval=settings.trust_reload_interval,
        refresh_interval=settings.peer_refresh_interval,
    )
    await trust.load()
    client = http_client.client(
        auth=HubSigningAuth(keyring.active_key, settings.hub_id),
        timeout=httpx.Timeout(10.0, connect=3.0),
    )
    delivery = DeliveryWorker(
        db=ctx.db, settings=settings, keyring=keyring, trust=trust, client=client, bus=ctx.bus
    )
    writer = IngestWriter(ctx.db, settings.hub_id, ctx.relay, keyring.active_key)
    backbone = None
    if ctx.bus is not None:
        backbone = Backbone(settings=settings, trust=trust, delivery=delivery, writer=writer)
        ctx.subscribe(
            [backbone.topic],
            f"ehub-{settings.hub_id.lower()}-gateway-federation",
            backbone.handle,
            batch=backbone.handle_batch,
        )
        ctx.subscribe(
            [hub_topic(settings.hub_id, LISTING_CHANGES)],
            f"ehub-{settings.hub_id.lower()}-gateway-listings",
            listing_relay(
                ctx.db,
                hub=settings.hub_id,
                trust=trust,
                key=keyring.active_key,
                notify=delivery.notify,
            ),
        )
    app.state.fed = Federation(settings, keyring, trust, delivery, backbone, client, writer)
    ctx.tasks.append(asyncio.create_task(writer.run(), name="ingest-writer"))
    ctx.tasks.append(asyncio.create_task(trust.run(), name="trust-store"))
    ctx.tasks.append(asyncio.create_task(delivery.run(), name="federation-delivery"))
    ctx.tasks.append(asyncio.create_task(_purge_nonces(ctx), name="nonce-purge"))


async def stop_federation(app: FastAPI, ctx: ServiceContext) -> None:
    fed: Federation | None = getattr(app.state, "fed", None)
    if fed is None:
        return
    fed.trust.stop()
    fed.delivery.stop()
    fed.writer.stop()
    for task in ctx.tasks:
        if task.get_name() == "nonce-purge":
            task.cancel()
    await fed.client.aclose()
