"""Catalog service functions (keyword-only; never commit — the request scope does)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_catalog.catalog.listings import list_product, refresh_seller
from ehub_catalog.catalog.markets import announce
from ehub_catalog.catalog.models import Listing, Product, Seller
from ehub_catalog.catalog.schemas import ProductCreate, ProductUpdate, SellerCreate
from ehub_core.errors import NotFoundError, UnprocessableError, field_error
from ehub_core.ids import new_id


def _visible(owner: str | None, visible_to: str | None) -> bool:
    """``visible_to`` None: every row (the operator, development mode)."""
    return visible_to is None or owner == visible_to


async def create_seller(
    session: AsyncSession,
    *,
    data: SellerCreate,
    owner: str | None = None,
    sme_verified: bool = False,
) -> Seller:
    """A new seller of ``owner``; ``sme_verified`` is the operator's to set."""
    fields = data.model_dump(include=set(SellerCreate.model_fields))
    seller = Seller(
        id=new_id("sel"),
        created_at=datetime.now(UTC),
        owner=owner,
        sme_verified=sme_verified,
        **fields,
    )
    session.add(seller)
    await session.flush()
    return seller


async def get_seller(
    session: AsyncSession, *, seller_id: str, visible_to: str | None = None
) -> Seller:
    """The seller, if ``visible_to`` may see it: another partner's seller is not found."""
    seller = await session.get(Seller, seller_id)
    if seller is None or not _visible(seller.owner, visible_to):
        raise NotFoundError(f"No seller {seller_id!r}")
    return seller


async def set_verification(session: AsyncSession, *, seller_id: str, sme_verified: bool) -> Seller:
    """The operator's verdict on whether the seller is a verified SME."""
    seller = await get_seller(session, seller_id=seller_id)
    seller.sme_verified = sme_verified
    await session.flush()
    await refresh_seller(session, seller=seller)
    return seller


async def create_product(
    session: AsyncSession, *, data: ProductCreate, hub: str, visible_to: str | None = None
) -> Product:
    """A product of a seller ``visible_to`` owns; it belongs to the seller's owner and is
    listed at ``hub`` (the search read model) in the same transaction.

    Another partner's seller is answered exactly like an unknown one (422 naming
    ``seller_id``), so the answer does not tell whether it exists.
    """
    seller = await session.get(Seller, data.seller_id)
    if seller is None or not _visible(seller.owner, visible_to):
        raise UnprocessableError(
            f"No seller {data.seller_id!r}",
            errors=[field_error("seller_id", "unknown seller", "not_found")],
        )
    dims = data.dimensions_cm.model_dump(mode="json") if data.dimensions_cm else None
    product = Product(
        id=new_id("prd"),
        created_at=datetime.now(UTC),
        owner=seller.owner,
        dimensions_cm=dims,
        version=1,
        **data.model_dump(exclude={"dimensions_cm", "markets"}),
        markets=_markets(data.markets, hub),
    )
    session.add(product)
    await session.flush()
    await list_product(session, product=product, seller=seller, hub=hub)
    await announce(session, product=product, seller=seller, hub=hub, before=[])
    return product


def _markets(markets: list[str], hub: str) -> list[str]:
    """The other hubs, each once, in the order given (this hub is its own market)."""
    return [m for m in dict.fromkeys(markets) if m != hub]


async def update_product(
    session: AsyncSession,
    *,
    product_id: str,
    data: ProductUpdate,
    hub: str,
    visible_to: str | None = None,
) -> Product:
    """Change a product (and its listing here) and tell the hubs of its markets, old and
    new, in the same transaction; the version counts each change."""
    product = await get_product(session, product_id=product_id, visible_to=visible_to)
    seller = await session.get(Seller, product.seller_id)
    assert seller is not None  # a product's seller is a foreign key
    before = list(product.markets)
    changes = data.model_dump(exclude_unset=True)
    if "markets" in changes:
        changes["markets"] = _markets(changes["markets"], hub)
    for name, value in changes.items():
        setattr(product, name, value)
    product.version += 1
    listing = await session.scalar(
        select(Listing).where(Listing.product_id == product.id, Listing.source_hub == hub)
    )
    if listing is not None:
        for name in ("title", "description", "price"):
            setattr(listing, name, getattr(product, name))
        listing.version = product.version
    await session.flush()
    await announce(session, product=product, seller=seller, hub=hub, before=before)
    return product


async def get_product(
    session: AsyncSession, *, product_id: str, visible_to: str | None = None
) -> Product:
    product = await session.get(Product, product_id)
    if product is None or not _visible(product.owner, visible_to):
        raise NotFoundError(f"No product {product_id!r}")
    return product
