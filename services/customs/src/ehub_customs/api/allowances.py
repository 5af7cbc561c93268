"""``GET /v1/allowances/{country}/{buyer_id}``: a buyer's person-year allowance.

A partner reads it only as a marketplace that placed at least one order of the buyer
(an entry in the ledger); anyone else is answered 404. The operator reads any buyer's
on ``/operator/v1/allowances/{country}/{buyer_id}`` (``api/operator.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import date as Date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.deps import SessionDep
from ehub_core.errors import NotFoundError
from ehub_core.limits import IsoDate
from ehub_core.partners import GuardedRoute
from ehub_customs.allowances.service import get_allowance, visible_to_partner
from ehub_customs.api.deps import AllowancesReader, RuleBookDep
from ehub_customs.tariffs.rulebook import RuleBook

router = APIRouter(prefix="/v1", tags=["allowances"], route_class=GuardedRoute)

CountryPath = Annotated[str, Path(pattern=r"^[A-Z]{2}$")]
BuyerPath = Annotated[str, Path(min_length=1, max_length=100)]
DateQuery = Annotated[
    IsoDate | None, Query(description="day in the year to read (YYYY-MM-DD); default today")
]


class AllowanceRead(BaseModel):
    country: str
    buyer_id: str
    year: int
    currency: str
    annual_limit: str
    used: str = Field(description="reserved + confirmed orders of the year")
    reserved: str = Field(description="the part of used held by orders not yet confirmed")
    remaining: str
    orders: int
    rule_id: str
    source: dict[str, str | None]
    verified: bool


async def allowance_read(
    session: AsyncSession, book: RuleBook, *, country: str, buyer_id: str, on: Date | None
) -> AllowanceRead:
    on = on or datetime.now(UTC).date()
    a = await get_allowance(session, book, country=country, buyer_id=buyer_id, on=on)
    return AllowanceRead(
        country=a.country,
        buyer_id=a.buyer_id,
        year=a.year,
        currency=a.currency,
        annual_limit=str(a.annual_limit),
        used=str(a.used),
        reserved=str(a.reserved),
        remaining=str(a.remaining),
        orders=a.orders,
        rule_id=a.rule_id,
        source={"title": a.source_title, "url": a.source_url},
        verified=a.verified,
    )


@router.get("/allowances/{country}/{buyer_id}", response_model=AllowanceRead)
async def read_allowance(
    country: CountryPath,
    buyer_id: BuyerPath,
    book: RuleBookDep,
    session: SessionDep,
    caller: AllowancesReader,
    date: DateQuery = None,
) -> AllowanceRead:
    """The buyer's yearly allowance under the destination's cross-border retail regime: used,
    reserved and left; a partner reads only the buyers it placed orders for."""
    partner = caller.visible_to
    if partner is not None and (
        caller.role != "marketplace"
        or not await visible_to_partner(
            session, partner_id=partner, country=country, buyer_id=buyer_id
        )
    ):
        raise NotFoundError(
            f"No allowance of buyer {buyer_id!r} in {country} for this partner: a "
            "marketplace reads the allowances of the buyers it placed orders for"
        )
    return await allowance_read(session, book, country=country, buyer_id=buyer_id, on=date)
