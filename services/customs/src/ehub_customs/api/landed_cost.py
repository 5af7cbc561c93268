"""Landed-cost routes: ``POST /v1/landed-cost`` for partners (a quote or, with
``target_total``, a reverse quote) and ``POST /operator/v1/landed-cost/batch`` for the
hub itself (the catalog's search). They parse, call the service, answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from ehub_core.app import ServiceContext
from ehub_core.deps import ContextDep
from ehub_core.errors import problem_responses
from ehub_core.partners import GuardedRoute, authenticate_operator
from ehub_customs.api.deps import QuotesReader, RuleBookDep
from ehub_customs.landed_cost import service
from ehub_customs.landed_cost.batch import BatchCreate, BatchRead, price_batch
from ehub_customs.landed_cost.schemas import LandedCostCreate, LandedCostRead
from ehub_customs.tariffs.rulebook import RuleBook

# No prefix here: the module holds a partner route (/v1) and, included below, an
# operator route (/operator/v1) with the operator's guard.
router = APIRouter(route_class=GuardedRoute)
operator_router = APIRouter(
    prefix="/operator/v1",
    tags=["operator"],
    route_class=GuardedRoute,
    dependencies=[Depends(authenticate_operator)],
)

EXAMPLE: dict[str, Any] = {
    "origin": "CA",
    "destination": "CN",
    "date": "2026-12-02",
    "currency": "CAD",
    "buyer_currency": "CNY",
    "items": [
        {
            "hs_code": "0306.32",
            "description": "live lobster",
            "quantity": 2,
            "unit_value": "40.00",
            "unit_weight_kg": "0.8",
            "country_of_origin": "CA",
        }
    ],
    "shipping": "22.00",
    "buyer_id": "buyer-42",
}

QUOTE_PROBLEMS = problem_responses(
    {
        422: "A field is invalid: unknown country or currency, origin equal to the "
        "destination (`not-cross-border`), no rule book for the destination or date, no FX "
        "rate (`no-fx-rate`); `errors` names the field",
    }
)


@router.post(
    "/v1/landed-cost",
    tags=["landed cost"],
    response_model=LandedCostRead,
    responses=QUOTE_PROBLEMS,
    summary="Landed cost of a consignment: duty, taxes, levies, each citing its rule",
    description="Prices a cross-border consignment against the destination's rules in force "
    "on `date`: customs value, duty (with preferences and eWTP lanes), excise, levies, "
    "VAT/GST, fees, de minimis thresholds and, for China, the cross-border retail regime "
    "with the buyer's yearly allowance (read from the ledger when `buyer_id` is given). "
    "Amounts are in the destination currency (`totals`) and in `buyer_currency` "
    "(`buyer_totals`), rounded to each currency's ISO 4217 minor unit. With `target_total` "
    "the quote is reversed: the net unit prices whose landed total is that amount. Needs "
    "the `quotes:read` scope.",
)
async def create_landed_cost(
    body: Annotated[
        LandedCostCreate,
        Body(openapi_examples={"lobster": {"summary": "Live lobster CA to CN", "value": EXAMPLE}}),
    ],
    book: RuleBookDep,
    ctx: ContextDep,
    _caller: QuotesReader,
) -> JSONResponse:
    return await landed_cost(body, book, ctx)


async def landed_cost(body: LandedCostCreate, book: RuleBook, ctx: ServiceContext) -> JSONResponse:
    """The quote (or reverse quote) answer, for partners and for the operator."""
    return JSONResponse(await service.landed_cost(book=book, db=ctx.db, body=body))


@operator_router.post(
    "/landed-cost/batch",
    response_model=BatchRead,
    responses=problem_responses({422: "The batch is invalid (e.g. more than 200 items)"}),
    summary="Landed cost of up to 200 products for one destination (the catalog's search)",
    description="Each item is priced as its own consignment without shipping, in the "
    "buyer's `currency`. An item that cannot be priced (malformed or unknown HS code or "
    "origin, origin equal to the destination, no FX rate) is answered `ok: false` with a "
    "problem; the others are priced. `importable` and `restriction` come from the "
    "destination's restricted-goods screening data by HS code and origin, and from the "
    "rule book's restrictions.",
)
async def create_landed_cost_batch(
    body: BatchCreate, book: RuleBookDep, request: Request
) -> JSONResponse:
    screening = getattr(request.app.state, "screening", None)
    return JSONResponse(price_batch(book=book, body=body, screening=screening))


router.include_router(operator_router)
