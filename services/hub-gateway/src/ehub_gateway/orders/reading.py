"""Reading orders: one order with its timeline (only the caller's own), and the list."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import NotFoundError
from ehub_gateway.orders.models import Order, OrderStep
from ehub_gateway.orders.schemas import OrderRead, OrderSummary, StepRead
from ehub_gateway.saga.machine import Role, State, allowed_requests


async def _steps(session: AsyncSession, order_id: str) -> list[OrderStep]:
    rows = await session.execute(
        select(OrderStep).where(OrderStep.order_id == order_id).order_by(OrderStep.id)
    )
    return list(rows.scalars())


async def read_order(session: AsyncSession, order: Order) -> OrderRead:
    steps = await _steps(session, order.id)
    return OrderRead(
        id=order.id,
        role=order.role,
        state=order.state,
        next=allowed_requests(Role(order.role), State(order.state)),
        buyer_hub=order.buyer_hub,
        seller_hub=order.seller_hub,
        seller_id=order.seller_id,
        partner_reference=order.partner_reference,
        lines=order.lines,
        ship_to=order.ship_to,
        currency=order.currency,
        seller_currency=order.seller_currency,
        money=order.money,
        shipping=order.shipping,
        shipment=order.shipment,
        declarations=order.declarations,
        reason=order.reason,
        accept_by=order.accept_by,
        created_at=order.created_at,
        updated_at=order.updated_at,
        timeline=[
            StepRead(at=s.at, hub=s.hub, what=s.what, state=s.state, detail=s.detail) for s in steps
        ],
    )


async def get_order(
    session: AsyncSession, order_id: str, partner_id: str | None, *, for_update: bool = False
) -> Order:
    """The order if the caller may see it: another partner's order is "not found" too."""
    order = await session.get(Order, order_id, with_for_update=for_update or None)
    if order is None or (partner_id is not None and order.partner_id != partner_id):
        raise NotFoundError(f"no order {order_id} at this hub")
    return order


async def list_orders(
    session: AsyncSession,
    *,
    state: str | None,
    role: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    cursor: str | None,
    limit: int,
    partner_id: str | None,
) -> tuple[list[OrderSummary], str | None]:
    stmt = select(Order).order_by(Order.id.desc()).limit(limit + 1)
    if partner_id is not None:
        stmt = stmt.where(Order.partner_id == partner_id)
    if state:
        stmt = stmt.where(Order.state == state)
    if role:
        stmt = stmt.where(Order.role == role)
    if created_after:
        stmt = stmt.where(Order.created_at >= created_after)
    if created_before:
        stmt = stmt.where(Order.created_at < created_before)
    if cursor:
        stmt = stmt.where(Order.id < cursor)
    found = list((await session.execute(stmt)).scalars())
    items = [
        OrderSummary(
            id=o.id,
            role=o.role,
            state=o.state,
            buyer_hub=o.buyer_hub,
            seller_hub=o.seller_hub,
            seller_id=o.seller_id,
            partner_reference=o.partner_reference,
            currency=o.currency,
            total=str(o.money.get("total", "")),
            created_at=o.created_at,
            updated_at=o.updated_at,
        )
        for o in found[:limit]
    ]
    return items, (found[limit - 1].id if len(found) > limit else None)
