"""The catalog's start-up and shutdown: its link to customs, its cursor key, the
listings of products made before listings existed, and the demo catalog when asked."""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI

from ehub_catalog.catalog.demo import seed_demo_catalog
from ehub_catalog.catalog.listings import adopt_unassigned
from ehub_catalog.catalog.pricing import CustomsLink, QuoteCache
from ehub_catalog.catalog.query import cursor_key
from ehub_catalog.settings import CatalogSettings
from ehub_core import http_client
from ehub_core.app import ServiceContext
from ehub_core.partners import internal_token

log = logging.getLogger("ehub.catalog")


async def start_search(app: FastAPI, ctx: ServiceContext) -> None:
    settings = ctx.settings
    assert isinstance(settings, CatalogSettings)
    token = internal_token(settings)
    # Cursors are signed with a key every replica of the hub derives alike.
    app.state.cursor_key = cursor_key(token or f"development:{settings.hub_id}")
    url = str(settings.customs_url).rstrip("/") if settings.customs_url else None
    client = http_client.client(
        timeout=settings.search_pricing_budget,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
    )
    app.state.customs = CustomsLink(
        client=client,
        url=url,
        token=token,
        budget=settings.search_pricing_budget,
        cache=QuoteCache(settings.search_price_cache_seconds),
    )
    async with ctx.db.write_slot(), ctx.db.sessionmaker() as session:
        adopted = await adopt_unassigned(session, hub=settings.hub_id)
        added = (
            await seed_demo_catalog(session, hub=settings.hub_id)
            if settings.catalog_demo_seed
            else 0
        )
        await session.commit()
    if adopted:
        log.info("listed %d products made before listings", adopted)
    if settings.catalog_demo_seed:
        log.info("demo catalog: %d products added", added)


async def stop_search(app: FastAPI, ctx: ServiceContext) -> None:
    link: CustomsLink | None = getattr(app.state, "customs", None)
    if link is not None and link.client is not None:
        await link.client.aclose()
