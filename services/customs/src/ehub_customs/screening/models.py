"""Screening hits and the officers' whitelist (migration 0005)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ehub_core.db import UtcDateTime
from ehub_customs.db import Base


class ScreeningHit(Base):
    """One rule that a declaration hit, with its outcome, reason and source."""

    __tablename__ = "customs_screening_hits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    declaration_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("customs_declarations.id"), index=True
    )
    category: Mapped[str] = mapped_column(String(16))  # goods, party, value, split
    outcome: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(160))
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    verified: Mapped[bool] = mapped_column(Boolean)
    line_id: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(String(300))
    entry: Mapped[str | None] = mapped_column(String(160))
    score: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WhitelistEntry(Base):
    """A party hit an officer cleared as a false positive: (subject, list entry)."""

    __tablename__ = "customs_screening_whitelist"
    __table_args__ = (UniqueConstraint("subject", "entry", name="uq_whitelist_subject_entry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(300))  # the party's normalised name
    entry: Mapped[str] = mapped_column(String(160))  # list:entry id
    reason: Mapped[str] = mapped_column(Text)
    cleared_by: Mapped[str] = mapped_column(String(64))
    declaration_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
