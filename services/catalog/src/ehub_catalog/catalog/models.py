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
    # Always the seller's owner: only the partner owning a seller adds its products.
    owner: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


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
