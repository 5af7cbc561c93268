"""ORM model of the allowance ledger: one row per order that counts toward a buyer's year.

An entry is ``reserved`` when the order's import declaration is filed (the order may
still fail), ``confirmed`` once the order is committed, and ``released`` when the order
is abandoned or returned. The used allowance counts reserved and confirmed entries.
``partner_id`` is the marketplace that placed the order (None for entries from before
partner identity); only a marketplace with an entry for a buyer may read that buyer's
allowance.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ehub_customs.db import Base

RESERVED = "reserved"
CONFIRMED = "confirmed"
RELEASED = "released"
COUNTED = (RESERVED, CONFIRMED)


class AllowanceEntry(Base):
    """An order's value counted against a buyer's yearly allowance in one country."""

    __tablename__ = "customs_allowance_entries"
    __table_args__ = (
        UniqueConstraint("country", "order_id", name="uq_allowance_country_order"),
        Index("ix_allowance_buyer_year", "country", "buyer_id", "year"),
        Index("ix_allowance_order", "order_id"),
        Index("ix_allowance_partner_buyer", "partner_id", "country", "buyer_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    buyer_id: Mapped[str] = mapped_column(String(100))
    year: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=CONFIRMED, server_default=CONFIRMED)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The marketplace (prt_...) that placed the order, from the saga's
    # FileImportDeclaration; it may read the buyer's allowance (docs/partners.md).
    partner_id: Mapped[str | None] = mapped_column(String(64), default=None)
