"""Placing an order: checks, the seller hub's live offer, the chosen rate, this hub's
customs quote, then the order and its import pre-declaration command in one
transaction (idempotent per partner and ``Idempotency-Key``)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import (
    ServiceUnavailableError,
    UnprocessableError,
    field_error,
)
from ehub_core.idempotency import Outcome, replay, request_hash, run_once
from ehub_core.ids import uuid7
from ehub_core.models import IdempotencyRecord
from ehub_core.telemetry import current_traceparent
from ehub_gateway.orders.models import Order, OrderStep
from ehub_gateway.orders.offers import OfferLine, OfferPlace, OfferRequest, ask_offer
from ehub_gateway.orders.reading import read_order
from ehub_gateway.orders.schemas import OrderCreate
from ehub_gateway.saga.machine import Action, Role, State

if TYPE_CHECKING:
    from ehub_gateway.orders.service import Orders

# Destinations whose import regime identifies the buyer by national identity number.
IDENTITY_REQUIRED = {"CN"}
PLACE_SCOPE = "POST /v1/orders"


def buyer_ref(hub: str, data: OrderCreate) -> str:
    """A stable, non-reversible key for the buyer's allowance: the person (identity
    number) where the regime has one, so every marketplace's orders count together."""
    who = data.buyer.identity_number or data.buyer.id
    kind = "identity" if data.buyer.identity_number else "buyer"
    return hashlib.sha256(f"ehub:{hub}:{kind}:{who}".encode()).hexdigest()


def _choose_rate(offer: dict[str, Any], data: OrderCreate) -> dict[str, Any]:
    rates = offer["rates"]
    wish = data.shipping
    if wish.carrier is not None:
        for r in rates:
            if r["carrier"] == wish.carrier and r["service"] == wish.service:
                return dict(r)
        offered = ", ".join(f"{r['carrier']}/{r['service']}" for r in rates) or "none"
        raise UnprocessableError(
            f"{wish.carrier}/{wish.service} does not serve this route (offered: {offered})",
            errors=[field_error("shipping", "no such rate for this route", "unknown_rate")],
        )
    wanted = offer.get("fastest") if wish.choice == "fastest" else offer.get("cheapest")
    for r in rates:
        if r["rate_id"] == wanted:
            return dict(r)
    raise UnprocessableError(
        "no carrier of the seller's hub serves this address",
        errors=[field_error("ship_to", "no rate for this route", "no_route")],
    )


async def _quote(
    orders: Orders, data: OrderCreate, offer: dict[str, Any], rate: dict[str, Any], ref: str
) -> dict[str, Any]:
    body = {
        "origin": data.seller_hub,
        "destination": orders.hub,
        "date": datetime.now(UTC).date().isoformat(),
        "currency": offer["currency"],
        "buyer_currency": data.currency,
        "items": [
            {
                "hs_code": x["hs_code"],
                "description": x["title"][:500],
                "quantity": x["quantity"],
                "unit_value": x["unit_price"],
                "unit_weight_kg": x["weight_kg"],
                "country_of_origin": x["origin_country"],
            }
            for x in offer["lines"]
        ],
        "shipping": rate["amount"],
        "shipping_currency": rate["currency"],
        "buyer_id": ref,
        "seller_sme_verified": offer["seller"]["sme_verified"],
    }
    try:
        resp = await orders.services.post(
            f"{orders.customs_url}/operator/v1/landed-cost", json=body
        )
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(f"customs did not answer: {exc!r}") from None
    if resp.status_code == 422:
        problem = resp.json()
        detail = str(problem.get("detail", ""))
        # Customs names its own fields; map them back to the order's.
        field = "currency" if data.currency in detail.split() else "lines"
        raise UnprocessableError(
            f"customs cannot price this order: {problem.get('detail', '')}",
            errors=[field_error(field, problem.get("detail", "not priceable"), "not_priceable")],
        )
    if resp.status_code != 200:
        raise ServiceUnavailableError(f"customs answered {resp.status_code}")
    quote: dict[str, Any] = resp.json()
    if not quote.get("admissible", True):
        raise UnprocessableError(
            "these goods may not be imported here: " + "; ".join(quote.get("warnings", [])),
            errors=[field_error("lines", "not admissible at the destination", "not_admissible")],
        )
    return quote


def _money(quote: dict[str, Any], offer: dict[str, Any], rate: dict[str, Any]) -> dict[str, Any]:
    t = quote["buyer_totals"]
    goods = sum(Decimal(x["unit_price"]) * x["quantity"] for x in offer["lines"])
    regime = quote.get("regime")
    return {
        "currency": t["currency"],
        "goods": t["goods"],
        "shipping": t["shipping"],
        "duty": t["duty"],
        "excise": t["excise"],
        "vat": t["vat"],
        "fees": t["fees"],
        "total": t["landed"],
        "seller": {"currency": offer["currency"], "goods": str(goods)},
        "carrier_charge": {"amount": rate["amount"], "currency": rate["currency"]},
        "regime": regime and {k: regime[k] for k in ("rule_id", "name", "mode", "reason")},
        "allowance": regime
        and {"amount": regime["counts_toward_allowance"], "currency": quote["currency"]},
        "lane": quote.get("lane"),
    }


