"""Transactional outbox and its relay (ARCHITECTURE §4).

A service calls :func:`enqueue` inside the transaction that changes its state, so the
event exists exactly when the change does. The :class:`OutboxRelay` publishes pending
rows to the bus in id order (acks=all) and only then marks them sent. A crash between
the two re-publishes on restart; consumers dedup through the inbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core import metrics
from ehub_core.bus import BusUnavailable, EventBus, Message
from ehub_core.db import Database
from ehub_core.ids import uuid7
from ehub_core.models import OutboxRecord

log = logging.getLogger("ehub.outbox")

OUTBOX_DIRTY = "ehub_outbox_dirty"


async def enqueue(
    session: AsyncSession,
    *,
    topic: str,
    event_type: str,
    payload: bytes | Mapping[str, Any],
    key: str | None = None,
    event_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Add an event to the outbox in the session's transaction; return its event id.

    ``payload`` is bytes (e.g. a signed envelope) or a JSON-able mapping. The current
    trace context is stored with the event so the trace continues in the consumer.
    """
    event_id = event_id or str(uuid7())
    body = payload if isinstance(payload, bytes) else json.dumps(payload, default=str).encode()
    hdrs: dict[str, str] = {"event_id": event_id, "event_type": event_type}
    propagate.inject(hdrs)
    if headers:
        hdrs.update(headers)
    session.add(
        OutboxRecord(
            id=str(uuid7()),
            event_id=event_id,
            event_type=event_type,
            topic=topic,
            key=key,
            payload=body,
            headers=hdrs,
            created_at=datetime.now(UTC),
            attempts=0,
        )
    )
    session.info[OUTBOX_DIRTY] = True
    return event_id


def to_message(row: OutboxRecord) -> Message:
    return Message(
        topic=row.topic,
        value=row.payload,
        key=row.key.encode() if row.key else None,
        headers=tuple((k, str(v).encode()) for k, v in (row.headers or {}).items()),
    )


class OutboxRelay:
    """Publishes committed outbox rows; one per service process."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        service: str = "service",
        batch_size: int = 500,
        poll_interval: float = 0.5,
        max_backoff: float = 10.0,
    ) -> None:
        self.db = db
        self.bus = bus
        self.service = service
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.healthy = False

    def notify(self) -> None:
        """Wake the relay now (called after a commit that enqueued events)."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; return how many were published."""
        async with self.db.transaction() as session:
            stmt = (
                select(OutboxRecord)
                .where(OutboxRecord.sent_at.is_(None))
                .order_by(OutboxRecord.id)
                .limit(self.batch_size)
            )
            if self.db.is_postgres:
                # Several relay replicas may run; each takes distinct rows.
                stmt = stmt.with_for_update(skip_locked=True)
            rows: Sequence[OutboxRecord] = (await session.scalars(stmt)).all()
            if not rows:
                return 0
            try:
                await self.bus.publish([to_message(r) for r in rows])
            except BusUnavailable as exc:
                await self._record_failure(session, rows, str(exc))
                raise
            await self._mark_sent(session, [r.id for r in rows])
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    async def _record_failure(
        self, session: AsyncSession, rows: Sequence[OutboxRecord], error: str
    ) -> None:
        for r in rows:
            r.attempts += 1
            r.last_error = error[:2000]

    async def _mark_sent(self, session: AsyncSession, ids: list[str]) -> None:
        await session.execute(
            update(OutboxRecord).where(OutboxRecord.id.in_(ids)).values(sent_at=datetime.now(UTC))
        )

    async def pending_count(self) -> int:
        async with self.db.sessionmaker() as session:
            stmt = select(func.count()).select_from(OutboxRecord).where(
                OutboxRecord.sent_at.is_(None)
            )
            return int((await session.scalar(stmt)) or 0)

    async def run(self) -> None:
        """Relay until :meth:`stop`; back off exponentially while the broker is down."""
        backoff = self.poll_interval
        while not self._stopping.is_set():
            try:
                published = await self.publish_pending()
                self.healthy = True
                backoff = self.poll_interval
                if published == self.batch_size:
                    continue  # more may be waiting
            except BusUnavailable as exc:
                self.healthy = False
                log.warning("outbox relay: broker unavailable (%s); retry in %.1fs", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay iteration failed")
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            await self._sleep(self.poll_interval)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        waiter = asyncio.ensure_future(self._wake.wait())
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({waiter, stopper}, timeout=seconds, return_when="FIRST_COMPLETED")
        finally:
            waiter.cancel()
            stopper.cancel()

    def stop(self) -> None:
        self._stopping.set()
