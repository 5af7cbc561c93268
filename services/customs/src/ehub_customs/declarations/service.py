"""File import and export declarations for the order saga and decide them.

A declaration is idempotent by (order id, phase): filing it again returns the stored
decision and changes nothing. A malformed body is decided ``rejected``
(``invalid_declaration``, the reason naming the field) and nothing is stored, so the
saga may file a corrected one. An import declaration claiming a person-year allowance
reserves it in the ledger, or is ``held`` (``allowance_exceeded``) when the buyer's year
has no room. Every declaration is screened (``ehub_customs.screening``: prohibited and
restricted goods, denied parties, undervaluation, split consignments) and decided by
the rule in ``screening/decide.py``; its hits are stored with it. Services never commit;
the caller's transaction does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import DomainError
from ehub_core.ids import new_id
from ehub_customs.allowances.service import (
    Reservation,
    active_quota,
    allowance_date,
    reserve_allowance,
)
from ehub_customs.declarations import records
from ehub_customs.declarations.models import (
    CLEARED,
    HELD,
    REJECTED,
    Declaration,
)
from ehub_customs.declarations.repository import DeclarationRepository
from ehub_customs.declarations.schemas import (
    ExportDeclarationBody,
    ImportDeclarationBody,
    invalid_reason,
)
from ehub_customs.fx import minor_quantum
from ehub_customs.screening import service as screening
from ehub_customs.screening.decide import Screening
from ehub_customs.screening.service import Screener
from ehub_customs.tariffs.loader import load_rulebook
from ehub_customs.tariffs.rulebook import RuleBook

DECIDED_BY = "rules"
INVALID = "invalid_declaration"
MAX_TOTAL = Decimal("1e15")
TOO_LARGE = f"invalid declaration: lines: the total value must be below {MAX_TOTAL:f}"
ALLOWANCE_EXCEEDED = "allowance_exceeded"
IMPORT: Literal["import"] = "import"
EXPORT: Literal["export"] = "export"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to a filing: what the saga's reply carries."""

    declaration_id: str | None
    decision: str
    reason_code: str
    reason: str
    allowance_reserved: bool = False

    @classmethod
    def of(cls, d: Declaration) -> Decision:
        return cls(d.id, d.decision, d.reason_code, d.reason, d.allowance_reserved)

    @classmethod
    def invalid(cls, reason: str) -> Decision:
        return cls(None, REJECTED, INVALID, reason)


def _screener(book: RuleBook, screener: Screener | None) -> Screener:
    return screener or Screener(screening.bundled_screening(), book)


async def file_import(
    session: AsyncSession,
    book: RuleBook,
    body: Mapping[str, Any],
    *,
    now: datetime | None = None,
    screener: Screener | None = None,
) -> Decision:
    """File the import declaration of an order (``FileImportDeclaration``)."""
    repo = DeclarationRepository(session)
    order_id = str(body.get("order_id", ""))
    stored = await repo.find(order_id=order_id, phase=IMPORT)
    if stored is not None:
        return Decision.of(stored)
    try:
        decl = ImportDeclarationBody.model_validate(body)
    except ValidationError as exc:
        return Decision.invalid(invalid_reason(exc))
    if decl.goods_value >= MAX_TOTAL:
        return Decision.invalid(TOO_LARGE)
    now = now or datetime.now(UTC)
    declaration_id = new_id("dcl")
    _, screened = await screening.run(
        session, _screener(book, screener), decl, IMPORT, buyer_ref=decl.buyer_ref, now=now
    )
    screened = _match_records(decl, screened)
    decision = Decision(declaration_id, screened.decision, screened.reason_code, screened.reason)
    on = allowance_date(decl.country, now)
    quota = active_quota(book, decl.country, on) if decl.allowance is not None else None
    if quota is not None and decl.allowance is not None and screened.decision != REJECTED:
        if decl.buyer_ref is None:
            return Decision.invalid(
                f"invalid declaration: buyer_ref: required to reserve the {decl.country} "
                f"person-year allowance ({quota.ref.id})"
            )
        try:
            amount = decl.allowance.amount
            if decl.allowance.currency != quota.currency:
                fx = book.fx.rate(decl.allowance.currency, quota.currency, on)
                amount = amount * fx.rate
        except DomainError as exc:
            return Decision.invalid(f"invalid declaration: allowance.currency: {exc.detail}")
        reservation = await reserve_allowance(
            session,
            quota,
            country=decl.country,
            buyer_id=decl.buyer_ref,
            order_id=decl.order_id,
            amount=amount,
            reference=declaration_id,
            now=now,
            partner_id=decl.partner_id,
        )
        if reservation.exceeded:
            if screened.decision == HELD:
                reason = f"{screened.reason}; {exceeded(reservation)}"
                decision = Decision(declaration_id, HELD, screened.reason_code, reason)
            else:
                decision = Decision(declaration_id, HELD, ALLOWANCE_EXCEEDED, exceeded(reservation))
        else:
            decision = Decision(
                declaration_id,
                screened.decision,
                screened.reason_code,
                screened.reason,
                allowance_reserved=True,
            )
    await _store(
        session,
        decision,
        screened,
        decl=decl,
        phase=IMPORT,
        counterpart=decl.origin,
        buyer_ref=decl.buyer_ref,
        now=now,
    )
    return decision


