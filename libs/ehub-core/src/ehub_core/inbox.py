"""Inbox / idempotent consumer (ARCHITECTURE §4).

A consumer records ``(consumer, event_id)`` in the same transaction as the state change
the event causes. A redelivered event finds its row and is skipped: at-least-once
transport, exactly-once effect.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core import metrics
from ehub_core.bus import Message
from ehub_core.db import Database, insert_new
from ehub_core.models import InboxRecord

log = logging.getLogger("ehub.inbox")


async def consume_once(session: AsyncSession, *, event_id: str, consumer: str) -> bool:
    """Record the event for ``consumer``; False if it was already recorded (a duplicate).

    Call inside the transaction that applies the event's effect.
    """
    return bool(await consume_many(session, event_ids=[event_id], consumer=consumer))


async def consume_many(
    session: AsyncSession, *, event_ids: Sequence[str], consumer: str
) -> set[str]:
    """Record many events at once; return the ids that were new (one statement)."""
    now = datetime.now(UTC)
    rows = [{"consumer": consumer, "event_id": e, "received_at": now} for e in event_ids]
    fresh = {e for _, e in await insert_new(session, InboxRecord, rows, ("consumer", "event_id"))}
    if len(fresh) < len(event_ids):
        metrics.INBOX_DUPLICATES.labels(consumer).inc(len(event_ids) - len(fresh))
    return fresh


EventHandler = Callable[[AsyncSession, Message], Awaitable[None]]


def idempotent(
    db: Database, consumer: str, handler: EventHandler
) -> Callable[[Message], Awaitable[None]]:
    """Wrap ``handler`` so each event id takes effect once, in one transaction.

    The returned callable fits :meth:`ehub_core.bus.EventBus.subscribe`.
    """

    async def handle(message: Message) -> None:
        event_id = message.header("event_id")
        if not event_id:
            log.warning("dropping message without event_id on %s", message.topic)
            return
        async with db.transaction() as session:
            if await consume_once(session, event_id=event_id, consumer=consumer):
                await handler(session, message)

    return handle
