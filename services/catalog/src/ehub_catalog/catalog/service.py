"""Catalog service functions (keyword-only; never commit — the request scope does)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_catalog.catalog.models import Product, Seller
from ehub_catalog.catalog.schemas import ProductCreate, SellerCreate
from ehub_core.errors import NotFoundError, UnprocessableError
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
    return seller


async def create_product(
    session: AsyncSession, *, data: ProductCreate, visible_to: str | None = None
) -> Product:
    """A product of a seller ``visible_to`` owns; it belongs to the seller's owner.

    Another partner's seller is answered exactly like an unknown one (422 naming
    ``seller_id``), so the answer does not tell whether it exists.
    """
    seller = await session.get(Seller, data.seller_id)
    if seller is None or not _visible(seller.owner, visible_to):
        raise UnprocessableError(
            f"No seller {data.seller_id!r}",
            errors=[
                {
                    "loc": ["body", "seller_id"],
                    "field": "seller_id",
                    "msg": "unknown seller",
                    "type": "not_found",
                }
            ],
        )
    product = Product(
        id=new_id("prd"), created_at=datetime.now(UTC), owner=seller.owner, **data.model_dump()
    )
    session.add(product)
    await session.flush()
    return product


async def get_product(
    session: AsyncSession, *, product_id: str, visible_to: str | None = None
) -> Product:
    product = await session.get(Product, product_id)
    if product is None or not _visible(product.owner, visible_to):
        raise NotFoundError(f"No product {product_id!r}")
    return product


async def search_products(
    session: AsyncSession,
    *,
    q: str | None,
    seller_id: str | None,
    hs_prefix: str | None,
    after: str | None,
    limit: int,
    visible_to: str | None = None,
) -> Sequence[Product]:
    """Products matching every given filter, in id (creation) order after ``after``;
    only ``visible_to``'s own when given."""
    stmt = select(Product).order_by(Product.id).limit(limit)
    if visible_to is not None:
        stmt = stmt.where(Product.owner == visible_to)
    if q:
        pattern = f"%{q.lower()}%"
        stmt = stmt.where(or_(Product.title.ilike(pattern), Product.description.ilike(pattern)))
    if seller_id:
        stmt = stmt.where(Product.seller_id == seller_id)
    if hs_prefix:
        stmt = stmt.where(Product.hs_code.startswith(hs_prefix))
    if after:
        stmt = stmt.where(Product.id > after)
    return (await session.scalars(stmt)).all()
