"""Order tables of the gateway: the order (one row per hub that takes part), its
timeline, and the saga's outstanding commands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ehub_core.db import UtcDateTime
from ehub_gateway.db import Base


class Order(Base):
    """One cross-border order as this hub sees it; the same id at both hubs."""

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    role: Mapped[str] = mapped_column(String(10))  # buyer | seller (this hub's side)
    state: Mapped[str] = mapped_column(String(24), index=True)
    buyer_hub: Mapped[str] = mapped_column(String(2))
    seller_hub: Mapped[str] = mapped_column(String(2))
    seller_id: Mapped[str] = mapped_column(String(40), index=True)
    partner_reference: Mapped[str | None] = mapped_column(String(200))
    # The partner whose order it is here: the marketplace at the buyer's hub, the seller's
    # partner at the seller's hub (None: placed without a key, development only).
    partner_id: Mapped[str | None] = mapped_column(String(40), index=True)
    buyer_ref: Mapped[str] = mapped_column(String(64))  # hashed buyer id
    identity_ref: Mapped[str | None] = mapped_column(String(64))  # hashed identity number
    ship_to: Mapped[dict[str, Any]] = mapped_column(JSON)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))  # the buyer's
    seller_currency: Mapped[str] = mapped_column(String(3))
    money: Mapped[dict[str, Any]] = mapped_column(JSON)  # goods, shipping, duty, tax, total
    shipping: Mapped[dict[str, Any]] = mapped_column(JSON)  # carrier, service, amount
    shipment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    declarations: Mapped[dict[str, Any]] = mapped_column(JSON)  # phase -> decision
    seller: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # ship_from, auto_accept
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rejected or cancelled
    accept_by: Mapped[datetime | None] = mapped_column(UtcDateTime)
    traceparent: Mapped[str | None] = mapped_column(String(60))  # the order's trace
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrderStep(Base):
    """One line of an order's timeline: what happened, when, where, why."""

    __tablename__ = "order_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    hub: Mapped[str] = mapped_column(String(2))  # where the step happened
    what: Mapped[str] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(24))  # the order's state after the step
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    event_id: Mapped[str | None] = mapped_column(String(64))


class SagaCommand(Base):
    """A command the saga sent to a service of this hub and awaits the reply of."""

    __tablename__ = "saga_commands"
    __table_args__ = (UniqueConstraint("order_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40))
    step: Mapped[str] = mapped_column(String(40))
    stream: Mapped[str] = mapped_column(String(40))
    command: Mapped[str] = mapped_column(String(40))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    traceparent: Mapped[str | None] = mapped_column(String(60))
