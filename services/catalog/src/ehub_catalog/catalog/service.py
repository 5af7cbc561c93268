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


async def create_seller(session: AsyncSession, *, data: SellerCreate) -> Seller:
    seller = Seller(id=new_id("sel"), created_at=datetime.now(UTC), **data.model_dump())
    session.add(seller)
    await session.flush()
    return seller


async def get_seller(session: AsyncSession, *, seller_id: str) -> Seller:
    seller = await session.get(Seller, seller_id)
    if seller is None:
        raise NotFoundError(f"No seller {seller_id!r}")
    return seller


async def create_product(session: AsyncSession, *, data: ProductCreate) -> Product:
    if await session.get(Seller, data.seller_id) is None:
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
    product = Product(id=new_id("prd"), created_at=datetime.now(UTC), **data.model_dump())
    session.add(product)
    await session.flush()
    return product


async def get_product(session: AsyncSession, *, product_id: str) -> Product:
    product = await session.get(Product, product_id)
    if product is None:
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
) -> Sequence[Product]:
    """Products matching every given filter, in id (creation) order after ``after``."""
    stmt = select(Product).order_by(Product.id).limit(limit)
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
