"""Allowance ledger service: reserve, confirm, release and record orders; read balances.

The order saga reserves an order's allowance when customs files the import declaration
(:func:`reserve_allowance`), confirms it when the order is committed
(:func:`confirm_allowance`) and releases it when the order is abandoned or returned
(:func:`release_allowance`). ``record_order`` is the older event-driven path: it runs
inside the transaction that consumes an OrderAccepted-like event, records the event id
in the inbox (a redelivery is a no-op) and appends a confirmed entry to the buyer's year.
The used allowance counts reserved and confirmed entries, never released ones.
Services never commit; the caller's transaction does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import NotFoundError, UnprocessableError, field_error
from ehub_core.inbox import consume_once
from ehub_customs.allowances.models import CONFIRMED, RELEASED, RESERVED, AllowanceEntry
from ehub_customs.allowances.repository import CENT, AllowanceRepository
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
    reserved: Decimal
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


def allowance_date(country: str, when: datetime) -> date:
    """The calendar day of ``when`` where the country's limit applies."""
    tz = ZONES.get(country)
    return when.astimezone(tz).date() if tz else when.astimezone(UTC).date()


def active_quota(book: RuleBook, country: str, on: date) -> QuotaRule | None:
    """The person-year quota rule of ``country`` in force on ``on``, if any."""
    rules = book.countries.get(country)
    if rules is None:
        return None
    try:
        return rules.view(on).quota
    except UnprocessableError:  # no rules of the country in force that day
        return None


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
    usage = await AllowanceRepository(session).usage(country=country, buyer_id=buyer_id, year=year)
    return Allowance(
        country,
        buyer_id,
        year,
        rule.currency,
        rule.annual_limit,
        usage.used,
        usage.reserved,
        max(rule.annual_limit - usage.used, Decimal(0)),
        usage.orders,
        rule.ref.id,
        rule.ref.source_title,
        rule.ref.source_url,
        rule.ref.verified,
    )


async def visible_to_partner(
    session: AsyncSession, *, partner_id: str, country: str, buyer_id: str
) -> bool:
    """A partner may read a buyer's allowance once it placed an order of that buyer."""
    return await AllowanceRepository(session).placed_for(
        partner_id=partner_id, country=country, buyer_id=buyer_id
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
    partner_id: str | None = None,
) -> bool:
    """Count a committed order against the buyer's year; False if the event was a duplicate.

    ``amount`` is what the landed-cost quote reported as ``counts_toward_allowance`` (in
    the regime's currency). An order already counted (same country and order id, e.g.
    re-sent under a new event id) is not counted twice.
    """
    if amount < 0:
        raise UnprocessableError(
            "amount cannot be negative", errors=[field_error("amount", "negative")]
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
            status=CONFIRMED,
            occurred_at=occurred_at,
            recorded_at=datetime.now(UTC),
            partner_id=partner_id,
        )
    )
    await session.flush()
    return True


@dataclass(frozen=True, slots=True)
class Reservation:
    """What :func:`reserve_allowance` decided, with the figures a reason needs.

    ``reserved``: the order now counts in the buyer's year (a new reserved entry, or an
    entry the order already had). ``exceeded``: nothing was reserved because the order
    would push the year over ``rule.annual_limit``. Amounts are in ``rule.currency``.
    """

    reserved: bool
    exceeded: bool
    rule: QuotaRule
    year: int
    used: Decimal
    amount: Decimal


async def reserve_allowance(
    session: AsyncSession,
    rule: QuotaRule,
    *,
    country: str,
    buyer_id: str,
    order_id: str,
    amount: Decimal,
    reference: str,
    now: datetime,
    partner_id: str | None = None,
) -> Reservation:
    """Reserve ``amount`` (in ``rule.currency``) of the buyer's year for an order.

    Refuses (``exceeded``) when the buyer's used amount (reserved + confirmed) plus this
    order would be over the annual limit. ``reference`` is stored as the entry's
    ``event_id`` (the declaration id), ``partner_id`` as the marketplace that placed
    the order. An order that already counts in the country is not counted twice; a
    released entry of the order is reserved again.
    """
    year = allowance_year(country, now)
    amount = amount.quantize(CENT)
    repo = AllowanceRepository(session)
    await repo.lock_buyer_year(country=country, buyer_id=buyer_id, year=year)
    used, _ = await repo.used(country=country, buyer_id=buyer_id, year=year)
    existing = await repo.find_order(country=country, order_id=order_id)
    if existing is not None and existing.status != RELEASED:
        return Reservation(True, False, rule, year, used, existing.amount)
    if used + amount > rule.annual_limit:
        return Reservation(False, True, rule, year, used, amount)
    if existing is not None:
        existing.buyer_id, existing.year, existing.amount = buyer_id, year, amount
        existing.currency, existing.event_id, existing.status = rule.currency, reference, RESERVED
        existing.occurred_at = existing.recorded_at = now
        existing.partner_id = partner_id if partner_id is not None else existing.partner_id
    else:
        repo.add(
            AllowanceEntry(
                id=f"alw_{uuid.uuid4().hex}",
                country=country,
                buyer_id=buyer_id,
                year=year,
                order_id=order_id,
                event_id=reference,
                amount=amount,
                currency=rule.currency,
                status=RESERVED,
                occurred_at=now,
                recorded_at=now,
                partner_id=partner_id,
            )
        )
    await session.flush()
    return Reservation(True, False, rule, year, used, amount)


async def confirm_allowance(session: AsyncSession, *, order_id: str) -> bool:
    """reserved → confirmed. True when the order's allowance is confirmed (now, or by an
    earlier confirmation: a repeat answers the same); False when the order has no
    allowance entry or it was released."""
    entries = await AllowanceRepository(session).for_order(order_id)
    confirmed = False
    for entry in entries:
        if entry.status == RESERVED:
            entry.status = CONFIRMED
        confirmed = confirmed or entry.status == CONFIRMED
    await session.flush()
    return confirmed


async def release_allowance(session: AsyncSession, *, order_id: str) -> bool:
    """reserved (an abandoned order) or confirmed (a return) → released. True when the
    order's allowance is released (now, or earlier: a repeat answers the same); False
    when the order has no allowance entry."""
    entries = await AllowanceRepository(session).for_order(order_id)
    for entry in entries:
        if entry.status in (RESERVED, CONFIRMED):
            entry.status = RELEASED
    await session.flush()
    return bool(entries)
