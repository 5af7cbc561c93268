"""ORM model of customs declarations (table created by migration 0003)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ehub_core.db import UtcDateTime
from ehub_customs.db import Base

IMPORT = "import"
EXPORT = "export"

CLEARED = "cleared"
HELD = "held"
INSPECT = "inspect"
REJECTED = "rejected"


class Declaration(Base):
    """One phase (import or export) of an order's customs declaration and its decision."""

    __tablename__ = "customs_declarations"
    __table_args__ = (UniqueConstraint("order_id", "phase", name="uq_declaration_order_phase"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(100))
    phase: Mapped[str] = mapped_column(String(8))
    # import: the destination and the origin; export: the origin and the destination.
    country: Mapped[str] = mapped_column(String(2))
    counterpart_country: Mapped[str] = mapped_column(String(2))
    buyer_ref: Mapped[str | None] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    total_value: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    allowance_reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    decision: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(40))
    filed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Risk screening and the officer (migration 0005).
    consignee_key: Mapped[str | None] = mapped_column(String(300), default=None)
    parties: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    documents: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    officer_decision: Mapped[str | None] = mapped_column(String(24), default=None)
