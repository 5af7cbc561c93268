"""Allowance ledger service: record committed orders (idempotently) and read balances.

``record_order`` is the consuming side of the order flow: it runs inside the
transaction that consumes an OrderAccepted-like event, records the event id in the
inbox (a redelivery is a no-op) and appends the order's value to the buyer's year.
Services never commit; the caller's transaction does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import NotFoundError, UnprocessableError
from ehub_core.inbox import consume_once
from ehub_customs.allowances.models import AllowanceEntry
from ehub_customs.allowances.repository import AllowanceRepository
from ehub_customs.tariffs.rulebook import QuotaRule, RuleBook

CONSUMER = "customs.allowances"
# The year of a person-year limit is the calendar year where the limit applies.
ZONES = {"CN": ZoneInfo("Asia/Shanghai")}


@dataclass(slots=True)
class Allowance:
    country: str
    buyer_id: str
    year: int
    currency: str
    annual_limit: Decimal
    used: Decimal
    remaining: Decimal
    orders: int
    rule_id: str
    source_title: str
    source_url: str | None
    verified: bool


def allowance_year(country: str, when: datetime | date) -> int:
    if isinstance(when, datetime):
        tz = ZONES.get(country)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(tz).year if tz else when.astimezone(UTC).year
    return when.year


def quota_rule(book: RuleBook, country: str, on: date) -> QuotaRule:
    rules = book.countries.get(country)
    quota = rules.view(on).quota if rules else None
    if quota is None:
        raise NotFoundError(f"{country} has no person-year allowance regime on {on.isoformat()}")
    return quota


async def used_allowance(
    session: AsyncSession, *, country: str, buyer_id: str, on: date
) -> Decimal:
    used, _ = await AllowanceRepository(session).used(
        country=country, buyer_id=buyer_id, year=allowance_year(country, on)
    )
    return used


async def get_allowance(
    session: AsyncSession, book: RuleBook, *, country: str, buyer_id: str, on: date
) -> Allowance:
    rule = quota_rule(book, country, on)
    year = allowance_year(country, on)
    used, orders = await AllowanceRepository(session).used(
        country=country, buyer_id=buyer_id, year=year
    )
    return Allowance(
        country,
        buyer_id,
        year,
        rule.currency,
        rule.annual_limit,
        used,
        max(rule.annual_limit - used, Decimal(0)),
        orders,
        rule.ref.id,
        rule.ref.source_title,
        rule.ref.source_url,
        rule.ref.verified,
    )


async def record_order(
    session: AsyncSession,
    *,
    event_id: str,
    country: str,
    buyer_id: str,
    order_id: str,
    amount: Decimal,
    currency: str,
    occurred_at: datetime,
) -> bool:
    """Count a committed order against the buyer's year; False if the event was a duplicate.

    ``amount`` is what the landed-cost quote reported as ``counts_toward_allowance`` (in
    the regime's currency). An order already counted (same country and order id, e.g.
    re-sent under a new event id) is not counted twice.
    """
    if amount < 0:
        raise UnprocessableError(
            "amount cannot be negative", errors=[{"loc": ["amount"], "msg": "negative"}]
        )
    if not await consume_once(session, event_id=event_id, consumer=CONSUMER):
        return False
    repo = AllowanceRepository(session)
    if await repo.find_order(country=country, order_id=order_id) is not None:
        return False
    repo.add(
        AllowanceEntry(
            id=f"alw_{uuid.uuid4().hex}",
            country=country,
            buyer_id=buyer_id,
            year=allowance_year(country, occurred_at),
            order_id=order_id,
            event_id=event_id,
            amount=amount.quantize(Decimal("0.01")),
            currency=currency,
            occurred_at=occurred_at,
            recorded_at=datetime.now(UTC),
        )
    )
    await session.flush()
    return True
