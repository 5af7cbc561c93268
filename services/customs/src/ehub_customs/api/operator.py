"""Operator routes (``Authorization: Bearer <EHUB_INTERNAL_TOKEN>``): any buyer's
allowance, and landed-cost quotes for the hub itself (docs/partners.md)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ehub_core.deps import ContextDep, SessionDep
from ehub_core.partners import GuardedRoute, authenticate_operator
from ehub_customs.api.allowances import (
    AllowanceRead,
    BuyerPath,
    CountryPath,
    DateQuery,
    allowance_read,
)
from ehub_customs.api.deps import RuleBookDep
from ehub_customs.api.landed_cost import landed_cost
from ehub_customs.landed_cost.schemas import LandedCostCreate, LandedCostRead

router = APIRouter(
    prefix="/operator/v1",
    tags=["operator"],
    route_class=GuardedRoute,
    dependencies=[Depends(authenticate_operator)],
)


@router.get(
    "/allowances/{country}/{buyer_id}",
    response_model=AllowanceRead,
    summary="Any buyer's person-year allowance",
)
async def read_allowance(
    country: CountryPath,
    buyer_id: BuyerPath,
    book: RuleBookDep,
    session: SessionDep,
    date: DateQuery = None,
) -> AllowanceRead:
    """Any buyer's allowance, for the operator."""
    return await allowance_read(session, book, country=country, buyer_id=buyer_id, on=date)


@router.post(
    "/landed-cost",
    response_model=None,
    responses={200: {"model": LandedCostRead}},
    summary="Landed cost for the hub itself (as POST /v1/landed-cost)",
)
async def create_landed_cost(
    body: LandedCostCreate, book: RuleBookDep, ctx: ContextDep
) -> JSONResponse:
    """A landed-cost quote for the hub itself, as `POST /v1/landed-cost`."""
    return await landed_cost(body, book, ctx)
