"""Catalog ORM models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ehub_catalog.db import Base
from ehub_core.db import UtcDateTime


class Seller(Base):
    __tablename__ = "sellers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    sme_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    ship_from: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    auto_accept: Mapped[bool] = mapped_column(Boolean, default=False)
    # The partner (prt_...) that created it through the gateway, or for which the
    # operator did; None: created in development mode. Partners see only their own.
    owner: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Product(Base):
    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    hs_code: Mapped[str] = mapped_column(String(10), index=True)
    origin_country: Mapped[str] = mapped_column(String(2))
    price: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3))
    weight_kg: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    stock: Mapped[int] = mapped_column(Integer, default=0)
    # {"length": .., "width": .., "height": ..} of one packed unit, in cm; None: unknown.
    dimensions_cm: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Always the seller's owner: only the partner owning a seller adds its products.
    owner: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The other hubs it is offered in (ISO 3166-1 alpha-2), and its change count (0007).
    markets: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Listing(Base):
    """The search read model: one row per listing a search can find (docs/catalog.md).

    The hub's own products feed it in the product's transaction (``source_hub`` is this
    hub, ``id`` the product id); peers' listings are planned as more rows with their
    ``source_hub``. The full-text index lives outside the ORM: an FTS5 table kept by
    triggers on SQLite, a generated ``search`` tsvector column on Postgres (0006).
    """

    __tablename__ = "listings"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(80), unique=True)
    source_hub: Mapped[str] = mapped_column(String(2))
    product_id: Mapped[str] = mapped_column(String(40))
    seller_id: Mapped[str] = mapped_column(String(40), index=True)
    seller_name: Mapped[str] = mapped_column(String(200))
    seller_country: Mapped[str] = mapped_column(String(2))
    seller_sme_verified: Mapped[bool] = mapped_column(Boolean)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    hs_code: Mapped[str] = mapped_column(String(10), index=True)
    origin_country: Mapped[str] = mapped_column(String(2), index=True)
    price: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3))
    weight_kg: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    dimensions_cm: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    listed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)  # the product's, for peers'
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)  # a peer delisted it


class StockReservation(Base):
    """The stock one order holds (one reservation per order, docs/orders.md).

    ``lines`` keeps the reserved lines as answered in ``StockReserved`` (product details
    as they were when reserved), so a repeated ``ReserveStock`` answers the same reply.
    """

    __tablename__ = "stock_reservations"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(40), index=True)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # RESERVED | RELEASED
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    restocked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


RESERVED = "reserved"
RELEASED = "released"
