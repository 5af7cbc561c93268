"""Partners of this hub and their API keys (only a hash of each secret is stored)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ehub_core.db import UtcDateTime
from ehub_gateway.db import Base


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    rate_per_second: Mapped[float] = mapped_column(Float)
    burst: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PartnerKey(Base):
    __tablename__ = "partner_keys"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)  # the key's public id
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    mode: Mapped[str] = mapped_column(String(4))  # live | test
    secret_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the secret, hex
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # set by a rotation
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
