"""The demo catalog: believable sellers in CA, MY, RW, BE and CN and their products
(``demo_catalog.json``: real HS headings of the customs tariff files, weights, parcel
sizes, prices in the seller's currency), loaded idempotently.

Loaded at start with ``EHUB_CATALOG_DEMO_SEED=true``, or by calling
:func:`seed_demo_catalog` (it never commits: the caller's transaction does). Ids are
fixed (``sel_demo_<key>``, ``prd_demo_<key>``), so a second load adds only what is
missing and changes nothing else. The rows belong to the hub itself (no partner owner).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_catalog.catalog.listings import listing_of
from ehub_catalog.catalog.models import Product, Seller


@cache
def demo_catalog() -> dict[str, Any]:
    text = resources.files("ehub_catalog.catalog").joinpath("demo_catalog.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def seller_id(key: str) -> str:
    return f"sel_demo_{key}"


def product_id(key: str) -> str:
    return f"prd_demo_{key}"


async def seed_demo_catalog(session: AsyncSession, *, hub: str) -> int:
    """Add the demo sellers and products that are missing; the number of products added."""
    data = demo_catalog()
    now = datetime.now(UTC)
    wanted_sellers = [seller_id(s["key"]) for s in data["sellers"]]
    have = set(await session.scalars(select(Seller.id).where(Seller.id.in_(wanted_sellers))))
    sellers: dict[str, Seller] = {}
    for spec in data["sellers"]:
        sid = seller_id(spec["key"])
        seller = await session.get(Seller, sid) if sid in have else None
        if seller is None:
            seller = Seller(
                id=sid,
                name=spec["name"],
                country=spec["country"],
                sme_verified=spec["sme_verified"],
                ship_from={
                    "name": spec["name"],
                    "street": [spec["street"]],
                    "city": spec["city"],
                    "country": spec["country"],
                },
                auto_accept=True,
                owner=None,
                created_at=now,
            )
            session.add(seller)
        sellers[spec["key"]] = seller
    await session.flush()
    wanted = [product_id(p["key"]) for p in data["products"]]
    have = set(await session.scalars(select(Product.id).where(Product.id.in_(wanted))))
    added = 0
    for spec in data["products"]:
        pid = product_id(spec["key"])
        if pid in have:
            continue
        product = Product(
            id=pid,
            seller_id=seller_id(spec["seller"]),
            title=spec["title"],
            description=spec["description"],
            hs_code=spec["hs_code"],
            origin_country=spec["origin_country"],
            price=Decimal(spec["price"]),
            currency=spec["currency"],
            weight_kg=Decimal(spec["weight_kg"]),
            stock=spec["stock"],
            dimensions_cm={k: str(v) for k, v in spec["dimensions_cm"].items()},
            owner=None,
            created_at=now,
        )
        session.add(product)
        session.add(listing_of(product, sellers[spec["seller"]], hub=hub))
        added += 1
    await session.flush()
    return added
