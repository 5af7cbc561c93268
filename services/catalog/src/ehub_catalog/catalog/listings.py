"""The listings read model: what a search finds (docs/catalog.md).

Every function here runs inside the caller's transaction, so a product and its listing
(or a seller's verification and its listings' flag) change together or not at all.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_catalog.catalog.models import Listing, Product, Seller


def listing_of(product: Product, seller: Seller, *, hub: str) -> Listing:
    """The listing of one of this hub's products (its id is the product's)."""
    return Listing(
        id=product.id,
        source_hub=hub,
        product_id=product.id,
        seller_id=seller.id,
        seller_name=seller.name,
        seller_country=seller.country,
        seller_sme_verified=seller.sme_verified,
        title=product.title,
        description=product.description,
        hs_code=product.hs_code,
        origin_country=product.origin_country,
        price=product.price,
        currency=product.currency,
        weight_kg=product.weight_kg,
        dimensions_cm=product.dimensions_cm,
        listed_at=product.created_at,
    )


async def list_product(
    session: AsyncSession, *, product: Product, seller: Seller, hub: str
) -> None:
    session.add(listing_of(product, seller, hub=hub))
    await session.flush()


async def refresh_seller(session: AsyncSession, *, seller: Seller) -> None:
    """Carry a seller's name and verification to its listings."""
    await session.execute(
        update(Listing)
        .where(Listing.seller_id == seller.id)
        .values(seller_name=seller.name, seller_sme_verified=seller.sme_verified)
    )


async def adopt_unassigned(session: AsyncSession, *, hub: str) -> int:
    """Listings migrated from products made before 0006 carry no hub yet: this hub's."""
    result = await session.execute(
        update(Listing).where(Listing.source_hub == "").values(source_hub=hub)
    )
    return int(getattr(result, "rowcount", 0) or 0)
