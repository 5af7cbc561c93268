"""Shipments and their tracking events (tables created by migration 0002)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ehub_logistics.db import Base


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as text: SQLite has no decimal type, only float."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; ehub stores timezone-aware UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Shipment(Base):
    """A booked shipment.

    A shipment booked by the order saga (``BookShipment``, see ``consumers.py``) records
    the saga step it serves (``saga_step``: ``ship`` for the outbound parcel, ``return``
    for a return), kept for good. ``saga_slot`` holds the same step while the shipment
    is the order's live booking for it and is cleared when the shipment is cancelled;
    the unique index on ``(order_id, saga_slot)`` (migration 0003) lets an order hold
    one live shipment per step, however many cancelled ones it has, so two concurrent
    bookings of one step cannot both succeed.
    """

    __tablename__ = "logistics_shipments"
    __table_args__ = (
        UniqueConstraint("carrier", "tracking_number"),
        Index("uq_logistics_shipments_saga_slot", "order_id", "saga_slot", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(64))
    service_name: Mapped[str] = mapped_column(String(200))
    tracking_number: Mapped[str] = mapped_column(String(64))
    carrier_reference: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    saga_step: Mapped[str | None] = mapped_column(String(64))
    saga_slot: Mapped[str | None] = mapped_column(String(64))
    # W3C traceparent of the booking (the order's trace): carrier events continue it.
    traceparent: Mapped[str | None] = mapped_column(String(60))
    reference: Mapped[str | None] = mapped_column(String(200))
    origin_country: Mapped[str] = mapped_column(String(2))
    destination_country: Mapped[str] = mapped_column(String(2))
    shipper: Mapped[dict[str, Any]] = mapped_column(JSON)
    recipient: Mapped[dict[str, Any]] = mapped_column(JSON)
    parcels: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    customs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(DecimalText)
    charges: Mapped[dict[str, str]] = mapped_column(JSON)
    chargeable_weight_kg: Mapped[Decimal] = mapped_column(DecimalText)
    transit_days: Mapped[int] = mapped_column(Integer)
    ship_date: Mapped[date] = mapped_column(Date)
    estimated_delivery: Mapped[date] = mapped_column(Date)
    rate_id: Mapped[str] = mapped_column(String(40))
    rate_card: Mapped[str] = mapped_column(String(64))
    # The partner (prt_...) that booked it through the gateway; None for the order
    # saga's bookings and development mode. Partners see only their own (and, through
    # them, their labels).
    owner: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    # Deferred: a label is ~10 kB and only its own endpoint reads it back.
    label_pdf: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TrackingEventRecord(Base):
    """Every event ever received for a shipment, applied or not.

    ``applied``/``anomaly`` are recomputed whenever the shipment's events are
    replayed: a late event can turn an earlier anomaly into a valid step.
    """

    __tablename__ = "logistics_tracking_events"
    __table_args__ = (UniqueConstraint("shipment_id", "dedup_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    shipment_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("logistics_shipments.id"), index=True
    )
    dedup_key: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))  # "carrier" or "hub"
    status: Mapped[str] = mapped_column(String(32))
    carrier_code: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    place: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(2))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    applied: Mapped[bool] = mapped_column(Boolean)
    anomaly: Mapped[str | None] = mapped_column(Text)
