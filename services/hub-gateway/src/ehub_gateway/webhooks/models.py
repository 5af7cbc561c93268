"""Webhook tables: partners' endpoints, one delivery per (event, endpoint), every attempt."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ehub_core.db import UtcDateTime
from ehub_gateway.db import Base

# A 64-bit key on Postgres; SQLite's autoincrement needs INTEGER PRIMARY KEY (64-bit too).
SEQ = BigInteger().with_variant(Integer(), "sqlite")


class WebhookEndpoint(Base):
    """A URL of a partner's, subscribed to some event types."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # wh_<uuid7 hex>
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    # whsec_<base64>: kept as is, because signing needs it (shown to the partner once).
    secret: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebhookDelivery(Base):
    """One event for one endpoint: the exact body, its webhook-id and where it stands."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_chain", "endpoint_id", "subject", "seq"),
    )

    # Commit order per subject: emits for one order are serialized by the order's row
    # (lock on Postgres, the single writer on SQLite), so seq orders them.
    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)  # msg_<uuid7 hex> = webhook-id
    event_id: Mapped[str] = mapped_column(String(40), index=True)  # evt_<uuid7 hex>
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    partner_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, byte for byte as signed
    status: Mapped[str] = mapped_column(String(10))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime)  # an attempt underway
    retry_from: Mapped[datetime] = mapped_column(UtcDateTime)  # retries end max-age after
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.payload)
        return data


class WebhookAttempt(Base):
    """One HTTP attempt at a delivery: its answer or the error."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    delivery_seq: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.seq"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
