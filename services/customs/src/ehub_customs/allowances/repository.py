"""All SQL of the allowance ledger."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_customs.allowances.models import AllowanceEntry


class AllowanceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def used(self, *, country: str, buyer_id: str, year: int) -> tuple[Decimal, int]:
        """Sum of counted amounts and number of orders for one buyer-year."""
        stmt = select(func.coalesce(func.sum(AllowanceEntry.amount), 0), func.count()).where(
            AllowanceEntry.country == country,
            AllowanceEntry.buyer_id == buyer_id,
            AllowanceEntry.year == year,
        )
        total, count = (await self.session.execute(stmt)).one()
        return Decimal(str(total)).quantize(Decimal("0.01")), int(count)

    async def find_order(self, *, country: str, order_id: str) -> AllowanceEntry | None:
        stmt = select(AllowanceEntry).where(
            AllowanceEntry.country == country, AllowanceEntry.order_id == order_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    def add(self, entry: AllowanceEntry) -> None:
        self.session.add(entry)