def _match_records(decl: ImportDeclarationBody, screened: Screening) -> Screening:
    """Add the three-record check to the screening (declarations/records.py): a mismatch
    holds a declaration screening would clear, and joins the reason of a held one."""
    if decl.records is None:
        return screened
    found = records.mismatches(decl.records, decl.goods_value, decl.currency)
    if not found:
        hit = (
            records.pending_hit()
            if decl.records.waybill is None
            else records.matched_hit(decl.records.waybill)
        )
        return dataclasses.replace(screened, hits=(*screened.hits, hit))
    hits = (*screened.hits, *records.hits(found))
    if screened.decision == REJECTED:
        return dataclasses.replace(screened, hits=hits)
    if screened.decision == CLEARED:
        return Screening(HELD, records.REASON_CODE, records.reason(found), hits)
    reason = f"{screened.reason}; {records.reason(found)}"
    return dataclasses.replace(screened, reason=reason, hits=hits)


async def file_export(
    session: AsyncSession,
    body: Mapping[str, Any],
    *,
    now: datetime | None = None,
    book: RuleBook | None = None,
    screener: Screener | None = None,
) -> Decision:
    """File the export declaration of an order (``FileExportDeclaration``)."""
    repo = DeclarationRepository(session)
    stored = await repo.find(order_id=str(body.get("order_id", "")), phase=EXPORT)
    if stored is not None:
        return Decision.of(stored)
    try:
        decl = ExportDeclarationBody.model_validate(body)
    except ValidationError as exc:
        return Decision.invalid(invalid_reason(exc))
    if decl.goods_value >= MAX_TOTAL:
        return Decision.invalid(TOO_LARGE)
    now = now or datetime.now(UTC)
    if screener is None:
        screener = Screener(screening.bundled_screening(), book or load_rulebook())
    _, screened = await screening.run(session, screener, decl, EXPORT, buyer_ref=None, now=now)
    decision = Decision(new_id("dcl"), screened.decision, screened.reason_code, screened.reason)
    await _store(
        session,
        decision,
        screened,
        decl=decl,
        phase=EXPORT,
        counterpart=decl.destination,
        buyer_ref=None,
        now=now,
    )
    return decision


async def _store(
    session: AsyncSession,
    decision: Decision,
    screened: Screening,
    *,
    decl: ImportDeclarationBody | ExportDeclarationBody,
    phase: str,
    counterpart: str,
    buyer_ref: str | None,
    now: datetime,
) -> None:
    assert decision.declaration_id is not None
    row = _declaration(
        decision,
        order_id=decl.order_id,
        phase=phase,
        country=decl.country,
        counterpart=counterpart,
        buyer_ref=buyer_ref,
        currency=decl.currency,
        lines=[line.stored() for line in decl.lines],
        total=decl.goods_value,
        now=now,
    )
    row.consignee_key = screening.consignee_key(decl)
    row.parties = [{"role": r, **p.stored()} for r, p in decl.parties()] or None
    row.documents = [d.model_dump(exclude_none=True) for d in decl.documents] or None
    if isinstance(decl, ImportDeclarationBody) and decl.records is not None:
        row.documents = [*(row.documents or []), decl.records.stored()]
    DeclarationRepository(session).add(row)
    await session.flush()
    session.add_all(screening.hit_rows(decision.declaration_id, screened.hits, now))
    await session.flush()


