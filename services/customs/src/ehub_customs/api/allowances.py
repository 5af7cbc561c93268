"""``GET /v1/allowances/{country}/{buyer_id}``: a buyer's person-year allowance."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import date as Date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from ehub_core.deps import SessionDep
from ehub_customs.allowances.service import get_allowance
from ehub_customs.api.deps import RuleBookDep

router = APIRouter(prefix="/v1", tags=["allowances"])


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


@router.get("/allowances/{country}/{buyer_id}", response_model=AllowanceRead)
async def read_allowance(
    country: Annotated[str, Path(pattern=r"^[A-Z]{2}$")],
    buyer_id: Annotated[str, Path(min_length=1, max_length=100)],
    book: RuleBookDep,
    session: SessionDep,
    date: Annotated[
        Date | None, Query(description="day in the year to read; default today")
    ] = None,
) -> AllowanceRead:
    on = date or datetime.now(UTC).date()
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