async def _replay(session: AsyncSession, scope: str, key: str, body: Any) -> Outcome | None:
    existing = await session.get(IdempotencyRecord, (scope, key))
    return None if existing is None else replay(existing, request_hash(body), key)


async def place_order(
    orders: Orders, data: OrderCreate, key: str | None, partner_id: str | None
) -> Outcome:
    """Price the order on the seller hub's live offer and this hub's customs, then record
    it with its import pre-declaration command, in one transaction."""
    db = orders.saga.db
    body = data.model_dump(mode="json")
    scope = f"{PLACE_SCOPE}:{partner_id or '-'}"  # one partner's keys never meet another's
    if key is not None:
        async with db.reader() as session:
            if (done := await _replay(session, scope, key, body)) is not None:
                return done
    hub = orders.hub
    if data.seller_hub == hub:
        raise UnprocessableError(
            "an order placed here is bought from another hub",
            errors=[field_error("seller_hub", "this hub itself", "not_cross_border")],
        )
    if data.ship_to.country != hub:
        raise UnprocessableError(
            f"orders placed at hub {hub} ship to {hub}",
            errors=[field_error("ship_to.country", f"must be {hub}", "wrong_destination")],
        )
    if hub in IDENTITY_REQUIRED and not data.buyer.identity_number:
        raise UnprocessableError(
            f"{hub}'s cross-border retail import identifies the buyer: identity_number is required",
            errors=[field_error("buyer.identity_number", "required here", "missing")],
        )
    peer = orders.fed.trust.peer(data.seller_hub)
    if peer is None:
        await orders.fed.trust.load()
        peer = orders.fed.trust.peer(data.seller_hub)
    if peer is None:
        raise UnprocessableError(
            f"{data.seller_hub} is not a peer of hub {hub}",
            errors=[field_error("seller_hub", "not a peer", "unknown_peer")],
        )
    offer = await ask_offer(
        orders.fed.client,
        peer_url=peer.base_url,
        seller_hub=peer.hub_id,
        resolve_key=orders.fed.trust.resolve,
        clock_skew=orders.fed.settings.clock_skew,
        request=OfferRequest(
            seller_id=data.seller_id,
            lines=[OfferLine(product_id=x.product_id, quantity=x.quantity) for x in data.lines],
            ship_to=OfferPlace(
                country=data.ship_to.country,
                city=data.ship_to.city,
                postal_code=data.ship_to.postal_code,
            ),
        ),
        budget=orders.offer_budget,
    )
    rate = _choose_rate(offer, data)
    ref = buyer_ref(hub, data)
    quote = await _quote(orders, data, offer, rate, ref)
    now = datetime.now(UTC)
    order = Order(
        id=f"ord_{uuid7().hex}",
        role=Role.BUYER,
        state=State.PLACED,
        buyer_hub=hub,
        seller_hub=data.seller_hub,
        seller_id=data.seller_id,
        partner_reference=data.partner_reference,
        partner_id=partner_id,
        buyer_ref=ref,
        identity_ref=(
            hashlib.sha256(f"ehub:{hub}:id:{data.buyer.identity_number}".encode()).hexdigest()
            if data.buyer.identity_number
            else None
        ),
        ship_to=data.ship_to.model_dump(mode="json", exclude_none=True),
        lines=offer["lines"],
        currency=data.currency,
        seller_currency=offer["currency"],
        money=_money(quote, offer, rate),
        shipping={**rate, "choice": None if data.shipping.carrier else data.shipping.choice},
        shipment=None,
        declarations={},
        seller={"name": offer["seller"]["name"], "sme_verified": offer["seller"]["sme_verified"]},
        reason=None,
        accept_by=None,
        traceparent=current_traceparent(),
        created_at=now,
        updated_at=now,
    )

    async with db.transaction() as session:

        async def create() -> tuple[int, Any]:
            session.add(order)
            session.add(
                OrderStep(
                    order_id=order.id,
                    at=now,
                    hub=hub,
                    what="OrderPlaced",
                    state=order.state,
                    detail={"total": order.money["total"], "currency": order.currency},
                )
            )
            await orders.saga.act(session, order, Action.FILE_IMPORT)
            await session.flush()
            return 201, (await read_order(session, order)).model_dump(mode="json")

        outcome = await run_once(session, scope=scope, key=key, body=body, create=create)
    orders.saga.notify()
    return outcome
