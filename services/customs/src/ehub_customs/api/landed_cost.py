"""``POST /v1/landed-cost``: a quote (or, with ``target_total``, a reverse quote)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ehub_core.app import ServiceContext
from ehub_core.deps import ContextDep
from ehub_core.partners import GuardedRoute
from ehub_customs.allowances.service import used_allowance
from ehub_customs.api.deps import QuotesReader, RuleBookDep
from ehub_customs.landed_cost.engine import quote
from ehub_customs.landed_cost.reverse import reverse
from ehub_customs.landed_cost.schemas import LandedCostCreate, LandedCostRead, quote_dict
from ehub_customs.tariffs.rulebook import RuleBook

router = APIRouter(prefix="/v1", tags=["landed cost"], route_class=GuardedRoute)


@router.post(
    "/landed-cost",
    response_model=None,
    responses={200: {"model": LandedCostRead}},
    summary="Landed cost of a consignment: duty, taxes, levies, each citing its rule",
)
async def create_landed_cost(
    body: LandedCostCreate, book: RuleBookDep, ctx: ContextDep, _caller: QuotesReader
) -> JSONResponse:
    return await landed_cost(body, book, ctx)


async def landed_cost(body: LandedCostCreate, book: RuleBook, ctx: ServiceContext) -> JSONResponse:
    """The quote (or reverse quote) answer, for partners and for the operator."""
    if body.shipping_currency and body.shipping_currency != body.currency:
        fx = book.fx.rate(
            body.shipping_currency, body.currency, body.date, field="shipping_currency"
        )
        body = body.model_copy(update={"shipping": body.shipping * fx.rate})
    req = body.to_domain()
    used: Decimal | None = None
    rules = book.country(req.destination)
    if req.buyer_id and rules.view(req.date).quota is not None:
        # A read-only look-up: only quotes that need the ledger open a session.
        async with ctx.db.reader() as session:
            used = await used_allowance(
                session, country=req.destination, buyer_id=req.buyer_id, on=req.date
            )
    if body.target_total is None:
        return JSONResponse(quote_dict(quote(book, req, allowance_used=used)))
    result = reverse(
        book, req, body.target_total, target_currency=body.target_currency, allowance_used=used
    )
    out: dict[str, Any] = quote_dict(result.quote)
    out["mode"] = "reverse"
    out["reverse"] = {
        "target_total": str(result.target),
        "target_currency": result.target_currency,
        "net_unit_values": [str(v) for v in result.net_unit_values],
        "residual": str(result.residual),
        "exact": result.exact,
    }
    return JSONResponse(out)
