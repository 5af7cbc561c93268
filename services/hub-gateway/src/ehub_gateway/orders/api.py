"""Order routes: partners at ``/v1/orders``; the seller's hub's live offers for peers at
``/federation/v1/offers`` (signed both ways)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ehub_core.deps import ReadSessionDep, SessionDep
from ehub_core.errors import DomainError, UnprocessableError, field_error
from ehub_core.idempotency import IdempotencyKey
from ehub_core.nonce_store import SqlNonceStore
from ehub_gateway.api.federation import authenticate, signed, signed_problem
from ehub_gateway.orders import service
from ehub_gateway.orders.offers import OfferRequest, build_offer
from ehub_gateway.orders.schemas import OrderCreate, OrderPage, OrderRead, ReasonIn
from ehub_gateway.orders.service import Orders
from ehub_gateway.partners.door import Principal

router = APIRouter(prefix="/v1/orders", tags=["orders"])
peer_router = APIRouter(tags=["federation"])


async def get_orders(request: Request) -> Orders:
    orders: Orders = request.app.state.orders
    return orders


OrdersDep = Annotated[Orders, Depends(get_orders)]


async def get_partner_id(request: Request) -> str | None:
    """The calling partner, admitted by the door (``partners/door.py``)."""
    principal: Principal | None = getattr(request.state, "partner", None)
    return principal.partner_id if principal else None


PartnerIdDep = Annotated[str | None, Depends(get_partner_id)]


@router.post(
    "",
    status_code=201,
    response_model=OrderRead,
    summary="Place a cross-border order at the buyer's hub",
    description="Prices the order on the seller hub's live offer (stock, price, rates) and "
    "this hub's customs (landed cost, lane, de minimis), records it with its import "
    "pre-declaration, and answers 201 with the landed-cost breakdown, status `placed`. "
    "The rest travels as events: see `GET /v1/orders/{id}`.",
)
async def place_order(
    data: OrderCreate,
    orders: OrdersDep,
    partner_id: PartnerIdDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    outcome = await service.place_order(orders, data, idempotency_key, partner_id)
    headers = {"Location": f"/v1/orders/{outcome.body['id']}"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


@router.get("/{order_id}", response_model=OrderRead, summary="An order and its timeline")
async def read_order(order_id: str, session: ReadSessionDep, partner_id: PartnerIdDep) -> OrderRead:
    """The order with its money, declarations and timeline, at either hub; a partner reads only
    its own."""
    order = await service.get_order(session, order_id, partner_id)
    return await service.read_order(session, order)


@router.get("", response_model=OrderPage, summary="Orders at this hub, newest first")
async def list_orders(
    session: ReadSessionDep,
    partner_id: PartnerIdDep,
    state: Annotated[str | None, Query(pattern=r"^[a-z_]{1,24}$")] = None,
    role: Literal["buyer", "seller"] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    cursor: Annotated[str | None, Query(pattern=r"^ord_[0-9a-f]{32}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> OrderPage:
    """The caller's orders at this hub, newest first, filtered by state and creation time,
    paged with `cursor`."""
    items, next_cursor = await service.list_orders(
        session,
        state=state,
        role=role,
        created_after=created_after,
        created_before=created_before,
        cursor=cursor,
        limit=limit,
        partner_id=partner_id,
    )
    return OrderPage(items=items, next_cursor=next_cursor)


async def _request(
    request: Request, session: SessionDep, order_id: str, what: str, body: ReasonIn | None
) -> OrderRead:
    orders = await get_orders(request)
    partner_id = await get_partner_id(request)
    reason = body.reason if body else None
    order = await service.request(orders, session, order_id, what, reason, partner_id)
    await session.flush()
    return await service.read_order(session, order)


@router.post("/{order_id}/accept", response_model=OrderRead, summary="The seller accepts")
async def accept(order_id: str, request: Request, session: SessionDep) -> OrderRead:
    """The seller accepts an order waiting for it; the saga goes on to export clearance and
    booking."""
    return await _request(request, session, order_id, "accept", None)


@router.post("/{order_id}/reject", response_model=OrderRead, summary="The seller rejects")
async def reject(
    order_id: str, request: Request, session: SessionDep, body: ReasonIn | None = None
) -> OrderRead:
    """The seller rejects an order waiting for it, with a reason; what was reserved is released
    at both hubs."""
    return await _request(request, session, order_id, "reject", body)


@router.post(
    "/{order_id}/cancel",
    response_model=OrderRead,
    summary="The buyer cancels (before the carrier has the parcel)",
)
async def cancel(
    order_id: str, request: Request, session: SessionDep, body: ReasonIn | None = None
) -> OrderRead:
    """The buyer's marketplace cancels before the carrier has picked the parcel up; both hubs
    undo what was done."""
    return await _request(request, session, order_id, "cancel", body)


@router.post(
    "/{order_id}/returns",
    response_model=OrderRead,
    summary="The buyer returns a delivered order (within the return window)",
    description="Books a return shipment with this hub's cheapest carrier to the seller's "
    "return address and tells the seller's hub; when the seller's hub has the goods back "
    "and restocked, this hub files the duty and tax refund claim and gives the buyer's "
    "allowance back. Whole orders only (partial returns are planned).",
)
async def return_order(
    order_id: str, request: Request, session: SessionDep, body: ReasonIn | None = None
) -> OrderRead:
    return await _request(request, session, order_id, "return", body)


@peer_router.post(
    "/federation/v1/offers",
    summary="The seller hub's live offer for an order: products, stock, rates (signed)",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "seller": {
                            "id": "sel_01",
                            "name": "Atlantic Lobster Co.",
                            "country": "CA",
                            "sme_verified": True,
                        },
                        "currency": "CAD",
                        "lines": [
                            {
                                "line_id": "l1",
                                "product_id": "prd_01",
                                "quantity": 2,
                                "title": "Live lobster",
                                "hs_code": "030632",
                                "origin_country": "CA",
                                "unit_price": "45.00",
                                "currency": "CAD",
                                "weight_kg": "0.9",
                            }
                        ],
                        "rates": [
                            {
                                "rate_id": "rate_01",
                                "carrier": "postal",
                                "service": "surface_parcel",
                                "service_level": "economy",
                                "amount": "16.64",
                                "currency": "USD",
                                "transit_days": 12,
                            }
                        ],
                        "cheapest": "rate_01",
                        "fastest": "rate_01",
                    }
                }
            }
        }
    },
)
async def offers(request: Request, orders: OrdersDep) -> Response:
    """A peer hub (the buyer's) asks, in an RFC 9421-signed request, what its order would
    get here: the seller, each line priced from the catalog and checked against stock, and
    the carriers' rates to the buyer's address. The answer, offer or problem, is signed."""
    fed = orders.fed
    body = await request.body()
    async with orders.saga.db.transaction() as session:
        await authenticate(request, SqlNonceStore(session), fed, body)
    try:
        offer = await _offer(orders, body)
    except DomainError as exc:
        # Signed like the offer: the buyer's hub acts on neither unless it verifies.
        return signed_problem(request, fed, exc)
    return signed(request, fed, 200, json.dumps(offer).encode(), "application/json")


async def _offer(orders: Orders, body: bytes) -> dict[str, Any]:
    try:
        wanted = OfferRequest.model_validate_json(body)
    except ValidationError as exc:
        raise UnprocessableError(
            "Invalid offer request",
            errors=[field_error(e["loc"], e["msg"], e["type"]) for e in exc.errors()],
        ) from None
    settings = orders.fed.settings
    return await build_offer(
        orders.services,
        catalog=str(settings.catalog_url).rstrip("/"),
        logistics=str(settings.logistics_url).rstrip("/"),
        request=wanted,
    )
