"""Listings that travel, the gateway's part (docs/catalog.md): the catalog's
``ListingChanged`` events (JSON, ``ehub.<hub>.listing-changes``) sealed as
``ProductListed`` / ``ProductUpdated`` / ``ProductDelisted`` for each market's hub and
queued for delivery, once per event (inbox ``gateway-listings``), in one transaction.

A market that is not a peer of this hub is skipped (logged): the seller may name a
country whose hub has not joined the network yet. The receiving hub's federation ingest
verifies, records and republishes them on its ``listings`` stream for its catalog.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.json_format import ParseDict, ParseError
from google.protobuf.message import Message as ProtoMessage
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.bus import Message
from ehub_core.db import Database
from ehub_core.inbox import consume_once
from ehub_core.proto.ehub.v1 import catalog_pb2
from ehub_gateway.federation.outbound import submit
from ehub_gateway.federation.trust import TrustStore

log = logging.getLogger("ehub.gateway.listings")

CONSUMER = "gateway-listings"


def payloads(body: dict[str, Any]) -> list[tuple[str, ProtoMessage, str]]:
    """(target hub, payload, subject: the product id) for each market a
    ``ListingChanged`` names."""
    listing = ParseDict(body["listing"], catalog_pb2.Listing(), ignore_unknown_fields=True)
    version = int(body["version"])
    if version < 1 or not listing.product_id:
        raise ValueError("a listing change needs a product id and a version >= 1")
    out: list[tuple[str, ProtoMessage, str]] = []
    pid = listing.product_id
    for hub in body.get("listed_in", []):
        out.append((hub, catalog_pb2.ProductListed(listing=listing, version=version), pid))
    for hub in body.get("updated_in", []):
        out.append((hub, catalog_pb2.ProductUpdated(listing=listing, version=version), pid))
    for hub in body.get("withdrawn_from", []):
        delisted = catalog_pb2.ProductDelisted(
            product_id=listing.product_id, version=version, reason="withdrawn by the seller"
        )
        out.append((hub, delisted, pid))
    return out


def listing_relay(
    db: Database,
    *,
    hub: str,
    trust: TrustStore,
    key: Callable[[], Any],
    notify: Callable[[], None],
) -> Callable[[Message], Awaitable[None]]:
    """The bus handler: one transaction per change (inbox row and its outbound rows)."""

    async def handle(message: Message) -> None:
        event_id = message.header("event_id")
        if not event_id:
            return
        try:
            body = json.loads(message.value)
            targets = payloads(body)
        except (ValueError, KeyError, TypeError, ParseError) as exc:
            log.warning("listing change %s unreadable, skipped: %r", event_id, exc)
            return
        queued = 0
        async with db.transaction() as session:
            if not await consume_once(session, event_id=event_id, consumer=CONSUMER):
                return
            queued = await _queue(session, targets, hub=hub, trust=trust, key=key())
        if queued:
            notify()

    return handle


async def _queue(
    session: AsyncSession,
    targets: list[tuple[str, ProtoMessage, str]],
    *,
    hub: str,
    trust: TrustStore,
    key: Any,
) -> int:
    queued = 0
    for target, payload, subject in targets:
        if target == hub or trust.peer(target) is None:
            log.info("%s for %s not sent: %s is not a peer", type(payload).__name__, hub, target)
            continue
        await submit(session, key=key, target_hub=target, payload=payload, subject=subject)
        queued += 1
    return queued
