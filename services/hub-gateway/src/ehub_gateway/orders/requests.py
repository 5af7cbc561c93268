"""Partners' requests on an order: the seller's accept or reject, the buyer's cancel or
return (priced with this hub's cheapest carrier back to the seller)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import ConflictError, ServiceUnavailableError
from ehub_gateway.orders.models import Order
from ehub_gateway.orders.reading import get_order
from ehub_gateway.saga.machine import Role, State, step

if TYPE_CHECKING:
    from ehub_gateway.orders.service import Orders

REQUEST_ROLE = {
    "accept": Role.SELLER,
    "reject": Role.SELLER,
    "cancel": Role.BUYER,
    "return": Role.BUYER,
}


async def _return_rate(orders: Orders, order: Order) -> dict[str, Any]:
    """The cheapest of this hub's carriers back to the seller's return address."""
    to = (order.seller or {}).get("return_to")
    if not to:
        raise ConflictError(f"the seller's hub gave no return address for order {order.id}")
    weight = sum(Decimal(x["weight_kg"]) * x["quantity"] for x in order.lines)
    goods = order.money.get("seller", {}).get("goods", "0")
    body = {
        "origin": {
            k: order.ship_to.get(k)
            for k in ("country", "city", "postal_code")
            if order.ship_to.get(k)
        },
        "destination": {k: to.get(k) for k in ("country", "city", "postal_code") if to.get(k)},
        "parcels": [
            {"weight": str(max(weight, Decimal("0.1"))), "length": 30, "width": 20, "height": 15}
        ],
        "declared_value": {"amount": str(goods), "currency": order.seller_currency},
    }
    url = str(orders.fed.settings.logistics_url).rstrip("/")
    try:
        resp = await orders.services.post(f"{url}/operator/v1/rates", json=body)
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(f"logistics did not answer: {exc!r}") from None
    rates = resp.json() if resp.status_code == 200 else {}
    for r in rates.get("rates", []):
        if r["rate_id"] == rates.get("cheapest"):
            return {k: r[k] for k in ("carrier", "service", "currency")} | {
                "amount": str(r["total"])
            }
    raise ConflictError("no carrier of this hub takes a return to the seller's address")


async def request(
    orders: Orders,
    session: AsyncSession,
    order_id: str,
    what: str,
    reason: str | None,
    partner_id: str | None,
) -> Order:
    """A partner's accept, reject or cancel: one transition, or 409 saying why not."""
    order = await get_order(session, order_id, partner_id, for_update=orders.saga.db.is_postgres)
    role, state = Role(order.role), State(order.state)
    if role != REQUEST_ROLE[what]:
        side = "seller's" if REQUEST_ROLE[what] == Role.SELLER else "buyer's"
        raise ConflictError(
            f"{what} is asked at the {side} hub of order {order_id}; this hub is the {role}'s"
        )
    if step(role, state, what) is None:
        hint = " (the carrier has it: ask for a return after delivery)" if what == "cancel" else ""
        raise ConflictError(f"order {order_id} is {state}: it cannot be {what}ed now{hint}")
    if what == "return":
        window = timedelta(days=orders.return_window_days)
        if datetime.now(UTC) - order.updated_at > window:
            raise ConflictError(
                f"order {order_id} was delivered more than {orders.return_window_days} days ago: "
                "the return window is closed"
            )
        order.shipping = {**order.shipping, "return": await _return_rate(orders, order)}
        order.reason = reason or "returned by the buyer"
    if what == "reject":
        order.reason = f"seller_rejected: {reason or 'the seller declined the order'}"
    elif what == "cancel":
        order.reason = reason or "the buyer cancelled"
    await orders.saga.apply(
        session, order, what, what=what, hub=orders.hub, detail={"reason": reason} if reason else {}
    )
    return order
