"""Federation tables of the gateway."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ehub_core.db import UtcDateTime
from ehub_gateway.db import Base


class Peer(Base):
    """A hub this hub trusts, onboarded by an operator with a pinned key fingerprint."""

    __tablename__ = "fed_peers"

    hub_id: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    base_url: Mapped[str] = mapped_column(String(500))
    pinned_fingerprint: Mapped[str] = mapped_column(String(100))
    transport: Mapped[str] = mapped_column(String(10))  # http | kafka
    allowed_types: Mapped[list[str] | None] = mapped_column(JSON)  # None = every type
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # last verified well-known doc
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    refreshed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PeerKey(Base):
    __tablename__ = "fed_peer_keys"

    kid: Mapped[str] = mapped_column(String(100), primary_key=True)
    hub_id: Mapped[str] = mapped_column(ForeignKey("fed_peers.hub_id", ondelete="CASCADE"))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    not_before: Mapped[datetime] = mapped_column(UtcDateTime)
    not_after: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeliveryStatus(StrEnum):
    """Where an outbound event is on its way to the peer."""

    PENDING = "pending"  # to be sent (again) at next_attempt_at
    SENT = "sent"  # published on the backbone; re-sent at next_attempt_at without receipt
    RECEIPTED = "receipted"  # the peer's signed receipt confirms it (final)
    DEAD = "dead"  # dead-lettered: out of attempts or refused for good (ehub dlq)


DUE = (DeliveryStatus.PENDING, DeliveryStatus.SENT)


class OutboundEvent(Base):
    """An event sealed by this hub for a peer, kept until the peer's signed receipt.

    ``sent_at`` is when it was last sent (each attempt, over either transport);
    ``last_error`` what went wrong with the last attempt that failed; for a ``dead`` row,
    which is never due again, ``next_attempt_at`` is when it was dead-lettered.
    """

    __tablename__ = "fed_outbound"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    target_hub: Mapped[str] = mapped_column(String(2))
    event_type: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(200))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)  # SignedEnvelope, exact bytes
    digest: Mapped[str] = mapped_column(String(64))
    transport: Mapped[str | None] = mapped_column(String(10))  # None = the peer's
    status: Mapped[str] = mapped_column(String(10))  # a DeliveryStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    receipt_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    receipted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class StoredReceipt(Base):
    """A peer's signed receipt, kept as proof of delivery (exact bytes)."""

    __tablename__ = "fed_receipts"

    receipt_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    receiver_hub: Mapped[str] = mapped_column(String(2))
    signed_receipt: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReceivedEvent(Base):
    """An event a peer delivered to this hub and that took effect here (once)."""

    __tablename__ = "fed_received"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source_hub: Mapped[str] = mapped_column(String(2))
    event_type: Mapped[str] = mapped_column(String(100))
    # Indexed: ingest finds an order's OrderPlaced by it (migration 0007).
    subject: Mapped[str] = mapped_column(String(200), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    traceparent: Mapped[str | None] = mapped_column(String(60))
    via: Mapped[str] = mapped_column(String(10))  # http | kafka
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
