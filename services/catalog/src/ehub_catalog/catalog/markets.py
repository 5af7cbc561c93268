"""Listings that travel (docs/catalog.md): this hub's products offered in the markets
their sellers chose, and the listings peers offer in this hub's market.

Out: a product created or changed with ``markets`` writes one ``ListingChanged`` JSON
event on ``ehub.<hub>.listing-changes`` in the product's transaction (outbox); the
gateway seals a ``ProductListed`` / ``ProductUpdated`` / ``ProductDelisted`` for each
market's hub and delivers it until that hub's signed receipt arrives.

In: federation ingest republishes peers' verified envelopes on ``ehub.<hub>.listings``;
:func:`apply_peer_listing` keeps them in the search read model as rows of the sending
hub (``source_hub``; id ``<hub>:<product id>``), newest version wins whatever the order
of arrival, a delisting kept as a withdrawn row. A peer is trusted for its signature,
not its content: a listing that fails the same checks as a local product is dropped.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_catalog.catalog.models import Listing, Product, Seller
from ehub_catalog.catalog.schemas import HsCode
from ehub_core.bus import Message
from ehub_core.countries import CountryCode
from ehub_core.envelope import read_unverified
from ehub_core.limits import MultilineText, PlainText
from ehub_core.money import Amount, CurrencyCode
from ehub_core.outbox import enqueue
from ehub_core.proto.ehub.v1 import catalog_pb2, common_pb2
from ehub_core.streams import LISTING_CHANGES, hub_topic

log = logging.getLogger("ehub.catalog.markets")

LISTING_CHANGED = "ListingChanged"
PEER_LISTINGS = "catalog-peer-listings"  # the inbox consumer of peers' listings


def listing_proto(product: Product, seller: Seller) -> catalog_pb2.Listing:
    msg = catalog_pb2.Listing(
        product_id=product.id,
        seller_id=seller.id,
        seller_name=seller.name,
        seller_country=seller.country,
        seller_sme_verified=seller.sme_verified,
        title=product.title,
        description=product.description,
        hs_code=product.hs_code,
        origin_country=product.origin_country,
        price=common_pb2.Money(amount=str(product.price), currency=product.currency),
        weight_kg=str(product.weight_kg),
        stock=product.stock,
        markets=list(product.markets),
    )
    msg.listed_at.FromDatetime(product.created_at)
    return msg


async def announce(
    session: AsyncSession, *, product: Product, seller: Seller, hub: str, before: list[str]
) -> dict[str, list[str]]:
    """Queue the product's change for the hubs of its markets, in the caller's
    transaction: listed in the new ones, updated in the kept ones, delisted from those
    left out. Returns those three lists (empty: nothing to send)."""
    now = [m for m in dict.fromkeys(product.markets) if m != hub]
    was = [m for m in dict.fromkeys(before) if m != hub]
    plan = {
        "listed_in": [m for m in now if m not in was],
        "updated_in": [m for m in now if m in was],
        "withdrawn_from": [m for m in was if m not in now],
    }
    if any(plan.values()):
        await enqueue(
            session,
            topic=hub_topic(hub, LISTING_CHANGES),
            event_type=LISTING_CHANGED,
            payload={
                "product_id": product.id,
                "version": product.version,
                "listing": MessageToDict(
                    listing_proto(product, seller), preserving_proto_field_name=True
                ),
                **plan,
            },
            key=product.id,
        )
    return plan


class PeerListing(BaseModel):
    """A peer's listing, checked as a local product would be before it is kept."""

    product_id: PlainText = Field(min_length=1, max_length=40)
    seller_id: PlainText = Field(min_length=1, max_length=40)
    seller_name: PlainText = Field(min_length=1, max_length=200)
    seller_country: CountryCode
    seller_sme_verified: bool
    title: PlainText = Field(min_length=1, max_length=300)
    description: MultilineText = Field("", max_length=10_000)
    hs_code: HsCode
    origin_country: CountryCode
    price: Amount
    currency: CurrencyCode
    weight_kg: Decimal = Field(gt=0, le=100_000, max_digits=10, decimal_places=3)


def _peer_listing(msg: catalog_pb2.Listing) -> PeerListing:
    return PeerListing(
        product_id=msg.product_id,
        seller_id=msg.seller_id,
        seller_name=msg.seller_name,
        seller_country=msg.seller_country,
        seller_sme_verified=msg.seller_sme_verified,
        title=msg.title,
        description=msg.description,
        hs_code=msg.hs_code,
        origin_country=msg.origin_country,
        price=msg.price.amount,
        currency=msg.price.currency,
        weight_kg=msg.weight_kg,
    )


async def apply_peer_listing(session: AsyncSession, message: Message) -> str:
    """Keep a peer's ``ProductListed`` / ``Updated`` / ``Delisted`` (verified at ingest)
    in the read model; returns what was done (for logs and tests)."""
    env = read_unverified(message.value)
    source = env.source_hub
    payload: Any
    if env.type in ("ProductListed", "ProductUpdated"):
        payload = getattr(catalog_pb2, env.type).FromString(env.payload)
        product_id = payload.listing.product_id
    elif env.type == "ProductDelisted":
        payload = catalog_pb2.ProductDelisted.FromString(env.payload)
        product_id = payload.product_id
    else:
        return "ignored"
    if not product_id or len(product_id) > 40 or payload.version < 1:
        log.warning("%s from %s without a product id or version; dropped", env.type, source)
        return "dropped"
    lid = f"{source}:{product_id}"
    row = await session.scalar(select(Listing).where(Listing.id == lid))
    if row is not None and row.version >= payload.version:
        return "stale"  # a copy, or older than what is kept
    if isinstance(payload, catalog_pb2.ProductDelisted):
        if row is None:
            return "stale"  # never listed here: nothing to withdraw
        row.version, row.withdrawn = payload.version, True
        return "withdrawn"
    try:
        data = _peer_listing(payload.listing)
    except ValidationError as exc:
        log.warning("%s %s from %s refused: %s", env.type, lid, source, exc.errors()[:3])
        return "dropped"
    listed_at = (
        payload.listing.listed_at.ToDatetime(tzinfo=UTC)
        if payload.listing.HasField("listed_at")
        else datetime.now(UTC)
    )
    fields = {
        **data.model_dump(),
        "source_hub": source,
        "listed_at": listed_at,
        "version": payload.version,
        "withdrawn": False,
    }
    if row is None:
        session.add(Listing(id=lid, dimensions_cm=None, **fields))
        return "listed"
    for name, value in fields.items():
        setattr(row, name, value)
    return "updated"
