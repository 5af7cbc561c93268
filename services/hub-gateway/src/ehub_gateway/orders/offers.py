"""Offers: what the seller's hub answers, live and signed, before an order is placed.

The buyer's hub asks ``POST /federation/v1/offers`` (a signed request) with the lines and
where they go; the seller's hub answers from its own catalog (price, HS code, weight,
origin, stock now) and its carriers' rates for that route. So an order is priced on the
owning hub's current data, never on a stale copy.

The seller's hub signs its answer, the offer and a refusal alike (RFC 9421, bound to the
request's own signature), and the buyer's hub uses neither unless it verifies against the
seller hub's keys in its trust store: prices, stock and rates that someone else wrote, or
that the seller's hub wrote for another request, would otherwise become an order.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ehub_core.errors import (
    DomainError,
    NotFoundError,
    ServiceUnavailableError,
    UnprocessableError,
    field_error,
)
from ehub_core.signing import KeyResolver, SignatureError, verify_response

ID = r"^[A-Za-z0-9_\-]{1,40}$"
# Answers whose content the buyer's hub uses: the offer, and a refusal's field errors.
VERIFIED_STATUSES = (200, 422)


class UnverifiedOffer(DomainError):
    """502: the seller hub's answer did not verify; nothing was placed."""

    status = 502
    title = "Unverifiable answer from the seller's hub"
    type_slug = "unverified-offer"


class OfferLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: str = Field(pattern=ID)
    quantity: int = Field(gt=0, le=10_000)


class OfferPlace(BaseModel):
    model_config = ConfigDict(extra="forbid")
    country: str = Field(pattern=r"^[A-Z]{2}$")
    city: str | None = Field(None, max_length=100)
    postal_code: str | None = Field(None, max_length=20)


class OfferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seller_id: str = Field(pattern=ID)
    lines: list[OfferLine] = Field(min_length=1, max_length=50)
    ship_to: OfferPlace


async def _get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    try:
        return await client.get(url)
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(f"a service of this hub did not answer: {exc!r}") from None


async def build_offer(
    client: httpx.AsyncClient, *, catalog: str, logistics: str, request: OfferRequest
) -> dict[str, Any]:
    """The seller hub's side: product facts, stock and rates from its own services."""
    # The hub reads its own catalog as its operator: the offer is the hub's, not a partner's.
    resp = await _get(client, f"{catalog}/operator/v1/sellers/{request.seller_id}")
    if resp.status_code == 404:
        raise UnprocessableError(
            f"seller {request.seller_id} is not on this hub",
            errors=[field_error("seller_id", "unknown seller", "unknown_seller")],
        )
    resp.raise_for_status()
    seller = resp.json()
    lines = []
    # Several lines of one product draw on one stock.
    wanted: dict[str, int] = {}
    for line in request.lines:
        wanted[line.product_id] = wanted.get(line.product_id, 0) + line.quantity
    for i, line in enumerate(request.lines):
        resp = await _get(client, f"{catalog}/operator/v1/products/{line.product_id}")
        if resp.status_code == 404 or (
            resp.status_code == 200 and resp.json()["seller_id"] != request.seller_id
        ):
            raise UnprocessableError(
                f"product {line.product_id} is not sold by {request.seller_id} on this hub",
                errors=[field_error(f"lines.{i}.product_id", "unknown product", "unknown_product")],
            )
        resp.raise_for_status()
        p = resp.json()
        if int(p["stock"]) < wanted[line.product_id]:
            raise UnprocessableError(
                f"product {line.product_id}: {wanted[line.product_id]} asked, "
                f"{p['stock']} in stock",
                errors=[field_error(f"lines.{i}.quantity", "more than in stock", "out_of_stock")],
            )
        lines.append(
            {
                "line_id": f"l{i + 1}",
                "product_id": p["id"],
                "quantity": line.quantity,
                "title": p["title"],
                "hs_code": p["hs_code"],
                "origin_country": p["origin_country"],
                "unit_price": str(p["price"]),
                "currency": p["currency"],
                "weight_kg": str(p["weight_kg"]),
            }
        )
    currencies = {x["currency"] for x in lines}
    if len(currencies) != 1:
        raise UnprocessableError(
            "the lines are priced in different currencies; place one order per currency",
            errors=[field_error("lines", "mixed currencies", "mixed_currencies")],
        )
    currency = currencies.pop()
    ship_from = seller.get("ship_from")
    if not ship_from:
        raise UnprocessableError(
            f"seller {request.seller_id} has no dispatch address (ship_from) yet",
            errors=[field_error("seller_id", "no ship_from address", "seller_not_shipping")],
        )
    weight = sum(Decimal(x["weight_kg"]) * x["quantity"] for x in lines)
    goods = sum(Decimal(x["unit_price"]) * x["quantity"] for x in lines)
    rate_request = {
        "origin": {
            k: ship_from.get(k) for k in ("country", "postal_code", "city") if ship_from.get(k)
        },
        "destination": request.ship_to.model_dump(exclude_none=True),
        "parcels": [
            {"weight": str(max(weight, Decimal("0.1"))), "length": 30, "width": 20, "height": 15}
        ],
        "declared_value": {"amount": str(goods), "currency": currency},
    }
    try:
        resp = await client.post(f"{logistics}/operator/v1/rates", json=rate_request)
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(f"logistics did not answer: {exc!r}") from None
    if resp.status_code == 422:
        raise UnprocessableError(
            f"no carrier can quote this route: {resp.json().get('detail', '')}",
            errors=[field_error("ship_to", "no rate for this route", "no_route")],
        )
    resp.raise_for_status()
    rates = resp.json()
    return {
        "seller": {
            "id": seller["id"],
            "name": seller["name"],
            "country": seller["country"],
            "sme_verified": bool(seller.get("sme_verified")),
        },
        "currency": currency,
        "lines": lines,
        "rates": [
            {
                "rate_id": r["rate_id"],
                "carrier": r["carrier"],
                "service": r["service"],
                "service_level": r["service_level"],
                "amount": str(r["total"]),
                "currency": r["currency"],
                "transit_days": r["transit_days"],
            }
            for r in rates["rates"]
        ],
        "cheapest": rates.get("cheapest"),
        "fastest": rates.get("fastest"),
    }


