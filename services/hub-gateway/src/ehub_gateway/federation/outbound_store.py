"""Queries of ``fed_outbound`` (and the receipts it points to): what the delivery worker
sends next, and what an operator reads and replays (``ehub events``, ``ehub dlq``).

The operator's commands call these functions rather than writing the gateway's tables
themselves, so the rules of a status change live here, beside the worker's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.db import Database
from ehub_gateway.federation.models import DUE, DeliveryStatus, OutboundEvent, StoredReceipt


async def due(db: Database, now: datetime, limit: int) -> Sequence[OutboundEvent]:
    """Events whose next attempt is due, oldest first."""
    async with db.reader() as session:
        return (
            await session.scalars(
                select(OutboundEvent)
                .where(OutboundEvent.status.in_(DUE), OutboundEvent.next_attempt_at <= now)
                .order_by(OutboundEvent.created_at, OutboundEvent.event_id)
                .limit(limit)
            )
        ).all()


@asynccontextmanager
async def unreceipted(
    db: Database, rows: Sequence[OutboundEvent]
) -> AsyncIterator[Sequence[OutboundEvent]]:
    """The current versions of ``rows`` not yet receipted, in a write transaction (a
    receipt may have arrived over the backbone since they were read)."""
    ids = [r.event_id for r in rows]
    async with db.transaction() as session:
        yield (
            await session.scalars(
                select(OutboundEvent).where(
                    OutboundEvent.event_id.in_(ids),
                    OutboundEvent.status != DeliveryStatus.RECEIPTED,
                )
            )
        ).all()


async def by_ids(session: AsyncSession, ids: Sequence[str]) -> Sequence[OutboundEvent]:
    return (
        await session.scalars(select(OutboundEvent).where(OutboundEvent.event_id.in_(ids)))
    ).all()


# -- the operator's view -------------------------------------------------------------------


@dataclass(frozen=True)
class EventView:
    """One outbound event as an operator sees it."""

    event_id: str
    event_type: str
    target_hub: str
    subject: str
    status: str
    transport: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None  # None unless it is due again
    dead_at: datetime | None
    receipt_id: str | None
    receipted_at: datetime | None
    receipt_bytes: int | None  # size of the stored signed receipt

    @classmethod
    def of(cls, row: OutboundEvent, receipt: StoredReceipt | None = None) -> EventView:
        dead = row.status == DeliveryStatus.DEAD
        return cls(
            event_id=row.event_id,
            event_type=row.event_type,
            target_hub=row.target_hub,
            subject=row.subject,
            status=row.status,
            transport=row.transport,
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            last_attempt_at=row.sent_at,
            next_attempt_at=row.next_attempt_at if row.status in DUE else None,
            dead_at=row.next_attempt_at if dead else None,
            receipt_id=row.receipt_id,
            receipted_at=row.receipted_at,
            receipt_bytes=len(receipt.signed_receipt) if receipt is not None else None,
        )


async def find_event(db: Database, event_id: str) -> EventView | None:
    async with db.reader() as session:
        row = await session.get(OutboundEvent, event_id)
        if row is None:
            return None
        receipt = await session.get(StoredReceipt, row.receipt_id) if row.receipt_id else None
        return EventView.of(row, receipt)


async def list_events(
    db: Database, status: DeliveryStatus | None = None, limit: int = 100
) -> list[EventView]:
    """The newest ``limit`` events (of ``status``), oldest of them first."""
    stmt = select(OutboundEvent).order_by(
        OutboundEvent.created_at.desc(), OutboundEvent.event_id.desc()
    )
    if status is not None:
        stmt = stmt.where(OutboundEvent.status == status)
    async with db.reader() as session:
        rows = (await session.scalars(stmt.limit(limit))).all()
    return [EventView.of(r) for r in reversed(rows)]


async def dead_letters(db: Database) -> list[EventView]:
    async with db.reader() as session:
        rows = (
            await session.scalars(
                select(OutboundEvent)
                .where(OutboundEvent.status == DeliveryStatus.DEAD)
                .order_by(OutboundEvent.created_at, OutboundEvent.event_id)
            )
        ).all()
    return [EventView.of(r) for r in rows]


async def replay_dead(db: Database, event_ids: Sequence[str] | None = None) -> int:
    """Put dead-lettered events (all, or ``event_ids``) back in the delivery queue with
    fresh attempts; return how many."""
    stmt = (
        update(OutboundEvent)
        .where(OutboundEvent.status == DeliveryStatus.DEAD)
        .values(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=datetime.now(UTC))
    )
    if event_ids:
        stmt = stmt.where(OutboundEvent.event_id.in_(event_ids))
    async with db.transaction() as session:
        result = await session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def status_counts(db: Database) -> dict[str, int]:
    async with db.reader() as session:
        rows = await session.execute(
            select(OutboundEvent.status, func.count()).group_by(OutboundEvent.status)
        )
        return {status: int(n) for status, n in rows.all()}
