"""The delivery log: an endpoint's deliveries with their attempts, and redelivery."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import ConflictError, NotFoundError
from ehub_gateway.webhooks.endpoints import get_endpoint
from ehub_gateway.webhooks.events import PENDING, wake_after_commit
from ehub_gateway.webhooks.models import WebhookAttempt, WebhookDelivery


async def list_deliveries(
    session: AsyncSession,
    partner_id: str,
    endpoint_id: str,
    *,
    status: str | None,
    cursor: int | None,
    limit: int,
) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], str | None]:
    """Newest first; each with its attempts (oldest first)."""
    endpoint = await get_endpoint(session, partner_id, endpoint_id)
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.seq.desc())
        .limit(limit + 1)
    )
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    if cursor is not None:
        stmt = stmt.where(WebhookDelivery.seq < cursor)
    rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    attempts: dict[int, list[WebhookAttempt]] = {r.seq: [] for r in rows}
    if rows:
        for a in (
            await session.execute(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_seq.in_(list(attempts)))
                .order_by(WebhookAttempt.id)
            )
        ).scalars():
            attempts[a.delivery_seq].append(a)
    return [(r, attempts[r.seq]) for r in rows], (str(rows[-1].seq) if more and rows else None)


async def redeliver(
    session: AsyncSession, partner_id: str, endpoint_id: str, delivery_id: str
) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    """A new attempt now, under the same webhook-id. A delivered or failed delivery goes
    back to ``pending`` with a fresh retry window; a pending one is simply due now."""
    endpoint = await get_endpoint(session, partner_id, endpoint_id)
    if endpoint.disabled_at is not None:
        raise ConflictError(f"webhook endpoint {endpoint_id} is disabled")
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    delivery = (await session.execute(stmt)).scalar_one_or_none()
    if delivery is None:
        raise NotFoundError(f"no delivery {delivery_id} for webhook endpoint {endpoint_id}")
    now = datetime.now(UTC)
    if delivery.status != PENDING:
        delivery.status = PENDING
        delivery.retry_from = now
        delivery.delivered_at = None
    delivery.next_attempt_at = now
    wake_after_commit(session)
    await session.flush()
    attempts = list(
        (
            await session.execute(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_seq == delivery.seq)
                .order_by(WebhookAttempt.id)
            )
        ).scalars()
    )
    return delivery, attempts