async def verify_answer(
    resp: httpx.Response, *, seller_hub: str, resolve_key: KeyResolver, clock_skew: int
) -> None:
    """Refuse (502) an answer not signed by ``seller_hub`` for exactly this request.

    ``expected_hub`` makes a key of any other trusted hub fail (``hub_mismatch``); the
    covered request signature makes an answer captured from another request fail.
    """
    try:
        await verify_response(
            resp.status_code,
            resp.headers,
            resp.content,
            request_method=resp.request.method,
            request_url=str(resp.request.url),
            request_headers=resp.request.headers,
            resolve_key=resolve_key,
            expected_hub=seller_hub,
            clock_skew=clock_skew,
        )
    except SignatureError as exc:
        raise UnverifiedOffer(
            f"the answer of {seller_hub}'s hub ({resp.status_code}) does not carry a valid "
            f"signature of {seller_hub} for this request ({exc.reason_code}); nothing was "
            "placed, try again",
            reason=exc.reason_code,
        ) from None


async def ask_offer(
    client: httpx.AsyncClient,
    *,
    peer_url: str,
    seller_hub: str,
    request: OfferRequest,
    budget: float,
    resolve_key: KeyResolver,
    clock_skew: int,
) -> dict[str, Any]:
    """The buyer hub's side: a signed request to the seller's hub within ``budget`` s,
    whose answer must be signed by that hub (:func:`verify_answer`)."""
    url = f"{peer_url.rstrip('/')}/federation/v1/offers"
    try:
        resp = await client.post(
            url,
            content=request.model_dump_json().encode(),
            timeout=budget,
            headers={"content-type": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(
            f"the seller's hub did not answer within {budget:g} s ({type(exc).__name__}); "
            "nothing was placed, try again",
            headers={"Retry-After": "5"},
        ) from None
    if resp.status_code in VERIFIED_STATUSES:
        await verify_answer(
            resp, seller_hub=seller_hub, resolve_key=resolve_key, clock_skew=clock_skew
        )
    if resp.status_code == 200:
        body: dict[str, Any] = resp.json()
        return body
    problem: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        problem = resp.json()
    if resp.status_code == 422:
        raise UnprocessableError(
            f"the seller's hub refused the lines: {problem.get('detail', '')}",
            errors=problem.get("errors", []),
        )
    if resp.status_code == 404:
        raise NotFoundError("the seller's hub does not offer orders yet")
    raise DomainError(
        f"the seller's hub answered {resp.status_code}: {problem.get('detail', '')}",
        status=502,
        title="Bad answer from the seller's hub",
    )
