"""All SQL of the allowance ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_customs.allowances.models import COUNTED, RESERVED, AllowanceEntry

CENT = Decimal("0.01")
# Class id of the advisory locks serialising reservations for one buyer-year (Postgres).
_BUYER_LOCK_CLASS = 0x0C_05_70_35


@dataclass(frozen=True, slots=True)
class Usage:
    """A buyer-year: the used amount (reserved + confirmed), its reserved part, orders."""

    used: Decimal
    reserved: Decimal
    orders: int


class AllowanceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def usage(self, *, country: str, buyer_id: str, year: int) -> Usage:
        """Reserved and confirmed entries of one buyer-year; released ones never count."""
        reserved = case((AllowanceEntry.status == RESERVED, AllowanceEntry.amount), else_=0)
        stmt = select(
            func.coalesce(func.sum(AllowanceEntry.amount), 0),
            func.coalesce(func.sum(reserved), 0),
            func.count(),
        ).where(
            AllowanceEntry.country == country,
            AllowanceEntry.buyer_id == buyer_id,
            AllowanceEntry.year == year,
            AllowanceEntry.status.in_(COUNTED),
        )
        total, held, count = (await self.session.execute(stmt)).one()
        return Usage(
            Decimal(str(total)).quantize(CENT), Decimal(str(held)).quantize(CENT), int(count)
        )

    async def used(self, *, country: str, buyer_id: str, year: int) -> tuple[Decimal, int]:
        """Sum of counted amounts (reserved + confirmed) and number of orders."""
        u = await self.usage(country=country, buyer_id=buyer_id, year=year)
        return u.used, u.orders

    async def placed_for(self, *, partner_id: str, country: str, buyer_id: str) -> bool:
        """Whether the partner placed at least one order of the buyer in the country
        (an entry in any year and any status)."""
        stmt = select(
            exists().where(
                AllowanceEntry.partner_id == partner_id,
                AllowanceEntry.country == country,
                AllowanceEntry.buyer_id == buyer_id,
            )
        )
        return bool(await self.session.scalar(stmt))

    async def find_order(self, *, country: str, order_id: str) -> AllowanceEntry | None:
        stmt = select(AllowanceEntry).where(
            AllowanceEntry.country == country, AllowanceEntry.order_id == order_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def for_order(self, order_id: str) -> Sequence[AllowanceEntry]:
        """The order's entries (one per country; in practice one)."""
        stmt = select(AllowanceEntry).where(AllowanceEntry.order_id == order_id)
        return (await self.session.scalars(stmt)).all()

    async def lock_buyer_year(self, *, country: str, buyer_id: str, year: int) -> None:
        """Serialise check-then-reserve for one buyer-year until the transaction ends.

        SQLite transactions already run one at a time (``BEGIN IMMEDIATE``); on Postgres
        two orders of one buyer could otherwise both pass the limit check.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:cls, hashtext(:key))"),
            {"cls": _BUYER_LOCK_CLASS, "key": f"{country}:{year}:{buyer_id}"},
        )

    def add(self, entry: AllowanceEntry) -> None:
        self.session.add(entry)