async def declarations_for_order(session: AsyncSession, order_id: str) -> Sequence[Declaration]:
    return await DeclarationRepository(session).for_order(order_id)


def exceeded(r: Reservation) -> str:
    """The reason of an ``allowance_exceeded`` hold: the rule, the figures, the source."""
    rule, ccy = r.rule, r.rule.currency
    source = rule.ref.source_title + (f", {rule.ref.source_url}" if rule.ref.source_url else "")
    return (
        f"the order's {r.amount} {ccy} would take the buyer's {r.year} allowance over the "
        f"annual limit of {rule.annual_limit} {ccy} per person ({r.used} {ccy} already "
        f"used); rule {rule.ref.id} ({rule.name}); source: {source}"
    )


def _declaration(
    decision: Decision,
    *,
    order_id: str,
    phase: str,
    country: str,
    counterpart: str,
    buyer_ref: str | None,
    currency: str,
    lines: list[dict[str, Any]],
    total: Decimal,
    now: datetime,
) -> Declaration:
    assert decision.declaration_id is not None
    return Declaration(
        id=decision.declaration_id,
        order_id=order_id,
        phase=phase,
        country=country,
        counterpart_country=counterpart,
        buyer_ref=buyer_ref,
        currency=currency,
        lines=lines,
        total_value=total.quantize(minor_quantum(currency), rounding=ROUND_HALF_UP),
        allowance_reserved=decision.allowance_reserved,
        decision=decision.decision,
        reason_code=decision.reason_code,
        reason=decision.reason,
        decided_by=DECIDED_BY,
        filed_at=now,
        decided_at=now,
    )


REFUND = "refund"
CLAIMED = "claimed"
# China: cross-border retail imports returned within 30 days of release may claim back the
# taxes paid, and the buyer's annual total is adjusted accordingly.
REFUND_RULE = "cn.cbec.return_refund"
REFUND_REASON = (
    "goods returned within 30 days of customs release: duty and import taxes refunded and "
    "the buyer's annual cross-border total adjusted (Cai Guan Shui [2016] No. 18, item 6)"
)


async def file_refund_claim(
    session: AsyncSession, body: Mapping[str, Any], *, now: datetime | None = None
) -> tuple[Decision, Decimal]:
    """Record the duty and tax refund claim of a returned order (``FileRefundClaim``);
    idempotent by order. Returns the claim and the amount claimed."""
    repo = DeclarationRepository(session)
    order_id = str(body.get("order_id", ""))
    stored = await repo.find(order_id=order_id, phase=REFUND)
    if stored is not None:
        return Decision.of(stored), stored.total_value
    try:
        amount = Decimal(str(body["amount"]))
        currency = str(body["currency"])
        country = str(body["country"])
        counterpart = str(body["origin"])
        lines = list(body.get("lines") or [])
        if amount < 0 or amount >= MAX_TOTAL or len(currency) != 3 or len(country) != 2:
            raise ValueError("amount, currency or country out of range")
    except (KeyError, ValueError, ArithmeticError) as exc:
        return Decision.invalid(f"invalid refund claim: {exc}"), Decimal(0)
    decision = Decision(new_id("dcl"), CLAIMED, REFUND_RULE, REFUND_REASON)
    repo.add(
        _declaration(
            decision,
            order_id=order_id,
            phase=REFUND,
            country=country,
            counterpart=counterpart,
            buyer_ref=body.get("buyer_ref"),
            currency=currency,
            lines=lines,
            total=amount,
            now=now or datetime.now(UTC),
        )
    )
    await session.flush()
    return decision, amount
