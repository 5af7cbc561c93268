"""Webhook endpoints: registering (URL rules, known event types, at most
``MAX_ACTIVE_ENDPOINTS`` active per partner), reading, listing and disabling them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import ConflictError, NotFoundError, UnprocessableError, field_error
from ehub_core.ids import new_id
from ehub_gateway.webhooks.events import EVENT_TYPES, FAILED, PENDING
from ehub_gateway.webhooks.models import WebhookDelivery, WebhookEndpoint
from ehub_gateway.webhooks.signing import new_secret
from ehub_gateway.webhooks.urls import validate_url

MAX_ACTIVE_ENDPOINTS = 20


async def create_endpoint(
    session: AsyncSession,
    *,
    partner_id: str,
    url: str,
    event_types: list[str],
    description: str | None,
    allow_http: bool,
) -> WebhookEndpoint:
    validate_url(url, allow_http=allow_http)
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise UnprocessableError(
            f"unknown event types: {', '.join(unknown)} (known: {', '.join(EVENT_TYPES)})",
            errors=[field_error("event_types", "unknown event type")],
        )
    e = WebhookEndpoint.__table__.c
    active = (
        await session.execute(
            select(e.id).where(e.partner_id == partner_id, e.disabled_at.is_(None))
        )
    ).all()
    if len(active) >= MAX_ACTIVE_ENDPOINTS:
        raise ConflictError(
            f"a partner may have at most {MAX_ACTIVE_ENDPOINTS} active webhook endpoints; "
            "delete one first"
        )
    endpoint = WebhookEndpoint(
        id=new_id("wh"),
        partner_id=partner_id,
        url=url,
        description=description,
        event_types=list(dict.fromkeys(event_types)),
        secret=new_secret(),
        created_at=datetime.now(UTC),
        disabled_at=None,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(
    session: AsyncSession, partner_id: str, endpoint_id: str, *, for_update: bool = False
) -> WebhookEndpoint:
    """The partner's own endpoint; another partner's is "not found" too."""
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if for_update and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    endpoint = (await session.execute(stmt)).scalar_one_or_none()
    if endpoint is None or endpoint.partner_id != partner_id:
        raise NotFoundError(f"no webhook endpoint {endpoint_id}")
    return endpoint


async def list_endpoints(
    session: AsyncSession, partner_id: str, *, cursor: str | None, limit: int
) -> tuple[list[WebhookEndpoint], str | None]:
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.partner_id == partner_id)
        .order_by(WebhookEndpoint.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        stmt = stmt.where(WebhookEndpoint.id < cursor)
    rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


async def disable_endpoint(
    session: AsyncSession, partner_id: str, endpoint_id: str
) -> WebhookEndpoint:
    """Stop sending to it; what was still pending for it ends ``failed``."""
    endpoint = await get_endpoint(session, partner_id, endpoint_id, for_update=True)
    if endpoint.disabled_at is None:
        now = datetime.now(UTC)
        endpoint.disabled_at = now
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == PENDING)
            .values(status=FAILED, last_error="endpoint disabled", next_attempt_at=None)
        )
    return endpoint
